/* env_fault.c - a fault-injecting env over another env: failing calls, short writes, power loss. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env_fault.h"

/*
 * Durability model (see env_fault.h for the rules it implements).
 *
 * The wrapper keeps two views of the names it has seen, as a journaling file system would:
 *  - the current namespace: each tracked file content ("node", an inode of sorts) knows its current
 *    name, cur_path (NULL once unlinked or renamed over);
 *  - the durable namespace: fe->dur maps a name to the node a power loss would leave under it.
 * A node's durable bytes are its first `synced` bytes (every write is an append, so they never change
 * under a later write), or the whole file for an untracked node (one that existed before the wrapper saw
 * it). sync moves `synced`; sync_dir(dir) copies the current namespace of dir into the durable one, which
 * is what makes creates and renames durable; unlink removes both at once. When a node still named in
 * the durable namespace loses its last current name (renamed over, unlinked while a rename of it is
 * pending), its durable bytes are read through the base env first (snap), since the base no longer
 * holds them under any name afterwards.
 * A power loss (lsm_fault_crash) then rewrites the base env to the durable namespace.
 *
 * Names are compared as strings: the store spells a path the same way every time. Directories created
 * through the wrapper are durable at once (the store syncs the files in them, not their parents).
 *
 * Locking: fe->mu guards the counters, the arming state, every node and fe->dur. Metadata calls
 * (new_writable, rename, unlink, truncate, sync_dir) hold it across the base call and the bookkeeping,
 * so that both, and the journal lines, happen in one order. Appends, syncs and reads run without it (a
 * file's sync must not wait for another file's); list runs without it because its callback may call
 * back into the env.
 */

/* The kinds a call belongs to, as bits (1 << enum lsm_fault_kind); LSM_FAULT_ALL counts everything. */
#define K_ALL (1u << LSM_FAULT_ALL)
#define K_WRITE (1u << LSM_FAULT_WRITE)
#define K_SYNC (1u << LSM_FAULT_SYNC)
#define K_RENAME (1u << LSM_FAULT_RENAME)
#define K_META (1u << LSM_FAULT_META)

struct fnode {
	struct fnode *next;   /* fe->nodes */
	char *cur_path;       /* owned; NULL when the node has no current name */
	int handles;          /* open writable handles on it */
	int dur_refs;         /* entries of fe->dur naming it */
	int tracked;          /* 0: untouched by the wrapper, its whole current content is durable */
	uint64_t size;        /* bytes written through the wrapper since the create (tracked only) */
	uint64_t synced;      /* durable prefix (tracked only) */
	char *snap;           /* durable bytes, kept when the node lost its last current name */
	size_t snap_len;
	int has_snap;
};

struct dent {
	char *path;           /* owned */
	struct fnode *n;
};

struct fault_env {
	lsm_env env;          /* first, so an lsm_env * converts to the fault_env * */
	lsm_env *base;        /* not owned */
	pthread_mutex_t mu;
	/* Everything below is guarded by mu. */
	uint64_t calls;
	int fail_armed, fail_err, fail_persistent, fail_short;
	unsigned fail_mask;
	uint64_t fail_nth, fail_seen;
	int crash_armed, crashed;
	uint64_t crash_left;  /* calls still allowed before the power loss */
	struct fnode *nodes;
	struct dent *dur;
	size_t ndur, capdur;
	lsm_wfile *journal;   /* posix env handle, or NULL */
};

struct fault_wfile {
	struct fault_env *fe;
	lsm_wfile *base;
	struct fnode *n;      /* holds one `handles` count */
};

struct fault_rfile {
	struct fault_env *fe;
	lsm_rfile *base;
};

struct fault_flock {
	struct fault_env *fe;
	lsm_flock *base;
};

static struct fault_env *fenv(lsm_env *env) { return (struct fault_env *)(void *)env; }
static struct fault_wfile *from_w(lsm_wfile *f) { return (struct fault_wfile *)(void *)f; }
static struct fault_rfile *from_r(lsm_rfile *f) { return (struct fault_rfile *)(void *)f; }
static struct fault_flock *from_l(lsm_flock *f) { return (struct fault_flock *)(void *)f; }

/* 1 if the directory part of path (everything before its last '/') names dir ("db/" names "db"). */
static int in_dir(const char *path, const char *dir)
{
	size_t dn = strlen(dir);
	while (dn > 1 && dir[dn - 1] == '/')
		dn--;
	const char *slash = strrchr(path, '/');
	if (!slash)
		return dn == 0 || (dn == 1 && dir[0] == '.');
	size_t pn = slash == path ? 1 : (size_t)(slash - path); /* "/x" lives in "/" */
	return pn == dn && !memcmp(path, dir, dn);
}

/* ---------------------------------------------------------------- counting and failing */

/*
 * Count one call of the given kinds and decide its fate: 0 to forward it, or the error to return.
 * *short_write (if given) is set when an append should write half its bytes first; only the nth call
 * does that, as a full disk takes a last partial write and then nothing.
 */
