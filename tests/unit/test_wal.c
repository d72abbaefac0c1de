/* test_wal.c - log records: round trips, torn tails, corruption vouched for by synced_upto, repair mode. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "env_fault.h"
#include "lsm.h"
#include "testutil.h"
#include "wal.h"
#include "wal_format.h"

/* ---------------------------------------------------------------- fixture and helpers */

static lsm_env *env;
#define LOG "/db/000007.log"
#define LOGNUM 7

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

/* Payload of record i: length len, bytes derived from i. */
static char *payload(int i, size_t len)
{
	char *p = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(p);
	for (size_t j = 0; j < len; j++)
		p[j] = (char)(i * 37 + j * 11 + j / 256);
	return p;
}

struct written {
	int n;
	size_t len[16];
	uint64_t off[16];
	unsigned type[16];
	uint64_t size; /* file size after the last record */
};

/* Write records of the given lengths to path; sync after record index k if sync_after[k]. Records
 * alternate between wal_append (in place) and wal_append_copy. */
static void write_log(lsm_env *e, const char *path, uint64_t number, const size_t *lens, int n,
		      const int *sync_after, struct written *out)
{
	struct wal_writer *w;
	ck_assert_int_eq(wal_writer_open(e, path, number, &w), 0);
	ck_assert_uint_eq(w->offset, 0);
	memset(out, 0, sizeof *out);
	out->n = n;
	for (int i = 0; i < n; i++) {
		char *p = payload(i, lens[i]);
		unsigned type = i % 3 == 2 ? WAL_REC_EDIT : WAL_REC_BATCH;
		out->len[i] = lens[i];
		out->off[i] = w->offset;
		out->type[i] = type;
		if (i % 2) {
			ck_assert_int_eq(wal_append_copy(w, type, p, lens[i]), 0);
		} else {
			char *rec = malloc(WAL_HEADER_SIZE + lens[i]);
			ck_assert_ptr_nonnull(rec);
			memcpy(rec + WAL_HEADER_SIZE, p, lens[i]);
			ck_assert_int_eq(wal_append(w, type, rec, lens[i]), 0);
			free(rec);
		}
		ck_assert_uint_eq(w->offset, out->off[i] + WAL_HEADER_SIZE + lens[i]);
		if (sync_after && sync_after[i]) {
			ck_assert_int_eq(wal_sync(w), 0);
			ck_assert_uint_eq(w->synced, w->offset);
		}
		free(p);
	}
	out->size = w->offset;
	ck_assert_int_eq(wal_writer_close(w), 0);
	uint64_t sz;
	ck_assert_int_eq(e->file_size(e, path, &sz), 0);
	ck_assert_uint_eq(sz, out->size);
}

/* The next record is record i of wr, intact. */
static void expect_record(struct wal_reader *r, const struct written *wr, int i)
{
	unsigned type;
	struct slice p;
	uint64_t off;
	int rc = wal_read(r, &type, &p, &off);
	ck_assert_msg(rc == 1, "record %d: wal_read returned %d (%s)", i, rc, lsm_errmsg());
	ck_assert_uint_eq(type, wr->type[i]);
	ck_assert_uint_eq(off, wr->off[i]);
	ck_assert_uint_eq(p.len, wr->len[i]);
	char *want = payload(i, wr->len[i]);
	ck_assert(memcmp(p.data, want, p.len) == 0);
	free(want);
}

static void expect_end(struct wal_reader *r)
{
	unsigned type;
	struct slice p;
	uint64_t off;
	ck_assert_int_eq(wal_read(r, &type, &p, &off), 0);
	ck_assert_int_eq(wal_read(r, &type, &p, &off), 0); /* the end is sticky */
}

/* The next read fails with LSM_CORRUPT naming path and offset. */
static void expect_corrupt(struct wal_reader *r, const char *path, uint64_t at)
{
	unsigned type;
	struct slice p;
	uint64_t off;
	ck_assert_int_eq(wal_read(r, &type, &p, &off), LSM_CORRUPT);
	char want[256];
	snprintf(want, sizeof want, "corruption in %s at offset %" PRIu64 ": ", path, at);
	ck_assert_msg(strncmp(lsm_errmsg(), want, strlen(want)) == 0, "message '%s', expected it to start '%s'",
		      lsm_errmsg(), want);
}

