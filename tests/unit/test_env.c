/* test_env.c - the three envs: shared behaviour on posix, mem and fault-wrapped envs; faults; crashes. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "env.h"
#include "env_fault.h"
#include "testutil.h"

/* ---------------------------------------------------------------- fixtures and helpers */

enum { ENV_POSIX, ENV_MEM, ENV_FAULT_MEM, ENV_FAULT_POSIX, ENV_KINDS };

struct fx {
	lsm_env *env;   /* the env under test */
	lsm_env *base;  /* what a fault env wraps (NULL otherwise) */
	int posix;      /* root is a real temp dir */
	char root[128];
};

static void fx_open(struct fx *f, int kind)
{
	memset(f, 0, sizeof *f);
	f->posix = kind == ENV_POSIX || kind == ENV_FAULT_POSIX;
	lsm_env *e;
	if (f->posix) {
		e = lsm_env_posix();
		test_tmpdir(f->root, sizeof f->root);
	} else {
		e = lsm_env_mem_new();
		ck_assert_ptr_nonnull(e);
		snprintf(f->root, sizeof f->root, "/memroot");
		ck_assert_int_eq(e->mkdir(e, f->root, 0700), 0);
	}
	if (kind == ENV_FAULT_MEM || kind == ENV_FAULT_POSIX) {
		f->base = e;
		f->env = lsm_fault_env_new(e);
		ck_assert_ptr_nonnull(f->env);
	} else {
		f->env = e;
	}
}

static void fx_close(struct fx *f)
{
	lsm_env *e = f->base ? f->base : f->env;
	if (f->base)
		f->env->destroy(f->env);
	if (f->posix)
		test_rmrf(f->root);
	else
		e->destroy(e);
}

/* root/name into a per-call static slot (four slots: enough for one statement's arguments). */
static const char *P(const struct fx *f, const char *name)
{
	static char slots[4][256];
	static int next;
	char *s = slots[next++ & 3];
	snprintf(s, sizeof slots[0], "%s/%s", f->root, name);
	return s;
}

static void put(lsm_env *env, const char *path, const char *s, int do_sync)
{
	ck_assert_int_eq(lsm_env_write_all(env, path, s, strlen(s), do_sync), 0);
}

/* The file holds exactly the len bytes of want. */
static void expect_bytes(lsm_env *env, const char *path, const void *want, size_t len)
{
	char *got;
	size_t n;
	ck_assert_int_eq(lsm_env_read_all(env, path, &got, &n), 0);
	ck_assert_uint_eq(n, len);
	ck_assert_mem_eq(got, want, len);
	ck_assert_int_eq(got[n], '\0');
	free(got);
}

static void expect(lsm_env *env, const char *path, const char *s)
{
	expect_bytes(env, path, s, strlen(s));
}

static void expect_absent(lsm_env *env, const char *path)
{
	ck_assert_int_eq(env->exists(env, path), -ENOENT);
}

/* list() into a sorted, comma-separated string. */
struct names {
	char v[16][64];
	int n, stop_after;
};

static int collect(void *arg, const char *name)
{
	struct names *ns = arg;
	ck_assert_int_lt(ns->n, 16);
	snprintf(ns->v[ns->n++], sizeof ns->v[0], "%s", name);
	return ns->stop_after && ns->n >= ns->stop_after;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void expect_list(lsm_env *env, const char *dir, const char *want)
{
	struct names ns = {.n = 0};
	ck_assert_int_eq(env->list(env, dir, collect, &ns), 0);
	qsort(ns.v, (size_t)ns.n, sizeof ns.v[0], cmp_name);
	char joined[1024] = "";
	for (int i = 0; i < ns.n; i++) {
		if (i)
			strcat(joined, ",");
		strcat(joined, ns.v[i]);
	}
	ck_assert_str_eq(joined, want);
}

/* ---------------------------------------------------------------- behaviour shared by every env */

START_TEST(test_write_read)
{
	struct fx f;
	fx_open(&f, _i);
	lsm_env *e = f.env;
	put(e, P(&f, "a"), "hello world", 1);
	expect(e, P(&f, "a"), "hello world");
	uint64_t size = 0;
	ck_assert_int_eq(e->file_size(e, P(&f, "a"), &size), 0);
	ck_assert_uint_eq(size, 11);
	ck_assert_int_eq(e->exists(e, P(&f, "a")), 0);
	ck_assert_int_eq(e->exists(e, f.root), 0);
	expect_absent(e, P(&f, "missing"));
	ck_assert_int_eq(e->file_size(e, P(&f, "missing"), &size), -ENOENT);
	lsm_rfile *r = (lsm_rfile *)&size;
	ck_assert_int_eq(e->open_readable(e, P(&f, "missing"), &r), -ENOENT);
	ck_assert_ptr_null(r);
	char *buf = (char *)&size;
	size_t len = 7;
	ck_assert_int_eq(lsm_env_read_all(e, P(&f, "missing"), &buf, &len), -ENOENT);
	ck_assert_ptr_null(buf);

	put(e, P(&f, "a"), "hi", 0); /* rewriting truncates */
	expect(e, P(&f, "a"), "hi");
	put(e, P(&f, "empty"), "", 1);
	expect(e, P(&f, "empty"), "");
	fx_close(&f);
}
END_TEST

START_TEST(test_append_pread)
{
	struct fx f;
	fx_open(&f, _i);
	lsm_env *e = f.env;
	lsm_wfile *w;
	ck_assert_int_eq(e->new_writable(e, P(&f, "log"), &w), 0);
	ck_assert_int_eq(e->append(w, "abc", 3), 0);
	ck_assert_int_eq(e->append(w, "", 0), 0);
	ck_assert_int_eq(e->append(w, "defgh", 5), 0);
	ck_assert_int_eq(e->sync(w), 0);
	uint64_t size = 0;
	ck_assert_int_eq(e->file_size(e, P(&f, "log"), &size), 0); /* appends are visible before close */
	ck_assert_uint_eq(size, 8);
	ck_assert_int_eq(e->close_writable(w), 0);

	lsm_rfile *r;
	char buf[128];
	ck_assert_int_eq(e->open_readable(e, P(&f, "log"), &r), 0);
	ck_assert_int_eq(e->pread(r, buf, 3, 2), 3);
	ck_assert_mem_eq(buf, "cde", 3);
	ck_assert_int_eq(e->pread(r, buf, sizeof buf, 5), 3); /* short only at the end */
	ck_assert_mem_eq(buf, "fgh", 3);
	ck_assert_int_eq(e->pread(r, buf, sizeof buf, 8), 0);
	ck_assert_int_eq(e->pread(r, buf, sizeof buf, 1000), 0);
	ck_assert_int_eq(e->close_readable(r), 0);

	/* a large append and read back, byte for byte */
	size_t big = 300000;
	char *data = malloc(big);
	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)(i * 7 + i / 251);
	ck_assert_int_eq(lsm_env_write_all(e, P(&f, "big"), data, big, 1), 0);
	expect_bytes(e, P(&f, "big"), data, big);
	free(data);
	fx_close(&f);
}
END_TEST

