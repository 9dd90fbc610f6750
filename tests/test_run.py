"""fakecgfs run (issue 15): what the command sees of the fake, what it cannot reach, and runs by
normal users.  Through real runs, each bounded by a timeout."""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fakecgfs import linux
from fakecgfs.run import namespace, procfiles, seccomp
from fakecgfs.run.command import server_supports_real_processes
from fakecgfs.run.privileges import CAP_SYS_ADMIN, CAP_SYS_PTRACE
from fakecgfs.testing import fuse_unavailable_reason
from users import as_user_with_fuse, user_namespaces_reason, user_python

CGROUP_SUPER_MAGIC = 0x27E0EB  # include/uapi/linux/magic.h
FUSE_SUPER_MAGIC = 0x65735546
RUN_TIMEOUT = 90

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount namespaces)")
needs_fuse = pytest.mark.skipif(
    fuse_unavailable_reason() is not None, reason=f"FUSE unavailable: {fuse_unavailable_reason()}"
)
needs_supervisor = pytest.mark.skipif(seccomp.unavailable_reason() is not None,
                                      reason=str(seccomp.unavailable_reason()))  # fmt: skip
real_run = [needs_root, needs_fuse, needs_supervisor]


def fakecgfs_run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fakecgfs", "run", *args], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, **kwargs)  # fmt: skip


def run_sh(script: str, *options: str, **kwargs) -> subprocess.CompletedProcess:
    result = fakecgfs_run(*options, "--", "sh", "-c", textwrap.dedent(script), **kwargs)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def host_mountinfo() -> list[str]:
    """This process's cgroup mounts and what is under /sys/fs/cgroup (other tests of the
    machine may mount elsewhere meanwhile)."""
    with open("/proc/self/mountinfo") as f:
        return sorted(line for line in f if " - cgroup" in line or " /sys/fs/cgroup" in line)


