/* test_rangedel.c - fragmented range tombstones: lists, the memtable's map, snapshots, cursors, vs a model. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbformat.h"
#include "lsm.h"
#include "rangedel.h"
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

/* ---------------------------------------------------------------- keys and the brute-force model */

/* The key space: "" and the strings of 1-2 letters from a..f (and "f\xff"), which give prefixes,
 * neighbours and empty ranges aplenty. */
#define NKEYS 46
static char keys[NKEYS][4];
static size_t klen[NKEYS];

static void init_keys(void)
{
	int n = 0;
	klen[n++] = 0; /* "" */
	for (char a = 'a'; a <= 'f'; a++) {
		keys[n][0] = a;
		klen[n++] = 1;
		for (char b = 'a'; b <= 'f'; b++) {
			keys[n][0] = a;
			keys[n][1] = b;
			klen[n++] = 2;
		}
	}
	keys[n][0] = 'f';
	keys[n][1] = (char)0xff;
	klen[n++] = 2;
	ck_assert_int_eq(n, 44);
	keys[n][0] = 'g';
	klen[n++] = 1;
	keys[n][0] = 'z';
	klen[n++] = 1;
	ck_assert_int_eq(n, NKEYS);
}

static struct slice K(int i)
{
	return slice_make(keys[i], klen[i]);
}

/* Query keys: every key of the space plus points between them ("ab\0"), below and above all. */
static int query_key(int q, char *buf, struct slice *out)
{
	if (q < NKEYS) {
		*out = K(q);
		return 1;
	}
	q -= NKEYS;
	if (q < NKEYS) {
		memcpy(buf, keys[q], klen[q]);
		buf[klen[q]] = 0;
		*out = slice_make(buf, klen[q] + 1);
		return 1;
	}
	return 0;
}

static uint64_t brute(const struct rd_tombstone *t, size_t n, struct slice key, uint64_t snap)
{
	uint64_t best = 0;
	for (size_t i = 0; i < n; i++)
		if (t[i].seq <= snap && t[i].seq > best && slice_cmp(t[i].begin, key) <= 0 && slice_cmp(key, t[i].end) < 0)
			best = t[i].seq;
	return best;
}

/* brute() for every snapshot 0..41 at once (seqnos in these tests are at most 40). */
static void brute_all(const struct rd_tombstone *t, size_t n, struct slice key, uint64_t want[42])
{
	int covers[42] = {0};
	for (size_t i = 0; i < n; i++)
		if (slice_cmp(t[i].begin, key) <= 0 && slice_cmp(key, t[i].end) < 0) {
			FAST_TRUE(t[i].seq <= 40);
			covers[t[i].seq] = 1;
		}
	uint64_t best = 0;
	for (uint64_t snap = 0; snap < 42; snap++) {
		if (covers[snap])
			best = snap;
		want[snap] = best;
	}
}

/* n random tombstones over the key space (some empty or inverted), seqnos 1..40 (some repeated). */
static void random_tombstones(struct rd_tombstone *t, size_t n, struct rng *r)
{
	for (size_t i = 0; i < n; i++) {
		int a = (int)rng_below(r, NKEYS), b = (int)rng_below(r, NKEYS);
		if (rng_below(r, 5) && a > b) { /* mostly proper ranges */
			int x = a;
			a = b;
			b = x;
		}
		t[i].begin = K(a);
		t[i].end = K(b);
		t[i].seq = 1 + rng_below(r, 40);
	}
}

/* The list is well formed: fragments sorted and disjoint, non-empty, seqnos strictly descending. */
static void check_list_shape(const struct rd_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct rd_frag *f = &l->frags[i];
		FAST_TRUE(slice_cmp(f->begin, f->end) < 0);
		FAST_TRUE(f->nseq >= 1);
		for (uint32_t j = 1; j < f->nseq; j++)
			FAST_TRUE(f->seqs[j - 1] > f->seqs[j]);
		if (i)
			FAST_TRUE(slice_cmp(l->frags[i - 1].end, f->begin) <= 0);
	}
}