START_TEST(test_dirs_list)
{
	struct fx f;
	fx_open(&f, _i);
	lsm_env *e = f.env;
	ck_assert_int_eq(e->mkdir(e, P(&f, "sub"), 0700), 0);
	ck_assert_int_eq(e->mkdir(e, P(&f, "sub"), 0700), -EEXIST);
	put(e, P(&f, "a"), "1", 0);
	put(e, P(&f, "b"), "2", 0);
	put(e, P(&f, "sub/c"), "3", 0);
	expect_list(e, f.root, "a,b,sub");
	expect_list(e, P(&f, "sub"), "c");

	struct names ns = {.stop_after = 1};
	ck_assert_int_eq(e->list(e, f.root, collect, &ns), 0); /* stopping early is not an error */
	ck_assert_int_eq(ns.n, 1);
	ns.n = 0;
	ck_assert_int_eq(e->list(e, P(&f, "nodir"), collect, &ns), -ENOENT);
	ck_assert_int_eq(ns.n, 0);

	lsm_wfile *w = (lsm_wfile *)&ns;
	ck_assert_int_eq(e->new_writable(e, P(&f, "nodir/x"), &w), -ENOENT);
	ck_assert_ptr_null(w);
	ck_assert_int_eq(e->sync_dir(e, f.root), 0);
	ck_assert_int_eq(e->sync_dir(e, P(&f, "sub")), 0);
	ck_assert_int_eq(e->sync_dir(e, P(&f, "nodir")), -ENOENT);
	fx_close(&f);
}
END_TEST

START_TEST(test_rename_unlink)
{
	struct fx f;
	fx_open(&f, _i);
	lsm_env *e = f.env;
	put(e, P(&f, "a"), "AAA", 0);
	put(e, P(&f, "b"), "BB", 0);
	ck_assert_int_eq(e->rename(e, P(&f, "a"), P(&f, "b")), 0);
	expect(e, P(&f, "b"), "AAA");
	expect_absent(e, P(&f, "a"));
	ck_assert_int_eq(e->rename(e, P(&f, "a"), P(&f, "c")), -ENOENT);
	ck_assert_int_eq(e->rename(e, P(&f, "b"), P(&f, "nodir/b")), -ENOENT);
	ck_assert_int_eq(e->rename(e, P(&f, "b"), P(&f, "b")), 0);
	expect(e, P(&f, "b"), "AAA");
	ck_assert_int_eq(e->rename(e, P(&f, "b"), P(&f, "c")), 0); /* to a free name */
	expect(e, P(&f, "c"), "AAA");
	ck_assert_int_eq(e->unlink(e, P(&f, "c")), 0);
	expect_absent(e, P(&f, "c"));
	ck_assert_int_eq(e->unlink(e, P(&f, "c")), -ENOENT);
	expect_list(e, f.root, "");
	fx_close(&f);
}
END_TEST

START_TEST(test_truncate)
{
	struct fx f;
	fx_open(&f, _i);
	lsm_env *e = f.env;
	put(e, P(&f, "t"), "0123456789", 1);
	ck_assert_int_eq(e->truncate(e, P(&f, "t"), 4), 0);
	expect(e, P(&f, "t"), "0123");
	ck_assert_int_eq(e->truncate(e, P(&f, "t"), 6), 0);
	expect_bytes(e, P(&f, "t"), "0123\0\0", 6);
	ck_assert_int_eq(e->truncate(e, P(&f, "t"), 0), 0);
	expect(e, P(&f, "t"), "");
	ck_assert_int_eq(e->truncate(e, P(&f, "missing"), 0), -ENOENT);
	fx_close(&f);
}
END_TEST

START_TEST(test_lock)
{
	struct fx f;
	fx_open(&f, _i);
	lsm_env *e = f.env;
	const char *lk = P(&f, "LOCK");
	lsm_flock *l1, *l2 = (lsm_flock *)&f;
	ck_assert_int_eq(e->lock_held(e, lk), 0); /* no such file */
	ck_assert_int_eq(e->lock(e, lk, &l1), 0);
	ck_assert_int_eq(e->exists(e, lk), 0);    /* created */
	ck_assert_int_eq(e->lock(e, lk, &l2), -EBUSY);
	ck_assert_ptr_null(l2);
	ck_assert_int_eq(e->lock_held(e, lk), 1);
	ck_assert_int_eq(e->unlock(l1), 0);
	ck_assert_int_eq(e->lock_held(e, lk), 0);
	ck_assert_int_eq(e->lock(e, lk, &l2), 0);
	ck_assert_int_eq(e->lock_held(e, lk), 1);
	ck_assert_int_eq(e->unlock(l2), 0);
	ck_assert_int_eq(e->lock(e, P(&f, "nodir/LOCK"), &l1), -ENOENT);
	fx_close(&f);
}
END_TEST

