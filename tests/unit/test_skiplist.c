/* test_skiplist.c - the memtable skiplist: order, seeks, the sequential-insert fast path, lock-free readers. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "dbformat.h"
#include "skiplist.h"
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

/* ---------------------------------------------------------------- helpers */

/* User key for number k: fixed width so that numeric order is byte order. */
static size_t ukey(char *out, uint64_t k)
{
	return (size_t)snprintf(out, 32, "key%012llu", (unsigned long long)k);
}

/* The value stored with (k, seq): derived from both, so a reader can check a node is fully formed. */
static size_t value_for(char *out, uint64_t k, uint64_t seq)
{
	size_t n = 1 + (size_t)((k * 7 + seq) % 40);
	for (size_t i = 0; i < n; i++)
		out[i] = (char)('a' + (k + seq + i) % 26);
	return n;
}

static struct sl_node *add(struct skiplist *sl, uint64_t k, uint64_t seq)
{
	char uk[32], v[64];
	size_t ul = ukey(uk, k), vl = value_for(v, k, seq);
	struct sl_node *n = skiplist_new_node(sl, (uint32_t)(ul + IKEY_TRAILER), (uint32_t)vl);
	FAST_TRUE(n != NULL);
	FAST_TRUE(n->height >= 1);
	FAST_TRUE(n->height <= SKIPLIST_MAX_HEIGHT);
	ikey_build(sl_node_key(n), slice_make(uk, ul), seq, VT_VALUE);
	memcpy(sl_node_key(n) + ul + IKEY_TRAILER, v, vl);
	skiplist_insert(sl, n);
	return n;
}

static struct slice target(char *buf, uint64_t k, uint64_t seq)
{
	size_t ul = ukey(buf, k);
	put_u64le(buf + ul, pack_trailer(seq, VT_SEEK));
	return slice_make(buf, ul + IKEY_TRAILER);
}

/* 0 if n is a well-formed node of this test (key parses, value matches); else a short reason. */
static const char *node_problem(const struct sl_node *n, uint64_t *k_out, uint64_t *seq_out)
{
	if (n->height < 1 || n->height > SKIPLIST_MAX_HEIGHT)
		return "bad height";
	if (n->klen != 15 + IKEY_TRAILER)
		return "bad key length";
	struct slice ik = sl_node_ikey(n);
	if (memcmp(ik.data, "key", 3))
		return "bad key prefix";
	uint64_t k = 0;
	for (int i = 3; i < 15; i++) {
		if (ik.data[i] < '0' || ik.data[i] > '9')
			return "bad key digits";
		k = k * 10 + (uint64_t)(ik.data[i] - '0');
	}
	if (ikey_type(ik) != VT_VALUE)
		return "bad type";
	uint64_t seq = ikey_seq(ik);
	char v[64];
	size_t vl = value_for(v, k, seq);
	struct slice val = sl_node_value(n);
	if (val.len != vl || memcmp(val.data, v, vl))
		return "bad value";
	*k_out = k;
	*seq_out = seq;
	return NULL;
}

/* Every level is a sorted chain of nodes tall enough to be on it; level 0 holds count nodes. */
static void check_structure(const struct skiplist *sl, size_t count)
{
	int maxh = atomic_load(&sl->max_height);
	FAST_TRUE(maxh >= 1);
	FAST_TRUE(maxh <= SKIPLIST_MAX_HEIGHT);
	size_t prev_level_n = 0;
	for (int lvl = SKIPLIST_MAX_HEIGHT - 1; lvl >= 0; lvl--) {
		size_t n = 0;
		const struct sl_node *prev = NULL;
		for (const struct sl_node *x = atomic_load(&sl->head->next[lvl]); x; x = atomic_load(&x->next[lvl])) {
			FAST_TRUE(x->height > ((unsigned)lvl));
			if (prev)
				FAST_TRUE(ikey_cmp(sl_node_ikey(prev), sl_node_ikey(x)) < 0);
			prev = x;
			n++;
		}
		if (lvl >= maxh)
			FAST_EQ(n, 0);
		FAST_TRUE(n >= prev_level_n); /* each level is a subset of the one below */
		prev_level_n = n;
	}
	FAST_EQ(prev_level_n, count);
}

/* ---------------------------------------------------------------- basic */

