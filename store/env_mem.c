/* env_mem.c - an in-memory env: a small thread-safe file system for fast, disk-free unit tests. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"

/*
 * Model: a table of names (files and directories, by exact path string) and refcounted file contents
 * ("inodes"). A name holds one reference to its content and every open handle holds another, so, as on
 * POSIX, a handle keeps reading (or writing) a file after it was unlinked or renamed over.
 *
 * Directories are only names: mkdir records one (its parents are implied, so tests may use any absolute
 * or relative root), "", "." and "/" always exist, and a file can be created only in a recorded
 * directory. Durability is not modelled (sync and sync_dir succeed at once): the fault env on top does
 * that. Paths are compared as strings; the store always spells a path the same way.
 *
 * Thread safety: one mutex (mem_env.mu) guards the names, every content and the lock table. Handles
 * must be closed before destroy.
 */

struct mem_data {
	int refs;       /* one per name + one per open handle */
	char *bytes;
	size_t len, cap;
};

struct mem_name {
	char *path;
	int is_dir;
	struct mem_data *data; /* NULL for a directory */
};

struct mem_env {
	lsm_env env;            /* first, so an lsm_env * converts to the mem_env * */
	pthread_mutex_t mu;
	struct mem_name *names; /* guarded by mu; unordered */
	size_t nnames, capnames;
	char **locks;           /* guarded by mu: paths currently locked */
	size_t nlocks, caplocks;
};

struct mem_handle {             /* both readable and writable files */
	struct mem_env *me;
	struct mem_data *data;  /* one reference */
};

struct mem_lock {
	struct mem_env *me;
	char *path;
};

static struct mem_env *menv(lsm_env *env) { return (struct mem_env *)(void *)env; }
static lsm_wfile *to_wfile(struct mem_handle *h) { return (lsm_wfile *)(void *)h; }
static lsm_rfile *to_rfile(struct mem_handle *h) { return (lsm_rfile *)(void *)h; }
static struct mem_handle *from_w(lsm_wfile *f) { return (struct mem_handle *)(void *)f; }
static struct mem_handle *from_r(lsm_rfile *f) { return (struct mem_handle *)(void *)f; }

/* Length of the directory part of path (before the last '/'); *root set when that part is "" or "/". */
static size_t dir_len(const char *path, int *root)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		*root = 1; /* "name": the current directory */
		return 0;
	}
	if (slash == path) {
		*root = 1; /* "/name" */
		return 1;
	}
	*root = 0;
	return (size_t)(slash - path);
}

/* Length of a directory argument without trailing slashes ("db/" names "db"; "/" stays "/"). */
static size_t dir_arg_len(const char *dir)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	return n;
}

static int is_root_dir(const char *dir, size_t n)
{
	return n == 0 || (n == 1 && (dir[0] == '.' || dir[0] == '/'));
}

/* REQUIRES: mu held. Index of the name equal to the first n bytes of path, or -1. */
static long find_n(struct mem_env *me, const char *path, size_t n)
{
	for (size_t i = 0; i < me->nnames; i++) {
		const char *p = me->names[i].path;
		if (strlen(p) == n && !memcmp(p, path, n))
			return (long)i;
	}
	return -1;
}

static long find(struct mem_env *me, const char *path)
{
	return find_n(me, path, strlen(path));
}

/* REQUIRES: mu held. 0 if the directory holding path exists, -ENOENT (-ENOTDIR) if not. */
static int parent_ok(struct mem_env *me, const char *path)
{
	int root;
	size_t n = dir_len(path, &root);
	if (root)
		return 0;
	long i = find_n(me, path, n);
	if (i < 0)
		return -ENOENT;
	return me->names[i].is_dir ? 0 : -ENOTDIR;
}

static void data_unref(struct mem_data *d)
{
	if (d && --d->refs == 0) {
		free(d->bytes);
		free(d);
	}
}

/* REQUIRES: mu held. Make room for one more name. */
static int names_reserve(struct mem_env *me)
{
	if (me->nnames < me->capnames)
		return 0;
	size_t cap = me->capnames ? me->capnames * 2 : 16;
	struct mem_name *v = realloc(me->names, cap * sizeof *v);
	if (!v)
		return -ENOMEM;
	me->names = v;
	me->capnames = cap;
	return 0;
}

/* REQUIRES: mu held. Add a name (file when data != NULL, which the name then references). */
static int names_add(struct mem_env *me, const char *path, int is_dir, struct mem_data *data)
{
	int rc = names_reserve(me);
	if (rc < 0)
		return rc;
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	me->names[me->nnames++] = (struct mem_name){p, is_dir, data};
	if (data)
		data->refs++;
	return 0;
}