def memory_hierarchies(mountinfo: str) -> list[str]:
    """The mount points of the v1 memory hierarchies a tool scanning mountinfo would find."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        sep = fields.index("-", 6)
        if fields[sep + 1] == "cgroup" and "memory" in fields[sep + 3].split(","):
            found.append(fields[4])
    return found


# -- the presented /proc texts: pure functions ----------------------------------------------

# Recorded on a host with v1 hierarchies, inside a run (so with the fake's FUSE line).
MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:13 - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:19 - cgroup2 cgroup2 rw
52 31 0:41 / /sys/fs/cgroup/memory rw,nosuid,nodev,relatime - fuse.fakecgfs cgroup \
rw,user_id=0,group_id=0,default_permissions,allow_other
53 22 0:42 / /tmp/other\\040dir rw,nosuid,nodev,relatime - fuse.fakecgfs cgroup \
rw,user_id=0,group_id=0
"""
MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
cgroup /sys/fs/cgroup/memory fuse.fakecgfs rw,nosuid,nodev,relatime,user_id=0,group_id=0 0 0
cgroup /tmp/other\\040dir fuse.fakecgfs rw,nosuid,nodev,relatime,user_id=0,group_id=0 0 0
"""
CGROUPS = """\
#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t3\t1\t1
cpu\t1\t4\t1
memory\t4\t35\t1
pids\t8\t1\t0
"""


def test_mountinfo_shows_the_fake_as_the_only_memory_hierarchy():
    text = procfiles.present_mountinfo(MOUNTINFO, (0, 41))
    assert text.splitlines() == [
        "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
        "31 23 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755",
        "52 31 0:41 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime"
        " - cgroup cgroup rw,memory",
        MOUNTINFO.splitlines()[-1],  # another fakecgfs mount is what it is
    ]  # fmt: skip


def test_mountinfo_keeps_optional_fields():
    line = (
        "60 31 0:41 / /sys/fs/cgroup/memory rw,nosuid shared:7 master:2 - fuse.fakecgfs cgroup rw\n"
    )
    assert procfiles.present_mountinfo(line, (0, 41)) == (
        "60 31 0:41 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:7 master:2 "
        "- cgroup cgroup rw,memory\n")  # fmt: skip


def test_mounts_shows_the_fake_as_cgroup():
    assert procfiles.present_mounts(MOUNTS, "/sys/fs/cgroup/memory").splitlines() == [
        "/dev/vda / ext4 rw,relatime 0 0",
        "tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0",
        "cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0",
        "cgroup /tmp/other\\040dir fuse.fakecgfs rw,nosuid,nodev,relatime,user_id=0,group_id=0 0 0",
    ]  # fmt: skip
    with_space = procfiles.present_mounts(MOUNTS, "/tmp/other dir").splitlines()
    expected = "cgroup /tmp/other\\040dir cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0"
    assert with_space[-1] == expected


def test_cgroup_and_cgroups():
    assert procfiles.present_cgroup("/a/b") == "1:memory:/a/b\n"
    assert procfiles.present_cgroups(CGROUPS, 3) == (
        "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
        "cpuset\t0\t1\t1\ncpu\t0\t4\t1\nmemory\t1\t3\t1\npids\t0\t1\t0\n")  # fmt: skip
    assert procfiles.present_cgroups(CGROUPS.replace("memory\t4\t35\t1\n", ""), 1).endswith(
        "memory\t1\t1\t1\n")  # fmt: skip


def test_cgroup_mounts_are_detached_deepest_first():
    assert namespace.cgroup_mounts(MOUNTINFO) == [
        "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"]  # fmt: skip
    assert namespace.cgroup_mounts("40 1 0:3 / /a\\040b rw - cgroup2 cgroup2 rw\n") == ["/a b"]


def test_the_supervisor_says_what_an_old_kernel_lacks():
    assert "older than 5.14" in seccomp.unavailable_reason("5.10.0-27-amd64")
    assert seccomp.unavailable_reason("6.18.44-fc") == seccomp.unavailable_reason()


def run_filter(program, arch: int, nr: int, arg0: int = 0) -> int:
    """What the kernel's classic BPF would return for this seccomp_data (the four opcodes the
    filter uses)."""
    data = {0: nr, 4: arch, 16: arg0 & 0xFFFFFFFF}
    pc, a = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        if code == 0x06:  # ret
            return k
        if code == 0x20:  # ld [k]
            a = data[k]
            pc += 1
            continue
        taken = {0x15: a == k, 0x35: a >= k, 0x45: bool(a & k)}[code]
        pc += 1 + (jt if taken else jf)


X86_64, I386 = 0xC000003E, 0x40000003
EPERM_RET = seccomp.SECCOMP_RET_ERRNO | errno.EPERM
ENOSYS_RET = seccomp.SECCOMP_RET_ERRNO | errno.ENOSYS


def test_the_filter_presents_path_calls_and_refuses_user_namespaces_in_every_table():
    native, compat = linux.path_calls("x86_64"), linux.path_calls("i686")
    program = seccomp.build_filter(X86_64, native, (I386, compat))
    assert program[0] == (0x20, 0, 0, 4)  # the architecture first
    for nr in seccomp.trapped_numbers(native):
        assert run_filter(program, X86_64, nr) == seccomp.SECCOMP_RET_USER_NOTIF
    newuser = seccomp.CLONE_NEWUSER
    for arch, calls in ((X86_64, native), (I386, compat)):
        for nr in (calls.unshare, calls.clone):
            assert run_filter(program, arch, nr, newuser | 0x20000) == EPERM_RET
            assert run_filter(program, arch, nr, 0x20000) == seccomp.SECCOMP_RET_ALLOW
        assert run_filter(program, arch, calls.clone3) == ENOSYS_RET
    # The 32-bit table is allowed, not presented: its open is i386's 5, x86_64's fstat.
    assert run_filter(program, I386, compat.open) == seccomp.SECCOMP_RET_ALLOW
    assert run_filter(program, I386, compat.mount) == seccomp.SECCOMP_RET_ALLOW
    assert run_filter(program, X86_64, 39) == seccomp.SECCOMP_RET_ALLOW  # getpid
    assert run_filter(program, X86_64, 165 | seccomp.X32_SYSCALL_BIT) == ENOSYS_RET  # x32 mount
    assert run_filter(program, 0x40000028, 21) == ENOSYS_RET  # a table it does not know
    assert run_filter(seccomp.build_filter(X86_64, native), I386, compat.mount) == ENOSYS_RET


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler to read the headers")
def test_path_call_numbers_match_the_c_headers(tmp_path):
    source = tmp_path / "numbers.c"
    source.write_text(
        "#include <stdio.h>\n#include <sys/syscall.h>\n"
        "#ifndef SYS_open\n#define SYS_open -1\n#endif\n"
        'int main(void) { printf("%d %d %d %d %d %d %d %d %d %d\\n", SYS_open, SYS_openat,'
        " SYS_openat2, SYS_statfs, SYS_fstatfs, SYS_mount, SYS_fsopen, SYS_unshare, SYS_clone,"
        " SYS_clone3); return 0; }\n"
    )
    binary = tmp_path / "numbers"
    build = subprocess.run(["cc", "-o", str(binary), str(source)], capture_output=True, text=True)
    if build.returncode != 0:
        pytest.skip(f"headers lack a number: {build.stderr.strip().splitlines()[-1]}")
    values = [int(v) for v in subprocess.check_output([str(binary)], text=True).split()]
    calls = linux.path_calls()
    assert values == [calls.open if calls.open is not None else -1, calls.openat, calls.openat2,
                      calls.statfs, calls.fstatfs, calls.mount, calls.fsopen, calls.unshare,
                      calls.clone, calls.clone3]  # fmt: skip


# -- what the command sees ------------------------------------------------------------------

STATFS_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Raw system calls, as a static binary or a Go program makes them: no libc wrapper between. */
int main(int argc, char **argv) {
    struct statfs st;
    for (int i = 1; i < argc; i++) {
        if (syscall(SYS_statfs, argv[i], &st) != 0) { perror(argv[i]); return 1; }
        printf("statfs %s %lx %ld %ld\n", argv[i], (long)st.f_type, (long)st.f_bsize,
               (long)st.f_namelen);
        int fd = syscall(SYS_openat, AT_FDCWD, argv[i], O_RDONLY);
        if (fd < 0 || syscall(SYS_fstatfs, fd, &st) != 0) { perror("fstatfs"); return 1; }
        printf("fstatfs %s %lx\n", argv[i], (long)st.f_type);
        close(fd);
    }
    char buf[65536];
    int fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/mountinfo", O_RDONLY);
    ssize_t n, total = 0;
    while ((n = read(fd, buf + total, sizeof buf - 1 - total)) > 0) total += n;
    buf[total] = 0;
    fputs(buf, stdout);
    return 0;
}
"""


