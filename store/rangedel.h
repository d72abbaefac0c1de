/*
 * rangedel.h - range tombstones, fragmented: the structure every reader consults to learn whether a
 * key was hidden by a delete_range.
 *
 * A range tombstone [begin, end)@seq hides every version of every key in [begin, end) whose seqno is
 * lower than seq. Overlapping tombstones are cut into fragments: non-overlapping [begin, end) pieces in
 * key order, each with the (descending, distinct) seqnos of the tombstones that cover it. Asking "what
 * is the newest tombstone at or below snapshot S covering key k" is then a binary search plus a scan of
 * one fragment's seqnos.
 *
 * Two forms:
 *  - struct rd_list: immutable array built once (table readers at open, iterators, compaction);
 *    safe to share between threads once built. It owns its keys and seqno arrays.
 *  - struct rd_map: mutable, for the memtable: fragments kept split on insert. Not thread-safe by
 *    itself; the memtable guards it with a read-write lock.
 */
#ifndef LSM_RANGEDEL_H
#define LSM_RANGEDEL_H

#include <stddef.h>
#include <stdint.h>

#include "coding.h"

struct rd_tombstone {
	struct slice begin, end;
	uint64_t seq;
};

struct rd_frag {
	struct slice begin, end;
	const uint64_t *seqs; /* descending */
	uint32_t nseq;
};

struct rd_list {
	struct rd_frag *frags;
	size_t n;
	void *mem; /* one allocation holding keys and seqnos */
};

/* Build a fragmented list from raw tombstones (any order, may overlap; empty ranges ignored).
 * Returns LSM_OK or LSM_NOMEM. An empty input gives an empty list (frags NULL, n 0). */
int rd_list_build(struct rd_list *out, const struct rd_tombstone *t, size_t n);
void rd_list_free(struct rd_list *l);
/* Index of the fragment with begin <= key < end, or -1. */
long rd_list_find(const struct rd_list *l, struct slice key);
/* Newest seqno <= snap of a tombstone covering key (0 if none). */
uint64_t rd_list_covering(const struct rd_list *l, struct slice key, uint64_t snap);
/* Newest seqno <= snap in one fragment (0 if none). */
static inline uint64_t rd_frag_newest(const struct rd_frag *f, uint64_t snap)
{
	for (uint32_t i = 0; i < f->nseq; i++)
		if (f->seqs[i] <= snap)
			return f->seqs[i];
	return 0;
}

/* A cursor that answers covering() for keys visited in ascending order in amortized O(1). */
struct rd_cursor {
	const struct rd_list *l;
	size_t i;
};
static inline void rd_cursor_init(struct rd_cursor *c, const struct rd_list *l)
{
	c->l = l;
	c->i = 0;
}
/* REQUIRES: keys passed in non-decreasing order since the last rd_cursor_seek/init. */
uint64_t rd_cursor_covering(struct rd_cursor *c, struct slice key, uint64_t snap);
void rd_cursor_seek(struct rd_cursor *c, struct slice key);

/* The memtable's mutable fragment map. */
struct rd_map;
struct rd_map *rd_map_new(void);
void rd_map_free(struct rd_map *m);
/* Add [begin, end)@seq; keys are copied. Returns LSM_OK or LSM_NOMEM (map unchanged on failure). */
int rd_map_add(struct rd_map *m, struct slice begin, struct slice end, uint64_t seq);
uint64_t rd_map_covering(const struct rd_map *m, struct slice key, uint64_t snap);
/* Every raw tombstone added, in insertion order (for flush); pointers stay valid while m lives. */
size_t rd_map_count(const struct rd_map *m);
const struct rd_tombstone *rd_map_raw(const struct rd_map *m);
/* Build an immutable list of the fragments overlapping [lo, hi) (empty slice data = unbounded). */
int rd_map_snapshot(const struct rd_map *m, struct slice lo, struct slice hi, struct rd_list *out);

#endif
