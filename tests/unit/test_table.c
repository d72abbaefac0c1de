/* test_table.c - table files: build, open, point lookups, iterators, props, and damaged files. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "bloom.h"
#include "cache.h"
#include "dbformat.h"
#include "env.h"
#include "env_fault.h"
#include "lsm.h"
#include "table.h"
#include "testutil.h"

/* Every passing ck_assert reports its location to the runner through a pipe; in hot loops that cost
 * dominates, so they use these, which cost nothing until they fail. */
#define FAST_TRUE(c)                                                                                   \
	do {                                                                                           \
		if (!(c))                                                                              \
			ck_abort_msg("Assertion '%s' failed", #c);                                     \
	} while (0)
#define FAST_EQ(a, b)                                                                                  \
	do {                                                                                           \
		unsigned long long fa_ = (unsigned long long)(a), fb_ = (unsigned long long)(b);       \
		if (fa_ != fb_)                                                                        \
			ck_abort_msg("Assertion '%s == %s' failed: %llu != %llu", #a, #b, fa_, fb_);   \
	} while (0)

/* ---------------------------------------------------------------- the model */

struct ent {
	char *ik;  /* internal key */
	size_t iklen;
	char *v;
	size_t vlen;
};

struct tomb {
	char b[32], e[32];
	size_t bl, el;
	uint64_t seq;
};

struct model {
	struct ent *e;
	size_t n, cap;
	struct tomb t[64];
	size_t nt;
	uint32_t nkeys; /* user keys are numbers 3*i (i < nkeys), so 3*i+1 is always absent */
};

static size_t ukey(char *out, uint32_t num, int long_key)
{
	size_t n = (size_t)snprintf(out, 32, "key%06u", num);
	if (long_key) { /* > 256 bytes: the lookup path's stack buffer is too small for it */
		memset(out + n, 'x', 290);
		n += 290;
	}
	return n;
}

static int is_long(uint32_t i)
{
	return i % 97 == 5;
}

static int cmp_ent(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	return ikey_cmp(slice_make(x->ik, x->iklen), slice_make(y->ik, y->iklen));
}

static void model_add(struct model *m, const char *uk, size_t ul, uint64_t seq, unsigned type, struct rng *r)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 1024;
		m->e = realloc(m->e, m->cap * sizeof *m->e);
		ck_assert_ptr_nonnull(m->e);
	}
	struct ent *e = &m->e[m->n++];
	e->iklen = ul + IKEY_TRAILER;
	e->ik = malloc(e->iklen);
	ck_assert_ptr_nonnull(e->ik);
	ikey_build(e->ik, slice_make(uk, ul), seq, type);
	e->vlen = 0;
	e->v = NULL;
	if (type == VT_VALUE) {
		char v[200];
		size_t vl = (size_t)snprintf(v, 64, "v-%.*s-%llu-", (int)(ul < 12 ? ul : 12), uk, (unsigned long long)seq);
		size_t pad = (size_t)rng_below(r, 100);
		for (size_t i = 0; i < pad; i++)
			v[vl++] = (char)('A' + (seq + i) % 26);
		e->v = malloc(vl);
		ck_assert_ptr_nonnull(e->v);
		memcpy(e->v, v, vl);
		e->vlen = vl;
	}
}

/* nkeys user keys with 1-3 versions each (one "hot" key with 60, enough to span several blocks), 20%
 * of versions deletes; ntomb range tombstones over random key ranges. Seqnos are unique. */
static void model_make(struct model *m, uint32_t nkeys, size_t ntomb, struct rng *r)
{
	memset(m, 0, sizeof *m);
	m->nkeys = nkeys;
	uint64_t pool = 4 * (uint64_t)nkeys + 200, *seqs = malloc(pool * sizeof *seqs);
	ck_assert_ptr_nonnull(seqs);
	for (uint64_t i = 0; i < pool; i++)
		seqs[i] = i + 1;
	for (uint64_t i = pool; i > 1; i--) {
		uint64_t j = rng_below(r, i), t = seqs[i - 1];
		seqs[i - 1] = seqs[j];
		seqs[j] = t;
	}
	uint64_t next = 0;
	char uk[400];
	for (uint32_t i = 0; i < nkeys; i++) {
		size_t ul = ukey(uk, 3 * i, is_long(i));
		int versions = i == nkeys / 2 ? 60 : 1 + (int)rng_below(r, 3);
		for (int v = 0; v < versions; v++) {
			ck_assert_uint_lt(next, pool);
			model_add(m, uk, ul, seqs[next++], rng_below(r, 5) == 0 ? VT_DELETE : VT_VALUE, r);
		}
	}
	qsort(m->e, m->n, sizeof *m->e, cmp_ent);
	for (size_t i = 0; i < ntomb; i++) {
		struct tomb *t = &m->t[m->nt++];
		uint32_t a = (uint32_t)rng_below(r, 3 * nkeys + 10), len = 1 + (uint32_t)rng_below(r, 3 * nkeys / 8 + 2);
		t->bl = ukey(t->b, a, 0);
		t->el = ukey(t->e, a + len, 0);
		ck_assert_uint_lt(next, pool);
		t->seq = seqs[next++];
	}
	free(seqs);
}

static void model_free(struct model *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->e[i].ik);
		free(m->e[i].v);
	}
	free(m->e);
}

static size_t model_lower_bound(const struct model *m, struct slice target);

/* Newest version of uk with seq <= snap: its index, or -1. */
static long model_get(const struct model *m, struct slice uk, uint64_t snap)
{
	char t[400];
	FAST_TRUE(uk.len + IKEY_TRAILER <= sizeof t);
	ikey_build(t, uk, snap, VT_SEEK);
	size_t i = model_lower_bound(m, slice_make(t, uk.len + IKEY_TRAILER));
	if (i < m->n && slice_cmp(ikey_user(slice_make(m->e[i].ik, m->e[i].iklen)), uk) == 0)
		return (long)i;
	return -1;
}