@pytest.fixture(scope="module")
def static_statfs(tmp_path_factory) -> Path:
    if shutil.which("cc") is None:
        pytest.skip("no C compiler")
    directory = tmp_path_factory.mktemp("static")
    (directory / "statfs.c").write_text(STATFS_C)
    binary = directory / "statfs"
    build = subprocess.run(["cc", "-static", "-O", "-o", str(binary), str(directory / "statfs.c")],
                           capture_output=True, text=True)  # fmt: skip
    if build.returncode != 0:
        pytest.skip(f"cannot link statically (libc6-dev): {build.stderr.strip()[-200:]}")
    binary.chmod(0o755)
    directory.chmod(0o755)
    return binary


@needs_root
@needs_fuse
@needs_supervisor
def test_a_static_binary_sees_cgroupfs(static_statfs):
    result = run_sh(f"{static_statfs} /sys/fs/cgroup/memory /sys/fs/cgroup/memory/memory.stat /")
    lines = result.stdout.splitlines()
    page = os.sysconf("SC_PAGE_SIZE")
    assert lines[0] == f"statfs /sys/fs/cgroup/memory {CGROUP_SUPER_MAGIC:x} {page} 255"
    assert lines[1] == f"fstatfs /sys/fs/cgroup/memory {CGROUP_SUPER_MAGIC:x}"
    assert lines[2].startswith(f"statfs /sys/fs/cgroup/memory/memory.stat {CGROUP_SUPER_MAGIC:x} ")
    # The root file system is not the fake: the kernel's own answer, the same as outside.
    outside = subprocess.run([str(static_statfs), "/"], capture_output=True, text=True,
                             timeout=30).stdout.splitlines()  # fmt: skip
    assert lines[4:6] == outside[:2]
    assert memory_hierarchies("\n".join(lines[6:])) == ["/sys/fs/cgroup/memory"]
    # Relative paths, from the caller's working directory, and through /proc/self.
    relative = run_sh(f"cd /sys/fs/cgroup/memory && {static_statfs} . memory.stat /proc/self/cwd")
    types = [line.split()[2] for line in relative.stdout.splitlines()[:6]]
    assert types == [f"{CGROUP_SUPER_MAGIC:x}"] * 6


