/* test_blob.c - big values in blob files: reads through every path, recovery, garbage, damage. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "env.h"
#include "lsm.h"
#include "lsm_inspect.h"
#include "testutil.h"

#define NKEYS 300
#define DIR "/b"

static lsm_env *env;

static void setup(void)
{
	env = lsm_env_mem_new();
}
static void teardown(void)
{
	env->destroy(env);
}

static int bopen_at(const char *dir, size_t wbuf, int repair, lsm_db **db)
{
	struct lsm_options o;
	lsm_options_init(&o);
	o.env = env;
	o.blob_min_size = 1024;
	o.write_buffer_size = wbuf;
	o.table_target_size = 64 << 10;
	o.level1_max_bytes = 128 << 10;
	o.repair = repair;
	return lsm_open(dir, &o, db);
}

static lsm_db *bopen(size_t wbuf)
{
	lsm_db *db;
	int rc = bopen_at(DIR, wbuf, 0, &db);
	ck_assert_msg(rc == LSM_OK, "open: %s", lsm_errmsg());
	return db;
}

/* Key i's value in generation g: small (inline) for i % 4 == 0, else 1-9 KiB (a blob). */
static size_t make_value(int i, int g, char *v)
{
	size_t len = i % 4 == 0 ? (size_t)(10 + i % 50) : (size_t)(1024 + (i * 37 + g * 101) % 8192);
	for (size_t j = 0; j < len; j++)
		v[j] = (char)('a' + (i * 7 + g * 13 + (int)j) % 26);
	return len;
}

static void key_of(int i, char *k)
{
	snprintf(k, 16, "k%05d", i);
}

static void put_gen(lsm_db *db, int g)
{
	static char v[10000];
	char k[16];
	for (int i = 0; i < NKEYS; i++) {
		key_of(i, k);
		size_t n = make_value(i, g, v);
		ck_assert_int_eq(lsm_put(db, k, strlen(k), v, n, 0), LSM_OK);
	}
}

/* Every key holds generation g, by get and by a scan. */
static void check_gen(lsm_db *db, int g, const char *when)
{
	static char v[10000];
	char k[16];
	struct lsm_buf b = {0};
	for (int i = 0; i < NKEYS; i++) {
		key_of(i, k);
		size_t n = make_value(i, g, v);
		int rc = lsm_get(db, NULL, k, strlen(k), &b);
		ck_assert_msg(rc == LSM_OK, "%s: get %s: %s", when, k, lsm_errmsg());
		ck_assert_msg(b.len == n && !memcmp(b.data, v, n), "%s: get %s: wrong value", when, k);
	}
	lsm_buf_free(&b);
	lsm_iter *it = lsm_iter_new(db, NULL);
	int i = 0;
	for (lsm_iter_seek_first(it); lsm_iter_valid(it); lsm_iter_next(it), i++) {
		size_t kl, vl;
		const char *ik = lsm_iter_key(it, &kl);
		const char *iv = lsm_iter_value(it, &vl);
		key_of(i, k);
		size_t n = make_value(i, g, v);
		ck_assert_msg(kl == strlen(k) && !memcmp(ik, k, kl), "%s: scan key %d", when, i);
		ck_assert_msg(vl == n && !memcmp(iv, v, n), "%s: scan value of %s", when, k);
	}
	ck_assert_msg(lsm_iter_status(it) == LSM_OK, "%s: scan: %s", when, lsm_errmsg());
	ck_assert_int_eq(i, NKEYS);
	lsm_iter_free(it);
}

/* Close, reopen, check generation g, close. */
static void close_reopen_check(lsm_db *db, size_t wbuf, int g, const char *when)
{
	ck_assert_int_eq(lsm_close(db), LSM_OK);
	db = bopen(wbuf);
	check_gen(db, g, when);
	ck_assert_int_eq(lsm_close(db), LSM_OK);
}

struct blob_count {
	int blobs;
	int live;
	uint64_t bytes;
};
static int count_blob_files(void *arg, const char *name, const char *kind, uint64_t number, uint64_t size, int live)
{
	(void)name, (void)number;
	struct blob_count *c = arg;
	if (!strcmp(kind, "blob")) {
		c->blobs++;
		c->live += live;
		c->bytes += size;
	}
	return 0;
}