static int gate(struct fault_env *fe, unsigned kinds, int *short_write)
{
	int rc = 0;
	if (short_write)
		*short_write = 0;
	pthread_mutex_lock(&fe->mu);
	fe->calls++;
	if (fe->crash_armed && !fe->crashed) {
		if (fe->crash_left == 0)
			fe->crashed = 1;
		else
			fe->crash_left--;
	}
	if (fe->crashed) {
		rc = -EIO;
	} else if (fe->fail_armed && (kinds & fe->fail_mask)) {
		fe->fail_seen++;
		if (fe->fail_seen == fe->fail_nth) {
			rc = -fe->fail_err;
			if (short_write)
				*short_write = fe->fail_short;
			if (!fe->fail_persistent)
				fe->fail_armed = 0;
		} else if (fe->fail_seen > fe->fail_nth) {
			rc = -fe->fail_err; /* only reached when persistent */
		}
	}
	pthread_mutex_unlock(&fe->mu);
	return rc;
}

void lsm_fault_set_fail(lsm_env *env, uint64_t nth, int err, int persistent, int short_write,
			enum lsm_fault_kind kind)
{
	struct fault_env *fe = fenv(env);
	pthread_mutex_lock(&fe->mu);
	fe->fail_armed = 1;
	fe->fail_nth = nth ? nth : 1;
	fe->fail_seen = 0;
	fe->fail_err = err < 0 ? -err : err ? err : EIO; /* accept EIO or -EIO; never "fail" with 0 */
	fe->fail_persistent = persistent;
	fe->fail_short = short_write;
	fe->fail_mask = (unsigned)kind <= LSM_FAULT_META ? 1u << kind : K_ALL;
	pthread_mutex_unlock(&fe->mu);
}

void lsm_fault_set_crash_after(lsm_env *env, uint64_t nth)
{
	struct fault_env *fe = fenv(env);
	pthread_mutex_lock(&fe->mu);
	fe->crash_armed = 1;
	fe->crash_left = nth;
	fe->crashed = 0;
	pthread_mutex_unlock(&fe->mu);
}

/* REQUIRES: mu held. */
static void disarm(struct fault_env *fe)
{
	fe->fail_armed = 0;
	fe->crash_armed = 0;
	fe->crashed = 0;
}

void lsm_fault_clear(lsm_env *env)
{
	struct fault_env *fe = fenv(env);
	pthread_mutex_lock(&fe->mu);
	disarm(fe);
	pthread_mutex_unlock(&fe->mu);
}

uint64_t lsm_fault_calls(lsm_env *env)
{
	struct fault_env *fe = fenv(env);
	pthread_mutex_lock(&fe->mu);
	uint64_t n = fe->calls;
	pthread_mutex_unlock(&fe->mu);
	return n;
}

int lsm_fault_crashed(lsm_env *env)
{
	struct fault_env *fe = fenv(env);
	pthread_mutex_lock(&fe->mu);
	int c = fe->crashed;
	pthread_mutex_unlock(&fe->mu);
	return c;
}

/* ---------------------------------------------------------------- journal */

/*
 * Journal format: a header line "lsmfault-journal 1", then one line per event, written after the event
 * succeeded in the base env:
 *     create P       new_writable made a new name P (entry not durable yet)
 *     reset P        new_writable truncated the existing file P (its entry stays as it was)
 *     sync P LEN     the file now named P is durable up to LEN bytes
 *     syncdir D      every entry of directory D is durable
 *     rename F T R   F was renamed to T; R = 1 if T's old entry was durable
 *     unlink P       P is gone (durable at once)
 *     truncate P LEN P was cut (or extended) to LEN
 * A path is written as LENGTH:BYTES, so any byte may appear in it. Logging after the event means that a
 * kill -9 between the two leaves an event unlogged, which can only make the replay keep more than the
 * power loss would have had to (an empty new file), never invent a state no disk could reach.
 */
#define JOURNAL_HEADER "lsmfault-journal 1\n"

/* REQUIRES: mu held (lines of concurrent calls stay whole and in the order of the events).
 * p2 may be NULL; num < 0 means no number. */
static int jlog(struct fault_env *fe, const char *op, const char *p1, const char *p2, int64_t num)
{
	if (!fe->journal)
		return 0;
	size_t l1 = strlen(p1), l2 = p2 ? strlen(p2) : 0;
	size_t cap = strlen(op) + l1 + l2 + 3 * 24 + 2;
	char *line = malloc(cap);
	if (!line)
		return -ENOMEM;
	size_t n = (size_t)snprintf(line, cap, "%s %zu:", op, l1);
	memcpy(line + n, p1, l1);
	n += l1;
	if (p2) {
		n += (size_t)snprintf(line + n, cap - n, " %zu:", l2);
		memcpy(line + n, p2, l2);
		n += l2;
	}
	if (num >= 0)
		n += (size_t)snprintf(line + n, cap - n, " %" PRId64, num);
	line[n++] = '\n';
	/* the posix env's append is write(2) with no user-space buffer: the line survives a kill -9 */
	lsm_env *px = lsm_env_posix();
	int rc = px->append(fe->journal, line, n);
	free(line);
	return rc;
}

