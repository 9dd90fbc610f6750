#!/bin/sh
# Tests of memlimit, the tool next to this file, unmodified: it hard-codes
# /sys/fs/cgroup/memory, so the tests run under `fakecgfs run`, which mounts a fresh fake
# hierarchy there in a private mount namespace (the host's hierarchy is not touched):
#
#     fakecgfs run -- sh test_memlimit.sh      # as root
#     sh test_memlimit.sh                      # the same: it re-runs itself under fakecgfs run
#
# Output is TAP-like ("ok N - name"); the exit status is the number of failed tests.
set -u
CGROOT=/sys/fs/cgroup/memory
here=$(cd "$(dirname "$0")" && pwd)
memlimit=$here/memlimit

# Never run these tests against a real cgroupfs.  Under fakecgfs run the fake looks like one to
# /proc/self/mountinfo and statfs(); a file only the fake has tells them apart.
if [ ! -e "$CGROOT/fake.daemons" ]; then
    if [ -n "${FAKECG_ROOT:-}" ]; then
        echo "test_memlimit.sh: $CGROOT is not a fakecgfs mount; refusing to run" >&2
        exit 125
    fi
    exec fakecgfs run -- sh "$0" "$@"
fi

# -- a tiny harness ---------------------------------------------------------------------------

tests=0
failures=0
run_test() { # NAME: run the function NAME in a subshell, report ok / not ok
    tests=$((tests + 1))
    (set -e; "$1") >"$TMPOUT" 2>&1 # not in an `if`: that would switch set -e off inside
    if [ $? -eq 0 ]; then
        echo "ok $tests - $1"
    else
        echo "not ok $tests - $1"
        sed 's/^/#   /' "$TMPOUT"
        failures=$((failures + 1))
    fi
}
fail() {
    echo "$*" >&2
    return 1
}
TMPOUT=$(mktemp)
trap 'rm -f "$TMPOUT"' EXIT

# -- the tests --------------------------------------------------------------------------------
# Each works in its own group; the whole fake hierarchy is thrown away at the end.

test_set_creates_the_group_with_its_limit() {
    "$memlimit" set web 64M
    fakecgfs expect "$CGROOT/web/memory.limit_in_bytes" 64M
}

test_set_rounds_down_to_pages_as_the_kernel_does() {
    "$memlimit" set rounding 100001
    fakecgfs expect "$CGROOT/rounding/memory.limit_in_bytes" 98304
}

test_set_reports_a_bad_size_and_keeps_the_limit() {
    "$memlimit" set bad 64M
    if "$memlimit" set bad lots 2>/dev/null; then fail "memlimit accepted 'lots'"; fi
    fakecgfs expect "$CGROOT/bad/memory.limit_in_bytes" 64M
}

test_set_below_unreclaimable_usage_fails() {
    "$memlimit" set busy 64M
    fakecgfs charge "$CGROOT/busy" 40M --kind anon   # no swap: cannot be reclaimed
    if "$memlimit" set busy 16M 2>/dev/null; then fail "limit lowered under usage"; fi
    fakecgfs expect "$CGROOT/busy/memory.limit_in_bytes" 64M
}

test_set_below_page_cache_reclaims_it() {
    "$memlimit" set cache 64M
    fakecgfs charge "$CGROOT/cache" 40M --kind file
    "$memlimit" set cache 16M
    fakecgfs expect "$CGROOT/cache/memory.usage_in_bytes" --at-most 16M
}

test_show_prints_usage_and_percentage() {
    "$memlimit" set shown 64M
    fakecgfs charge "$CGROOT/shown" 16M
    out=$("$memlimit" show shown)
    [ "$out" = "shown: usage 16777216 of 67108864 (25%)" ] || fail "got: $out"
}

test_show_without_a_limit() {
    mkdir "$CGROOT/free"
    out=$("$memlimit" show free)
    [ "$out" = "free: usage 0 of unlimited" ] || fail "got: $out"
}

test_check_flags_a_group_over_the_threshold() {
    "$memlimit" set hot 100M
    fakecgfs charge "$CGROOT/hot" 80M
    "$memlimit" check hot 90
    if "$memlimit" check hot 75 >/dev/null; then fail "80% not flagged at 75%"; fi
}

for t in test_set_creates_the_group_with_its_limit \
    test_set_rounds_down_to_pages_as_the_kernel_does \
    test_set_reports_a_bad_size_and_keeps_the_limit \
    test_set_below_unreclaimable_usage_fails \
    test_set_below_page_cache_reclaims_it \
    test_show_prints_usage_and_percentage \
    test_show_without_a_limit \
    test_check_flags_a_group_over_the_threshold; do
    run_test "$t"
done
echo "1..$tests"
[ "$failures" -eq 0 ] || echo "# $failures of $tests failed"
exit "$failures"
