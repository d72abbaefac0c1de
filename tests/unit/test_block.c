/* test_block.c - prefix-compressed blocks: round trips, seeks, and malformed blocks (bounds-checked). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "dbformat.h"
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

/* ---------------------------------------------------------------- helpers */

/* A copy of bytes in an allocation of exactly len bytes, so ASan catches any read past the end. */
static char *exact_copy(const void *p, size_t len)
{
	char *c = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(c);
	memcpy(c, p, len);
	return c;
}

struct kv {
	char *k, *v;
	size_t kl, vl;
};

static int cmp_kv(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	return slice_cmp(slice_make(x->k, x->kl), slice_make(y->k, y->kl));
}

/* n distinct keys with long shared prefixes (some longer than the iterator's inline key buffer),
 * sorted; values of varying length (some empty). */
static struct kv *make_keys(size_t n, struct rng *r, size_t *count)
{
	static const char *prefixes[] = {"", "a", "user/", "user/alice/", "user/alice/photos/2024/",
					 "zz"};
	struct kv *v = calloc(n, sizeof *v);
	ck_assert_ptr_nonnull(v);
	size_t m = 0;
	while (m < n) {
		char k[400];
		size_t kl;
		const char *pre = prefixes[rng_below(r, 6)];
		if (rng_below(r, 20) == 0) { /* a long key: 100..300 bytes */
			size_t len = 100 + (size_t)rng_below(r, 200);
			memset(k, 'L', len);
			kl = len;
			kl += (size_t)snprintf(k + kl, 32, "%llu", (unsigned long long)rng_below(r, 1000000));
		} else {
			kl = (size_t)snprintf(k, sizeof k, "%s%llu", pre, (unsigned long long)rng_below(r, 100000));
		}
		v[m].k = exact_copy(k, kl);
		v[m].kl = kl;
		m++;
	}
	qsort(v, n, sizeof *v, cmp_kv);
	size_t u = 0; /* drop duplicates */
	for (size_t i = 0; i < n; i++) {
		if (u && v[u - 1].kl == v[i].kl && !memcmp(v[u - 1].k, v[i].k, v[i].kl)) {
			free(v[i].k);
			continue;
		}
		v[u++] = v[i];
	}
	for (size_t i = u; i < n; i++)
		v[i].k = NULL;
	for (size_t i = 0; i < u; i++) {
		char val[64];
		size_t vl = (size_t)rng_below(r, 4) == 0 ? 0 : (size_t)snprintf(val, sizeof val, "value-%zu-%llu", i,
										   (unsigned long long)rng_below(r, 1000));
		v[i].v = exact_copy(val, vl);
		v[i].vl = vl;
	}
	*count = u;
	return v;
}

static void free_keys(struct kv *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].k);
		free(v[i].v);
	}
	free(v);
}

/* The block iterator's current entry is exactly kv. */
static void expect_at(const struct iter *it, const struct kv *kv)
{
	FAST_EQ(it->status, LSM_OK);
	if (!it->valid)
		ck_abort_msg("iterator invalid, expected key %.*s", (int)kv->kl, kv->k);
	FAST_EQ(it->key.len, kv->kl);
	FAST_TRUE(memcmp(it->key.data, kv->k, kv->kl) == 0);
	FAST_EQ(it->value.len, kv->vl);
	if (kv->vl)
		FAST_TRUE(memcmp(it->value.data, kv->v, kv->vl) == 0);
}

/* Build a block of kvs; return an exact-size copy of its contents. */
static char *build(const struct kv *kvs, size_t n, int interval, size_t *len)
{
	struct block_builder bb;
	bb_init(&bb, interval);
	ck_assert(bb_empty(&bb));
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(bb_add(&bb, slice_make(kvs[i].k, kvs[i].kl), slice_make(kvs[i].v, kvs[i].vl)), 0);
	ck_assert(n == 0 || !bb_empty(&bb));
	size_t est = bb_estimate(&bb);
	struct slice c = bb_finish(&bb);
	ck_assert_ptr_nonnull(c.data);
	ck_assert_uint_eq(c.len, est); /* the estimate is exact for a finished block */
	char *copy = exact_copy(c.data, c.len);
	*len = c.len;
	bb_free(&bb);
	return copy;
}