static uint64_t model_range(const struct model *m, struct slice uk, uint64_t snap)
{
	uint64_t best = 0;
	for (size_t i = 0; i < m->nt; i++) {
		const struct tomb *t = &m->t[i];
		if (t->seq <= snap && t->seq > best && slice_cmp(slice_make(t->b, t->bl), uk) <= 0 &&
		    slice_cmp(uk, slice_make(t->e, t->el)) < 0)
			best = t->seq;
	}
	return best;
}

/* First entry >= target: its index, or n. */
static size_t model_lower_bound(const struct model *m, struct slice target)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ikey_cmp(slice_make(m->e[mid].ik, m->e[mid].iklen), target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---------------------------------------------------------------- building and checking */

static lsm_env *env;
#define TPATH "/db/000012.sst"

static void setup(void)
{
	env = lsm_env_mem_new();
	ck_assert_ptr_nonnull(env);
	ck_assert_int_eq(env->mkdir(env, "/db", 0700), 0);
}

static void teardown(void)
{
	env->destroy(env);
}

/* Build the model's table at path; tombstones are added before, between and after the points. */
static void build_table(lsm_env *e, const char *path, const struct model *m, const struct table_opts *o,
			struct table_props *props, uint64_t *size)
{
	struct table_builder *tb;
	ck_assert_int_eq(table_builder_open(e, path, o, &tb), 0);
	size_t t = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (i % 500 == 0 && t < m->nt) {
			ck_assert_int_eq(table_builder_add_range(tb, slice_make(m->t[t].b, m->t[t].bl),
								 slice_make(m->t[t].e, m->t[t].el), m->t[t].seq), 0);
			t++;
		}
		ck_assert_int_eq(table_builder_add(tb, slice_make(m->e[i].ik, m->e[i].iklen),
						   slice_make(m->e[i].v, m->e[i].vlen)), 0);
	}
	for (; t < m->nt; t++)
		ck_assert_int_eq(table_builder_add_range(tb, slice_make(m->t[t].b, m->t[t].bl),
							 slice_make(m->t[t].e, m->t[t].el), m->t[t].seq), 0);
	ck_assert_uint_eq(table_builder_entries(tb), m->n + m->nt);
	ck_assert_uint_gt(table_builder_size(tb), 0);
	ck_assert_int_eq(table_builder_finish(tb, props, size), 0);
	uint64_t fs;
	ck_assert_int_eq(e->file_size(e, path, &fs), 0);
	ck_assert_uint_eq(fs, *size);
}

static int cmp_ikey_slices(struct slice a, const struct buf *b)
{
	return ikey_cmp(a, slice_make(b->data, b->len));
}

/* Props computed from the model. */
static void check_props(const struct table_props *p, const struct model *m)
{
	uint64_t deletes = 0, kb = 0, vb = 0, lo = UINT64_MAX, hi = 0;
	for (size_t i = 0; i < m->n; i++) {
		struct slice ik = slice_make(m->e[i].ik, m->e[i].iklen);
		deletes += ikey_type(ik) == VT_DELETE;
		kb += ik.len;
		vb += m->e[i].vlen;
		lo = ikey_seq(ik) < lo ? ikey_seq(ik) : lo;
		hi = ikey_seq(ik) > hi ? ikey_seq(ik) : hi;
	}
	for (size_t i = 0; i < m->nt; i++) {
		lo = m->t[i].seq < lo ? m->t[i].seq : lo;
		hi = m->t[i].seq > hi ? m->t[i].seq : hi;
	}
	ck_assert_uint_eq(p->entries, m->n);
	ck_assert_uint_eq(p->deletes, deletes);
	ck_assert_uint_eq(p->range_dels, m->nt);
	ck_assert_uint_eq(p->min_seq, lo);
	ck_assert_uint_eq(p->max_seq, hi);
	ck_assert_uint_eq(p->raw_key_bytes, kb);
	ck_assert_uint_eq(p->raw_value_bytes, vb);
	/* bounds: the smallest of the first point and the tombstone begins (begin, seq, RANGE); the largest
	 * of the last point and the tombstone ends as (end, SEQNO_MAX, RANGE) */
	char want_lo[64], want_hi[400];
	struct slice slo = m->n ? slice_make(m->e[0].ik, m->e[0].iklen) : slice_make(NULL, 0);
	struct slice shi = m->n ? slice_make(m->e[m->n - 1].ik, m->e[m->n - 1].iklen) : slice_make(NULL, 0);
	if (m->n)
		memcpy(want_hi, shi.data, shi.len);
	for (size_t i = 0; i < m->nt; i++) {
		char b[64], e[64];
		ikey_build(b, slice_make(m->t[i].b, m->t[i].bl), m->t[i].seq, VT_RANGE_DELETE);
		ikey_build(e, slice_make(m->t[i].e, m->t[i].el), SEQNO_MAX, VT_RANGE_DELETE);
		if (!slo.data || ikey_cmp(slice_make(b, m->t[i].bl + 8), slo) < 0) {
			memcpy(want_lo, b, m->t[i].bl + 8);
			slo = slice_make(want_lo, m->t[i].bl + 8);
		}
		if (!shi.data || ikey_cmp(slice_make(e, m->t[i].el + 8), shi) > 0) {
			memcpy(want_hi, e, m->t[i].el + 8);
			shi = slice_make(want_hi, m->t[i].el + 8);
		}
	}
	ck_assert_int_eq(cmp_ikey_slices(slo, &p->smallest), 0);
	ck_assert_uint_eq(p->smallest.len, slo.len);
	ck_assert_int_eq(cmp_ikey_slices(shi, &p->largest), 0);
	ck_assert_uint_eq(p->largest.len, shi.len);
}