/* Every fragment's seqnos are exactly the tombstones covering it (they cover all of it or none). */
static void check_list_exact(const struct rd_list *l, const struct rd_tombstone *t, size_t n)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct rd_frag *f = &l->frags[i];
		uint64_t want[64];
		uint32_t nw = 0;
		for (uint64_t s = 40; s >= 1; s--) {
			int covers = 0;
			for (size_t j = 0; j < n; j++)
				if (t[j].seq == s && slice_cmp(t[j].begin, f->begin) <= 0 && slice_cmp(f->end, t[j].end) <= 0 &&
				    slice_cmp(t[j].begin, t[j].end) < 0)
					covers = 1;
			if (covers)
				want[nw++] = s;
		}
		FAST_EQ(f->nseq, nw);
		for (uint32_t j = 0; j < nw; j++)
			FAST_EQ(f->seqs[j], want[j]);
	}
}

/* covering() answers for every query key and snapshot agree with the model. */
static void check_answers(const struct rd_list *l, const struct rd_tombstone *t, size_t n, const char *what)
{
	char buf[8];
	struct slice key;
	uint64_t want[42];
	for (int q = 0; query_key(q, buf, &key); q++) {
		brute_all(t, n, key, want);
		for (uint64_t snap = 0; snap <= 41; snap++) {
			uint64_t got = rd_list_covering(l, key, snap);
			if (got != want[snap])
				ck_abort_msg("%s: key '%.*s' snap %llu: got %llu want %llu", what, (int)key.len,
					     key.data, (unsigned long long)snap, (unsigned long long)got,
					     (unsigned long long)want[snap]);
		}
		FAST_EQ(rd_list_covering(l, key, SEQNO_MAX), want[41]);
		long f = rd_list_find(l, key);
		if (want[41] == 0) {
			FAST_TRUE(f == -1);
		} else {
			FAST_TRUE(f >= 0);
			FAST_TRUE(slice_cmp(l->frags[f].begin, key) <= 0);
			FAST_TRUE(slice_cmp(key, l->frags[f].end) < 0);
		}
	}
}

/* ---------------------------------------------------------------- rd_list_build */

START_TEST(test_build_known)
{
	init_keys();
	/* [b, e)@5, [c, f)@9, [a, c)@3, and an empty [d, d)@50 */
	struct rd_tombstone t[] = {
		{slice_make("b", 1), slice_make("e", 1), 5},
		{slice_make("c", 1), slice_make("f", 1), 9},
		{slice_make("a", 1), slice_make("c", 1), 3},
		{slice_make("d", 1), slice_make("d", 1), 50},
	};
	struct rd_list l;
	ck_assert_int_eq(rd_list_build(&l, t, 4), 0);
	check_list_shape(&l);
	/* fragments: [a,b){3} [b,c){5,3} [c,e){9,5} [e,f){9} */
	ck_assert_uint_eq(l.n, 4);
	const char *b[] = {"a", "b", "c", "e"}, *e[] = {"b", "c", "e", "f"};
	const uint64_t s[4][2] = {{3, 0}, {5, 3}, {9, 5}, {9, 0}};
	const uint32_t ns[] = {1, 2, 2, 1};
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(slice_cmp(l.frags[i].begin, slice_make(b[i], 1)), 0);
		ck_assert_int_eq(slice_cmp(l.frags[i].end, slice_make(e[i], 1)), 0);
		ck_assert_uint_eq(l.frags[i].nseq, ns[i]);
		for (uint32_t j = 0; j < ns[i]; j++)
			ck_assert_uint_eq(l.frags[i].seqs[j], s[i][j]);
	}
	ck_assert_uint_eq(rd_list_covering(&l, slice_make("cz", 2), SEQNO_MAX), 9);
	ck_assert_uint_eq(rd_list_covering(&l, slice_make("cz", 2), 8), 5);
	ck_assert_uint_eq(rd_list_covering(&l, slice_make("cz", 2), 4), 0);
	ck_assert_uint_eq(rd_list_covering(&l, slice_make("d", 1), 100), 9); /* the empty range hides nothing */
	ck_assert_uint_eq(rd_list_covering(&l, slice_make("f", 1), 100), 0); /* ends are exclusive */
	ck_assert_uint_eq(rd_list_covering(&l, slice_make("a", 1), 3), 3);   /* begins inclusive */
	ck_assert_uint_eq(rd_list_covering(&l, slice_make("", 0), 100), 0);
	/* the list owns its keys: the inputs may go away */
	ck_assert_ptr_ne(l.frags[0].begin.data, t[2].begin.data);
	rd_list_free(&l);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_ptr_null(l.frags);

	/* empty inputs */
	ck_assert_int_eq(rd_list_build(&l, t, 0), 0);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_ptr_null(l.frags);
	ck_assert_uint_eq(rd_list_covering(&l, slice_make("a", 1), 100), 0);
	ck_assert_int_eq(rd_list_find(&l, slice_make("a", 1)), -1);
	rd_list_free(&l);
	ck_assert_int_eq(rd_list_build(&l, t + 3, 1), 0); /* only an empty range */
	ck_assert_uint_eq(l.n, 0);
	rd_list_free(&l);
}
END_TEST