START_TEST(test_empty)
{
	struct arena a;
	struct skiplist sl;
	arena_init(&a, 4096);
	ck_assert_int_eq(skiplist_init(&sl, &a), 0);
	ck_assert_ptr_null(skiplist_first(&sl));
	char buf[32];
	ck_assert_ptr_null(skiplist_seek(&sl, target(buf, 5, SEQNO_MAX)));
	check_structure(&sl, 0);
	arena_free(&a);
}
END_TEST

/* Versions of one user key sort newest first; a seek at (key, snap) lands on the newest <= snap. */
START_TEST(test_versions_and_seek)
{
	struct arena a;
	struct skiplist sl;
	arena_init(&a, 4096);
	ck_assert_int_eq(skiplist_init(&sl, &a), 0);
	/* keys 10, 20, 30; each with seqnos 5, 7, 9 (inserted in a scrambled order) */
	const uint64_t ks[] = {20, 10, 30, 20, 30, 10, 10, 30, 20};
	const uint64_t ss[] = {7, 5, 9, 5, 5, 9, 7, 7, 9};
	for (int i = 0; i < 9; i++)
		add(&sl, ks[i], ss[i]);
	check_structure(&sl, 9);
	const uint64_t want_k[] = {10, 10, 10, 20, 20, 20, 30, 30, 30};
	const uint64_t want_s[] = {9, 7, 5, 9, 7, 5, 9, 7, 5};
	int i = 0;
	for (struct sl_node *n = skiplist_first(&sl); n; n = skiplist_next(n), i++) {
		uint64_t k, s;
		const char *why = node_problem(n, &k, &s);
		ck_assert_msg(!why, "%s", why);
		ck_assert_uint_eq(k, want_k[i]);
		ck_assert_uint_eq(s, want_s[i]);
	}
	ck_assert_int_eq(i, 9);

	char buf[32];
	uint64_t k, s;
	struct sl_node *n = skiplist_seek(&sl, target(buf, 20, 8)); /* newest <= 8 is seq 7 */
	ck_assert_ptr_nonnull(n);
	ck_assert_ptr_null(node_problem(n, &k, &s));
	ck_assert_uint_eq(k, 20);
	ck_assert_uint_eq(s, 7);
	n = skiplist_seek(&sl, target(buf, 20, 9));
	ck_assert_ptr_null(node_problem(n, &k, &s));
	ck_assert_uint_eq(s, 9);
	n = skiplist_seek(&sl, target(buf, 20, 4)); /* nothing of key 20 <= 4: the next key */
	ck_assert_ptr_null(node_problem(n, &k, &s));
	ck_assert_uint_eq(k, 30);
	ck_assert_uint_eq(s, 9);
	n = skiplist_seek(&sl, target(buf, 0, SEQNO_MAX));
	ck_assert_ptr_eq(n, skiplist_first(&sl));
	n = skiplist_seek(&sl, target(buf, 15, SEQNO_MAX));
	ck_assert_ptr_null(node_problem(n, &k, &s));
	ck_assert_uint_eq(k, 20);
	ck_assert_ptr_null(skiplist_seek(&sl, target(buf, 30, 4)));
	ck_assert_ptr_null(skiplist_seek(&sl, target(buf, 31, SEQNO_MAX)));
	arena_free(&a);
}
END_TEST

/* ---------------------------------------------------------------- fast path vs random order */

static void shuffle(uint64_t *v, size_t n, struct rng *r)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rng_below(r, i);
		uint64_t t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* Insert keys[i] (all seq 1) in the given order into a fresh list; returns the list's keys in order. */
static void build_and_scan(const uint64_t *order, size_t n, uint64_t *out)
{
	struct arena a;
	struct skiplist sl;
	arena_init(&a, 1 << 16);
	FAST_EQ(skiplist_init(&sl, &a), 0);
	for (size_t i = 0; i < n; i++)
		add(&sl, order[i], 1);
	check_structure(&sl, n);
	size_t i = 0;
	for (struct sl_node *x = skiplist_first(&sl); x; x = skiplist_next(x)) {
		uint64_t k, s;
		FAST_TRUE(node_problem(x, &k, &s) == NULL);
		FAST_TRUE(i < n);
		out[i++] = k;
	}
	FAST_EQ(i, n);
	/* every key (and the gap before it) seeks to itself */
	char buf[32];
	for (size_t j = 0; j < n; j++) {
		uint64_t k, s;
		struct sl_node *x = skiplist_seek(&sl, target(buf, out[j], SEQNO_MAX));
		FAST_TRUE(x != NULL);
		FAST_TRUE(node_problem(x, &k, &s) == NULL);
		FAST_EQ(k, out[j]);
		if (out[j] % 2 == 0 && out[j] > 0) { /* odd numbers are never keys here: a gap */
			x = skiplist_seek(&sl, target(buf, out[j] - 1, SEQNO_MAX));
			FAST_TRUE(x != NULL);
			FAST_TRUE(node_problem(x, &k, &s) == NULL);
			FAST_EQ(k, out[j]);
		}
	}
	FAST_TRUE(skiplist_seek(&sl, target(buf, out[n - 1] + 1, SEQNO_MAX)) == NULL);
	arena_free(&a);
}