static void props_equal(const struct table_props *a, const struct table_props *b)
{
	ck_assert_uint_eq(a->entries, b->entries);
	ck_assert_uint_eq(a->deletes, b->deletes);
	ck_assert_uint_eq(a->range_dels, b->range_dels);
	ck_assert_uint_eq(a->min_seq, b->min_seq);
	ck_assert_uint_eq(a->max_seq, b->max_seq);
	ck_assert_uint_eq(a->raw_key_bytes, b->raw_key_bytes);
	ck_assert_uint_eq(a->raw_value_bytes, b->raw_value_bytes);
	ck_assert_uint_eq(a->data_blocks, b->data_blocks);
	ck_assert_uint_eq(a->smallest.len, b->smallest.len);
	ck_assert_mem_eq(a->smallest.data, b->smallest.data, a->smallest.len);
	ck_assert_uint_eq(a->largest.len, b->largest.len);
	ck_assert_mem_eq(a->largest.data, b->largest.data, a->largest.len);
}

/* One lookup against the model. */
static void check_get(struct table *t, const struct model *m, struct slice uk, uint64_t snap, uint64_t *skips)
{
	uint64_t range_seq = 0;
	struct lsm_buf val = {0};
	struct table_get_result res = {0, 0, &val};
	int rc = table_get(t, uk, bloom_hash(uk), snap, &range_seq, &res, skips);
	long want = model_get(m, uk, snap);
	if (rc != (want >= 0))
		ck_abort_msg("get %.*s @%llu: rc %d, want %s (%s)", (int)(uk.len < 20 ? uk.len : 20), uk.data,
			     (unsigned long long)snap, rc, want >= 0 ? "found" : "absent", lsm_errmsg());
	if (want >= 0) {
		struct slice ik = slice_make(m->e[want].ik, m->e[want].iklen);
		FAST_EQ(res.seq, ikey_seq(ik));
		FAST_EQ(res.type, ikey_type(ik));
		if (res.type == VT_VALUE) {
			FAST_EQ(val.len, m->e[want].vlen);
			FAST_TRUE(memcmp(val.data, m->e[want].v, val.len) == 0);
		}
	}
	FAST_EQ(range_seq, model_range(m, uk, snap));
	/* range_seq is only ever raised */
	uint64_t high = SEQNO_MAX;
	struct table_get_result res2 = {0, 0, NULL};
	FAST_EQ(table_get(t, uk, bloom_hash(uk), snap, &high, &res2, NULL), rc);
	FAST_EQ(high, SEQNO_MAX);
	lsm_buf_free(&val);
}

static void check_gets(struct table *t, const struct model *m, struct rng *r)
{
	char uk[400];
	uint64_t skips = 0;
	for (uint32_t i = 0; i < m->nkeys; i++) {
		size_t ul = ukey(uk, 3 * i, is_long(i));
		struct slice k = slice_make(uk, ul);
		check_get(t, m, k, SEQNO_MAX, &skips);
		check_get(t, m, k, rng_below(r, 4 * (uint64_t)m->nkeys + 200), &skips);
		/* at and just below each version's seqno */
		if (i % 5 == 0 || i == m->nkeys / 2)
			for (long j = model_get(m, k, SEQNO_MAX); j >= 0 && (size_t)j < m->n; j++) {
				struct slice ik = slice_make(m->e[j].ik, m->e[j].iklen);
				if (slice_cmp(ikey_user(ik), k))
					break;
				check_get(t, m, k, ikey_seq(ik), &skips);
				check_get(t, m, k, ikey_seq(ik) - 1, &skips);
			}
		FAST_EQ(skips, 0); /* a filter never rules out a present key */
		/* absent keys: between two present ones */
		ul = ukey(uk, 3 * i + 1, 0);
		check_get(t, m, slice_make(uk, ul), SEQNO_MAX, NULL);
	}
}

static void check_iter(struct table *t, const struct model *m, struct rng *r, int fill)
{
	struct iter *it = table_iter_new(t, fill);
	FAST_TRUE(it != NULL);
	size_t i = 0;
	for (iter_seek_first(it); it->valid; iter_next(it), i++) {
		FAST_TRUE(i < m->n);
		FAST_EQ(it->key.len, m->e[i].iklen);
		FAST_TRUE(memcmp(it->key.data, m->e[i].ik, it->key.len) == 0);
		FAST_EQ(it->value.len, m->e[i].vlen);
		if (it->value.len)
			FAST_TRUE(memcmp(it->value.data, m->e[i].v, it->value.len) == 0);
	}
	FAST_EQ(it->status, 0);
	FAST_EQ(i, m->n);
	/* seeks to (key, snap) for present and absent keys, then a few steps */
	char tk[400];
	for (int s = 0; s < 400; s++) {
		uint32_t num = (uint32_t)rng_below(r, 3 * m->nkeys + 3);
		size_t ul = ukey(tk, num, num % 3 == 0 && is_long(num / 3));
		uint64_t snap = rng_below(r, 3) == 0 ? SEQNO_MAX : rng_below(r, 4 * (uint64_t)m->nkeys + 200);
		put_u64le(tk + ul, pack_trailer(snap, VT_SEEK));
		struct slice target = slice_make(tk, ul + 8);
		size_t want = model_lower_bound(m, target);
		iter_seek(it, target);
		for (int step = 0; step < 3; step++, want++) {
			if (want >= m->n) {
				FAST_TRUE(!it->valid);
				FAST_EQ(it->status, 0);
				break;
			}
			FAST_TRUE(it->valid);
			FAST_EQ(it->key.len, m->e[want].iklen);
			FAST_TRUE(memcmp(it->key.data, m->e[want].ik, it->key.len) == 0);
			iter_next(it);
		}
	}
	iter_destroy(it);
}

/* ---------------------------------------------------------------- round trips */

struct footer {
	uint64_t off[4];
	uint32_t size[4]; /* filter, range-del, props, index */
};
static char *read_file(const char *path, size_t *n);
static void parse_footer(const char *d, size_t n, struct footer *f);
static size_t data_handles(const char *d, const struct footer *f, struct block_handle *h, size_t max);

