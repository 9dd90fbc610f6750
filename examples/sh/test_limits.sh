#!/bin/sh
# Tests of cglimits.sh (next to this file), a plain POSIX-sh test file using fakecgfs-sh:
# each test gets a fresh group of a fake hierarchy mounted in a temp dir, so no root access
# to a real /sys/fs/cgroup is needed (only FUSE).  Run: sh test_limits.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/cglimits.sh"
. "$(fakecgfs shell-lib)" || exit 125

fakecg_mount || exit 125
trap fakecg_umount EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

M=1048576
n=0
failed=0
check() { # NAME: run test_NAME in a subshell, in a new group $G, with set -e
    n=$((n + 1))
    G=$FAKECG_ROOT/$1
    mkdir "$G"
    (set -e; "test_$1")
    if [ $? -eq 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=$((failed + 1)); fi
}

# The rules cg_set_limits must live with, as the kernel enforces them.
test_rules() {
    fakecg_mkgroup "$G" --limit 64M --high 48M --low 32M
    fakecg_expect_errno EINVAL "$G/memory.high_wmark_in_bytes" 65M  # high above the limit
    fakecg_expect_errno EINVAL "$G/memory.low_wmark_in_bytes" 49M   # low above high
    fakecg_expect_errno EINVAL "$G/memory.limit_in_bytes" 40M       # limit under high
    fakecg_expect_errno EINVAL "$G/memory.limit_in_bytes" lots
    fakecg_expect "$G/memory.limit_in_bytes" 64M                    # all refused: unchanged
}

test_first_setting() {
    cg_set_limits "$G" $((64 * M)) $((48 * M)) $((32 * M))
    fakecg_expect "$G/memory.limit_in_bytes" 64M
    fakecg_expect "$G/memory.high_wmark_in_bytes" 48M
    fakecg_expect "$G/memory.low_wmark_in_bytes" 32M
}

test_raising_everything() {
    fakecg_mkgroup "$G" --limit 64M --high 48M --low 32M
    cg_set_limits "$G" $((256 * M)) $((192 * M)) $((128 * M))   # low first would be EINVAL
    fakecg_expect "$G/memory.limit_in_bytes" 256M
    fakecg_expect "$G/memory.low_wmark_in_bytes" 128M
}

test_lowering_everything() {
    fakecg_mkgroup "$G" --limit 256M --high 192M --low 128M
    cg_set_limits "$G" $((64 * M)) $((48 * M)) $((32 * M))
    fakecg_expect "$G/memory.limit_in_bytes" 64M
    fakecg_expect "$G/memory.high_wmark_in_bytes" 48M
}

test_lowering_the_limit_under_page_cache_reclaims() {
    fakecg_mkgroup "$G" --limit 128M
    fakecg_charge "$G" 100M --kind file
    cg_set_limits "$G" $((64 * M)) $((48 * M)) $((32 * M))
    fakecg_expect "$G/memory.usage_in_bytes" --at-most 64M
    fakecg_wait_settled "$G" --timeout 10           # background reclaim down to the low mark
    fakecg_expect "$G/memory.usage_in_bytes" --at-most 32M
}

test_reports_a_refusal() {
    fakecg_mkgroup "$G" --limit 64M
    fakecg_charge "$G" 40M                          # anonymous, no swap: not reclaimable
    if cg_set_limits "$G" $((16 * M)) $((8 * M)) $((4 * M)) 2>/dev/null; then
        echo "cg_set_limits lowered the limit under unreclaimable usage" >&2
        return 1
    fi
    fakecg_expect "$G/memory.limit_in_bytes" 64M
}

for t in rules first_setting raising_everything lowering_everything \
    lowering_the_limit_under_page_cache_reclaims reports_a_refusal; do
    check "$t"
done
echo "1..$n"
exit "$failed"
