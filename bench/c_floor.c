/*
 * The C floor of the FUSE benchmarks: the smallest libfuse2 high-level filesystem that serves
 * what fakecgfs's root memory.limit_in_bytes serves.
 *
 *     c_floor MOUNTPOINT -f [-s] -o OPTIONS
 *
 * It serves a 0-size file "value" ("9223372036854771712\n", an unlimited limit) at its root and
 * again in a directory "g", so that every path of the benchmarks has a floor path of the same
 * depth, as bench/baseline_fs.py does.  A write is parsed as a number, as a control file would,
 * and stored ("%llu\n"); a read serves the file's current text.  scripts/bench passes the mount
 * options fakecgfs mounts with (direct_io, the attribute and entry timeouts, big_writes...), so
 * that the kernel sends both the same requests.  -s: libfuse's single-threaded loop; without it,
 * libfuse's multithreaded one.
 *
 * Like fakecgfs it registers no release, flush or access (libfuse and the kernel answer them),
 * and asks for no path on descriptor operations (flag_nopath): this is the least work a
 * high-level libfuse2 filesystem can do per request.
 */

#define FUSE_USE_VERSION 26

#include <errno.h>
#include <fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define VALUE "9223372036854771712\n"
#define TEXT_MAX 32
#define NFILES 2

struct file {
	const char *path;
	char text[TEXT_MAX];
	size_t len;
};

static struct file files[NFILES] = {
	{ "/value", VALUE, sizeof(VALUE) - 1 },
	{ "/g/value", VALUE, sizeof(VALUE) - 1 },
};
static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t born;

static struct file *file_of(const char *path)
{
	for (int i = 0; i < NFILES; i++)
		if (strcmp(files[i].path, path) == 0)
			return &files[i];
	return NULL;
}

static int is_dir(const char *path)
{
	return strcmp(path, "/") == 0 || strcmp(path, "/g") == 0;
}

static int floor_getattr(const char *path, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_atime = st->st_mtime = st->st_ctime = born;
	if (is_dir(path)) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (!file_of(path))
		return -ENOENT;
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	return 0;
}

static int floor_fgetattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_atime = st->st_mtime = st->st_ctime = born;
	return 0;
}

static int floor_open(const char *path, struct fuse_file_info *fi)
{
	struct file *f = file_of(path);

	if (!f)
		return is_dir(path) ? -EISDIR : -ENOENT;
	fi->fh = (uint64_t)(f - files);
	return 0;
}

static int floor_read(const char *path, char *buf, size_t size, off_t offset,
		      struct fuse_file_info *fi)
{
	struct file *f = &files[fi->fh];
	size_t n = 0;

	(void)path;
	pthread_mutex_lock(&files_lock);
	if ((size_t)offset < f->len) {
		n = f->len - offset;
		if (n > size)
			n = size;
		memcpy(buf, f->text + offset, n);
	}
	pthread_mutex_unlock(&files_lock);
	return (int)n;
}

static int floor_write(const char *path, const char *buf, size_t size, off_t offset,
		       struct fuse_file_info *fi)
{
	struct file *f = &files[fi->fh];
	char number[TEXT_MAX];
	unsigned long long value;
	char *end;

	(void)path;
	(void)offset;
	if (size >= sizeof(number))
		return -EINVAL;
	memcpy(number, buf, size);
	number[size] = '\0';
	errno = 0;
	value = strtoull(number, &end, 10);
	if (errno || end == number || (*end && *end != '\n'))
		return -EINVAL;
	pthread_mutex_lock(&files_lock);
	f->len = (size_t)snprintf(f->text, sizeof(f->text), "%llu\n", value);
	pthread_mutex_unlock(&files_lock);
	return (int)size;
}

static int floor_truncate(const char *path, off_t length)
{
	(void)length;
	return file_of(path) ? 0 : -ENOENT;
}

static const struct fuse_operations floor_operations = {
	.getattr = floor_getattr,
	.fgetattr = floor_fgetattr,
	.open = floor_open,
	.read = floor_read,
	.write = floor_write,
	.truncate = floor_truncate,
	.flag_nullpath_ok = 1,
	.flag_nopath = 1,
};

int main(int argc, char *argv[])
{
	born = time(NULL);
	return fuse_main(argc, argv, &floor_operations, NULL);
}