/* As on POSIX, an open handle keeps its file after unlink or rename-over. */
START_TEST(test_open_handle_survives)
{
	struct fx f;
	fx_open(&f, _i);
	lsm_env *e = f.env;
	char buf[16];
	lsm_rfile *r;
	put(e, P(&f, "a"), "data", 0);
	ck_assert_int_eq(e->open_readable(e, P(&f, "a"), &r), 0);
	ck_assert_int_eq(e->unlink(e, P(&f, "a")), 0);
	ck_assert_int_eq(e->pread(r, buf, sizeof buf, 0), 4);
	ck_assert_mem_eq(buf, "data", 4);
	ck_assert_int_eq(e->close_readable(r), 0);

	put(e, P(&f, "old"), "old!", 0);
	put(e, P(&f, "new"), "new", 0);
	ck_assert_int_eq(e->open_readable(e, P(&f, "old"), &r), 0);
	ck_assert_int_eq(e->rename(e, P(&f, "new"), P(&f, "old")), 0);
	ck_assert_int_eq(e->pread(r, buf, sizeof buf, 0), 4);
	ck_assert_mem_eq(buf, "old!", 4);
	ck_assert_int_eq(e->close_readable(r), 0);
	expect(e, P(&f, "old"), "new");

	lsm_wfile *w;
	ck_assert_int_eq(e->new_writable(e, P(&f, "w"), &w), 0);
	ck_assert_int_eq(e->append(w, "x", 1), 0);
	ck_assert_int_eq(e->unlink(e, P(&f, "w")), 0);
	ck_assert_int_eq(e->append(w, "y", 1), 0);
	ck_assert_int_eq(e->sync(w), 0);
	ck_assert_int_eq(e->close_writable(w), 0);
	expect_absent(e, P(&f, "w"));
	fx_close(&f);
}
END_TEST

/* ---------------------------------------------------------------- posix only */