static struct wal_reader *open_reader(const char *path, uint64_t number, int mode)
{
	struct wal_reader *r;
	ck_assert_int_eq(wal_reader_open(env, path, number, mode, &r), 0);
	return r;
}

/* Read-modify-write one byte of a file. */
static void flip(const char *path, uint64_t at, unsigned char x)
{
	char *d;
	size_t n;
	ck_assert_int_eq(lsm_env_read_all(env, path, &d, &n), 0);
	ck_assert_uint_lt(at, n);
	d[at] ^= (char)x;
	ck_assert_int_eq(lsm_env_write_all(env, path, d, n, 1), 0);
	free(d);
}

static const size_t FIVE[5] = {100, 200, 50, 300, 120};

/* ---------------------------------------------------------------- round trip */

START_TEST(test_round_trip)
{
	const size_t lens[] = {0, 1, 100, 70000, 3, 1u << 20, 24};
	const int sync_after[] = {0, 1, 0, 0, 1, 0, 0};
	int n = (int)(sizeof lens / sizeof lens[0]);
	struct written wr;
	/* a number above 32 bits: the header keeps its low 32 bits */
	uint64_t number = (UINT64_C(5) << 32) | LOGNUM;
	write_log(env, LOG, number, lens, n, sync_after, &wr);
	uint64_t want_size = 0;
	for (int i = 0; i < n; i++)
		want_size += WAL_HEADER_SIZE + lens[i];
	ck_assert_uint_eq(wr.size, want_size);

	/* The headers on disk: length, type, zero bytes, log number, synced_upto. */
	char *d;
	size_t sz;
	ck_assert_int_eq(lsm_env_read_all(env, LOG, &d, &sz), 0);
	uint64_t synced = 0;
	for (int i = 0; i < n; i++) {
		const char *h = d + wr.off[i];
		ck_assert_uint_eq(get_u32le(h + 4), lens[i]);
		ck_assert_uint_eq((unsigned char)h[8], wr.type[i]);
		ck_assert(h[9] == 0 && h[10] == 0 && h[11] == 0);
		ck_assert_uint_eq(get_u32le(h + 12), LOGNUM);
		ck_assert_uint_eq(get_u64le(h + 16), synced);
		if (sync_after[i])
			synced = wr.off[i] + WAL_HEADER_SIZE + lens[i];
	}
	free(d);

	for (int mode = WAL_STRICT; mode <= WAL_REPAIR; mode++) {
		struct wal_reader *r = open_reader(LOG, number, mode);
		for (int i = 0; i < n; i++)
			expect_record(r, &wr, i);
		expect_end(r);
		ck_assert_uint_eq(r->torn_bytes, 0);
		ck_assert_uint_eq(r->skipped_records, 0);
		wal_reader_close(r);
	}
	/* the reader compares the low 32 bits only */
	struct wal_reader *r = open_reader(LOG, LOGNUM, WAL_STRICT);
	for (int i = 0; i < n; i++)
		expect_record(r, &wr, i);
	expect_end(r);
	wal_reader_close(r);
}
END_TEST

START_TEST(test_empty_and_missing)
{
	struct wal_writer *w;
	ck_assert_int_eq(wal_writer_open(env, LOG, LOGNUM, &w), 0);
	ck_assert_int_eq(wal_sync(w), 0);
	ck_assert_int_eq(wal_writer_close(w), 0);
	ck_assert_int_eq(wal_writer_close(NULL), 0);
	for (int mode = WAL_STRICT; mode <= WAL_REPAIR; mode++) {
		struct wal_reader *r = open_reader(LOG, LOGNUM, mode);
		expect_end(r);
		ck_assert_uint_eq(r->torn_bytes, 0);
		wal_reader_close(r);
	}
	wal_reader_close(NULL);
	struct wal_reader *r = (struct wal_reader *)&w;
	ck_assert_int_eq(wal_reader_open(env, "/db/missing.log", 9, WAL_STRICT, &r), LSM_NOTFOUND);
	ck_assert_ptr_null(r);
	w = (struct wal_writer *)&r;
	ck_assert_int_eq(wal_writer_open(env, "/nodir/1.log", 1, &w), LSM_NOTFOUND);
	ck_assert_ptr_null(w);
}
END_TEST