START_TEST(test_build_vs_model)
{
	init_keys();
	struct rng r = {test_seed("rangedel_build_vs_model")};
	for (int round = 0; round < 200 * test_scale(); round++) {
		size_t n = 1 + (size_t)rng_below(&r, round % 10 == 0 ? 40 : 8);
		struct rd_tombstone t[40];
		random_tombstones(t, n, &r);
		struct rd_list l;
		ck_assert_int_eq(rd_list_build(&l, t, n), 0);
		check_list_shape(&l);
		check_list_exact(&l, t, n);
		check_answers(&l, t, n, "rd_list_build");
		rd_list_free(&l);
	}
}
END_TEST

/* ---------------------------------------------------------------- cursors */

START_TEST(test_cursor)
{
	init_keys();
	struct rng r = {test_seed("rangedel_cursor")};
	char buf[8];
	for (int round = 0; round < 200; round++) {
		size_t n = 1 + (size_t)rng_below(&r, 10);
		struct rd_tombstone t[10];
		random_tombstones(t, n, &r);
		struct rd_list l;
		ck_assert_int_eq(rd_list_build(&l, t, n), 0);
		uint64_t snap = rng_below(&r, 3) ? SEQNO_MAX : rng_below(&r, 42);
		/* ascending visits, some keys repeated, some skipped */
		struct rd_cursor c;
		rd_cursor_init(&c, &l);
		struct slice key;
		for (int q = 0; q < NKEYS; q++) {
			if (rng_below(&r, 4) == 0)
				continue;
			int reps = rng_below(&r, 5) == 0 ? 2 : 1;
			for (int rep = 0; rep < reps; rep++)
				FAST_EQ(rd_cursor_covering(&c, K(q), snap), brute(t, n, K(q), snap));
			/* the point just after it (still ascending) */
			memcpy(buf, keys[q], klen[q]);
			buf[klen[q]] = 0;
			key = slice_make(buf, klen[q] + 1);
			FAST_EQ(rd_cursor_covering(&c, key, snap), brute(t, n, key, snap));
		}
		/* seek resets the cursor anywhere, backwards too */
		for (int s = 0; s < 5; s++) {
			int q0 = (int)rng_below(&r, NKEYS);
			rd_cursor_seek(&c, K(q0));
			for (int q = q0; q < NKEYS; q++)
				FAST_EQ(rd_cursor_covering(&c, K(q), snap), brute(t, n, K(q), snap));
		}
		rd_list_free(&l);
	}
	/* a cursor over an empty list */
	struct rd_list l;
	ck_assert_int_eq(rd_list_build(&l, NULL, 0), 0);
	struct rd_cursor c;
	rd_cursor_init(&c, &l);
	ck_assert_uint_eq(rd_cursor_covering(&c, slice_make("a", 1), 5), 0);
	rd_cursor_seek(&c, slice_make("a", 1));
	ck_assert_uint_eq(rd_cursor_covering(&c, slice_make("b", 1), 5), 0);
}
END_TEST

/* ---------------------------------------------------------------- the mutable map */

