/* arena.c - bump allocator backing the memtable's skiplist nodes. */
#include <stdint.h>
#include <stdlib.h>

#include "arena.h"

/* 1 MiB blocks by default: big enough that block headers and malloc calls vanish in the cost of a 64 MiB
 * memtable, small enough that a tiny memtable (tests, read-only replays) does not waste much. An
 * allocation of more than a quarter block gets its own block so a big value does not waste the
 * rest of the current one. */
#define ARENA_BLOCK (1u << 20)

struct arena_block {
	struct arena_block *next;
	/* Payload follows, 16-byte aligned by the header's size. */
	uint64_t pad;
};

void arena_init(struct arena *a, size_t block_size)
{
	a->ptr = NULL;
	a->left = 0;
	a->blocks = NULL;
	a->block_size = block_size ? block_size : ARENA_BLOCK;
	atomic_init(&a->usage, 0);
}

void arena_free(struct arena *a)
{
	struct arena_block *b = a->blocks;
	while (b) {
		struct arena_block *n = b->next;
		free(b);
		b = n;
	}
	arena_init(a, a->block_size);
}

static char *arena_new_block(struct arena *a, size_t n)
{
	struct arena_block *b = malloc(sizeof *b + n);
	if (!b)
		return NULL;
	b->next = a->blocks;
	a->blocks = b;
	atomic_fetch_add_explicit(&a->usage, sizeof *b + n, memory_order_relaxed);
	return (char *)(b + 1);
}

void *arena_alloc(struct arena *a, size_t n)
{
	if (n > SIZE_MAX - sizeof(struct arena_block) - 7)
		return NULL; /* rounding or the block header would wrap around */
	n = (n + 7) & ~(size_t)7;
	if (n <= a->left) {
		char *p = a->ptr;
		a->ptr += n;
		a->left -= n;
		return p;
	}
	if (n > a->block_size / 4)
		return arena_new_block(a, n);
	char *p = arena_new_block(a, a->block_size);
	if (!p)
		return NULL;
	a->ptr = p + n;
	a->left = a->block_size - n;
	return p;
}