/* ---------------------------------------------------------------- bookkeeping */

/* REQUIRES: mu held. The node currently named path, or NULL. */
static struct fnode *cur_find(struct fault_env *fe, const char *path)
{
	for (struct fnode *n = fe->nodes; n; n = n->next)
		if (n->cur_path && !strcmp(n->cur_path, path))
			return n;
	return NULL;
}

/* REQUIRES: mu held. Index of path in the durable namespace, or -1. */
static long dur_find(struct fault_env *fe, const char *path)
{
	for (size_t i = 0; i < fe->ndur; i++)
		if (!strcmp(fe->dur[i].path, path))
			return (long)i;
	return -1;
}

/* REQUIRES: mu held. Free n once nothing refers to it any more. */
static void node_put(struct fault_env *fe, struct fnode *n)
{
	if (n->cur_path || n->dur_refs || n->handles)
		return;
	for (struct fnode **pp = &fe->nodes; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	}
	free(n->snap);
	free(n);
}

/* REQUIRES: mu held. A new node currently named path (not yet in the durable namespace). */
static int node_new(struct fault_env *fe, const char *path, int tracked, struct fnode **out)
{
	struct fnode *n = calloc(1, sizeof *n);
	if (!n)
		return -ENOMEM;
	if (!(n->cur_path = strdup(path))) {
		free(n);
		return -ENOMEM;
	}
	n->tracked = tracked;
	n->next = fe->nodes;
	fe->nodes = n;
	*out = n;
	return 0;
}

/* REQUIRES: mu held. Drop n's current name (it was unlinked or renamed over). */
static void node_unname(struct fault_env *fe, struct fnode *n)
{
	free(n->cur_path);
	n->cur_path = NULL;
	node_put(fe, n);
}