/* ---------------------------------------------------------------- round trips */

static void round_trip(int interval)
{
	char name[64];
	snprintf(name, sizeof name, "block_round_trip_interval_%d", interval);
	struct rng r = {test_seed(name)};
	size_t want = 3000;
	size_t n;
	struct kv *kvs = make_keys(want, &r, &n);
	ck_assert_uint_gt(n, 2000);

	size_t len;
	char *data = build(kvs, n, interval, &len);
	struct block b;
	ck_assert_int_eq(block_parse(&b, data, len), LSM_OK);
	ck_assert_uint_eq(b.nrestarts, (n + (size_t)interval - 1) / (size_t)interval);
	ck_assert_uint_eq(b.size, len - 4 - 4 * (size_t)b.nrestarts);

	/* Scan. */
	struct iter *it = block_iter_new(&b, BLOCK_CMP_BYTES, NULL, NULL);
	ck_assert_ptr_nonnull(it);
	size_t i = 0;
	for (iter_seek_first(it); it->valid; iter_next(it))
		expect_at(it, &kvs[i++]);
	ck_assert_int_eq(it->status, LSM_OK);
	ck_assert_uint_eq(i, n);

	/* Seek to every key, and to just after it (key + "\0" lies strictly between it and the next). */
	char tmp[512];
	for (i = 0; i < n; i++) {
		iter_seek(it, slice_make(kvs[i].k, kvs[i].kl));
		expect_at(it, &kvs[i]);
		memcpy(tmp, kvs[i].k, kvs[i].kl);
		tmp[kvs[i].kl] = 0;
		iter_seek(it, slice_make(tmp, kvs[i].kl + 1));
		if (i + 1 < n) {
			expect_at(it, &kvs[i + 1]);
			iter_next(it); /* moving on after a seek works too */
			if (i + 2 < n)
				expect_at(it, &kvs[i + 2]);
			else
				ck_assert(!it->valid);
		} else {
			ck_assert(!it->valid);
		}
		ck_assert_int_eq(it->status, LSM_OK);
	}
	/* Before everything and after everything. */
	iter_seek(it, slice_make("", 0));
	expect_at(it, &kvs[0]);
	memset(tmp, 0xff, 8);
	iter_seek(it, slice_make(tmp, 8));
	ck_assert(!it->valid);
	ck_assert_int_eq(it->status, LSM_OK);
	iter_destroy(it);

	/* The same block through a stack iterator. */
	struct block_iter bi;
	block_iter_init(&bi, &b, BLOCK_CMP_BYTES);
	for (i = 0; i < n; i += 7) {
		iter_seek(&bi.base, slice_make(kvs[i].k, kvs[i].kl));
		expect_at(&bi.base, &kvs[i]);
	}
	block_iter_cleanup(&bi);
	block_iter_cleanup(&bi); /* idempotent */
	free(data);
	free_keys(kvs, want);
}

START_TEST(test_round_trip_interval_1)
{
	round_trip(1);
}
END_TEST

START_TEST(test_round_trip_interval_16)
{
	round_trip(16);
}
END_TEST

START_TEST(test_round_trip_interval_3)
{
	round_trip(3);
}
END_TEST

