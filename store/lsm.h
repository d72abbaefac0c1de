/*
 * lsm.h - the public API of the lsmfs store: a log-structured merge tree as a library.
 *
 * A store is a directory of files (docs/format.md): a write-ahead log, sorted tables on levels, a
 * manifest naming the live tables, CURRENT naming the manifest, and LOCK. Keys and values are byte
 * strings compared with memcmp (shorter first on a tie).
 *
 * Threads: every call on an lsm_db may be made from any number of threads at once. Writers are queued
 * and committed in groups (one log write per group); readers never block writers and never wait for
 * them. A batch, an iterator and a buffer belong to one thread at a time.
 *
 * Errors: calls return LSM_OK (0) or a negative lsm_status. lsm_errmsg() gives the detail of the
 * calling thread's last error (for corruption: the file and byte offset). Nothing aborts on bad data.
 * After a background error (a failed flush, a failed log write) the store stops accepting writes and
 * returns that error to every writer; reads go on.
 */
#ifndef LSM_H
#define LSM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum lsm_status {
	LSM_OK = 0,
	LSM_NOTFOUND = -1,  /* no such key (get), no such store (open without create_if_missing) */
	LSM_CORRUPT = -2,   /* bad bytes on disk: checksum, format or sequence error */
	LSM_IOERR = -3,     /* the env (OS) reported an I/O error */
	LSM_NOSPC = -4,     /* no space left on the store's device */
	LSM_NOMEM = -5,
	LSM_INVAL = -6,     /* bad argument or option */
	LSM_BUSY = -7,      /* the store is locked by another process */
	LSM_READONLY = -8,  /* a write to a store opened read-only */
};

/* Name of a status ("corruption", ...) and the detail of this thread's last error. */
const char *lsm_strerror(int status);
const char *lsm_errmsg(void);

typedef struct lsm_db lsm_db;
typedef struct lsm_batch lsm_batch;
typedef struct lsm_iter lsm_iter;
typedef struct lsm_snapshot lsm_snapshot;
typedef struct lsm_env lsm_env;

struct lsm_options {
	lsm_env *env;                 /* NULL: the POSIX env */
	int create_if_missing;        /* create an empty store if dir holds none (default 1) */
	int error_if_exists;          /* fail with LSM_INVAL if a store exists (default 0) */
	int read_only;                /* replay the log in memory, write nothing, take no lock */
	int repair;                   /* skip corrupt log records in the middle of a log and report them
				       * (lsm_stats.wal_skipped_*) instead of failing the open */
	size_t write_buffer_size;     /* memtable bytes before it becomes immutable (default 64 MiB) */
	int max_immutable;            /* writers wait when this many memtables await flush (default 2) */
	size_t block_size;            /* table data block target (default 4096) */
	int block_restart_interval;   /* keys between prefix-compression restarts (default 16) */
	int bloom_bits_per_key;       /* bloom filter size; 0 disables filters (default 10) */
	size_t table_target_size;     /* compaction output table size (default 8 MiB) */
	size_t block_cache_size;      /* bytes of data blocks cached (default 32 MiB); used for tables the
	                                 * env cannot map (the posix env maps them: see table.h) */
	int max_open_tables;          /* table readers (file descriptors) kept open (default 1000) */
	int l0_compaction_trigger;    /* level-0 tables that start a compaction (default 4) */
	int l0_slowdown_trigger;      /* level-0 tables at which each write is delayed 1 ms (default 12) */
	int l0_stop_trigger;          /* level-0 tables at which writes wait for compaction (default 20) */
	uint64_t level1_max_bytes;    /* target size of level 1; each next level is 10x (default 64 MiB) */
	size_t blob_min_size;         /* values of at least this many bytes are written once to a blob file
				       * and referenced from the tree, instead of being copied by every
				       * flush and compaction (0: never; default 0) */
	int disable_compaction;       /* tests: never compact in the background */
};

/* Fill o with the defaults above. */
void lsm_options_init(struct lsm_options *o);

