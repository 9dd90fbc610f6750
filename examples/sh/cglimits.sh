# cglimits.sh: set a cgroup v1 memory group's limit and background-reclaim watermarks
# together, in an order that never breaks "low <= high <= limit" on the way (the kernel, and
# fakecgfs, refuse with EINVAL any single write that would).  POSIX sh; source it:
#
#     . ./cglimits.sh
#     cg_set_limits /sys/fs/cgroup/memory/web 67108864 50331648 33554432
#
# Sizes are in bytes.  Values going up are written first, largest first (limit, high, low);
# then values going down, smallest first (low, high, limit).

cg_set_limits() { # DIR LIMIT HIGH LOW
    _cg_dir=$1
    _cg_old_limit=$(cat "$_cg_dir/memory.limit_in_bytes") || return 1
    _cg_old_high=$(cat "$_cg_dir/memory.high_wmark_in_bytes") || return 1
    _cg_old_low=$(cat "$_cg_dir/memory.low_wmark_in_bytes") || return 1
    # going up: limit, high, low
    [ "$2" -gt "$_cg_old_limit" ] && { _cg_write limit "$2" || return 1; }
    [ "$3" -gt "$_cg_old_high" ] && { _cg_write high_wmark "$3" || return 1; }
    [ "$4" -gt "$_cg_old_low" ] && { _cg_write low_wmark "$4" || return 1; }
    # going down: low, high, limit
    [ "$4" -lt "$_cg_old_low" ] && { _cg_write low_wmark "$4" || return 1; }
    [ "$3" -lt "$_cg_old_high" ] && { _cg_write high_wmark "$3" || return 1; }
    [ "$2" -lt "$_cg_old_limit" ] && { _cg_write limit "$2" || return 1; }
    return 0
}

_cg_write() { # NAME VALUE: write memory.NAME_in_bytes
    if ! echo "$2" >"$_cg_dir/memory.$1_in_bytes"; then
        echo "cg_set_limits: cannot set $1 of $_cg_dir to $2" >&2
        return 1
    fi
}
