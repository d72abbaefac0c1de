/* test_batch.c - write batches: encoding, decoding, grouping, and malformed payloads. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
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

struct op {
	unsigned type;
	const char *k, *v; /* v: value, or end key of a range delete; NULL for deletes */
};

static void add_ops(lsm_batch *b, const struct op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(ops[i].k);
		switch (ops[i].type) {
		case VT_VALUE:
			ck_assert_int_eq(lsm_batch_put(b, ops[i].k, kl, ops[i].v, strlen(ops[i].v)), 0);
			break;
		case VT_DELETE:
			ck_assert_int_eq(lsm_batch_delete(b, ops[i].k, kl), 0);
			break;
		case VT_RANGE_DELETE:
			ck_assert_int_eq(lsm_batch_delete_range(b, ops[i].k, kl, ops[i].v, strlen(ops[i].v)), 0);
			break;
		}
	}
}

/* Decode payload and compare with ops: header seq and count, then every op exactly, then the end. */
static void expect_ops(const char *payload, size_t len, uint64_t seq, const struct op *ops, size_t n)
{
	struct batch_reader r;
	uint64_t s;
	uint32_t count;
	ck_assert_int_eq(batch_reader_init(&r, payload, len, &s, &count), 0);
	ck_assert_uint_eq(s, seq);
	ck_assert_uint_eq(count, n);
	struct batch_op op;
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(batch_reader_next(&r, &op), 1);
		ck_assert_uint_eq(op.type, ops[i].type);
		ck_assert_uint_eq(op.key.len, strlen(ops[i].k));
		ck_assert_mem_eq(op.key.data, ops[i].k, op.key.len);
		size_t vl = ops[i].v ? strlen(ops[i].v) : 0;
		ck_assert_uint_eq(op.value.len, vl);
		if (vl)
			ck_assert_mem_eq(op.value.data, ops[i].v, vl);
	}
	ck_assert_int_eq(batch_reader_next(&r, &op), 0);
	ck_assert_int_eq(batch_reader_next(&r, &op), 0); /* stays at the end */
}

static const struct op OPS[] = {
	{VT_VALUE, "alpha", "1"},
	{VT_DELETE, "beta", NULL},
	{VT_RANGE_DELETE, "c", "f"},
	{VT_VALUE, "", ""},             /* empty key and value are legal */
	{VT_VALUE, "alpha", "2"},       /* a key twice in one batch */
	{VT_RANGE_DELETE, "x", ""},     /* an empty (inverted) range is recorded as given */
	{VT_DELETE, "", NULL},
};
#define NOPS (sizeof OPS / sizeof OPS[0])

START_TEST(test_round_trip)
{
	lsm_batch *b = lsm_batch_new();
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(lsm_batch_count(b), 0);
	ck_assert_uint_eq(lsm_batch_bytes(b), BATCH_HEADER_SIZE);
	add_ops(b, OPS, NOPS);
	ck_assert_uint_eq(lsm_batch_count(b), NOPS);
	ck_assert_uint_eq(b->puts, 3);
	ck_assert_uint_eq(b->deletes, 2);
	ck_assert_uint_eq(b->range_deletes, 2);
	/* size: per op 1 type byte + 1-byte varints + bytes */
	size_t want = BATCH_HEADER_SIZE;
	for (size_t i = 0; i < NOPS; i++)
		want += 1 + 1 + strlen(OPS[i].k) + (OPS[i].type == VT_DELETE ? 0 : 1 + strlen(OPS[i].v));
	ck_assert_uint_eq(lsm_batch_bytes(b), want);
	ck_assert_uint_eq(batch_payload_len(b), want);
	batch_set_seq(b, 1000);
	expect_ops(batch_payload(b), batch_payload_len(b), 1000, OPS, NOPS);
	/* the exact bytes of the first op and of the header */
	const char *p = batch_payload(b);
	ck_assert_uint_eq(get_u64le(p), 1000);
	ck_assert_uint_eq(get_u32le(p + 8), NOPS);
	ck_assert_mem_eq(p + 12, "\x01\x05" "alpha" "\x01" "1" "\x00\x04" "beta", 2 + 5 + 2 + 2 + 4);
	/* the WAL header room in front of the payload */
	ck_assert_ptr_eq(batch_payload(b), b->rep.data + WAL_HEADER_SIZE);

	lsm_batch_clear(b);
	ck_assert_uint_eq(lsm_batch_count(b), 0);
	ck_assert_uint_eq(lsm_batch_bytes(b), BATCH_HEADER_SIZE);
	ck_assert_uint_eq(b->puts + b->deletes + b->range_deletes, 0);
	batch_set_seq(b, 7);
	expect_ops(batch_payload(b), batch_payload_len(b), 7, NULL, 0);
	lsm_batch_free(b);
	lsm_batch_free(NULL);
}
END_TEST