/* REQUIRES: mu held. Make the durable entry path name n. */
static int dur_set(struct fault_env *fe, const char *path, struct fnode *n)
{
	long i = dur_find(fe, path);
	if (i >= 0) {
		struct fnode *old = fe->dur[i].n;
		if (old != n) {
			fe->dur[i].n = n;
			n->dur_refs++;
			old->dur_refs--;
			node_put(fe, old);
		}
		return 0;
	}
	if (fe->ndur == fe->capdur) {
		size_t cap = fe->capdur ? fe->capdur * 2 : 16;
		struct dent *v = realloc(fe->dur, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		fe->dur = v;
		fe->capdur = cap;
	}
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	fe->dur[fe->ndur++] = (struct dent){p, n};
	n->dur_refs++;
	return 0;
}

/* REQUIRES: mu held. Remove durable entry i (order is not kept). */
static void dur_del(struct fault_env *fe, size_t i)
{
	struct fnode *n = fe->dur[i].n;
	free(fe->dur[i].path);
	fe->dur[i] = fe->dur[--fe->ndur];
	n->dur_refs--;
	node_put(fe, n);
}

/*
 * REQUIRES: mu held. Make sure a name that exists in the base env but was never seen is tracked, as an
 * untracked node that is durable under that name ("files that existed before are durable"), so that
 * renaming or truncating it can be undone.
 */
static int learn(struct fault_env *fe, const char *path)
{
	if (cur_find(fe, path) || dur_find(fe, path) >= 0)
		return 0;
	int rc = fe->base->exists(fe->base, path);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	struct fnode *n;
	rc = node_new(fe, path, 0, &n);
	if (rc < 0)
		return rc;
	rc = dur_set(fe, path, n);
	if (rc < 0)
		node_unname(fe, n);
	return rc;
}

/* Read path through env and keep at most limit bytes (the tail past a sync point is not wanted).
 * Only used for small files renamed over (CURRENT and the like) and by a crash, so the whole file may
 * be read. */
static int read_prefix(lsm_env *env, const char *path, uint64_t limit, char **out, size_t *len)
{
	int rc = lsm_env_read_all(env, path, out, len);
	if (rc == 0 && *len > limit)
		*len = (size_t)limit;
	return rc;
}

/* REQUIRES: mu held; n has a current name. Save n's durable bytes before it loses that name. */
static int snap_take(struct fault_env *fe, struct fnode *n)
{
	int rc = read_prefix(fe->base, n->cur_path, n->tracked ? n->synced : UINT64_MAX, &n->snap,
			     &n->snap_len);
	if (rc == 0)
		n->has_snap = 1;
	return rc;
}

static void snap_drop(struct fnode *n)
{
	free(n->snap);
	n->snap = NULL;
	n->snap_len = 0;
	n->has_snap = 0;
}

/* ---------------------------------------------------------------- writable files */

static int fault_new_writable(lsm_env *env, const char *path, lsm_wfile **out)
{
	struct fault_env *fe = fenv(env);
	lsm_env *b = fe->base;
	*out = NULL;
	int rc = gate(fe, K_ALL | K_WRITE | K_META, NULL);
	if (rc < 0)
		return rc;
	struct fault_wfile *w = malloc(sizeof *w);
	if (!w)
		return -ENOMEM;

	pthread_mutex_lock(&fe->mu);
	lsm_wfile *bf = NULL;
	rc = learn(fe, path); /* a truncated pre-existing file keeps its durable entry */
	if (rc == 0)
		rc = b->new_writable(b, path, &bf);
	struct fnode *n = NULL;
	int created = 0;
	if (rc == 0) {
		n = cur_find(fe, path);
		if (!n) {
			created = 1;
			rc = node_new(fe, path, 1, &n);
		}
	}
	if (rc == 0) {
		/* O_TRUNC: the same content (inode), now empty; the old bytes are treated as lost at once */
		n->tracked = 1;
		n->size = 0;
		n->synced = 0;
		n->handles++;
		rc = jlog(fe, created ? "create" : "reset", path, NULL, -1);
		if (rc < 0) {
			n->handles--;
			node_put(fe, n);
		}
	}
	pthread_mutex_unlock(&fe->mu);

	if (rc < 0) {
		if (bf)
			(void)b->close_writable(bf); /* keep the first error */
		free(w);
		return rc;
	}
	w->fe = fe;
	w->base = bf;
	w->n = n;
	*out = (lsm_wfile *)(void *)w;
	return 0;
}

static int fault_append(lsm_wfile *f, const void *data, size_t n)
{
	struct fault_wfile *w = from_w(f);
	struct fault_env *fe = w->fe;
	lsm_env *b = fe->base;
	int short_write;
	int rc = gate(fe, K_ALL | K_WRITE, &short_write);
	if (rc < 0) {
		size_t half = n / 2;
		if (short_write && half && b->append(w->base, data, half) == 0) {
			pthread_mutex_lock(&fe->mu);
			w->n->size += half;
			pthread_mutex_unlock(&fe->mu);
		}
		return rc;
	}
	rc = b->append(w->base, data, n);
	pthread_mutex_lock(&fe->mu);
	if (rc == 0) {
		w->n->size += n;
	} else if (w->n->cur_path) {
		/* the base wrote an unknown prefix: ask it, so a later sync covers what is really there */
		uint64_t sz;
		if (b->file_size(b, w->n->cur_path, &sz) == 0)
			w->n->size = sz;
	}
	pthread_mutex_unlock(&fe->mu);
	return rc;
}

static int fault_sync(lsm_wfile *f)
{
	struct fault_wfile *w = from_w(f);
	struct fault_env *fe = w->fe;
	int rc = gate(fe, K_ALL | K_SYNC, NULL);
	if (rc < 0)
		return rc;
	/* Appends to this handle come from this thread only, so the size cannot move during the sync. */
	pthread_mutex_lock(&fe->mu);
	uint64_t size = w->n->size;
	pthread_mutex_unlock(&fe->mu);

	rc = fe->base->sync(w->base);
	if (rc < 0)
		return rc;

	pthread_mutex_lock(&fe->mu);
	struct fnode *n = w->n;
	n->synced = size < n->size ? size : n->size; /* a truncate may have cut it meanwhile */
	if (n->cur_path) /* the name it has now: the sync follows renames of the open file */
		rc = jlog(fe, "sync", n->cur_path, NULL, (int64_t)n->synced);
	pthread_mutex_unlock(&fe->mu);
	return rc;
}

/* Even a failed (or crashed) close closes the base file: the contract frees f in every case. */
static int fault_close_writable(lsm_wfile *f)
{
	struct fault_wfile *w = from_w(f);
	struct fault_env *fe = w->fe;
	int rc = gate(fe, K_ALL, NULL);
	int crc = fe->base->close_writable(w->base);
	pthread_mutex_lock(&fe->mu);
	w->n->handles--;
	node_put(fe, w->n);
	pthread_mutex_unlock(&fe->mu);
	free(w);
	return rc < 0 ? rc : crc;
}

/* ---------------------------------------------------------------- readable files and queries */

static int fault_open_readable(lsm_env *env, const char *path, lsm_rfile **out)
{
	struct fault_env *fe = fenv(env);
	*out = NULL;
	int rc = gate(fe, K_ALL, NULL);
	if (rc < 0)
		return rc;
	struct fault_rfile *r = malloc(sizeof *r);
	if (!r)
		return -ENOMEM;
	rc = fe->base->open_readable(fe->base, path, &r->base);
	if (rc < 0) {
		free(r);
		return rc;
	}
	r->fe = fe;
	*out = (lsm_rfile *)(void *)r;
	return 0;
}

static int64_t fault_pread(lsm_rfile *f, void *buf, size_t n, uint64_t off)
{
	struct fault_rfile *r = from_r(f);
	int rc = gate(r->fe, K_ALL, NULL);
	if (rc < 0)
		return rc;
	return r->fe->base->pread(r->base, buf, n, off);
}

static int fault_close_readable(lsm_rfile *f)
{
	struct fault_rfile *r = from_r(f);
	int rc = gate(r->fe, K_ALL, NULL);
	int crc = r->fe->base->close_readable(r->base);
	free(r);
	return rc < 0 ? rc : crc;
}

static int fault_file_size(lsm_env *env, const char *path, uint64_t *size)
{
	struct fault_env *fe = fenv(env);
	int rc = gate(fe, K_ALL, NULL);
	return rc < 0 ? rc : fe->base->file_size(fe->base, path, size);
}

static int fault_exists(lsm_env *env, const char *path)
{
	struct fault_env *fe = fenv(env);
	int rc = gate(fe, K_ALL, NULL);
	return rc < 0 ? rc : fe->base->exists(fe->base, path);
}

static int fault_list(lsm_env *env, const char *dir, lsm_list_fn fn, void *arg)
{
	struct fault_env *fe = fenv(env);
	int rc = gate(fe, K_ALL, NULL);
	return rc < 0 ? rc : fe->base->list(fe->base, dir, fn, arg);
}

/* ---------------------------------------------------------------- metadata */

static int fault_mkdir(lsm_env *env, const char *path, unsigned mode)
{
	struct fault_env *fe = fenv(env);
	int rc = gate(fe, K_ALL | K_META, NULL);
	return rc < 0 ? rc : fe->base->mkdir(fe->base, path, mode);
}

static int fault_unlink(lsm_env *env, const char *path)
{
	struct fault_env *fe = fenv(env);
	lsm_env *b = fe->base;
	int rc = gate(fe, K_ALL | K_META, NULL);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&fe->mu);
	struct fnode *n = cur_find(fe, path);
	long di = dur_find(fe, path);
	int took = 0;
	/* Still durable under another name (a pending rename from there)? Keep its bytes for a crash. */
	if (n && n->dur_refs - (di >= 0 && fe->dur[di].n == n) > 0) {
		rc = snap_take(fe, n);
		took = rc == 0;
	}
	if (rc == 0)
		rc = b->unlink(b, path);
	if (rc == 0) {
		/* durable at once: a crash never brings the old file back (harsher than a disk) */
		if (di >= 0)
			dur_del(fe, (size_t)di);
		if (n)
			node_unname(fe, n);
		rc = jlog(fe, "unlink", path, NULL, -1);
	} else if (took) {
		snap_drop(n);
	}
	pthread_mutex_unlock(&fe->mu);
	return rc;
}