/* ---------------------------------------------------------------- torn tails */

/* Cut the file at `cut` (inside the last record): TAIL_OK returns the intact prefix and reports the torn
 * bytes; STRICT reports corruption at the last record's offset. */
static void check_torn(uint64_t cut)
{
	const int sync_after[5] = {0, 0, 0, 1, 0};
	struct written wr;
	write_log(env, LOG, LOGNUM, FIVE, 5, sync_after, &wr);
	ck_assert_int_eq(env->truncate(env, LOG, cut), 0);

	struct wal_reader *r = open_reader(LOG, LOGNUM, WAL_TAIL_OK);
	for (int i = 0; i < 4; i++)
		expect_record(r, &wr, i);
	expect_end(r);
	ck_assert_uint_eq(r->torn_offset, wr.off[4]);
	ck_assert_uint_eq(r->torn_bytes, cut - wr.off[4]);
	ck_assert_uint_eq(r->skipped_records, 0);
	wal_reader_close(r);

	r = open_reader(LOG, LOGNUM, WAL_REPAIR); /* nothing intact follows: a torn tail there too */
	for (int i = 0; i < 4; i++)
		expect_record(r, &wr, i);
	expect_end(r);
	ck_assert_uint_eq(r->torn_offset, wr.off[4]);
	ck_assert_uint_eq(r->torn_bytes, cut - wr.off[4]);
	ck_assert_uint_eq(r->skipped_records, 0);
	wal_reader_close(r);

	r = open_reader(LOG, LOGNUM, WAL_STRICT);
	for (int i = 0; i < 4; i++)
		expect_record(r, &wr, i);
	expect_corrupt(r, LOG, wr.off[4]);
	wal_reader_close(r);
}

START_TEST(test_torn_tail)
{
	uint64_t off4 = 0;
	for (int i = 0; i < 4; i++)
		off4 += WAL_HEADER_SIZE + FIVE[i];
	const uint64_t cuts[] = {off4 + 1, off4 + 10, off4 + WAL_HEADER_SIZE - 1, off4 + WAL_HEADER_SIZE,
				 off4 + WAL_HEADER_SIZE + 60, off4 + WAL_HEADER_SIZE + FIVE[4] - 1};
	for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++)
		check_torn(cuts[c]);
}
END_TEST

/* A cut at a record boundary is not damage at all. */
START_TEST(test_cut_at_boundary)
{
	struct written wr;
	write_log(env, LOG, LOGNUM, FIVE, 5, NULL, &wr);
	ck_assert_int_eq(env->truncate(env, LOG, wr.off[3]), 0);
	for (int mode = WAL_STRICT; mode <= WAL_REPAIR; mode++) {
		struct wal_reader *r = open_reader(LOG, LOGNUM, mode);
		for (int i = 0; i < 3; i++)
			expect_record(r, &wr, i);
		expect_end(r);
		ck_assert_uint_eq(r->torn_bytes, 0);
		wal_reader_close(r);
	}
}
END_TEST

/* A tail of zeros (a file extended but never written, as after a crash on some file systems). */
START_TEST(test_zero_tail)
{
	struct written wr;
	write_log(env, LOG, LOGNUM, FIVE, 3, NULL, &wr);
	ck_assert_int_eq(env->truncate(env, LOG, wr.size + 100), 0);
	struct wal_reader *r = open_reader(LOG, LOGNUM, WAL_TAIL_OK);
	for (int i = 0; i < 3; i++)
		expect_record(r, &wr, i);
	expect_end(r);
	ck_assert_uint_eq(r->torn_offset, wr.size);
	ck_assert_uint_eq(r->torn_bytes, 100);
	wal_reader_close(r);
	r = open_reader(LOG, LOGNUM, WAL_STRICT);
	for (int i = 0; i < 3; i++)
		expect_record(r, &wr, i);
	expect_corrupt(r, LOG, wr.size);
	wal_reader_close(r);
}
END_TEST

