/*
 * block.h - sorted key/value blocks with prefix compression and restart points (data and index blocks
 * of tables; docs/format.md).
 *
 * Layout: entries, then u32 restart offsets, then u32 restart count. An entry is
 *   varint shared | varint unshared | varint value_len | key bytes [shared..] | value
 * where `shared` bytes are taken from the previous key; at a restart point shared is 0, so a seek
 * binary-searches the restarts and then scans at most `interval` entries.
 *
 * The builder belongs to one thread. A parsed block (struct block) is read-only and may be shared by
 * threads (it lives in the block cache); each iterator is private. Every decode is bounds-checked: a
 * malformed block ends the iteration with LSM_CORRUPT, never a read out of bounds.
 */
#ifndef LSM_BLOCK_H
#define LSM_BLOCK_H

#include <stdint.h>

#include "buf.h"
#include "coding.h"
#include "iter.h"

struct block_builder {
	struct buf buf;
	struct buf last_key;
	uint32_t *restarts;
	size_t nrestarts, caprestarts;
	int interval;
	int counter;      /* entries since the last restart */
	uint64_t entries;
};

void bb_init(struct block_builder *b, int restart_interval);
void bb_free(struct block_builder *b);
void bb_reset(struct block_builder *b);
/* REQUIRES: key > every key added since the last reset (in the block's order). */
int bb_add(struct block_builder *b, struct slice key, struct slice value);
/* Bytes the block would take if finished now. */
size_t bb_estimate(const struct block_builder *b);
/* Append the restart array; returns the finished contents (valid until reset/free). */
struct slice bb_finish(struct block_builder *b);
static inline int bb_empty(const struct block_builder *b)
{
	return b->entries == 0;
}

/* How keys of a block compare. */
enum block_cmp {
	BLOCK_CMP_IKEY = 0,  /* internal keys (dbformat.h) */
	BLOCK_CMP_BYTES = 1, /* plain memcmp order */
};

struct block {
	const char *data;
	size_t size;          /* contents without the restart array */
	const char *restarts; /* u32 offsets */
	uint32_t nrestarts;
};

/* Parse contents (without trailer). LSM_OK or LSM_CORRUPT (the caller names file and offset). */
int block_parse(struct block *b, const char *data, size_t len);

struct block_iter {
	struct iter base;
	struct block b;
	enum block_cmp cmp;
	size_t cur;      /* offset of the current entry */
	size_t next_off; /* offset of the entry after it */
	uint32_t next_restart; /* first restart point after the current entry */
	struct buf key;       /* data points at inline_key until a key outgrows it */
	char inline_key[96];
	void (*release)(void *);
	void *arg;
};

/* A block iterator on the caller's stack (no allocation: the point-lookup path). Use iter_seek etc.
 * on &bi->base, then block_iter_cleanup. */
void block_iter_init(struct block_iter *bi, const struct block *b, enum block_cmp cmp);
void block_iter_cleanup(struct block_iter *bi);

/* An iterator over a parsed block. release(arg) is called on destroy (e.g. to unpin a cache entry).
 * Returns NULL if out of memory (release is then called at once). */
struct iter *block_iter_new(const struct block *b, enum block_cmp cmp, void (*release)(void *), void *arg);

#endif
