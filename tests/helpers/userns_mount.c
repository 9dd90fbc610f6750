/* From inside `fakecgfs run`: make a user namespace (whose creator has every capability in
 * it, CAP_SYS_ADMIN included, whatever its own sets), a mount and a cgroup namespace, then
 * mount the host's v1 memory hierarchy with mount(2), through the native system call or, on
 * x86_64, the i386 one (int 0x80: another seccomp_data.arch).  Prints one line per step:
 * "STEP ok" or "STEP ERRNO-NAME"; mounts nothing that outlives it (its namespaces die with
 * it) and writes nothing in what it mounts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static int step(const char *what, long result)
{
	if (result < 0)
		printf("%s %s\n", what, strerrorname_np(errno));
	else
		printf("%s ok\n", what);
	fflush(stdout);
	return result < 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n < 0 ? -1 : 0;
}

#ifdef __x86_64__
/* The i386 table through int 0x80: pointers must lie below 4 GiB (-no-pie keeps these so). */
static char target32[256];
static long i386_syscall(long nr, long a, long b, long c, long d, long e)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e)
			 : "memory");
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return ret;
}
#define I386_UNSHARE 310 /* asm/unistd_32.h */
#define I386_MOUNT 21
#endif

int main(int argc, char **argv)
{
	char map[64];
	int i386 = argc == 3 && strcmp(argv[2], "i386") == 0;

	if (argc < 2)
		return 2;
	snprintf(map, sizeof(map), "0 %d 1", (int)geteuid());
	long made;
#ifdef __x86_64__
	if (i386)
		made = i386_syscall(I386_UNSHARE, CLONE_NEWUSER, 0, 0, 0, 0);
	else
#endif
		made = unshare(CLONE_NEWUSER);
	if (step("unshare-user", made))
		return 0;
	write_file("/proc/self/setgroups", "deny");
	if (step("uid_map", write_file("/proc/self/uid_map", map)))
		return 0;
	if (step("unshare-mount-cgroup", unshare(CLONE_NEWNS | CLONE_NEWCGROUP)))
		return 0;
	long mounted;
#ifdef __x86_64__
	if (i386) {
		strncpy(target32, argv[1], sizeof(target32) - 1);
		mounted = i386_syscall(I386_MOUNT, (long)"none", (long)target32, (long)"cgroup", 0,
				       (long)"memory");
	} else
#endif
		mounted = mount("none", argv[1], "cgroup", 0, "memory");
	if (step("mount-cgroup", mounted))
		return 0;
	step("host-hierarchy", access(strcat(argv[1], "/memory.limit_in_bytes"), F_OK));
	return 0;
}