START_TEST(test_fast_path_matches_random_order)
{
	struct rng r = {test_seed("skiplist_fast_path")};
	size_t n = 4000 * (size_t)test_scale();
	uint64_t *asc = malloc(n * sizeof *asc), *order = malloc(n * sizeof *order);
	uint64_t *got_asc = malloc(n * sizeof *asc), *got = malloc(n * sizeof *asc);
	ck_assert(asc && order && got_asc && got);
	for (size_t i = 0; i < n; i++)
		asc[i] = 2 * i + 2; /* even: odd numbers are gaps */

	build_and_scan(asc, n, got_asc); /* pure fast path after the first insert */
	ck_assert_mem_eq(got_asc, asc, n * sizeof *asc);

	memcpy(order, asc, n * sizeof *asc);
	shuffle(order, n, &r);
	build_and_scan(order, n, got); /* pure slow path */
	ck_assert_mem_eq(got, asc, n * sizeof *asc);

	/* Descending: the hint never applies. */
	for (size_t i = 0; i < n; i++)
		order[i] = asc[n - 1 - i];
	build_and_scan(order, n, got);
	ck_assert_mem_eq(got, asc, n * sizeof *asc);

	/* Mixed: ascending runs that start anywhere, so the hint is used with a successor in place
	 * (keys land between the last insert and an existing node) and is refused when a run jumps. */
	size_t m = 0;
	uint64_t *used = calloc(n, sizeof *used);
	ck_assert_ptr_nonnull(used);
	while (m < n) {
		size_t start = (size_t)rng_below(&r, n), len = 1 + (size_t)rng_below(&r, 50);
		for (size_t j = start; j < n && len > 0; j++) {
			if (used[j])
				continue;
			used[j] = 1;
			order[m++] = asc[j];
			len--;
		}
		if (len > 0) /* ran off the end: wrap to the first unused */
			for (size_t j = 0; j < n && len > 0; j++)
				if (!used[j]) {
					used[j] = 1;
					order[m++] = asc[j];
					len--;
				}
	}
	build_and_scan(order, n, got);
	ck_assert_mem_eq(got, asc, n * sizeof *asc);

	/* First and last, then everything in between ascending: every insert after the second takes the
	 * fast path with a successor present. */
	order[0] = asc[0];
	order[1] = asc[n - 1];
	for (size_t i = 1; i + 1 < n; i++)
		order[i + 1] = asc[i];
	build_and_scan(order, n, got);
	ck_assert_mem_eq(got, asc, n * sizeof *asc);

	free(used);
	free(asc);
	free(order);
	free(got_asc);
	free(got);
}
END_TEST

/* ---------------------------------------------------------------- concurrent readers */

#define NREADERS 3
#define REMEMBER 256

struct shared {
	struct skiplist sl;
	_Atomic int done;
	_Atomic size_t inserted; /* published after each insert */
	uint64_t seed;
};

