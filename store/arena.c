/* arena.c - bump allocator backing the memtable's skiplist nodes. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "arena.h"

/* 1 MiB blocks by default: big enough that block headers and malloc calls vanish in the cost of a 64 MiB
 * memtable, small enough that a tiny memtable (tests, read-only replays) does not waste much. An
 * allocation of more than a quarter block gets its own block so a big value does not waste the
 * rest of the current one. */
#define ARENA_BLOCK (1u << 20)
/* A block of exactly this size (header included) is allocated aligned to it and offered to the kernel
 * as a transparent huge page. A memtable lookup or insert walks ~20 nodes spread over the whole
 * memtable: with 4 KiB pages nearly every step was a TLB miss as well as a cache miss (perf: 86 % of
 * skiplist_insert's time on one load of a node's height, 4 KiB values). 2 MiB pages cut the walk's
 * page-table misses. */
#define ARENA_HUGE (2u << 20)

struct arena_block {
	struct arena_block *next;
	/* Payload follows, 16-byte aligned by the header's size. */
	uint64_t size; /* bytes, header included: ARENA_HUGE marks an aligned huge block */
};

/* Huge blocks freed with a memtable are kept for the next one, up to one 64 MiB write buffer's worth.
 * A fresh huge page is zeroed by the kernel on first touch: without reuse that was 27 % of the writer
 * thread's CPU in a 4 KiB-value fill (perf: clear_page_erms under arena_new_block). The pool never
 * raises the peak (its blocks were counted in the memtable that freed them) but keeps up to 64 MiB
 * after writes stop. Process-wide, under a mutex: taken once per 2 MiB. */
#define ARENA_POOL_MAX 32
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct arena_block *pool; /* guarded by pool_mu */
static int pool_n;               /* guarded by pool_mu */

static struct arena_block *pool_get(void)
{
	pthread_mutex_lock(&pool_mu);
	struct arena_block *b = pool;
	if (b) {
		pool = b->next;
		pool_n--;
	}
	pthread_mutex_unlock(&pool_mu);
	return b;
}

/* Keep b if the pool has room: 1, else 0 (the caller frees it). */
static int pool_put(struct arena_block *b)
{
	int kept = 0;
	pthread_mutex_lock(&pool_mu);
	if (pool_n < ARENA_POOL_MAX) {
		b->next = pool;
		pool = b;
		pool_n++;
		kept = 1;
	}
	pthread_mutex_unlock(&pool_mu);
	return kept;
}

void arena_init(struct arena *a, size_t block_size)
{
	a->ptr = NULL;
	a->left = 0;
	a->blocks = NULL;
	a->block_size = block_size ? block_size : ARENA_BLOCK;
	if (a->block_size >= ARENA_HUGE) /* whole huge pages: the header takes the block's first bytes */
		a->block_size = ARENA_HUGE - sizeof(struct arena_block);
	atomic_init(&a->usage, 0);
}

void arena_free(struct arena *a)
{
	struct arena_block *b = a->blocks;
	while (b) {
		struct arena_block *n = b->next;
		if (b->size != ARENA_HUGE || !pool_put(b))
			free(b);
		b = n;
	}
	arena_init(a, a->block_size);
}

static char *arena_new_block(struct arena *a, size_t n)
{
	struct arena_block *b;
	if (sizeof *b + n == ARENA_HUGE) {
		if (!(b = pool_get())) {
			if (!(b = aligned_alloc(ARENA_HUGE, ARENA_HUGE)))
				return NULL;
			(void)madvise(b, ARENA_HUGE, MADV_HUGEPAGE); /* a hint: without it, 4 KiB pages */
		}
	} else if (!(b = malloc(sizeof *b + n))) {
		return NULL;
	}
	b->size = sizeof *b + n;
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
