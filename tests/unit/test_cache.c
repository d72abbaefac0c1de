/* test_cache.c - the sharded LRU cache: byte limit, LRU order, pinning, erase, deleters, threads. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
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

/* ---------------------------------------------------------------- values with counted deleters */

#define MAGIC 0x5EC7ACE5CAC4E000ULL

struct val {
	uint64_t magic, id, off;
	_Atomic int *deleted; /* this value's deleter-call counter */
};

/* Deleter calls so far, by slot; slots are handed out per inserted value. */
#define MAX_SLOTS 200000
static _Atomic int slots[MAX_SLOTS];
static _Atomic int next_slot;

static struct val *mkval(uint64_t id, uint64_t off)
{
	struct val *v = malloc(sizeof *v); /* called from worker threads too: no passing ck_assert here */
	FAST_TRUE(v != NULL);
	int s = atomic_fetch_add(&next_slot, 1);
	FAST_TRUE(s < MAX_SLOTS);
	atomic_store(&slots[s], 0);
	v->magic = MAGIC;
	v->id = id;
	v->off = off;
	v->deleted = &slots[s];
	return v;
}

static void deleter(void *value, void *arg)
{
	struct val *v = value;
	if (v->magic != MAGIC || arg != (void *)&slots)
		abort(); /* a double delete or a wrong argument: the memory checker or the abort says so */
	atomic_fetch_add(v->deleted, 1);
	v->magic = 0;
	free(v);
}

static void reset_slots(void)
{
	atomic_store(&next_slot, 0);
}

/* Every value created since reset_slots was deleted exactly once. */
static void expect_all_deleted_once(void)
{
	int n = atomic_load(&next_slot);
	for (int i = 0; i < n; i++)
		if (atomic_load(&slots[i]) != 1)
			ck_abort_msg("value %d deleted %d times", i, atomic_load(&slots[i]));
}

static struct cache_handle *ins(struct cache *c, uint64_t id, uint64_t off, size_t charge, _Atomic int **count)
{
	struct val *v = mkval(id, off);
	if (count)
		*count = v->deleted;
	struct cache_handle *h = cache_insert(c, id, off, v, charge, deleter, (void *)&slots);
	FAST_TRUE(h != NULL);
	FAST_TRUE(cache_value(h) == v);
	return h;
}

/* Insert and release at once. */
static void put(struct cache *c, uint64_t id, uint64_t off, size_t charge, _Atomic int **count)
{
	cache_release(c, ins(c, id, off, charge, count));
}

/* 1 if (id, off) is cached (checking the value's identity), else 0. */
static int present(struct cache *c, uint64_t id, uint64_t off)
{
	struct cache_handle *h = cache_lookup(c, id, off);
	if (!h)
		return 0;
	struct val *v = cache_value(h);
	FAST_TRUE(v->magic == MAGIC && v->id == id && v->off == off);
	cache_release(c, h);
	return 1;
}

/* ---------------------------------------------------------------- basics */

START_TEST(test_basics)
{
	reset_slots();
	struct cache *c = cache_new(1 << 20);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(cache_capacity(c), 1 << 20);
	ck_assert_uint_eq(cache_usage(c), 0);
	uint64_t hits, misses, entries;
	ck_assert_ptr_null(cache_lookup(c, 1, 0));
	_Atomic int *d1;
	struct cache_handle *h = ins(c, 1, 0, 10, &d1);
	ck_assert_uint_eq(cache_usage(c), 10);
	struct cache_handle *h2 = cache_lookup(c, 1, 0);
	ck_assert_ptr_eq(h2, h);
	ck_assert_ptr_null(cache_lookup(c, 1, 1)); /* offset is part of the key */
	ck_assert_ptr_null(cache_lookup(c, 2, 0)); /* and so is the id */
	cache_counts(c, &hits, &misses, &entries);
	ck_assert_uint_eq(hits, 1);
	ck_assert_uint_eq(misses, 3);
	ck_assert_uint_eq(entries, 1);
	cache_release(c, h);
	cache_release(c, h2);
	ck_assert_int_eq(*d1, 0);
	ck_assert_uint_eq(cache_usage(c), 10); /* unpinned, still cached */
	ck_assert(present(c, 1, 0));

	cache_erase(c, 1, 0);
	ck_assert_int_eq(*d1, 1);
	ck_assert_uint_eq(cache_usage(c), 0);
	ck_assert(!present(c, 1, 0));
	cache_erase(c, 1, 0); /* erasing a missing key is harmless */
	cache_counts(c, &hits, &misses, &entries);
	ck_assert_uint_eq(hits, 2);
	ck_assert_uint_eq(misses, 4);
	ck_assert_uint_eq(entries, 0);

	/* fresh ids are distinct and never reused */
	uint64_t a = cache_new_id(c), b = cache_new_id(c);
	ck_assert_uint_ne(a, b);
	ck_assert_uint_gt(b, a);
	ck_assert_uint_gt(a, 0);

	/* many entries: the shards' hash tables grow */
	for (uint64_t i = 0; i < 5000; i++)
		put(c, 7, i * 4096, 1, NULL);
	ck_assert_uint_eq(cache_usage(c), 5000);
	for (uint64_t i = 0; i < 5000; i++)
		FAST_TRUE(present(c, 7, i * 4096));
	cache_counts(c, &hits, &misses, &entries);
	ck_assert_uint_eq(entries, 5000);
	cache_free(c); /* frees the cached entries */
	expect_all_deleted_once();
	cache_free(NULL);
}
END_TEST