/* ---------------------------------------------------------------- corruption in the middle */

/* Damage record 2 (index 1) of 5. With a sync after record 4, record 5's synced_upto lies past the
 * damage: the bytes had been acknowledged durable, so it is corruption even in TAIL_OK mode. */
START_TEST(test_mid_file_corruption_vouched)
{
	const int sync_after[5] = {0, 0, 0, 1, 0};
	struct written wr;
	write_log(env, LOG, LOGNUM, FIVE, 5, sync_after, &wr);
	const uint64_t where[] = {wr.off[1] + WAL_HEADER_SIZE + 17, /* payload */
				  wr.off[1] + 5,                    /* length field */
				  wr.off[1] + 1};                   /* checksum */
	for (size_t w = 0; w < 3; w++) {
		flip(LOG, where[w], 0x20);
		for (int mode = WAL_STRICT; mode <= WAL_TAIL_OK; mode++) {
			struct wal_reader *r = open_reader(LOG, LOGNUM, mode);
			expect_record(r, &wr, 0);
			expect_corrupt(r, LOG, wr.off[1]);
			if (mode == WAL_TAIL_OK)
				ck_assert_ptr_nonnull(strstr(lsm_errmsg(), "synced"));
			ck_assert_uint_eq(r->torn_bytes, 0);
			wal_reader_close(r);
		}
		flip(LOG, where[w], 0x20); /* undo */
	}
}
END_TEST

/* The same damage with no later record vouching for it: in TAIL_OK mode the rest is a torn tail. */
START_TEST(test_mid_file_corruption_unvouched)
{
	const int sync_after[5] = {1, 0, 0, 0, 0}; /* synced only up to the end of record 1 */
	struct written wr;
	write_log(env, LOG, LOGNUM, FIVE, 5, sync_after, &wr);
	flip(LOG, wr.off[1] + WAL_HEADER_SIZE + 3, 0x01);
	struct wal_reader *r = open_reader(LOG, LOGNUM, WAL_TAIL_OK);
	expect_record(r, &wr, 0);
	expect_end(r);
	ck_assert_uint_eq(r->torn_offset, wr.off[1]);
	ck_assert_uint_eq(r->torn_bytes, wr.size - wr.off[1]);
	wal_reader_close(r);
	r = open_reader(LOG, LOGNUM, WAL_STRICT);
	expect_record(r, &wr, 0);
	expect_corrupt(r, LOG, wr.off[1]);
	wal_reader_close(r);
}
END_TEST

/* Damage in record 1 (offset 0) vouched for by record 2 (synced after record 1). */
START_TEST(test_first_record_corruption)
{
	const int sync_after[5] = {1, 0, 0, 0, 0};
	struct written wr;
	write_log(env, LOG, LOGNUM, FIVE, 5, sync_after, &wr);
	flip(LOG, 30, 0x80);
	struct wal_reader *r = open_reader(LOG, LOGNUM, WAL_TAIL_OK);
	expect_corrupt(r, LOG, 0);
	wal_reader_close(r);
	r = open_reader(LOG, LOGNUM, WAL_REPAIR);
	for (int i = 1; i < 5; i++)
		expect_record(r, &wr, i);
	expect_end(r);
	ck_assert_uint_eq(r->skipped_records, 1);
	ck_assert_uint_eq(r->skipped_bytes, wr.off[1]);
	ck_assert_uint_eq(r->first_skip_offset, 0);
	wal_reader_close(r);
}
END_TEST