/* Incremental adds answer like a list built from the same raw tombstones, at every step. */
START_TEST(test_map_vs_list)
{
	init_keys();
	struct rng r = {test_seed("rangedel_map_vs_list")};
	for (int round = 0; round < 25 * test_scale(); round++) {
		size_t n = 1 + (size_t)rng_below(&r, 30);
		struct rd_tombstone t[30];
		random_tombstones(t, n, &r);
		struct rd_map *m = rd_map_new();
		ck_assert_ptr_nonnull(m);
		ck_assert_uint_eq(rd_map_count(m), 0);
		char buf[8];
		struct slice key;
		for (size_t i = 0; i < n; i++) {
			ck_assert_int_eq(rd_map_add(m, t[i].begin, t[i].end, t[i].seq), 0);
			/* the map itself, against the model of the first i+1 tombstones */
			/* after each add: the map against the model of the tombstones so far */
			uint64_t want[42];
			for (int q = 0; query_key(q, buf, &key); q++) {
				brute_all(t, i + 1, key, want);
				for (uint64_t snap = 0; snap <= 41; snap++)
					FAST_EQ(rd_map_covering(m, key, snap), want[snap]);
			}
		}
		/* raw tombstones: every one, in insertion order, copied (not the caller's pointers) */
		ck_assert_uint_eq(rd_map_count(m), n);
		const struct rd_tombstone *raw = rd_map_raw(m);
		for (size_t i = 0; i < n; i++) {
			ck_assert_int_eq(slice_cmp(raw[i].begin, t[i].begin), 0);
			ck_assert_int_eq(slice_cmp(raw[i].end, t[i].end), 0);
			ck_assert_uint_eq(raw[i].seq, t[i].seq);
			if (t[i].begin.len)
				ck_assert_ptr_ne(raw[i].begin.data, t[i].begin.data);
		}
		/* an unbounded snapshot answers like rd_list_build of the raw tombstones */
		struct rd_list snap_l, built;
		ck_assert_int_eq(rd_map_snapshot(m, slice_make(NULL, 0), slice_make(NULL, 0), &snap_l), 0);
		ck_assert_int_eq(rd_list_build(&built, raw, n), 0);
		check_list_shape(&snap_l);
		check_list_exact(&snap_l, t, n);
		check_answers(&snap_l, t, n, "rd_map_snapshot");
		check_answers(&built, t, n, "rd_list_build");
		rd_list_free(&snap_l);
		rd_list_free(&built);
		rd_map_free(m);
	}
	rd_map_free(NULL);
}
END_TEST

/* Snapshots bounded by [lo, hi): exactly the fragments that overlap it, answering like the full map
 * inside the bounds. */
START_TEST(test_map_snapshot_bounds)
{
	init_keys();
	struct rng r = {test_seed("rangedel_map_snapshot_bounds")};
	for (int round = 0; round < 100 * test_scale(); round++) {
		size_t n = 1 + (size_t)rng_below(&r, 20);
		struct rd_tombstone t[20];
		random_tombstones(t, n, &r);
		struct rd_map *m = rd_map_new();
		ck_assert_ptr_nonnull(m);
		for (size_t i = 0; i < n; i++)
			ck_assert_int_eq(rd_map_add(m, t[i].begin, t[i].end, t[i].seq), 0);
		struct rd_list full;
		ck_assert_int_eq(rd_map_snapshot(m, slice_make(NULL, 0), slice_make(NULL, 0), &full), 0);
		for (int b = 0; b < 10; b++) {
			int lo_i = (int)rng_below(&r, NKEYS + 1) - 1, hi_i = (int)rng_below(&r, NKEYS + 1) - 1;
			struct slice lo = lo_i < 0 ? slice_make(NULL, 0) : K(lo_i);
			struct slice hi = hi_i < 0 ? slice_make(NULL, 0) : K(hi_i);
			struct rd_list l;
			ck_assert_int_eq(rd_map_snapshot(m, lo, hi, &l), 0);
			check_list_shape(&l);
			/* the fragments of the full list that overlap [lo, hi), in order */
			size_t j = 0;
			for (size_t i = 0; i < full.n; i++) {
				const struct rd_frag *f = &full.frags[i];
				int overlaps = (!lo.data || slice_cmp(f->end, lo) > 0) && (!hi.data || slice_cmp(f->begin, hi) < 0);
				if (!overlaps)
					continue;
				ck_assert_uint_lt(j, l.n);
				ck_assert_int_eq(slice_cmp(l.frags[j].begin, f->begin), 0);
				ck_assert_int_eq(slice_cmp(l.frags[j].end, f->end), 0);
				ck_assert_uint_eq(l.frags[j].nseq, f->nseq);
				ck_assert_mem_eq(l.frags[j].seqs, f->seqs, f->nseq * sizeof *f->seqs);
				j++;
			}
			ck_assert_uint_eq(j, l.n);
			/* inside the bounds, answers match the model */
			char buf[8];
			struct slice key;
			for (int q = 0; query_key(q, buf, &key); q++) {
				if ((lo.data && slice_cmp(key, lo) < 0) || (hi.data && slice_cmp(key, hi) >= 0))
					continue;
				for (uint64_t snap = 0; snap <= 41; snap += 7)
					FAST_EQ(rd_list_covering(&l, key, snap), brute(t, n, key, snap));
			}
			rd_list_free(&l);
		}
		rd_list_free(&full);
		rd_map_free(m);
	}
	/* an empty map gives an empty list */
	struct rd_map *m = rd_map_new();
	struct rd_list l;
	ck_assert_int_eq(rd_map_snapshot(m, slice_make("a", 1), slice_make("z", 1), &l), 0);
	ck_assert_uint_eq(l.n, 0);
	rd_list_free(&l);
	ck_assert_uint_eq(rd_map_covering(m, slice_make("a", 1), 10), 0);
	rd_map_free(m);
}
END_TEST