/* Inserting an existing key replaces the entry; the old value lives while pinned, then is deleted. */
START_TEST(test_replace)
{
	reset_slots();
	struct cache *c = cache_new(1 << 20);
	_Atomic int *d1, *d2, *d3;
	put(c, 1, 5, 100, &d1);
	put(c, 1, 5, 30, &d2);
	ck_assert_int_eq(*d1, 1); /* unpinned: deleted at once */
	ck_assert_uint_eq(cache_usage(c), 30);
	struct cache_handle *old = cache_lookup(c, 1, 5);
	struct val *ov = cache_value(old);
	struct cache_handle *h3 = ins(c, 1, 5, 7, &d3);
	ck_assert_int_eq(*d2, 0);               /* pinned: survives being replaced */
	ck_assert_uint_eq(cache_usage(c), 37);  /* and still counts */
	ck_assert_uint_eq(ov->magic, MAGIC);
	struct cache_handle *now = cache_lookup(c, 1, 5);
	ck_assert_ptr_eq(now, h3);              /* lookups see the new entry */
	cache_release(c, now);
	cache_release(c, old);
	ck_assert_int_eq(*d2, 1);
	ck_assert_uint_eq(cache_usage(c), 7);
	cache_release(c, h3);
	ck_assert_int_eq(*d3, 0);
	uint64_t hits, misses, entries;
	cache_counts(c, &hits, &misses, &entries);
	ck_assert_uint_eq(entries, 1);
	cache_free(c);
	expect_all_deleted_once();
}
END_TEST

/* An erased entry that is pinned stays readable until its last release, then is deleted. */
START_TEST(test_erase_pinned)
{
	reset_slots();
	struct cache *c = cache_new(1 << 20);
	_Atomic int *d;
	struct cache_handle *h = ins(c, 3, 3, 50, &d);
	struct cache_handle *h2 = cache_lookup(c, 3, 3);
	cache_erase(c, 3, 3);
	ck_assert(!present(c, 3, 3));
	ck_assert_int_eq(*d, 0);
	ck_assert_uint_eq(((struct val *)cache_value(h))->magic, MAGIC);
	ck_assert_uint_eq(cache_usage(c), 50); /* pinned bytes still count */
	cache_release(c, h);
	ck_assert_int_eq(*d, 0);
	cache_release(c, h2);
	ck_assert_int_eq(*d, 1);
	ck_assert_uint_eq(cache_usage(c), 0);
	/* a new entry under the erased key is independent of the old one */
	put(c, 3, 3, 5, NULL);
	ck_assert(present(c, 3, 3));
	cache_free(c);
	expect_all_deleted_once();
}
END_TEST

/* ---------------------------------------------------------------- the byte limit */

/* With nothing pinned, usage never exceeds the capacity, whatever the capacity. */
static void usage_bounded(size_t capacity, uint64_t seed)
{
	reset_slots();
	struct rng r = {seed};
	struct cache *c = cache_new(capacity);
	ck_assert_ptr_nonnull(c);
	for (int i = 0; i < 20000; i++) {
		size_t charge = 1 + (size_t)rng_below(&r, rng_below(&r, 4) ? 3 : capacity / 32 + 1);
		put(c, 1, rng_below(&r, 3000), charge, NULL);
		size_t u = cache_usage(c);
		if (u > capacity)
			ck_abort_msg("capacity %zu: usage %zu after %d inserts", capacity, u, i + 1);
	}
	ck_assert_uint_gt(cache_usage(c), capacity / 2); /* and it does hold things */
	cache_free(c);
	expect_all_deleted_once();
}