/* The data blocks tile the file from offset 0 up to data_end, one index entry each. */
static void check_layout(const struct table *t, const struct table_props *props)
{
	size_t n;
	char *d = read_file(TPATH, &n);
	struct footer f;
	parse_footer(d, n, &f);
	size_t cap = (size_t)props->data_blocks + 1;
	struct block_handle *h = malloc(cap * sizeof *h);
	ck_assert_ptr_nonnull(h);
	size_t nb = data_handles(d, &f, h, cap);
	ck_assert_uint_eq(nb, props->data_blocks);
	uint64_t at = 0;
	for (size_t i = 0; i < nb; i++) {
		FAST_EQ(h[i].offset, at);
		at += h[i].size + BLOCK_TRAILER_SIZE;
	}
	ck_assert_uint_eq(at, t->data_end);
	ck_assert_uint_eq(t->data_end, f.size[0] ? f.off[0] : f.off[1]);
	free(h);
	free(d);
}

static const struct {
	struct table_opts o;
	int cache;
} CONFIGS[] = {
	{{4096, 16, 10}, 1},
	{{256, 1, 0}, 0}, /* tiny blocks, every key a restart, no bloom filter */
	{{1024, 4, 10}, 0},
};

START_TEST(test_round_trip)
{
	char name[64];
	snprintf(name, sizeof name, "table_round_trip_%d", _i);
	struct rng r = {test_seed(name)};
	struct model m;
	model_make(&m, 2000 * (uint32_t)test_scale(), 20, &r);
	struct table_props props;
	uint64_t size;
	build_table(env, TPATH, &m, &CONFIGS[_i].o, &props, &size);
	check_props(&props, &m);
	ck_assert_uint_gt(props.data_blocks, _i == 1 ? 200 : 5);

	struct cache *c = CONFIGS[_i].cache ? cache_new(1 << 20) : NULL;
	struct table *t;
	ck_assert_int_eq(table_open(env, TPATH, 12, _i == 2 ? size : 0, c, &t), 0);
	ck_assert_uint_eq(t->size, size);
	ck_assert_uint_eq(t->number, 12);
	props_equal(&t->props, &props);
	ck_assert_uint_eq(t->tombstones.n > 0, 1);
	if (CONFIGS[_i].o.bloom_bits)
		ck_assert_uint_gt(t->filter.len, 0);
	else
		ck_assert_uint_eq(t->filter.len, 0);
	check_layout(t, &props);

	check_gets(t, &m, &r);
	check_iter(t, &m, &r, 1);
	check_iter(t, &m, &r, 0);
	if (c) { /* the second pass was served by the cache */
		uint64_t hits, misses, entries;
		cache_counts(c, &hits, &misses, &entries);
		ck_assert_uint_gt(hits, 0);
		ck_assert_uint_gt(entries, 0);
		ck_assert_uint_le(cache_usage(c), 1 << 20);
	}
	table_close(t);
	cache_free(c);
	table_props_free(&props);
	model_free(&m);
}
END_TEST

/* The filter answers for absent keys (counted in bloom_skips) and never for present ones; without a
 * filter nothing is skipped. Tombstones are consulted even when the filter rules the key out. */
START_TEST(test_bloom_skips)
{
	struct rng r = {test_seed("table_bloom_skips")};
	struct model m;
	model_make(&m, 1000, 10, &r);
	for (int bits = 0; bits <= 10; bits += 10) {
		struct table_opts o = {4096, 16, bits};
		struct table_props props;
		uint64_t size;
		build_table(env, TPATH, &m, &o, &props, &size);
		struct table *t;
		ck_assert_int_eq(table_open(env, TPATH, 12, 0, NULL, &t), 0);
		uint64_t skips = 0;
		char uk[400];
		for (uint32_t i = 0; i < m.nkeys; i++) {
			size_t ul = ukey(uk, 3 * i + 1, 0);
			check_get(t, &m, slice_make(uk, ul), SEQNO_MAX, &skips);
		}
		if (bits)
			ck_assert_uint_ge(skips, m.nkeys * 95 / 100);
		else
			ck_assert_uint_eq(skips, 0);
		table_close(t);
		table_props_free(&props);
	}
	model_free(&m);
}
END_TEST

/* Binary user keys of every length from 0 (bytes 0x00 and 0xff included): index separators must
 * still route every lookup and seek to the right block. */
START_TEST(test_binary_keys)
{
	struct rng r = {test_seed("table_binary_keys")};
	struct model m;
	memset(&m, 0, sizeof m);
	const unsigned char alphabet[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 'a'};
	for (int i = 0; i < 3000; i++) {
		char uk[24];
		size_t ul = (size_t)rng_below(&r, 12);
		for (size_t j = 0; j < ul; j++)
			uk[j] = (char)alphabet[rng_below(&r, sizeof alphabet)];
		model_add(&m, uk, ul, 1 + (uint64_t)i, rng_below(&r, 6) ? VT_VALUE : VT_DELETE, &r);
	}
	qsort(m.e, m.n, sizeof *m.e, cmp_ent);
	struct table_opts o = {256, 2, 10};
	struct table_props props;
	uint64_t size;
	build_table(env, TPATH, &m, &o, &props, &size);
	check_props(&props, &m);
	struct table *t;
	ck_assert_int_eq(table_open(env, TPATH, 12, 0, NULL, &t), 0);
	check_layout(t, &props);
	uint64_t skips = 0;
	for (size_t i = 0; i < m.n; i++) {
		struct slice ik = slice_make(m.e[i].ik, m.e[i].iklen);
		check_get(t, &m, ikey_user(ik), SEQNO_MAX, &skips);
		check_get(t, &m, ikey_user(ik), ikey_seq(ik), &skips);
		check_get(t, &m, ikey_user(ik), ikey_seq(ik) - 1, &skips);
		/* the user key followed by 0x00 and by 0xff: absent unless generated */
		char k2[32];
		memcpy(k2, ik.data, ik.len - IKEY_TRAILER);
		for (int c = 0; c < 2; c++) {
			k2[ik.len - IKEY_TRAILER] = c ? (char)0xff : 0;
			check_get(t, &m, slice_make(k2, ik.len - IKEY_TRAILER + 1), SEQNO_MAX, NULL);
		}
		/* a seek to each entry's exact internal key lands on it */
		if (i % 7 == 0) {
			struct iter *it = table_iter_new(t, 0);
			iter_seek(it, ik);
			FAST_TRUE(it->valid);
			FAST_EQ(it->key.len, ik.len);
			FAST_TRUE(memcmp(it->key.data, ik.data, ik.len) == 0);
			iter_destroy(it);
		}
	}
	ck_assert_uint_eq(skips, 0);
	check_iter(t, &m, &r, 0);
	table_close(t);
	table_props_free(&props);
	model_free(&m);
}
END_TEST

