/*
 * fshelper.c - small POSIX checks the shell cannot express, run by the end-to-end tests on a mount.
 * Usage: fshelper CHECK DIR ; exit 0 = pass, 1 = fail (with a message on stderr).
 *   mmap        write through a shared mapping, msync, read back with read(2); map and read
 *   unlinked    an open file stays readable and writable after its last name is removed
 *   append      4 processes append fixed-size records with O_APPEND; no record lost or torn
 *   sparse      holes read as zeros; SEEK_DATA / SEEK_HOLE find the data; truncate zeroes the tail
 *   fallocate   fallocate extends, KEEP_SIZE does not, PUNCH_HOLE zeroes
 *   rename      RENAME_NOREPLACE and RENAME_EXCHANGE semantics, rename over files and empty dirs
 *   times       utimensat with nanoseconds, UTIME_NOW and UTIME_OMIT; mtime/ctime move on write
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *dir;

#define FAIL(...)                                                                                      \
	do {                                                                                           \
		fprintf(stderr, "fshelper: " __VA_ARGS__);                                              \
		fprintf(stderr, " (line %d, errno %s)\n", __LINE__, strerror(errno));                   \
		exit(1);                                                                               \
	} while (0)

static char *path(const char *name)
{
	static char buf[4][4096];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
	return buf[i];
}

static void check_mmap(void)
{
	int fd = open(path("mm"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 3 * 4096 + 100))
		FAIL("create");
	char *m = mmap(NULL, 3 * 4096 + 100, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		FAIL("mmap");
	for (int i = 0; i < 3 * 4096 + 100; i++)
		m[i] = (char)(i * 7 + 3);
	if (msync(m, 3 * 4096 + 100, MS_SYNC))
		FAIL("msync");
	munmap(m, 3 * 4096 + 100);
	close(fd);
	/* Drop the page cache copy, then read through the daemon. */
	fd = open(path("mm"), O_RDONLY);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	char buf[3 * 4096 + 100];
	if (pread(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf)
		FAIL("read back");
	for (int i = 0; i < (int)sizeof buf; i++)
		if (buf[i] != (char)(i * 7 + 3))
			FAIL("byte %d differs after mmap write", i);
	m = mmap(NULL, sizeof buf, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED || memcmp(m, buf, sizeof buf))
		FAIL("mmap read");
	munmap(m, sizeof buf);
	close(fd);
}

static void check_unlinked(void)
{
	int fd = open(path("ul"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "before", 6) != 6)
		FAIL("create");
	if (unlink(path("ul")))
		FAIL("unlink");
	if (access(path("ul"), F_OK) == 0)
		FAIL("name still there");
	if (pwrite(fd, "after", 5, 6) != 5)
		FAIL("write after unlink");
	char buf[16] = {0};
	if (pread(fd, buf, 11, 0) != 11 || memcmp(buf, "beforeafter", 11))
		FAIL("read after unlink: '%s'", buf);
	struct stat st;
	if (fstat(fd, &st) || st.st_nlink != 0 || st.st_size != 11)
		FAIL("fstat after unlink: nlink %lu size %lld", (unsigned long)st.st_nlink, (long long)st.st_size);
	close(fd);
}

