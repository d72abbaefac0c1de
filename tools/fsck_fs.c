/*
 * fsck_fs.c - the filesystem's invariants over the store's keys (fs/schema.h), and their repair.
 *
 * Two scans of one consistent view: the inode records first (a table of every inode), then every other
 * key in order, counting for each inode the entries that name it, for each directory its entries and
 * subdirectories, and checking each block, symlink target, xattr and orphan record against its inode.
 * Then per inode: link counts, entry counts, reachability from the root. A problem whose fix removes an
 * entry is counted as already fixed (the entry does not count), so the counts describe the store as it
 * is after --repair and a second check is clean.
 *
 * Repairs are ordinary write batches through the store (never partial records): deleting stray keys,
 * trimming blocks, rewriting an inode record with corrected counts, linking unattached inodes into
 * /lost+found as "#INO".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsck.h"
#include "schema.h"

#define IR_BAD 1       /* the inode record does not decode */
#define IR_TARGET 2    /* a symlink target is stored */
#define IR_ORPHAN 4    /* on the orphan list */
#define IR_PENDING 8   /* an orphan awaiting reclaim (no links, on the list): not checked further */
#define IR_UNATTACHED 16 /* no entry names it (reported; linked into /lost+found when repairing) */

enum { REACH_UNKNOWN, REACH_VISITING, REACH_OK, REACH_CUT };

struct irec {
	uint64_t ino;
	uint32_t mode, nlink;
	uint64_t size, nentries;
	uint32_t nxattrs;
	uint32_t links;      /* entries naming it (that stay after repair) */
	uint32_t subdirs;    /* directories: subdirectories among its entries */
	uint64_t entries;    /* directories: entries in it */
	uint32_t xattrs;
	uint64_t target_len;
	/* Directories: what this run's own repairs changed (entries added to /lost+found and to the root
	 * for it, entries moved away): a stored count that differs only by these is not a problem, but is
	 * rewritten. */
	int64_t d_entries, d_subdirs;
	uint64_t parent;     /* directories: the directory whose entry names it */
	char *name;          /* directories: that entry's name (malloc'd) */
	size_t namelen;
	uint8_t flags;
	uint8_t reach;
};

struct itab {
	struct irec *v;
	size_t n, cap;
	uint32_t *slots;     /* open addressing: index + 1, 0 = empty */
	size_t nslots;
};

struct fsctx {
	struct fsck *c;
	struct itab t;
	uint32_t bs;
	uint64_t max_ino;
	uint64_t alloc_next;     /* the allocator record's value (0: none) */
	int have_alloc;
	uint64_t scan_max;       /* the largest inode number the scan found */
	uint64_t lf;             /* /lost+found's inode (0: none yet) */
	int lf_failed;
	/* Repair writes. */
	lsm_batch *b;
	uint32_t nops;
	uint64_t pending_fixes;  /* problems counted as fixed whose writes are not committed yet */
	int write_failed;
	uint64_t by_type[8];     /* inodes: reg dir lnk fifo chr blk sock other */
};

/* ---------------------------------------------------------------- inode table */

static uint64_t hash_ino(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return x;
}

static struct irec *itab_get(struct itab *t, uint64_t ino)
{
	if (!t->nslots)
		return NULL;
	for (size_t i = hash_ino(ino) & (t->nslots - 1);; i = (i + 1) & (t->nslots - 1)) {
		uint32_t s = t->slots[i];
		if (!s)
			return NULL;
		if (t->v[s - 1].ino == ino)
			return &t->v[s - 1];
	}
}

static int itab_grow(struct itab *t)
{
	size_t ns = t->nslots ? 2 * t->nslots : 1024;
	uint32_t *slots = calloc(ns, sizeof *slots);
	if (!slots)
		return -1;
	for (size_t k = 0; k < t->n; k++) {
		size_t i = hash_ino(t->v[k].ino) & (ns - 1);
		while (slots[i])
			i = (i + 1) & (ns - 1);
		slots[i] = (uint32_t)(k + 1);
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = ns;
	return 0;
}

/* Add a record (pointers into the table are invalid afterwards). NULL on out of memory. */
static struct irec *itab_add(struct itab *t, uint64_t ino)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 1024;
		struct irec *v = realloc(t->v, cap * sizeof *v);
		if (!v)
			return NULL;
		t->v = v;
		t->cap = cap;
	}
	if (2 * (t->n + 1) > t->nslots && itab_grow(t))
		return NULL;
	struct irec *r = &t->v[t->n];
	memset(r, 0, sizeof *r);
	r->ino = ino;
	size_t i = hash_ino(ino) & (t->nslots - 1);
	while (t->slots[i])
		i = (i + 1) & (t->nslots - 1);
	t->slots[i] = (uint32_t)(++t->n);
	return r;
}

static void itab_free(struct itab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
	free(t->slots);
}

/* ---------------------------------------------------------------- repair writes */