/* A tombstone with keys longer than the builder's stack buffers. */
START_TEST(test_long_tombstone_keys)
{
	struct table_opts o = {4096, 16, 10};
	struct table_builder *tb;
	ck_assert_int_eq(table_builder_open(env, TPATH, &o, &tb), 0);
	char b[700], e[700];
	memset(b, 'b', sizeof b);
	memset(e, 'e', sizeof e);
	ck_assert_int_eq(table_builder_add_range(tb, slice_make(b, sizeof b), slice_make(e, sizeof e), 42), 0);
	struct table_props props;
	uint64_t size;
	ck_assert_int_eq(table_builder_finish(tb, &props, &size), 0);
	ck_assert_uint_eq(props.smallest.len, sizeof b + 8);
	ck_assert_mem_eq(props.smallest.data, b, sizeof b);
	ck_assert_uint_eq(ikey_seq(slice_make(props.smallest.data, props.smallest.len)), 42);
	ck_assert_uint_eq(props.largest.len, sizeof e + 8);
	ck_assert_mem_eq(props.largest.data, e, sizeof e);
	ck_assert_uint_eq(ikey_seq(slice_make(props.largest.data, props.largest.len)), SEQNO_MAX);
	struct table *t;
	ck_assert_int_eq(table_open(env, TPATH, 12, 0, NULL, &t), 0);
	uint64_t rs = 0;
	struct table_get_result res = {0, 0, NULL};
	ck_assert_int_eq(table_get(t, slice_make("c", 1), bloom_hash(slice_make("c", 1)), 50, &rs, &res, NULL), 0);
	ck_assert_uint_eq(rs, 42);
	rs = 0;
	ck_assert_int_eq(table_get(t, slice_make("f", 1), bloom_hash(slice_make("f", 1)), 50, &rs, &res, NULL), 0);
	ck_assert_uint_eq(rs, 0);
	table_close(t);
	table_props_free(&props);
}
END_TEST

/* A table of range tombstones only (a compaction can write one): no data blocks, lookups see the
 * tombstones, iteration is empty. */
START_TEST(test_tombstones_only)
{
	struct model m;
	memset(&m, 0, sizeof m);
	m.nkeys = 10;
	struct {
		const char *b, *e;
		uint64_t seq;
	} ts[] = {{"key000003", "key000009", 7}, {"key000005", "key000020", 9}, {"key000001", "key000004", 3}};
	for (int i = 0; i < 3; i++) {
		m.t[i].bl = strlen(ts[i].b);
		memcpy(m.t[i].b, ts[i].b, m.t[i].bl);
		m.t[i].el = strlen(ts[i].e);
		memcpy(m.t[i].e, ts[i].e, m.t[i].el);
		m.t[i].seq = ts[i].seq;
	}
	m.nt = 3;
	struct table_opts o = {4096, 16, 10};
	struct table_props props;
	uint64_t size;
	build_table(env, TPATH, &m, &o, &props, &size);
	check_props(&props, &m);
	ck_assert_uint_eq(props.data_blocks, 0);
	ck_assert_uint_eq(props.min_seq, 3);
	ck_assert_uint_eq(props.max_seq, 9);
	struct table *t;
	ck_assert_int_eq(table_open(env, TPATH, 12, 0, NULL, &t), 0);
	props_equal(&t->props, &props);
	ck_assert_uint_eq(t->tombstones.n, 5); /* [1,3) [3,4) [4,5) [5,9) [9,20) */
	struct rng r = {1};
	char uk[32];
	for (uint32_t k = 0; k < 25; k++)
		for (uint64_t snap = 0; snap <= 10; snap++) {
			size_t ul = ukey(uk, k, 0);
			check_get(t, &m, slice_make(uk, ul), snap, NULL);
		}
	check_iter(t, &m, &r, 1);
	table_close(t);
	table_props_free(&props);
}
END_TEST

/* ---------------------------------------------------------------- damaged files */

static char *read_file(const char *path, size_t *n)
{
	char *d;
	ck_assert_int_eq(lsm_env_read_all(env, path, &d, n), 0);
	return d;
}

static void write_file(const char *path, const char *d, size_t n)
{
	ck_assert_int_eq(lsm_env_write_all(env, path, d, n, 1), 0);
}

static void parse_footer(const char *d, size_t n, struct footer *f)
{
	ck_assert_uint_ge(n, TABLE_FOOTER_SIZE);
	const char *ft = d + n - TABLE_FOOTER_SIZE;
	for (int i = 0; i < 4; i++) {
		f->off[i] = get_u64le(ft + 12 * i);
		f->size[i] = get_u32le(ft + 12 * i + 8);
	}
	ck_assert_uint_eq(get_u32le(ft + 48), TABLE_FORMAT_VERSION);
	ck_assert_uint_eq(get_u64le(ft + 56), TABLE_MAGIC);
}

/* The data block handles, from the index block of the intact file. */
static size_t data_handles(const char *d, const struct footer *f, struct block_handle *h, size_t max)
{
	struct block b;
	ck_assert_int_eq(block_parse(&b, d + f->off[3], f->size[3]), 0);
	struct block_iter bi;
	block_iter_init(&bi, &b, BLOCK_CMP_IKEY);
	size_t n = 0;
	for (iter_seek_first(&bi.base); bi.base.valid; iter_next(&bi.base)) {
		uint64_t off, sz;
		const char *p = get_varint64(bi.base.value.data, bi.base.value.data + bi.base.value.len, &off);
		ck_assert_ptr_nonnull(p);
		ck_assert_ptr_nonnull(get_varint64(p, bi.base.value.data + bi.base.value.len, &sz));
		ck_assert_uint_lt(n, max);
		h[n].offset = off;
		h[n].size = (uint32_t)sz;
		n++;
	}
	block_iter_cleanup(&bi);
	return n;
}

