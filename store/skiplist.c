/* skiplist.c - lock-free-reader skiplist over internal keys, with a sequential-insert fast path. */
#include "skiplist.h"

#include "dbformat.h"
#include "lsm.h"

int skiplist_init(struct skiplist *sl, struct arena *arena)
{
	sl->arena = arena;
	size_t sz = sizeof(struct sl_node) + SKIPLIST_MAX_HEIGHT * sizeof(struct sl_node *);
	sl->head = arena_alloc(arena, sz);
	if (!sl->head)
		return LSM_NOMEM;
	sl->head->klen = sl->head->vlen = 0;
	sl->head->height = SKIPLIST_MAX_HEIGHT;
	for (int i = 0; i < SKIPLIST_MAX_HEIGHT; i++) {
		atomic_init(&sl->head->next[i], NULL);
		sl->splice[i] = sl->head;
	}
	atomic_init(&sl->max_height, 1);
	sl->rnd = 0x2545F4914F6CDD1DULL ^ (uintptr_t)sl;
	sl->last = NULL;
	return LSM_OK;
}

/* Height with probability 1/4 per extra level (LevelDB's choice: fewer pointers, same O(log n)). */
static uint32_t random_height(struct skiplist *sl)
{
	uint64_t x = sl->rnd;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	sl->rnd = x;
	uint32_t h = 1;
	while (h < SKIPLIST_MAX_HEIGHT && (x & 3) == 0) {
		h++;
		x >>= 2;
	}
	return h;
}

struct sl_node *skiplist_new_node(struct skiplist *sl, uint32_t klen, uint32_t vlen)
{
	uint32_t h = random_height(sl);
	struct sl_node *n = arena_alloc(sl->arena, sizeof *n + h * sizeof(n->next[0]) + klen + vlen);
	if (!n)
		return NULL;
	n->klen = klen;
	n->vlen = vlen;
	n->height = h;
	n->pad = 0;
	return n;
}

static inline int node_less(const struct sl_node *n, struct slice key)
{
	/* NULL is +infinity. */
	return n && ikey_cmp(sl_node_ikey(n), key) < 0;
}

/* Fill prev[0..max) with the last node < key at each level. */
static void find_prevs(const struct skiplist *sl, struct slice key, struct sl_node **prev, int max)
{
	struct sl_node *x = sl->head;
	for (int level = max - 1; level >= 0; level--) {
		struct sl_node *next = atomic_load_explicit(&x->next[level], memory_order_acquire);
		while (node_less(next, key)) {
			x = next;
			next = atomic_load_explicit(&x->next[level], memory_order_acquire);
		}
		prev[level] = x;
	}
}

void skiplist_insert(struct skiplist *sl, struct sl_node *node)
{
	struct slice key = sl_node_ikey(node);
	int max = atomic_load_explicit(&sl->max_height, memory_order_relaxed);
	/* Fast path: the key goes right after the last inserted node. Then the splice is exact at every
	 * level: at levels the last node reached it is the predecessor, and above them the old
	 * predecessor's successor lies after last->next[0], hence after key. Two comparisons instead of
	 * a descent. */
	struct sl_node *last = sl->last;
	int hinted = 0;
	if (last && ikey_cmp(sl_node_ikey(last), key) < 0) {
		struct sl_node *succ = atomic_load_explicit(&last->next[0], memory_order_relaxed);
		hinted = !succ || ikey_cmp(key, sl_node_ikey(succ)) < 0;
	}
	if (!hinted)
		find_prevs(sl, key, sl->splice, max);

	int h = (int)node->height;
	if (h > max) {
		for (int i = max; i < h; i++)
			sl->splice[i] = sl->head;
		/* Readers that see the new height before the node find head->next[i] == NULL at the new
		 * levels and simply drop down: harmless, so a relaxed store suffices. */
		atomic_store_explicit(&sl->max_height, h, memory_order_relaxed);
	}
	for (int i = 0; i < h; i++) {
		struct sl_node *p = sl->splice[i];
		atomic_store_explicit(&node->next[i],
				      atomic_load_explicit(&p->next[i], memory_order_relaxed),
				      memory_order_relaxed);
		atomic_store_explicit(&p->next[i], node, memory_order_release);
		sl->splice[i] = node;
	}
	sl->last = node;
}

struct sl_node *skiplist_seek(const struct skiplist *sl, struct slice target)
{
	struct sl_node *x = sl->head;
	int level = atomic_load_explicit(&sl->max_height, memory_order_relaxed) - 1;
	struct sl_node *bound = NULL; /* a node known to be >= target: skip comparing it again */
	for (;;) {
		struct sl_node *next = atomic_load_explicit(&x->next[level], memory_order_acquire);
		if (next && next != bound && ikey_cmp(sl_node_ikey(next), target) < 0) {
			x = next;
		} else {
			if (level == 0)
				return next;
			bound = next;
			level--;
		}
	}
}