/* Internal keys: user key order, then seqno descending; a seek at (key, snap) finds the newest <= snap. */
START_TEST(test_internal_keys)
{
	struct block_builder bb;
	bb_init(&bb, 4);
	char ik[64];
	const char *users[] = {"apple", "apple2", "banana"};
	for (int u = 0; u < 3; u++)
		for (uint64_t s = 50; s >= 10; s -= 10) {
			size_t ul = strlen(users[u]);
			ikey_build(ik, slice_make(users[u], ul), s, s == 30 ? VT_DELETE : VT_VALUE);
			char v[16];
			int vl = snprintf(v, sizeof v, "%s@%llu", users[u], (unsigned long long)s);
			ck_assert_int_eq(bb_add(&bb, slice_make(ik, ul + 8), slice_make(v, (size_t)vl)), 0);
		}
	struct slice c = bb_finish(&bb);
	char *data = exact_copy(c.data, c.len);
	struct block b;
	ck_assert_int_eq(block_parse(&b, data, c.len), 0);
	struct block_iter bi;
	block_iter_init(&bi, &b, BLOCK_CMP_IKEY);
	struct {
		const char *user;
		uint64_t snap;
		const char *want; /* value found, NULL: invalid */
	} cases[] = {
		{"apple", SEQNO_MAX, "apple@50"}, {"apple", 45, "apple@40"}, {"apple", 40, "apple@40"},
		{"apple", 10, "apple@10"},        {"apple", 9, "apple2@50"}, {"apple1", 100, "apple2@50"},
		{"apple2", 35, "apple2@30"},      {"banana", 1, NULL},       {"a", 5, "apple@50"},
		{"c", SEQNO_MAX, NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t ul = strlen(cases[i].user);
		ikey_build(ik, slice_make(cases[i].user, ul), cases[i].snap, VT_SEEK);
		iter_seek(&bi.base, slice_make(ik, ul + 8));
		ck_assert_int_eq(bi.base.status, 0);
		if (!cases[i].want) {
			ck_assert_msg(!bi.base.valid, "case %zu", i);
			continue;
		}
		ck_assert_msg(bi.base.valid, "case %zu", i);
		ck_assert_uint_eq(bi.base.value.len, strlen(cases[i].want));
		ck_assert_mem_eq(bi.base.value.data, cases[i].want, bi.base.value.len);
	}
	/* the delete is an ordinary entry here, with its type in the trailer */
	ikey_build(ik, slice_make("banana", 6), 30, VT_SEEK);
	iter_seek(&bi.base, slice_make(ik, 14));
	ck_assert(bi.base.valid);
	ck_assert_uint_eq(ikey_type(bi.base.key), VT_DELETE);
	ck_assert_uint_eq(ikey_seq(bi.base.key), 30);
	block_iter_cleanup(&bi);
	free(data);
	bb_free(&bb);
}
END_TEST

static int released;
static void count_release(void *arg)
{
	ck_assert_ptr_eq(arg, &released);
	released++;
}

START_TEST(test_empty_block_reset_release)
{
	struct block_builder bb;
	bb_init(&bb, 0); /* 0: the default interval */
	ck_assert_int_eq(bb.interval, 16);
	ck_assert_uint_eq(bb_estimate(&bb), 4);
	struct slice c = bb_finish(&bb);
	ck_assert_uint_eq(c.len, 8); /* one restart (0) and the count (1) */
	ck_assert_uint_eq(get_u32le(c.data), 0);
	ck_assert_uint_eq(get_u32le(c.data + 4), 1);
	char *data = exact_copy(c.data, c.len);
	struct block b;
	ck_assert_int_eq(block_parse(&b, data, c.len), 0);
	ck_assert_uint_eq(b.size, 0);
	released = 0;
	struct iter *it = block_iter_new(&b, BLOCK_CMP_IKEY, count_release, &released);
	ck_assert_ptr_nonnull(it);
	iter_seek_first(it);
	ck_assert(!it->valid);
	ck_assert_int_eq(it->status, 0);
	iter_seek(it, slice_make("anything", 8));
	ck_assert(!it->valid);
	ck_assert_int_eq(it->status, 0);
	ck_assert_int_eq(released, 0);
	iter_destroy(it);
	ck_assert_int_eq(released, 1);
	free(data);

	/* After a reset the builder produces the same bytes as a fresh one. */
	bb_reset(&bb);
	ck_assert(bb_empty(&bb));
	ck_assert_int_eq(bb_add(&bb, slice_make("k1", 2), slice_make("v1", 2)), 0);
	ck_assert_int_eq(bb_add(&bb, slice_make("k2", 2), slice_make("v2", 2)), 0);
	struct slice c2 = bb_finish(&bb);
	struct block_builder fresh;
	bb_init(&fresh, 16);
	ck_assert_int_eq(bb_add(&fresh, slice_make("k1", 2), slice_make("v1", 2)), 0);
	ck_assert_int_eq(bb_add(&fresh, slice_make("k2", 2), slice_make("v2", 2)), 0);
	struct slice c3 = bb_finish(&fresh);
	ck_assert_uint_eq(c2.len, c3.len);
	ck_assert_mem_eq(c2.data, c3.data, c2.len);
	/* layout: k1 entry (0,2,2,"k1","v1") then k2 sharing 1 byte (1,1,2,"2","v2") */
	static const char want[] = "\x00\x02\x02k1v1\x01\x01\x02"
				   "2v2";
	ck_assert_mem_eq(c2.data, want, sizeof want - 1);
	ck_assert_uint_eq(c2.len, sizeof want - 1 + 8);
	bb_free(&fresh);
	bb_free(&bb);
}
END_TEST

/* ---------------------------------------------------------------- malformed blocks */

/* A small block of keys "key00".."key19" -> "vNN" with restart interval 4; offs[i] is entry i's offset. */
static char *small_block(size_t *len, size_t offs[20])
{
	struct block_builder bb;
	bb_init(&bb, 4);
	for (int i = 0; i < 20; i++) {
		char k[16], v[16];
		snprintf(k, sizeof k, "key%02d", i);
		snprintf(v, sizeof v, "v%02d", i);
		offs[i] = bb.buf.len;
		ck_assert_int_eq(bb_add(&bb, slice_make(k, 5), slice_make(v, 3)), 0);
	}
	struct slice c = bb_finish(&bb);
	char *d = exact_copy(c.data, c.len);
	*len = c.len;
	bb_free(&bb);
	return d;
}

START_TEST(test_parse_rejects_bad_restarts)
{
	size_t len, offs[20];
	char *good = small_block(&len, offs);
	struct block b;
	ck_assert_int_eq(block_parse(&b, good, len), 0);
	ck_assert_uint_eq(b.nrestarts, 5);
	char *d = malloc(len);
	ck_assert_ptr_nonnull(d);

	/* shorter than the count itself */
	ck_assert_int_eq(block_parse(&b, good, 0), LSM_CORRUPT);
	ck_assert_int_eq(block_parse(&b, good + len - 3, 3), LSM_CORRUPT);
	/* zero restarts */
	memcpy(d, good, len);
	put_u32le(d + len - 4, 0);
	ck_assert_int_eq(block_parse(&b, d, len), LSM_CORRUPT);
	/* more restarts than fit */
	put_u32le(d + len - 4, (uint32_t)(len / 4));
	ck_assert_int_eq(block_parse(&b, d, len), LSM_CORRUPT);
	put_u32le(d + len - 4, 0xffffffffu);
	ck_assert_int_eq(block_parse(&b, d, len), LSM_CORRUPT);
	/* a restart offset past the entries */
	size_t size = len - 4 - 5 * 4;
	memcpy(d, good, len);
	put_u32le(d + size + 4 * 2, (uint32_t)size + 1);
	ck_assert_int_eq(block_parse(&b, d, len), LSM_CORRUPT);
	put_u32le(d + size + 4 * 2, 0x7fffffffu);
	ck_assert_int_eq(block_parse(&b, d, len), LSM_CORRUPT);
	/* restarts out of order */
	memcpy(d, good, len);
	put_u32le(d + size + 4 * 1, (uint32_t)offs[12]);
	ck_assert_int_eq(block_parse(&b, d, len), LSM_CORRUPT);
	/* a count that eats into the entries still parses (the restarts then are entry bytes), but
	 * whatever it parses to must be bounded: covered by the fuzz test. */
	memcpy(d, good, len);
	ck_assert_int_eq(block_parse(&b, d, len), 0);
	free(d);
	free(good);
}
END_TEST

/* Walk the block every way we can; the walk must end (invalid) with status OK or CORRUPT. Returns the
 * final status of a full scan. */
static int walk(const struct block *b, enum block_cmp cmp, struct rng *r)
{
	struct iter *it = block_iter_new(b, cmp, NULL, NULL);
	FAST_TRUE(it != NULL);
	int steps = 0;
	for (iter_seek_first(it); it->valid; iter_next(it))
		FAST_TRUE(++steps < 10000);
	int scan_status = it->status;
	FAST_TRUE(scan_status == LSM_OK || scan_status == LSM_CORRUPT);
	for (int i = 0; i < 30; i++) {
		char t[16];
		size_t tl = (size_t)snprintf(t, sizeof t, "key%02d", (int)rng_below(r, 25));
		if (cmp == BLOCK_CMP_IKEY) {
			put_u64le(t + tl, rng_next(r));
			tl += 8;
		}
		iter_seek(it, slice_make(t, tl));
		for (steps = 0; it->valid; iter_next(it))
			FAST_TRUE(++steps < 10000);
		FAST_TRUE(it->status == LSM_OK || it->status == LSM_CORRUPT);
	}
	iter_destroy(it);
	return scan_status;
}

/* Targeted damage to the entry area: each must end a scan with LSM_CORRUPT. */
START_TEST(test_mangled_entries_are_corrupt)
{
	size_t len, offs[20];
	char *good = small_block(&len, offs);
	struct rng r = {test_seed("block_mangled_entries")};
	struct {
		const char *what;
		int entry, byte;
		unsigned char val;
	} cases[] = {
		{"value length past the end", 5, 2, 0x7f},
		{"key length past the end", 9, 1, 0x7f},
		{"shared > previous key", 6, 0, 9},
		{"shared on the first entry", 0, 0, 2},
		{"value length varint runs into the key", 19, 2, 0x80},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		char *d = exact_copy(good, len);
		d[offs[cases[c].entry] + (size_t)cases[c].byte] = (char)cases[c].val;
		struct block b;
		ck_assert_int_eq(block_parse(&b, d, len), 0);
		ck_assert_msg(walk(&b, BLOCK_CMP_BYTES, &r) == LSM_CORRUPT, "%s: scan did not report corruption",
			      cases[c].what);
		free(d);
	}
	/* An unterminated varint as the very last bytes of the entry area: the decoder must stop at the
	 * entry area's end (the restart array follows) and not read on into it. */
	{
		char *d = exact_copy(good, len);
		size_t size = len - 4 - 5 * 4;
		d[offs[19]] = 0;
		d[offs[19] + 1] = (char)0x80;
		memset(d + offs[19] + 2, 0x80, size - offs[19] - 2);
		struct block b;
		ck_assert_int_eq(block_parse(&b, d, len), 0);
		ck_assert_int_eq(walk(&b, BLOCK_CMP_BYTES, &r), LSM_CORRUPT);
		free(d);
	}
	/* Internal-key mode: a key shorter than a trailer is corrupt. */
	{
		struct block_builder bb;
		bb_init(&bb, 16);
		ck_assert_int_eq(bb_add(&bb, slice_make("abc", 3), slice_make("v", 1)), 0);
		struct slice c = bb_finish(&bb);
		char *d = exact_copy(c.data, c.len);
		struct block b;
		ck_assert_int_eq(block_parse(&b, d, c.len), 0);
		ck_assert_int_eq(walk(&b, BLOCK_CMP_IKEY, &r), LSM_CORRUPT);
		ck_assert_int_eq(walk(&b, BLOCK_CMP_BYTES, &r), LSM_OK);
		free(d);
		bb_free(&bb);
	}
	free(good);
}
END_TEST

/* At a restart point `shared` must be 0 (block.h). A seek, which starts decoding at restarts, reports
 * a restart entry with shared != 0 as corrupt; a plain scan must not quietly borrow the previous key's
 * bytes instead and hand out a key the block never held. */
START_TEST(test_scan_checks_restart_entries)
{
	size_t len, offs[20];
	char *good = small_block(&len, offs);
	char *d = exact_copy(good, len);
	d[offs[8]] = 1; /* entry 8 starts restart 2: claim one shared byte */
	struct block b;
	ck_assert_int_eq(block_parse(&b, d, len), 0);
	struct block_iter bi;
	block_iter_init(&bi, &b, BLOCK_CMP_BYTES);
	iter_seek(&bi.base, slice_make("key09", 5)); /* the binary search decodes restart 2 */
	ck_assert(!bi.base.valid);
	ck_assert_int_eq(bi.base.status, LSM_CORRUPT);
	int n = 0;
	for (iter_seek_first(&bi.base); bi.base.valid; iter_next(&bi.base)) {
		ck_assert_msg(bi.base.key.len == 5, "scan produced key '%.*s' (entry %d), which the block never held",
			      (int)bi.base.key.len, bi.base.key.data, n);
		n++;
	}
	ck_assert_int_eq(n, 8);
	ck_assert_int_eq(bi.base.status, LSM_CORRUPT);
	block_iter_cleanup(&bi);
	free(d);
	free(good);
}
END_TEST

/* Random damage anywhere (entries and restart array) of blocks in both key modes: parse either rejects
 * it or every walk terminates with OK/CORRUPT, and ASan sees no read outside the exact-size copy. */
START_TEST(test_fuzz_mangled_blocks)
{
	struct rng r = {test_seed("block_fuzz")};
	size_t len, offs[20];
	char *good = small_block(&len, offs);
	/* an internal-key block with long keys too, to exercise the key buffer growth */
	struct block_builder bb;
	bb_init(&bb, 3);
	for (int i = 0; i < 12; i++) {
		char k[300];
		memset(k, 'x', 200);
		size_t kl = 200 + (size_t)snprintf(k + 200, 20, "%02d", i);
		put_u64le(k + kl, pack_trailer(100, VT_VALUE));
		ck_assert_int_eq(bb_add(&bb, slice_make(k, kl + 8), slice_make("value", 5)), 0);
	}
	struct slice ic = bb_finish(&bb);
	int corrupt_seen = 0, parse_rejects = 0;
	int rounds = 1500 * test_scale();
	for (int round = 0; round < rounds; round++) {
		int ikey = round & 1;
		const char *src = ikey ? ic.data : good;
		size_t n = ikey ? ic.len : len;
		char *d = exact_copy(src, n);
		int flips = 1 + (int)rng_below(&r, 4);
		for (int f = 0; f < flips; f++) {
			size_t at = (size_t)rng_below(&r, n);
			if (rng_below(&r, 2))
				d[at] ^= (char)(1u << rng_below(&r, 8));
			else
				d[at] = (char)rng_next(&r);
		}
		/* sometimes also cut the block short */
		size_t use = rng_below(&r, 8) == 0 ? (size_t)rng_below(&r, n + 1) : n;
		char *e = exact_copy(d, use);
		free(d);
		struct block b;
		if (block_parse(&b, e, use) != LSM_OK) {
			parse_rejects++;
		} else if (walk(&b, ikey ? BLOCK_CMP_IKEY : BLOCK_CMP_BYTES, &r) == LSM_CORRUPT) {
			corrupt_seen++;
		}
		free(e);
	}
	/* the damage was real: both detectors fired many times */
	ck_assert_int_gt(parse_rejects, rounds / 20);
	ck_assert_int_gt(corrupt_seen, rounds / 20);
	bb_free(&bb);
	free(good);
}
END_TEST

Suite *block_suite(void)
{
	Suite *s = suite_create("block");
	TCase *tc = tcase_create("round_trip");
	tcase_add_test(tc, test_round_trip_interval_1);
	tcase_add_test(tc, test_round_trip_interval_16);
	tcase_add_test(tc, test_round_trip_interval_3);
	tcase_add_test(tc, test_internal_keys);
	tcase_add_test(tc, test_empty_block_reset_release);
	suite_add_tcase(s, tc);
	tc = tcase_create("corrupt");
	tcase_add_test(tc, test_parse_rejects_bad_restarts);
	tcase_add_test(tc, test_mangled_entries_are_corrupt);
	tcase_add_test(tc, test_scan_checks_restart_entries);
	tcase_add_test(tc, test_fuzz_mangled_blocks);
	suite_add_tcase(s, tc);
	return s;
}