START_TEST(test_posix_modes)
{
	struct fx f;
	fx_open(&f, ENV_POSIX);
	lsm_env *e = f.env;
	ck_assert_ptr_eq(lsm_env_posix(), e); /* one process-wide instance */
	mode_t old = umask(022);
	struct stat st;
	put(e, P(&f, "f"), "x", 0);
	ck_assert_int_eq(stat(P(&f, "f"), &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(e->mkdir(e, P(&f, "d"), 0700), 0);
	ck_assert_int_eq(stat(P(&f, "d"), &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	lsm_flock *l;
	ck_assert_int_eq(e->lock(e, P(&f, "LOCK"), &l), 0);
	ck_assert_int_eq(stat(P(&f, "LOCK"), &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(e->unlock(l), 0);
	umask(old);
	e->destroy(e); /* a no-op for the posix env */
	fx_close(&f);
}
END_TEST

/* Run fn in a child process; its exit status. */
static int in_child(int (*fn)(const char *), const char *path)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fn(path));
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* 0 if the child saw the lock held by someone else and could not take it. */
static int child_sees_busy(const char *path)
{
	lsm_env *e = lsm_env_posix();
	lsm_flock *l;
	if (e->lock_held(e, path) != 1)
		return 1;
	return e->lock(e, path, &l) == -EBUSY ? 0 : 2;
}

static int child_takes_lock(const char *path)
{
	lsm_env *e = lsm_env_posix();
	lsm_flock *l;
	if (e->lock_held(e, path) != 0 || e->lock(e, path, &l) != 0)
		return 1;
	return e->unlock(l) == 0 ? 0 : 2;
}

START_TEST(test_posix_lock_other_process)
{
	struct fx f;
	fx_open(&f, ENV_POSIX);
	lsm_env *e = f.env;
	char lk[256];
	snprintf(lk, sizeof lk, "%s", P(&f, "LOCK"));
	lsm_flock *l;
	ck_assert_int_eq(e->lock(e, lk, &l), 0);
	ck_assert_int_eq(in_child(child_sees_busy, lk), 0);
	/* reading LOCK through another descriptor must not drop the lock (classic fcntl locks would) */
	put(e, P(&f, "other"), "x", 0);
	char *buf;
	size_t len;
	ck_assert_int_eq(lsm_env_read_all(e, lk, &buf, &len), 0);
	free(buf);
	ck_assert_int_eq(in_child(child_sees_busy, lk), 0);
	ck_assert_int_eq(e->unlock(l), 0);
	ck_assert_int_eq(in_child(child_takes_lock, lk), 0);
	fx_close(&f);
}
END_TEST

/* ---------------------------------------------------------------- mem only */

struct writer_arg {
	lsm_env *env;
	char path[64];
	char tag;
};

static void *writer(void *p)
{
	struct writer_arg *a = p;
	lsm_wfile *w;
	if (a->env->new_writable(a->env, a->path, &w))
		return (void *)1;
	char rec[10];
	memset(rec, a->tag, sizeof rec);
	for (int i = 0; i < 2000; i++)
		if (a->env->append(w, rec, sizeof rec))
			return (void *)2;
	return a->env->close_writable(w) ? (void *)3 : NULL;
}

START_TEST(test_mem_threads)
{
	lsm_env *e = lsm_env_mem_new();
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->mkdir(e, "/t", 0700), 0);
	enum { N = 4 };
	pthread_t th[N];
	struct writer_arg args[N];
	for (int i = 0; i < N; i++) {
		args[i].env = e;
		args[i].tag = (char)('a' + i);
		snprintf(args[i].path, sizeof args[i].path, "/t/f%d", i);
		ck_assert_int_eq(pthread_create(&th[i], NULL, writer, &args[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		void *rv;
		ck_assert_int_eq(pthread_join(th[i], &rv), 0);
		ck_assert_ptr_null(rv);
	}
	char *want = malloc(20000);
	ck_assert_ptr_nonnull(want);
	for (int i = 0; i < N; i++) {
		memset(want, 'a' + i, 20000);
		expect_bytes(e, args[i].path, want, 20000);
	}
	free(want);
	expect_list(e, "/t", "f0,f1,f2,f3");
	e->destroy(e);
}
END_TEST

/* Relative and root names, trailing slashes, and what a directory is not. */
START_TEST(test_mem_paths)
{
	lsm_env *e = lsm_env_mem_new();
	ck_assert_ptr_nonnull(e);
	put(e, "rel", "r", 0);
	put(e, "/abs", "a", 0);
	ck_assert_int_eq(e->mkdir(e, "d/", 0700), 0);
	ck_assert_int_eq(e->exists(e, "d"), 0);
	put(e, "d/x", "x", 0);
	expect_list(e, ".", "d,rel");
	expect_list(e, "", "d,rel");
	expect_list(e, "/", "abs");
	expect_list(e, "d/", "x");
	lsm_wfile *w;
	ck_assert_int_eq(e->new_writable(e, "d", &w), -EISDIR);
	ck_assert_int_eq(e->new_writable(e, "rel/y", &w), -ENOTDIR);
	ck_assert_int_eq(e->unlink(e, "d"), -EISDIR);
	ck_assert_int_eq(e->mkdir(e, "rel", 0700), -EEXIST);
	ck_assert_int_eq(e->list(e, "rel", collect, NULL), -ENOTDIR);
	ck_assert_int_eq(e->sync_dir(e, "."), 0);
	e->destroy(e); /* files still present: freed here */
}
END_TEST

/* ---------------------------------------------------------------- fault env */

/* A fault env over a fresh mem env with directory /db. */
struct ffx {
	lsm_env *base, *env;
};

static void ffx_open(struct ffx *f)
{
	f->base = lsm_env_mem_new();
	ck_assert_ptr_nonnull(f->base);
	ck_assert_int_eq(f->base->mkdir(f->base, "/db", 0700), 0);
	f->env = lsm_fault_env_new(f->base);
	ck_assert_ptr_nonnull(f->env);
}

static void ffx_close(struct ffx *f)
{
	f->env->destroy(f->env);
	f->base->destroy(f->base);
}

/* One call of the given kind, numbered i (each call uses fresh names so it can succeed). */
static int op_of_kind(struct ffx *f, enum lsm_fault_kind kind, lsm_wfile *w, int i)
{
	lsm_env *e = f->env;
	char a[64], b[64];
	switch (kind) {
	case LSM_FAULT_ALL:
		return e->exists(e, "/db");
	case LSM_FAULT_WRITE:
		return e->append(w, "xy", 2);
	case LSM_FAULT_SYNC:
		return e->sync(w);
	case LSM_FAULT_RENAME:
		snprintf(a, sizeof a, "/db/ren%d", i);
		snprintf(b, sizeof b, "/db/ren%d.done", i);
		put(f->base, a, "r", 0); /* through the base: not counted */
		return e->rename(e, a, b);
	case LSM_FAULT_META:
		snprintf(a, sizeof a, "/db/dir%d", i);
		return e->mkdir(e, a, 0700);
	}
	return -EINVAL;
}

START_TEST(test_fault_fail_nth_each_kind)
{
	static const enum lsm_fault_kind kinds[] = {LSM_FAULT_ALL, LSM_FAULT_WRITE, LSM_FAULT_SYNC,
						    LSM_FAULT_RENAME, LSM_FAULT_META};
	static const int errs[] = {EIO, ENOSPC};
	int seq = 0;
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		for (size_t j = 0; j < 2; j++) {
			struct ffx f;
			ffx_open(&f);
			lsm_env *e = f.env;
			lsm_wfile *w;
			ck_assert_int_eq(e->new_writable(e, "/db/w", &w), 0);
			uint64_t calls = lsm_fault_calls(e);
			lsm_fault_set_fail(e, 2, errs[j], 0, 0, kinds[k]);
			ck_assert_int_eq(op_of_kind(&f, kinds[k], w, seq++), 0);
			if (kinds[k] != LSM_FAULT_ALL) /* a call of another kind is not counted */
				ck_assert_int_eq(e->file_size(e, "/db/w", &(uint64_t){0}), 0);
			ck_assert_int_eq(op_of_kind(&f, kinds[k], w, seq++), -errs[j]);
			ck_assert_int_eq(op_of_kind(&f, kinds[k], w, seq++), 0); /* one-shot */
			ck_assert_int_eq(op_of_kind(&f, kinds[k], w, seq++), 0);
			ck_assert_uint_eq(lsm_fault_calls(e) - calls, kinds[k] != LSM_FAULT_ALL ? 5 : 4);
			ck_assert_int_eq(e->close_writable(w), 0);
			ffx_close(&f);
		}
	}
}
END_TEST

/* A META failure hits every metadata call kind, and only those. */
START_TEST(test_fault_meta_members)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	lsm_wfile *w;
	put(e, "/db/x", "x", 0);
	lsm_fault_set_fail(e, 1, EIO, 1, 0, LSM_FAULT_META);
	ck_assert_int_eq(e->new_writable(e, "/db/y", &w), -EIO);
	ck_assert_ptr_null(w);
	ck_assert_int_eq(e->rename(e, "/db/x", "/db/z"), -EIO);
	ck_assert_int_eq(e->unlink(e, "/db/x"), -EIO);
	ck_assert_int_eq(e->sync_dir(e, "/db"), -EIO);
	ck_assert_int_eq(e->mkdir(e, "/db/d", 0700), -EIO);
	ck_assert_int_eq(e->truncate(e, "/db/x", 0), -EIO);
	ck_assert_int_eq(e->exists(e, "/db/x"), 0);
	expect(e, "/db/x", "x"); /* reads are not META */
	expect_absent(f.base, "/db/y");
	expect_absent(f.base, "/db/z");
	lsm_fault_clear(e);
	ck_assert_int_eq(e->unlink(e, "/db/x"), 0);
	ffx_close(&f);
}
END_TEST

START_TEST(test_fault_persistent)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	lsm_wfile *w, *w2 = (lsm_wfile *)&f;
	ck_assert_int_eq(e->new_writable(e, "/db/p", &w), 0);
	lsm_fault_set_fail(e, 2, ENOSPC, 1, 0, LSM_FAULT_WRITE);
	ck_assert_int_eq(e->append(w, "one", 3), 0);
	ck_assert_int_eq(e->append(w, "two", 3), -ENOSPC);
	ck_assert_int_eq(e->append(w, "three", 5), -ENOSPC);
	ck_assert_int_eq(e->new_writable(e, "/db/q", &w2), -ENOSPC);
	ck_assert_ptr_null(w2);
	ck_assert_int_eq(e->sync(w), 0); /* not a WRITE call */
	lsm_fault_clear(e);
	ck_assert_int_eq(e->append(w, "four", 4), 0);
	ck_assert_int_eq(e->close_writable(w), 0);
	expect(f.base, "/db/p", "onefour");
	expect_absent(f.base, "/db/q");
	ffx_close(&f);
}
END_TEST

START_TEST(test_fault_short_write)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	lsm_wfile *w;
	ck_assert_int_eq(e->new_writable(e, "/db/s", &w), 0);
	ck_assert_int_eq(e->append(w, "head", 4), 0);
	lsm_fault_set_fail(e, 1, ENOSPC, 0, 1, LSM_FAULT_WRITE);
	ck_assert_int_eq(e->append(w, "abcdefghij", 10), -ENOSPC);
	expect(f.base, "/db/s", "headabcde"); /* half of the failed append */
	lsm_fault_set_fail(e, 1, EIO, 0, 1, LSM_FAULT_WRITE);
	ck_assert_int_eq(e->append(w, "1234567", 7), -EIO);
	expect(f.base, "/db/s", "headabcde123");
	ck_assert_int_eq(e->append(w, "XY", 2), 0); /* one-shot: the next append is whole */
	expect(f.base, "/db/s", "headabcde123XY");
	ck_assert_int_eq(e->close_writable(w), 0);

	lsm_fault_set_fail(e, 1, EIO, 0, 1, LSM_FAULT_WRITE); /* short_write on a non-append: no effect */
	ck_assert_int_eq(e->new_writable(e, "/db/s2", &w), -EIO);
	expect_absent(f.base, "/db/s2");
	ffx_close(&f);
}
END_TEST

/* Failing closes and unlocks still release everything (ASan checks the frees). */
START_TEST(test_fault_close_always_frees)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	lsm_wfile *w;
	lsm_rfile *r;
	lsm_flock *l;
	ck_assert_int_eq(e->new_writable(e, "/db/c", &w), 0);
	ck_assert_int_eq(e->open_readable(e, "/db/c", &r), 0);
	ck_assert_int_eq(e->lock(e, "/db/LOCK", &l), 0);
	lsm_fault_set_fail(e, 1, EIO, 1, 0, LSM_FAULT_ALL);
	ck_assert_int_eq(e->close_writable(w), -EIO);
	ck_assert_int_eq(e->close_readable(r), -EIO);
	ck_assert_int_eq(e->unlock(l), -EIO);
	ck_assert_int_eq(e->lock_held(e, "/db/LOCK"), -EIO);
	lsm_fault_clear(e);
	ck_assert_int_eq(e->lock_held(e, "/db/LOCK"), 0); /* the base lock was released */
	ck_assert_int_eq(e->lock(e, "/db/LOCK", &l), 0);
	ck_assert_int_eq(e->unlock(l), 0);
	ffx_close(&f);
}
END_TEST

START_TEST(test_fault_calls_counted)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	ck_assert_uint_eq(lsm_fault_calls(e), 0);
	put(e, "/db/a", "abc", 1); /* new_writable, append, sync, close */
	ck_assert_uint_eq(lsm_fault_calls(e), 4);
	char *buf;
	size_t len;
	ck_assert_int_eq(lsm_env_read_all(e, "/db/a", &buf, &len), 0); /* size, open, pread, close */
	free(buf);
	ck_assert_uint_eq(lsm_fault_calls(e), 8);
	lsm_fault_set_fail(e, 1, EIO, 1, 0, LSM_FAULT_ALL);
	ck_assert_int_eq(e->exists(e, "/db/a"), -EIO);
	ck_assert_int_eq(e->sync_dir(e, "/db"), -EIO);
	ck_assert_uint_eq(lsm_fault_calls(e), 10); /* failed calls count too */
	ffx_close(&f);
}
END_TEST

START_TEST(test_fault_crash_after)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	lsm_wfile *w;
	lsm_fault_set_crash_after(e, 3);
	ck_assert_int_eq(e->exists(e, "/db"), 0);
	ck_assert_int_eq(e->mkdir(e, "/db/sub", 0700), 0);
	ck_assert_int_eq(e->new_writable(e, "/db/f", &w), 0);
	ck_assert_int_eq(lsm_fault_crashed(e), 0);
	ck_assert_int_eq(e->append(w, "lost", 4), -EIO); /* the 4th call: power is gone */
	ck_assert_int_eq(lsm_fault_crashed(e), 1);
	ck_assert_int_eq(e->sync(w), -EIO);
	ck_assert_int_eq(e->exists(e, "/db"), -EIO);
	lsm_fault_set_fail(e, 1, ENOSPC, 0, 0, LSM_FAULT_ALL); /* a crash wins over a failure */
	ck_assert_int_eq(e->sync_dir(e, "/db"), -EIO);
	ck_assert_int_eq(e->close_writable(w), -EIO); /* still frees */
	ck_assert_uint_eq(lsm_fault_calls(e), 8);
	expect(f.base, "/db/f", ""); /* the failed append never reached the base */

	ck_assert_int_eq(lsm_fault_crash(e), 0);
	ck_assert_int_eq(lsm_fault_crashed(e), 0);
	expect_absent(f.base, "/db/f");            /* created, never dir-synced */
	ck_assert_int_eq(f.base->exists(f.base, "/db/sub"), 0); /* mkdir is durable at once */
	ck_assert_int_eq(e->exists(e, "/db"), 0);  /* disarmed: calls succeed again */

	lsm_fault_set_crash_after(e, 0);            /* crash at the very next call */
	ck_assert_int_eq(e->exists(e, "/db"), -EIO);
	ck_assert_int_eq(lsm_fault_crashed(e), 1);
	lsm_fault_clear(e);
	ck_assert_int_eq(lsm_fault_crashed(e), 0);
	ck_assert_int_eq(e->exists(e, "/db"), 0);
	ffx_close(&f);
}
END_TEST