START_TEST(test_large_values_and_embedded)
{
	struct lsm_batch b;
	ck_assert_int_eq(batch_init(&b), 0);
	size_t big = 300000;
	char *v = malloc(big);
	ck_assert_ptr_nonnull(v);
	for (size_t i = 0; i < big; i++)
		v[i] = (char)(i * 13);
	char key[200];
	memset(key, 'k', sizeof key); /* a key of 200 bytes: a 2-byte varint length */
	ck_assert_int_eq(lsm_batch_put(&b, key, sizeof key, v, big), 0);
	ck_assert_int_eq(lsm_batch_delete(&b, "d", 1), 0);
	ck_assert_uint_eq(lsm_batch_bytes(&b), BATCH_HEADER_SIZE + 1 + 2 + 200 + 3 + big + 1 + 1 + 1);
	batch_set_seq(&b, 5);
	struct batch_reader r;
	uint64_t s;
	uint32_t n;
	ck_assert_int_eq(batch_reader_init(&r, batch_payload(&b), batch_payload_len(&b), &s, &n), 0);
	ck_assert_uint_eq(n, 2);
	struct batch_op op;
	ck_assert_int_eq(batch_reader_next(&r, &op), 1);
	ck_assert_uint_eq(op.type, VT_VALUE);
	ck_assert_uint_eq(op.key.len, 200);
	ck_assert_mem_eq(op.key.data, key, 200);
	ck_assert_uint_eq(op.value.len, big);
	ck_assert_mem_eq(op.value.data, v, big);
	ck_assert_int_eq(batch_reader_next(&r, &op), 1);
	ck_assert_uint_eq(op.type, VT_DELETE);
	ck_assert_int_eq(batch_reader_next(&r, &op), 0);

	/* A payload over WAL_MAX_PAYLOAD is refused up front (the value is never read) and changes nothing. */
	size_t before = lsm_batch_bytes(&b);
	ck_assert_int_eq(lsm_batch_put(&b, "x", 1, v, WAL_MAX_PAYLOAD), LSM_INVAL);
	ck_assert_int_eq(lsm_batch_delete_range(&b, "x", 1, v, WAL_MAX_PAYLOAD), LSM_INVAL);
	ck_assert_uint_eq(lsm_batch_bytes(&b), before);
	ck_assert_uint_eq(lsm_batch_count(&b), 2);
	ck_assert_uint_eq(b.puts, 1);
	ck_assert_uint_eq(b.range_deletes, 0);
	free(v);
	buf_free(&b.rep);
}
END_TEST

/* Group commit: batches appended into one decode as the concatenation, under the group's first seqno. */
START_TEST(test_append_ops)
{
	lsm_batch *g = lsm_batch_new(), *b1 = lsm_batch_new(), *b2 = lsm_batch_new();
	ck_assert(g && b1 && b2);
	add_ops(b1, OPS, 3);
	add_ops(b2, OPS + 3, NOPS - 3);
	ck_assert_int_eq(batch_append_ops(g, b1), 0);
	ck_assert_int_eq(batch_append_ops(g, b2), 0);
	ck_assert_uint_eq(lsm_batch_count(g), NOPS);
	ck_assert_uint_eq(g->puts, 3);
	ck_assert_uint_eq(g->deletes, 2);
	ck_assert_uint_eq(g->range_deletes, 2);
	ck_assert_uint_eq(lsm_batch_bytes(g), lsm_batch_bytes(b1) + lsm_batch_bytes(b2) - BATCH_HEADER_SIZE);
	batch_set_seq(g, 77);
	expect_ops(batch_payload(g), batch_payload_len(g), 77, OPS, NOPS);
	/* the sources are untouched */
	batch_set_seq(b1, 1);
	expect_ops(batch_payload(b1), batch_payload_len(b1), 1, OPS, 3);
	/* appending an empty batch changes nothing */
	lsm_batch_clear(b2);
	size_t before = lsm_batch_bytes(g);
	ck_assert_int_eq(batch_append_ops(g, b2), 0);
	ck_assert_uint_eq(lsm_batch_bytes(g), before);
	ck_assert_uint_eq(lsm_batch_count(g), NOPS);
	lsm_batch_free(g);
	lsm_batch_free(b1);
	lsm_batch_free(b2);
}
END_TEST

/* Returns the status of decoding payload[0..len) fully: 0 if it decodes to the end, else the error. */
static int decode_all(const char *payload, size_t len, uint32_t *ops_read)
{
	char *copy = malloc(len ? len : 1); /* exact size: ASan catches reads past the end */
	FAST_TRUE(copy != NULL);
	memcpy(copy, payload, len);
	struct batch_reader r;
	uint64_t s;
	uint32_t count;
	int rc = batch_reader_init(&r, copy, len, &s, &count);
	*ops_read = 0;
	if (rc == 0) {
		struct batch_op op;
		while ((rc = batch_reader_next(&r, &op)) == 1) {
			FAST_TRUE(op.key.len <= len);
			(*ops_read)++;
			FAST_TRUE(*ops_read <= count);
		}
	}
	free(copy);
	return rc;
}