/* Repair mode skips damaged records in the middle, returns every intact one, and counts the skips. */
START_TEST(test_repair)
{
	const size_t lens[6] = {100, 200, 50, 300, 120, 80};
	const int sync_after[6] = {1, 1, 1, 1, 1, 0};
	struct written wr;
	write_log(env, LOG, LOGNUM, lens, 6, sync_after, &wr);
	flip(LOG, wr.off[1] + WAL_HEADER_SIZE + 100, 0x04);
	flip(LOG, wr.off[3] + 8, 0x01); /* the type byte */
	struct wal_reader *r = open_reader(LOG, LOGNUM, WAL_REPAIR);
	expect_record(r, &wr, 0);
	expect_record(r, &wr, 2);
	expect_record(r, &wr, 4);
	expect_record(r, &wr, 5);
	expect_end(r);
	ck_assert_uint_eq(r->skipped_records, 2);
	ck_assert_uint_eq(r->skipped_bytes, (WAL_HEADER_SIZE + lens[1]) + (WAL_HEADER_SIZE + lens[3]));
	ck_assert_uint_eq(r->first_skip_offset, wr.off[1]);
	ck_assert_uint_eq(r->torn_bytes, 0);
	wal_reader_close(r);

	/* and damage in the last record as well: a torn tail ends the walk */
	flip(LOG, wr.off[5] + WAL_HEADER_SIZE + 2, 0x10);
	r = open_reader(LOG, LOGNUM, WAL_REPAIR);
	expect_record(r, &wr, 0);
	expect_record(r, &wr, 2);
	expect_record(r, &wr, 4);
	expect_end(r);
	ck_assert_uint_eq(r->skipped_records, 2);
	ck_assert_uint_eq(r->torn_offset, wr.off[5]);
	ck_assert_uint_eq(r->torn_bytes, WAL_HEADER_SIZE + lens[5]);
	wal_reader_close(r);
}
END_TEST

/* A record of another log (copied in, or a stale file reused) is not intact here. */
START_TEST(test_wrong_log_number)
{
	const int sync_after[5] = {1, 1, 1, 1, 1};
	struct written wr;
	write_log(env, LOG, LOGNUM, FIVE, 5, sync_after, &wr);
	struct wal_reader *r = open_reader(LOG, LOGNUM + 1, WAL_TAIL_OK);
	expect_end(r); /* no record is intact, so none vouches: all torn */
	ck_assert_uint_eq(r->torn_offset, 0);
	ck_assert_uint_eq(r->torn_bytes, wr.size);
	wal_reader_close(r);
	r = open_reader(LOG, LOGNUM + 1, WAL_STRICT);
	expect_corrupt(r, LOG, 0);
	wal_reader_close(r);

	/* record 3 replaced by the same record written to log 8: corrupt (vouched by record 4) */
	struct written w8;
	write_log(env, "/db/000008.log", LOGNUM + 1, FIVE, 5, NULL, &w8);
	char *a, *b;
	size_t an, bn;
	ck_assert_int_eq(lsm_env_read_all(env, LOG, &a, &an), 0);
	ck_assert_int_eq(lsm_env_read_all(env, "/db/000008.log", &b, &bn), 0);
	memcpy(a + wr.off[2], b + w8.off[2], WAL_HEADER_SIZE + FIVE[2]);
	ck_assert_int_eq(lsm_env_write_all(env, LOG, a, an, 1), 0);
	free(a);
	free(b);
	r = open_reader(LOG, LOGNUM, WAL_TAIL_OK);
	expect_record(r, &wr, 0);
	expect_record(r, &wr, 1);
	expect_corrupt(r, LOG, wr.off[2]);
	wal_reader_close(r);
}
END_TEST

/* ---------------------------------------------------------------- writer errors and crashes */

