/*
 * memtable.h - the in-memory write buffer: point entries in an arena skiplist, range tombstones in a
 * fragment map.
 *
 * Ownership: refcounted. The db holds one reference while the memtable is active or awaiting flush;
 * every super-version and iterator that can see it holds another.
 * Threads: one writer at a time (the write leader; memtable_add*), any number of concurrent readers.
 * Point reads take no lock. Range tombstones sit behind a read-write lock that readers touch only when
 * the memtable holds any (an atomic count says so), so metadata lookups in a store without range
 * deletes never meet it. The memtable tracks its own highest seqno (no shared counter is touched per
 * insert).
 */
#ifndef LSM_MEMTABLE_H
#define LSM_MEMTABLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "arena.h"
#include "coding.h"
#include "rangedel.h"
#include "skiplist.h"

struct memtable {
	_Atomic int refs;
	uint64_t log_number;          /* the WAL file holding this memtable's writes */
	struct arena arena;
	struct skiplist list;
	_Atomic uint64_t max_seq;     /* highest seqno inserted (0: empty) */
	_Atomic uint64_t min_seq;     /* lowest seqno inserted (0: empty) */
	_Atomic uint64_t entries;     /* point entries and tombstones */
	_Atomic uint64_t range_count; /* range tombstones; 0 lets readers skip the lock */
	uint64_t blob_number;         /* the blob file its references point into (0: none; blob.h) */
	/* Called once when the last reference goes (any thread, any lock held): readers of old
	 * super-versions may still resolve references through it until then. */
	void (*blob_release)(void *arg, uint64_t blob_number);
	void *blob_release_arg;
	_Atomic uint64_t blob_bytes;  /* value bytes it references there (count toward its size) */
	pthread_rwlock_t rd_lock;     /* guards rd */
	struct rd_map *rd;
	/* Byte span of every range tombstone, so lookups outside it skip the lock. Guarded by rd_lock. */
	struct buf_span { char *data; size_t len; } rd_lo, rd_hi;
};

/* A point entry found by a lookup. value points into the memtable (valid while a ref is held). */
struct mem_entry {
	uint64_t seq;
	unsigned type;
	struct slice value;
};

/* budget: the write buffer size it will grow to (sizes its arena blocks). */
struct memtable *memtable_new(uint64_t log_number, size_t budget);
void memtable_ref(struct memtable *m);
void memtable_unref(struct memtable *m);

/* Add a put (VT_VALUE) or point delete (VT_DELETE). LSM_OK or LSM_NOMEM. */
int memtable_add(struct memtable *m, uint64_t seq, unsigned type, struct slice key, struct slice value);
/* Add a range tombstone [begin, end)@seq. */
int memtable_add_range(struct memtable *m, uint64_t seq, struct slice begin, struct slice end);
/* Add every operation of a write batch payload (batch.h), seqnos consecutive from the payload's first:
 * the write path and recovery. LSM_OK, LSM_NOMEM, or the batch reader's LSM_CORRUPT. */
int memtable_apply_batch(struct memtable *m, const char *payload, size_t len);

/* The newest version of key with seqno <= snap: 1 and *e filled, 0 if none, LSM_NOMEM. Raises *range_seq to the newest
 * tombstone (seqno <= snap) of this memtable covering key. */
int memtable_get(struct memtable *m, struct slice key, uint64_t snap, struct mem_entry *e,
		 uint64_t *range_seq);

static inline size_t memtable_bytes(const struct memtable *m)
{
	return arena_usage(&m->arena);
}
/* What the memtable stands for: its own bytes and the blob bytes it references. The write buffer
 * budget applies to this, so a log never names more than about one budget of unflushed blob data
 * (recovery reads all of it back). */
static inline size_t memtable_charge(const struct memtable *m)
{
	return arena_usage(&m->arena) + (size_t)atomic_load_explicit(&m->blob_bytes, memory_order_relaxed);
}
static inline int memtable_empty(struct memtable *m)
{
	return atomic_load_explicit(&m->entries, memory_order_relaxed) == 0 &&
	       atomic_load_explicit(&m->range_count, memory_order_relaxed) == 0;
}

/* Range tombstones overlapping [lo, hi) as an immutable list (lo/hi with NULL data: unbounded). */
int memtable_range_snapshot(struct memtable *m, struct slice lo, struct slice hi, struct rd_list *out);
/* Raw tombstones for flush. REQUIRES: the memtable is immutable (no concurrent adds). */
size_t memtable_range_raw(struct memtable *m, const struct rd_tombstone **out);

struct iter;
/* An iterator over the point entries (internal keys); holds a ref on m. */
struct iter *memtable_iter_new(struct memtable *m);

#endif