START_TEST(test_usage_bounded)
{
	usage_bounded(16 * 64, test_seed("cache_usage_bounded"));
}
END_TEST

/* The limit is the cache's capacity, also when it does not divide evenly among the 16 shards (the
 * table cache's capacity is max_open_tables, 1000 by default, with a charge of 1 per table). */
START_TEST(test_usage_bounded_uneven_capacity)
{
	reset_slots();
	struct cache *c = cache_new(100);
	for (uint64_t i = 0; i < 2000; i++) {
		put(c, 1, i, 1, NULL);
		size_t u = cache_usage(c);
		if (u > 100)
			ck_abort_msg("capacity 100: usage %zu after %llu inserts of charge 1", u, (unsigned long long)i + 1);
	}
	ck_assert_uint_eq(cache_usage(c), 100); /* and the whole capacity is used */
	cache_free(c);
	expect_all_deleted_once();
	usage_bounded(1000, test_seed("cache_usage_bounded_uneven"));
}
END_TEST

/* One big insert that must evict many small entries brings usage back under the limit too. */
START_TEST(test_big_insert_evicts_enough)
{
	reset_slots();
	size_t cap = 16 * 100;
	struct cache *c = cache_new(cap);
	for (uint64_t i = 0; i < 3200; i++)
		put(c, 1, i, 1, NULL);
	/* every shard got well over 100 of the 3200 keys: each is full */
	ck_assert_uint_eq(cache_usage(c), cap);
	_Atomic int *big;
	put(c, 2, 0, 100, &big); /* its shard must drop all 100 small entries */
	ck_assert_uint_le(cache_usage(c), cap);
	ck_assert_int_eq(*big, 0);
	ck_assert(present(c, 2, 0)); /* it fits exactly */
	cache_free(c);
	expect_all_deleted_once();
}
END_TEST

/* An entry bigger than its shard's share can never be kept once unpinned. */
START_TEST(test_oversized_entry)
{
	reset_slots();
	struct cache *c = cache_new(16 * 10);
	_Atomic int *d;
	struct cache_handle *h = ins(c, 1, 1, 1000, &d);
	ck_assert_uint_eq(cache_usage(c), 1000); /* pinned: allowed over the limit */
	ck_assert_int_eq(*d, 0);
	cache_release(c, h);
	ck_assert_int_eq(*d, 1);
	ck_assert_uint_eq(cache_usage(c), 0);
	cache_free(c);
	expect_all_deleted_once();
}
END_TEST

/* Pinned entries survive any amount of eviction pressure; once released, the limit holds again. */
START_TEST(test_pinned_survive)
{
	reset_slots();
	size_t cap = 16 * 20;
	struct cache *c = cache_new(cap);
	enum { PINNED = 40 };
	struct cache_handle *h[PINNED];
	_Atomic int *d[PINNED];
	for (int i = 0; i < PINNED; i++)
		h[i] = ins(c, 9, (uint64_t)i, 10, &d[i]);
	ck_assert_uint_eq(cache_usage(c), PINNED * 10); /* over the limit: everything is pinned */
	for (uint64_t i = 0; i < 5000; i++)
		put(c, 1, i, 1 + i % 7, NULL);
	for (int i = 0; i < PINNED; i++) {
		ck_assert_int_eq(*d[i], 0);
		struct val *v = cache_value(h[i]);
		ck_assert_uint_eq(v->magic, MAGIC);
		ck_assert_uint_eq(v->off, (uint64_t)i);
		ck_assert(present(c, 9, (uint64_t)i)); /* still findable, not just alive */
	}
	for (int i = 0; i < PINNED; i++)
		cache_release(c, h[i]);
	ck_assert_uint_le(cache_usage(c), cap);
	cache_free(c);
	expect_all_deleted_once();
}
END_TEST

/* ---------------------------------------------------------------- LRU order */

/* Keys sharing one shard, found through a probe cache whose shards hold one entry each: inserting b
 * evicts a exactly when they share a shard. */