@needs_root
@needs_fuse
@needs_supervisor
def test_statfs_matches_a_real_v1_memory_hierarchy_where_the_host_has_one(static_statfs):
    host = "/sys/fs/cgroup/memory"
    if not os.path.isdir(host) or "memory" not in Path("/proc/self/mounts").read_text():
        pytest.skip("no v1 memory hierarchy on this host to compare with")
    outside = subprocess.run([str(static_statfs), host], capture_output=True, text=True, timeout=30)
    if not outside.stdout.startswith(f"statfs {host} {CGROUP_SUPER_MAGIC:x}"):
        pytest.skip(f"{host} is not a real cgroup v1 hierarchy here")
    inside = run_sh(f"{static_statfs} {host}")
    assert inside.stdout.splitlines()[:2] == outside.stdout.splitlines()[:2]


@needs_root
@needs_fuse
@needs_supervisor
def test_mountinfo_readers_find_one_memory_hierarchy_the_fake():
    result = run_sh("""
        cat /proc/self/mountinfo; echo ==
        cat /proc/mounts; echo ==
        cat /proc/$$/mountinfo; echo ==
        stat -c %d:%D /sys/fs/cgroup/memory
    """)
    mountinfo, mounts, by_pid, device = result.stdout.split("==\n")
    for text in (mountinfo, by_pid):
        assert memory_hierarchies(text) == ["/sys/fs/cgroup/memory"]
        # (Other tests' fakecgfs mounts, copied into the namespace, stay what they are.)
        assert not [ln for ln in text.splitlines() if " /sys/fs/cgroup/" in ln and "fuse" in ln]
        assert " - cgroup2 " not in text
        line = next(ln for ln in text.splitlines() if ln.endswith(" - cgroup cgroup rw,memory"))
        fields = line.split()
        assert fields[3:6] == ["/", "/sys/fs/cgroup/memory", "rw,nosuid,nodev,noexec,relatime"]
        major, minor = (int(n) for n in fields[2].split(":"))
        assert os.makedev(major, minor) == int(device.split(":")[0])  # stat()'s st_dev
    assert [ln for ln in mounts.splitlines() if " /sys/fs/cgroup/" in ln] == [
        "cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0"
    ]


@needs_root
@needs_fuse
@needs_supervisor
def test_proc_cgroup_names_the_fake_group_and_cgroups_lists_memory():
    result = run_sh("""
        mkdir /sys/fs/cgroup/memory/x /sys/fs/cgroup/memory/x/y
        cat /proc/self/cgroup
        echo $$ > /sys/fs/cgroup/memory/x/y/tasks
        cat /proc/$$/cgroup /proc/thread-self/../cgroups /proc/$$/task/$$/cgroup
        grep -E '^memory' /proc/cgroups
        exec cat /proc/self/cgroup
    """)
    lines = result.stdout.splitlines()
    assert lines[0] == "1:memory:/"
    assert lines[1] == "1:memory:/x/y"
    assert "memory\t1\t3\t1" in lines
    assert lines.count("1:memory:/x/y") == 3
    assert lines[-1] == "1:memory:/x/y"


