/* env_posix.c - the POSIX env: the only file in store/ that makes system calls. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "env.h"

/*
 * Handles are private structs; the public lsm_wfile/lsm_rfile/lsm_flock types stay incomplete and we
 * convert pointers back and forth, so no two envs ever define the same struct tag differently.
 */
struct posix_file {
	int fd;
	void *map;      /* readable files: the mapping made by posix_map, or NULL */
	size_t map_len;
};

static lsm_wfile *to_wfile(struct posix_file *p) { return (lsm_wfile *)(void *)p; }
static lsm_rfile *to_rfile(struct posix_file *p) { return (lsm_rfile *)(void *)p; }
static lsm_flock *to_flock(struct posix_file *p) { return (lsm_flock *)(void *)p; }
static struct posix_file *from_w(lsm_wfile *f) { return (struct posix_file *)(void *)f; }
static struct posix_file *from_r(lsm_rfile *f) { return (struct posix_file *)(void *)f; }
static struct posix_file *from_l(lsm_flock *f) { return (struct posix_file *)(void *)f; }

/* open(2), retried on EINTR (possible when the path is on a slow device such as a FUSE mount). */
static int posix_open(const char *path, int flags, mode_t mode)
{
	int fd;
	do
		fd = open(path, flags, mode);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

/*
 * close(2) is never retried: on Linux the descriptor is released even when close reports EINTR, and a
 * retry could close a descriptor another thread has just been given. EINTR is therefore not an error.
 */
static int posix_close_fd(int fd)
{
	if (close(fd) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

/* Wrap fd in a handle; closes fd if the allocation fails. */
static int posix_wrap(int fd, struct posix_file **out)
{
	struct posix_file *p = malloc(sizeof *p);
	if (!p) {
		(void)posix_close_fd(fd); /* keep the first error */
		return -ENOMEM;
	}
	p->fd = fd;
	p->map = NULL;
	p->map_len = 0;
	*out = p;
	return 0;
}

static int posix_new_writable(lsm_env *env, const char *path, lsm_wfile **out)
{
	(void)env;
	*out = NULL;
	int fd = posix_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return fd;
	struct posix_file *p;
	int rc = posix_wrap(fd, &p);
	if (rc == 0)
		*out = to_wfile(p);
	return rc;
}

/*
 * No user-space buffer: every byte is handed to the kernel before we return, so a process killed right
 * after an acknowledged append (kill -9, not power loss) still has it in the file. The WAL relies on it.
 */
static int posix_append(lsm_wfile *f, const void *data, size_t n)
{
	int fd = from_w(f)->fd;
	const char *p = data;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (w == 0)
			return -EIO; /* write(2) of n > 0 bytes never returns 0 for a regular file: do not spin */
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fdatasync: the data and the size, not the mtime; a failed sync is never retried (the kernel may have
 * dropped the dirty pages already), only an interrupted one. */
static int posix_sync(lsm_wfile *f)
{
	int fd = from_w(f)->fd;
	while (fdatasync(fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int posix_close_writable(lsm_wfile *f)
{
	struct posix_file *p = from_w(f);
	int rc = posix_close_fd(p->fd);
	free(p);
	return rc;
}

static int posix_open_readable(lsm_env *env, const char *path, lsm_rfile **out)
{
	(void)env;
	*out = NULL;
	int fd = posix_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	struct posix_file *p;
	int rc = posix_wrap(fd, &p);
	if (rc == 0)
		*out = to_rfile(p);
	return rc;
}

/* Loop because pread may return fewer bytes than asked (signals, Linux's ~2 GiB cap per call). */
static int64_t posix_pread(lsm_rfile *f, void *buf, size_t n, uint64_t off)
{
	int fd = from_r(f)->fd;
	if (n > (uint64_t)INT64_MAX || off > (uint64_t)INT64_MAX)
		return -EINVAL;
	char *p = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break; /* end of file */
		got += (size_t)r;
	}
	return (int64_t)got;
}

/* Tables are read through a shared read-only mapping: a block is then checksummed where the page cache
 * holds it, with no system call and no copy (LevelDB reads its tables the same way). */
static int posix_writeback(lsm_wfile *f, uint64_t off, uint64_t len)
{
	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return -EINVAL;
	return sync_file_range(from_w(f)->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE) ? -errno : 0;
}

static const void *posix_map(lsm_rfile *f, uint64_t size)
{
	struct posix_file *p = from_r(f);
	if (p->map || size == 0 || size > SIZE_MAX)
		return NULL;
	void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, p->fd, 0);
	if (m == MAP_FAILED)
		return NULL;
	p->map = m;
	p->map_len = (size_t)size;
	return m;
}

static int posix_close_readable(lsm_rfile *f)
{
	struct posix_file *p = from_r(f);
	if (p->map)
		munmap(p->map, p->map_len);
	int rc = posix_close_fd(p->fd);
	free(p);
	return rc;
}

static int posix_file_size(lsm_env *env, const char *path, uint64_t *size)
{
	(void)env;
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* stat rather than access(2): access checks with the real uid, which is not the one opening files. */
static int posix_exists(lsm_env *env, const char *path)
{
	(void)env;
	struct stat st;
	return stat(path, &st) < 0 ? -errno : 0;
}

static int posix_list(lsm_env *env, const char *dir, lsm_list_fn fn, void *arg)
{
	(void)env;
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int rc = 0;
	for (;;) {
		errno = 0; /* readdir returns NULL both at the end and on error; errno tells them apart */
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				rc = -errno;
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fn(arg, de->d_name))
			break;
	}
	if (closedir(d) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

static int posix_mkdir(lsm_env *env, const char *path, unsigned mode)
{
	(void)env;
	return mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int posix_unlink(lsm_env *env, const char *path)
{
	(void)env;
	return unlink(path) < 0 ? -errno : 0;
}

static int posix_rename(lsm_env *env, const char *from, const char *to)
{
	(void)env;
	return rename(from, to) < 0 ? -errno : 0;
}

static int posix_truncate(lsm_env *env, const char *path, uint64_t len)
{
	(void)env;
	if (len > (uint64_t)INT64_MAX)
		return -EINVAL;
	int rc;
	do
		rc = truncate(path, (off_t)len);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : 0;
}

static int posix_sync_dir(lsm_env *env, const char *dir)
{
	(void)env;
	int fd = posix_open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	int rc = 0;
	while (fsync(fd) < 0) {
		if (errno != EINTR) {
			rc = -errno;
			break;
		}
	}
	int crc = posix_close_fd(fd);
	return rc < 0 ? rc : crc;
}

/*
 * Locks are open-file-description locks (F_OFD_SETLK) where the system has them, plain F_SETLK
 * otherwise. Classic POSIX record locks belong to the process: a second lock from the same process
 * succeeds silently, closing ANY descriptor of the file (lock_held's probe, a read of LOCK) drops the
 * lock, and a fork()ed daemon does not inherit it. OFD locks belong to the open file, so a second open
 * in the same process gets EBUSY like another process would, and they conflict with classic locks held
 * by other programs. Both let the kernel release the lock when the holder dies.
 */
#ifdef F_OFD_SETLK
#define LSM_SETLK F_OFD_SETLK
#define LSM_GETLK F_OFD_GETLK
#else
#define LSM_SETLK F_SETLK
#define LSM_GETLK F_GETLK
#endif

static void whole_file(struct flock *fl, short type)
{
	memset(fl, 0, sizeof *fl); /* OFD locks require l_pid == 0 */
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = 0;
	fl->l_len = 0; /* to the end of the file, however long it grows */
}

static int posix_lock(lsm_env *env, const char *path, lsm_flock **out)
{
	(void)env;
	*out = NULL;
	int fd = posix_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return fd;
	struct flock fl;
	whole_file(&fl, F_WRLCK);
	if (fcntl(fd, LSM_SETLK, &fl) < 0) {
		/* POSIX allows either errno for "held by someone else" */
		int rc = (errno == EAGAIN || errno == EACCES) ? -EBUSY : -errno;
		(void)posix_close_fd(fd); /* keep the first error */
		return rc;
	}
	struct posix_file *p;
	int rc = posix_wrap(fd, &p); /* closing fd on failure also drops the lock */
	if (rc == 0)
		*out = to_flock(p);
	return rc;
}

static int posix_unlock(lsm_flock *l)
{
	struct posix_file *p = from_l(l);
	struct flock fl;
	whole_file(&fl, F_UNLCK);
	int rc = fcntl(p->fd, LSM_SETLK, &fl) < 0 ? -errno : 0;
	int crc = posix_close_fd(p->fd); /* the close releases the lock even if F_UNLCK failed */
	free(p);
	return rc < 0 ? rc : crc;
}

/* Read-only probe: never creates LOCK, so a read-only open leaves the store directory untouched. */
static int posix_lock_held(lsm_env *env, const char *path)
{
	(void)env;
	int fd = posix_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	struct flock fl;
	whole_file(&fl, F_WRLCK);
	int rc = fcntl(fd, LSM_GETLK, &fl) < 0 ? -errno : (fl.l_type != F_UNLCK);
	int crc = posix_close_fd(fd);
	return rc < 0 ? rc : (crc < 0 ? crc : rc);
}

/* The posix env owns nothing, so destroying it does nothing (a stray destroy is harmless). */
static void posix_destroy(lsm_env *env)
{
	(void)env;
}

/*
 * One static instance serves the whole process: the env holds no state (every handle carries its own
 * descriptor), so sharing it between threads and stores needs no locking and it never has to be freed.
 * It is const so that it lives in read-only memory and a stray write through the pointer faults at once;
 * the cast in lsm_env_posix() only exists because every env method takes a non-const lsm_env *.
 */
static const lsm_env posix_env = {
	.new_writable = posix_new_writable,
	.append = posix_append,
	.sync = posix_sync,
	.writeback = posix_writeback,
	.close_writable = posix_close_writable,
	.open_readable = posix_open_readable,
	.pread = posix_pread,
	.close_readable = posix_close_readable,
	.map = posix_map,
	.file_size = posix_file_size,
	.exists = posix_exists,
	.list = posix_list,
	.mkdir = posix_mkdir,
	.unlink = posix_unlink,
	.rename = posix_rename,
	.truncate = posix_truncate,
	.sync_dir = posix_sync_dir,
	.lock = posix_lock,
	.unlock = posix_unlock,
	.lock_held = posix_lock_held,
	.destroy = posix_destroy,
};

lsm_env *lsm_env_posix(void)
{
	return (lsm_env *)&posix_env;
}
