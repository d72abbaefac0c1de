/* test_bloom.c - per-table bloom filters: no false negatives, false-positive rate, layout, malformed filters. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bloom.h"
#include "lsm.h"
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

static struct slice key_of(char *buf, const char *tag, uint64_t salt, uint64_t i)
{
	int n = snprintf(buf, 48, "%s-%llx-%llu", tag, (unsigned long long)salt, (unsigned long long)i);
	return slice_make(buf, (size_t)n);
}

/* Build a filter over n keys "in-SALT-i"; the filter is the whole of out. */
static void build(struct buf *out, int bits, uint64_t salt, size_t n)
{
	struct bloom_builder b;
	bloom_builder_init(&b, bits);
	char k[48];
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(bloom_add(&b, key_of(k, "in", salt, i)), 0);
	ck_assert_int_eq(bloom_finish(&b, out), 0);
	bloom_builder_free(&b);
}

START_TEST(test_no_false_negatives_and_fp_rate)
{
	uint64_t salt = test_seed("bloom_fp_rate");
	size_t n = 20000, absent = 100000 * (size_t)test_scale();
	struct buf f = {0};
	build(&f, 10, salt, n);
	struct slice filter = slice_make(f.data, f.len);
	FAST_EQ(bloom_check(filter), 0);
	/* layout: ceil(n * 10 / 512) lines of 64 bytes, probes = 6 (10 * ln 2, rounded down), line count */
	uint32_t lines = (uint32_t)((n * 10 + 511) / 512);
	FAST_EQ(f.len, (size_t)lines * 64 + 5);
	FAST_EQ((unsigned char)f.data[f.len - 5], 6);
	FAST_EQ(get_u32le(f.data + f.len - 4), lines);

	char k[48];
	for (size_t i = 0; i < n; i++)
		if (bloom_may_contain(filter, bloom_hash(key_of(k, "in", salt, i))) != 1)
			ck_abort_msg("false negative for key %zu", i);
	size_t fp = 0;
	for (size_t i = 0; i < absent; i++)
		fp += bloom_may_contain(filter, bloom_hash(key_of(k, "out", salt, i))) == 1;
	double rate = (double)fp / (double)absent;
	fprintf(stderr, "bloom: %zu false positives in %zu absent keys (%.3f %%)\n", fp, absent, 100 * rate);
	ck_assert_msg(rate < 0.02, "false-positive rate %.3f %% >= 2 %%", 100 * rate);
	/* and the filter does filter: a broken probe that sets every bit would pass the check above only
	 * if it also failed this one */
	FAST_TRUE(fp > 0);
	buf_free(&f);
}
END_TEST

/* More bits per key, fewer false positives; probes are capped at 30. */
START_TEST(test_bits_per_key)
{
	uint64_t salt = test_seed("bloom_bits_per_key");
	char k[48];
	size_t prev_fp = SIZE_MAX;
	const int bits[] = {4, 10, 20}, probes[] = {2, 6, 13}; /* ln 2 * bits, rounded down */
	for (int b = 0; b < 3; b++) {
		struct buf f = {0};
		build(&f, bits[b], salt, 5000);
		struct slice filter = slice_make(f.data, f.len);
		FAST_EQ((unsigned char)f.data[f.len - 5], probes[b]);
		size_t fp = 0;
		for (size_t i = 0; i < 20000; i++)
			fp += (size_t)bloom_may_contain(filter, bloom_hash(key_of(k, "out", salt, i)));
		for (size_t i = 0; i < 5000; i++)
			FAST_EQ(bloom_may_contain(filter, bloom_hash(key_of(k, "in", salt, i))), 1);
		FAST_TRUE(fp < prev_fp);
		prev_fp = fp;
		buf_free(&f);
	}
	struct buf f = {0};
	build(&f, 100, salt, 100);
	FAST_EQ((unsigned char)f.data[f.len - 5], 30);
	FAST_EQ(bloom_check(slice_make(f.data, f.len)), 0);
	buf_free(&f);
	build(&f, 0, salt, 100); /* degenerate but well-formed: one probe, one line */
	FAST_EQ((unsigned char)f.data[f.len - 5], 1);
	FAST_EQ(f.len, 64 + 5);
	for (size_t i = 0; i < 100; i++)
		FAST_EQ(bloom_may_contain(slice_make(f.data, f.len), bloom_hash(key_of(k, "in", salt, i))), 1);
	buf_free(&f);
}
END_TEST

START_TEST(test_empty_and_reuse)
{
	struct bloom_builder b;
	bloom_builder_init(&b, 10);
	struct buf out = {0};
	ck_assert_int_eq(buf_append(&out, "prefix", 6), 0); /* the filter is appended after what is there */
	ck_assert_int_eq(bloom_finish(&b, &out), 0);
	ck_assert_uint_eq(out.len, 6 + 64 + 5);
	ck_assert_mem_eq(out.data, "prefix", 6);
	struct slice empty = slice_make(out.data + 6, out.len - 6);
	ck_assert_int_eq(bloom_check(empty), 0);
	char k[48];
	for (int i = 0; i < 1000; i++) /* no key was added: nothing may be in it */
		ck_assert_int_eq(bloom_may_contain(empty, bloom_hash(key_of(k, "x", 1, (uint64_t)i))), 0);

	/* finish empties the builder: a second filter holds only the keys added after */
	ck_assert_int_eq(bloom_add(&b, slice_make("one", 3)), 0);
	out.len = 0;
	ck_assert_int_eq(bloom_finish(&b, &out), 0);
	struct slice f1 = slice_make(out.data, out.len);
	ck_assert_int_eq(bloom_may_contain(f1, bloom_hash(slice_make("one", 3))), 1);
	struct buf out2 = {0};
	ck_assert_int_eq(bloom_add(&b, slice_make("two", 3)), 0);
	ck_assert_int_eq(bloom_finish(&b, &out2), 0);
	struct slice f2 = slice_make(out2.data, out2.len);
	ck_assert_int_eq(bloom_may_contain(f2, bloom_hash(slice_make("two", 3))), 1);
	/* with 6 probes into 512 bits holding one key, "one" shows up in f2 only by a 1-in-10^13 fluke */
	ck_assert_int_eq(bloom_may_contain(f2, bloom_hash(slice_make("one", 3))), 0);
	buf_free(&out);
	buf_free(&out2);
	bloom_builder_free(&b);
}
END_TEST

