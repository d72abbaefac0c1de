/*
 * ops.c - the FUSE low-level operations of lsmfs.
 *
 * Every operation that changes anything builds one write batch (metadata and data together) and
 * commits it with one lsm_write: a crash leaves each operation done or not done, never half. The
 * cached attributes (inode.c) are updated only after the commit succeeded. Every handler ends in
 * exactly one fuse_reply_*.
 *
 * Left to the kernel on purpose: permission checks (default_permissions), flock/fcntl locks (local
 * locking), removing security.capability on write/chown/truncate, rename loop detection (the VFS
 * checks ancestry). Clearing suid/sgid on write/chown/truncate is ours when the kernel accepted
 * HANDLE_KILLPRIV_V2 (wire.c: it saves a round trip per write(2)); without it the kernel sends the
 * mode change.
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "lsmfs.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static struct fs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

int fs_store_errno(int rc)
{
	switch (rc) {
	case LSM_OK: return 0;
	case LSM_NOTFOUND: return ENOENT;
	case LSM_NOSPC: return ENOSPC;
	case LSM_NOMEM: return ENOMEM;
	case LSM_INVAL: return EINVAL;
	case LSM_READONLY: return EROFS;
	case LSM_BUSY: return EBUSY;
	default: return EIO; /* corruption and I/O errors */
	}
}

/* ---------------------------------------------------------------- helpers */

static void now_ts(int64_t *sec, uint32_t *nsec)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	*sec = ts.tv_sec;
	*nsec = (uint32_t)ts.tv_nsec;
}

static void touch_mc(struct fs_inode *a)
{
	now_ts(&a->mtime_sec, &a->mtime_nsec);
	a->ctime_sec = a->mtime_sec;
	a->ctime_nsec = a->mtime_nsec;
}

static void touch_c(struct fs_inode *a)
{
	now_ts(&a->ctime_sec, &a->ctime_nsec);
}

static void attr_to_stat(const struct fs_inode *a, uint32_t bs, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = bs;
	/* Blocks actually stored are not tracked per inode; report the size rounded up (sparse files
	 * over-report, as on a filesystem without hole accounting). */
	st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
	st->st_atim.tv_sec = a->atime_sec;
	st->st_atim.tv_nsec = a->atime_nsec;
	st->st_mtim.tv_sec = a->mtime_sec;
	st->st_mtim.tv_nsec = a->mtime_nsec;
	st->st_ctim.tv_sec = a->ctime_sec;
	st->st_ctim.tv_nsec = a->ctime_nsec;
}

static void fill_entry(struct fs *fs, const struct fs_inode *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof *e);
	e->ino = a->ino;
	e->generation = 1;
	e->attr_timeout = fs->cfg.attr_timeout;
	e->entry_timeout = fs->cfg.entry_timeout;
	attr_to_stat(a, fs->bs, &e->attr);
}

/* One batch per worker thread, reused (FUSE threads come and go: the key's destructor frees it). */
static pthread_key_t batch_key;
static pthread_once_t batch_once = PTHREAD_ONCE_INIT;

static void batch_destroy(void *p)
{
	lsm_batch_free(p);
}
static void batch_key_init(void)
{
	pthread_key_create(&batch_key, batch_destroy);
}

static lsm_batch *tl_batch(void)
{
	pthread_once(&batch_once, batch_key_init);
	lsm_batch *b = pthread_getspecific(batch_key);
	if (!b) {
		b = lsm_batch_new();
		if (!b)
			return NULL;
		pthread_setspecific(batch_key, b);
	}
	lsm_batch_clear(b);
	return b;
}

/* A per-thread value buffer for gets. */
static pthread_key_t vbuf_key;
static pthread_once_t vbuf_once = PTHREAD_ONCE_INIT;
static void vbuf_destroy(void *p)
{
	lsm_buf_free(p);
	free(p);
}
static void vbuf_key_init(void)
{
	pthread_key_create(&vbuf_key, vbuf_destroy);
}
static struct lsm_buf *tl_vbuf(void)
{
	pthread_once(&vbuf_once, vbuf_key_init);
	struct lsm_buf *b = pthread_getspecific(vbuf_key);
	if (!b) {
		b = calloc(1, sizeof *b);
		if (!b)
			return NULL;
		pthread_setspecific(vbuf_key, b);
	}
	return b;
}

static int put_inode(lsm_batch *b, const struct fs_inode *a)
{
	char k[FS_KEY_MAX], v[FS_INODE_LEN];
	size_t kl = fs_key_inode(k, a->ino);
	fs_inode_encode(a, v);
	return lsm_batch_put(b, k, kl, v, sizeof v);
}

/* Commit a batch; returns 0 or a positive errno. sync: also make it durable now. */
static int commit(struct fs *fs, lsm_batch *b, int sync)
{
	sync |= fs->cfg.sync_all;
	if (sync || lsm_write_may_wait(fs->db))
		fs_wire_may_block(fs);
	int rc = lsm_write(fs->db, b, sync ? LSM_SYNC : 0);
	return fs_store_errno(rc);
}

/* Look a name up in a directory: 0 and (*ino, *type), or a positive errno (ENOENT). */
static int dirent_get(struct fs *fs, uint64_t parent, const char *name, uint64_t *ino, unsigned *type)
{
	size_t nl = strlen(name);
	if (nl > FS_NAME_MAX)
		return ENAMETOOLONG;
	char k[FS_KEY_MAX];
	size_t kl = fs_key_dirent(k, parent, name, nl);
	struct lsm_buf *v = tl_vbuf();
	if (!v)
		return ENOMEM;
	int rc = lsm_get(fs->db, NULL, k, kl, v);
	if (rc)
		return fs_store_errno(rc);
	return fs_dirent_decode(v->data, v->len, ino, type) ? EIO : 0;
}

/* Allocate an inode number; adds the allocator's new high-water mark to b when it moves, so the
 * mark is durable with (or before) the first inode that uses a number below it. */
#define ALLOC_CHUNK 4096

static int alloc_ino(struct fs *fs, lsm_batch *b, uint64_t *ino)
{
	int rc = 0;
	pthread_mutex_lock(&fs->alloc_mu);
	uint64_t n = fs->next_ino++;
	if (n >= fs->alloc_hw) {
		char k[FS_KEY_MAX], v[8];
		size_t kl = fs_key_alloc(k);
		fs->alloc_hw = n + ALLOC_CHUNK;
		fs_alloc_encode(fs->alloc_hw, v);
		rc = lsm_batch_put(b, k, kl, v, sizeof v) ? ENOMEM : 0;
	}
	pthread_mutex_unlock(&fs->alloc_mu);
	*ino = n;
	return rc;
}

