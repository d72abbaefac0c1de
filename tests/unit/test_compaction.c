/* test_compaction.c - what the compaction picker and the compaction job promise, seen from outside:
 * after background work settles, level 0 is below its trigger, every level >= 1 is sorted, its tables
 * do not overlap and it is within its size target; a full compact_range leaves one level holding each
 * live key exactly once (no tombstone, no old version) unless a snapshot still needs it. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "env.h"
#include "lsm.h"
#include "lsm_inspect.h"
#include "testutil.h"

#define L1_MAX (64u << 10)

struct tabs {
	int n;
	struct {
		int level;
		char lo[32], hi[32];
		size_t lol, hil;
		uint64_t size, entries, deletes, range_dels;
	} t[4096];
};

static int collect(void *arg, const struct lsm_table_info *ti)
{
	struct tabs *ts = arg;
	ck_assert_int_lt(ts->n, 4096);
	ck_assert_uint_le(ti->smallest_len, 32);
	ck_assert_uint_le(ti->largest_len, 32);
	ts->t[ts->n].level = ti->level;
	memcpy(ts->t[ts->n].lo, ti->smallest, ti->smallest_len);
	ts->t[ts->n].lol = ti->smallest_len;
	memcpy(ts->t[ts->n].hi, ti->largest, ti->largest_len);
	ts->t[ts->n].hil = ti->largest_len;
	ts->t[ts->n].size = ti->size;
	ts->t[ts->n].entries = ti->entries;
	ts->t[ts->n].deletes = ti->deletes;
	ts->t[ts->n].range_dels = ti->range_dels;
	ts->n++;
	return 0;
}

static int kcmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static struct tabs *tables(lsm_db *db)
{
	struct tabs *ts = calloc(1, sizeof *ts);
	ck_assert_ptr_nonnull(ts);
	ck_assert_int_eq(lsm_inspect_tables(db, collect, ts), 0);
	return ts;
}

/* Wait until background work has settled: no immutable memtable and no compaction for 300 ms. */
static void settle(lsm_db *db)
{
	struct lsm_stats a, b;
	lsm_stats_get(db, &a);
	for (int quiet = 0, i = 0; quiet < 6 && i < 600; i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
		lsm_stats_get(db, &b);
		quiet = (b.compactions == a.compactions && b.flushes == a.flushes && b.imm_count == 0) ? quiet + 1 : 0;
		a = b;
	}
}

static lsm_db *open_small(lsm_env *env, const char *dir)
{
	struct lsm_options o;
	lsm_options_init(&o);
	o.env = env;
	o.write_buffer_size = 16 << 10;
	o.table_target_size = 8 << 10;
	o.level1_max_bytes = L1_MAX;
	o.l0_compaction_trigger = 4;
	lsm_db *db;
	ck_assert_int_eq(lsm_open(dir, &o, &db), 0);
	return db;
}

static void put_key(lsm_db *db, uint64_t k, uint64_t ver)
{
	char key[17], val[100];
	snprintf(key, sizeof key, "%016llu", (unsigned long long)k);
	memset(val, 'a' + (int)(ver % 26), sizeof val);
	snprintf(val, sizeof val, "%llu-%llu", (unsigned long long)k, (unsigned long long)ver);
	ck_assert_int_eq(lsm_put(db, key, 16, val, sizeof val, 0), 0);
}

START_TEST(levels_shape_after_random_load)
{
	uint64_t seed = test_seed("levels_shape_after_random_load");
	struct rng rng = {seed};
	lsm_env *env = lsm_env_mem_new();
	lsm_db *db = open_small(env, "/c");
	long n = 20000L * test_scale();
	for (long i = 0; i < n; i++)
		put_key(db, rng_below(&rng, 5000), (uint64_t)i);
	ck_assert_int_eq(lsm_flush(db), 0);
	settle(db);
	struct tabs *ts = tables(db);
	uint64_t level_bytes[LSM_MAX_LEVELS] = {0};
	int level_tables[LSM_MAX_LEVELS] = {0};
	for (int i = 0; i < ts->n; i++) {
		level_bytes[ts->t[i].level] += ts->t[i].size;
		level_tables[ts->t[i].level]++;
		ck_assert_int_le(kcmp(ts->t[i].lo, ts->t[i].lol, ts->t[i].hi, ts->t[i].hil), 0);
		/* Levels >= 1: in key order, no two tables overlap. */
		if (i > 0 && ts->t[i].level > 0 && ts->t[i - 1].level == ts->t[i].level)
			ck_assert_msg(kcmp(ts->t[i - 1].hi, ts->t[i - 1].hil, ts->t[i].lo, ts->t[i].lol) < 0,
				      "level %d: tables %d and %d overlap", ts->t[i].level, i - 1, i);
	}
	ck_assert_msg(level_tables[0] < 4, "level 0 has %d tables after settling (trigger 4)", level_tables[0]);
	uint64_t target = L1_MAX;
	int deepest = 0;
	for (int l = 1; l < LSM_MAX_LEVELS; l++, target *= 10) {
		if (level_tables[l])
			deepest = l;
		/* A level may end a compaction a little over its target (the last output table). */
		ck_assert_msg(level_bytes[l] <= target + (16u << 10), "level %d holds %llu bytes, target %llu", l,
			      (unsigned long long)level_bytes[l], (unsigned long long)target);
	}
	ck_assert_int_ge(deepest, 2); /* 20k x ~120 bytes cannot fit in a 64 KiB level 1 */
	struct lsm_stats st;
	lsm_stats_get(db, &st);
	ck_assert_uint_gt(st.compactions, 0);
	/* What compacting level 0 would rewrite: level 0 and the part of level 1 it overlaps. */
	ck_assert_uint_ge(st.l0_compaction_bytes, st.level_bytes[0]);
	ck_assert_uint_le(st.l0_compaction_bytes, st.level_bytes[0] + st.level_bytes[1]);
	if (st.level_tables[0] == 0)
		ck_assert_uint_eq(st.l0_compaction_bytes, 0);
	free(ts);
	ck_assert_int_eq(lsm_close(db), 0);
	env->destroy(env);
}
END_TEST

