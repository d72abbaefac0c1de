/* test_concurrency.c - writers, readers, snapshots and background work at once: a reader must never
 * see a batch half-applied, and what it saw once must not go backwards. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "lsm.h"
#include "testutil.h"

#define NWRITERS 3
#define NREADERS 3
#define KEYS_PER_BATCH 4

struct shared {
	lsm_db *db;
	_Atomic int stop;
	_Atomic long errors;
	uint64_t seed;
	char msg[256];
	pthread_mutex_t msg_mu;
};

static void report_error(struct shared *s, const char *m)
{
	pthread_mutex_lock(&s->msg_mu);
	if (!atomic_load(&s->errors))
		snprintf(s->msg, sizeof s->msg, "%s", m);
	atomic_fetch_add(&s->errors, 1);
	pthread_mutex_unlock(&s->msg_mu);
}

struct wargs {
	struct shared *s;
	int id;
	long iters;
};

/* Writer t sets keys "t-0".."t-3" to the same counter in one batch, with filler keys to drive
 * flushes and compactions. */
static void *writer(void *arg)
{
	struct wargs *a = arg;
	lsm_batch *b = lsm_batch_new();
	char k[32], v[64], filler[200];
	memset(filler, 'f', sizeof filler);
	for (long i = 1; i <= a->iters && !atomic_load(&a->s->stop); i++) {
		lsm_batch_clear(b);
		snprintf(v, sizeof v, "%ld", i);
		for (int j = 0; j < KEYS_PER_BATCH; j++) {
			int n = snprintf(k, sizeof k, "w%d-%d", a->id, j);
			lsm_batch_put(b, k, (size_t)n, v, strlen(v));
		}
		int n = snprintf(k, sizeof k, "z%d-%ld", a->id, i % 500);
		lsm_batch_put(b, k, (size_t)n, filler, sizeof filler);
		if (i % 97 == 0) {
			n = snprintf(k, sizeof k, "z%d-", a->id);
			char e[32];
			int en = snprintf(e, sizeof e, "z%d-5", a->id);
			lsm_batch_delete_range(b, k, (size_t)n, e, (size_t)en);
		}
		if (lsm_write(a->s->db, b, i % 50 == 0 ? LSM_SYNC : 0)) {
			report_error(a->s, "write failed");
			break;
		}
	}
	lsm_batch_free(b);
	return NULL;
}

/* Readers check each writer's keys all agree, through a snapshot + gets and through iterators, and
 * that the counters they observe never decrease. */
static void *reader(void *arg)
{
	struct wargs *a = arg;
	struct shared *s = a->s;
	long last[NWRITERS] = {0};
	struct lsm_buf b = {0};
	struct rng r = {s->seed + (uint64_t)a->id};
	while (!atomic_load(&s->stop)) {
		if (rng_below(&r, 2)) {
			const lsm_snapshot *snap = lsm_snapshot_create(s->db);
			struct lsm_read_options ro = {.snapshot = snap};
			int w = (int)rng_below(&r, NWRITERS);
			long first = -1;
			for (int j = 0; j < KEYS_PER_BATCH; j++) {
				char k[32];
				int n = snprintf(k, sizeof k, "w%d-%d", w, j);
				int rc = lsm_get(s->db, &ro, k, (size_t)n, &b);
				long val = 0;
				if (rc == LSM_OK) {
					char tmp[32];
					memcpy(tmp, b.data, b.len < 31 ? b.len : 31);
					tmp[b.len < 31 ? b.len : 31] = 0;
					val = atol(tmp);
				} else if (rc != LSM_NOTFOUND) {
					report_error(s, "get failed");
				}
				if (first < 0)
					first = val;
				else if (val != first)
					report_error(s, "a snapshot saw a batch half-applied (gets)");
			}
			if (first < last[w])
				report_error(s, "a counter went backwards");
			last[w] = first;
			lsm_snapshot_release(s->db, snap);
		} else {
			lsm_iter *it = lsm_iter_new(s->db, NULL);
			long vals[NWRITERS][KEYS_PER_BATCH];
			memset(vals, 0, sizeof vals);
			lsm_iter_seek(it, "w", 1);
			for (; lsm_iter_valid(it); lsm_iter_next(it)) {
				size_t kl, vl;
				const char *k = lsm_iter_key(it, &kl);
				if (kl < 4 || k[0] != 'w')
					break;
				const char *v = lsm_iter_value(it, &vl);
				char tmp[32];
				memcpy(tmp, v, vl < 31 ? vl : 31);
				tmp[vl < 31 ? vl : 31] = 0;
				int w = k[1] - '0', j = k[3] - '0';
				if (w >= 0 && w < NWRITERS && j >= 0 && j < KEYS_PER_BATCH)
					vals[w][j] = atol(tmp);
			}
			if (lsm_iter_status(it))
				report_error(s, "iterator error");
			lsm_iter_free(it);
			for (int w = 0; w < NWRITERS; w++) {
				for (int j = 1; j < KEYS_PER_BATCH; j++)
					if (vals[w][j] != vals[w][0])
						report_error(s, "an iterator saw a batch half-applied");
				if (vals[w][0] < last[w])
					report_error(s, "a counter went backwards (iterator)");
				last[w] = vals[w][0];
			}
		}
	}
	lsm_buf_free(&b);
	return NULL;
}

START_TEST(writers_and_readers)
{
	struct shared s;
	memset(&s, 0, sizeof s);
	pthread_mutex_init(&s.msg_mu, NULL);
	s.seed = test_seed("writers_and_readers");
	lsm_env *env = lsm_env_mem_new();
	struct lsm_options o;
	lsm_options_init(&o);
	o.env = env;
	o.write_buffer_size = 32 << 10;
	o.table_target_size = 16 << 10;
	o.level1_max_bytes = 64 << 10;
	ck_assert_int_eq(lsm_open("/c", &o, &s.db), 0);
	pthread_t wt[NWRITERS], rt[NREADERS];
	struct wargs wa[NWRITERS], ra[NREADERS];
	for (int i = 0; i < NWRITERS; i++) {
		wa[i] = (struct wargs){&s, i, 3000L * test_scale()};
		pthread_create(&wt[i], NULL, writer, &wa[i]);
	}
	for (int i = 0; i < NREADERS; i++) {
		ra[i] = (struct wargs){&s, i, 0};
		pthread_create(&rt[i], NULL, reader, &ra[i]);
	}
	for (int i = 0; i < NWRITERS; i++)
		pthread_join(wt[i], NULL);
	atomic_store(&s.stop, 1);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(rt[i], NULL);
	ck_assert_msg(atomic_load(&s.errors) == 0, "%ld errors, first: %s", atomic_load(&s.errors), s.msg);
	struct lsm_stats st;
	lsm_stats_get(s.db, &st);
	ck_assert_uint_gt(st.flushes, 0);
	ck_assert_uint_gt(st.compactions, 0);
	/* Group commit folded concurrent writers together at least sometimes. */
	ck_assert_uint_le(st.groups, st.batches);
	ck_assert_int_eq(lsm_close(s.db), 0);
	env->destroy(env);
	pthread_mutex_destroy(&s.msg_mu);
}
END_TEST

Suite *concurrency_suite(void)
{
	Suite *s = suite_create("concurrency");
	TCase *tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, writers_and_readers);
	suite_add_tcase(s, tc);
	return s;
}