/* Lock up to four inodes in ascending inode order (duplicates and NULLs skipped). */
static void lock_all(struct inode **v, int n)
{
	struct inode *s[4];
	int m = 0;
	for (int i = 0; i < n; i++) {
		if (!v[i])
			continue;
		int dup = 0;
		for (int j = 0; j < m; j++)
			dup |= s[j] == v[i];
		if (!dup)
			s[m++] = v[i];
	}
	for (int i = 1; i < m; i++)
		for (int j = i; j > 0 && s[j - 1]->ino > s[j]->ino; j--) {
			struct inode *t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	for (int i = 0; i < m; i++)
		pthread_mutex_lock(&s[i]->mu);
}

static void unlock_all(struct inode **v, int n)
{
	for (int i = 0; i < n; i++) {
		if (!v[i])
			continue;
		int dup = 0;
		for (int j = 0; j < i; j++)
			dup |= v[j] == v[i];
		if (!dup)
			pthread_mutex_unlock(&v[i]->mu);
	}
}

/* ---------------------------------------------------------------- init, lookup, attributes */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;
	if (fs->cfg.writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* suid/sgid clearing: HANDLE_KILLPRIV_V2 (wire.c) or the kernel's mode change, never v1. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* wire.c sees each request's kill flags in its read hook: requests must not bypass it by splice. */
	conn->want &= ~FUSE_CAP_SPLICE_READ;
	/* Every change to file data passes through this mount, and the kernel keeps its page cache in
	 * step with what it sends (writes, truncates, punched holes, copy ranges): a newer mtime in
	 * fresh attributes is our own write, not a reason to drop cached pages (without the writeback
	 * cache it dropped them after every write: read4k at a fifth of the writeback setting). */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	fs->zero_open = fs->cfg.zero_open && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
	if (fs->zero_open) /* no OPEN request to truncate in: the kernel must send the size change */
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	conn->time_gran = 1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = FS(req);
	uint64_t ino;
	unsigned type;
	int err = dirent_get(fs, parent, name, &ino, &type);
	struct fuse_entry_param e;
	if (err == ENOENT) {
		/* A negative entry the kernel may cache: stat of missing names costs one round trip. */
		memset(&e, 0, sizeof e);
		e.entry_timeout = fs->cfg.negative_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	struct inode *in;
	int r = inode_get(fs, ino, &in);
	if (r) {
		fuse_reply_err(req, r == -ENOENT ? EIO : -r); /* a dirent to a missing inode: damage */
		return;
	}
	pthread_mutex_lock(&in->mu);
	fill_entry(fs, &in->a, &e);
	pthread_mutex_unlock(&in->mu);
	inode_lookup_inc(fs, in);
	fuse_reply_entry(req, &e);
	inode_put(fs, in);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	inode_forget(FS(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		inode_forget(FS(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct fs *fs = FS(req);
	struct inode *in;
	int r = inode_get(fs, ino, &in);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	struct stat st;
	pthread_mutex_lock(&in->mu);
	attr_to_stat(&in->a, fs->bs, &st);
	pthread_mutex_unlock(&in->mu);
	fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
	inode_put(fs, in);
}

/* Cut regular file `a` to newsize inside batch b: drop whole blocks past the end with one range
 * deletion and trim the block that now holds the end (its stored bytes past EOF would otherwise
 * come back when the file grows). */
static int truncate_blocks(struct fs *fs, lsm_batch *b, struct fs_inode *a, uint64_t newsize)
{
	uint64_t bs = fs->bs;
	uint64_t first_gone = (newsize + bs - 1) / bs;     /* first block entirely past EOF */
	uint64_t old_blocks = (a->size + bs - 1) / bs;
	if (first_gone < old_blocks) {
		char k1[FS_KEY_MAX], k2[FS_KEY_MAX];
		size_t l1 = fs_key_block(k1, a->ino, first_gone);
		size_t l2 = fs_key_kind_ino(k2, FS_K_BLOCK, a->ino + 1);
		if (lsm_batch_delete_range(b, k1, l1, k2, l2))
			return ENOMEM;
	}
	uint64_t tail = newsize % bs;
	if (tail && newsize < a->size) {
		char k[FS_KEY_MAX];
		size_t kl = fs_key_block(k, a->ino, newsize / bs);
		struct lsm_buf *v = tl_vbuf();
		if (!v)
			return ENOMEM;
		int rc = lsm_get(fs->db, NULL, k, kl, v);
		if (rc == LSM_OK && v->len > tail) {
			if (lsm_batch_put(b, k, kl, v->data, tail))
				return ENOMEM;
		} else if (rc != LSM_OK && rc != LSM_NOTFOUND) {
			return fs_store_errno(rc);
		}
	}
	return 0;
}

static void set_time(const struct stat *attr, int to_set, int now_flag, int which, int64_t *sec, uint32_t *nsec)
{
	if (to_set & now_flag) {
		now_ts(sec, nsec);
	} else if (to_set & which) {
		const struct timespec *ts = which == FUSE_SET_ATTR_ATIME ? &attr->st_atim : &attr->st_mtim;
		*sec = ts->tv_sec;
		*nsec = (uint32_t)ts->tv_nsec;
	}
}

/* Whether the caller of req belongs to group gid (its fsgid or a supplementary group). */
static int caller_in_group(fuse_req_t req, uint32_t gid)
{
	if (fuse_req_ctx(req)->gid == gid)
		return 1;
	gid_t groups[64];
	int n = fuse_req_getgroups(req, 64, groups);
	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return 1;
	return 0; /* unknown (no /proc entry, or more than 64 groups): clearing is the safe side */
}

/* Whether the caller of req has CAP_FSETID in effect (CapEff in /proc/PID/status, the file
 * fuse_req_getgroups reads too). Read only when a file has set-id bits; unknown counts as no. */
static int caller_has_fsetid(fuse_req_t req)
{
	pid_t pid = fuse_req_ctx(req)->pid;
	char path[64], line[256];
	if (pid <= 0 || snprintf(path, sizeof path, "/proc/%d/status", (int)pid) >= (int)sizeof path)
		return 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	unsigned long long eff = 0;
	int found = 0;
	while (!found && fgets(line, sizeof line, f))
		found = sscanf(line, "CapEff: %llx", &eff) == 1;
	fclose(f);
	return found && ((eff >> 4) & 1); /* CAP_FSETID is capability 4 */
}

/* What a write, truncate or chown does to a non-directory's set-id bits when the kernel says so
 * (HANDLE_KILLPRIV_V2), by the Linux rule (setattr_should_drop_sgid): suid goes; sgid goes with group
 * execute, and without it (where it marks mandatory locking) only if the caller is neither in the
 * file's group `gid` nor holds CAP_FSETID. may_fsetid 0: the kernel's flag already says the caller lacks
 * CAP_FSETID (write, truncate, open(O_TRUNC)); 1: ask (chown, whose flag is unconditional). Returns
 * whether the mode changed. */
static int kill_suidgid(fuse_req_t req, struct fs_inode *a, uint32_t gid, int may_fsetid)
{
	uint32_t m = a->mode;
	if (S_ISDIR(m) || !(m & (S_ISUID | S_ISGID)))
		return 0;
	m &= ~(uint32_t)S_ISUID;
	if ((m & S_ISGID) &&
	    ((m & S_IXGRP) || (!caller_in_group(req, gid) && !(may_fsetid && caller_has_fsetid(req)))))
		m &= ~(uint32_t)S_ISGID;
	if (m == a->mode)
		return 0;
	a->mode = m;
	touch_c(a);
	return 1;
}

/* A mode changed by a request whose reply carries no attributes (write, open): the kernel keeps the
 * old mode cached (stat asking only for the mode would show it) unless told to drop it. */
static void mode_changed_behind(struct fs *fs, uint64_t ino)
{
	if (fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	(void)fi;
	struct fs *fs = FS(req);
	struct inode *in;
	int r = inode_get(fs, ino, &in);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	lsm_batch *b = tl_batch();
	int err = b ? 0 : ENOMEM;
	pthread_mutex_lock(&in->mu);
	struct fs_inode a = in->a;
	if (!err && (to_set & FUSE_SET_ATTR_MODE))
		a.mode = (a.mode & S_IFMT) | (attr->st_mode & 07777);
	if (!err && (to_set & FUSE_SET_ATTR_UID))
		a.uid = attr->st_uid;
	if (!err && (to_set & FUSE_SET_ATTR_GID))
		a.gid = attr->st_gid;
	if (!err && (to_set & FUSE_SET_ATTR_SIZE)) {
		if (!S_ISREG(a.mode)) {
			err = S_ISDIR(a.mode) ? EISDIR : EINVAL;
		} else if ((uint64_t)attr->st_size != a.size) {
			if (attr->st_size < 0)
				err = EINVAL;
			else if ((uint64_t)attr->st_size < a.size)
				err = truncate_blocks(fs, b, &a, (uint64_t)attr->st_size);
			a.size = (uint64_t)attr->st_size;
			if (!(to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)))
				touch_mc(&a);
		}
	}
	set_time(attr, to_set, FUSE_SET_ATTR_ATIME_NOW, FUSE_SET_ATTR_ATIME, &a.atime_sec, &a.atime_nsec);
	set_time(attr, to_set, FUSE_SET_ATTR_MTIME_NOW, FUSE_SET_ATTR_MTIME, &a.mtime_sec, &a.mtime_nsec);
	if (to_set & FUSE_SET_ATTR_CTIME) {
		a.ctime_sec = attr->st_ctim.tv_sec;
		a.ctime_nsec = (uint32_t)attr->st_ctim.tv_nsec;
	} else {
		touch_c(&a);
	}
	/* chown of a non-directory, or truncate by a caller without CAP_FSETID. */
	int killed = fs_wire_kill_suidgid() &&
		     kill_suidgid(req, &a, in->a.gid, (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0);
	/* An orphan's times live only here: its stored record is read only to reclaim it (at its last
	 * close, or by the next mount after a crash), which needs its size and xattr count, not its times.
	 * Under writeback caching the kernel sends a ctime update after every unlink of a file: this
	 * saves a commit per removed file. */
	int times_only = in->a.nlink == 0 && !killed &&
			 !(to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_SIZE));
	if (!err && !times_only)
		err = put_inode(b, &a) ? ENOMEM : 0;
	if (!err && !times_only)
		err = commit(fs, b, 0);
	if (!err && a.size < in->a.size)
		fs_space_freed(fs, a.ino, in->a.size - a.size);
	if (!err)
		in->a = a;
	struct stat st;
	attr_to_stat(&in->a, fs->bs, &st);
	pthread_mutex_unlock(&in->mu);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
	inode_put(fs, in);
}

/* ---------------------------------------------------------------- creating names */

/* Create `name` in parent with attributes from mode/rdev (and a symlink target); on success *out
 * holds the new inode (one reference). Returns 0 or a positive errno. */
static int make_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
		     const char *target, struct inode **out)
{
	int nospc = fs_space_check(FS(req), FS_INODE_LEN + strlen(name) + (target ? strlen(target) : 0));
	if (nospc)
		return nospc;
	struct fs *fs = FS(req);
	size_t nl = strlen(name);
	if (nl > FS_NAME_MAX)
		return ENAMETOOLONG;
	if (target && strlen(target) >= PATH_MAX)
		return ENAMETOOLONG;
	struct inode *p;
	int r = inode_get(fs, parent, &p);
	if (r)
		return -r;
	lsm_batch *b = tl_batch();
	if (!b) {
		inode_put(fs, p);
		return ENOMEM;
	}
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	pthread_mutex_lock(&p->mu);
	int err = 0;
	uint64_t x;
	unsigned t;
	if (!S_ISDIR(p->a.mode))
		err = ENOTDIR;
	else if (p->a.nlink == 0)
		err = ENOENT; /* the directory was removed */
	else if ((err = dirent_get(fs, parent, name, &x, &t)) == 0)
		err = EEXIST;
	else if (err == ENOENT)
		err = 0;
	struct fs_inode a;
	uint64_t ino = 0;
	if (!err)
		err = alloc_ino(fs, b, &ino);
	if (!err) {
		/* BSD group semantics under a setgid directory; new directories inherit the bit. */
		int sgid_dir = (p->a.mode & S_ISGID) != 0;
		fs_inode_init(&a, ino, sgid_dir && S_ISDIR(mode) ? mode | S_ISGID : mode, ctx->uid,
			      sgid_dir ? p->a.gid : ctx->gid);
		a.rdev = rdev;
		if (target)
			a.size = strlen(target);
		char k[FS_KEY_MAX], v[FS_DIRENT_LEN];
		size_t kl = fs_key_dirent(k, parent, name, nl);
		fs_dirent_encode(a.ino, fs_mode_to_dtype(a.mode), v);
		err = put_inode(b, &a) || lsm_batch_put(b, k, kl, v, sizeof v) ? ENOMEM : 0;
		if (!err && target) {
			kl = fs_key_symlink(k, a.ino);
			err = lsm_batch_put(b, k, kl, target, a.size) ? ENOMEM : 0;
		}
	}
	struct fs_inode pa = p->a;
	if (!err) {
		pa.nentries++;
		if (S_ISDIR(mode))
			pa.nlink++;
		touch_mc(&pa);
		err = put_inode(b, &pa) ? ENOMEM : 0;
	}
	if (!err)
		err = commit(fs, b, 0);
	if (!err)
		p->a = pa;
	pthread_mutex_unlock(&p->mu);
	inode_put(fs, p);
	if (err)
		return err;
	r = inode_new(fs, &a, out);
	return r ? -r : 0;
}

static void reply_new_entry(fuse_req_t req, struct inode *in)
{
	struct fs *fs = FS(req);
	struct fuse_entry_param e;
	fill_entry(fs, &in->a, &e);
	inode_lookup_inc(fs, in);
	fuse_reply_entry(req, &e);
	inode_put(fs, in);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct inode *in;
	int err = make_node(req, parent, name, mode, rdev, NULL, &in);
	if (err)
		fuse_reply_err(req, err);
	else
		reply_new_entry(req, in);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct inode *in;
	int err = make_node(req, parent, name, (mode & 07777) | S_IFDIR, 0, NULL, &in);
	if (err)
		fuse_reply_err(req, err);
	else
		reply_new_entry(req, in);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct inode *in;
	int err = make_node(req, parent, name, S_IFLNK | 0777, 0, link, &in);
	if (err)
		fuse_reply_err(req, err);
	else
		reply_new_entry(req, in);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = FS(req);
	char k[FS_KEY_MAX];
	size_t kl = fs_key_symlink(k, ino);
	struct lsm_buf *v = tl_vbuf();
	if (!v) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = lsm_get(fs->db, NULL, k, kl, v);
	if (rc) {
		fuse_reply_err(req, rc == LSM_NOTFOUND ? EINVAL : fs_store_errno(rc));
		return;
	}
	char *s = malloc(v->len + 1);
	if (!s) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(s, v->data, v->len);
	s[v->len] = 0;
	fuse_reply_readlink(req, s);
	free(s);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fs *fs = FS(req);
	size_t nl = strlen(newname);
	if (nl > FS_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	int nospc = fs_space_check(fs, FS_INODE_LEN + nl);
	if (nospc) {
		fuse_reply_err(req, nospc);
		return;
	}
	struct inode *in = NULL, *p = NULL;
	int r = inode_get(fs, ino, &in);
	if (!r)
		r = inode_get(fs, newparent, &p);
	if (r) {
		inode_put(fs, in);
		fuse_reply_err(req, -r);
		return;
	}
	lsm_batch *b = tl_batch();
	struct inode *lk[2] = {in, p};
	lock_all(lk, 2);
	int err = b ? 0 : ENOMEM;
	uint64_t x;
	unsigned t;
	if (!err && S_ISDIR(in->a.mode))
		err = EPERM;
	else if (!err && in->a.nlink == 0)
		err = ENOENT;
	else if (!err && p->a.nlink == 0)
		err = ENOENT;
	else if (!err && in->a.nlink >= 65000)
		err = EMLINK;
	if (!err) {
		/* Only the name's absence (ENOENT) clears err: the ENOENT of a source without links or of
		 * a removed directory above must stand. */
		err = dirent_get(fs, newparent, newname, &x, &t);
		err = err == 0 ? EEXIST : err == ENOENT ? 0 : err;
	}
	struct fs_inode a = in->a, pa = p->a;
	if (!err) {
		char k[FS_KEY_MAX], v[FS_DIRENT_LEN];
		size_t kl = fs_key_dirent(k, newparent, newname, nl);
		fs_dirent_encode(a.ino, fs_mode_to_dtype(a.mode), v);
		a.nlink++;
		touch_c(&a);
		pa.nentries++;
		touch_mc(&pa);
		err = lsm_batch_put(b, k, kl, v, sizeof v) || put_inode(b, &a) || put_inode(b, &pa) ? ENOMEM : 0;
	}
	if (!err)
		err = commit(fs, b, 0);
	if (!err) {
		in->a = a;
		p->a = pa;
	}
	unlock_all(lk, 2);
	inode_put(fs, p);
	if (err) {
		inode_put(fs, in);
		fuse_reply_err(req, err);
	} else {
		reply_new_entry(req, in);
	}
}

/* ---------------------------------------------------------------- removing names */

/* Drop one link of `a` inside batch b: an inode left without links becomes an orphan (reclaimed when
 * its last user goes, or at the next mount after a crash). */
static int drop_link(lsm_batch *b, struct fs_inode *a, int is_dir)
{
	if (is_dir)
		a->nlink = 0;
	else if (a->nlink > 0)
		a->nlink--;
	touch_c(a);
	if (a->nlink == 0) {
		char k[FS_KEY_MAX];
		size_t kl = fs_key_orphan(k, a->ino);
		if (lsm_batch_put(b, k, kl, "", 0))
			return ENOMEM;
	}
	return put_inode(b, a) ? ENOMEM : 0;
}

static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name, int is_dir)
{
	struct fs *fs = FS(req);
	struct inode *p = NULL, *in = NULL;
	int err = 0;
	uint64_t ino;
	unsigned type;
	int r = inode_get(fs, parent, &p);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	lsm_batch *b;
	for (;;) {
		/* Find the child, lock both in inode order, then check that the name still names it. */
		if ((err = dirent_get(fs, parent, name, &ino, &type)))
			break;
		if ((r = inode_get(fs, ino, &in))) {
			err = r == -ENOENT ? EIO : -r;
			break;
		}
		struct inode *lk[2] = {p, in};
		lock_all(lk, 2);
		uint64_t ino2;
		unsigned t2;
		int e2 = dirent_get(fs, parent, name, &ino2, &t2);
		if (e2 == 0 && ino2 == ino)
			break; /* locked and current */
		unlock_all(lk, 2);
		inode_put(fs, in);
		in = NULL;
		if (e2) {
			err = e2;
			break;
		}
	}
	if (err) {
		inode_put(fs, p);
		fuse_reply_err(req, err);
		return;
	}
	struct inode *lk[2] = {p, in};
	b = tl_batch();
	if (!b)
		err = ENOMEM;
	else if (is_dir && !S_ISDIR(in->a.mode))
		err = ENOTDIR;
	else if (!is_dir && S_ISDIR(in->a.mode))
		err = EISDIR;
	else if (is_dir && in->a.nentries)
		err = ENOTEMPTY;
	struct fs_inode a = in->a, pa = p->a;
	if (!err) {
		char k[FS_KEY_MAX];
		size_t kl = fs_key_dirent(k, parent, name, strlen(name));
		pa.nentries--;
		if (is_dir)
			pa.nlink--;
		touch_mc(&pa);
		err = lsm_batch_delete(b, k, kl) || put_inode(b, &pa) ? ENOMEM : drop_link(b, &a, is_dir);
	}
	if (!err)
		err = commit(fs, b, 0);
	if (!err) {
		p->a = pa;
		in->a = a;
	}
	unlock_all(lk, 2);
	inode_put(fs, in); /* may reclaim at once if the kernel holds no lookup and nothing is open */
	inode_put(fs, p);
	fuse_reply_err(req, err);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, 1);
}

/* Delete everything of inode a.ino in one batch. have: a holds the inode's attributes (size and xattr
 * count decide which ranges need deleting: an empty file needs no range deletion); without them
 * every range goes. */
static int reclaim(struct fs *fs, struct fs_inode a, int have)
{
	uint64_t ino = a.ino;
	lsm_batch *b = lsm_batch_new();
	if (!b)
		return ENOMEM;
	char k1[FS_KEY_MAX], k2[FS_KEY_MAX];
	size_t l1, l2;
	int err = 0;
	l1 = fs_key_inode(k1, ino);
	err |= lsm_batch_delete(b, k1, l1);
	if (S_ISREG(a.mode) && (!have || a.size > 0)) {
		l1 = fs_key_kind_ino(k1, FS_K_BLOCK, ino);
		l2 = fs_key_kind_ino(k2, FS_K_BLOCK, ino + 1);
		err |= lsm_batch_delete_range(b, k1, l1, k2, l2);
	}
	if (!have || a.nxattrs) {
		l1 = fs_key_kind_ino(k1, FS_K_XATTR, ino);
		l2 = fs_key_kind_ino(k2, FS_K_XATTR, ino + 1);
		err |= lsm_batch_delete_range(b, k1, l1, k2, l2);
	}
	if (S_ISLNK(a.mode)) {
		l1 = fs_key_symlink(k1, ino);
		err |= lsm_batch_delete(b, k1, l1);
	}
	l1 = fs_key_orphan(k1, ino);
	err |= lsm_batch_delete(b, k1, l1);
	if (!err)
		err = commit(fs, b, 0);
	else
		err = ENOMEM;
	lsm_batch_free(b);
	if (!err)
		atomic_fetch_sub(&fs->ninodes, 1);
	if (!err && S_ISREG(a.mode))
		fs_space_freed(fs, ino, a.size);
	return err;
}

int fs_reclaim(struct fs *fs, uint64_t ino, uint32_t mode)
{
	/* Read the stored record for the size and xattr count. */
	char k[FS_KEY_MAX];
	size_t kl = fs_key_inode(k, ino);
	struct lsm_buf v = {0};
	struct fs_inode a = {.ino = ino, .mode = mode};
	int rc = lsm_get(fs->db, NULL, k, kl, &v);
	int have = rc == LSM_OK && fs_inode_decode(v.data, v.len, &a) == 0;
	lsm_buf_free(&v);
	return reclaim(fs, a, have);
}

int fs_reclaim_cached(struct fs *fs, const struct fs_inode *a)
{
	/* The cached attributes are what the store holds (every change is written through, except the
	 * times of an orphan, which reclaiming does not need): no read. */
	return reclaim(fs, *a, 1);
}

/* ---------------------------------------------------------------- rename */

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct fs *fs = FS(req);
	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	size_t nl = strlen(name), nnl = strlen(newname);
	if (nl > FS_NAME_MAX || nnl > FS_NAME_MAX) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	struct inode *sp = NULL, *dp = NULL, *src = NULL, *dst = NULL;
	int err = 0, r;
	if ((r = inode_get(fs, parent, &sp)) || (r = inode_get(fs, newparent, &dp))) {
		inode_put(fs, sp);
		fuse_reply_err(req, -r);
		return;
	}
	uint64_t sino, dino = 0;
	unsigned stype, dtype;
	struct inode *lk[4];
	for (;;) {
		int de;
		if ((err = dirent_get(fs, parent, name, &sino, &stype)))
			break;
		de = dirent_get(fs, newparent, newname, &dino, &dtype);
		if (de && de != ENOENT) {
			err = de;
			break;
		}
		if (de == ENOENT)
			dino = 0;
		if ((r = inode_get(fs, sino, &src)) || (dino && (r = inode_get(fs, dino, &dst)))) {
			err = r == -ENOENT ? EIO : -r;
			break;
		}
		lk[0] = sp;
		lk[1] = dp;
		lk[2] = src;
		lk[3] = dst;
		lock_all(lk, 4);
		uint64_t s2, d2 = 0;
		unsigned t;
		int e1 = dirent_get(fs, parent, name, &s2, &t);
		int e2 = dirent_get(fs, newparent, newname, &d2, &t);
		if (e2 == ENOENT)
			d2 = 0;
		if (!e1 && (!e2 || e2 == ENOENT) && s2 == sino && d2 == dino)
			break;
		unlock_all(lk, 4);
		inode_put(fs, src);
		inode_put(fs, dst);
		src = dst = NULL;
	}
	if (err) {
		inode_put(fs, src);
		inode_put(fs, dst);
		inode_put(fs, sp);
		inode_put(fs, dp);
		fuse_reply_err(req, err);
		return;
	}
	lsm_batch *b = tl_batch();
	int sdir = S_ISDIR(src->a.mode), ddir = dst && S_ISDIR(dst->a.mode);
	if (!b)
		err = ENOMEM;
	else if (sino == dino)
		err = 0; /* same inode (same name, or two links of one file): nothing to do */
	else if ((flags & RENAME_NOREPLACE) && dst)
		err = EEXIST;
	else if ((flags & RENAME_EXCHANGE) && !dst)
		err = ENOENT;
	else if (!(flags & RENAME_EXCHANGE) && dst && sdir && !ddir)
		err = ENOTDIR;
	else if (!(flags & RENAME_EXCHANGE) && dst && !sdir && ddir)
		err = EISDIR;
	else if (!(flags & RENAME_EXCHANGE) && ddir && dst->a.nentries)
		err = ENOTEMPTY;
	else if (dp->a.nlink == 0)
		err = ENOENT;
	if (err || sino == dino) {
		unlock_all(lk, 4);
		goto out;
	}
	char sk[FS_KEY_MAX], dk[FS_KEY_MAX], v[FS_DIRENT_LEN];
	size_t skl = fs_key_dirent(sk, parent, name, nl), dkl = fs_key_dirent(dk, newparent, newname, nnl);
	struct fs_inode spa = sp->a, dpa = dp->a, sa = src->a, da;
	if (dst)
		da = dst->a;
	int same = sp == dp;
	if (flags & RENAME_EXCHANGE) {
		fs_dirent_encode(sino, stype, v);
		err |= lsm_batch_put(b, dk, dkl, v, sizeof v);
		fs_dirent_encode(dino, dtype, v);
		err |= lsm_batch_put(b, sk, skl, v, sizeof v);
		if (!same && sdir != ddir) {
			/* A directory moving between parents takes its ".." link along. */
			if (sdir) {
				spa.nlink--;
				dpa.nlink++;
			} else {
				spa.nlink++;
				dpa.nlink--;
			}
		}
		touch_c(&sa);
		touch_c(&da);
		err |= put_inode(b, &sa) | put_inode(b, &da);
	} else {
		err |= lsm_batch_delete(b, sk, skl);
		fs_dirent_encode(sino, stype, v);
		err |= lsm_batch_put(b, dk, dkl, v, sizeof v);
		/* Changes to the destination directory go to spa when both names share one. */
		struct fs_inode *pd = same ? &spa : &dpa;
		spa.nentries--;
		if (!dst)
			pd->nentries++;
		if (sdir && !same) {
			spa.nlink--; /* the moved directory's ".." now counts in the new parent */
			pd->nlink++;
		}
		if (dst && ddir)
			pd->nlink--; /* the replaced directory's ".." */
		touch_c(&sa);
		err |= put_inode(b, &sa);
		if (dst)
			err |= drop_link(b, &da, ddir);
	}
	touch_mc(&spa);
	err |= put_inode(b, &spa);
	if (!same) {
		touch_mc(&dpa);
		err |= put_inode(b, &dpa);
	}
	err = err ? ENOMEM : commit(fs, b, 0);
	if (!err) {
		sp->a = spa;
		if (!same)
			dp->a = dpa;
		src->a = sa;
		if (dst)
			dst->a = da;
	}
	unlock_all(lk, 4);
out:
	inode_put(fs, src);
	inode_put(fs, dst);
	inode_put(fs, sp);
	inode_put(fs, dp);
	fuse_reply_err(req, err);
}

/* ---------------------------------------------------------------- files */

struct fhandle {
	struct inode *in;
};

static int open_common(struct fs *fs, struct inode *in, struct fuse_file_info *fi)
{
	struct fhandle *h = malloc(sizeof *h);
	if (!h)
		return ENOMEM;
	h->in = in; /* the caller's reference moves to the handle */
	inode_open_inc(fs, in);
	fi->fh = (uintptr_t)h;
	/* We are the only writer: pages cached by the kernel stay valid across opens. */
	fi->keep_cache = 1;
	return 0;
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct inode *in;
	int err = make_node(req, parent, name, (mode & 07777) | S_IFREG, 0, NULL, &in);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	struct fuse_entry_param e;
	fill_entry(fs, &in->a, &e);
	inode_lookup_inc(fs, in);
	if (fs->zero_open) {
		/* No handle: once OPEN has been answered ENOSYS the kernel sends no RELEASE for any file,
		 * created ones included (fh 0 makes the RELEASEs before that no-ops). The kernel's lookup
		 * on the inode keeps it while it is open, as for every other open file. */
		fi->fh = 0;
		fi->keep_cache = 1;
		if (fuse_reply_create(req, &e, fi) == -ENOENT)
			inode_forget(fs, in->ino, 1);
		inode_put(fs, in);
		return;
	}
	struct inode *ref;
	inode_get(fs, in->ino, &ref); /* the handle's reference (it is in the table: cannot fail) */
	if ((err = open_common(fs, ref, fi))) {
		inode_put(fs, ref);
		inode_forget(fs, in->ino, 1);
		inode_put(fs, in);
		fuse_reply_err(req, err);
		return;
	}
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		/* The open was interrupted: the kernel will not release it, nor count the lookup. */
		inode_open_dec(fs, ref);
		free((void *)(uintptr_t)fi->fh);
		inode_put(fs, ref);
		inode_forget(fs, in->ino, 1);
	}
	inode_put(fs, in);
}

/* open(O_TRUNC) with OPEN requests (-o no_zero_message_open): libfuse turns on FUSE_CAP_ATOMIC_O_TRUNC,
 * so the kernel sends no size change of its own; the open itself must cut the file (one batch: blocks
 * and inode). */
static int open_truncate(fuse_req_t req, struct fs *fs, struct inode *in, int kill)
{
	lsm_batch *b = tl_batch();
	if (!b)
		return ENOMEM;
	pthread_mutex_lock(&in->mu);
	struct fs_inode a = in->a;
	int err = 0, killed = 0;
	if (S_ISREG(a.mode)) {
		if (a.size)
			err = truncate_blocks(fs, b, &a, 0);
		a.size = 0;
		touch_mc(&a);
		if (kill) /* FUSE_OPEN_KILL_SUIDGID: a caller without CAP_FSETID */
			killed = kill_suidgid(req, &a, a.gid, 0);
		if (!err)
			err = put_inode(b, &a) ? ENOMEM : commit(fs, b, 0);
		if (!err)
			in->a = a;
	}
	pthread_mutex_unlock(&in->mu);
	if (!err && killed)
		mode_changed_behind(fs, in->ino);
	return err;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	if (fs->zero_open) {
		/* Zero-message opens: ENOSYS tells the kernel that opening needs no daemon (fc->no_open):
		 * from now on it opens and closes files without OPEN and RELEASE (one round trip less per
		 * open; its page cache is kept, as with keep_cache). O_TRUNC comes as a size change, since
		 * op_init turned atomic O_TRUNC off. */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	struct inode *in;
	int r = inode_get(fs, ino, &in);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	int err = (fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY
			  ? open_truncate(req, fs, in, fs_wire_kill_suidgid())
			  : 0;
	if (err) {
		inode_put(fs, in);
		fuse_reply_err(req, err);
		return;
	}
	err = open_common(fs, in, fi);
	if (err) {
		inode_put(fs, in);
		fuse_reply_err(req, err);
		return;
	}
	if (fuse_reply_open(req, fi) == -ENOENT) {
		inode_open_dec(fs, in);
		free((void *)(uintptr_t)fi->fh);
		inode_put(fs, in);
	}
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct fs *fs = FS(req);
	struct fhandle *h = (struct fhandle *)(uintptr_t)fi->fh;
	if (!h) { /* a file created without a handle (zero-message opens) */
		fuse_reply_err(req, 0);
		return;
	}
	inode_open_dec(fs, h->in);
	inode_put(fs, h->in); /* the last user of an unlinked file reclaims it here */
	free(h);
	fuse_reply_err(req, 0);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	/* Nothing to do at close: writes are committed as they come, locks are the kernel's. ENOSYS makes
	 * the kernel stop sending FLUSH (fc->no_flush), one round trip less per close(2); dirty pages of
	 * the writeback cache are still written back (and their errors returned) before close returns. */
	fuse_reply_err(req, ENOSYS);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	/* Data and metadata of every file share one log: syncing it covers this file's data, its inode,
	 * and the directory entries that lead to it. */
	fuse_reply_err(req, fs_store_errno(lsm_sync(FS(req)->db)));
}

/* Copy stored bytes [from, to) of a read starting at file offset off into buf, zeroing what lies between
 * the end of the previous copy (*cur) and from (a hole, or the short tail of a block). Blocks come in
 * ascending order, so each byte of the reply is written once (a 1 MiB memset per read was 5 % of the
 * daemon's time in seqread-1m). */
static void read_fill(char *buf, uint64_t off, uint64_t *cur, uint64_t from, const char *src, uint64_t to)
{
	if (from > *cur)
		memset(buf + (*cur - off), 0, from - *cur);
	memcpy(buf + (from - off), src, to - from);
	if (to > *cur)
		*cur = to;
}

static void read_inode(fuse_req_t req, struct inode *in, fuse_ino_t ino, size_t size, off_t off)
{
	struct fs *fs = FS(req);
	pthread_mutex_lock(&in->mu);
	uint64_t fsize = in->a.size;
	pthread_mutex_unlock(&in->mu);
	if (off < 0 || (uint64_t)off >= fsize || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	size_t n = size;
	if ((uint64_t)off + n > fsize)
		n = (size_t)(fsize - (uint64_t)off);
	char *buf = malloc(n);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	uint64_t cur = (uint64_t)off; /* buf holds the reply's bytes below cur */
	uint64_t bs = fs->bs;
	uint64_t first = (uint64_t)off / bs, last = ((uint64_t)off + n - 1) / bs;
	int err = 0;
	char k[FS_KEY_MAX];
	if (last - first < 2) {
		struct lsm_buf *v = tl_vbuf();
		for (uint64_t blk = first; blk <= last && !err && v; blk++) {
			size_t kl = fs_key_block(k, ino, blk);
			int rc = lsm_get(fs->db, NULL, k, kl, v);
			if (rc == LSM_NOTFOUND)
				continue; /* a hole */
			if (rc) {
				err = fs_store_errno(rc);
				break;
			}
			uint64_t bstart = blk * bs;
			uint64_t from = bstart > (uint64_t)off ? bstart : (uint64_t)off;
			uint64_t to = bstart + v->len < (uint64_t)off + n ? bstart + v->len : (uint64_t)off + n;
			if (to > from)
				read_fill(buf, (uint64_t)off, &cur, from, (char *)v->data + (from - bstart), to);
		}
		if (!v)
			err = ENOMEM;
	} else {
		/* Many blocks: one seek and a walk instead of a lookup per block. */
		lsm_iter *it = lsm_iter_new(fs->db, NULL);
		if (!it) {
			err = ENOMEM;
		} else {
			size_t kl = fs_key_block(k, ino, first);
			for (lsm_iter_seek(it, k, kl); lsm_iter_valid(it); lsm_iter_next(it)) {
				size_t ikl, vl;
				const char *ik = lsm_iter_key(it, &ikl);
				struct fs_key dk;
				if (fs_key_decode(ik, ikl, &dk) || dk.kind != FS_K_BLOCK || dk.ino != ino || dk.blockno > last)
					break;
				const char *vv = lsm_iter_value(it, &vl);
				uint64_t bstart = dk.blockno * bs;
				uint64_t from = bstart > (uint64_t)off ? bstart : (uint64_t)off;
				uint64_t to = bstart + vl < (uint64_t)off + n ? bstart + vl : (uint64_t)off + n;
				if (to > from)
					read_fill(buf, (uint64_t)off, &cur, from, vv + (from - bstart), to);
			}
			err = fs_store_errno(lsm_iter_status(it));
			lsm_iter_free(it);
		}
	}
	if (!err && cur < (uint64_t)off + n)
		memset(buf + (cur - (uint64_t)off), 0, (uint64_t)off + n - cur); /* a hole up to the end */
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, n);
	free(buf);
}

static void write_inode(fuse_req_t req, struct inode *in, fuse_ino_t ino, const char *data, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	if (off < 0 || (uint64_t)off + size < (uint64_t)off) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	int nospc = fs_space_claim(fs, size);
	if (nospc) {
		fuse_reply_err(req, nospc);
		return;
	}
	lsm_batch *b = tl_batch();
	struct lsm_buf *v = tl_vbuf();
	if (!b || !v) {
		fs_space_done(fs, size);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	uint64_t bs = fs->bs;
	char k[FS_KEY_MAX];
	char *tmp = NULL;
	int err = 0;
	pthread_mutex_lock(&in->mu);
	uint64_t pos = (uint64_t)off, end = (uint64_t)off + size;
	while (pos < end && !err) {
		uint64_t blk = pos / bs, bstart = blk * bs;
		uint64_t in_off = pos - bstart;
		uint64_t chunk = bs - in_off < end - pos ? bs - in_off : end - pos;
		size_t kl = fs_key_block(k, ino, blk);
		const char *src = data + (pos - (uint64_t)off);
		if (in_off == 0 && (chunk == bs || bstart + chunk >= in->a.size)) {
			/* The whole block, or everything of it up to (and past) EOF: no read needed. */
			err = lsm_batch_put(b, k, kl, src, chunk) ? ENOMEM : 0;
		} else {
			/* Part of a block: merge with what is stored. */
			if (!tmp && !(tmp = malloc(bs))) {
				err = ENOMEM;
				break;
			}
			size_t have = 0;
			int rc = bstart < in->a.size ? lsm_get(fs->db, NULL, k, kl, v) : LSM_NOTFOUND;
			if (rc == LSM_OK) {
				have = v->len > bs ? bs : v->len;
				memcpy(tmp, v->data, have);
			} else if (rc != LSM_NOTFOUND) {
				err = fs_store_errno(rc);
				break;
			}
			/* Bytes past the old end of the block but before this write read as zeros. */
			if (have < in_off)
				memset(tmp + have, 0, in_off - have);
			memcpy(tmp + in_off, src, chunk);
			size_t len = in_off + chunk > have ? in_off + chunk : have;
			/* Never keep bytes past EOF that a truncate dropped: the stored length is bounded by
			 * the new size. */
			uint64_t newsize = end > in->a.size ? end : in->a.size;
			if (bstart + len > newsize)
				len = (size_t)(newsize - bstart);
			err = lsm_batch_put(b, k, kl, tmp, len) ? ENOMEM : 0;
		}
		pos += chunk;
	}
	struct fs_inode a = in->a;
	int changed = 0;
	if (end > a.size) {
		a.size = end;
		changed = 1;
	}
	if (!fs->cfg.writeback) {
		/* Without writeback caching the daemon keeps mtime; with it, the kernel owns mtime and
		 * ctime and sends them by setattr. */
		touch_mc(&a);
		changed = 1;
	}
	/* FUSE_WRITE_KILL_SUIDGID: a caller without CAP_FSETID wrote (through, not from the cache). */
	int killed = fs_wire_kill_suidgid() && kill_suidgid(req, &a, a.gid, 0);
	changed |= killed;
	if (!err && changed)
		err = put_inode(b, &a) ? ENOMEM : 0;
	if (!err)
		err = commit(fs, b, (fi->flags & (O_SYNC | O_DSYNC)) != 0);
	if (!err)
		in->a = a;
	pthread_mutex_unlock(&in->mu);
	fs_space_done(fs, size);
	free(tmp);
	if (!err && killed)
		mode_changed_behind(fs, ino);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, size);
}

static void fallocate_inode(fuse_req_t req, struct inode *in, int mode, off_t off, off_t len)
{
	struct fs *fs = FS(req);
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) ||
	    ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE))) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	int nospc = (mode & FALLOC_FL_PUNCH_HOLE) ? 0 : fs_space_check(fs, (uint64_t)len);
	if (nospc) {
		fuse_reply_err(req, nospc);
		return;
	}
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	lsm_batch *b = tl_batch();
	struct lsm_buf *v = tl_vbuf();
	if (!b || !v) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int err = 0;
	uint64_t bs = fs->bs;
	pthread_mutex_lock(&in->mu);
	struct fs_inode a = in->a;
	uint64_t start = (uint64_t)off, end = (uint64_t)off + (uint64_t)len;
	/* Under HANDLE_KILLPRIV_V2 the kernel leaves set-id clearing on fallocate to us but sends no flag:
	 * clear as a write would, unless the caller holds CAP_FSETID. */
	int killed = atomic_load(&fs->killpriv_v2) && (a.mode & (S_ISUID | S_ISGID)) && !caller_has_fsetid(req) &&
		     kill_suidgid(req, &a, a.gid, 0);
	if (!S_ISREG(a.mode)) {
		err = S_ISDIR(a.mode) ? EISDIR : ENODEV;
	} else if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		/* Zero range is a punch hole inside EOF (holes read as zeros; no space is reserved) plus,
		 * without KEEP_SIZE, the size growth of a plain fallocate: nothing is stored past EOF. */
		if ((mode & FALLOC_FL_ZERO_RANGE) && !(mode & FALLOC_FL_KEEP_SIZE) && end > a.size) {
			a.size = end;
			end = in->a.size;
		}
		if (end > a.size)
			end = a.size;
		if (start < end) {
			/* Whole blocks inside the hole go with one range deletion; the edges are zeroed. */
			uint64_t fb = (start + bs - 1) / bs, lb = end / bs; /* [fb, lb) whole blocks */
			char k1[FS_KEY_MAX], k2[FS_KEY_MAX];
			if (fb < lb) {
				size_t l1 = fs_key_block(k1, a.ino, fb), l2 = fs_key_block(k2, a.ino, lb);
				err = lsm_batch_delete_range(b, k1, l1, k2, l2) ? ENOMEM : 0;
			}
			uint64_t edges[2][2] = {{start, fb * bs < end ? fb * bs : end}, {lb * bs > start ? lb * bs : start, end}};
			for (int e = 0; e < 2 && !err; e++) {
				uint64_t s = edges[e][0], t = edges[e][1];
				if (s >= t || (e == 1 && edges[0][0] < edges[0][1] && s < edges[0][1]))
					continue;
				uint64_t blk = s / bs;
				size_t kl = fs_key_block(k1, a.ino, blk);
				int rc = lsm_get(fs->db, NULL, k1, kl, v);
				if (rc == LSM_NOTFOUND)
					continue;
				if (rc) {
					err = fs_store_errno(rc);
					break;
				}
				uint64_t bstart = blk * bs;
				uint64_t zs = s - bstart, ze = t - bstart;
				if (zs < v->len) {
					if (ze > v->len)
						ze = v->len;
					memset((char *)v->data + zs, 0, ze - zs);
					err = lsm_batch_put(b, k1, kl, v->data, v->len) ? ENOMEM : 0;
				}
			}
		}
		if (!fs->cfg.writeback)
			touch_mc(&a); /* with writeback caching the kernel stamps and sends the times */
	} else if (!(mode & FALLOC_FL_KEEP_SIZE) && end > a.size) {
		/* Space is not reserved (blocks are written when data comes); the size grows, and what lies
		 * past the old end reads as zeros. With KEEP_SIZE nothing is stored past EOF. */
		a.size = end;
		if (!fs->cfg.writeback)
			touch_c(&a);
	}
	if (!err)
		err = put_inode(b, &a) ? ENOMEM : 0;
	if (!err)
		err = commit(fs, b, 0);
	if (!err)
		in->a = a;
	pthread_mutex_unlock(&in->mu);
	if (!err && killed)
		mode_changed_behind(fs, in->ino);
	fuse_reply_err(req, err);
}

