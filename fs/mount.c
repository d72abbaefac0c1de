/* mount.c - opening a store as a filesystem: superblock, root, inode allocator, orphans, background sync. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lsmfs.h"

static void *sync_main(void *arg)
{
	struct fs *fs = arg;
	pthread_mutex_lock(&fs->sync_mu);
	while (!atomic_load(&fs->stop)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += fs->cfg.sync_interval;
		pthread_cond_timedwait(&fs->sync_cv, &fs->sync_mu, &ts);
		if (atomic_load(&fs->stop))
			break;
		pthread_mutex_unlock(&fs->sync_mu);
		/* Bounds what a crash can lose to sync_interval seconds of acknowledged writes. */
		lsm_sync(fs->db);
		pthread_mutex_lock(&fs->sync_mu);
	}
	pthread_mutex_unlock(&fs->sync_mu);
	return NULL;
}

static int create_fs(struct fs *fs, char *err, size_t errlen)
{
	lsm_batch *b = lsm_batch_new();
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	char k[FS_KEY_MAX], v[FS_INODE_LEN];
	struct fs_super s = {FS_MAGIC, FS_FORMAT_VERSION, fs->cfg.block_size, (uint64_t)time(NULL)};
	char sv[FS_SUPER_LEN];
	fs_super_encode(&s, sv);
	size_t kl = fs_key_super(k);
	lsm_batch_put(b, k, kl, sv, sizeof sv);
	struct fs_inode root;
	fs_inode_init(&root, FS_ROOT_INO, S_IFDIR | 0755, getuid(), getgid());
	kl = fs_key_inode(k, FS_ROOT_INO);
	fs_inode_encode(&root, v);
	lsm_batch_put(b, k, kl, v, FS_INODE_LEN);
	char av[8];
	fs_alloc_encode(FS_ROOT_INO + 1, av);
	kl = fs_key_alloc(k);
	lsm_batch_put(b, k, kl, av, sizeof av);
	int rc = lsm_write(fs->db, b, LSM_SYNC);
	lsm_batch_free(b);
	if (rc) {
		snprintf(err, errlen, "cannot create the filesystem in %s: %s", fs->cfg.store_dir, lsm_errmsg());
		return -1;
	}
	return 0;
}

/* Scan the inode records: live count (statfs) and the largest number in use (allocator floor). */
static int scan_inodes(struct fs *fs, uint64_t *max_ino, char *err, size_t errlen)
{
	lsm_iter *it = lsm_iter_new(fs->db, NULL);
	if (!it) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	char p = FS_K_INODE;
	uint64_t n = 0;
	*max_ino = 0;
	for (lsm_iter_seek(it, &p, 1); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl;
		const char *k = lsm_iter_key(it, &kl);
		struct fs_key d;
		if (kl < 1 || k[0] != FS_K_INODE)
			break;
		if (fs_key_decode(k, kl, &d) == 0) {
			n++;
			if (d.ino > *max_ino)
				*max_ino = d.ino;
		}
	}
	int st = lsm_iter_status(it);
	lsm_iter_free(it);
	if (st) {
		snprintf(err, errlen, "cannot read the inodes of %s: %s", fs->cfg.store_dir, lsm_errmsg());
		return -1;
	}
	atomic_store(&fs->ninodes, n);
	return 0;
}

/* Inodes unlinked while open when the daemon stopped (crash or unmount): reclaim them now. */
static int reclaim_orphans(struct fs *fs, char *err, size_t errlen)
{
	lsm_iter *it = lsm_iter_new(fs->db, NULL);
	if (!it) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	char p = FS_K_ORPHAN;
	for (lsm_iter_seek(it, &p, 1); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl;
		const char *k = lsm_iter_key(it, &kl);
		struct fs_key d;
		if (kl < 1 || k[0] != FS_K_ORPHAN)
			break;
		if (fs_key_decode(k, kl, &d))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			uint64_t *nv = realloc(v, cap * sizeof *nv);
			if (!nv)
				break;
			v = nv;
		}
		v[n++] = d.ino;
	}
	lsm_iter_free(it);
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		char k[FS_KEY_MAX];
		size_t kl = fs_key_inode(k, v[i]);
		struct lsm_buf val = {0};
		struct fs_inode a = {.ino = v[i]};
		int r = lsm_get(fs->db, NULL, k, kl, &val);
		int have = r == LSM_OK && fs_inode_decode(val.data, val.len, &a) == 0;
		lsm_buf_free(&val);
		if (have && a.nlink > 0) {
			/* Relinked before the crash (cannot happen through lsmfs; lsmfsck reports it). */
			continue;
		}
		if (fs_reclaim(fs, v[i], have ? a.mode : 0)) {
			snprintf(err, errlen, "cannot reclaim orphan inode %" PRIu64 ": %s", v[i], lsm_errmsg());
			rc = -1;
		}
	}
	free(v);
	return rc;
}