START_TEST(test_fault_crash_drops_unsynced)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	lsm_wfile *w, *w2;
	ck_assert_int_eq(e->new_writable(e, "/db/f", &w), 0);
	ck_assert_int_eq(e->append(w, "AAAA", 4), 0);
	ck_assert_int_eq(e->sync(w), 0);
	ck_assert_int_eq(e->sync_dir(e, "/db"), 0);
	ck_assert_int_eq(e->append(w, "BBBB", 4), 0);
	ck_assert_int_eq(e->new_writable(e, "/db/never", &w2), 0); /* never synced, dir synced */
	ck_assert_int_eq(e->append(w2, "zz", 2), 0);
	ck_assert_int_eq(e->sync_dir(e, "/db/"), 0);
	ck_assert_int_eq(e->close_writable(w2), 0);
	expect(f.base, "/db/f", "AAAABBBB");
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect(f.base, "/db/f", "AAAA");
	expect(f.base, "/db/never", "");
	ck_assert_int_eq(e->append(w, "CC", 2), 0); /* a handle open across the crash still works */
	ck_assert_int_eq(e->close_writable(w), 0);

	/* after the crash, surviving files count as durable */
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect(f.base, "/db/f", "AAAACC");
	ffx_close(&f);
}
END_TEST

START_TEST(test_fault_crash_new_file)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	put(f.base, "/db/before", "old", 0); /* existed before the wrapper: durable as is */
	put(e, "/db/n1", "before the dir sync", 1);
	put(e, "/db/n2", "kept", 1);
	ck_assert_int_eq(e->sync_dir(e, "/db"), 0);
	put(e, "/db/n3", "after the dir sync", 1);
	ck_assert_int_eq(e->mkdir(e, "/db/sub", 0700), 0);
	put(e, "/db/sub/n4", "synced in another dir", 1);
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect(f.base, "/db/n1", "before the dir sync");
	expect(f.base, "/db/n2", "kept");
	expect_absent(f.base, "/db/n3");
	expect_absent(f.base, "/db/sub/n4");
	expect(f.base, "/db/before", "old");

	put(e, "/db/n5", "x", 1);
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect_absent(f.base, "/db/n5");
	expect_list(f.base, "/db", "before,n1,n2,sub");
	ffx_close(&f);
}
END_TEST