static void fix_commit(struct fsctx *x)
{
	if (!x->b || !x->nops)
		return;
	int rc = x->write_failed ? LSM_INVAL : lsm_write(x->c->db, x->b, 0);
	if (rc) {
		if (!x->write_failed)
			fsck_operr(x->c, "repair write failed: %s", lsm_errmsg());
		x->write_failed = 1;
		fsck_unfix(x->c, x->pending_fixes);
	}
	lsm_batch_clear(x->b);
	x->nops = 0;
	x->pending_fixes = 0;
}

/* Batches stay small so that a huge repair never builds one huge memtable entry set at once. A batch is
 * committed only between problems (fix_boundary, from PROBLEM_FIX), never in the middle of one problem's
 * writes: each fix is then all written or not at all, and a failed batch un-counts exactly the problems
 * whose writes it held. (So a batch can exceed the limit by the few writes of one problem.) */
#define FIX_BATCH_OPS 1024

static void fix_boundary(struct fsctx *x)
{
	if (x->nops >= FIX_BATCH_OPS)
		fix_commit(x);
}

static void fix_op(struct fsctx *x, int del, const void *k, size_t kl, const void *v, size_t vl)
{
	if (!x->c->repair)
		return;
	if (!x->b && !(x->b = lsm_batch_new())) {
		fsck_operr(x->c, "out of memory");
		x->write_failed = 1;
		return;
	}
	int rc = del ? lsm_batch_delete(x->b, k, kl) : lsm_batch_put(x->b, k, kl, v, vl);
	if (rc) {
		fsck_operr(x->c, "out of memory");
		x->write_failed = 1;
	}
	x->nops++;
}

/* A problem with a fix: report it, and count the fix as pending until its batch commits. Its writes
 * (fix_op) follow it, before the next problem. */
#define PROBLEM_FIX(x, code, k, kl, fix, ...)                                        \
	do {                                                                         \
		const char *fix_ = (fix);                                            \
		fix_boundary(x);                                                     \
		fsck_problem((x)->c, code, k, kl, NULL, fix_, !(x)->write_failed, __VA_ARGS__); \
		if ((x)->c->repair && !(x)->write_failed && fix_)                    \
			(x)->pending_fixes++;                                        \
	} while (0)
#define PROBLEM(x, code, k, kl, ...) fsck_problem((x)->c, code, k, kl, NULL, NULL, 0, __VA_ARGS__)

static const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "regular file";
	case S_IFDIR: return "directory";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFCHR: return "character device";
	case S_IFBLK: return "block device";
	case S_IFSOCK: return "socket";
	}
	return "inode of unknown type";
}

static const char *dtype_name(unsigned t)
{
	static const char *n[] = {"unknown", "fifo", "character device", "?", "directory", "?", "block device", "?",
				  "regular file", "?", "symlink", "?", "socket"};
	return t < sizeof n / sizeof n[0] ? n[t] : "?";
}

static int type_index(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return 0;
	case S_IFDIR: return 1;
	case S_IFLNK: return 2;
	case S_IFIFO: return 3;
	case S_IFCHR: return 4;
	case S_IFBLK: return 5;
	case S_IFSOCK: return 6;
	}
	return 7;
}

/* A failed read (what: "reading the inodes", ...). On a mounted store that moved on meanwhile (a table
 * compacted away before this check opened it) it is a note, and lsmfsck.c runs the check again. */
static void read_failed(struct fsctx *x, const void *k, size_t kl, const char *what, const char *then)
{
	struct fsck *c = x->c;
	char err[512];
	snprintf(err, sizeof err, "%s", lsm_errmsg());
	if (c->locked && fsck_store_changed(c)) {
		fsck_note(c, "store-changed", "%s failed while the running store changed the store (%s)", what, err);
		c->moved = 1;
		return;
	}
	PROBLEM(x, "read-error", k, kl, "%s failed: %s%s", what, err, then);
}

/* ---------------------------------------------------------------- pass 1: inodes */

/* An iterator for a whole-store pass (not filling the block cache: each block is read once), or NULL
 * with the error reported. */
static lsm_iter *scan_iter(struct fsck *c)
{
	struct lsm_read_options ro = {.dont_fill_cache = 1};
	lsm_iter *it = lsm_iter_new(c->db, &ro);
	if (!it)
		fsck_operr(c, "out of memory");
	return it;
}

