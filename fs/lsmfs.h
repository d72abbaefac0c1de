/*
 * lsmfs.h - the daemon's shared state: the mounted filesystem and its in-memory inode table.
 *
 * The store (through store/lsm.h only) is the truth; the inode table caches the attributes of every
 * inode the kernel knows (lookup count > 0), has open, or that an operation is using, so getattr,
 * the post-close GETATTR of writeback caching and the kernel's security.capability probe (once per
 * inode with KILLPRIV_V2, see wire.c; before every write without it) are answered from memory. Every
 * change is written through: an operation builds one atomic write batch (metadata and data together),
 * applies it to the store, and only then updates the cached attributes.
 *
 * Locking: each inode has a mutex guarding its attributes and serialising the operations that change
 * it; operations touching several inodes lock them in ascending inode order. The table's shard locks
 * are held only to find, insert or drop entries, never across I/O.
 */
#ifndef LSMFS_H
#define LSMFS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "lsm.h"
#include "schema.h"

struct fuse_session;
#define INODE_SHARDS 64

struct inode {
	uint64_t ino;
	pthread_mutex_t mu;        /* guards a, and the operations that change this inode */
	struct fs_inode a;         /* attributes, as in the store */
	/* Guarded by the shard lock: */
	uint64_t nlookup;          /* the kernel's lookup count */
	int nopen;                 /* open file/dir handles */
	int refs;                  /* operations using the struct right now */
	int dead;                  /* storage reclaimed: the struct only waits for its last reference */
	struct inode *hnext;
};

struct inode_shard {
	pthread_mutex_t mu;
	struct inode **buckets;
	size_t nbuckets, count;
	uint64_t evictions;        /* a load that raced an eviction retries (its copy may be stale) */
};

struct fs_config {
	char *store_dir;
	int read_only;
	int sync_all;              /* -o sync: every change durable before its reply */
	unsigned sync_interval;    /* seconds between background syncs (0: never) */
	size_t cache_size;         /* store block cache bytes */
	size_t write_buffer;       /* store memtable bytes */
	size_t blob_min;           /* values from this size on go to blob files (0: never) */
	uint64_t reserve;          /* free bytes kept on the store's disk (reserve_set: given) */
	int reserve_set;
	uint32_t block_size;       /* for a new store */
	int writeback;             /* kernel writeback cache */
	int killpriv_v2;           /* negotiate FUSE_HANDLE_KILLPRIV_V2 (wire.c) */
	int zero_open;             /* answer OPEN with ENOSYS: the kernel opens files alone */
	double attr_timeout, entry_timeout, negative_timeout;
	int threads;               /* max FUSE worker threads */
	unsigned spin_us;          /* wire.c: a worker polls /dev/fuse this long before sleeping (0: never) */
	char *fault_journal;       /* test-only: run the store on a journaling fault env */
};

/* space.c: the free-space reserve (see there). */
#define FS_SPACE_QUEUE 64
struct fs_space {
	uint64_t reserve;          /* 0: no checking (read-only) */
	_Atomic uint64_t avail;    /* free bytes at the last statvfs */
	_Atomic int64_t grown;     /* bytes written since (not yet in the measurement) */
	_Atomic int64_t inflight;  /* bytes claimed by writes still going on */
	_Atomic int64_t checked_ns;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int inited, started, stop;
	uint64_t queue[FS_SPACE_QUEUE]; /* mu: inodes whose freed blocks to compact away now */
	int nq;
};