START_TEST(test_malformed)
{
	lsm_batch *b = lsm_batch_new();
	ck_assert_ptr_nonnull(b);
	add_ops(b, OPS, NOPS);
	batch_set_seq(b, 100);
	const char *good = batch_payload(b);
	size_t len = batch_payload_len(b);
	uint32_t nread;
	ck_assert_int_eq(decode_all(good, len, &nread), 0);
	ck_assert_uint_eq(nread, NOPS);

	/* Every proper prefix is malformed: the count promises more than is there. */
	for (size_t l = 0; l < len; l++)
		ck_assert_msg(decode_all(good, l, &nread) == LSM_CORRUPT, "prefix of %zu bytes accepted", l);
	/* Trailing garbage after the promised ops. */
	char *d = malloc(len + 1);
	ck_assert_ptr_nonnull(d);
	memcpy(d, good, len);
	d[len] = 0;
	ck_assert_int_eq(decode_all(d, len + 1, &nread), LSM_CORRUPT);
	ck_assert_uint_eq(nread, NOPS);

	struct {
		const char *what;
		size_t at;
		int width; /* 8: u64, 4: u32, 1: byte */
		uint64_t val;
	} cases[] = {
		{"seqno 0", 0, 8, 0},
		{"seqno beyond 56 bits", 0, 8, SEQNO_MAX + 1},
		{"count 0 with ops present", 8, 4, 0},
		{"count one short", 8, 4, NOPS - 1},
		{"count one over", 8, 4, NOPS + 1},
		{"count absurd", 8, 4, 0xffffffffu},
		{"unknown op type", 12, 1, 4}, /* 3 is VT_BLOB */
		{"op type 0xff", 12, 1, 0xff},
		{"key length past the end", 13, 1, 0x7f},
		{"key length varint runs into the key", 13, 1, 0x80},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		memcpy(d, good, len);
		if (cases[c].width == 8)
			put_u64le(d + cases[c].at, cases[c].val);
		else if (cases[c].width == 4)
			put_u32le(d + cases[c].at, (uint32_t)cases[c].val);
		else
			d[cases[c].at] = (char)cases[c].val;
		ck_assert_msg(decode_all(d, len, &nread) == LSM_CORRUPT, "%s: accepted", cases[c].what);
	}
	/* The seqno range must hold every op: first + count - 1 must stay below SEQNO_MAX. */
	memcpy(d, good, len);
	put_u64le(d, SEQNO_MAX - NOPS);
	ck_assert_int_eq(decode_all(d, len, &nread), 0);
	put_u64le(d, SEQNO_MAX - NOPS + 1);
	ck_assert_int_eq(decode_all(d, len, &nread), LSM_CORRUPT);
	/* An empty batch with a valid header decodes to nothing. */
	char hdr[BATCH_HEADER_SIZE];
	put_u64le(hdr, 9);
	put_u32le(hdr + 8, 0);
	ck_assert_int_eq(decode_all(hdr, sizeof hdr, &nread), 0);
	ck_assert_uint_eq(nread, 0);
	free(d);
	lsm_batch_free(b);
}
END_TEST

/* Random damage: decoding terminates with 0 or LSM_CORRUPT and stays inside the payload (ASan). */
START_TEST(test_fuzz)
{
	struct rng r = {test_seed("batch_fuzz")};
	lsm_batch *b = lsm_batch_new();
	ck_assert_ptr_nonnull(b);
	add_ops(b, OPS, NOPS);
	batch_set_seq(b, 100);
	size_t len = batch_payload_len(b);
	char *d = malloc(len);
	ck_assert_ptr_nonnull(d);
	int bad = 0;
	for (int i = 0; i < 3000; i++) {
		memcpy(d, batch_payload(b), len);
		for (int f = 0, nf = 1 + (int)rng_below(&r, 3); f < nf; f++)
			d[12 + rng_below(&r, len - 12)] = (char)rng_next(&r);
		uint32_t nread;
		int rc = decode_all(d, len, &nread);
		ck_assert(rc == 0 || rc == LSM_CORRUPT);
		bad += rc == LSM_CORRUPT;
	}
	ck_assert_int_gt(bad, 300);
	free(d);
	lsm_batch_free(b);
}
END_TEST

Suite *batch_suite(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("batch");
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_large_values_and_embedded);
	tcase_add_test(tc, test_append_ops);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_fuzz);
	suite_add_tcase(s, tc);
	return s;
}
