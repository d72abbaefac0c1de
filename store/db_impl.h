/*
 * db_impl.h - the engine's internal state (struct lsm_db) shared by db.c, db_iter.c, compaction.c and
 * inspect.c. Not a public header.
 *
 * Locking: `mu` guards the write queue, the memtable switch, the immutable list, the version set,
 * snapshots and background state (fields marked "mu"). `sv_mu` guards only the super-version pointer
 * and is held for the few instructions of taking a reference (readers never touch `mu`). Lock order:
 * mu before sv_mu. The write leader inserts into `mem` without any lock (one leader at a time).
 */
#ifndef LSM_DB_IMPL_H
#define LSM_DB_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "batch.h"
#include "blob.h"
#include "lsm.h"
#include "memtable.h"
#include "version.h"
#include "wal.h"

#define MAX_IMM 16

/* A small unordered set of file numbers (db.c). */
struct numbers {
	uint64_t *v;
	size_t n, cap;
};
int numbers_add(struct numbers *s, uint64_t x);       /* LSM_OK or LSM_NOMEM */
void numbers_remove(struct numbers *s, uint64_t x);  /* one occurrence, if any */

/* What a reader sees: the memtables and table layout at one moment, refcounted as a unit. Flush and
 * compaction install a new one; readers holding the old one keep everything in it alive. */
struct superversion {
	_Atomic int refs;
	struct memtable *mem;
	struct memtable *imm[MAX_IMM]; /* newest first */
	int nimm;
	struct version *v;
	struct lsm_db *db;
};

struct writer {
	struct lsm_batch *batch; /* NULL: a sync request */
	int sync;
	int exclusive;           /* lsm_flush: leads alone, never folded into another's group */
	int done;
	int status;
	pthread_cond_t cv;
	struct writer *next;
};

struct lsm_snapshot {
	uint64_t seq;
	struct lsm_snapshot *prev, *next; /* mu */
};

/* A counter bumped from many reader threads: spread over cache lines so readers do not contend. */
#define NCOUNTER_SHARDS 16
struct sharded_counter {
	struct {
		_Alignas(64) _Atomic uint64_t v;
	} s[NCOUNTER_SHARDS];
};
void counter_add(struct sharded_counter *c, uint64_t n);
uint64_t counter_sum(struct sharded_counter *c);

struct lsm_db {
	char *dir;
	struct lsm_options o;
	lsm_env *env;
	lsm_flock *lock;

	pthread_mutex_t mu;
	pthread_cond_t bg_cv;        /* wakes background threads */
	pthread_cond_t done_cv;      /* a flush/compaction finished, or an error occurred */

	/* Write path (mu). */
	struct writer *wq_head, *wq_tail;
	uint64_t last_seq;           /* last seqno assigned (mu; the leader reads it under mu) */
	_Atomic uint64_t visible_seq;/* readers' default snapshot: published once per group */
	struct memtable *mem;
	struct memtable *imm[MAX_IMM]; /* oldest first */
	int nimm;
	struct wal_writer *log;
	struct lsm_batch group;      /* the leader's merged batch */
	/* Blob files (blob.h). `blob` is the active memtable's blob file, opened by the leader (mu held)
	 * for the first big value and closed at the memtable switch; the leader alone appends to it. */
	struct wal_writer *blob;
	struct lsm_batch blob_batch; /* leader: the group with big values replaced by references */
	struct buf blob_recs;        /* leader: the group's blob records, appended at once */
	struct blob_files blobs;     /* open blob files for reads (thread-safe) */
	/* Blob files some memtable still refers to (until its last reference goes: readers of old
	 * super-versions resolve through it). Own lock: the release runs wherever a memtable dies,
	 * sometimes with mu held (order: mu before pin_mu). */
	pthread_mutex_t pin_mu;
	struct numbers blob_pins;
	int bg_error;                /* 0 or the error that stopped writes */
	_Atomic int write_pressure;  /* lsm_write_may_wait (set under mu by note_pressure) */

	/* Read path. */
	pthread_mutex_t sv_mu;
	struct superversion *sv;     /* sv_mu (written with mu held too) */

	struct vset *vs;             /* mu */
	struct cache *block_cache;
	struct cache *table_cache;
	int manifest_busy;           /* mu: a log_and_apply is writing */
	struct numbers pending;      /* mu: table numbers being written, not yet in a version */

	/* Background. */
	pthread_t flush_thread, compact_thread;
	int threads_started;
	int shutting_down;           /* mu */
	int flush_requested;         /* mu */
	int manual_compaction;       /* mu: a compact_range is running */
	int compacting;              /* mu: the compaction thread is inside a compaction */
	uint64_t compacting_bytes;   /* mu: input bytes of the compaction being written (0: none) */

	struct lsm_snapshot snapshots; /* mu: list sentinel, oldest first */
	int nsnapshots;

	/* Stats (mu unless atomic). */
	uint64_t st_puts, st_deletes, st_range_deletes, st_batches, st_groups, st_syncs;
	uint64_t st_flushes, st_compactions, st_bytes_flushed, st_bytes_compacted_in, st_bytes_compacted_out;
	uint64_t st_stall_slowdowns, st_stall_stops, st_stall_imm_waits, st_stall_micros;
	struct sharded_counter bloom_useful;
	uint64_t rec_records, rec_torn_bytes, rec_skipped_records, rec_skipped_bytes;
	uint64_t st_blob_bytes_written, st_blob_bytes_relocated; /* mu */
};

/* Super-version references (db.c). */
struct superversion *sv_acquire(struct lsm_db *db);
void sv_release(struct superversion *sv);

/* Background work (compaction.c): called by the compaction thread with mu held; returns 1 if it did
 * work, 0 if nothing was due. */
int compaction_maybe_run(struct lsm_db *db);
void *compaction_thread_main(void *arg);
int compaction_manual(struct lsm_db *db, const void *begin, size_t blen, const void *end, size_t elen);

/* db.c helpers shared with compaction.c (mu held). */
int db_install_edit(struct lsm_db *db, struct version_edit *e);
void db_delete_obsolete_files(struct lsm_db *db);
int db_pending_add(struct lsm_db *db, uint64_t number);
void db_pending_remove(struct lsm_db *db, uint64_t number);
uint64_t db_oldest_snapshot(struct lsm_db *db);
/* The seqnos of live snapshots, ascending (caller frees); mu held. */
uint64_t *db_snapshot_list(struct lsm_db *db, int *n);
void db_set_bg_error(struct lsm_db *db, int rc);
struct table_opts db_table_opts(const struct lsm_db *db);

#endif