static int fault_rename(lsm_env *env, const char *from, const char *to)
{
	struct fault_env *fe = fenv(env);
	lsm_env *b = fe->base;
	int rc = gate(fe, K_ALL | K_RENAME | K_META, NULL);
	if (rc < 0)
		return rc;
	if (!strcmp(from, to))
		return b->rename(b, from, to); /* a no-op for rename(2), and for the bookkeeping */

	char *newname = strdup(to); /* allocated first: after the base rename we must not fail */
	if (!newname)
		return -ENOMEM;
	pthread_mutex_lock(&fe->mu);
	rc = learn(fe, from);
	if (rc == 0)
		rc = learn(fe, to);
	struct fnode *n = cur_find(fe, from);
	struct fnode *old = cur_find(fe, to);
	int took = 0;
	if (rc == 0 && old && old->dur_refs > 0) {
		/* the replaced file loses its only name, but a crash before the dir sync brings it back */
		rc = snap_take(fe, old);
		took = rc == 0;
	}
	if (rc == 0)
		rc = b->rename(b, from, to);
	if (rc < 0) {
		if (took)
			snap_drop(old);
		pthread_mutex_unlock(&fe->mu);
		free(newname);
		return rc;
	}
	int replaced_durable = dur_find(fe, to) >= 0;
	if (old)
		node_unname(fe, old);
	if (n) {
		free(n->cur_path);
		n->cur_path = newname;
	} else {
		free(newname); /* from was never seen and did not exist when we looked: nothing to follow */
	}
	rc = jlog(fe, "rename", from, to, replaced_durable);
	pthread_mutex_unlock(&fe->mu);
	return rc;
}

static int fault_truncate(lsm_env *env, const char *path, uint64_t len)
{
	struct fault_env *fe = fenv(env);
	lsm_env *b = fe->base;
	int rc = gate(fe, K_ALL | K_META, NULL);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&fe->mu);
	rc = b->truncate(b, path, len);
	if (rc == 0) {
		/* A cut is treated as durable at once (like unlink); an extension's zeros are not synced.
		 * An untracked file stays durable as it is. */
		struct fnode *n = cur_find(fe, path);
		if (n && n->tracked) {
			n->size = len;
			if (n->synced > len)
				n->synced = len;
		}
		rc = jlog(fe, "truncate", path, NULL, len > INT64_MAX ? INT64_MAX : (int64_t)len);
	}
	pthread_mutex_unlock(&fe->mu);
	return rc;
}