int fs_open(struct fs *fs, char *err, size_t errlen)
{
	struct lsm_options o;
	lsm_options_init(&o);
	o.read_only = fs->cfg.read_only;
	o.block_cache_size = fs->cfg.cache_size;
	if (fs->cfg.write_buffer)
		o.write_buffer_size = fs->cfg.write_buffer;
	o.blob_min_size = fs->cfg.blob_min;
	if (fs->cfg.fault_journal) {
		if (lsm_env_crash_journal(fs->cfg.fault_journal, &fs->fault_env)) {
			snprintf(err, errlen, "cannot create fault journal %s", fs->cfg.fault_journal);
			return -1;
		}
		o.env = fs->fault_env;
	}
	int rc = lsm_open(fs->cfg.store_dir, &o, &fs->db);
	/* A daemon that was just unmounted may still be closing the store: give it a moment, so that
	 * `fusermount3 -u M && lsmfs S M` works. */
	for (int i = 0; rc == LSM_BUSY && i < 60; i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
		rc = lsm_open(fs->cfg.store_dir, &o, &fs->db);
	}
	if (rc) {
		if (rc == LSM_BUSY)
			snprintf(err, errlen, "store %s is already mounted or in use by another process", fs->cfg.store_dir);
		else if (rc == LSM_NOTFOUND && fs->cfg.read_only)
			snprintf(err, errlen, "%s holds no store (a read-only mount cannot create one)", fs->cfg.store_dir);
		else
			snprintf(err, errlen, "cannot open store %s: %s", fs->cfg.store_dir, lsm_errmsg());
		return -1;
	}
	itab_init(fs);
	pthread_mutex_init(&fs->alloc_mu, NULL);
	pthread_mutex_init(&fs->sync_mu, NULL);
	pthread_cond_init(&fs->sync_cv, NULL);

	char k[FS_KEY_MAX];
	size_t kl = fs_key_super(k);
	struct lsm_buf v = {0};
	rc = lsm_get(fs->db, NULL, k, kl, &v);
	if (rc == LSM_NOTFOUND) {
		lsm_buf_free(&v);
		/* An empty store gets a filesystem; a store holding other keys is not ours. */
		lsm_iter *it = lsm_iter_new(fs->db, NULL);
		lsm_iter_seek_first(it);
		int empty = !lsm_iter_valid(it);
		lsm_iter_free(it);
		if (!empty) {
			snprintf(err, errlen, "%s holds a store but no lsmfs superblock: not an lsmfs store", fs->cfg.store_dir);
			return -1;
		}
		if (fs->cfg.read_only) {
			snprintf(err, errlen, "%s holds no filesystem yet (mount it read-write once)", fs->cfg.store_dir);
			return -1;
		}
		if (create_fs(fs, err, errlen))
			return -1;
		fs->bs = fs->cfg.block_size;
	} else if (rc) {
		lsm_buf_free(&v);
		snprintf(err, errlen, "cannot read the superblock of %s: %s", fs->cfg.store_dir, lsm_errmsg());
		return -1;
	} else {
		struct fs_super s;
		int bad = fs_super_decode(v.data, v.len, &s);
		lsm_buf_free(&v);
		if (bad) {
			snprintf(err, errlen, "%s: the superblock is not an lsmfs superblock", fs->cfg.store_dir);
			return -1;
		}
		if (s.version != FS_FORMAT_VERSION) {
			snprintf(err, errlen, "%s: filesystem format version %u, this lsmfs reads version %d",
				 fs->cfg.store_dir, s.version, FS_FORMAT_VERSION);
			return -1;
		}
		if (s.block_size < 512 || s.block_size > 65536 || (s.block_size & (s.block_size - 1))) {
			snprintf(err, errlen, "%s: the superblock's block size %u is invalid", fs->cfg.store_dir, s.block_size);
			return -1;
		}
		fs->bs = s.block_size;
	}

	uint64_t hw = FS_ROOT_INO + 1, max_ino = 0;
	kl = fs_key_alloc(k);
	struct lsm_buf av = {0};
	rc = lsm_get(fs->db, NULL, k, kl, &av);
	if (rc == LSM_OK && fs_alloc_decode(av.data, av.len, &hw)) {
		lsm_buf_free(&av);
		snprintf(err, errlen, "%s: the inode allocator record is malformed", fs->cfg.store_dir);
		return -1;
	}
	lsm_buf_free(&av);
	if (scan_inodes(fs, &max_ino, err, errlen))
		return -1;
	/* Never reuse a number: above the persisted mark and above every stored inode. */
	fs->next_ino = hw > max_ino + 1 ? hw : max_ino + 1;
	fs->alloc_hw = fs->next_ino;
	/* The reserve first: reclaiming big orphans on a full disk compacts their blocks away. */
	if (fs_space_start(fs)) {
		snprintf(err, errlen, "cannot start the space reclaim thread");
		return -1;
	}
	if (!fs->cfg.read_only && reclaim_orphans(fs, err, errlen))
		return -1;

	/* The root stays in the table for the whole mount. */
	struct inode *root;
	if (inode_get(fs, FS_ROOT_INO, &root)) {
		snprintf(err, errlen, "%s: the root directory's inode is missing (run lsmfsck)", fs->cfg.store_dir);
		return -1;
	}
	if (!fs->cfg.read_only && fs->cfg.sync_interval) {
		if (pthread_create(&fs->sync_thread, NULL, sync_main, fs)) {
			snprintf(err, errlen, "cannot start the sync thread");
			return -1;
		}
		fs->sync_started = 1;
	}
	return 0;
}

void fs_close(struct fs *fs)
{
	if (fs->sync_started) {
		pthread_mutex_lock(&fs->sync_mu);
		atomic_store(&fs->stop, 1);
		pthread_cond_broadcast(&fs->sync_cv);
		pthread_mutex_unlock(&fs->sync_mu);
		pthread_join(fs->sync_thread, NULL);
		fs->sync_started = 0;
	}
	if (fs->db) {
		fs_space_stop(fs);
		int rc = lsm_close(fs->db);
		if (rc)
			fprintf(stderr, "lsmfs: closing the store: %s\n", lsm_errmsg());
		fs->db = NULL;
		itab_destroy(fs);
		pthread_mutex_destroy(&fs->alloc_mu);
		pthread_mutex_destroy(&fs->sync_mu);
		pthread_cond_destroy(&fs->sync_cv);
	}
	if (fs->fault_env) {
		lsm_env_destroy(fs->fault_env);
		fs->fault_env = NULL;
	}
}