START_TEST(blob_read_paths)
{
	lsm_db *db = bopen(256 << 10);
	put_gen(db, 1);
	check_gen(db, 1, "memtable");
	struct lsm_stats st;
	lsm_stats_get(db, &st);
	ck_assert_uint_gt(st.blob_bytes_written, 0);
	ck_assert_int_eq(lsm_flush(db), LSM_OK);
	check_gen(db, 1, "after flush");
	ck_assert_int_eq(lsm_compact_range(db, NULL, 0, NULL, 0), LSM_OK);
	check_gen(db, 1, "after full compaction");
	lsm_stats_get(db, &st);
	ck_assert_uint_gt(st.blob_files, 0);
	ck_assert_uint_gt(st.blob_live_bytes, 0);
	/* The tables hold references, not the values: far fewer bytes than were written. */
	ck_assert_msg(st.table_bytes < st.blob_bytes_written / 4, "tables %llu bytes for %llu blob bytes",
		      (unsigned long long)st.table_bytes, (unsigned long long)st.blob_bytes_written);
	close_reopen_check(db, 256 << 10, 1, "after reopen");
}
END_TEST

/* A group of small puts, bigger in all than blob_min_size, holds no big value: no blob file is made
 * for it (the first version created one, a header and a directory sync, under the db mutex). */
START_TEST(blob_small_values_no_file)
{
	lsm_db *db = bopen(64 << 20);
	lsm_batch *b = lsm_batch_new();
	char k[24], v[100];
	memset(v, 'v', sizeof v);
	for (int i = 0; i < 40; i++) {
		snprintf(k, sizeof k, "small%02d", i);
		ck_assert_int_eq(lsm_batch_put(b, k, strlen(k), v, sizeof v), LSM_OK);
	}
	ck_assert_uint_gt(lsm_batch_bytes(b), 1024);
	ck_assert_int_eq(lsm_write(db, b, 0), LSM_OK);
	struct blob_count c = {0};
	ck_assert_int_eq(lsm_inspect_files(db, count_blob_files, &c), 0);
	ck_assert_int_eq(c.blobs, 0);
	char big[2000];
	memset(big, 'b', sizeof big);
	ck_assert_int_eq(lsm_put(db, "big", 3, big, sizeof big, 0), LSM_OK);
	memset(&c, 0, sizeof c);
	ck_assert_int_eq(lsm_inspect_files(db, count_blob_files, &c), 0);
	ck_assert_int_eq(c.blobs, 1);
	lsm_batch_free(b);
	ck_assert_int_eq(lsm_close(db), LSM_OK);
}
END_TEST

/* A close does not flush: the reopen replays references from the log and writes their values inline
 * (checked), so the blob files of unflushed memtables are no longer needed. */
START_TEST(blob_recovery)
{
	lsm_db *db = bopen(64 << 20);
	put_gen(db, 2);
	ck_assert_int_eq(lsm_close(db), LSM_OK);
	struct blob_count c = {0};
	db = bopen(64 << 20);
	check_gen(db, 2, "after reopen");
	ck_assert_int_eq(lsm_inspect_files(db, count_blob_files, &c), 0);
	ck_assert_int_eq(c.blobs, 0);
	put_gen(db, 3); /* and it takes big values again */
	check_gen(db, 3, "after more writes");
	close_reopen_check(db, 64 << 20, 3, "after a second reopen");
}
END_TEST

/* Overwrites turn blob files into garbage: compaction relocates what is still referenced and the old
 * files go away, so the blob bytes on disk stay near the live ones. */
START_TEST(blob_garbage)
{
	lsm_db *db = bopen(256 << 10);
	for (int g = 0; g < 8; g++) {
		put_gen(db, g);
		ck_assert_int_eq(lsm_flush(db), LSM_OK);
	}
	ck_assert_int_eq(lsm_compact_range(db, NULL, 0, NULL, 0), LSM_OK);
	check_gen(db, 7, "after overwrites and a full compaction");
	struct lsm_stats st;
	lsm_stats_get(db, &st);
	struct blob_count c = {0};
	ck_assert_int_eq(lsm_inspect_files(db, count_blob_files, &c), 0);
	/* 8 generations were written; what is left is about one of them. */
	ck_assert_msg(st.blob_live_bytes < st.blob_bytes_written / 4, "live %llu of %llu written",
		      (unsigned long long)st.blob_live_bytes, (unsigned long long)st.blob_bytes_written);
	ck_assert_int_eq(c.blobs, c.live); /* nothing unreferenced left behind */
	/* Relocation empties files below half live: what stays is at most about twice the live bytes. */
	ck_assert_msg(c.bytes < 2 * st.blob_live_bytes + (64 << 10), "%d blob files of %llu bytes for %llu live",
		      c.blobs, (unsigned long long)c.bytes, (unsigned long long)st.blob_live_bytes);
	ck_assert_uint_gt(st.blob_bytes_relocated, 0);
	close_reopen_check(db, 256 << 10, 7, "after reopen");
}
END_TEST

/* An iterator holds the memtable that referred to a blob file: a flush and a compaction that drop
 * every reference meanwhile must not delete the file under it. */