/* The message of the last error starts "corruption in PATH at offset OFF: ". */
static void expect_corrupt_msg(uint64_t off)
{
	char want[128];
	snprintf(want, sizeof want, "corruption in %s at offset %" PRIu64 ": ", TPATH, off);
	ck_assert_msg(strncmp(lsm_errmsg(), want, strlen(want)) == 0, "message '%s', expected it to start '%s'",
		      lsm_errmsg(), want);
}

static void expect_open_corrupt(uint64_t size, uint64_t off)
{
	struct table *t = (struct table *)&t;
	ck_assert_int_eq(table_open(env, TPATH, 12, size, NULL, &t), LSM_CORRUPT);
	ck_assert_ptr_null(t);
	expect_corrupt_msg(off);
}

/* A small table of known layout: keys key000000.. with 100-byte values, 1 KiB blocks, a filter and
 * one tombstone. */
static void small_table(struct model *m, uint64_t *size)
{
	struct rng r = {7};
	model_make(m, 300, 1, &r);
	struct table_opts o = {1024, 16, 10};
	struct table_props props;
	build_table(env, TPATH, m, &o, &props, size);
	table_props_free(&props);
}

START_TEST(test_corrupt_data_block)
{
	struct model m;
	uint64_t size;
	small_table(&m, &size);
	size_t n;
	char *good = read_file(TPATH, &n);
	struct footer f;
	parse_footer(good, n, &f);
	struct block_handle h[256];
	size_t nb = data_handles(good, &f, h, 256);
	ck_assert_uint_gt(nb, 5);
	ck_assert_uint_eq(h[0].offset, 0);

	for (int which = 0; which < 2; which++) {
		size_t bi = which ? 3 : 0;       /* the first block, then the fourth */
		int in_trailer = which;          /* a content byte, then a checksum byte */
		char *d = malloc(n);
		ck_assert_ptr_nonnull(d);
		memcpy(d, good, n);
		d[h[bi].offset + (in_trailer ? h[bi].size + 2 : 10)] ^= 0x01;
		write_file(TPATH, d, n);
		free(d);
		struct table *t;
		ck_assert_int_eq(table_open(env, TPATH, 12, 0, NULL, &t), 0); /* data blocks are read lazily */
		/* a key of that block: the first entry of a block is the one after the previous block's last */
		size_t first = 0;
		if (bi) {
			struct iter *it = table_iter_new(t, 0);
			ck_assert_ptr_nonnull(it);
			for (iter_seek_first(it); it->valid; iter_next(it))
				first++;
			ck_assert_int_eq(it->status, LSM_CORRUPT);
			expect_corrupt_msg(h[bi].offset);
			iter_destroy(it);
			/* the scan returned exactly the entries of the intact blocks before it */
			ck_assert_uint_gt(first, 0);
			ck_assert_uint_lt(first, m.n);
		}
		/* look up that entry's own version: the index then sends the lookup to this block even when
		 * newer versions of the same user key end the block before */
		struct slice ik = slice_make(m.e[first].ik, m.e[first].iklen);
		uint64_t rs = 0;
		struct table_get_result res = {0, 0, NULL};
		ck_assert_int_eq(table_get(t, ikey_user(ik), bloom_hash(ikey_user(ik)), ikey_seq(ik), &rs, &res, NULL),
				 LSM_CORRUPT);
		expect_corrupt_msg(h[bi].offset);
		/* a seek into the block */
		struct iter *it = table_iter_new(t, 1);
		ck_assert_ptr_nonnull(it);
		iter_seek(it, ik);
		ck_assert(!it->valid);
		ck_assert_int_eq(it->status, LSM_CORRUPT);
		expect_corrupt_msg(h[bi].offset);
		/* a block before it still reads (when there is one) */
		if (bi) {
			iter_seek(it, slice_make(m.e[0].ik, m.e[0].iklen));
			ck_assert(it->valid);
		}
		iter_destroy(it);
		table_close(t);
	}
	free(good);
	model_free(&m);
}
END_TEST

/* A data block whose checksum matches but whose restart array is bad: caught by the block parser. */
START_TEST(test_malformed_data_block_checksummed)
{
	struct model m;
	uint64_t size;
	small_table(&m, &size);
	size_t n;
	char *d = read_file(TPATH, &n);
	struct footer f;
	parse_footer(d, n, &f);
	struct block_handle h[256];
	ck_assert_uint_gt(data_handles(d, &f, h, 256), 2);
	/* block 1: restart count far too large; then a fresh, valid checksum over the damaged contents */
	char *blk = d + h[1].offset;
	put_u32le(blk + h[1].size - 4, 0x10000);
	put_u32le(blk + h[1].size + 1, (uint32_t)XXH3_64bits(blk, (size_t)h[1].size + 1));
	write_file(TPATH, d, n);
	struct table *t;
	ck_assert_int_eq(table_open(env, TPATH, 12, 0, NULL, &t), 0);
	struct iter *it = table_iter_new(t, 0);
	size_t count = 0;
	for (iter_seek_first(it); it->valid; iter_next(it))
		count++;
	ck_assert_int_eq(it->status, LSM_CORRUPT);
	expect_corrupt_msg(h[1].offset);
	ck_assert_uint_gt(count, 0);
	iter_destroy(it);
	table_close(t);
	free(d);
	model_free(&m);
}
END_TEST

/* The offset a corruption message names ("... at offset N: ..."), or UINT64_MAX if none. */
static uint64_t msg_offset(void)
{
	const char *p = strstr(lsm_errmsg(), " at offset ");
	return p ? strtoull(p + 11, NULL, 10) : UINT64_MAX;
}