/* The CURRENT pattern: write tmp, sync tmp, rename tmp over CURRENT, then sync the directory. */
START_TEST(test_fault_crash_rename)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	/* crash before the dir sync: the old CURRENT comes back, the never-durable tmp goes */
	put(e, "/db/CURRENT", "MANIFEST-1\n", 1);
	ck_assert_int_eq(e->sync_dir(e, "/db"), 0);
	put(e, "/db/CURRENT.tmp", "MANIFEST-2\n", 1);
	ck_assert_int_eq(e->rename(e, "/db/CURRENT.tmp", "/db/CURRENT"), 0);
	expect(e, "/db/CURRENT", "MANIFEST-2\n");
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect(f.base, "/db/CURRENT", "MANIFEST-1\n");
	expect_absent(f.base, "/db/CURRENT.tmp");

	/* with the dir sync: the new CURRENT stays */
	put(e, "/db/CURRENT.tmp", "MANIFEST-3\n", 1);
	ck_assert_int_eq(e->rename(e, "/db/CURRENT.tmp", "/db/CURRENT"), 0);
	ck_assert_int_eq(e->sync_dir(e, "/db"), 0);
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect(f.base, "/db/CURRENT", "MANIFEST-3\n");
	expect_absent(f.base, "/db/CURRENT.tmp");

	/* a durable file renamed, then the dir synced: its old name does not come back */
	put(e, "/db/m", "moved", 1);
	ck_assert_int_eq(e->sync_dir(e, "/db"), 0);
	ck_assert_int_eq(e->rename(e, "/db/m", "/db/m2"), 0);
	ck_assert_int_eq(e->sync_dir(e, "/db"), 0);
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect_absent(f.base, "/db/m");
	expect(f.base, "/db/m2", "moved");
	ck_assert_int_eq(f.base->unlink(f.base, "/db/m2"), 0);

	/* a durable source reappears with its synced bytes (only those) */
	lsm_wfile *w;
	ck_assert_int_eq(e->new_writable(e, "/db/src", &w), 0);
	ck_assert_int_eq(e->append(w, "MANIFEST-4\n", 11), 0);
	ck_assert_int_eq(e->sync(w), 0);
	ck_assert_int_eq(e->append(w, "junk", 4), 0);
	ck_assert_int_eq(e->close_writable(w), 0);
	ck_assert_int_eq(e->sync_dir(e, "/db"), 0);
	ck_assert_int_eq(e->rename(e, "/db/src", "/db/CURRENT"), 0);
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect(f.base, "/db/CURRENT", "MANIFEST-3\n");
	expect(f.base, "/db/src", "MANIFEST-4\n");

	/* two renames over CURRENT without a dir sync: the last durable one comes back */
	put(e, "/db/t1", "five", 1);
	ck_assert_int_eq(e->rename(e, "/db/t1", "/db/CURRENT"), 0);
	put(e, "/db/t2", "six", 1);
	ck_assert_int_eq(e->rename(e, "/db/t2", "/db/CURRENT"), 0);
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect(f.base, "/db/CURRENT", "MANIFEST-3\n");
	expect_list(f.base, "/db", "CURRENT,src");
	ffx_close(&f);
}
END_TEST

/* A file the wrapper never wrote, renamed over another: both come back as they were. */
START_TEST(test_fault_crash_rename_untracked)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	put(f.base, "/db/a", "alpha", 0);
	put(f.base, "/db/b", "beta", 0);
	ck_assert_int_eq(e->rename(e, "/db/a", "/db/b"), 0);
	expect_absent(f.base, "/db/a");
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect(f.base, "/db/a", "alpha");
	expect(f.base, "/db/b", "beta");
	ffx_close(&f);
}
END_TEST