static void same_shard_keys(uint64_t *out, int n)
{
	out[0] = 1000;
	int found = 1;
	for (uint64_t k = 1001; found < n; k++) {
		ck_assert_uint_lt(k, 5000);
		struct cache *p = cache_new(16);
		put(p, 1, out[0], 1, NULL);
		put(p, 1, k, 1, NULL);
		if (!present(p, 1, out[0]))
			out[found++] = k;
		cache_free(p);
	}
}

START_TEST(test_lru_order)
{
	reset_slots();
	uint64_t k[6];
	same_shard_keys(k, 6);
	struct cache *c = cache_new(16 * 3); /* three entries of charge 1 per shard */
	_Atomic int *d[6];
	enum { A, B, C, D, E, F };
	put(c, 1, k[A], 1, &d[A]);
	put(c, 1, k[B], 1, &d[B]);
	put(c, 1, k[C], 1, &d[C]);
	ck_assert(present(c, 1, k[A])); /* a used: b is now the least recently used */
	put(c, 1, k[D], 1, &d[D]);
	ck_assert_int_eq(*d[B], 1);
	ck_assert_int_eq(*d[A] + *d[C] + *d[D], 0);
	ck_assert(!present(c, 1, k[B]));
	/* order now c, a, d; pin c: it leaves the LRU list */
	struct cache_handle *hc = cache_lookup(c, 1, k[C]);
	ck_assert_ptr_nonnull(hc);
	put(c, 1, k[E], 1, &d[E]); /* evicts a, the oldest unpinned */
	ck_assert_int_eq(*d[A], 1);
	ck_assert_int_eq(*d[C], 0);
	ck_assert(present(c, 1, k[D])); /* order: e, d */
	cache_release(c, hc);           /* c back, newest: e, d, c */
	ck_assert_uint_eq(cache_usage(c), 3);
	put(c, 1, k[F], 1, &d[F]);      /* evicts e */
	ck_assert_int_eq(*d[E], 1);
	ck_assert(present(c, 1, k[C]));
	ck_assert(present(c, 1, k[D]));
	ck_assert(present(c, 1, k[F]));
	ck_assert_int_eq(*d[C] + *d[D] + *d[F], 0);
	cache_free(c);
	expect_all_deleted_once();
}
END_TEST

/* ---------------------------------------------------------------- deleters run outside the lock */

static struct cache *reentrant_cache;
static _Atomic int reentrant_calls;

/* A deleter that uses the cache (the table cache's deleter closes a table, which may release block
 * cache entries): a deleter run under the shard's lock would deadlock here. */
static void reentrant_deleter(void *value, void *arg)
{
	(void)arg;
	struct val *v = value;
	if (reentrant_cache) {
		struct cache_handle *h = cache_lookup(reentrant_cache, v->id, v->off);
		if (h)
			cache_release(reentrant_cache, h);
		(void)cache_usage(reentrant_cache);
		atomic_fetch_add(&reentrant_calls, 1);
	}
	free(v);
}

START_TEST(test_deleter_outside_lock)
{
	reset_slots();
	struct cache *c = cache_new(16 * 4);
	reentrant_cache = c;
	atomic_store(&reentrant_calls, 0);
	/* eviction on insert */
	for (uint64_t i = 0; i < 200; i++)
		cache_release(c, cache_insert(c, 1, i, mkval(1, i), 1, reentrant_deleter, NULL));
	ck_assert_int_ge(atomic_load(&reentrant_calls), 200 - 64);
	/* replacement, erase, and the last release of an erased entry */
	int before = atomic_load(&reentrant_calls);
	cache_release(c, cache_insert(c, 2, 0, mkval(2, 0), 1, reentrant_deleter, NULL));
	cache_release(c, cache_insert(c, 2, 0, mkval(2, 0), 1, reentrant_deleter, NULL));
	ck_assert_int_ge(atomic_load(&reentrant_calls), before + 1);
	before = atomic_load(&reentrant_calls);
	cache_erase(c, 2, 0);
	ck_assert_int_eq(atomic_load(&reentrant_calls), before + 1);
	struct cache_handle *h = cache_insert(c, 3, 0, mkval(3, 0), 1, reentrant_deleter, NULL);
	before = atomic_load(&reentrant_calls); /* after any eviction the insert caused */
	cache_erase(c, 3, 0);
	ck_assert_int_eq(atomic_load(&reentrant_calls), before); /* pinned: not yet */
	cache_release(c, h);
	ck_assert_int_eq(atomic_load(&reentrant_calls), before + 1);
	/* release of a pinned entry that pushed its shard over the limit */
	struct cache_handle *pins[8];
	for (int i = 0; i < 8; i++)
		pins[i] = cache_insert(c, 4, (uint64_t)i, mkval(4, (uint64_t)i), 5, reentrant_deleter, NULL);
	for (int i = 0; i < 8; i++)
		cache_release(c, pins[i]);
	reentrant_cache = NULL; /* cache_free tears the shards down: no more calls into it */
	cache_free(c);
}
END_TEST