/* Consecutive versions of one key are stored once: they do not inflate the filter. */
START_TEST(test_consecutive_duplicates)
{
	struct bloom_builder b;
	bloom_builder_init(&b, 10);
	char k[48];
	for (int i = 0; i < 51; i++) /* 51 keys * 10 bits = 510 bits: one line */
		for (int rep = 0; rep < (i == 7 ? 20 : 1); rep++)
			ck_assert_int_eq(bloom_add(&b, key_of(k, "dup", 0, (uint64_t)i)), 0);
	ck_assert_uint_eq(b.n, 51);
	struct buf out = {0};
	ck_assert_int_eq(bloom_finish(&b, &out), 0);
	ck_assert_uint_eq(out.len, 64 + 5);
	ck_assert_uint_eq(b.n, 0);
	/* non-consecutive repeats are kept (the builder does not search): 52 entries, 2 lines */
	ck_assert_int_eq(bloom_add(&b, slice_make("a", 1)), 0);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(bloom_add(&b, key_of(k, "z", 0, (uint64_t)i)), 0);
	ck_assert_int_eq(bloom_add(&b, slice_make("a", 1)), 0);
	ck_assert_uint_eq(b.n, 52);
	out.len = 0;
	ck_assert_int_eq(bloom_finish(&b, &out), 0);
	ck_assert_uint_eq(out.len, 2 * 64 + 5);
	buf_free(&out);
	bloom_builder_free(&b);
}
END_TEST

/* bloom_check rejects malformed filters; bloom_may_contain never hides a key in one (answers 1). */
START_TEST(test_malformed)
{
	struct buf f = {0};
	build(&f, 10, 42, 200); /* 2000 bits: 4 lines */
	ck_assert_uint_eq(f.len, 4 * 64 + 5);
	char *d = malloc(f.len);
	ck_assert_ptr_nonnull(d);
	uint64_t absent_h = 0;
	char k[48];
	/* find a key the intact filter rules out, to see malformed filters answer 1 for it */
	for (uint64_t i = 0;; i++) {
		uint64_t h = bloom_hash(key_of(k, "probe", 42, i));
		if (!bloom_may_contain(slice_make(f.data, f.len), h)) {
			absent_h = h;
			break;
		}
	}
	struct {
		const char *what;
		size_t len;
		int probes;      /* -1: keep */
		int64_t nlines;  /* -1: keep */
	} cases[] = {
		{"empty", 0, -1, -1},
		{"4 bytes", 4, -1, -1},
		{"line count 0", 4 * 64 + 5, -1, 0},
		{"line count too big", 4 * 64 + 5, -1, 5},
		{"line count too small", 4 * 64 + 5, -1, 3},
		{"line count huge", 4 * 64 + 5, -1, 0xffffffff},
		{"truncated", 3 * 64 + 5, -1, -1},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		memcpy(d, f.data, f.len);
		size_t len = cases[c].len;
		if (len >= 5 && len < f.len) { /* truncated: keep the trailer at the new end */
			memcpy(d + len - 5, f.data + f.len - 5, 5);
		}
		if (cases[c].nlines >= 0)
			put_u32le(d + len - 4, (uint32_t)cases[c].nlines);
		char *e = malloc(len ? len : 1);
		ck_assert_ptr_nonnull(e);
		memcpy(e, d, len);
		ck_assert_msg(bloom_check(slice_make(e, len)) == LSM_CORRUPT, "%s: accepted", cases[c].what);
		ck_assert_msg(bloom_may_contain(slice_make(e, len), absent_h) == 1, "%s: hid a key", cases[c].what);
		free(e);
	}
	/* probes 0 and 31 are out of range */
	memcpy(d, f.data, f.len);
	d[f.len - 5] = 0;
	ck_assert_int_eq(bloom_check(slice_make(d, f.len)), LSM_CORRUPT);
	ck_assert_int_eq(bloom_may_contain(slice_make(d, f.len), absent_h), 1);
	d[f.len - 5] = 31;
	ck_assert_int_eq(bloom_check(slice_make(d, f.len)), LSM_CORRUPT);
	d[f.len - 5] = 30;
	ck_assert_int_eq(bloom_check(slice_make(d, f.len)), 0);
	free(d);
	buf_free(&f);
}
END_TEST

Suite *bloom_suite(void)
{
	Suite *s = suite_create("bloom");
	TCase *tc = tcase_create("bloom");
	tcase_add_test(tc, test_no_false_negatives_and_fp_rate);
	tcase_add_test(tc, test_bits_per_key);
	tcase_add_test(tc, test_empty_and_reuse);
	tcase_add_test(tc, test_consecutive_duplicates);
	tcase_add_test(tc, test_malformed);
	suite_add_tcase(s, tc);
	return s;
}