static void lseek_inode(fuse_req_t req, struct inode *in, fuse_ino_t ino, off_t off, int whence)
{
	struct fs *fs = FS(req);
	pthread_mutex_lock(&in->mu);
	uint64_t size = in->a.size;
	pthread_mutex_unlock(&in->mu);
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (fs->cfg.writeback) {
		/* With writeback caching, dirty pages the kernel has not sent yet are invisible here, and a
		 * hole reported over them would make `cp --sparse` skip real data. ENOSYS makes the kernel
		 * answer itself: all data up to EOF, which is always correct. */
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (off < 0 || (uint64_t)off >= size) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	uint64_t bs = fs->bs, blk = (uint64_t)off / bs;
	lsm_iter *it = lsm_iter_new(fs->db, NULL);
	if (!it) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	char k[FS_KEY_MAX];
	size_t kl = fs_key_block(k, ino, blk);
	uint64_t result = size;
	int found_data = 0;
	uint64_t expect = blk;
	for (lsm_iter_seek(it, k, kl); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t ikl;
		const char *ik = lsm_iter_key(it, &ikl);
		struct fs_key dk;
		if (fs_key_decode(ik, ikl, &dk) || dk.kind != FS_K_BLOCK || dk.ino != ino)
			break;
		if (whence == SEEK_DATA) {
			uint64_t s = dk.blockno * bs;
			result = s > (uint64_t)off ? s : (uint64_t)off;
			found_data = 1;
			break;
		}
		if (dk.blockno != expect)
			break; /* a missing block: the hole starts at `expect` */
		size_t vl = lsm_iter_value_size(it);
		expect++;
		if (vl < bs)
			break; /* a short block ends the data */
	}
	int st = lsm_iter_status(it);
	lsm_iter_free(it);
	if (st) {
		fuse_reply_err(req, fs_store_errno(st));
		return;
	}
	if (whence == SEEK_DATA) {
		if (!found_data || result >= size) {
			fuse_reply_err(req, ENXIO);
			return;
		}
	} else {
		uint64_t hole = expect * bs;
		if (hole < (uint64_t)off)
			hole = (uint64_t)off;
		result = hole < size ? hole : size;
	}
	fuse_reply_lseek(req, (off_t)result);
}

/* ---------------------------------------------------------------- directories */

struct dentry {
	char *name;
	uint64_t ino;
	unsigned type;
};

struct dhandle {
	struct inode *in;
	pthread_mutex_t mu;
	struct dentry *e;
	size_t n;
	int loaded;
};

static void dh_clear(struct dhandle *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	d->e = NULL;
	d->n = 0;
	d->loaded = 0;
}

/* Read the directory's entries once per pass (offset 0): offsets are positions in that list, so a
 * listing neither repeats nor loses entries when the directory changes underneath it. */
static int dh_load(struct fs *fs, struct dhandle *d, uint64_t ino)
{
	dh_clear(d);
	char k[FS_KEY_MAX];
	size_t kl = fs_key_dirent_prefix(k, ino);
	lsm_iter *it = lsm_iter_new(fs->db, NULL);
	if (!it)
		return ENOMEM;
	size_t cap = 0;
	int err = 0;
	for (lsm_iter_seek(it, k, kl); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t ikl, vl;
		const char *ik = lsm_iter_key(it, &ikl);
		if (ikl <= kl || memcmp(ik, k, kl))
			break;
		const char *vv = lsm_iter_value(it, &vl);
		uint64_t cino;
		unsigned type;
		if (fs_dirent_decode(vv, vl, &cino, &type)) {
			err = EIO;
			break;
		}
		if (d->n == cap) {
			cap = cap ? cap * 2 : 32;
			struct dentry *ne = realloc(d->e, cap * sizeof *ne);
			if (!ne) {
				err = ENOMEM;
				break;
			}
			d->e = ne;
		}
		struct dentry *de = &d->e[d->n];
		de->name = strndup(ik + kl, ikl - kl);
		if (!de->name) {
			err = ENOMEM;
			break;
		}
		de->ino = cino;
		de->type = type;
		d->n++;
	}
	if (!err)
		err = fs_store_errno(lsm_iter_status(it));
	lsm_iter_free(it);
	d->loaded = !err;
	return err;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct inode *in;
	int r = inode_get(fs, ino, &in);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	if (!S_ISDIR(in->a.mode)) {
		inode_put(fs, in);
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	struct dhandle *d = calloc(1, sizeof *d);
	if (!d) {
		inode_put(fs, in);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	d->in = in;
	pthread_mutex_init(&d->mu, NULL);
	inode_open_inc(fs, in);
	fi->fh = (uintptr_t)d;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) == -ENOENT) {
		inode_open_dec(fs, in);
		pthread_mutex_destroy(&d->mu);
		free(d);
		inode_put(fs, in);
	}
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi, int plus)
{
	struct fs *fs = FS(req);
	struct dhandle *d = (struct dhandle *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	size_t rem = size;
	char *p = buf;
	int err = 0;
	pthread_mutex_lock(&d->mu);
	if (off == 0 || !d->loaded)
		err = dh_load(fs, d, ino);
	/* Offsets: 1 is ".", 2 is "..", 3 + i is entry i. The offset given is the last one consumed. */
	for (uint64_t pos = (uint64_t)off; !err; pos++) {
		struct fuse_entry_param e;
		struct stat st;
		const char *name;
		struct inode *child = NULL;
		memset(&e, 0, sizeof e);
		memset(&st, 0, sizeof st);
		if (pos == 0 || pos == 1) {
			name = pos == 0 ? "." : "..";
			/* ".." of the root and of every directory: the kernel answers ".." lookups itself. */
			st.st_ino = pos == 0 ? ino : FS_ROOT_INO;
			st.st_mode = S_IFDIR;
			e.attr = st;
		} else if (pos - 2 < d->n) {
			struct dentry *de = &d->e[pos - 2];
			name = de->name;
			st.st_ino = de->ino;
			st.st_mode = (mode_t)de->type << 12;
			if (plus) {
				int r = inode_get(fs, de->ino, &child);
				if (r == -ENOENT)
					continue; /* removed since the list was read */
				if (r) {
					err = -r;
					break;
				}
				pthread_mutex_lock(&child->mu);
				fill_entry(fs, &child->a, &e);
				pthread_mutex_unlock(&child->mu);
			}
		} else {
			break;
		}
		size_t used = plus ? fuse_add_direntry_plus(req, p, rem, name, &e, (off_t)(pos + 1))
				   : fuse_add_direntry(req, p, rem, name, &st, (off_t)(pos + 1));
		if (used > rem) {
			inode_put(fs, child);
			break;
		}
		if (child) {
			/* The entry made it into the reply: the kernel now holds a lookup of it. */
			inode_lookup_inc(fs, child);
			inode_put(fs, child);
		}
		p += used;
		rem -= used;
	}
	pthread_mutex_unlock(&d->mu);
	if (err && rem == size)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	struct fs *fs = FS(req);
	struct dhandle *d = (struct dhandle *)(uintptr_t)fi->fh;
	dh_clear(d);
	pthread_mutex_destroy(&d->mu);
	inode_open_dec(fs, d->in);
	inode_put(fs, d->in);
	free(d);
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	op_fsync(req, ino, datasync, fi);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	(void)ino;
	struct fs *fs = FS(req);
	struct statvfs sv;
	if (statvfs(fs->cfg.store_dir, &sv)) {
		fuse_reply_err(req, errno);
		return;
	}
	struct statvfs st;
	memset(&st, 0, sizeof st);
	st.f_bsize = fs->bs;
	st.f_frsize = fs->bs;
	/* The store's device, in our block size. */
	st.f_blocks = (fsblkcnt_t)((uint64_t)sv.f_blocks * sv.f_frsize / fs->bs);
	st.f_bfree = (fsblkcnt_t)((uint64_t)sv.f_bfree * sv.f_frsize / fs->bs);
	/* What writes may still use: above the reserve, after what the store owes (space.c). */
	st.f_bavail = (fsblkcnt_t)(fs_space_usable(fs, &sv) / fs->bs);
	/* Inodes cost no fixed table: any free block could hold some. Report the live count as used. */
	uint64_t used = atomic_load(&fs->ninodes);
	st.f_ffree = st.f_favail = (fsfilcnt_t)(st.f_bavail * (fs->bs / 256));
	st.f_files = (fsfilcnt_t)(used + st.f_ffree);
	st.f_namemax = FS_NAME_MAX;
	fuse_reply_statfs(req, &st);
}

/* ---------------------------------------------------------------- extended attributes */

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags)
{
	struct fs *fs = FS(req);
	size_t nl = strlen(name);
	if (nl == 0 || nl > FS_NAME_MAX) {
		fuse_reply_err(req, nl ? ERANGE : EINVAL);
		return;
	}
	if (size > 65536) {
		fuse_reply_err(req, E2BIG);
		return;
	}
	int nospc = fs_space_check(fs, nl + size);
	if (nospc) {
		fuse_reply_err(req, nospc);
		return;
	}
	if (!strncmp(name, "system.posix_acl_", 17)) {
		/* POSIX ACLs are not supported (FUSE_CAP_POSIX_ACL is off): storing one as an opaque
		 * attribute would let `cp -a` believe it set the mode when it did not. Refusing makes
		 * tools fall back to chmod. */
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	struct inode *in;
	int r = inode_get(fs, ino, &in);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	lsm_batch *b = tl_batch();
	struct lsm_buf *v = tl_vbuf();
	int err = b && v ? 0 : ENOMEM;
	char k[FS_KEY_MAX];
	size_t kl = fs_key_xattr(k, ino, name, nl);
	pthread_mutex_lock(&in->mu);
	struct fs_inode a = in->a;
	int exists = 0;
	if (!err && a.nxattrs) {
		int rc = lsm_get(fs->db, NULL, k, kl, v);
		if (rc == LSM_OK)
			exists = 1;
		else if (rc != LSM_NOTFOUND)
			err = fs_store_errno(rc);
	}
	if (!err && (flags & XATTR_CREATE) && exists)
		err = EEXIST;
	if (!err && (flags & XATTR_REPLACE) && !exists)
		err = ENODATA;
	if (!err) {
		if (!exists)
			a.nxattrs++;
		touch_c(&a);
		err = lsm_batch_put(b, k, kl, value, size) || put_inode(b, &a) ? ENOMEM : 0;
	}
	if (!err)
		err = commit(fs, b, 0);
	if (!err)
		in->a = a;
	pthread_mutex_unlock(&in->mu);
	inode_put(fs, in);
	fuse_reply_err(req, err);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = FS(req);
	size_t nl = strlen(name);
	if (nl == 0 || nl > FS_NAME_MAX) {
		fuse_reply_err(req, nl ? ERANGE : ENODATA);
		return;
	}
	struct inode *in;
	int r = inode_get(fs, ino, &in);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	pthread_mutex_lock(&in->mu);
	uint32_t n = in->a.nxattrs;
	pthread_mutex_unlock(&in->mu);
	inode_put(fs, in);
	if (n == 0) {
		/* Answered from memory: the kernel asks for security.capability before every write. */
		fuse_reply_err(req, ENODATA);
		return;
	}
	char k[FS_KEY_MAX];
	size_t kl = fs_key_xattr(k, ino, name, nl);
	struct lsm_buf *v = tl_vbuf();
	if (!v) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	int rc = lsm_get(fs->db, NULL, k, kl, v);
	if (rc == LSM_NOTFOUND)
		fuse_reply_err(req, ENODATA);
	else if (rc)
		fuse_reply_err(req, fs_store_errno(rc));
	else if (size == 0)
		fuse_reply_xattr(req, v->len);
	else if (v->len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v->data, v->len);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = FS(req);
	char k[FS_KEY_MAX];
	size_t kl = fs_key_xattr_prefix(k, ino);
	lsm_iter *it = lsm_iter_new(fs->db, NULL);
	if (!it) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	char *out = NULL;
	size_t len = 0, cap = 0;
	int err = 0;
	for (lsm_iter_seek(it, k, kl); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t ikl;
		const char *ik = lsm_iter_key(it, &ikl);
		if (ikl <= kl || memcmp(ik, k, kl))
			break;
		size_t nl = ikl - kl;
		if (len + nl + 1 > cap) {
			cap = (len + nl + 1) * 2;
			char *no = realloc(out, cap);
			if (!no) {
				err = ENOMEM;
				break;
			}
			out = no;
		}
		memcpy(out + len, ik + kl, nl);
		out[len + nl] = 0;
		len += nl + 1;
	}
	if (!err)
		err = fs_store_errno(lsm_iter_status(it));
	lsm_iter_free(it);
	if (err)
		fuse_reply_err(req, err);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, out, len);
	free(out);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = FS(req);
	size_t nl = strlen(name);
	if (nl == 0 || nl > FS_NAME_MAX) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	struct inode *in;
	int r = inode_get(fs, ino, &in);
	if (r) {
		fuse_reply_err(req, -r);
		return;
	}
	lsm_batch *b = tl_batch();
	struct lsm_buf *v = tl_vbuf();
	int err = b && v ? 0 : ENOMEM;
	char k[FS_KEY_MAX];
	size_t kl = fs_key_xattr(k, ino, name, nl);
	pthread_mutex_lock(&in->mu);
	struct fs_inode a = in->a;
	if (!err && a.nxattrs == 0)
		err = ENODATA;
	if (!err) {
		int rc = lsm_get(fs->db, NULL, k, kl, v);
		if (rc == LSM_NOTFOUND)
			err = ENODATA;
		else if (rc)
			err = fs_store_errno(rc);
	}
	if (!err) {
		a.nxattrs--;
		touch_c(&a);
		err = lsm_batch_delete(b, k, kl) || put_inode(b, &a) ? ENOMEM : 0;
	}
	if (!err)
		err = commit(fs, b, 0);
	if (!err)
		in->a = a;
	pthread_mutex_unlock(&in->mu);
	inode_put(fs, in);
	fuse_reply_err(req, err);
}

/* ---------------------------------------------------------------- I/O on open files */

/* The inode of an open file, with one reference (inode_put). Files opened without an OPEN request
 * (zero-message opens, see op_open) come with fh 0, so every I/O finds its inode by number: the kernel
 * holds a lookup on an open file's inode, so it is in the table and this is a hash probe. */
static struct inode *io_inode(fuse_req_t req, fuse_ino_t ino)
{
	struct inode *in;
	int r = inode_get(FS(req), ino, &in);
	if (r) {
		fuse_reply_err(req, r == -ENOENT ? EIO : -r);
		return NULL;
	}
	return in;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	struct fs *fs = FS(req); /* req is gone once replied to */
	struct inode *in = io_inode(req, ino);
	if (in) {
		read_inode(req, in, ino, size, off);
		inode_put(fs, in);
	}
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fs *fs = FS(req); /* req is gone once replied to */
	struct inode *in = io_inode(req, ino);
	if (in) {
		write_inode(req, in, ino, data, size, off, fi);
		inode_put(fs, in);
	}
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	(void)fi;
	struct fs *fs = FS(req); /* req is gone once replied to */
	struct inode *in = io_inode(req, ino);
	if (in) {
		fallocate_inode(req, in, mode, off, len);
		inode_put(fs, in);
	}
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	(void)fi;
	struct fs *fs = FS(req); /* req is gone once replied to */
	struct inode *in = io_inode(req, ino);
	if (in) {
		lseek_inode(req, in, ino, off, whence);
		inode_put(fs, in);
	}
}

const struct fuse_lowlevel_ops lsmfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
};
