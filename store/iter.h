/*
 * iter.h - the internal iterator interface (over internal keys) and the merging iterator.
 *
 * Every source of entries (memtable, table block, table, level, merge of them) is a struct iter.
 * Position and current entry are plain fields so the hot loops (merge, db iterator) read them without
 * an indirect call; only moves go through ops. key/value point into the iterator's own storage and
 * stay valid until the next move. An error makes the iterator invalid with status set (an lsm_status).
 * Iterators belong to one thread.
 */
#ifndef LSM_ITER_H
#define LSM_ITER_H

#include "coding.h"

struct iter;

struct iter_ops {
	void (*seek_first)(struct iter *it);
	/* First entry whose internal key >= target. */
	void (*seek)(struct iter *it, struct slice target);
	/* REQUIRES: valid. */
	void (*next)(struct iter *it);
	void (*destroy)(struct iter *it);
};

struct iter {
	const struct iter_ops *ops;
	int valid;
	int status;           /* LSM_OK or the error that ended the iteration */
	struct slice key;     /* internal key */
	struct slice value;
};

static inline void iter_seek_first(struct iter *it)
{
	it->ops->seek_first(it);
}
static inline void iter_seek(struct iter *it, struct slice target)
{
	it->ops->seek(it, target);
}
static inline void iter_next(struct iter *it)
{
	it->ops->next(it);
}
static inline void iter_destroy(struct iter *it)
{
	if (it)
		it->ops->destroy(it);
}

/* An iterator over nothing (optionally carrying an error status). */
struct iter *iter_empty_new(int status);

/* Merge n children (ownership taken, also on failure) into one iterator in internal-key order.
 * Returns NULL (children destroyed) if out of memory. */
struct iter *iter_merge_new(struct iter **children, int n);

#endif