static uint64_t count(struct tabs *ts, int what)
{
	uint64_t c = 0;
	for (int i = 0; i < ts->n; i++)
		c += what == 0 ? ts->t[i].entries : what == 1 ? ts->t[i].deletes : ts->t[i].range_dels;
	return c;
}

START_TEST(full_compaction_keeps_one_version)
{
	lsm_env *env = lsm_env_mem_new();
	lsm_db *db = open_small(env, "/c");
	/* 3000 keys, each written three times; every third deleted; a range of 100 deleted. */
	for (int v = 0; v < 3; v++)
		for (uint64_t k = 0; k < 3000; k++)
			put_key(db, k, v);
	for (uint64_t k = 0; k < 3000; k += 3) {
		char key[17];
		snprintf(key, sizeof key, "%016llu", (unsigned long long)k);
		ck_assert_int_eq(lsm_delete(db, key, 16, 0), 0);
	}
	ck_assert_int_eq(lsm_delete_range(db, "0000000000001000", 16, "0000000000001100", 16, 0), 0);

	/* A snapshot taken now pins the deletes; compacting must keep what it needs. */
	const lsm_snapshot *snap = lsm_snapshot_create(db);
	put_key(db, 1, 99);
	ck_assert_int_eq(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
	struct lsm_buf b = {0};
	struct lsm_read_options ro = {.snapshot = snap};
	ck_assert_int_eq(lsm_get(db, &ro, "0000000000000001", 16, &b), 0);
	ck_assert_int_eq(strncmp(b.data, "1-2", 3), 0);
	ck_assert_int_eq(lsm_get(db, NULL, "0000000000000001", 16, &b), 0);
	ck_assert_int_eq(strncmp(b.data, "1-99", 4), 0);
	lsm_snapshot_release(db, snap);
	/* (Compacting again now would not rewrite the bottom level: like LevelDB's CompactRange, a
	 * manual compaction moves data down and leaves the last level as it is.) */
	struct tabs *ts = tables(db);
	int level = -1;
	for (int i = 0; i < ts->n; i++) {
		if (level < 0)
			level = ts->t[i].level;
		ck_assert_int_eq(ts->t[i].level, level); /* everything in one level */
	}
	ck_assert_int_gt(level, 0);
	/* Live keys: 3000 - 1000 deleted - the undeleted ones in [1000, 1100) (67 of the 100). */
	uint64_t live = 0;
	for (uint64_t k = 0; k < 3000; k++)
		live += k % 3 != 0 && !(k >= 1000 && k < 1100);
	/* Every live key once, plus the version of key 1 that the snapshot needed; the deletes were
	 * older than the snapshot, so at the bottom they and what they hid are gone. */
	ck_assert_uint_eq(count(ts, 0), live + 1);
	ck_assert_uint_eq(count(ts, 1), 0);
	ck_assert_uint_eq(count(ts, 2), 0);
	for (uint64_t k = 0; k < 3000; k++) {
		char key[17];
		snprintf(key, sizeof key, "%016llu", (unsigned long long)k);
		int rc = lsm_get(db, NULL, key, 16, &b);
		int want = k % 3 != 0 && !(k >= 1000 && k < 1100);
		ck_assert_int_eq(rc, want ? LSM_OK : LSM_NOTFOUND);
	}
	lsm_buf_free(&b);
	free(ts);
	ck_assert_int_eq(lsm_close(db), 0);
	env->destroy(env);
}
END_TEST

START_TEST(compact_part_of_the_range)
{
	lsm_env *env = lsm_env_mem_new();
	lsm_db *db = open_small(env, "/c");
	for (uint64_t k = 0; k < 4000; k++)
		put_key(db, k, 0);
	ck_assert_int_eq(lsm_delete_range(db, "0000000000000000", 16, "0000000000002000", 16, 0), 0);
	ck_assert_int_eq(lsm_compact_range(db, "0000000000000000", 16, "0000000000002000", 16), 0);
	settle(db);
	/* The deleted half is gone from the tables: nothing stored below key 2000 but tombstones that a
	 * deeper level might still need (none here: everything went to the bottom). */
	struct tabs *ts = tables(db);
	uint64_t stored = count(ts, 0);
	ck_assert_uint_le(stored, 2000 + 200); /* the other half (and some overlap at the boundary table) */
	ck_assert_uint_ge(stored, 2000);
	struct lsm_buf b = {0};
	ck_assert_int_eq(lsm_get(db, NULL, "0000000000001999", 16, &b), LSM_NOTFOUND);
	ck_assert_int_eq(lsm_get(db, NULL, "0000000000002000", 16, &b), LSM_OK);
	lsm_buf_free(&b);
	free(ts);
	ck_assert_int_eq(lsm_close(db), 0);
	env->destroy(env);
}
END_TEST

Suite *compaction_suite(void)
{
	Suite *s = suite_create("compaction");
	TCase *tc = tcase_create("compaction");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, levels_shape_after_random_load);
	tcase_add_test(tc, full_compaction_keeps_one_version);
	tcase_add_test(tc, compact_part_of_the_range);
	suite_add_tcase(s, tc);
	return s;
}