/* An index entry whose block handle does not decode, in an index whose checksum is valid: the error
 * must name the file and a file offset in the index block (its start, or the entry's own offset),
 * not an offset relative to the block. */
START_TEST(test_malformed_index_entry_checksummed)
{
	struct model m;
	uint64_t size;
	small_table(&m, &size);
	size_t n;
	char *d = read_file(TPATH, &n);
	struct footer f;
	parse_footer(d, n, &f);
	struct block_handle h[256];
	ck_assert_uint_gt(data_handles(d, &f, h, 256), 3);
	/* the second index entry's value (varint offset, varint size) becomes an endless varint */
	struct block b;
	ck_assert_int_eq(block_parse(&b, d + f.off[3], f.size[3]), 0);
	struct block_iter bi;
	block_iter_init(&bi, &b, BLOCK_CMP_IKEY);
	iter_seek_first(&bi.base);
	iter_next(&bi.base);
	ck_assert(bi.base.valid);
	uint64_t entry_off = f.off[3] + bi.cur;
	memset((char *)bi.base.value.data, 0x80, bi.base.value.len);
	block_iter_cleanup(&bi);
	put_u32le(d + f.off[3] + f.size[3] + 1, (uint32_t)XXH3_64bits(d + f.off[3], (size_t)f.size[3] + 1));
	write_file(TPATH, d, n);

	struct table *t;
	ck_assert_int_eq(table_open(env, TPATH, 12, 0, NULL, &t), 0);
	/* the first entry of data block 1, at its own seqno: the lookup goes through index entry 1 */
	struct iter *it = table_iter_new(t, 0);
	size_t first = 0;
	for (iter_seek_first(it); it->valid; iter_next(it))
		first++;
	ck_assert_int_eq(it->status, LSM_CORRUPT);
	ck_assert_ptr_nonnull(strstr(lsm_errmsg(), TPATH));
	uint64_t off = msg_offset();
	ck_assert_msg(off == f.off[3] || off == entry_off,
		      "scan: message names offset %llu; the index block is at %llu (entry at %llu): '%s'",
		      (unsigned long long)off, (unsigned long long)f.off[3], (unsigned long long)entry_off, lsm_errmsg());
	iter_destroy(it);
	ck_assert_uint_gt(first, 0);
	struct slice ik = slice_make(m.e[first].ik, m.e[first].iklen);
	uint64_t rs = 0;
	struct table_get_result res = {0, 0, NULL};
	ck_assert_int_eq(table_get(t, ikey_user(ik), bloom_hash(ikey_user(ik)), ikey_seq(ik), &rs, &res, NULL),
			 LSM_CORRUPT);
	off = msg_offset();
	ck_assert_msg(off == f.off[3] || off == entry_off,
		      "get: message names offset %llu; the index block is at %llu (entry at %llu): '%s'",
		      (unsigned long long)off, (unsigned long long)f.off[3], (unsigned long long)entry_off, lsm_errmsg());
	table_close(t);
	free(d);
	model_free(&m);
}
END_TEST

START_TEST(test_corrupt_meta_blocks_and_footer)
{
	struct model m;
	uint64_t size;
	small_table(&m, &size);
	size_t n;
	char *good = read_file(TPATH, &n);
	struct footer f;
	parse_footer(good, n, &f);
	ck_assert_uint_gt(f.size[0], 0); /* has a filter */
	uint64_t foot = n - TABLE_FOOTER_SIZE;
	struct {
		const char *what;
		uint64_t at;       /* byte flipped */
		uint64_t reported; /* offset the message must name */
	} cases[] = {
		{"index block", f.off[3] + f.size[3] / 2, f.off[3]},
		{"index trailer", f.off[3] + f.size[3] + 3, f.off[3]},
		{"filter block", f.off[0] + 5, f.off[0]},
		{"range-del block", f.off[1] + 1, f.off[1]},
		{"props block", f.off[2] + 2, f.off[2]},
		{"footer handle", foot + 3, foot},
		{"footer version", foot + 48, foot}, /* under the footer checksum */
		{"footer checksum", foot + 53, foot},
		{"footer magic", foot + 60, foot + 56},
	};
	char *d = malloc(n);
	ck_assert_ptr_nonnull(d);
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		memcpy(d, good, n);
		d[cases[c].at] ^= 0x04;
		write_file(TPATH, d, n);
		struct table *t = NULL;
		int rc = table_open(env, TPATH, 12, 0, NULL, &t);
		ck_assert_msg(rc == LSM_CORRUPT, "%s: open returned %d", cases[c].what, rc);
		ck_assert_ptr_null(t);
		expect_corrupt_msg(cases[c].reported);
	}
	/* a footer handle pointing past the end, with a valid footer checksum */
	memcpy(d, good, n);
	put_u64le(d + foot + 36, n); /* the index "starts" at the end of the file */
	put_u32le(d + foot + 52, (uint32_t)XXH3_64bits(d + foot, 52));
	write_file(TPATH, d, n);
	expect_open_corrupt(0, n);
	/* a well-formed footer of a future format version */
	memcpy(d, good, n);
	put_u32le(d + foot + 48, TABLE_FORMAT_VERSION + 1);
	put_u32le(d + foot + 52, (uint32_t)XXH3_64bits(d + foot, 52));
	write_file(TPATH, d, n);
	expect_open_corrupt(0, foot + 48);
	free(d);
	free(good);
	model_free(&m);
}
END_TEST