/* Open (or create) the store in dir. On success *out is the handle; on error *out is NULL. */
int lsm_open(const char *dir, const struct lsm_options *opts, lsm_db **out);
/* Flush nothing, wait for background work to stop, release everything. Acknowledged writes are in
 * the log; the log is synced. Returns the first error met while closing (the handle is freed anyway). */
int lsm_close(lsm_db *db);

/* Write flags. */
#define LSM_SYNC 1u   /* return only when the write (and all before it) is durable on disk */

int lsm_put(lsm_db *db, const void *key, size_t klen, const void *val, size_t vlen, unsigned flags);
/* Deleting a missing key is not an error. */
int lsm_delete(lsm_db *db, const void *key, size_t klen, unsigned flags);
/* Hide every key k with begin <= k < end that was written before this call (one write). */
int lsm_delete_range(lsm_db *db, const void *begin, size_t blen, const void *end, size_t elen,
		     unsigned flags);
/* Apply every operation of the batch atomically: readers see all of them or none. */
int lsm_write(lsm_db *db, lsm_batch *batch, unsigned flags);
/* Make every write acknowledged so far durable (shares the group commit of concurrent writers). */
int lsm_sync(lsm_db *db);
/* A hint, read without locks: 1 when a write now would probably wait (level 0 or the immutable
 * memtables behind compaction and flush, or the memtable nearly full, whose switch syncs the old
 * log), so a caller that serves others from this thread can hand them to another first. */
int lsm_write_may_wait(lsm_db *db);

/* A batch: an ordered list of puts, deletes and range deletes applied atomically by lsm_write. */
lsm_batch *lsm_batch_new(void);
void lsm_batch_free(lsm_batch *b);
void lsm_batch_clear(lsm_batch *b);
int lsm_batch_put(lsm_batch *b, const void *key, size_t klen, const void *val, size_t vlen);
int lsm_batch_delete(lsm_batch *b, const void *key, size_t klen);
int lsm_batch_delete_range(lsm_batch *b, const void *begin, size_t blen, const void *end, size_t elen);
uint32_t lsm_batch_count(const lsm_batch *b);
size_t lsm_batch_bytes(const lsm_batch *b);

/* Snapshots: a sequence number that pins what a reader sees through any flush or compaction. */
const lsm_snapshot *lsm_snapshot_create(lsm_db *db);
void lsm_snapshot_release(lsm_db *db, const lsm_snapshot *snap);
uint64_t lsm_snapshot_seqno(const lsm_snapshot *snap);

/* A zeroed struct (or NULL) means the defaults. Checksums are always verified. */
struct lsm_read_options {
	const lsm_snapshot *snapshot; /* NULL: the newest visible state */
	int dont_fill_cache;          /* 1: do not add blocks read to the block cache (big scans) */
};

/* A caller-owned, reusable value buffer: get() grows it as needed. Free data with lsm_buf_free. */
struct lsm_buf {
	void *data;
	size_t len;
	size_t cap;
};
void lsm_buf_free(struct lsm_buf *b);

/* Look key up. LSM_OK: the value is in *val (val->len bytes). LSM_NOTFOUND: absent or deleted. */
int lsm_get(lsm_db *db, const struct lsm_read_options *ro, const void *key, size_t klen,
	    struct lsm_buf *val);

/* Iterators see one consistent state (the snapshot's, or the newest at creation) in key order.
 * REQUIRES for key/value/next: lsm_iter_valid(). key/value point into the iterator and stay valid until
 * the next move. A read error makes the iterator invalid; lsm_iter_status tells it. Values kept in blob
 * files are read by lsm_iter_value, which returns NULL (length 0) and ends the walk if that read fails. */