@needs_root
@needs_fuse
@needs_supervisor
@pytest.mark.skipif(
    not server_supports_real_processes(),
    reason="a child joins its parent's group with --real-processes (issue 14)",
)
def test_a_forked_child_shows_the_group_its_parent_joined():
    result = run_sh(
        "echo $$ > /sys/fs/cgroup/memory/tasks; mkdir /sys/fs/cgroup/memory/x;"
        "echo $$ > /sys/fs/cgroup/memory/x/tasks; cat /proc/self/cgroup"
    )
    assert result.stdout == "1:memory:/x\n"


@needs_root
@needs_fuse
@needs_supervisor
def test_presented_files_honour_o_cloexec():
    result = run_sh(f"""
        {sys.executable} -c '
import ctypes, fcntl, os
libc = ctypes.CDLL(None)  # os.open would add O_CLOEXEC itself
for flags in (os.O_RDONLY, os.O_RDONLY | os.O_CLOEXEC):
    fd = libc.open(b"/proc/self/mountinfo", flags)
    cloexec = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
    print(cloexec, os.read(fd, 1 << 20).count(b"rw,memory"))
'
    """)
    assert result.stdout.splitlines() == ["False 1", "True 1"]


@needs_root
@needs_fuse
@needs_supervisor
def test_an_open_relative_to_a_directory_descriptor_is_presented():
    result = run_sh(f"""
        {sys.executable} -c '
import os
import platform
proc = os.open("/proc/self", os.O_RDONLY)
with open(os.open("mountinfo", os.O_RDONLY, dir_fd=proc)) as f:
    print(f.read().count(" - cgroup cgroup rw,memory"))
os.chdir("/proc")
print(open("self/cgroup").read().strip(), open("mounts").read().count("fuse.fakecgfs /sys/"))
'
    """)
    assert result.stdout.splitlines() == ["1", "1:memory:/ 0"]


# -- what the command cannot reach ----------------------------------------------------------

MOUNT_SYSCALL = """\
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for fstype in (b"cgroup", b"cgroup2", b"tmpfs"):
    result = libc.mount(b"none", b"/mnt", fstype, 0, b"memory" if fstype == b"cgroup" else None)
    print(fstype.decode(), result, os.strerror(ctypes.get_errno()) if result else "mounted")
    if result == 0:
        libc.umount2(b"/mnt", 2)
for fstype in (b"cgroup", b"cgroup2", b"tmpfs"):  # the new mount API
    fd = libc.syscall(FSOPEN, fstype, 0)
    print("fsopen", fstype.decode(), os.strerror(ctypes.get_errno()) if fd < 0 else "opened")
""".replace("FSOPEN", str(linux.path_calls().fsopen))


@needs_root
@needs_fuse
@needs_supervisor
def test_mounting_a_cgroup_hierarchy_is_refused_and_the_host_is_unchanged():
    before = host_mountinfo()
    result = run_sh(f"""
        mount -t cgroup -o memory none /mnt; echo "mount cgroup: $?"
        mount -t cgroup2 none /mnt; echo "mount cgroup2: $?"
        {sys.executable} -c '{MOUNT_SYSCALL}'
    """)
    assert result.stdout.splitlines() == [
        "mount cgroup: 32", "mount cgroup2: 32",  # mount(8): "permission denied"
        "cgroup -1 Operation not permitted", "cgroup2 -1 Operation not permitted",
        "tmpfs -1 Operation not permitted",  # no CAP_SYS_ADMIN at all
        "fsopen cgroup Operation not permitted", "fsopen cgroup2 Operation not permitted",
        "fsopen tmpfs Operation not permitted",
    ]  # fmt: skip
    # With CAP_SYS_ADMIN kept (unsafe), the supervisor still refuses cgroup file systems.
    kept = run_sh(f"{sys.executable} -c '{MOUNT_SYSCALL}'", "--keep-cap-sys-admin")
    assert kept.stdout.splitlines() == [
        "cgroup -1 Operation not permitted", "cgroup2 -1 Operation not permitted",
        "tmpfs 0 mounted", "fsopen cgroup Operation not permitted",
        "fsopen cgroup2 Operation not permitted", "fsopen tmpfs opened"]  # fmt: skip
    assert host_mountinfo() == before


