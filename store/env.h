/*
 * env.h - the store's only I/O boundary: every file operation of store/ goes through a struct lsm_env.
 *
 * Contract:
 *  - Every function returns 0 (or a byte count where stated) on success, a negative errno on failure.
 *    Nothing here prints, aborts or retries on EINTR/short writes visibly: append either writes all bytes
 *    or fails (a failed append may have written a prefix, like a real write(2) that hit ENOSPC).
 *  - Paths are plain C strings built by the caller ("dir/000123.sst"); an env never interprets them
 *    beyond splitting off the directory part (for directory sync and crash simulation).
 *  - An env and its files may be used from several threads at once; a single file handle is used by
 *    one thread at a time for appends, while preads on a readable file may run concurrently.
 *  - New files are created with mode 0600 and directories with the mode given (the store uses 0700):
 *    the raw store holds every byte of every file, so only its owner may read it.
 *
 * Three envs exist: env_posix.c (the only caller of the OS), env_mem.c (an in-memory file system for
 * fast unit tests) and env_fault.c (wraps another env to fail the Nth call, make short writes, and
 * simulate a power loss that drops what was never synced).
 */
#ifndef LSM_ENV_H
#define LSM_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "lsm.h"

typedef struct lsm_env lsm_env;
typedef struct lsm_wfile lsm_wfile;   /* append-only writable file */
typedef struct lsm_rfile lsm_rfile;   /* random-access readable file */
typedef struct lsm_flock lsm_flock;   /* an advisory whole-store lock */

/* Called once per directory entry by list(); return non-zero to stop early (list then returns 0). */
typedef int (*lsm_list_fn)(void *arg, const char *name);

struct lsm_env {
	/* Create (or truncate) path for appending. */
	int (*new_writable)(lsm_env *env, const char *path, lsm_wfile **out);
	/* Append all n bytes; a failure may leave a prefix written. */
	int (*append)(lsm_wfile *f, const void *data, size_t n);
	/* Make the file's bytes durable (fdatasync). */
	int (*sync)(lsm_wfile *f);
	/* Optional (NULL: not offered). Start writing [off, off + len) of the file to the device and
	 * return without waiting: a hint that makes a later sync cheaper, with no durability promise. */
	int (*writeback)(lsm_wfile *f, uint64_t off, uint64_t len);
	/* Close; does not sync. Always frees f, even when it reports an error. */
	int (*close_writable)(lsm_wfile *f);

	int (*open_readable)(lsm_env *env, const char *path, lsm_rfile **out);
	/* Read up to n bytes at off; returns the count read (short only at end of file) or -errno. */
	int64_t (*pread)(lsm_rfile *f, void *buf, size_t n, uint64_t off);
	int (*close_readable)(lsm_rfile *f);
	/* Optional (NULL: not offered). Map the first size bytes of a readable file read-only and return
	 * the address, or NULL when the env cannot (the caller then reads with pread). The mapping lives
	 * until close_readable. Only for files that never change while open (finished tables): a file
	 * cut short under a mapping faults (SIGBUS) instead of returning an error. */
	const void *(*map)(lsm_rfile *f, uint64_t size);

	/* Size of the file at path. */
	int (*file_size)(lsm_env *env, const char *path, uint64_t *size);
	/* 0 if path exists, -ENOENT if not. */
	int (*exists)(lsm_env *env, const char *path);
	/* Call fn for each name in dir (not "." or ".."), in no particular order. */
	int (*list)(lsm_env *env, const char *dir, lsm_list_fn fn, void *arg);
	int (*mkdir)(lsm_env *env, const char *path, unsigned mode); /* -EEXIST if it exists */
	int (*unlink)(lsm_env *env, const char *path);
	/* Atomic replace of to by from (rename(2)). */
	int (*rename)(lsm_env *env, const char *from, const char *to);
	/* Cut path to len bytes (used by crash simulation and repair). */
	int (*truncate)(lsm_env *env, const char *path, uint64_t len);
	/* Make the directory's entries (creates, renames, unlinks) durable (fsync of the directory). */
	int (*sync_dir)(lsm_env *env, const char *dir);

	/* Take an exclusive lock on path (created if missing): -EBUSY if anyone else holds it, another
	 * process or another open in this process (posix: an OFD lock, so closing some other descriptor
	 * of the file never drops it). */
	int (*lock)(lsm_env *env, const char *path, lsm_flock **out);
	int (*unlock)(lsm_flock *l);
	/* 1 if some other holder has the lock on path, 0 if free (or no such file), <0 on error.
	 * Used by read-only opens (lsmfsck) to say that a live daemon may be ahead of what they read. */
	int (*lock_held)(lsm_env *env, const char *path);

	/* Release the env itself (not for the posix default env). Every file and lock must be closed. */
	void (*destroy)(lsm_env *env);
};

/* lsm_env_posix() (declared in lsm.h) is the process-wide POSIX env; stateless, never destroyed. */

/* An in-memory env: files live in the env until it is destroyed. Thread-safe. */
lsm_env *lsm_env_mem_new(void);

/* Convenience wrappers shared by all users of an env. */
/* Read the whole file at path into a malloc'd buffer (*out, *len; a NUL follows the data); caller
 * frees. */
int lsm_env_read_all(lsm_env *env, const char *path, char **out, size_t *len);
/* Write data to path (truncating), sync it, close it. */
int lsm_env_write_all(lsm_env *env, const char *path, const void *data, size_t len, int do_sync);

#endif