static int scan_inodes(struct fsctx *x)
{
	struct fsck *c = x->c;
	lsm_iter *it = scan_iter(c);
	if (!it)
		return -1;
	char p = FS_K_INODE;
	for (lsm_iter_seek(it, &p, 1); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *k = lsm_iter_key(it, &kl);
		if (kl == 0 || k[0] != FS_K_INODE)
			break;
		const void *v = lsm_iter_value(it, &vl);
		struct fs_key d;
		if (fs_key_decode(k, kl, &d)) {
			PROBLEM(x, "bad-key", k, kl, "malformed inode key");
			continue;
		}
		struct fs_inode in = {.ino = d.ino};
		int bad = fs_inode_decode(v, vl, &in) != 0;
		if (d.ino == 0) {
			PROBLEM(x, "bad-key", k, kl, "inode number 0");
			continue;
		}
		struct irec *r = itab_add(&x->t, d.ino);
		if (!r) {
			fsck_operr(c, "out of memory");
			lsm_iter_free(it);
			return -1;
		}
		if (bad) {
			r->flags |= IR_BAD;
			PROBLEM(x, "bad-inode", k, kl, "the inode record (%zu bytes) does not decode", vl);
		} else {
			r->mode = in.mode;
			r->nlink = in.nlink;
			r->size = in.size;
			r->nentries = in.nentries;
			r->nxattrs = in.nxattrs;
			x->by_type[type_index(in.mode)]++;
		}
		if (d.ino > x->max_ino)
			x->max_ino = d.ino;
		c->inodes++;
		if ((c->inodes & 1023) == 0)
			fsck_progress(c, "reading inodes", c->inodes, 0);
	}
	int st = lsm_iter_status(it);
	lsm_iter_free(it);
	if (st) {
		read_failed(x, NULL, 0, "reading the inodes", "; filesystem checks stopped");
		return -1;
	}
	x->scan_max = x->max_ino;
	/* Room for /lost+found, so that a pointer into the table survives its creation. */
	if (x->t.n == x->t.cap) {
		struct irec *v = realloc(x->t.v, (x->t.cap + 1) * sizeof *v);
		if (!v) {
			fsck_operr(c, "out of memory");
			return -1;
		}
		x->t.v = v;
		x->t.cap++;
	}
	return 0;
}

/* ---------------------------------------------------------------- pass 2: everything else */

/* trim: room for one block (the trimmed value is written from it). */
static void check_block(struct fsctx *x, const char *k, size_t kl, const struct fs_key *d, const char *v, size_t vl,
			char *trim)
{
	struct irec *r = itab_get(&x->t, d->ino);
	x->c->blocks++;
	if (!r) {
		PROBLEM_FIX(x, "block-orphan", k, kl, "block deleted", "block of inode %" PRIu64 ", which does not exist",
			    d->ino);
		fix_op(x, 1, k, kl, NULL, 0);
		return;
	}
	if (r->flags & IR_BAD)
		return;
	if (!S_ISREG(r->mode)) {
		PROBLEM_FIX(x, "block-not-file", k, kl, "block deleted", "block of inode %" PRIu64 ", a %s", d->ino,
			    type_name(r->mode));
		fix_op(x, 1, k, kl, NULL, 0);
		return;
	}
	if (d->blockno >= UINT64_MAX / x->bs || d->blockno * x->bs >= r->size) {
		PROBLEM_FIX(x, "block-past-eof", k, kl, "block deleted",
			    "block %" PRIu64 " (%zu bytes) starts past the end of the file (size %" PRIu64 ")", d->blockno, vl,
			    r->size);
		fix_op(x, 1, k, kl, NULL, 0);
		return;
	}
	uint64_t start = d->blockno * x->bs;
	uint64_t room = r->size - start < x->bs ? r->size - start : x->bs;
	if (vl > room) {
		char fix[64];
		snprintf(fix, sizeof fix, "trimmed to %" PRIu64 " bytes", room);
		if (vl > x->bs)
			PROBLEM_FIX(x, "block-too-big", k, kl, fix, "block holds %zu bytes, more than the block size %u", vl,
				    x->bs);
		else
			PROBLEM_FIX(x, "block-past-eof", k, kl, fix,
				    "block %" PRIu64 " holds %zu bytes, %" PRIu64 " past the end of the file (size %" PRIu64 ")",
				    d->blockno, vl, start + vl - r->size, r->size);
		memcpy(trim, v, room);
		fix_op(x, 0, k, kl, trim, room);
	}
}

static int bad_name(const char *n, size_t len)
{
	if ((len == 1 && n[0] == '.') || (len == 2 && n[0] == '.' && n[1] == '.'))
		return 1;
	for (size_t i = 0; i < len; i++)
		if (n[i] == '/' || n[i] == 0)
			return 1;
	return 0;
}