/* The bookkeeping follows an open file across a rename. */
START_TEST(test_fault_rename_open_file)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	lsm_wfile *w;
	ck_assert_int_eq(e->new_writable(e, "/db/a", &w), 0);
	ck_assert_int_eq(e->append(w, "1111", 4), 0);
	ck_assert_int_eq(e->rename(e, "/db/a", "/db/b"), 0);
	ck_assert_int_eq(e->sync_dir(e, "/db"), 0);
	ck_assert_int_eq(e->append(w, "2222", 4), 0);
	ck_assert_int_eq(e->sync(w), 0);
	ck_assert_int_eq(e->append(w, "3333", 4), 0);
	ck_assert_int_eq(e->close_writable(w), 0);
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect(f.base, "/db/b", "11112222");
	expect_absent(f.base, "/db/a");
	ffx_close(&f);
}
END_TEST

START_TEST(test_fault_unlink_truncate)
{
	struct ffx f;
	ffx_open(&f);
	lsm_env *e = f.env;
	put(e, "/db/u", "gone", 1);
	put(f.base, "/db/pre", "pre", 0);
	put(e, "/db/t", "0123456789", 1);
	ck_assert_int_eq(e->sync_dir(e, "/db"), 0);
	ck_assert_int_eq(e->unlink(e, "/db/u"), 0);
	ck_assert_int_eq(e->unlink(e, "/db/pre"), 0);
	ck_assert_int_eq(e->truncate(e, "/db/t", 4), 0);
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect_absent(f.base, "/db/u");   /* unlinks are durable at once */
	expect_absent(f.base, "/db/pre");
	expect(f.base, "/db/t", "0123");

	/* renamed without a dir sync, then unlinked: the durable old name comes back with its bytes */
	ck_assert_int_eq(e->rename(e, "/db/t", "/db/t2"), 0);
	ck_assert_int_eq(e->unlink(e, "/db/t2"), 0);
	expect_absent(f.base, "/db/t");
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect(f.base, "/db/t", "0123");
	expect_absent(f.base, "/db/t2");
	ffx_close(&f);
}
END_TEST

/* The same power loss on real files. */
START_TEST(test_fault_crash_posix)
{
	char root[128], p[256], q[256];
	test_tmpdir(root, sizeof root);
	lsm_env *px = lsm_env_posix();
	lsm_env *e = lsm_fault_env_new(px);
	ck_assert_ptr_nonnull(e);
	snprintf(p, sizeof p, "%s/durable", root);
	snprintf(q, sizeof q, "%s/fresh", root);
	lsm_wfile *w;
	ck_assert_int_eq(e->new_writable(e, p, &w), 0);
	ck_assert_int_eq(e->append(w, "keep", 4), 0);
	ck_assert_int_eq(e->sync(w), 0);
	ck_assert_int_eq(e->sync_dir(e, root), 0);
	ck_assert_int_eq(e->append(w, "drop", 4), 0);
	ck_assert_int_eq(e->close_writable(w), 0);
	put(e, q, "never dir-synced", 1);
	ck_assert_int_eq(lsm_fault_crash(e), 0);
	expect(px, p, "keep");
	expect_absent(px, q);
	e->destroy(e);
	test_rmrf(root);
}
END_TEST

/* Journal mode: after the process "dies", the journal alone cuts the files to what was durable. */
START_TEST(test_fault_journal)
{
	char root[128], db[160], jp[160], a[200], b[200], cur[200], tmp[200], d[200], e2[200];
	test_tmpdir(root, sizeof root);
	snprintf(db, sizeof db, "%s/db", root);
	snprintf(jp, sizeof jp, "%s/journal", root);
	snprintf(a, sizeof a, "%s/A", db);
	snprintf(b, sizeof b, "%s/B", db);
	snprintf(cur, sizeof cur, "%s/CURRENT", db);
	snprintf(tmp, sizeof tmp, "%s/CURRENT.tmp", db);
	snprintf(d, sizeof d, "%s/D", db);
	snprintf(e2, sizeof e2, "%s/E", db);
	lsm_env *px = lsm_env_posix();
	lsm_env *e;
	ck_assert_int_eq(lsm_fault_env_new_journal(px, jp, &e), 0);
	ck_assert_int_eq(e->mkdir(e, db, 0700), 0);

	lsm_wfile *wa, *wb;
	ck_assert_int_eq(e->new_writable(e, a, &wa), 0); /* durable name, synced prefix */
	ck_assert_int_eq(e->append(wa, "0123456789", 10), 0);
	ck_assert_int_eq(e->sync(wa), 0);
	ck_assert_int_eq(e->append(wa, "abcdef", 6), 0);
	ck_assert_int_eq(e->sync_dir(e, db), 0);
	put(e, cur, "M1", 1);
	put(e, d, "dddd", 1);
	ck_assert_int_eq(e->sync_dir(e, db), 0);      /* the last dir sync: A, CURRENT, D durable */
	put(e, tmp, "M2", 1);                         /* CURRENT replaced by a never-durable tmp */
	ck_assert_int_eq(e->rename(e, tmp, cur), 0);
	ck_assert_int_eq(e->rename(e, d, e2), 0);     /* a durable file moved to a new name */
	ck_assert_int_eq(e->new_writable(e, b, &wb), 0); /* synced, name never durable */
	ck_assert_int_eq(e->append(wb, "bbbb", 4), 0);
	ck_assert_int_eq(e->sync(wb), 0);
	ck_assert_int_eq(e->close_writable(wb), 0);
	/* a failed sync is not logged */
	lsm_fault_set_fail(e, 1, EIO, 0, 0, LSM_FAULT_SYNC);
	ck_assert_int_eq(e->sync(wa), -EIO);
	ck_assert_int_eq(e->close_writable(wa), 0);
	e->destroy(e); /* as if killed: only the journal and the files remain */

	expect(px, a, "0123456789abcdef");
	int cut = -1, deleted = -1;
	ck_assert_int_eq(lsm_fault_apply_journal(jp, &cut, &deleted), 0);
	ck_assert_int_eq(cut, 1);
	ck_assert_int_eq(deleted, 1);
	expect(px, a, "0123456789");
	expect_absent(px, b);
	expect(px, cur, "M2"); /* renames are not undone; the replaced name stays */
	expect(px, e2, "dddd");
	expect_list(px, db, "A,CURRENT,E");

	ck_assert_int_eq(lsm_fault_apply_journal(jp, &cut, &deleted), 0); /* idempotent */
	ck_assert_int_eq(cut, 0);
	ck_assert_int_eq(deleted, 0);

	/* a torn last line (a write cut by the kill) is ignored */
	char *j;
	size_t jlen;
	ck_assert_int_eq(lsm_env_read_all(px, jp, &j, &jlen), 0);
	ck_assert_mem_eq(j, "lsmfault-journal 1\n", 19);
	char *torn = malloc(jlen + 32);
	ck_assert_ptr_nonnull(torn);
	memcpy(torn, j, jlen);
	memcpy(torn + jlen, "create 4:/x/y", 13);
	ck_assert_int_eq(lsm_env_write_all(px, jp, torn, jlen + 13, 0), 0);
	ck_assert_int_eq(lsm_fault_apply_journal(jp, &cut, &deleted), 0);
	free(torn);
	free(j);

	put(px, jp, "lsmfault-journal 1\nbogus 1:x\n", 0);
	ck_assert_int_eq(lsm_fault_apply_journal(jp, &cut, &deleted), -EINVAL);
	put(px, jp, "lsmfault-journal 1\nsync 1:x\n", 0); /* sync without its length */
	ck_assert_int_eq(lsm_fault_apply_journal(jp, &cut, &deleted), -EINVAL);
	put(px, jp, "not a journal\n", 0);
	ck_assert_int_eq(lsm_fault_apply_journal(jp, &cut, &deleted), -EINVAL);
	put(px, jp, "lsmfault-jou", 0); /* killed while writing the header */
	ck_assert_int_eq(lsm_fault_apply_journal(jp, &cut, &deleted), 0);
	ck_assert_int_eq(px->unlink(px, jp), 0);
	ck_assert_int_eq(lsm_fault_apply_journal(jp, &cut, &deleted), -ENOENT);
	test_rmrf(root);
}
END_TEST