@needs_root
@needs_fuse
@needs_supervisor
def test_only_the_fake_is_in_sys_fs_cgroup_and_the_host_is_out_of_reach():
    result = run_sh(f"""
        ls /sys/fs/cgroup; echo ==
        lscgroup 2>&1 || true; echo ==
        grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; echo ==
        ls /proc/{os.getpid()}/root/ 2>&1 && echo reachable || echo unreachable
    """)
    listing, lscgroup, caps, reach = result.stdout.split("==\n")
    assert listing.split() == ["memory"]
    if shutil.which("lscgroup"):
        assert lscgroup.split() == ["memory:/"]
    for line in caps.splitlines():
        value = int(line.split()[1], 16)
        assert not value & (1 << CAP_SYS_ADMIN | 1 << CAP_SYS_PTRACE), line
    # The test's own root directory, in the host's namespace: not through /proc/PID/root.
    assert reach.strip().endswith("unreachable") and "Permission denied" in reach


# -- real clients: libcgroup's tools --------------------------------------------------------

CGROUP_TOOLS = """
    set -e
    cgcreate -g memory:/x
    cgset -r memory.limit_in_bytes=64M x
    cgget -n -v -r memory.limit_in_bytes x
    cat /sys/fs/cgroup/memory/x/memory.limit_in_bytes
    cgexec -g memory:x sh -c 'exec cat /proc/self/cgroup'
    lscgroup
    cgdelete memory:/x
    test ! -e /sys/fs/cgroup/memory/x && echo deleted
"""
CGROUP_TOOLS_OUTPUT = ["67108864", "67108864", "1:memory:/x", "memory:/", "memory:/x", "deleted"]
needs_cgroup_tools = pytest.mark.skipif(
    shutil.which("cgcreate") is None, reason="cgroup-tools is not installed (scripts/setup)"
)


@needs_root
@needs_fuse
@needs_supervisor
@needs_cgroup_tools
def test_cgroup_tools_act_on_the_fake():
    assert run_sh(CGROUP_TOOLS).stdout.splitlines() == CGROUP_TOOLS_OUTPUT


@needs_root
@needs_fuse
@needs_supervisor
@needs_cgroup_tools
def test_cgroup_tools_where_the_host_has_no_v1_memory_hierarchy(tmp_path):
    """In a namespace made by the test whose cgroup mounts are all detached first."""
    script = tmp_path / "tools.sh"
    script.write_text(CGROUP_TOOLS)
    outer = f"""
        set -e
        hierarchies=$(awk '$9 == "cgroup" || $9 == "cgroup2" {{print $5}}' /proc/self/mountinfo)
        for m in $(echo "$hierarchies" | sort -r); do
            umount -l "$m"
        done
        ! grep -q ' - cgroup' /proc/self/mountinfo
        exec {sys.executable} -m fakecgfs run -- sh {script}
    """
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", outer],
                            capture_output=True, text=True, timeout=RUN_TIMEOUT)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == CGROUP_TOOLS_OUTPUT


# -- without seccomp user notification ------------------------------------------------------

SECCOMP_RET_ERRNO = 0x00050000


def _refuse_seccomp() -> None:
    """A filter on the run itself making seccomp(2) fail with ENOSYS: a kernel without it."""
    from fakecgfs.run import privileges

    calls = linux.arch()
    program = seccomp.Filter([
        (0x20, 0, 0, 0), (0x15, 0, 1, calls.seccomp),
        (0x06, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS), (0x06, 0, 0, seccomp.SECCOMP_RET_ALLOW),
    ])  # fmt: skip
    privileges.set_no_new_privs()
    prog = program._fprog
    linux.seccomp(seccomp.SECCOMP_SET_MODE_FILTER, 0,
                  ctypes.cast(ctypes.pointer(prog), ctypes.c_void_p))  # fmt: skip