START_TEST(test_truncated)
{
	struct model m;
	uint64_t size;
	small_table(&m, &size);
	size_t n;
	char *good = read_file(TPATH, &n);
	const uint64_t cuts[] = {n - 1, n - 30, n - TABLE_FOOTER_SIZE, n / 2};
	for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
		write_file(TPATH, good, n);
		ck_assert_int_eq(env->truncate(env, TPATH, cuts[c]), 0);
		struct table *t = (struct table *)&t;
		ck_assert_int_eq(table_open(env, TPATH, 12, 0, NULL, &t), LSM_CORRUPT);
		ck_assert_ptr_null(t);
		ck_assert_ptr_nonnull(strstr(lsm_errmsg(), TPATH));
	}
	/* too short to hold a footer */
	write_file(TPATH, good, 10);
	expect_open_corrupt(0, 0);
	write_file(TPATH, good, 0);
	expect_open_corrupt(0, 0);
	/* the caller's size (from the manifest) is larger than the file */
	write_file(TPATH, good, n);
	expect_open_corrupt(n + 100, n + 100 - TABLE_FOOTER_SIZE);
	/* missing file */
	struct table *t;
	ck_assert_int_eq(table_open(env, "/db/000099.sst", 99, 0, NULL, &t), LSM_NOTFOUND);
	ck_assert_ptr_null(t);
	free(good);
	model_free(&m);
}
END_TEST

/* Random byte flips anywhere: open fails with CORRUPT, or every read ends in OK/CORRUPT (never a crash,
 * never a read out of bounds under ASan). */
START_TEST(test_fuzz_flips)
{
	struct rng r = {test_seed("table_fuzz_flips")};
	struct model m;
	uint64_t size;
	small_table(&m, &size);
	size_t n;
	char *good = read_file(TPATH, &n);
	char *d = malloc(n);
	ck_assert_ptr_nonnull(d);
	int open_fails = 0, read_fails = 0;
	for (int round = 0; round < 60; round++) {
		memcpy(d, good, n);
		size_t at = (size_t)rng_below(&r, n);
		d[at] ^= (char)(1u << rng_below(&r, 8));
		write_file(TPATH, d, n);
		struct table *t;
		int rc = table_open(env, TPATH, 12, 0, NULL, &t);
		if (rc) {
			ck_assert_int_eq(rc, LSM_CORRUPT);
			open_fails++;
			continue;
		}
		struct iter *it = table_iter_new(t, 0);
		size_t count = 0;
		for (iter_seek_first(it); it->valid; iter_next(it))
			count++;
		ck_assert(it->status == 0 || it->status == LSM_CORRUPT);
		/* a flip that the open and a full scan both accept is harmless: every entry reads back */
		if (it->status == 0)
			ck_assert_uint_eq(count, m.n);
		read_fails += it->status != 0;
		iter_destroy(it);
		table_close(t);
	}
	/* every flip is caught somewhere: checksums cover every byte of the file */
	ck_assert_int_eq(open_fails + read_fails, 60);
	free(d);
	free(good);
	model_free(&m);
}
END_TEST

/* ---------------------------------------------------------------- builder failures */

static int add_entry(struct table_builder *tb, const struct ent *e)
{
	return table_builder_add(tb, slice_make(e->ik, e->iklen), slice_make(e->v, e->vlen));
}

START_TEST(test_builder_failures)
{
	struct table_opts o = {4096, 16, 10};
	struct table_builder *tb = (struct table_builder *)&o;
	ck_assert_int_eq(table_builder_open(env, "/nodir/1.sst", &o, &tb), LSM_NOTFOUND);
	ck_assert_ptr_null(tb);

	/* abandon after some keys: no leak (ASan), the partial file stays for the caller to remove */
	struct rng r = {3};
	struct model m;
	model_make(&m, 200, 3, &r);
	ck_assert_int_eq(table_builder_open(env, TPATH, &o, &tb), 0);
	for (size_t i = 0; i < m.n; i++)
		FAST_EQ(add_entry(tb, &m.e[i]), 0);
	ck_assert_int_eq(table_builder_add_range(tb, slice_make("a", 1), slice_make("b", 1), 5), 0);
	table_builder_abandon(tb);
	table_builder_abandon(NULL);

	/* the sync at finish fails: the error comes back and the builder is freed */
	lsm_env *fe = lsm_fault_env_new(env);
	ck_assert_ptr_nonnull(fe);
	ck_assert_int_eq(table_builder_open(fe, TPATH, &o, &tb), 0);
	for (size_t i = 0; i < m.n; i++)
		FAST_EQ(add_entry(tb, &m.e[i]), 0);
	lsm_fault_set_fail(fe, 1, EIO, 0, 0, LSM_FAULT_SYNC);
	struct table_props props;
	memset(&props, 0, sizeof props);
	uint64_t sz = 12345;
	ck_assert_int_eq(table_builder_finish(tb, &props, &sz), LSM_IOERR);
	ck_assert_uint_eq(sz, 12345); /* outputs untouched on failure */
	ck_assert_uint_eq(props.entries, 0);
	ck_assert_ptr_nonnull(strstr(lsm_errmsg(), TPATH));

	/* a full disk while writing: the first error sticks */
	ck_assert_int_eq(table_builder_open(fe, TPATH, &o, &tb), 0);
	lsm_fault_set_fail(fe, 1, ENOSPC, 1, 0, LSM_FAULT_WRITE);
	int rc = 0;
	for (size_t i = 0; i < m.n && !rc; i++) /* the 256 KiB write buffer fills at some point, or finish flushes */
		rc = add_entry(tb, &m.e[i]);
	ck_assert_int_eq(table_builder_finish(tb, NULL, NULL), LSM_NOSPC);
	lsm_fault_clear(fe);
	fe->destroy(fe);
	model_free(&m);
}
END_TEST

Suite *table_suite(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase_create("round_trip");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_round_trip, 0, (int)(sizeof CONFIGS / sizeof CONFIGS[0]));
	tcase_add_test(tc, test_bloom_skips);
	tcase_add_test(tc, test_binary_keys);
	tcase_add_test(tc, test_long_tombstone_keys);
	tcase_add_test(tc, test_tombstones_only);
	tcase_add_test(tc, test_builder_failures);
	suite_add_tcase(s, tc);
	tc = tcase_create("corrupt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_corrupt_data_block);
	tcase_add_test(tc, test_malformed_data_block_checksummed);
	tcase_add_test(tc, test_malformed_index_entry_checksummed);
	tcase_add_test(tc, test_corrupt_meta_blocks_and_footer);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_fuzz_flips);
	suite_add_tcase(s, tc);
	return s;
}
