/*
 * arena.h - bump allocator for the memtable: many small allocations, all freed at once.
 *
 * Contract: arena_alloc never frees; memory lives until arena_free. Not thread-safe for allocation
 * (the memtable has one writer at a time); arena_usage may be read from any thread (relaxed: it is a
 * size hint for flush decisions and stats). Allocations are 8-byte aligned. A failed allocation
 * returns NULL and leaves the arena unchanged.
 */
#ifndef LSM_ARENA_H
#define LSM_ARENA_H

#include <stdatomic.h>
#include <stddef.h>

struct arena_block;

struct arena {
	char *ptr;                    /* next free byte in the current block */
	size_t left;                  /* bytes left in the current block */
	struct arena_block *blocks;   /* every block, newest first, for arena_free */
	size_t block_size;
	_Atomic size_t usage;         /* bytes of blocks allocated (what the memtable costs) */
};

/* block_size: bytes per block (0: 1 MiB); small memtables want small blocks, or one block
 * would already exceed their budget. */
void arena_init(struct arena *a, size_t block_size);
void arena_free(struct arena *a);
void *arena_alloc(struct arena *a, size_t n);
static inline size_t arena_usage(const struct arena *a)
{
	return atomic_load_explicit(&((struct arena *)a)->usage, memory_order_relaxed);
}

#endif