/* ---------------------------------------------------------------- threads */

#define NTHREADS 4

struct worker {
	struct cache *c;
	uint64_t seed;
	int inserts;
	uint64_t ids[200];
	char error[160];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct rng r = {w->seed};
	struct cache_handle *held[3] = {NULL, NULL, NULL};
	int ops = 20000 * test_scale();
	for (int i = 0; i < ops; i++) {
		uint64_t off = rng_below(&r, 400);
		unsigned op = (unsigned)rng_below(&r, 10);
		struct cache_handle *h = NULL;
		if (op < 6) {
			h = cache_lookup(w->c, 1, off);
		} else if (op < 9) {
			struct val *v = mkval(1, off);
			h = cache_insert(w->c, 1, off, v, 1 + (size_t)rng_below(&r, 8), deleter, (void *)&slots);
			if (!h) {
				snprintf(w->error, sizeof w->error, "insert failed");
				break;
			}
			w->inserts++;
		} else {
			cache_erase(w->c, 1, off);
		}
		if (h) {
			struct val *v = cache_value(h);
			if (v->magic != MAGIC || v->id != 1 || v->off != off) {
				snprintf(w->error, sizeof w->error, "handle for %llu holds a wrong or freed value",
					 (unsigned long long)off);
				cache_release(w->c, h);
				break;
			}
			/* keep a few pinned for a while, across other threads' evictions */
			int slot = (int)rng_below(&r, 3);
			if (held[slot])
				cache_release(w->c, held[slot]);
			held[slot] = h;
		}
		if (i < 200)
			w->ids[i] = cache_new_id(w->c);
	}
	for (int i = 0; i < 3; i++) {
		if (held[i]) {
			struct val *v = cache_value(held[i]);
			if (v->magic != MAGIC && !w->error[0])
				snprintf(w->error, sizeof w->error, "a pinned value was freed");
			cache_release(w->c, held[i]);
		}
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

START_TEST(test_threads)
{
	reset_slots();
	uint64_t seed = test_seed("cache_threads");
	size_t cap = 16 * 40;
	struct cache *c = cache_new(cap);
	static struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].c = c;
		w[i].seed = seed + (uint64_t)i * 0x9E3779B97F4A7C15ULL;
		ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	int inserts = 0;
	uint64_t ids[NTHREADS * 200];
	for (int i = 0; i < NTHREADS; i++) {
		ck_assert_msg(!w[i].error[0], "worker %d: %s", i, w[i].error);
		inserts += w[i].inserts;
		memcpy(ids + 200 * i, w[i].ids, sizeof w[i].ids);
	}
	ck_assert_int_eq(inserts, atomic_load(&next_slot));
	/* nothing pinned any more: within the limit */
	ck_assert_uint_le(cache_usage(c), cap);
	uint64_t hits, misses, entries;
	cache_counts(c, &hits, &misses, &entries);
	ck_assert_uint_gt(hits, 0);
	ck_assert_uint_gt(misses, 0);
	ck_assert_uint_le(entries, 400);
	/* ids handed out concurrently are all distinct */
	qsort(ids, NTHREADS * 200, sizeof ids[0], cmp_u64);
	for (int i = 1; i < NTHREADS * 200; i++)
		FAST_TRUE(ids[i - 1] != ids[i]);
	cache_free(c);
	expect_all_deleted_once();
}
END_TEST

Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("cache");
	tcase_add_test(tc, test_basics);
	tcase_add_test(tc, test_replace);
	tcase_add_test(tc, test_erase_pinned);
	tcase_add_test(tc, test_usage_bounded);
	tcase_add_test(tc, test_usage_bounded_uneven_capacity);
	tcase_add_test(tc, test_big_insert_evicts_enough);
	tcase_add_test(tc, test_oversized_entry);
	tcase_add_test(tc, test_pinned_survive);
	tcase_add_test(tc, test_lru_order);
	tcase_add_test(tc, test_deleter_outside_lock);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}