static void check_dirent(struct fsctx *x, const char *k, size_t kl, const struct fs_key *d, const void *v, size_t vl)
{
	struct fsck *c = x->c;
	uint64_t ino;
	unsigned type;
	c->dirents++;
	if (fs_dirent_decode(v, vl, &ino, &type)) {
		PROBLEM_FIX(x, "bad-entry", k, kl, "entry deleted", "the entry's value (%zu bytes) does not decode", vl);
		fix_op(x, 1, k, kl, NULL, 0);
		return;
	}
	if (bad_name(d->name, d->namelen)) {
		PROBLEM_FIX(x, "bad-name", k, kl, "entry deleted", "a name no directory may hold (inode %" PRIu64 ")", ino);
		fix_op(x, 1, k, kl, NULL, 0);
		return;
	}
	struct irec *p = itab_get(&x->t, d->ino);
	if (!p) {
		PROBLEM_FIX(x, "entry-orphan", k, kl, "entry deleted",
			    "entry in directory %" PRIu64 ", which does not exist (names inode %" PRIu64 ")", d->ino, ino);
		fix_op(x, 1, k, kl, NULL, 0);
		return;
	}
	if (!(p->flags & IR_BAD) && !S_ISDIR(p->mode)) {
		PROBLEM_FIX(x, "entry-not-dir", k, kl, "entry deleted", "entry in inode %" PRIu64 ", a %s, not a directory",
			    d->ino, type_name(p->mode));
		fix_op(x, 1, k, kl, NULL, 0);
		return;
	}
	struct irec *ch = itab_get(&x->t, ino);
	if (!ch) {
		PROBLEM_FIX(x, "dangling-entry", k, kl, "entry deleted", "names inode %" PRIu64 ", which does not exist", ino);
		fix_op(x, 1, k, kl, NULL, 0);
		return;
	}
	if (ino == FS_ROOT_INO) {
		PROBLEM_FIX(x, "entry-names-root", k, kl, "entry deleted", "names the root directory");
		fix_op(x, 1, k, kl, NULL, 0);
		return;
	}
	if (!(ch->flags & IR_BAD)) {
		unsigned want = fs_mode_to_dtype(ch->mode);
		if (type != want) {
			char fix[64], nv[FS_DIRENT_LEN];
			snprintf(fix, sizeof fix, "type set to %s", dtype_name(want));
			PROBLEM_FIX(x, "entry-type", k, kl, fix, "says the inode %" PRIu64 " is a %s, it is a %s", ino,
				    dtype_name(type), type_name(ch->mode));
			fs_dirent_encode(ino, want, nv);
			fix_op(x, 0, k, kl, nv, sizeof nv);
		}
		if (S_ISDIR(ch->mode)) {
			if (ch->links) {
				PROBLEM_FIX(x, "dir-hardlink", k, kl, "entry deleted",
					    "names directory %" PRIu64 ", which another entry (in directory %" PRIu64 ") names",
					    ino, ch->parent);
				fix_op(x, 1, k, kl, NULL, 0);
				return;
			}
			ch->parent = d->ino;
			ch->name = malloc(d->namelen ? d->namelen : 1);
			if (ch->name)
				memcpy(ch->name, d->name, d->namelen);
			ch->namelen = d->namelen;
			p->subdirs++;
		}
	}
	ch->links++;
	p->entries++;
}