/* Journal lines name paths by length, so spaces and newlines in names survive the round trip. */
START_TEST(test_fault_journal_odd_names)
{
	char root[128], jp[160], p[200];
	test_tmpdir(root, sizeof root);
	snprintf(jp, sizeof jp, "%s/journal", root);
	snprintf(p, sizeof p, "%s/name with space\nand newline", root);
	lsm_env *px = lsm_env_posix();
	lsm_env *e;
	ck_assert_int_eq(lsm_fault_env_new_journal(px, jp, &e), 0);
	lsm_wfile *w;
	ck_assert_int_eq(e->new_writable(e, p, &w), 0);
	ck_assert_int_eq(e->append(w, "ab", 2), 0);
	ck_assert_int_eq(e->sync(w), 0);
	ck_assert_int_eq(e->append(w, "cd", 2), 0);
	ck_assert_int_eq(e->close_writable(w), 0);
	ck_assert_int_eq(e->sync_dir(e, root), 0);
	e->destroy(e);
	int cut, deleted;
	ck_assert_int_eq(lsm_fault_apply_journal(jp, &cut, &deleted), 0);
	ck_assert_int_eq(cut, 1);
	ck_assert_int_eq(deleted, 0);
	expect(px, p, "ab");
	test_rmrf(root);
}
END_TEST

Suite *env_suite(void)
{
	Suite *s = suite_create("env");
	TCase *tc = tcase_create("generic");
	tcase_add_loop_test(tc, test_write_read, 0, ENV_KINDS);
	tcase_add_loop_test(tc, test_append_pread, 0, ENV_KINDS);
	tcase_add_loop_test(tc, test_dirs_list, 0, ENV_KINDS);
	tcase_add_loop_test(tc, test_rename_unlink, 0, ENV_KINDS);
	tcase_add_loop_test(tc, test_truncate, 0, ENV_KINDS);
	tcase_add_loop_test(tc, test_lock, 0, ENV_KINDS);
	tcase_add_loop_test(tc, test_open_handle_survives, 0, ENV_KINDS);
	suite_add_tcase(s, tc);

	tc = tcase_create("posix");
	tcase_add_test(tc, test_posix_modes);
	tcase_add_test(tc, test_posix_lock_other_process);
	suite_add_tcase(s, tc);

	tc = tcase_create("mem");
	tcase_add_test(tc, test_mem_threads);
	tcase_add_test(tc, test_mem_paths);
	suite_add_tcase(s, tc);

	tc = tcase_create("fault");
	tcase_add_test(tc, test_fault_fail_nth_each_kind);
	tcase_add_test(tc, test_fault_meta_members);
	tcase_add_test(tc, test_fault_persistent);
	tcase_add_test(tc, test_fault_short_write);
	tcase_add_test(tc, test_fault_close_always_frees);
	tcase_add_test(tc, test_fault_calls_counted);
	tcase_add_test(tc, test_fault_crash_after);
	tcase_add_test(tc, test_fault_crash_drops_unsynced);
	tcase_add_test(tc, test_fault_crash_new_file);
	tcase_add_test(tc, test_fault_crash_rename);
	tcase_add_test(tc, test_fault_crash_rename_untracked);
	tcase_add_test(tc, test_fault_rename_open_file);
	tcase_add_test(tc, test_fault_unlink_truncate);
	tcase_add_test(tc, test_fault_crash_posix);
	tcase_add_test(tc, test_fault_journal);
	tcase_add_test(tc, test_fault_journal_odd_names);
	suite_add_tcase(s, tc);
	return s;
}
