/* iter.c - the empty iterator and the heap-based merging iterator. */
#include <stdlib.h>

#include "dbformat.h"
#include "iter.h"
#include "lsm.h"

/* ---------------------------------------------------------------- empty */

static void empty_noop(struct iter *it)
{
	it->valid = 0;
}
static void empty_seek(struct iter *it, struct slice t)
{
	(void)t;
	it->valid = 0;
}
static void empty_destroy(struct iter *it)
{
	free(it);
}
static const struct iter_ops empty_ops = {empty_noop, empty_seek, empty_noop, empty_destroy};

struct iter *iter_empty_new(int status)
{
	struct iter *it = calloc(1, sizeof *it);
	if (!it)
		return NULL;
	it->ops = &empty_ops;
	it->status = status;
	return it;
}

/* ---------------------------------------------------------------- merge */

/* A binary min-heap of the valid children, ordered by internal key (ties by child index, so the merge
 * is deterministic). A child that fails is dropped from the heap and its status becomes ours: the
 * merge must not silently yield a subset. */
struct merge_iter {
	struct iter base;
	int n;
	int heap_n;
	struct iter **child;
	int *heap; /* child indexes */
};

static int child_less(const struct merge_iter *m, int a, int b)
{
	int c = ikey_cmp(m->child[a]->key, m->child[b]->key);
	return c < 0 || (c == 0 && a < b);
}

static void sift_down(struct merge_iter *m, int i)
{
	int n = m->heap_n;
	int x = m->heap[i];
	for (;;) {
		int l = 2 * i + 1;
		if (l >= n)
			break;
		int r = l + 1;
		int s = (r < n && child_less(m, m->heap[r], m->heap[l])) ? r : l;
		if (!child_less(m, m->heap[s], x))
			break;
		m->heap[i] = m->heap[s];
		i = s;
	}
	m->heap[i] = x;
}

static void merge_settle(struct merge_iter *m)
{
	if (m->heap_n == 0 || m->base.status) {
		m->base.valid = 0;
		return;
	}
	struct iter *top = m->child[m->heap[0]];
	m->base.valid = 1;
	m->base.key = top->key;
	m->base.value = top->value;
}

static void merge_rebuild(struct merge_iter *m)
{
	m->heap_n = 0;
	for (int i = 0; i < m->n; i++) {
		struct iter *c = m->child[i];
		if (c->valid)
			m->heap[m->heap_n++] = i;
		else if (c->status && !m->base.status)
			m->base.status = c->status;
	}
	for (int i = m->heap_n / 2 - 1; i >= 0; i--)
		sift_down(m, i);
	merge_settle(m);
}

static void merge_seek_first(struct iter *it)
{
	struct merge_iter *m = (struct merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		iter_seek_first(m->child[i]);
	merge_rebuild(m);
}

static void merge_seek(struct iter *it, struct slice target)
{
	struct merge_iter *m = (struct merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		iter_seek(m->child[i], target);
	merge_rebuild(m);
}

static void merge_next(struct iter *it)
{
	struct merge_iter *m = (struct merge_iter *)it;
	int top = m->heap[0];
	struct iter *c = m->child[top];
	iter_next(c);
	if (!c->valid) {
		if (c->status && !m->base.status)
			m->base.status = c->status;
		m->heap[0] = m->heap[--m->heap_n];
	}
	if (m->heap_n > 0)
		sift_down(m, 0);
	merge_settle(m);
}

static void merge_destroy(struct iter *it)
{
	struct merge_iter *m = (struct merge_iter *)it;
	for (int i = 0; i < m->n; i++)
		iter_destroy(m->child[i]);
	free(m->child);
	free(m->heap);
	free(m);
}

static const struct iter_ops merge_ops = {merge_seek_first, merge_seek, merge_next, merge_destroy};

struct iter *iter_merge_new(struct iter **children, int n)
{
	struct merge_iter *m = calloc(1, sizeof *m);
	struct iter **ch = malloc((size_t)(n ? n : 1) * sizeof *ch);
	int *heap = malloc((size_t)(n ? n : 1) * sizeof *heap);
	if (!m || !ch || !heap) {
		free(m);
		free(ch);
		free(heap);
		for (int i = 0; i < n; i++)
			iter_destroy(children[i]);
		return NULL;
	}
	for (int i = 0; i < n; i++)
		ch[i] = children[i];
	m->base.ops = &merge_ops;
	m->n = n;
	m->child = ch;
	m->heap = heap;
	return &m->base;
}