static int scan_keys(struct fsctx *x)
{
	struct fsck *c = x->c;
	lsm_iter *it = scan_iter(c);
	if (!it)
		return -1;
	uint64_t n = 0;
	char *trim = malloc(x->bs);
	if (!trim) {
		lsm_iter_free(it);
		fsck_operr(c, "out of memory");
		return -1;
	}
	for (lsm_iter_seek_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *k = lsm_iter_key(it, &kl);
		const char *v = lsm_iter_value(it, &vl);
		if ((++n & 4095) == 0)
			fsck_progress(c, "reading keys", n, 0);
		if (kl > 0 && k[0] == FS_K_INODE) {
			/* Scanned already: skip to the next kind. */
			char next = FS_K_INODE + 1;
			lsm_iter_seek(it, &next, 1);
			if (!lsm_iter_valid(it))
				break;
			k = lsm_iter_key(it, &kl);
			v = lsm_iter_value(it, &vl);
		}
		struct fs_key d;
		if (fs_key_decode(k, kl, &d)) {
			int known = kl > 0 && k[0] && strchr("SNidblxo", k[0]) != NULL;
			PROBLEM(x, known ? "bad-key" : "unknown-key", k, kl, "%s (%zu bytes)",
				known ? "malformed key" : "key of no kind the filesystem writes", kl);
			continue;
		}
		switch (d.kind) {
		case FS_K_SUPER:
		case FS_K_ALLOC:
			break; /* checked by the caller */
		case FS_K_BLOCK:
			check_block(x, k, kl, &d, v, vl, trim);
			break;
		case FS_K_DIRENT:
			check_dirent(x, k, kl, &d, v, vl);
			break;
		case FS_K_SYMLINK: {
			struct irec *r = itab_get(&x->t, d.ino);
			if (!r) {
				PROBLEM_FIX(x, "target-orphan", k, kl, "target deleted",
					    "symlink target of inode %" PRIu64 ", which does not exist", d.ino);
				fix_op(x, 1, k, kl, NULL, 0);
			} else if (!(r->flags & IR_BAD) && !S_ISLNK(r->mode)) {
				PROBLEM_FIX(x, "target-not-symlink", k, kl, "target deleted",
					    "symlink target of inode %" PRIu64 ", a %s", d.ino, type_name(r->mode));
				fix_op(x, 1, k, kl, NULL, 0);
			} else {
				r->flags |= IR_TARGET;
				r->target_len = vl;
				c->symlinks++;
			}
			break;
		}
		case FS_K_XATTR: {
			struct irec *r = itab_get(&x->t, d.ino);
			c->xattrs++;
			if (!r) {
				PROBLEM_FIX(x, "xattr-orphan", k, kl, "attribute deleted",
					    "extended attribute of inode %" PRIu64 ", which does not exist", d.ino);
				fix_op(x, 1, k, kl, NULL, 0);
			} else {
				r->xattrs++;
			}
			break;
		}
		case FS_K_ORPHAN: {
			struct irec *r = itab_get(&x->t, d.ino);
			if (!r) {
				PROBLEM_FIX(x, "orphan-stale", k, kl, "orphan record deleted",
					    "orphan list names inode %" PRIu64 ", which does not exist", d.ino);
				fix_op(x, 1, k, kl, NULL, 0);
			} else {
				r->flags |= IR_ORPHAN;
			}
			break;
		}
		}
	}
	free(trim);
	int st = lsm_iter_status(it);
	lsm_iter_free(it);
	if (st) {
		read_failed(x, NULL, 0, "reading the store", "; filesystem checks stopped");
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- lost+found */

static uint64_t new_ino(struct fsctx *x)
{
	uint64_t n = x->alloc_next > x->max_ino ? x->alloc_next : x->max_ino + 1;
	x->max_ino = n;
	return n;
}

/* Find or create /lost+found (repair only). 0 on success. */
static int ensure_lf(struct fsctx *x)
{
	if (x->lf)
		return 0;
	if (x->lf_failed)
		return -1;
	struct fsck *c = x->c;
	char k[FS_KEY_MAX];
	size_t kl = fs_key_dirent(k, FS_ROOT_INO, "lost+found", 10);
	struct lsm_buf v = {0};
	int rc = lsm_get(c->db, NULL, k, kl, &v);
	uint64_t ino;
	unsigned type;
	if (rc == LSM_OK && fs_dirent_decode(v.data, v.len, &ino, &type) == 0) {
		lsm_buf_free(&v);
		struct irec *r = itab_get(&x->t, ino);
		if (r && !(r->flags & IR_BAD) && S_ISDIR(r->mode) && r->links) {
			x->lf = ino;
			return 0;
		}
		fsck_note(c, "lost+found", "/lost+found is not a usable directory: unattached inodes stay where they are");
		x->lf_failed = 1;
		return -1;
	}
	lsm_buf_free(&v);
	struct irec *root = itab_get(&x->t, FS_ROOT_INO);
	if (!root || (root->flags & IR_BAD) || !S_ISDIR(root->mode)) {
		x->lf_failed = 1;
		return -1;
	}
	/* A fresh directory: its record with the counts of an empty directory (fixed up with the rest),
	 * an entry in the root. */
	ino = new_ino(x);
	struct irec *r = itab_add(&x->t, ino); /* capacity reserved: root stays valid */
	root = itab_get(&x->t, FS_ROOT_INO);
	if (!r) {
		x->lf_failed = 1;
		return -1;
	}
	r->mode = S_IFDIR | 0700;
	r->nlink = 2;
	r->links = 1;
	r->parent = FS_ROOT_INO;
	r->reach = REACH_OK;
	root->entries++;
	root->subdirs++;
	root->d_entries++;
	root->d_subdirs++;
	struct fs_inode in;
	fs_inode_init(&in, ino, r->mode, getuid(), getgid());
	char iv[FS_INODE_LEN], ik[FS_KEY_MAX], dv[FS_DIRENT_LEN];
	fs_inode_encode(&in, iv);
	size_t ikl = fs_key_inode(ik, ino);
	fix_op(x, 0, ik, ikl, iv, sizeof iv);
	fs_dirent_encode(ino, fs_mode_to_dtype(in.mode), dv);
	fix_op(x, 0, k, kl, dv, sizeof dv);
	x->lf = ino;
	c->inodes++;
	fsck_note(c, "lost+found", "created /lost+found (inode %" PRIu64 ")", ino);
	return 0;
}

/* Link inode r into /lost+found as "#INO" (repair only). */
static void attach(struct fsctx *x, uint64_t ino)
{
	if (!x->c->repair || ensure_lf(x))
		return;
	struct irec *r = itab_get(&x->t, ino), *lf = itab_get(&x->t, x->lf);
	char name[32], k[FS_KEY_MAX], v[FS_DIRENT_LEN];
	int n = snprintf(name, sizeof name, "#%" PRIu64, ino);
	size_t kl = fs_key_dirent(k, x->lf, name, (size_t)n);
	fs_dirent_encode(ino, fs_mode_to_dtype(r->mode), v);
	fix_op(x, 0, k, kl, v, sizeof v);
	r->links++;
	lf->entries++;
	lf->d_entries++;
	if (S_ISDIR(r->mode)) {
		lf->subdirs++;
		lf->d_subdirs++;
		r->parent = x->lf;
		free(r->name);
		r->name = strdup(name);
		r->namelen = (size_t)n;
	}
}

/* ---------------------------------------------------------------- reachability */

struct ino_stack {
	uint64_t *v;
	size_t cap;
};

/* Is directory start reachable from the root through the entries that name directories? A cycle is
 * reported once, at the directory where the walk closed it, and (repair) broken by moving that
 * directory to /lost+found. -1: out of memory. */
static int check_reach(struct fsctx *x, uint64_t start, struct ino_stack *st)
{
	size_t n = 0;
	uint64_t cur = start;
	int result = REACH_CUT;
	for (;;) {
		struct irec *r = itab_get(&x->t, cur);
		if (!r || !r->links) {
			result = cur == FS_ROOT_INO ? REACH_OK : REACH_CUT;
			if (r && cur == FS_ROOT_INO)
				r->reach = REACH_OK;
			break;
		}
		if (r->reach == REACH_OK || r->reach == REACH_CUT) {
			result = r->reach;
			break;
		}
		if (r->reach == REACH_VISITING) {
			char k[FS_KEY_MAX];
			size_t kl = fs_key_inode(k, cur);
			/* Whether the fix can be made is known before the problem is reported (and counted). */
			int lf_ok = !x->c->repair || ensure_lf(x) == 0;
			PROBLEM_FIX(x, "dir-cycle", k, kl, lf_ok ? "moved to /lost+found" : NULL,
				    "directory %" PRIu64 " is in a cycle of directories, not reachable from /", cur);
			if (x->c->repair && x->lf) {
				r = itab_get(&x->t, cur);
				struct irec *p = itab_get(&x->t, r->parent);
				char dk[FS_KEY_MAX];
				size_t dkl = fs_key_dirent(dk, r->parent, r->name ? r->name : "", r->name ? r->namelen : 0);
				fix_op(x, 1, dk, dkl, NULL, 0);
				if (p) {
					p->entries--;
					p->subdirs--;
					p->d_entries--;
					p->d_subdirs--;
				}
				r->links--;
				attach(x, cur);
				r = itab_get(&x->t, cur);
				r->reach = REACH_OK;
				result = REACH_OK;
			} else {
				result = REACH_CUT;
			}
			break;
		}
		r->reach = REACH_VISITING;
		if (n == st->cap) {
			size_t cap = st->cap ? 2 * st->cap : 256;
			uint64_t *v = realloc(st->v, cap * sizeof *v);
			if (!v)
				return -1; /* (the caller stops: a node left visiting would look like a cycle) */
			st->v = v;
			st->cap = cap;
		}
		st->v[n++] = cur;
		cur = r->parent;
	}
	for (size_t i = 0; i < n; i++) {
		struct irec *r = itab_get(&x->t, st->v[i]);
		if (r->reach == REACH_VISITING)
			r->reach = (uint8_t)result;
	}
	return 0;
}

/* ---------------------------------------------------------------- per-inode checks */

/* Rewrite an inode record with the counted values. -1 if it cannot be re-read (reported). */
static int fix_inode(struct fsctx *x, uint64_t ino, const struct irec *r, int set_nlink, int set_entries,
		     int set_xattrs, int set_size)
{
	if (!x->c->repair)
		return 0;
	char k[FS_KEY_MAX];
	size_t kl = fs_key_inode(k, ino);
	struct lsm_buf v = {0};
	struct fs_inode in = {.ino = ino};
	if (lsm_get(x->c->db, NULL, k, kl, &v) || fs_inode_decode(v.data, v.len, &in)) {
		lsm_buf_free(&v);
		fsck_operr(x->c, "cannot re-read inode %" PRIu64 " to fix it: %s", ino, lsm_errmsg());
		return -1;
	}
	lsm_buf_free(&v);
	if (set_nlink)
		in.nlink = S_ISDIR(r->mode) ? 2 + r->subdirs : r->links;
	if (set_entries)
		in.nentries = r->entries;
	if (set_xattrs)
		in.nxattrs = r->xattrs;
	if (set_size)
		in.size = r->target_len;
	char nv[FS_INODE_LEN];
	fs_inode_encode(&in, nv);
	fix_op(x, 0, k, kl, nv, sizeof nv);
	return 0;
}

static void check_inode(struct fsctx *x, struct irec *r)
{
	char k[FS_KEY_MAX], fix[96];
	size_t kl = fs_key_inode(k, r->ino);
	uint64_t ino = r->ino;
	if ((r->flags & (IR_BAD | IR_PENDING)))
		return;
	/* The problems below share one write (the record): commit what is queued first, so that the
	 * fixes counted from here on are exactly this record's. */
	fix_boundary(x);
	uint64_t pending0 = x->pending_fixes;
	int is_dir = S_ISDIR(r->mode);
	uint64_t want = is_dir ? 2 + (uint64_t)r->subdirs : r->links;
	uint64_t was = is_dir ? (uint64_t)((int64_t)want - r->d_subdirs) : want; /* before our own repairs */
	int set_nlink = r->nlink != want, set_entries = is_dir && r->nentries != r->entries, set_xattrs = 0,
	    set_size = 0;
	/* Without --repair an unattached inode stays unattached: its count is not judged against zero. */
	if (r->nlink != was && !(!x->c->repair && (r->flags & IR_UNATTACHED))) {
		snprintf(fix, sizeof fix, "set to %" PRIu64, want);
		PROBLEM_FIX(x, "nlink", k, kl, fix, "link count is %u, should be %" PRIu64 " (%s)", r->nlink, was,
			    is_dir ? "2 + subdirectories" : "entries naming it");
	}
	uint64_t entries_was = (uint64_t)((int64_t)r->entries - r->d_entries);
	if (is_dir && r->nentries != entries_was) {
		snprintf(fix, sizeof fix, "set to %" PRIu64, r->entries);
		PROBLEM_FIX(x, "nentries", k, kl, fix, "entry count is %" PRIu64 ", the directory holds %" PRIu64,
			    r->nentries, entries_was);
	}
	if (r->nxattrs != r->xattrs) {
		snprintf(fix, sizeof fix, "set to %u", r->xattrs);
		PROBLEM_FIX(x, "nxattrs", k, kl, fix, "extended attribute count is %u, %u are stored", r->nxattrs,
			    r->xattrs);
		set_xattrs = 1;
	}
	if (!x->c->repair && (r->flags & IR_UNATTACHED))
		set_nlink = 0;
	if (S_ISLNK(r->mode)) {
		if (!(r->flags & IR_TARGET)) {
			PROBLEM(x, "no-target", k, kl, "symlink without a stored target");
		} else if (r->size != r->target_len) {
			snprintf(fix, sizeof fix, "size set to %" PRIu64, r->target_len);
			PROBLEM_FIX(x, "symlink-size", k, kl, fix, "size is %" PRIu64 ", the target is %" PRIu64 " bytes",
				    r->size, r->target_len);
			set_size = 1;
		}
	}
	if ((set_nlink || set_entries || set_xattrs || set_size) &&
	    fix_inode(x, ino, r, set_nlink, set_entries, set_xattrs, set_size)) {
		fsck_unfix(x->c, x->pending_fixes - pending0);
		x->pending_fixes = pending0;
	}
	if ((r->flags & IR_ORPHAN) && r->links) {
		size_t okl = fs_key_orphan(k, ino);
		PROBLEM_FIX(x, "orphan-linked", k, okl, "orphan record deleted",
			    "orphan list names inode %" PRIu64 ", which %u entr%s name", ino, r->links,
			    r->links == 1 ? "y" : "ies");
		fix_op(x, 1, k, okl, NULL, 0);
	}
}

/* ---------------------------------------------------------------- the whole pass */

static int check_super(struct fsctx *x)
{
	struct fsck *c = x->c;
	char k[FS_KEY_MAX];
	size_t kl = fs_key_super(k);
	struct lsm_buf v = {0};
	x->bs = 4096;
	int rc = lsm_get(c->db, NULL, k, kl, &v);
	if (rc == LSM_NOTFOUND) {
		lsm_buf_free(&v);
		lsm_iter *it = lsm_iter_new(c->db, NULL);
		if (!it) {
			fsck_operr(c, "out of memory");
			return -1;
		}
		lsm_iter_seek_first(it);
		int empty = !lsm_iter_valid(it);
		rc = lsm_iter_status(it);
		lsm_iter_free(it);
		if (rc) {
			read_failed(x, k, kl, "reading the superblock", "");
			return -1;
		}
		if (empty) {
			fsck_note(c, "empty", "the store holds no filesystem yet (lsmfs creates one at the first mount)");
			return -1;
		}
		PROBLEM(x, "no-superblock", k, kl, "the superblock is missing (block size 4096 assumed)");
		return 0;
	}
	if (rc) {
		lsm_buf_free(&v);
		read_failed(x, k, kl, "reading the superblock", "");
		return -1;
	}
	struct fs_super s;
	int bad = fs_super_decode(v.data, v.len, &s);
	lsm_buf_free(&v);
	if (bad) {
		PROBLEM(x, "bad-superblock", k, kl, "not an lsmfs superblock (block size 4096 assumed)");
		return 0;
	}
	if (s.version != FS_FORMAT_VERSION) {
		PROBLEM(x, "superblock-version", k, kl, "filesystem format version %u, lsmfsck knows version %d", s.version,
			FS_FORMAT_VERSION);
		return -1;
	}
	if (s.block_size < 512 || s.block_size > 65536 || (s.block_size & (s.block_size - 1))) {
		PROBLEM(x, "bad-superblock", k, kl, "block size %u is invalid (4096 assumed)", s.block_size);
		return 0;
	}
	x->bs = s.block_size;
	kl = fs_key_alloc(k);
	rc = lsm_get(c->db, NULL, k, kl, &v);
	if (rc == LSM_OK) {
		if (fs_alloc_decode(v.data, v.len, &x->alloc_next) == 0)
			x->have_alloc = 1;
	} else if (rc != LSM_NOTFOUND) {
		lsm_buf_free(&v);
		read_failed(x, k, kl, "reading the allocator", "");
		return -1;
	}
	lsm_buf_free(&v);
	return 0;
}

void fsck_fs(struct fsck *c)
{
	struct fsctx x = {.c = c};
	if (check_super(&x))
		return;
	if (scan_inodes(&x) || scan_keys(&x))
		goto out;
	fix_commit(&x);
	struct irec *root = itab_get(&x.t, FS_ROOT_INO);
	char k[FS_KEY_MAX];
	size_t kl = fs_key_inode(k, FS_ROOT_INO);
	if (!root)
		PROBLEM(&x, "no-root", k, kl, "the root directory's inode is missing");
	else if (!(root->flags & IR_BAD) && !S_ISDIR(root->mode))
		PROBLEM(&x, "root-not-dir", k, kl, "the root inode is a %s", type_name(root->mode));
	int root_ok = root && !(root->flags & IR_BAD) && S_ISDIR(root->mode);

	/* Inodes no entry names: orphans awaiting reclaim are fine; the rest go to /lost+found. */
	size_t n0 = x.t.n;
	for (size_t i = 0; i < n0; i++) {
		struct irec *r = &x.t.v[i];
		if (r->ino == FS_ROOT_INO || r->links || (r->flags & IR_BAD))
			continue;
		if (r->nlink == 0 && (r->flags & IR_ORPHAN)) {
			r->flags |= IR_PENDING;
			c->orphans++;
			fsck_note(c, "orphan-pending", "inode %" PRIu64 " (%s) was unlinked while open: the next mount "
				  "reclaims it", r->ino, type_name(r->mode));
			continue;
		}
		uint64_t ino = r->ino;
		r->flags |= IR_UNATTACHED;
		char fix[64];
		snprintf(fix, sizeof fix, "linked as /lost+found/#%" PRIu64, ino);
		kl = fs_key_inode(k, ino);
		/* Whether /lost+found is usable is known before the problem is reported (and counted). */
		int can_fix = root_ok && (!c->repair || ensure_lf(&x) == 0);
		r = &x.t.v[i]; /* (ensure_lf may have added /lost+found to the table) */
		if (r->nlink == 0)
			PROBLEM_FIX(&x, "unattached", k, kl, can_fix ? fix : NULL,
				    "%s with no links, no entry naming it and no orphan record", type_name(r->mode));
		else
			PROBLEM_FIX(&x, "unattached", k, kl, can_fix ? fix : NULL, "%s with %u link(s) that no entry names",
				    type_name(r->mode), r->nlink);
		if (can_fix)
			attach(&x, ino);
	}

	/* Every directory reachable from the root (no cycles). */
	if (root_ok) {
		struct ino_stack st = {0};
		for (size_t i = 0; i < x.t.n; i++) {
			struct irec *r = &x.t.v[i];
			if (!(r->flags & IR_BAD) && S_ISDIR(r->mode) && r->links && r->reach == REACH_UNKNOWN &&
			    check_reach(&x, r->ino, &st)) {
				fsck_operr(c, "out of memory (reachability not checked)");
				break;
			}
		}
		free(st.v);
	}
	fix_commit(&x);

	for (size_t i = 0; i < x.t.n; i++) {
		check_inode(&x, &x.t.v[i]);
		if ((i & 4095) == 0)
			fsck_progress(c, "checking inodes", i, x.t.n);
	}

	/* The allocator must stay above every inode number in use (a number is never reused). */
	kl = fs_key_alloc(k);
	int stale = !x.have_alloc || x.alloc_next <= x.scan_max;
	if (stale) {
		char fix[64];
		snprintf(fix, sizeof fix, "set to %" PRIu64, x.max_ino + 1);
		if (!x.have_alloc)
			PROBLEM_FIX(&x, "alloc-missing", k, kl, fix, "the inode allocator record is missing or malformed");
		else
			PROBLEM_FIX(&x, "alloc-stale", k, kl, fix,
				    "next inode number %" PRIu64 " is not above the largest in use (%" PRIu64 ")", x.alloc_next,
				    x.scan_max);
	}
	if (stale || x.alloc_next <= x.max_ino) {
		/* Also after creating /lost+found, which took a number. */
		char v[8];
		fs_alloc_encode(x.max_ino + 1, v);
		fix_op(&x, 0, k, kl, v, sizeof v);
	}
	fix_commit(&x);
	if (c->repair && !x.write_failed && c->fixed) {
		int rc = lsm_sync(c->db);
		if (rc) {
			fsck_operr(c, "syncing the repairs failed: %s", lsm_errmsg());
			fsck_unfix(c, c->fixed);
		}
	}
	c->fs_checked = 1;
	fsck_progress_done(c);
out:
	lsm_batch_free(x.b);
	itab_free(&x.t);
}