/* REQUIRES: mu held. The durable namespace of dir becomes its current namespace. */
static int dir_make_durable(struct fault_env *fe, const char *dir)
{
	for (size_t i = 0; i < fe->ndur;) {
		if (in_dir(fe->dur[i].path, dir) && !cur_find(fe, fe->dur[i].path))
			dur_del(fe, i); /* renamed away (or never recreated): the old name goes */
		else
			i++;
	}
	for (struct fnode *n = fe->nodes; n; n = n->next) {
		if (n->cur_path && in_dir(n->cur_path, dir)) {
			int rc = dur_set(fe, n->cur_path, n); /* never frees n: it has a current name */
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int fault_sync_dir(lsm_env *env, const char *dir)
{
	struct fault_env *fe = fenv(env);
	lsm_env *b = fe->base;
	int rc = gate(fe, K_ALL | K_SYNC | K_META, NULL);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&fe->mu);
	rc = b->sync_dir(b, dir);
	if (rc == 0)
		rc = dir_make_durable(fe, dir);
	if (rc == 0)
		rc = jlog(fe, "syncdir", dir, NULL, -1);
	pthread_mutex_unlock(&fe->mu);
	return rc;
}

/* ---------------------------------------------------------------- locks */

static int fault_lock(lsm_env *env, const char *path, lsm_flock **out)
{
	struct fault_env *fe = fenv(env);
	*out = NULL;
	int rc = gate(fe, K_ALL, NULL);
	if (rc < 0)
		return rc;
	struct fault_flock *l = malloc(sizeof *l);
	if (!l)
		return -ENOMEM;
	rc = fe->base->lock(fe->base, path, &l->base);
	if (rc < 0) {
		free(l);
		return rc;
	}
	l->fe = fe;
	*out = (lsm_flock *)(void *)l;
	return 0;
}

/* A failed unlock still releases the base lock: a dead machine holds no locks either. */
static int fault_unlock(lsm_flock *fl)
{
	struct fault_flock *l = from_l(fl);
	int rc = gate(l->fe, K_ALL, NULL);
	int urc = l->fe->base->unlock(l->base);
	free(l);
	return rc < 0 ? rc : urc;
}

static int fault_lock_held(lsm_env *env, const char *path)
{
	struct fault_env *fe = fenv(env);
	int rc = gate(fe, K_ALL, NULL);
	return rc < 0 ? rc : fe->base->lock_held(fe->base, path);
}

/* ---------------------------------------------------------------- power loss */

/* What a crash writes under a durable name whose bytes live elsewhere. */
struct restore {
	int want;       /* 1: write data under the entry's name */
	char *data;
	size_t len;
	int owned;      /* data was read for the crash (else it is a node's snapshot) */
};

static void keep_first(int *first, int rc)
{
	if (rc < 0 && *first == 0)
		*first = rc;
}

/*
 * Reads come first (a name about to be deleted or rewritten may hold bytes another name needs), then
 * deletes of names that were never durable, cuts in place, and rewrites of moved names. Errors do not
 * stop the crash; the first one is returned.
 */
int lsm_fault_crash(lsm_env *env)
{
	struct fault_env *fe = fenv(env);
	lsm_env *b = fe->base;
	int first = 0;
	pthread_mutex_lock(&fe->mu);

	struct restore *rs = fe->ndur ? calloc(fe->ndur, sizeof *rs) : NULL;
	if (fe->ndur && !rs) {
		pthread_mutex_unlock(&fe->mu);
		return -ENOMEM; /* nothing changed: the caller may retry */
	}
	for (size_t i = 0; i < fe->ndur; i++) {
		struct fnode *n = fe->dur[i].n;
		if (n->cur_path && !strcmp(n->cur_path, fe->dur[i].path))
			continue; /* in place: cut below */
		if (n->cur_path) {
			int rc = read_prefix(b, n->cur_path, n->tracked ? n->synced : UINT64_MAX, &rs[i].data,
					     &rs[i].len);
			if (rc == 0)
				rs[i].want = rs[i].owned = 1;
			else if (rc != -ENOENT)
				keep_first(&first, rc);
		} else if (n->has_snap) {
			rs[i] = (struct restore){1, n->snap, n->snap_len, 0};
		}
	}
	for (struct fnode *n = fe->nodes; n; n = n->next) {
		if (n->cur_path && dur_find(fe, n->cur_path) < 0) {
			int rc = b->unlink(b, n->cur_path);
			if (rc != -ENOENT)
				keep_first(&first, rc);
		}
	}
	for (size_t i = 0; i < fe->ndur; i++) {
		struct fnode *n = fe->dur[i].n;
		if (!n->tracked || !n->cur_path || strcmp(n->cur_path, fe->dur[i].path))
			continue;
		uint64_t size;
		int rc = b->file_size(b, n->cur_path, &size);
		if (rc == 0 && size > n->synced)
			rc = b->truncate(b, n->cur_path, n->synced);
		if (rc != -ENOENT)
			keep_first(&first, rc);
	}
	for (size_t i = 0; i < fe->ndur; i++) {
		if (rs[i].want)
			keep_first(&first, lsm_env_write_all(b, fe->dur[i].path, rs[i].data, rs[i].len, 0));
		if (rs[i].owned)
			free(rs[i].data);
	}
	free(rs);

	/* Forget everything: what the base holds now is durable. Nodes of still-open handles stay,
	 * nameless, until those handles close. */
	while (fe->ndur)
		dur_del(fe, fe->ndur - 1);
	for (struct fnode *n = fe->nodes, *next; n; n = next) {
		next = n->next;
		snap_drop(n);
		if (n->cur_path)
			node_unname(fe, n);
	}
	disarm(fe);
	pthread_mutex_unlock(&fe->mu);
	return first;
}

/* ---------------------------------------------------------------- life cycle */

/* REQUIRES: every handle and lock obtained through the wrapper closed. The base is not destroyed. */
static void fault_destroy(lsm_env *env)
{
	struct fault_env *fe = fenv(env);
	if (fe->journal)
		lsm_env_posix()->close_writable(fe->journal);
	for (size_t i = 0; i < fe->ndur; i++)
		free(fe->dur[i].path);
	free(fe->dur);
	for (struct fnode *n = fe->nodes, *next; n; n = next) {
		next = n->next;
		free(n->cur_path);
		free(n->snap);
		free(n);
	}
	pthread_mutex_destroy(&fe->mu);
	free(fe);
}

lsm_env *lsm_fault_env_new(lsm_env *base)
{
	struct fault_env *fe = calloc(1, sizeof *fe);
	if (!fe)
		return NULL;
	if (pthread_mutex_init(&fe->mu, NULL) != 0) {
		free(fe);
		return NULL;
	}
	fe->base = base;
	fe->env = (lsm_env){
		.new_writable = fault_new_writable,
		.append = fault_append,
		.sync = fault_sync,
		.close_writable = fault_close_writable,
		.open_readable = fault_open_readable,
		.pread = fault_pread,
		.close_readable = fault_close_readable,
		.file_size = fault_file_size,
		.exists = fault_exists,
		.list = fault_list,
		.mkdir = fault_mkdir,
		.unlink = fault_unlink,
		.rename = fault_rename,
		.truncate = fault_truncate,
		.sync_dir = fault_sync_dir,
		.lock = fault_lock,
		.unlock = fault_unlock,
		.lock_held = fault_lock_held,
		.destroy = fault_destroy,
	};
	return &fe->env;
}

/* The journal lives outside the store (it must outlive a kill -9 of the process using the store), so it
 * is always a real file, opened with the posix env whatever the base is. */
int lsm_fault_env_new_journal(lsm_env *base, const char *journal_path, lsm_env **out)
{
	*out = NULL;
	lsm_env *env = lsm_fault_env_new(base);
	if (!env)
		return -ENOMEM;
	struct fault_env *fe = fenv(env);
	lsm_env *px = lsm_env_posix();
	int rc = px->new_writable(px, journal_path, &fe->journal);
	if (rc == 0)
		rc = px->append(fe->journal, JOURNAL_HEADER, strlen(JOURNAL_HEADER));
	if (rc < 0) {
		fault_destroy(env);
		return rc;
	}
	*out = env;
	return 0;
}

/* ---------------------------------------------------------------- journal replay */

/* What the replay knows of one name; a name with no record is left as it is (durable). */
struct jrec {
	char *path;
	uint64_t synced;
	int durable;
};

struct jtab {
	struct jrec *v;
	size_t n, cap;
};

static long jt_find(struct jtab *t, const char *path)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].path, path))
			return (long)i;
	return -1;
}