static void check_append(void)
{
	const int procs = 4, recs = 500, len = 32;
	int fd = open(path("ap"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	close(fd);
	for (int p = 0; p < procs; p++) {
		if (fork() == 0) {
			int f = open(path("ap"), O_WRONLY | O_APPEND);
			char rec[64];
			for (int i = 0; i < recs; i++) {
				snprintf(rec, sizeof rec, "p%d r%05d %*s\n", p, i, len - 11, "x");
				if (write(f, rec, (size_t)len) != len)
					_exit(1);
			}
			close(f);
			_exit(0);
		}
	}
	for (int p = 0; p < procs; p++) {
		int st;
		wait(&st);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			FAIL("appender failed");
	}
	fd = open(path("ap"), O_RDONLY);
	char *buf = malloc((size_t)(procs * recs * len + 1));
	ssize_t n = read(fd, buf, (size_t)(procs * recs * len + 1));
	close(fd);
	if (n != procs * recs * len)
		FAIL("size %zd, want %d", n, procs * recs * len);
	int next[4] = {0};
	for (int i = 0; i < procs * recs; i++) {
		char *r = buf + i * len;
		int p, k;
		if (sscanf(r, "p%d r%d", &p, &k) != 2 || p < 0 || p >= procs || k != next[p] || r[len - 1] != '\n')
			FAIL("record %d is torn or out of order", i);
		next[p]++;
	}
	free(buf);
}

static void check_sparse(void)
{
	int fd = open(path("sp"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		FAIL("create");
	if (pwrite(fd, "A", 1, 0) != 1 || pwrite(fd, "B", 1, 10 * 4096 + 5) != 1)
		FAIL("write");
	char buf[4096];
	if (pread(fd, buf, sizeof buf, 5 * 4096) != (ssize_t)sizeof buf)
		FAIL("read hole");
	for (size_t i = 0; i < sizeof buf; i++)
		if (buf[i])
			FAIL("hole byte %zu is %d", i, buf[i]);
	/* Exact answers once the data reached the filesystem; a filesystem may also answer "all data"
	 * (what lsmfs does under writeback caching, where it cannot see dirty pages): never a hole
	 * over data. */
	off_t d = lseek(fd, 4096, SEEK_DATA);
	if (d != 10 * 4096 && d != 4096)
		FAIL("SEEK_DATA from 4096 gave %lld", (long long)d);
	off_t h = lseek(fd, 0, SEEK_HOLE);
	if (h != 4096 && h != 1 && h != 10 * 4096 + 6)
		FAIL("SEEK_HOLE from 0 gave %lld", (long long)h);
	if (fsync(fd))
		FAIL("fsync");
	d = lseek(fd, 4096, SEEK_DATA);
	if (d != 10 * 4096 && d != 4096)
		FAIL("SEEK_DATA after fsync gave %lld", (long long)d);
	if (lseek(fd, 10 * 4096 + 6, SEEK_DATA) != -1 || errno != ENXIO)
		FAIL("SEEK_DATA at EOF must fail with ENXIO");
	/* Truncate inside a block zeroes the rest of it when the file grows again. */
	if (pwrite(fd, "0123456789", 10, 100) != 10 || ftruncate(fd, 105) || ftruncate(fd, 200))
		FAIL("truncate");
	if (pread(fd, buf, 20, 100) != 20 || memcmp(buf, "01234", 5))
		FAIL("read after truncate");
	for (int i = 5; i < 20; i++)
		if (buf[i])
			FAIL("byte %d after truncate+extend is %d, want 0", 100 + i, buf[i]);
	struct stat st;
	if (fstat(fd, &st) || st.st_size != 200)
		FAIL("size %lld", (long long)st.st_size);
	close(fd);
}

static void check_fallocate(void)
{
	int fd = open(path("fa"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	struct stat st;
	if (fd < 0 || fallocate(fd, 0, 0, 100000))
		FAIL("fallocate");
	if (fstat(fd, &st) || st.st_size != 100000)
		FAIL("size after fallocate %lld", (long long)st.st_size);
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 300000) || fstat(fd, &st) || st.st_size != 100000)
		FAIL("KEEP_SIZE changed the size to %lld", (long long)st.st_size);
	char data[20000];
	memset(data, 'z', sizeof data);
	if (pwrite(fd, data, sizeof data, 0) != (ssize_t)sizeof data)
		FAIL("write");
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 10000))
		FAIL("punch");
	char buf[20000];
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (pread(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf)
		FAIL("read");
	for (int i = 0; i < 20000; i++) {
		char want = i >= 1000 && i < 11000 ? 0 : 'z';
		if (buf[i] != want)
			FAIL("byte %d is %d after punch, want %d", i, buf[i], want);
	}
	if (fstat(fd, &st) || st.st_size != 100000)
		FAIL("punch changed the size");
	close(fd);
}

static int rn(const char *a, const char *b, unsigned flags)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static void put(const char *name, const char *content)
{
	int fd = open(path(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t)strlen(content) || close(fd))
		FAIL("write %s", name);
}

static void expect_content(const char *name, const char *content)
{
	char buf[256] = {0};
	int fd = open(path(name), O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof buf - 1) < 0)
		FAIL("read %s", name);
	close(fd);
	if (strcmp(buf, content))
		FAIL("%s holds '%s', want '%s'", name, buf, content);
}

static void check_rename(void)
{
	put("r1", "one");
	put("r2", "two");
	if (rn(path("r1"), path("r2"), 1 /* RENAME_NOREPLACE */) == 0 || errno != EEXIST)
		FAIL("NOREPLACE over an existing file");
	if (rn(path("r1"), path("r2"), 2 /* RENAME_EXCHANGE */))
		FAIL("EXCHANGE");
	expect_content("r1", "two");
	expect_content("r2", "one");
	if (rename(path("r1"), path("r2")))
		FAIL("rename over file");
	expect_content("r2", "two");
	if (access(path("r1"), F_OK) == 0)
		FAIL("old name remains");
	if (mkdir(path("d1"), 0755) || mkdir(path("d2"), 0755) || mkdir(path("d2/sub"), 0755))
		FAIL("mkdir");
	if (rename(path("d1"), path("d2")) == 0 || (errno != ENOTEMPTY && errno != EEXIST))
		FAIL("rename over a non-empty dir");
	if (rmdir(path("d2/sub")) || rename(path("d1"), path("d2")))
		FAIL("rename over an empty dir");
	struct stat st;
	if (stat(path("d2"), &st) || !S_ISDIR(st.st_mode))
		FAIL("d2 after rename");
	if (rename(path("r2"), path("d2")) == 0 || errno != EISDIR)
		FAIL("file over dir");
	if (mkdir(path("d3"), 0755) || rename(path("d3"), path("d2/d3")))
		FAIL("move dir into dir");
	if (stat(path("d2"), &st) || st.st_nlink != 3)
		FAIL("parent nlink %lu after moving a dir in, want 3", (unsigned long)st.st_nlink);
	if (rename(path("d2"), path("d2/d3/x")) == 0 || errno != EINVAL)
		FAIL("dir into its own subtree");
	if (rn(path("r2"), path("d2"), 2))
		FAIL("exchange file and dir");
	if (stat(path("r2"), &st) || !S_ISDIR(st.st_mode) || stat(path("d2"), &st) || !S_ISREG(st.st_mode))
		FAIL("after exchange");
}

static void check_times(void)
{
	put("t", "x");
	struct timespec ts[2] = {{1000000000, 123456789}, {1200000000, 987654321}};
	if (utimensat(AT_FDCWD, path("t"), ts, 0))
		FAIL("utimensat");
	struct stat st;
	if (stat(path("t"), &st) || st.st_atim.tv_sec != 1000000000 || st.st_atim.tv_nsec != 123456789 ||
	    st.st_mtim.tv_sec != 1200000000 || st.st_mtim.tv_nsec != 987654321)
		FAIL("times not kept to the nanosecond");
	struct timespec omit[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
	if (utimensat(AT_FDCWD, path("t"), omit, 0) || stat(path("t"), &st))
		FAIL("utimensat 2");
	if (st.st_atim.tv_sec != 1000000000 || st.st_mtim.tv_sec < time(NULL) - 60)
		FAIL("UTIME_OMIT/UTIME_NOW");
	struct stat before = st;
	struct timespec d = {0, 20 * 1000 * 1000};
	nanosleep(&d, NULL);
	int fd = open(path("t"), O_WRONLY | O_APPEND);
	if (fd < 0 || write(fd, "y", 1) != 1 || close(fd))
		FAIL("append");
	if (stat(path("t"), &st) ||
	    (st.st_mtim.tv_sec == before.st_mtim.tv_sec && st.st_mtim.tv_nsec == before.st_mtim.tv_nsec))
		FAIL("mtime did not move on write");
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fshelper mmap|unlinked|append|sparse|fallocate|rename|times DIR\n");
		return 2;
	}
	dir = argv[2];
	const char *c = argv[1];
	if (!strcmp(c, "mmap"))
		check_mmap();
	else if (!strcmp(c, "unlinked"))
		check_unlinked();
	else if (!strcmp(c, "append"))
		check_append();
	else if (!strcmp(c, "sparse"))
		check_sparse();
	else if (!strcmp(c, "fallocate"))
		check_fallocate();
	else if (!strcmp(c, "rename"))
		check_rename();
	else if (!strcmp(c, "times"))
		check_times();
	else {
		fprintf(stderr, "fshelper: unknown check %s\n", c);
		return 2;
	}
	return 0;
}