struct fs {
	lsm_db *db;
	struct fs_config cfg;
	uint32_t bs;               /* block size of this store */
	struct inode_shard shards[INODE_SHARDS];
	pthread_mutex_t alloc_mu;
	uint64_t next_ino;         /* alloc_mu: next inode number to hand out */
	uint64_t alloc_hw;         /* alloc_mu: numbers below this are persisted as used or reserved */
	_Atomic uint64_t ninodes;  /* live inodes, for statfs */
	_Atomic int stop;
	pthread_t sync_thread;
	int sync_started;
	pthread_mutex_t sync_mu;
	pthread_cond_t sync_cv;
	lsm_env *env;              /* the env the store runs on (NULL: posix) */
	lsm_env *fault_env;        /* test-only journaling wrapper */
	struct fs_space space;
	struct fuse_session *se;   /* set once the session exists (for notifications) */
	int zero_open;             /* set at INIT: files open without OPEN requests (ops.c op_open) */
	_Atomic uint64_t wire_init_unique; /* wire.c: the INIT request whose reply gets KILLPRIV_V2 */
	_Atomic int killpriv_v2;   /* the kernel accepted it: the daemon clears suid/sgid when told */
	int wire_ep;               /* wire.c: epoll on the non-blocking device (spin_us > 0), else -1 */
	pthread_mutex_t wire_mu;   /* wire.c: the reader role */
	pthread_cond_t wire_cv;
	int wire_reader, wire_dead; /* wire_mu */
};

/* space.c */
int fs_space_start(struct fs *fs);
void fs_space_stop(struct fs *fs);
/* 0, or ENOSPC when admitting `growth` more bytes would eat into the reserve. */
int fs_space_check(struct fs *fs, uint64_t growth);
/* The same for a write: the bytes count as in flight until fs_space_done (call it once, success
 * or not, after a successful claim). */
int fs_space_claim(struct fs *fs, uint64_t bytes);
void fs_space_done(struct fs *fs, uint64_t bytes);
/* Bytes writes may still use (what statfs reports as available); sv: the store disk's statvfs. */
struct statvfs;
uint64_t fs_space_usable(struct fs *fs, const struct statvfs *sv);
/* `bytes` of inode ino's blocks were just deleted (committed): compact them away now if space is short. */
void fs_space_freed(struct fs *fs, uint64_t ino, uint64_t bytes);

/* inode.c */
void itab_init(struct fs *fs);
void itab_destroy(struct fs *fs);
/* Find or load ino; the result holds one reference (inode_put releases it). 0 or -errno. */
int inode_get(struct fs *fs, uint64_t ino, struct inode **out);
/* Insert a freshly created inode (attributes given) with one reference. */
int inode_new(struct fs *fs, const struct fs_inode *a, struct inode **out);
void inode_put(struct fs *fs, struct inode *in);
/* Lookup count and open count changes (the shard lock is taken inside). */
void inode_lookup_inc(struct fs *fs, struct inode *in);
void inode_forget(struct fs *fs, uint64_t ino, uint64_t n);
void inode_open_inc(struct fs *fs, struct inode *in);
void inode_open_dec(struct fs *fs, struct inode *in);
/* Reclaim the storage of an inode with no links (called when its last user goes): one batch. */
int fs_reclaim(struct fs *fs, uint64_t ino, uint32_t mode);
/* The same for an inode whose attributes are cached (the inode table's last user): no store read. */
int fs_reclaim_cached(struct fs *fs, const struct fs_inode *a);

/* wire.c: install the /dev/fuse hooks on a mounted session (before its loop starts; they find the fs
 * as the session's userdata). 0 or -errno. */
int fs_wire_install(struct fs *fs, struct fuse_session *se);
/* Release what fs_wire_install set up, once the session loop has ended. */
void fs_wire_uninstall(struct fs *fs);
/* Whether the request this thread is handling asks for suid/sgid to be cleared (KILLPRIV_V2). */
int fs_wire_kill_suidgid(void);
/* The calling worker may block for long (a sync, a stalled write): if it is the one fetching
 * requests, another worker takes that over now. */
void fs_wire_may_block(struct fs *fs);

/* ops.c */
int fs_store_errno(int rc);
extern const struct fuse_lowlevel_ops lsmfs_ops;

/* mount.c: open the store, check or create the superblock and root, start the sync thread. */
int fs_open(struct fs *fs, char *err, size_t errlen);
void fs_close(struct fs *fs);

#endif