/* REQUIRES: mu held. Remove name i (order is not kept). */
static void names_del(struct mem_env *me, size_t i)
{
	free(me->names[i].path);
	data_unref(me->names[i].data);
	me->names[i] = me->names[--me->nnames];
}

/* REQUIRES: mu held. A new empty file at path (the caller checked that path is free). */
static int create_file(struct mem_env *me, const char *path, struct mem_data **out)
{
	struct mem_data *d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	int rc = names_add(me, path, 0, d);
	if (rc < 0) {
		free(d);
		return rc;
	}
	*out = d;
	return 0;
}

/* REQUIRES: mu held. Resize d to len bytes, zero-filling any growth. */
static int data_resize(struct mem_data *d, size_t len)
{
	if (len > d->cap) {
		size_t cap = d->cap ? d->cap : 64;
		while (cap < len)
			cap = cap > SIZE_MAX / 2 ? len : cap * 2;
		char *b = realloc(d->bytes, cap);
		if (!b)
			return -ENOMEM;
		d->bytes = b;
		d->cap = cap;
	}
	if (len > d->len)
		memset(d->bytes + d->len, 0, len - d->len);
	d->len = len;
	return 0;
}

static int mem_new_writable(lsm_env *env, const char *path, lsm_wfile **out)
{
	struct mem_env *me = menv(env);
	*out = NULL;
	struct mem_handle *h = malloc(sizeof *h);
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&me->mu);
	int rc = parent_ok(me, path);
	struct mem_data *d = NULL;
	if (rc == 0) {
		long i = find(me, path);
		if (i < 0) {
			rc = create_file(me, path, &d);
		} else if (me->names[i].is_dir) {
			rc = -EISDIR;
		} else {
			d = me->names[i].data; /* O_TRUNC: the same content, emptied, as open handles see */
			d->len = 0;
		}
	}
	if (rc == 0) {
		d->refs++;
		h->me = me;
		h->data = d;
	}
	pthread_mutex_unlock(&me->mu);
	if (rc < 0) {
		free(h);
		return rc;
	}
	*out = to_wfile(h);
	return 0;
}

static int mem_append(lsm_wfile *f, const void *data, size_t n)
{
	struct mem_handle *h = from_w(f);
	if (n == 0)
		return 0;
	pthread_mutex_lock(&h->me->mu);
	struct mem_data *d = h->data;
	size_t old = d->len;
	int rc = n > SIZE_MAX - old ? -EFBIG : data_resize(d, old + n);
	if (rc == 0)
		memcpy(d->bytes + old, data, n);
	pthread_mutex_unlock(&h->me->mu);
	return rc;
}

static int mem_sync(lsm_wfile *f)
{
	(void)f;
	return 0;
}

static int mem_close_handle(struct mem_handle *h)
{
	pthread_mutex_lock(&h->me->mu);
	data_unref(h->data);
	pthread_mutex_unlock(&h->me->mu);
	free(h);
	return 0;
}

static int mem_close_writable(lsm_wfile *f)
{
	return mem_close_handle(from_w(f));
}

static int mem_open_readable(lsm_env *env, const char *path, lsm_rfile **out)
{
	struct mem_env *me = menv(env);
	*out = NULL;
	struct mem_handle *h = malloc(sizeof *h);
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&me->mu);
	long i = find(me, path);
	int rc = i < 0 ? -ENOENT : me->names[i].is_dir ? -EISDIR : 0;
	if (rc == 0) {
		h->me = me;
		h->data = me->names[i].data;
		h->data->refs++;
	}
	pthread_mutex_unlock(&me->mu);
	if (rc < 0) {
		free(h);
		return rc;
	}
	*out = to_rfile(h);
	return 0;
}

static int64_t mem_pread(lsm_rfile *f, void *buf, size_t n, uint64_t off)
{
	struct mem_handle *h = from_r(f);
	if (n > (uint64_t)INT64_MAX)
		return -EINVAL;
	pthread_mutex_lock(&h->me->mu);
	struct mem_data *d = h->data;
	size_t got = 0;
	if (off < d->len) {
		got = d->len - (size_t)off < n ? d->len - (size_t)off : n;
		memcpy(buf, d->bytes + off, got);
	}
	pthread_mutex_unlock(&h->me->mu);
	return (int64_t)got;
}

static int mem_close_readable(lsm_rfile *f)
{
	return mem_close_handle(from_r(f));
}

static int mem_file_size(lsm_env *env, const char *path, uint64_t *size)
{
	struct mem_env *me = menv(env);
	pthread_mutex_lock(&me->mu);
	long i = find(me, path);
	int rc = i < 0 ? -ENOENT : me->names[i].is_dir ? -EISDIR : 0;
	if (rc == 0)
		*size = me->names[i].data->len;
	pthread_mutex_unlock(&me->mu);
	return rc;
}

