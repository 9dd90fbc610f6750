/* A root process one of whose threads runs as another user: the thread switches its own
 * credentials with the raw setresuid system call (glibc's wrapper would switch every thread,
 * as POSIX asks; file servers such as Samba switch one thread this way).  It prints
 * "LEADER TID" (the thread's ID) once switched, then waits until its stdin closes. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static uid_t uid;

static void *switched(void *arg)
{
	(void)arg;
	if (syscall(SYS_setresuid, uid, uid, uid) != 0) {
		perror("setresuid");
		exit(1);
	}
	printf("%d %d\n", (int)getpid(), (int)gettid());
	fflush(stdout);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t thread;
	char c;

	if (argc != 2)
		return 2;
	uid = (uid_t)atoi(argv[1]);
	if (pthread_create(&thread, NULL, switched, NULL) != 0)
		return 1;
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
