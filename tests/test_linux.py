"""fakecgfs.linux: the system calls os lacks, and the per-architecture table."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import shutil
import subprocess
import threading

import pytest

from fakecgfs import linux

MADV_COLD = 20  # include/uapi/asm-generic/mman-common.h
SECCOMP_GET_ACTION_AVAIL = 2  # include/uapi/linux/seccomp.h
SECCOMP_RET_ALLOW = 0x7FFF0000


def test_pidfd_getfd_duplicates_a_descriptor_of_a_process():
    read_end, write_end = os.pipe()
    pidfd = linux.pidfd_open(os.getpid())
    try:
        dup = linux.pidfd_getfd(pidfd, write_end)
        try:
            assert not os.get_inheritable(dup)  # close-on-exec, as pidfd_getfd makes it
            os.write(dup, b"x")
            assert os.read(read_end, 1) == b"x"
        finally:
            os.close(dup)
    finally:
        for fd in (pidfd, read_end, write_end):
            os.close(fd)


def test_pidfd_getfd_of_a_closed_descriptor_is_ebadf():
    pidfd = linux.pidfd_open(os.getpid())  # first, so it cannot take the closed number
    read_end, write_end = os.pipe()
    os.close(write_end)
    try:
        with pytest.raises(OSError) as raised:
            linux.pidfd_getfd(pidfd, write_end)
        assert raised.value.errno == 9  # EBADF
    finally:
        os.close(pidfd)
        os.close(read_end)


@pytest.mark.skipif(os.geteuid() != 0, reason="process_madvise needs CAP_SYS_NICE")
def test_process_madvise_advises_the_given_bytes():
    with mmap.mmap(-1, 4 * mmap.PAGESIZE) as region:
        region.write(b"x" * len(region))
        address = ctypes.addressof(ctypes.c_char.from_buffer(region))
        pidfd = linux.pidfd_open(os.getpid())
        try:
            advised = linux.process_madvise(pidfd, [(address, len(region))], MADV_COLD)
        finally:
            os.close(pidfd)
        del address  # the buffer export must go before the mmap closes
        assert advised == 4 * mmap.PAGESIZE


def test_process_madvise_of_nothing_is_zero():
    assert linux.process_madvise(-1, [], MADV_COLD) == 0


def test_seccomp_reports_an_available_action():
    action = ctypes.c_uint32(SECCOMP_RET_ALLOW)
    pointer = ctypes.cast(ctypes.pointer(action), ctypes.c_void_p)
    assert linux.seccomp(SECCOMP_GET_ACTION_AVAIL, 0, pointer) == 0


def test_an_unknown_architecture_is_refused_by_name():
    with pytest.raises(linux.UnsupportedArchitecture, match="vax"):
        linux.arch("vax")


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler to read the headers")
def test_this_architectures_numbers_match_the_c_headers(tmp_path):
    """The table against <sys/syscall.h> and <linux/audit.h> of this machine."""
    source = tmp_path / "numbers.c"
    source.write_text(
        "#include <stdio.h>\n#include <sys/syscall.h>\n#include <linux/audit.h>\n"
        "#if defined(__x86_64__)\n#define ARCH AUDIT_ARCH_X86_64\n"
        "#elif defined(__aarch64__)\n#define ARCH AUDIT_ARCH_AARCH64\n"
        "#elif defined(__i386__)\n#define ARCH AUDIT_ARCH_I386\n"
        "#elif defined(__riscv)\n#define ARCH AUDIT_ARCH_RISCV64\n"
        "#elif defined(__arm__)\n#define ARCH AUDIT_ARCH_ARM\n#endif\n"
        "#if defined(SYS_setgroups32)\n#define SETGROUPS SYS_setgroups32\n"
        "#else\n#define SETGROUPS SYS_setgroups\n#endif\n"
        'int main(void) { printf("%u %d %d %d %d %d %d\\n", (unsigned)ARCH, SYS_seccomp,'
        " SYS_pidfd_send_signal, SYS_pidfd_open, SYS_pidfd_getfd, SYS_process_madvise,"
        " SETGROUPS); return 0; }\n"
    )
    binary = tmp_path / "numbers"
    build = subprocess.run(["cc", "-o", str(binary), str(source)], capture_output=True, text=True)
    if build.returncode != 0:
        pytest.skip(f"headers lack a number: {build.stderr.strip().splitlines()[-1]}")
    values = [int(v) for v in subprocess.check_output([str(binary)], text=True).split()]
    numbers = linux.arch(platform.machine())
    assert values == [
        numbers.audit_arch,
        numbers.seccomp,
        numbers.pidfd_send_signal,
        numbers.pidfd_open,
        numbers.pidfd_getfd,
        numbers.process_madvise,
        numbers.setgroups,
    ]


def _signal_through_aio(context: int, eventfd: int) -> int:
    """Submit a one-byte read of /dev/zero whose completion signals ``eventfd``; the
    completion's result."""
    zero = os.open("/dev/zero", os.O_RDONLY)
    buffer = ctypes.create_string_buffer(1)
    try:
        iocb = linux.Iocb(aio_lio_opcode=linux.IOCB_CMD_PREAD, aio_fildes=zero,
                          aio_buf=ctypes.addressof(buffer), aio_nbytes=1,
                          aio_flags=linux.IOCB_FLAG_RESFD, aio_resfd=eventfd)  # fmt: skip
        assert linux.io_submit(context, [iocb]) == 1
        [event] = linux.io_getevents(context, 4)
        return event.res
    finally:
        os.close(zero)


def test_an_aio_completion_signals_an_eventfd_without_blocking_and_saturates():
    """eventfd_signal() from user space: +1 per completion; on a blocking eventfd at 2^64 - 2,
    where write(2) of 1 would sleep, it goes to 2^64 - 1 and stays there."""
    context = linux.io_setup(4)
    eventfd = os.eventfd(0)  # blocking
    try:
        assert _signal_through_aio(context, eventfd) == 1
        assert os.eventfd_read(eventfd) == 1
        os.eventfd_write(eventfd, 2**64 - 2)
        for _ in range(3):
            assert _signal_through_aio(context, eventfd) == 1
        assert os.eventfd_read(eventfd) == 2**64 - 1
        assert linux.io_getevents(context, 4) == []  # nothing left to reap
    finally:
        os.close(eventfd)
        linux.io_destroy(context)


def test_every_architecture_has_aio_numbers():
    numbers = {
        (a.io_setup, a.io_destroy, a.io_submit, a.io_getevents) for a in linux.ARCHES.values()
    }
    assert all(len(set(n)) == 4 for n in numbers)
    assert linux.arch("x86_64").io_submit == 209 and linux.arch("aarch64").io_submit == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="needs CAP_SETUID and CAP_SETGID")
def test_take_fs_identity_changes_one_thread_only(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    seen: list[object] = []

    def as_nobody() -> None:
        linux.take_fs_identity(65534, 65534, [])
        try:
            os.stat(private / "x")
        except OSError as e:
            seen.append(e.errno)
        seen.append(os.getgroups())

    groups = os.getgroups()
    thread = threading.Thread(target=as_nobody)
    thread.start()
    thread.join(30)
    assert seen == [errno.EACCES, []]
    assert os.listdir(private) == [] and os.getgroups() == groups  # this thread is still root
