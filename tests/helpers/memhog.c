/* memhog: allocates memory of one kind on command, for the real-process tests.
 *
 * One command per line on stdin, one reply per line on stdout ("ok ..." or "error ...").
 * Sizes are in pages.  Every region made is kept until "free".
 *
 *   anon N          private anonymous mmap, every page written
 *   shared N        MAP_SHARED of /dev/zero, every page written (shmem)
 *   memfd N         a memfd mapped MAP_SHARED, every page written (shmem)
 *   sysv N          a SysV segment, attached and written; replies "ok SHMID"
 *   shmdt           detach the latest SysV segment (it stays, its pages too)
 *   shmrm SHMID     IPC_RMID the segment
 *   file PATH N     map PATH MAP_SHARED read-only, read one byte per page (page cache mapped)
 *   mlock N         private anonymous mmap, written, then mlock()ed
 *   locked N        MAP_LOCKED | MAP_POPULATE private anonymous mmap
 *   grow N          like anon, but one page at a time (slowly running over a limit)
 *   fork N          fork a child that writes N anonymous pages, says "child PID" and pauses
 *   reap            SIGKILL and reap that child
 *   free            unmap every region (SysV segments are detached, not removed)
 *   pause           say "ok", then wait for a signal forever
 *   exit            exit 0
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_REGIONS 256

static struct { char *addr; size_t len; int sysv; } regions[MAX_REGIONS];
static int nregions;
static long page;
static pid_t child;

static void keep(void *addr, size_t len, int sysv)
{
	if (nregions < MAX_REGIONS) {
		regions[nregions].addr = addr;
		regions[nregions].len = len;
		regions[nregions].sysv = sysv;
		nregions++;
	}
}

static void touch(char *addr, long n)
{
	for (long i = 0; i < n; i++)
		addr[i * page] = 1;
}

static char *map(long n, int flags, int fd)
{
	char *addr = mmap(NULL, n * page, PROT_READ | PROT_WRITE, flags, fd, 0);
	return addr == MAP_FAILED ? NULL : addr;
}

static void reply(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

#include <stdarg.h>
static void reply(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

int main(void)
{
	char line[4096], arg[4096];
	long n;

	page = sysconf(_SC_PAGESIZE);
	setvbuf(stdin, NULL, _IONBF, 0);
	reply("ready %d", getpid());
	while (fgets(line, sizeof(line), stdin)) {
		char *addr = NULL;
		if (sscanf(line, "anon %ld", &n) == 1 || sscanf(line, "grow %ld", &n) == 1) {
			int slow = line[0] == 'g';
			if (!(addr = map(n, MAP_PRIVATE | MAP_ANONYMOUS, -1)))
				goto fail;
			keep(addr, n * page, 0);
			for (long i = 0; i < n; i++) {
				addr[i * page] = 1;
				if (slow)
					usleep(1000);
			}
			reply("ok");
		} else if (sscanf(line, "shared %ld", &n) == 1) {
			int fd = open("/dev/zero", O_RDWR);
			if (fd < 0 || !(addr = map(n, MAP_SHARED, fd)))
				goto fail;
			close(fd);
			keep(addr, n * page, 0);
			touch(addr, n);
			reply("ok");
		} else if (sscanf(line, "memfd %ld", &n) == 1) {
			int fd = memfd_create("memhog", 0);
			if (fd < 0 || ftruncate(fd, n * page) || !(addr = map(n, MAP_SHARED, fd)))
				goto fail;
			close(fd);
			keep(addr, n * page, 0);
			touch(addr, n);
			reply("ok");
		} else if (sscanf(line, "sysv %ld", &n) == 1) {
			int id = shmget(IPC_PRIVATE, n * page, IPC_CREAT | 0600);
			if (id < 0 || (addr = shmat(id, NULL, 0)) == (void *)-1)
				goto fail;
			keep(addr, n * page, 1);
			touch(addr, n);
			reply("ok %d", id);
		} else if (strncmp(line, "shmdt", 5) == 0) {
			for (int i = nregions - 1; i >= 0; i--)
				if (regions[i].sysv && regions[i].addr) {
					shmdt(regions[i].addr);
					regions[i].addr = NULL;
					break;
				}
			reply("ok");
		} else if (sscanf(line, "shmrm %ld", &n) == 1) {
			if (shmctl((int)n, IPC_RMID, NULL))
				goto fail;
			reply("ok");
		} else if (sscanf(line, "file %4095s %ld", arg, &n) == 2) {
			int fd = open(arg, O_RDONLY);
			volatile char sum = 0;
			if (fd < 0)
				goto fail;
			addr = mmap(NULL, n * page, PROT_READ, MAP_SHARED, fd, 0);
			close(fd);
			if (addr == MAP_FAILED)
				goto fail;
			keep(addr, n * page, 0);
			for (long i = 0; i < n; i++)
				sum += addr[i * page];
			reply("ok");
		} else if (sscanf(line, "mlock %ld", &n) == 1) {
			if (!(addr = map(n, MAP_PRIVATE | MAP_ANONYMOUS, -1)))
				goto fail;
			keep(addr, n * page, 0);
			touch(addr, n);
			if (mlock(addr, n * page))
				goto fail;
			reply("ok");
		} else if (sscanf(line, "locked %ld", &n) == 1) {
			if (!(addr = map(n, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED | MAP_POPULATE, -1)))
				goto fail;
			keep(addr, n * page, 0);
			reply("ok");
		} else if (sscanf(line, "fork %ld", &n) == 1) {
			int pipefd[2];
			if (pipe(pipefd))
				goto fail;
			child = fork();
			if (child < 0)
				goto fail;
			if (child == 0) {
				char *mem = map(n, MAP_PRIVATE | MAP_ANONYMOUS, -1);
				close(pipefd[0]);
				if (mem)
					touch(mem, n);
				if (write(pipefd[1], "x", 1) != 1)
					_exit(1);
				for (;;)
					pause();
			}
			close(pipefd[1]);
			if (read(pipefd[0], arg, 1) != 1)
				goto fail;
			close(pipefd[0]);
			reply("child %d", child);
		} else if (strncmp(line, "reap", 4) == 0) {
			if (child > 0) {
				kill(child, SIGKILL);
				waitpid(child, NULL, 0);
				child = 0;
			}
			reply("ok");
		} else if (strncmp(line, "free", 4) == 0) {
			for (int i = 0; i < nregions; i++) {
				if (!regions[i].addr)
					continue;
				if (regions[i].sysv)
					shmdt(regions[i].addr);
				else
					munmap(regions[i].addr, regions[i].len);
			}
			nregions = 0;
			reply("ok");
		} else if (strncmp(line, "pause", 5) == 0) {
			reply("ok");
			for (;;)
				pause();
		} else if (strncmp(line, "exit", 4) == 0) {
			reply("ok");
			return 0;
		} else {
			reply("error unknown command");
		}
		continue;
fail:
		reply("error %s", strerror(errno));
	}
	return 0;
}