@needs_root
@needs_fuse
def test_without_seccomp_notification_run_works_and_says_so_once():
    result = subprocess.run(
        [sys.executable, "-m", "fakecgfs", "run", "--", "sh", "-c",
         "grep -c ' /sys/fs/cgroup/memory .* - fuse.fakecgfs ' /proc/self/mountinfo;"
         "ls /sys/fs/cgroup"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, preexec_fn=_refuse_seccomp,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "memory"]
    assert result.stderr.count("seccomp user notification is not available") == 1
    assert "will notice the fake" in result.stderr


# -- normal users ---------------------------------------------------------------------------


@needs_root
@needs_fuse
@needs_supervisor
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="no setpriv")
@pytest.mark.parametrize("wrapper", [[], ["unshare", "-rm"]], ids=["plain", "unshare-rm"])
def test_a_user_runs_cgroup_tools_on_the_default_path(tmp_path, wrapper):
    """As the user, and (as the docs used to say) under `unshare -rm`, which failed with EINVAL."""
    reason = user_namespaces_reason()
    if reason:
        pytest.skip(reason)
    python, env = user_python()
    tools = CGROUP_TOOLS if shutil.which("cgcreate") else "mkdir /sys/fs/cgroup/memory/x"
    script = f"""
        set -e
        {tools}
        stat -f -c %t /sys/fs/cgroup/memory
        ls /sys/fs/cgroup
    """
    command = [*wrapper, python, "-m", "fakecgfs", "run", "--", "sh", "-c", script]
    result = as_user_with_fuse(tmp_path, command, env=env, cwd="/")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    if shutil.which("cgcreate"):
        assert lines[:-2] == CGROUP_TOOLS_OUTPUT
    assert lines[-2:] == [f"{CGROUP_SUPER_MAGIC:x}", "memory"]


# -- the supervisor's pieces ----------------------------------------------------------------