START_TEST(test_writer_errors)
{
	lsm_env *fe = lsm_fault_env_new(env);
	ck_assert_ptr_nonnull(fe);
	struct wal_writer *w;
	ck_assert_int_eq(wal_writer_open(fe, LOG, LOGNUM, &w), 0);
	ck_assert_int_eq(wal_append_copy(w, WAL_REC_BATCH, "hello", 5), 0);
	ck_assert_int_eq(wal_sync(w), 0);
	/* nothing new to sync: no call reaches the env (an armed sync failure stays unfired) */
	lsm_fault_set_fail(fe, 1, EIO, 0, 0, LSM_FAULT_SYNC);
	ck_assert_int_eq(wal_sync(w), 0);
	ck_assert_int_eq(wal_append_copy(w, WAL_REC_BATCH, "world", 5), 0);
	ck_assert_int_eq(wal_sync(w), LSM_IOERR);
	ck_assert_ptr_nonnull(strstr(lsm_errmsg(), LOG));
	ck_assert_uint_eq(w->synced, WAL_HEADER_SIZE + 5); /* unchanged by the failed sync */
	/* a full disk, with half the record written */
	lsm_fault_set_fail(fe, 1, ENOSPC, 0, 1, LSM_FAULT_WRITE);
	ck_assert_int_eq(wal_append_copy(w, WAL_REC_BATCH, "0123456789", 10), LSM_NOSPC);
	ck_assert_uint_eq(w->offset, 2 * (WAL_HEADER_SIZE + 5)); /* the failed record is not counted */
	/* too large: refused before anything is written */
	char small[WAL_HEADER_SIZE];
	ck_assert_int_eq(wal_append(w, WAL_REC_BATCH, small, (size_t)WAL_MAX_PAYLOAD + 1), LSM_INVAL);
	ck_assert_uint_eq(w->offset, 2 * (WAL_HEADER_SIZE + 5));
	ck_assert_int_eq(wal_writer_close(w), 0);
	/* what a reader makes of it: two records, then the half record as a torn tail */
	struct wal_reader *r = open_reader(LOG, LOGNUM, WAL_TAIL_OK);
	unsigned type;
	struct slice p;
	uint64_t off;
	ck_assert_int_eq(wal_read(r, &type, &p, &off), 1);
	ck_assert_int_eq(wal_read(r, &type, &p, &off), 1);
	ck_assert_mem_eq(p.data, "world", 5);
	expect_end(r);
	ck_assert_uint_eq(r->torn_offset, 2 * (WAL_HEADER_SIZE + 5));
	ck_assert_uint_eq(r->torn_bytes, (WAL_HEADER_SIZE + 10) / 2);
	wal_reader_close(r);
	fe->destroy(fe);
}
END_TEST

/* A power loss keeps exactly the synced records; the reader sees no damage. */
START_TEST(test_crash_keeps_synced_prefix)
{
	lsm_env *fe = lsm_fault_env_new(env);
	ck_assert_ptr_nonnull(fe);
	const int sync_after[5] = {0, 0, 1, 0, 0};
	struct written wr;
	write_log(fe, LOG, LOGNUM, FIVE, 5, sync_after, &wr);
	ck_assert_int_eq(fe->sync_dir(fe, "/db"), 0); /* the file's name is durable, its tail is not */
	ck_assert_int_eq(lsm_fault_crash(fe), 0);
	struct wal_reader *r = open_reader(LOG, LOGNUM, WAL_STRICT);
	for (int i = 0; i < 3; i++)
		expect_record(r, &wr, i);
	expect_end(r);
	wal_reader_close(r);
	fe->destroy(fe);
}
END_TEST

Suite *wal_suite(void)
{
	Suite *s = suite_create("wal");
	TCase *tc = tcase_create("wal");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_empty_and_missing);
	tcase_add_test(tc, test_torn_tail);
	tcase_add_test(tc, test_cut_at_boundary);
	tcase_add_test(tc, test_zero_tail);
	tcase_add_test(tc, test_mid_file_corruption_vouched);
	tcase_add_test(tc, test_mid_file_corruption_unvouched);
	tcase_add_test(tc, test_first_record_corruption);
	tcase_add_test(tc, test_repair);
	tcase_add_test(tc, test_wrong_log_number);
	tcase_add_test(tc, test_writer_errors);
	tcase_add_test(tc, test_crash_keeps_synced_prefix);
	suite_add_tcase(s, tc);
	return s;
}