START_TEST(blob_pinned_by_iterator)
{
	lsm_db *db = bopen(64 << 20);
	static char v[10000];
	size_t n = make_value(1, 9, v);
	ck_assert_int_eq(lsm_put(db, "k1", 2, v, n, 0), LSM_OK);
	lsm_iter *it = lsm_iter_new(db, NULL);
	ck_assert_int_eq(lsm_delete(db, "k1", 2, 0), LSM_OK);
	ck_assert_int_eq(lsm_flush(db), LSM_OK);
	ck_assert_int_eq(lsm_compact_range(db, NULL, 0, NULL, 0), LSM_OK);
	lsm_iter_seek_first(it);
	ck_assert_msg(lsm_iter_valid(it), "iterator: %s", lsm_errmsg());
	ck_assert_uint_eq(lsm_iter_value_size(it), n);
	size_t vl;
	const char *got = lsm_iter_value(it, &vl);
	ck_assert_msg(got && vl == n && !memcmp(got, v, n), "value through the old memtable: %s", lsm_errmsg());
	lsm_iter_free(it);
	/* Released: the next obsolete-file pass (the flush thread's, after its install: lsm_flush may
	 * return first) deletes it. */
	ck_assert_int_eq(lsm_put(db, "k2", 2, "x", 1, 0), LSM_OK);
	ck_assert_int_eq(lsm_flush(db), LSM_OK);
	struct blob_count c = {0};
	for (int tries = 0; tries < 200; tries++) {
		memset(&c, 0, sizeof c);
		ck_assert_int_eq(lsm_inspect_files(db, count_blob_files, &c), 0);
		if (!c.blobs)
			break;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	ck_assert_int_eq(c.blobs, 0);
	ck_assert_int_eq(lsm_close(db), LSM_OK);
}
END_TEST

struct names {
	char blob[64], table[64];
};
static int find_names(void *arg, const char *name, const char *kind, uint64_t number, uint64_t size, int live)
{
	(void)number, (void)size;
	struct names *n = arg;
	if (live && !strcmp(kind, "blob"))
		snprintf(n->blob, sizeof n->blob, "%s/%s", DIR, name);
	if (live && !strcmp(kind, "table"))
		snprintf(n->table, sizeof n->table, "%s/%s", DIR, name);
	return 0;
}

/* A flipped byte in a blob file: the read fails naming the blob file, and so does the table check. */
START_TEST(blob_damage)
{
	lsm_db *db = bopen(64 << 20);
	put_gen(db, 4);
	ck_assert_int_eq(lsm_flush(db), LSM_OK);
	struct names n = {"", ""};
	ck_assert_int_eq(lsm_inspect_files(db, find_names, &n), 0);
	ck_assert(n.blob[0] && n.table[0]);
	ck_assert_int_eq(lsm_close(db), LSM_OK);
	ck_assert_int_eq(lsm_inspect_table_file(env, n.table, NULL, NULL, NULL), LSM_OK);
	char *data;
	size_t len;
	ck_assert_int_eq(lsm_env_read_all(env, n.blob, &data, &len), 0);
	ck_assert_uint_gt(len, 5000);
	data[5000] ^= 0x20; /* inside the first records */
	ck_assert_int_eq(lsm_env_write_all(env, n.blob, data, len, 1), 0);
	free(data);
	db = bopen(64 << 20);
	struct lsm_buf b = {0};
	int bad = 0;
	char k[16];
	for (int i = 0; i < NKEYS; i++) {
		key_of(i, k);
		int rc = lsm_get(db, NULL, k, strlen(k), &b);
		if (rc == LSM_CORRUPT) {
			bad++;
			ck_assert_msg(strstr(lsm_errmsg(), ".blob"), "message: %s", lsm_errmsg());
		} else {
			ck_assert_int_eq(rc, LSM_OK);
		}
	}
	lsm_buf_free(&b);
	ck_assert_int_eq(bad, 1);
	ck_assert_int_eq(lsm_close(db), LSM_OK);
	ck_assert_int_eq(lsm_inspect_table_file(env, n.table, NULL, NULL, NULL), LSM_CORRUPT);
	ck_assert_msg(strstr(lsm_errmsg(), ".blob"), "message: %s", lsm_errmsg());
}
END_TEST

/* Copy every file of DIR to dir (LOCK aside), cutting the blob files to half their size: what a
 * power loss leaves when log records reached the disk and the blob bytes they name did not. */
struct copy_ctx {
	const char *to;
};
static int copy_cut(void *arg, const char *name)
{
	struct copy_ctx *c = arg;
	if (!strcmp(name, "LOCK"))
		return 0;
	char from[128], to[128], *data;
	size_t len;
	snprintf(from, sizeof from, "%s/%s", DIR, name);
	snprintf(to, sizeof to, "%s/%s", c->to, name);
	ck_assert_int_eq(lsm_env_read_all(env, from, &data, &len), 0);
	if (strstr(name, ".blob"))
		len /= 2;
	ck_assert_int_eq(lsm_env_write_all(env, to, data, len, 1), 0);
	free(data);
	return 0;
}
static void copy_store_cut_blobs(const char *to)
{
	struct copy_ctx c = {to};
	ck_assert_int_eq(env->mkdir(env, to, 0700), 0);
	ck_assert_int_eq(env->list(env, DIR, copy_cut, &c), 0);
}

/* How many keys hold generation g, and whether they are a prefix of the keys (the rest absent). */
static int gen_prefix(lsm_db *db, int g)
{
	static char v[10000];
	char k[16];
	struct lsm_buf b = {0};
	int p = 0, gap = 0;
	for (int i = 0; i < NKEYS; i++) {
		key_of(i, k);
		size_t n = make_value(i, g, v);
		int rc = lsm_get(db, NULL, k, strlen(k), &b);
		if (rc == LSM_NOTFOUND) {
			gap = 1;
			continue;
		}
		ck_assert_msg(rc == LSM_OK, "get %s: %s", k, lsm_errmsg());
		ck_assert_msg(b.len == n && !memcmp(b.data, v, n), "get %s: wrong value", k);
		ck_assert_msg(!gap, "%s present after an absent key: not a prefix", k);
		p++;
	}
	lsm_buf_free(&b);
	return p;
}

/* Recovery's cut: an unsealed newest log whose records name blob bytes that did not survive ends there
 * as a torn tail (the store opens with a prefix of the writes); once a later record vouches for those
 * records (a clean close seals the log), the same loss is corruption; repair skips just those records. */
START_TEST(blob_recovery_cut)
{
	lsm_db *db = bopen(64 << 20);
	for (int i = 0; i < NKEYS; i++) { /* one log record per key */
		static char v[10000];
		char k[16];
		key_of(i, k);
		size_t n = make_value(i, 5, v);
		ck_assert_int_eq(lsm_put(db, k, strlen(k), v, n, 0), LSM_OK);
	}
	copy_store_cut_blobs("/torn"); /* as a kill -9 plus power loss would leave it: the log unsealed */
	ck_assert_int_eq(lsm_close(db), LSM_OK);
	copy_store_cut_blobs("/sealed");

	lsm_db *t;
	ck_assert_msg(bopen_at("/torn", 64 << 20, 0, &t) == LSM_OK, "open: %s", lsm_errmsg());
	struct lsm_stats st;
	lsm_stats_get(t, &st);
	ck_assert_uint_gt(st.wal_torn_bytes, 0);
	int p = gen_prefix(t, 5);
	ck_assert_msg(p > 0 && p < NKEYS, "prefix of %d keys", p);
	ck_assert_int_eq(lsm_close(t), LSM_OK);

	ck_assert_int_eq(bopen_at("/sealed", 64 << 20, 0, &t), LSM_CORRUPT);
	ck_assert_msg(strstr(lsm_errmsg(), "names a damaged blob value") && strstr(lsm_errmsg(), ".blob"),
		      "message: %s", lsm_errmsg());

	ck_assert_msg(bopen_at("/sealed", 64 << 20, 1, &t) == LSM_OK, "repair open: %s", lsm_errmsg());
	lsm_stats_get(t, &st);
	ck_assert_uint_gt(st.wal_skipped_records, 0);
	struct lsm_buf b = {0};
	int present = 0;
	for (int i = 0; i < NKEYS; i++) {
		char k[16];
		key_of(i, k);
		present += lsm_get(t, NULL, k, strlen(k), &b) == LSM_OK;
	}
	lsm_buf_free(&b);
	/* every inline value and the blob values before the cut; not those after it */
	ck_assert_uint_eq((uint64_t)(NKEYS - present), st.wal_skipped_records);
	ck_assert_int_eq(lsm_close(t), LSM_OK);
}
END_TEST

Suite *blob_suite(void)
{
	Suite *s = suite_create("blob");
	TCase *tc = tcase_create("blob");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, blob_read_paths);
	tcase_add_test(tc, blob_recovery);
	tcase_add_test(tc, blob_small_values_no_file);
	tcase_add_test(tc, blob_garbage);
	tcase_add_test(tc, blob_damage);
	tcase_add_test(tc, blob_pinned_by_iterator);
	tcase_add_test(tc, blob_recovery_cut);
	suite_add_tcase(s, tc);
	return s;
}
