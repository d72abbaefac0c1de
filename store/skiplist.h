/*
 * skiplist.h - the memtable's ordered index: a skiplist of internal keys (dbformat.h) in an arena.
 *
 * Thread safety: one writer at a time (the write-group leader); any number of readers concurrently
 * with it, without locks. Invariants that make this safe:
 *  1. Nodes are never deleted or moved until the whole list is freed with its arena.
 *  2. A node's key, value and height never change once it is linked; its next pointers are set
 *     before it is published with a release store, and readers follow pointers with acquire loads.
 * Keys must be unique (internal keys carry a unique seqno). A node holds the internal key followed by
 * the value, so one allocation and one cache line or two serve a lookup.
 */
#ifndef LSM_SKIPLIST_H
#define LSM_SKIPLIST_H

#include <stdatomic.h>
#include <stdint.h>

#include "arena.h"
#include "coding.h"

#define SKIPLIST_MAX_HEIGHT 12

struct sl_node {
	uint32_t klen;   /* internal key length (user key + 8) */
	uint32_t vlen;
	uint32_t height;
	uint32_t pad;
	_Atomic(struct sl_node *) next[];
};

struct skiplist {
	struct arena *arena;
	struct sl_node *head;
	_Atomic int max_height;
	uint64_t rnd;                              /* writer-only: random heights */
	/* Writer-only insertion hint: the predecessors found for the last insert. A key that lands right
	 * after the last inserted one (sequential writes, a file's blocks in order) reuses them. */
	struct sl_node *splice[SKIPLIST_MAX_HEIGHT];
	struct sl_node *last;
};

static inline char *sl_node_key(const struct sl_node *n)
{
	return (char *)&n->next[n->height];
}
static inline struct slice sl_node_ikey(const struct sl_node *n)
{
	return slice_make(sl_node_key(n), n->klen);
}
static inline struct slice sl_node_value(const struct sl_node *n)
{
	return slice_make(sl_node_key(n) + n->klen, n->vlen);
}

/* Returns LSM_OK or LSM_NOMEM. */
int skiplist_init(struct skiplist *sl, struct arena *arena);
/* Allocate an unlinked node with room for klen + vlen bytes (caller fills sl_node_key()); NULL if
 * out of memory. */
struct sl_node *skiplist_new_node(struct skiplist *sl, uint32_t klen, uint32_t vlen);
/* Link a filled node. REQUIRES: no node with an equal key; one writer at a time. */
void skiplist_insert(struct skiplist *sl, struct sl_node *node);

/* First node >= target (an internal key), or NULL. */
struct sl_node *skiplist_seek(const struct skiplist *sl, struct slice target);
static inline struct sl_node *skiplist_first(const struct skiplist *sl)
{
	return atomic_load_explicit(&sl->head->next[0], memory_order_acquire);
}
static inline struct sl_node *skiplist_next(const struct sl_node *n)
{
	return atomic_load_explicit(&((struct sl_node *)n)->next[0], memory_order_acquire);
}

#endif
