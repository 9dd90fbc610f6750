/* A member that keeps its mmap_lock from being taken: it joins GROUP (writes 0 to its
 * cgroup.procs), maps FILE (on a file system whose reads wait: one its owner serves), mlocks
 * fresh memory (so that its VmLck changes and the next sample reads its smaps), then a thread
 * reads its own memory at the mapping through /proc/self/mem (which holds the mmap_lock for
 * reading while the page is read from FILE's file system) and another mmap()s (a writer,
 * queued behind that reader, which new readers of the lock must wait behind).  It prints
 * "joined PID", waits for a line, then holds the lock, prints "held PID" and waits for its
 * stdin to close.  Nothing here allocates once it holds the
 * lock: malloc() could need the lock itself. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LOCKED_PAGES 16

static char *map;
static int go_reader[2], go_writer[2];

static void *reader(void *arg)
{
	char c;
	int fd = open("/proc/self/mem", O_RDONLY);
	(void)arg;
	read(go_reader[0], &c, 1);
	pread(fd, &c, 1, (off_t)(unsigned long)map);
	return NULL;
}

static void *writer(void *arg)
{
	char c;
	(void)arg;
	read(go_writer[0], &c, 1);
	for (;;) { /* until one of these waits behind the reader */
		void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(p, 4096);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	char line[64];
	pthread_t threads[2];
	long page = sysconf(_SC_PAGESIZE);

	if (argc != 3)
		return 2;
	int procs = open(argv[2], O_WRONLY);
	if (procs < 0 || write(procs, "0", 1) != 1) {
		perror("cgroup.procs");
		return 1;
	}
	int fd = open(argv[1], O_RDONLY);
	map = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
	if (fd < 0 || map == MAP_FAILED || pipe(go_reader) || pipe(go_writer)) {
		perror("setup");
		return 1;
	}
	pthread_create(&threads[0], NULL, reader, NULL);
	pthread_create(&threads[1], NULL, writer, NULL);
	int n = snprintf(line, sizeof(line), "joined %d\n", (int)getpid());
	write(1, line, n);
	if (read(0, line, sizeof(line)) <= 0) /* "go" */
		return 1;
	char *locked = mmap(NULL, LOCKED_PAGES * page, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (locked == MAP_FAILED || mlock(locked, LOCKED_PAGES * page)) {
		perror("mlock");
		return 1;
	}
	write(go_reader[1], "r", 1);
	write(go_writer[1], "w", 1);
	usleep(100000);
	n = snprintf(line, sizeof(line), "held %d\n", (int)getpid());
	write(1, line, n);
	while (read(0, line, sizeof(line)) > 0)
		;
	return 0;
}