lsm_iter *lsm_iter_new(lsm_db *db, const struct lsm_read_options *ro);
void lsm_iter_seek_first(lsm_iter *it);
void lsm_iter_seek(lsm_iter *it, const void *key, size_t klen); /* first key >= key */
void lsm_iter_next(lsm_iter *it);
int lsm_iter_valid(const lsm_iter *it);
const void *lsm_iter_key(const lsm_iter *it, size_t *klen);
const void *lsm_iter_value(const lsm_iter *it, size_t *vlen);
/* The current value's length, without reading a value kept in a blob file. */
size_t lsm_iter_value_size(const lsm_iter *it);
int lsm_iter_status(const lsm_iter *it);
void lsm_iter_free(lsm_iter *it);

/* Turn the memtable into a level-0 table now and wait until it is durable in the manifest. */
int lsm_flush(lsm_db *db);
/* Compact every table overlapping [begin, end) down to the last level (NULL: unbounded). Waits. */
int lsm_compact_range(lsm_db *db, const void *begin, size_t blen, const void *end, size_t elen);

#define LSM_MAX_LEVELS 7

struct lsm_stats {
	uint64_t last_seqno;          /* newest committed write */
	uint64_t visible_seqno;       /* what new readers see */
	uint64_t puts, deletes, range_deletes, batches, groups, syncs;
	uint64_t mem_bytes;           /* active memtable arena */
	uint64_t mem_entries;
	uint64_t imm_count;           /* immutable memtables waiting for flush */
	uint64_t imm_bytes;
	uint64_t wal_number;          /* current log file */
	uint64_t wal_bytes;           /* bytes in the current log */
	uint64_t flushes, compactions;
	uint64_t bytes_flushed, bytes_compacted_in, bytes_compacted_out;
	uint64_t stall_slowdowns, stall_stops, stall_imm_waits;
	uint64_t stall_micros;
	uint64_t level_tables[LSM_MAX_LEVELS];
	uint64_t level_bytes[LSM_MAX_LEVELS];
	uint64_t table_count, table_bytes;
	uint64_t l0_compaction_bytes; /* level 0 plus the level-1 tables overlapping it: what compacting
				       * level 0 rewrites (and needs free space for) */
	uint64_t compacting_bytes;    /* input bytes of the compaction running now (its outputs grow
				       * towards that until the inputs are deleted) */
	uint64_t block_cache_hits, block_cache_misses, block_cache_bytes;
	uint64_t table_cache_hits, table_cache_misses, tables_open;
	uint64_t bloom_useful;        /* table lookups skipped thanks to a bloom filter */
	uint64_t snapshots;           /* live snapshots */
	uint64_t oldest_snapshot;     /* seqno of the oldest live snapshot (0: none) */
	int background_error;         /* 0, or the error that stopped writes */
	/* Recovery, at open: */
	uint64_t wal_records_replayed;
	uint64_t wal_torn_bytes;      /* unsynced tail of the last log discarded (never acknowledged as
				       * durable) */
	uint64_t wal_skipped_records; /* repair: corrupt records skipped in the middle of a log */
	uint64_t wal_skipped_bytes;
	/* Blob files: */
	uint64_t blob_bytes_written;  /* value bytes written to blob files by writers */
	uint64_t blob_bytes_relocated;/* value bytes compaction copied out of mostly-garbage blob files */
	uint64_t blob_live_bytes;     /* blob record bytes the current tables reference */
	uint64_t blob_files;          /* blob files the current tables reference */
};

int lsm_stats_get(lsm_db *db, struct lsm_stats *st);

/* Envs. lsm_options.env takes one; NULL means the POSIX env. */
lsm_env *lsm_env_posix(void);
/* Test support: the POSIX env, recording in journal_path (outside the store) each file's length at its
 * last sync and whether its directory entry was synced, so that after a kill -9 a test can cut the
 * store to what a power loss would have left (see store/env_fault.h). */
int lsm_env_crash_journal(const char *journal_path, lsm_env **out);
/* Release an env made by the constructors above (not the POSIX env). */
void lsm_env_destroy(lsm_env *env);

#ifdef __cplusplus
}
#endif
#endif