def test_read_string_stops_at_the_nul_and_at_the_end_of_a_mapping():
    import mmap

    from fakecgfs.run.supervisor import read_string

    page = mmap.PAGESIZE
    region = mmap.mmap(-1, 2 * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    try:
        text = b"/proc/self/mountinfo"
        start = page - len(text) - 1  # its NUL is the first page's last byte
        region[start:page] = text + b"\0"
        assert read_string(os.getpid(), base + start) == text
        region[page - 4 : page + 4] = b"abcdefg\0"  # across the page boundary
        assert read_string(os.getpid(), base + page - 4) == b"abcdefg"
        region[page : 2 * page] = b"x" * page  # no NUL within PATH_MAX
        with pytest.raises(OSError):
            read_string(os.getpid(), base + page)
        with pytest.raises(OSError):
            read_string(os.getpid(), 0)
    finally:
        del base
        region.close()


def test_a_failing_supervisor_closes_its_listener_instead_of_leaving_calls_waiting():
    from fakecgfs.run.supervisor import Fake, Supervisor

    not_a_listener, writer = os.pipe()
    os.write(writer, b"x")  # readable: the loop's ioctl fails on it (ENOTTY)
    supervisor = Supervisor(not_a_listener, Fake("/nonexistent", 0), linux.path_calls())
    supervisor.start()
    supervisor._thread.join(30)
    assert not supervisor._thread.is_alive()
    assert supervisor.listener == -1
    with pytest.raises(OSError):
        os.fstat(not_a_listener)  # closed: the kernel would fail trapped calls with ENOSYS
    supervisor.stop()
    os.close(writer)


def test_mount_failure_is_one_line_with_libfuses_reason():
    from fakecgfs.mounting import mount_failure

    log = ("Traceback (most recent call last):\n  ...\nfuse: failed to open /dev/fuse: "
           "Permission denied\nRuntimeError: fuse_setup failed\n")  # fmt: skip
    assert mount_failure(log) == "fuse: failed to open /dev/fuse: Permission denied"
    ours = "fakecgfs: cannot mount /m: fusermount: option allow_other only allowed if ...\n"
    assert mount_failure("fuse: x\n" + ours) == ours.strip().removeprefix("fakecgfs: ")
    assert mount_failure("") == "the server exited without a word"


def test_an_architecture_without_a_path_call_table_gets_no_supervisor(monkeypatch):
    with pytest.raises(linux.UnsupportedArchitecture, match="ppc64le"):
        linux.path_calls("ppc64le")  # another ioctl encoding: not in the table
    monkeypatch.setattr(linux.platform, "machine", lambda: "s390x")
    assert "s390x" in seccomp.unavailable_reason()


USERNS_MOUNT = Path(__file__).resolve().parent / "helpers" / "userns_mount.c"
CLONE_SYSCALLS = """\
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
flags = CLONE_NEWUSER | signal.SIGCHLD
pid = libc.syscall(CLONE, flags, 0, 0, 0, 0)
if pid == 0:
    os._exit(0)
print("clone", os.strerror(ctypes.get_errno()) if pid < 0 else "made")
if pid > 0:
    os.waitpid(pid, 0)
args = (ctypes.c_uint64 * 11)(flags & ~0xFF, 0, 0, 0, signal.SIGCHLD)
pid = libc.syscall(CLONE3, args, 88)
if pid == 0:
    os._exit(0)
print("clone3", os.strerror(ctypes.get_errno()) if pid < 0 else "made")
if pid > 0:
    os.waitpid(pid, 0)
"""


@needs_root
@needs_fuse
@needs_supervisor
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_a_user_namespace_gives_no_way_to_the_host_hierarchies(tmp_path):
    """The creator of a user namespace has CAP_SYS_ADMIN in it, and with a cgroup namespace
    mounts the host's memory hierarchy: before, the i386 mount(2) (int 0x80, which the filter
    let through) did so from a run.  Now no user namespace can be made, in any table."""
    binary = tmp_path / "userns_mount"
    subprocess.run(["cc", "-O1", "-Wall", "-no-pie", "-o", str(binary), str(USERNS_MOUNT)],
                   check=True, timeout=120)  # fmt: skip
    target = tmp_path / "target"
    target.mkdir()
    os.chmod(tmp_path, 0o755)
    calls = linux.path_calls()
    clone = CLONE_SYSCALLS.replace("CLONE_NEWUSER", str(seccomp.CLONE_NEWUSER))
    clone = clone.replace("CLONE3", str(calls.clone3)).replace("CLONE", str(calls.clone))
    tables = ["native", "i386"] if platform.machine() == "x86_64" else ["native"]
    before = host_mountinfo()
    result = run_sh(f"""
        for table in {" ".join(tables)}; do {binary} {target} $table; done
        {sys.executable} -c '{clone}'
    """)
    assert result.stdout.splitlines() == [
        *["unshare-user EPERM"] * len(tables), "clone Operation not permitted",
        "clone3 Function not implemented"]  # fmt: skip
    assert host_mountinfo() == before


STATFS_AS = """\
import os, sys
try:
    print(hex(os.statvfs(sys.argv[1]).f_fsid), "answered")
except OSError as e:
    print(e.strerror)
"""


@needs_root
@needs_fuse
@needs_supervisor
def test_statfs_is_presented_only_where_the_caller_may_reach():
    """The supervisor resolves statfs paths itself, as root: before, it answered a path under a
    group the caller may not search (0700, root's), where the kernel says EACCES."""
    result = run_sh(f"""
        cd /sys/fs/cgroup/memory && mkdir private && chmod 700 private
        for path in private/tasks tasks; do
            setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c '{STATFS_AS}' \\
                /sys/fs/cgroup/memory/$path
        done
        rmdir private
    """)
    denied, allowed = result.stdout.splitlines()
    assert denied == "Permission denied"
    assert allowed.endswith("answered")