/* Many tombstones with long keys: the map and list scale (each add splits at most two fragments). */
START_TEST(test_many)
{
	struct rng r = {test_seed("rangedel_many")};
	enum { N = 3000 };
	static char kb[2 * N][24];
	struct rd_tombstone *t = malloc(N * sizeof *t);
	ck_assert_ptr_nonnull(t);
	struct rd_map *m = rd_map_new();
	for (int i = 0; i < N; i++) {
		uint64_t a = rng_below(&r, 100000), len = 1 + rng_below(&r, 300);
		int bl = snprintf(kb[2 * i], 24, "k%08llu", (unsigned long long)a);
		int el = snprintf(kb[2 * i + 1], 24, "k%08llu", (unsigned long long)(a + len));
		t[i].begin = slice_make(kb[2 * i], (size_t)bl);
		t[i].end = slice_make(kb[2 * i + 1], (size_t)el);
		t[i].seq = 1 + (uint64_t)i;
		ck_assert_int_eq(rd_map_add(m, t[i].begin, t[i].end, t[i].seq), 0);
	}
	struct rd_list l, s;
	ck_assert_int_eq(rd_list_build(&l, t, N), 0);
	ck_assert_int_eq(rd_map_snapshot(m, slice_make(NULL, 0), slice_make(NULL, 0), &s), 0);
	check_list_shape(&l);
	check_list_shape(&s);
	char k[24];
	for (int q = 0; q < 2000; q++) {
		int kl = snprintf(k, sizeof k, "k%08llu", (unsigned long long)rng_below(&r, 100400));
		struct slice key = slice_make(k, (size_t)kl);
		uint64_t snap = rng_below(&r, N + 2);
		uint64_t want = brute(t, N, key, snap);
		FAST_EQ(rd_list_covering(&l, key, snap), want);
		FAST_EQ(rd_list_covering(&s, key, snap), want);
		FAST_EQ(rd_map_covering(m, key, snap), want);
	}
	rd_list_free(&l);
	rd_list_free(&s);
	rd_map_free(m);
	free(t);
}
END_TEST

Suite *rangedel_suite(void)
{
	Suite *s = suite_create("rangedel");
	TCase *tc = tcase_create("rangedel");
	tcase_add_test(tc, test_build_known);
	tcase_add_test(tc, test_build_vs_model);
	tcase_add_test(tc, test_cursor);
	tcase_add_test(tc, test_map_vs_list);
	tcase_add_test(tc, test_map_snapshot_bounds);
	tcase_add_test(tc, test_many);
	suite_add_tcase(s, tc);
	return s;
}
