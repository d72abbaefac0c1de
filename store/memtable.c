/* memtable.c - arena skiplist of point entries plus a locked fragment map of range tombstones. */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "dbformat.h"
#include "iter.h"
#include "lsm.h"
#include "memtable.h"

struct memtable *memtable_new(uint64_t log_number, size_t budget)
{
	struct memtable *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	/* A sixteenth of the budget per block, between 4 KiB and 1 MiB: the switch to a new memtable
	 * happens within ~6 % of the configured size. From 32 MiB up, 2 MiB blocks backed by huge pages
	 * (arena.c says why). */
	size_t bs = budget / 16;
	bs = bs < 4096 ? 4096 : bs > (1u << 20) ? (1u << 20) : bs;
	if (budget >= (32u << 20))
		bs = 2u << 20;
	arena_init(&m->arena, bs);
	if (skiplist_init(&m->list, &m->arena) || pthread_rwlock_init(&m->rd_lock, NULL)) {
		arena_free(&m->arena);
		free(m);
		return NULL;
	}
	atomic_init(&m->refs, 1);
	m->log_number = log_number;
	return m;
}

void memtable_ref(struct memtable *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void memtable_unref(struct memtable *m)
{
	if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (m->blob_number && m->blob_release)
		m->blob_release(m->blob_release_arg, m->blob_number);
	arena_free(&m->arena);
	rd_map_free(m->rd);
	free(m->rd_lo.data);
	free(m->rd_hi.data);
	pthread_rwlock_destroy(&m->rd_lock);
	free(m);
}

static void note_seq(struct memtable *m, uint64_t seq)
{
	/* Single writer: plain load + store, no read-modify-write on shared state. */
	if (seq > atomic_load_explicit(&m->max_seq, memory_order_relaxed))
		atomic_store_explicit(&m->max_seq, seq, memory_order_relaxed);
	uint64_t lo = atomic_load_explicit(&m->min_seq, memory_order_relaxed);
	if (lo == 0 || seq < lo)
		atomic_store_explicit(&m->min_seq, seq, memory_order_relaxed);
}

int memtable_add(struct memtable *m, uint64_t seq, unsigned type, struct slice key, struct slice value)
{
	if (key.len > UINT32_MAX - IKEY_TRAILER || value.len > UINT32_MAX)
		return LSM_INVAL;
	struct sl_node *n = skiplist_new_node(&m->list, (uint32_t)(key.len + IKEY_TRAILER),
					      (uint32_t)value.len);
	if (!n)
		return LSM_NOMEM;
	char *p = sl_node_key(n);
	ikey_build(p, key, seq, type);
	if (value.len)
		memcpy(p + key.len + IKEY_TRAILER, value.data, value.len);
	skiplist_insert(&m->list, n);
	note_seq(m, seq);
	atomic_store_explicit(&m->entries, atomic_load_explicit(&m->entries, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	return LSM_OK;
}

static int span_set(struct buf_span *s, struct slice v)
{
	char *p = malloc(v.len ? v.len : 1);
	if (!p)
		return LSM_NOMEM;
	memcpy(p, v.data, v.len);
	free(s->data);
	s->data = p;
	s->len = v.len;
	return LSM_OK;
}

int memtable_add_range(struct memtable *m, uint64_t seq, struct slice begin, struct slice end)
{
	int rc = LSM_OK;
	pthread_rwlock_wrlock(&m->rd_lock);
	if (!m->rd && !(m->rd = rd_map_new()))
		rc = LSM_NOMEM;
	if (!rc)
		rc = rd_map_add(m->rd, begin, end, seq);
	if (!rc && slice_cmp(begin, end) < 0) {
		int first = atomic_load_explicit(&m->range_count, memory_order_relaxed) == 0 || !m->rd_lo.data;
		if (first || slice_cmp(begin, slice_make(m->rd_lo.data, m->rd_lo.len)) < 0)
			rc = span_set(&m->rd_lo, begin);
		if (!rc && (first || slice_cmp(end, slice_make(m->rd_hi.data, m->rd_hi.len)) > 0))
			rc = span_set(&m->rd_hi, end);
	}
	if (!rc) {
		note_seq(m, seq);
		atomic_store_explicit(&m->range_count,
				      atomic_load_explicit(&m->range_count, memory_order_relaxed) + 1,
				      memory_order_release);
	}
	pthread_rwlock_unlock(&m->rd_lock);
	return rc;
}

int memtable_get(struct memtable *m, struct slice key, uint64_t snap, struct mem_entry *e,
		 uint64_t *range_seq)
{
	if (atomic_load_explicit(&m->range_count, memory_order_acquire)) {
		pthread_rwlock_rdlock(&m->rd_lock);
		if (m->rd_lo.data && slice_cmp(key, slice_make(m->rd_lo.data, m->rd_lo.len)) >= 0 &&
		    slice_cmp(key, slice_make(m->rd_hi.data, m->rd_hi.len)) < 0) {
			uint64_t s = rd_map_covering(m->rd, key, snap);
			if (s > *range_seq)
				*range_seq = s;
		}
		pthread_rwlock_unlock(&m->rd_lock);
	}
	/* Seek to (key, snap, VT_SEEK): the first entry at or below the snapshot. */
	char stackbuf[256];
	char *ik = key.len + IKEY_TRAILER <= sizeof stackbuf ? stackbuf : malloc(key.len + IKEY_TRAILER);
	if (!ik)
		return LSM_NOMEM;
	ikey_build(ik, key, snap, VT_SEEK);
	struct sl_node *n = skiplist_seek(&m->list, slice_make(ik, key.len + IKEY_TRAILER));
	if (ik != stackbuf)
		free(ik);
	if (!n)
		return 0;
	struct slice nk = sl_node_ikey(n);
	struct slice uk = ikey_user(nk);
	if (uk.len != key.len || (key.len && memcmp(uk.data, key.data, key.len)))
		return 0;
	uint64_t t = ikey_trailer(nk);
	e->seq = t >> 8;
	e->type = (unsigned)(t & 0xff);
	e->value = sl_node_value(n);
	return 1;
}

int memtable_range_snapshot(struct memtable *m, struct slice lo, struct slice hi, struct rd_list *out)
{
	memset(out, 0, sizeof *out);
	if (!atomic_load_explicit(&m->range_count, memory_order_acquire))
		return LSM_OK;
	pthread_rwlock_rdlock(&m->rd_lock);
	int rc = rd_map_snapshot(m->rd, lo, hi, out);
	pthread_rwlock_unlock(&m->rd_lock);
	return rc;
}

size_t memtable_range_raw(struct memtable *m, const struct rd_tombstone **out)
{
	if (!m->rd) {
		*out = NULL;
		return 0;
	}
	*out = rd_map_raw(m->rd);
	return rd_map_count(m->rd);
}

/* ---------------------------------------------------------------- iterator */

struct mem_iter {
	struct iter base;
	struct memtable *m;
	struct sl_node *node;
};

static void mi_settle(struct mem_iter *mi)
{
	if (!mi->node) {
		mi->base.valid = 0;
		return;
	}
	mi->base.valid = 1;
	mi->base.key = sl_node_ikey(mi->node);
	mi->base.value = sl_node_value(mi->node);
}

static void mi_seek_first(struct iter *it)
{
	struct mem_iter *mi = (struct mem_iter *)it;
	mi->node = skiplist_first(&mi->m->list);
	mi_settle(mi);
}

static void mi_seek(struct iter *it, struct slice target)
{
	struct mem_iter *mi = (struct mem_iter *)it;
	mi->node = skiplist_seek(&mi->m->list, target);
	mi_settle(mi);
}

static void mi_next(struct iter *it)
{
	struct mem_iter *mi = (struct mem_iter *)it;
	mi->node = skiplist_next(mi->node);
	mi_settle(mi);
}

static void mi_destroy(struct iter *it)
{
	struct mem_iter *mi = (struct mem_iter *)it;
	memtable_unref(mi->m);
	free(mi);
}

static const struct iter_ops mem_iter_ops = {mi_seek_first, mi_seek, mi_next, mi_destroy};

struct iter *memtable_iter_new(struct memtable *m)
{
	struct mem_iter *mi = calloc(1, sizeof *mi);
	if (!mi)
		return NULL;
	mi->base.ops = &mem_iter_ops;
	mi->m = m;
	memtable_ref(m);
	return &mi->base;
}

int memtable_apply_batch(struct memtable *m, const char *payload, size_t len)
{
	struct batch_reader r;
	uint64_t seq;
	uint32_t count;
	struct batch_op op;
	int rc = batch_reader_init(&r, payload, len, &seq, &count);
	if (rc)
		return rc;
	while ((rc = batch_reader_next(&r, &op)) == 1) {
		if (op.type == VT_RANGE_DELETE)
			rc = memtable_add_range(m, seq, op.key, op.value);
		else
			rc = memtable_add(m, seq, op.type, op.key, op.value);
		if (rc)
			return rc;
		seq++;
	}
	return rc;
}