static void jt_del(struct jtab *t, size_t i)
{
	free(t->v[i].path);
	t->v[i] = t->v[--t->n];
}

/* Set path's record, replacing any. */
static int jt_put(struct jtab *t, const char *path, uint64_t synced, int durable)
{
	long i = jt_find(t, path);
	if (i >= 0) {
		t->v[i].synced = synced;
		t->v[i].durable = durable;
		return 0;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct jrec *v = realloc(t->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	t->v[t->n++] = (struct jrec){p, synced, durable};
	return 0;
}

/* One parsed journal line: up to two paths (NUL-terminated copies) and a number. */
struct jline {
	char op[16];
	char *path[2];
	int npath;
	uint64_t num;
	int has_num;
};

static void jline_free(struct jline *l)
{
	free(l->path[0]);
	free(l->path[1]);
	l->path[0] = l->path[1] = NULL;
}

/* Digits at *pp (before end) as a number; 0, -EAGAIN at the end of input, -EINVAL if malformed. */
static int parse_u64(const char **pp, const char *end, uint64_t *v)
{
	const char *p = *pp;
	uint64_t r = 0;
	if (p == end)
		return -EAGAIN;
	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (p < end && *p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (r > (UINT64_MAX - d) / 10)
			return -EINVAL;
		r = r * 10 + d;
		p++;
	}
	*pp = p;
	*v = r;
	return 0;
}

/*
 * Parse the line at *pp. Returns 0 (and moves *pp past it), -EAGAIN if the input ends inside it (the
 * last write was cut short: the event is treated as not logged) or -EINVAL if it is malformed.
 */
static int parse_line(const char **pp, const char *end, struct jline *l)
{
	const char *p = *pp;
	memset(l, 0, sizeof *l);
	size_t on = 0;
	while (p < end && *p != ' ' && *p != '\n') {
		if (on + 1 >= sizeof l->op)
			return -EINVAL;
		l->op[on++] = *p++;
	}
	for (;;) {
		if (p == end)
			goto torn;
		if (*p == '\n')
			break;
		if (*p != ' ' || l->has_num)
			goto bad;
		p++;
		uint64_t v;
		int rc = parse_u64(&p, end, &v);
		if (rc == -EAGAIN)
			goto torn;
		if (rc < 0)
			goto bad;
		if (p < end && *p == ':') { /* LENGTH:BYTES */
			p++;
			if (l->npath == 2 || v > (uint64_t)(end - p))
				goto torn_or_bad;
			if (!(l->path[l->npath] = strndup(p, (size_t)v)))
				return -ENOMEM;
			if (strlen(l->path[l->npath]) != v)
				goto bad; /* a NUL inside a path */
			l->npath++;
			p += v;
		} else {
			l->num = v;
			l->has_num = 1;
		}
	}
	*pp = p + 1;
	return 0;
torn_or_bad:
	if (l->npath < 2)
		goto torn;
bad:
	jline_free(l);
	return -EINVAL;
torn:
	jline_free(l);
	return -EAGAIN;
}

/* Apply one event to the table; -EINVAL if its arguments do not fit its name. */
static int replay(struct jtab *t, const struct jline *l)
{
	const char *op = l->op;
	int one = l->npath == 1 && !l->has_num, one_num = l->npath == 1 && l->has_num;
	if (!strcmp(op, "create") && one)
		return jt_put(t, l->path[0], 0, 0);
	if (!strcmp(op, "reset") && one) {
		long i = jt_find(t, l->path[0]);
		return jt_put(t, l->path[0], 0, i >= 0 ? t->v[i].durable : 1);
	}
	if (!strcmp(op, "sync") && one_num) {
		long i = jt_find(t, l->path[0]);
		if (i >= 0)
			t->v[i].synced = l->num;
		return 0;
	}
	if (!strcmp(op, "truncate") && one_num) {
		long i = jt_find(t, l->path[0]);
		if (i >= 0 && t->v[i].synced > l->num)
			t->v[i].synced = l->num;
		return 0;
	}
	if (!strcmp(op, "syncdir") && one) {
		for (size_t i = 0; i < t->n; i++)
			if (in_dir(t->v[i].path, l->path[0]))
				t->v[i].durable = 1;
		return 0;
	}
	if (!strcmp(op, "unlink") && one) {
		long i = jt_find(t, l->path[0]);
		if (i >= 0)
			jt_del(t, (size_t)i);
		return 0;
	}
	if (!strcmp(op, "rename") && l->npath == 2 && l->has_num) {
		/* Not undone: the new name keeps the moved file, and it must survive whenever either the
		 * moved file's old entry or the replaced target's entry was durable, or neither name would. */
		long fi = jt_find(t, l->path[0]);
		long ti = jt_find(t, l->path[1]);
		if (ti >= 0) {
			jt_del(t, (size_t)ti);
			fi = jt_find(t, l->path[0]); /* jt_del moved the last record */
		}
		if (fi < 0)
			return 0; /* an untracked file: durable as it is, under its new name too */
		uint64_t synced = t->v[fi].synced;
		int durable = t->v[fi].durable || l->num;
		jt_del(t, (size_t)fi);
		return jt_put(t, l->path[1], synced, durable);
	}
	return -EINVAL;
}

int lsm_fault_apply_journal(const char *journal_path, int *files_cut, int *files_deleted)
{
	lsm_env *px = lsm_env_posix();
	*files_cut = *files_deleted = 0;
	char *text;
	size_t len;
	int rc = lsm_env_read_all(px, journal_path, &text, &len);
	if (rc < 0)
		return rc;

	struct jtab t = {0};
	const char *p = text, *end = text + len;
	size_t hl = strlen(JOURNAL_HEADER);
	if (len < hl || memcmp(text, JOURNAL_HEADER, hl)) {
		/* a journal killed before its header was complete holds no event */
		rc = memcmp(text, JOURNAL_HEADER, len < hl ? len : hl) ? -EINVAL : 0;
		goto out;
	}
	p += hl;
	while (p < end) {
		struct jline l;
		rc = parse_line(&p, end, &l);
		if (rc == -EAGAIN) {
			rc = 0; /* a torn last line */
			break;
		}
		if (rc < 0)
			goto out;
		rc = replay(&t, &l);
		jline_free(&l);
		if (rc < 0)
			goto out;
	}

	for (size_t i = 0; i < t.n; i++) {
		const char *path = t.v[i].path;
		int r;
		if (!t.v[i].durable) {
			r = px->unlink(px, path);
			if (r == 0)
				(*files_deleted)++;
		} else {
			uint64_t size;
			r = px->file_size(px, path, &size);
			if (r == 0 && size > t.v[i].synced) {
				r = px->truncate(px, path, t.v[i].synced);
				if (r == 0)
					(*files_cut)++;
			}
		}
		if (r < 0 && r != -ENOENT && rc == 0)
			rc = r; /* keep going: cut what we can, report the first error */
	}
out:
	while (t.n)
		jt_del(&t, t.n - 1);
	free(t.v);
	free(text);
	return rc;
}