static int mem_exists(lsm_env *env, const char *path)
{
	struct mem_env *me = menv(env);
	size_t n = dir_arg_len(path);
	if (is_root_dir(path, n))
		return 0;
	pthread_mutex_lock(&me->mu);
	long i = find_n(me, path, n);
	pthread_mutex_unlock(&me->mu);
	return i < 0 ? -ENOENT : 0;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * The names are copied under the lock and fn runs without it, so fn may call back into the env (a
 * common pattern: list a directory and unlink what it finds) without deadlocking.
 */
static int mem_list(lsm_env *env, const char *dir, lsm_list_fn fn, void *arg)
{
	struct mem_env *me = menv(env);
	size_t dn = dir_arg_len(dir);
	int dir_root = is_root_dir(dir, dn);
	char **v = NULL;
	size_t nv = 0;
	int rc = 0;

	pthread_mutex_lock(&me->mu);
	if (!dir_root) {
		long di = find_n(me, dir, dn);
		rc = di < 0 ? -ENOENT : me->names[di].is_dir ? 0 : -ENOTDIR;
	}
	if (rc == 0 && me->nnames) {
		v = malloc(me->nnames * sizeof *v);
		if (!v)
			rc = -ENOMEM;
	}
	for (size_t i = 0; rc == 0 && i < me->nnames; i++) {
		const char *p = me->names[i].path;
		int root;
		size_t pn = dir_len(p, &root);
		int match;
		if (dir_root)
			/* "" and "." hold the relative names without '/', "/" the absolute "/name" ones */
			match = root && ((dn == 1 && dir[0] == '/') ? pn == 1 : pn == 0);
		else
			match = !root && pn == dn && !memcmp(p, dir, dn);
		if (!match)
			continue;
		const char *slash = strrchr(p, '/');
		const char *base = slash ? slash + 1 : p;
		if (!(v[nv] = strdup(base)))
			rc = -ENOMEM;
		else
			nv++;
	}
	pthread_mutex_unlock(&me->mu);

	for (size_t i = 0; rc == 0 && i < nv; i++)
		if (fn(arg, v[i]))
			break;
	free_strv(v, nv);
	return rc;
}

static int mem_mkdir(lsm_env *env, const char *path, unsigned mode)
{
	(void)mode; /* no permissions in memory */
	struct mem_env *me = menv(env);
	size_t n = dir_arg_len(path);
	if (is_root_dir(path, n))
		return -EEXIST;
	char *p = strndup(path, n);
	if (!p)
		return -ENOMEM;
	pthread_mutex_lock(&me->mu);
	int rc = find(me, p) >= 0 ? -EEXIST : names_add(me, p, 1, NULL);
	pthread_mutex_unlock(&me->mu);
	free(p);
	return rc;
}

static int mem_unlink(lsm_env *env, const char *path)
{
	struct mem_env *me = menv(env);
	pthread_mutex_lock(&me->mu);
	long i = find(me, path);
	int rc = i < 0 ? -ENOENT : me->names[i].is_dir ? -EISDIR : 0;
	if (rc == 0)
		names_del(me, (size_t)i); /* open handles keep the content alive */
	pthread_mutex_unlock(&me->mu);
	return rc;
}

/* Files only: the store never renames a directory, and renaming a subtree is not worth modelling. */
static int mem_rename(lsm_env *env, const char *from, const char *to)
{
	struct mem_env *me = menv(env);
	pthread_mutex_lock(&me->mu);
	long fi = find(me, from);
	long ti = find(me, to);
	int rc = 0;
	if (fi < 0)
		rc = -ENOENT;
	else if (me->names[fi].is_dir)
		rc = -ENOTSUP;
	else if (ti >= 0 && me->names[ti].is_dir)
		rc = -EISDIR;
	else if (fi == ti)
		rc = 0; /* rename(2) of a name onto itself does nothing */
	else if ((rc = parent_ok(me, to)) == 0) {
		char *p = strdup(to);
		if (!p) {
			rc = -ENOMEM;
		} else {
			free(me->names[fi].path);
			me->names[fi].path = p;
			if (ti >= 0)
				names_del(me, (size_t)ti); /* moves the last slot; fi is not needed again */
		}
	}
	pthread_mutex_unlock(&me->mu);
	return rc;
}

static int mem_truncate(lsm_env *env, const char *path, uint64_t len)
{
	struct mem_env *me = menv(env);
	if (len > SIZE_MAX)
		return -EFBIG;
	pthread_mutex_lock(&me->mu);
	long i = find(me, path);
	int rc = i < 0 ? -ENOENT : me->names[i].is_dir ? -EISDIR : 0;
	if (rc == 0)
		rc = data_resize(me->names[i].data, (size_t)len);
	pthread_mutex_unlock(&me->mu);
	return rc;
}

static int mem_sync_dir(lsm_env *env, const char *dir)
{
	struct mem_env *me = menv(env);
	size_t n = dir_arg_len(dir);
	if (is_root_dir(dir, n))
		return 0;
	pthread_mutex_lock(&me->mu);
	long i = find_n(me, dir, n);
	int rc = i < 0 ? -ENOENT : me->names[i].is_dir ? 0 : -ENOTDIR;
	pthread_mutex_unlock(&me->mu);
	return rc;
}

/* REQUIRES: mu held. Index of path in the lock table, or -1. */
static long lock_find(struct mem_env *me, const char *path)
{
	for (size_t i = 0; i < me->nlocks; i++)
		if (!strcmp(me->locks[i], path))
			return (long)i;
	return -1;
}

/* Every lock() stands for a separate process: a second one on the same path fails until unlock. */
static int mem_lock(lsm_env *env, const char *path, lsm_flock **out)
{
	struct mem_env *me = menv(env);
	*out = NULL;
	struct mem_lock *l = malloc(sizeof *l);
	char *p = strdup(path);
	if (!l || !p) {
		free(l);
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_lock(&me->mu);
	int rc = 0;
	long i = find(me, path);
	if (lock_find(me, path) >= 0) {
		rc = -EBUSY;
	} else if (i >= 0) {
		rc = me->names[i].is_dir ? -EISDIR : 0;
	} else if ((rc = parent_ok(me, path)) == 0) {
		struct mem_data *d;
		rc = create_file(me, path, &d); /* like O_CREAT: list() shows LOCK as on disk */
	}
	if (rc == 0 && me->nlocks == me->caplocks) {
		size_t cap = me->caplocks ? me->caplocks * 2 : 4;
		char **v = realloc(me->locks, cap * sizeof *v);
		if (!v) {
			rc = -ENOMEM; /* a LOCK file created above stays, as it would on disk */
		} else {
			me->locks = v;
			me->caplocks = cap;
		}
	}
	if (rc == 0)
		me->locks[me->nlocks++] = p;
	pthread_mutex_unlock(&me->mu);
	if (rc < 0) {
		free(l);
		free(p);
		return rc;
	}
	l->me = me;
	l->path = p; /* shared with the lock table; freed by unlock */
	*out = (lsm_flock *)(void *)l;
	return 0;
}

static int mem_unlock(lsm_flock *fl)
{
	struct mem_lock *l = (struct mem_lock *)(void *)fl;
	struct mem_env *me = l->me;
	pthread_mutex_lock(&me->mu);
	for (size_t i = 0; i < me->nlocks; i++) {
		if (me->locks[i] == l->path) {
			me->locks[i] = me->locks[--me->nlocks];
			break;
		}
	}
	pthread_mutex_unlock(&me->mu);
	free(l->path);
	free(l);
	return 0;
}

static int mem_lock_held(lsm_env *env, const char *path)
{
	struct mem_env *me = menv(env);
	pthread_mutex_lock(&me->mu);
	int held = lock_find(me, path) >= 0;
	pthread_mutex_unlock(&me->mu);
	return held;
}

/* REQUIRES: every handle and lock of the env closed. */
static void mem_destroy(lsm_env *env)
{
	struct mem_env *me = menv(env);
	while (me->nnames)
		names_del(me, me->nnames - 1);
	free(me->names);
	free(me->locks); /* empty when every lock was released; the paths belong to the lsm_flocks */
	pthread_mutex_destroy(&me->mu);
	free(me);
}

lsm_env *lsm_env_mem_new(void)
{
	struct mem_env *me = calloc(1, sizeof *me);
	if (!me)
		return NULL;
	if (pthread_mutex_init(&me->mu, NULL) != 0) {
		free(me);
		return NULL;
	}
	me->env = (lsm_env){
		.new_writable = mem_new_writable,
		.append = mem_append,
		.sync = mem_sync,
		.close_writable = mem_close_writable,
		.open_readable = mem_open_readable,
		.pread = mem_pread,
		.close_readable = mem_close_readable,
		.file_size = mem_file_size,
		.exists = mem_exists,
		.list = mem_list,
		.mkdir = mem_mkdir,
		.unlink = mem_unlink,
		.rename = mem_rename,
		.truncate = mem_truncate,
		.sync_dir = mem_sync_dir,
		.lock = mem_lock,
		.unlock = mem_unlock,
		.lock_held = mem_lock_held,
		.destroy = mem_destroy,
	};
	return &me->env;
}