struct reader {
	struct shared *sh;
	int id;
	/* Results, read by the main thread after join. */
	char error[200];
	uint64_t scans, seeks, max_seen;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct shared *sh = rd->sh;
	struct rng r = {sh->seed ^ (uint64_t)(rd->id + 1) * 0x1234567ULL};
	uint64_t seen[REMEMBER];
	size_t nseen = 0;
	size_t last_count = 0;
	char buf[32];
	int final_pass = 0;
	for (;;) {
		/* Take `done` before scanning: a scan that starts after it must see every insert. */
		if (atomic_load(&sh->done))
			final_pass = 1;
		size_t floor = atomic_load(&sh->inserted);
		/* Full scan: sorted, well-formed, never fewer nodes than before. */
		size_t count = 0;
		const struct sl_node *prev = NULL;
		for (const struct sl_node *x = skiplist_first(&sh->sl); x; x = skiplist_next(x)) {
			uint64_t k, s;
			const char *why = node_problem(x, &k, &s);
			if (why) {
				snprintf(rd->error, sizeof rd->error, "scan: %s", why);
				return NULL;
			}
			if (prev && ikey_cmp(sl_node_ikey(prev), sl_node_ikey(x)) >= 0) {
				snprintf(rd->error, sizeof rd->error, "scan: out of order");
				return NULL;
			}
			if (nseen < REMEMBER)
				seen[nseen++] = k;
			else if (rng_below(&r, 8) == 0)
				seen[rng_below(&r, REMEMBER)] = k;
			prev = x;
			count++;
		}
		if (count < last_count || count < floor) {
			snprintf(rd->error, sizeof rd->error, "scan saw %zu nodes, earlier %zu, published %zu", count,
				 last_count, floor);
			return NULL;
		}
		last_count = count;
		rd->scans++;
		/* Seeks: a key once seen is found again, exactly. */
		for (int i = 0; i < 64 && nseen; i++) {
			uint64_t k = seen[rng_below(&r, nseen)], kk = 0, ss = 0;
			const struct sl_node *x = skiplist_seek(&sh->sl, target(buf, k, SEQNO_MAX));
			const char *why = x ? node_problem(x, &kk, &ss) : "seek found nothing";
			if (why || kk != k) {
				snprintf(rd->error, sizeof rd->error, "seek %llu: %s (got %llu)", (unsigned long long)k,
					 why ? why : "wrong key", why ? 0ULL : (unsigned long long)kk);
				return NULL;
			}
			if (k > rd->max_seen)
				rd->max_seen = k;
			rd->seeks++;
		}
		/* Random seeks: the result is >= the target and well-formed. */
		for (int i = 0; i < 16; i++) {
			uint64_t k = rng_below(&r, 1u << 22), kk = 0, ss = 0;
			const struct sl_node *x = skiplist_seek(&sh->sl, target(buf, k, SEQNO_MAX));
			if (x && (node_problem(x, &kk, &ss) || kk < k)) {
				snprintf(rd->error, sizeof rd->error, "random seek %llu went wrong", (unsigned long long)k);
				return NULL;
			}
		}
		if (final_pass) {
			if (count != atomic_load(&sh->inserted))
				snprintf(rd->error, sizeof rd->error, "final scan saw %zu of %zu nodes", count,
					 atomic_load(&sh->inserted));
			return NULL;
		}
	}
}

START_TEST(test_concurrent_readers)
{
	struct shared *sh = calloc(1, sizeof *sh);
	ck_assert_ptr_nonnull(sh);
	struct arena a;
	arena_init(&a, 1 << 16);
	ck_assert_int_eq(skiplist_init(&sh->sl, &a), 0);
	sh->seed = test_seed("skiplist_concurrent_readers");
	struct rng r = {sh->seed};
	struct reader rd[NREADERS];
	pthread_t th[NREADERS];
	for (int i = 0; i < NREADERS; i++) {
		memset(&rd[i], 0, sizeof rd[i]);
		rd[i].sh = sh;
		rd[i].id = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &rd[i]), 0);
	}
	/* The writer: ascending keys (fast path) interleaved with random ones (full descents). Random keys
	 * are odd, ascending ones even, so all are distinct; a key repeats only with a new seqno. */
	size_t n = 30000 * (size_t)test_scale();
	uint64_t seq = 1, asc = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t k;
		if (rng_below(&r, 3) == 0)
			k = 2 * rng_below(&r, 1u << 21) + 1;
		else
			k = 2 * asc++;
		add(&sh->sl, k, seq++);
		atomic_store(&sh->inserted, i + 1);
	}
	atomic_store(&sh->done, 1);
	for (int i = 0; i < NREADERS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < NREADERS; i++) {
		ck_assert_msg(rd[i].error[0] == 0, "reader %d: %s", i, rd[i].error);
		ck_assert_uint_ge(rd[i].scans, 1);
	}
	check_structure(&sh->sl, n);
	arena_free(&a);
	free(sh);
}
END_TEST

Suite *skiplist_suite(void)
{
	Suite *s = suite_create("skiplist");
	TCase *tc = tcase_create("skiplist");
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_versions_and_seek);
	tcase_add_test(tc, test_fast_path_matches_random_order);
	tcase_add_test(tc, test_concurrent_readers);
	suite_add_tcase(s, tc);
	return s;
}
