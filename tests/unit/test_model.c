/*
 * test_model.c - the store against a trusted model: random puts, deletes, range deletes, batches, gets,
 * scans, snapshots, flushes, compactions and reopens, checked against a plain array; then crashes:
 * the fault env's power loss (dropping unsynced bytes) at random points and at every Nth env call,
 * and SIGKILL of a child process mid-workload. After a crash the store must equal the model after some
 * prefix of the acknowledged writes, no shorter than the last synced one.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "env.h"
#include "env_fault.h"
#include "lsm.h"
#include "testutil.h"

#define NKEYS 400
#define MAXV 6000

/* ---------------------------------------------------------------- the model */

struct model {
	char *v[NKEYS];
	size_t len[NKEYS];
	int present[NKEYS];
};

static void key_of(int i, char *k, size_t *kl)
{
	/* Varied lengths and shared prefixes: exercise prefix compression and separators. */
	if (i % 5 == 0)
		*kl = (size_t)snprintf(k, 64, "key%05d/with/a/longer/suffix", i);
	else
		*kl = (size_t)snprintf(k, 64, "key%05d", i);
}

/* The id of a key: the five digits after "key" (keys are not NUL-terminated). */
static int id_of(const char *k, size_t kl)
{
	int id = 0;
	for (size_t i = 3; i < 8 && i < kl; i++)
		id = id * 10 + (k[i] - '0');
	return id;
}

/* Keys sort by their id because the id is the zero-padded prefix. */
static void value_of(uint64_t seed, size_t len, char *out)
{
	struct rng r = {seed};
	for (size_t i = 0; i < len; i++)
		out[i] = (char)('a' + rng_below(&r, 26));
}

static void model_set(struct model *m, int k, uint64_t vseed, size_t len)
{
	free(m->v[k]);
	m->v[k] = malloc(len + 1);
	value_of(vseed, len, m->v[k]);
	m->len[k] = len;
	m->present[k] = 1;
}

static void model_del(struct model *m, int k)
{
	free(m->v[k]);
	m->v[k] = NULL;
	m->present[k] = 0;
}

static void model_copy(struct model *dst, const struct model *src)
{
	for (int i = 0; i < NKEYS; i++) {
		free(dst->v[i]);
		dst->v[i] = NULL;
		dst->present[i] = src->present[i];
		dst->len[i] = src->len[i];
		if (src->present[i]) {
			dst->v[i] = malloc(src->len[i] + 1);
			memcpy(dst->v[i], src->v[i], src->len[i]);
		}
	}
}

static void model_free(struct model *m)
{
	for (int i = 0; i < NKEYS; i++)
		free(m->v[i]);
	memset(m, 0, sizeof *m);
}

/* One primitive mutation. */
struct mut {
	int type; /* 0 put, 1 delete, 2 range delete [k, k2) */
	int k, k2;
	uint64_t vseed;
	size_t vlen;
};

/* One acknowledged (or attempted) write: its mutations. */
struct write {
	struct mut *m;
	int n;
	int sync;
};

static void apply_write(struct model *md, const struct write *w)
{
	for (int i = 0; i < w->n; i++) {
		const struct mut *u = &w->m[i];
		if (u->type == 0)
			model_set(md, u->k, u->vseed, u->vlen);
		else if (u->type == 1)
			model_del(md, u->k);
		else
			for (int k = u->k; k < u->k2; k++)
				model_del(md, k);
	}
}

/* Generate a random write (deterministic from the rng). */
static void gen_write(struct rng *r, struct write *w)
{
	int n = rng_below(r, 4) == 0 ? 1 + (int)rng_below(r, 8) : 1;
	w->m = calloc((size_t)n, sizeof *w->m);
	w->n = n;
	w->sync = rng_below(r, 10) == 0;
	for (int i = 0; i < n; i++) {
		struct mut *u = &w->m[i];
		uint64_t p = rng_below(r, 100);
		u->k = (int)rng_below(r, NKEYS);
		if (p < 70) {
			u->type = 0;
			u->vseed = rng_next(r);
			uint64_t q = rng_below(r, 100);
			u->vlen = q < 5 ? 0 : q < 90 ? rng_below(r, 120) : rng_below(r, MAXV);
		} else if (p < 92) {
			u->type = 1;
		} else {
			u->type = 2;
			u->k2 = u->k + (int)rng_below(r, 40);
			if (u->k2 > NKEYS)
				u->k2 = NKEYS;
		}
	}
}

static void write_free(struct write *w)
{
	free(w->m);
	w->m = NULL;
	w->n = 0;
}

/* Apply w to the store as one atomic write. */
static int do_write(lsm_db *db, const struct write *w)
{
	char k[64], k2[64], v[MAXV];
	size_t kl, kl2;
	if (w->n == 1) {
		const struct mut *u = &w->m[0];
		key_of(u->k, k, &kl);
		unsigned fl = w->sync ? LSM_SYNC : 0;
		if (u->type == 0) {
			value_of(u->vseed, u->vlen, v);
			return lsm_put(db, k, kl, v, u->vlen, fl);
		}
		if (u->type == 1)
			return lsm_delete(db, k, kl, fl);
		if (u->k2 >= NKEYS) {
			kl2 = (size_t)snprintf(k2, sizeof k2, "kez"); /* past every key */
		} else {
			key_of(u->k2, k2, &kl2);
			kl2 = 8; /* "key%05d": the id prefix sorts before every key with that id */
		}
		return lsm_delete_range(db, k, 8, k2, kl2, fl);
	}
	lsm_batch *b = lsm_batch_new();
	for (int i = 0; i < w->n; i++) {
		const struct mut *u = &w->m[i];
		key_of(u->k, k, &kl);
		if (u->type == 0) {
			value_of(u->vseed, u->vlen, v);
			lsm_batch_put(b, k, kl, v, u->vlen);
		} else if (u->type == 1) {
			lsm_batch_delete(b, k, kl);
		} else {
			if (u->k2 >= NKEYS) {
				kl2 = (size_t)snprintf(k2, sizeof k2, "kez");
			} else {
				key_of(u->k2, k2, &kl2);
				kl2 = 8;
			}
			lsm_batch_delete_range(b, k, 8, k2, kl2);
		}
	}
	int rc = lsm_write(db, b, w->sync ? LSM_SYNC : 0);
	lsm_batch_free(b);
	return rc;
}

/* ---------------------------------------------------------------- comparing */

/* Read the whole store with an iterator into m (as seen at snap). Returns the iterator status. */
static int read_all(lsm_db *db, const lsm_snapshot *snap, struct model *m)
{
	model_free(m);
	struct lsm_read_options ro = {.snapshot = snap};
	lsm_iter *it = lsm_iter_new(db, &ro);
	for (lsm_iter_seek_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *k = lsm_iter_key(it, &kl);
		const char *v = lsm_iter_value(it, &vl);
		int id = id_of(k, kl);
		char ek[64];
		size_t ekl;
		key_of(id, ek, &ekl);
		ck_assert_msg(id < NKEYS && kl == ekl && !memcmp(k, ek, kl),
			      "iterator returned a key never written: %.*s", (int)kl, k);
		ck_assert_msg(!m->present[id], "iterator returned key %d twice", id);
		m->present[id] = 1;
		m->len[id] = vl;
		m->v[id] = malloc(vl + 1);
		memcpy(m->v[id], v, vl);
	}
	int st = lsm_iter_status(it);
	lsm_iter_free(it);
	return st;
}

static int model_eq(const struct model *a, const struct model *b, int *where)
{
	for (int i = 0; i < NKEYS; i++) {
		if (a->present[i] != b->present[i] ||
		    (a->present[i] && (a->len[i] != b->len[i] || memcmp(a->v[i], b->v[i], a->len[i])))) {
			*where = i;
			return 0;
		}
	}
	return 1;
}

static void check_equal(lsm_db *db, const struct model *md, const lsm_snapshot *snap, uint64_t seed, long step)
{
	struct model got = {0};
	int st = read_all(db, snap, &got);
	ck_assert_msg(st == 0, "seed %llu step %ld: iterator error %d: %s", (unsigned long long)seed, step, st,
		      lsm_errmsg());
	int where = -1;
	ck_assert_msg(model_eq(md, &got, &where), "seed %llu step %ld: scan differs from the model at key %d "
		      "(model %s %zu bytes, store %s %zu bytes)", (unsigned long long)seed, step, where,
		      md->present[where] ? "has" : "lacks", md->len[where], got.present[where] ? "has" : "lacks",
		      got.len[where]);
	model_free(&got);
}

static void check_gets(lsm_db *db, const struct model *md, const lsm_snapshot *snap, struct rng *r, int n,
		       uint64_t seed, long step)
{
	struct lsm_buf b = {0};
	struct lsm_read_options ro = {.snapshot = snap};
	for (int i = 0; i < n; i++) {
		int k = (int)rng_below(r, NKEYS);
		char key[64];
		size_t kl;
		key_of(k, key, &kl);
		int rc = lsm_get(db, &ro, key, kl, &b);
		if (md->present[k]) {
			ck_assert_msg(rc == LSM_OK, "seed %llu step %ld: get key %d: rc %d (%s), model has it",
				      (unsigned long long)seed, step, k, rc, lsm_errmsg());
			ck_assert_msg(b.len == md->len[k] && (!b.len || !memcmp(b.data, md->v[k], b.len)),
				      "seed %llu step %ld: get key %d: wrong value", (unsigned long long)seed, step, k);
		} else {
			ck_assert_msg(rc == LSM_NOTFOUND, "seed %llu step %ld: get key %d: rc %d, model lacks it",
				      (unsigned long long)seed, step, k, rc);
		}
	}
	lsm_buf_free(&b);
}

static void check_seek(lsm_db *db, const struct model *md, struct rng *r, uint64_t seed, long step)
{
	lsm_iter *it = lsm_iter_new(db, NULL);
	int k = (int)rng_below(r, NKEYS);
	char key[64];
	size_t kl;
	key_of(k, key, &kl);
	lsm_iter_seek(it, key, kl);
	for (int want = k, n = 0; n < 20; n++, want++) {
		while (want < NKEYS && !md->present[want])
			want++;
		if (want >= NKEYS) {
			ck_assert_msg(!lsm_iter_valid(it), "seed %llu step %ld: seek ran past the last key",
				      (unsigned long long)seed, step);
			break;
		}
		ck_assert_msg(lsm_iter_valid(it), "seed %llu step %ld: seek from %d ended early before %d",
			      (unsigned long long)seed, step, k, want);
		size_t l;
		const char *got = lsm_iter_key(it, &l);
		ck_assert_msg(id_of(got, l) == want, "seed %llu step %ld: seek from %d gave %d, want %d",
			      (unsigned long long)seed, step, k, id_of(got, l), want);
		lsm_iter_next(it);
	}
	ck_assert_int_eq(lsm_iter_status(it), 0);
	lsm_iter_free(it);
}

/* ---------------------------------------------------------------- the basic model test */

static lsm_db *open_store(lsm_env *env, const char *dir, struct rng *r)
{
	struct lsm_options o;
	lsm_options_init(&o);
	o.env = env;
	/* Tiny memtables and tables: many flushes, compactions and levels in a short test. */
	o.write_buffer_size = 8192 + rng_below(r, 64 << 10);
	o.table_target_size = 8192 + rng_below(r, 32 << 10);
	o.level1_max_bytes = 32 << 10;
	o.block_size = 256 + rng_below(r, 4096);
	o.block_restart_interval = 1 + (int)rng_below(r, 16);
	o.bloom_bits_per_key = rng_below(r, 4) == 0 ? 0 : 10;
	o.l0_compaction_trigger = 2 + (int)rng_below(r, 3);
	o.block_cache_size = rng_below(r, 2) ? 0 : 1 << 20;
	o.max_open_tables = 16 + (int)rng_below(r, 32);
	lsm_db *db;
	int rc = lsm_open(dir, &o, &db);
	ck_assert_msg(rc == LSM_OK, "open: %s", lsm_errmsg());
	return db;
}

struct snap_slot {
	const lsm_snapshot *s;
	struct model m;
};

START_TEST(model_random_ops)
{
	uint64_t seed = test_seed("model_random_ops");
	struct rng r = {seed};
	lsm_env *env = lsm_env_mem_new();
	lsm_db *db = open_store(env, "/m", &r);
	struct model md = {0};
	struct snap_slot snaps[4] = {{0}};
	long steps = 4000L * test_scale();
	for (long step = 0; step < steps; step++) {
		uint64_t p = rng_below(&r, 1000);
		if (p < 700) {
			struct write w;
			gen_write(&r, &w);
			int rc = do_write(db, &w);
			ck_assert_msg(rc == 0, "seed %llu step %ld: write failed: %s", (unsigned long long)seed, step,
				      lsm_errmsg());
			apply_write(&md, &w);
			write_free(&w);
		} else if (p < 850) {
			check_gets(db, &md, NULL, &r, 5, seed, step);
		} else if (p < 880) {
			check_seek(db, &md, &r, seed, step);
		} else if (p < 895) {
			check_equal(db, &md, NULL, seed, step);
		} else if (p < 930) {
			/* Take, check or release a snapshot. */
			struct snap_slot *s = &snaps[rng_below(&r, 4)];
			if (!s->s) {
				s->s = lsm_snapshot_create(db);
				model_copy(&s->m, &md);
			} else if (rng_below(&r, 3)) {
				check_gets(db, &s->m, s->s, &r, 5, seed, step);
				if (rng_below(&r, 4) == 0)
					check_equal(db, &s->m, s->s, seed, step);
			} else {
				lsm_snapshot_release(db, s->s);
				s->s = NULL;
				model_free(&s->m);
			}
		} else if (p < 950) {
			ck_assert_int_eq(lsm_flush(db), 0);
		} else if (p < 960) {
			int rc = lsm_compact_range(db, NULL, 0, NULL, 0);
			ck_assert_msg(rc == 0, "seed %llu step %ld: compact: %s", (unsigned long long)seed, step,
				      lsm_errmsg());
		} else if (p < 970) {
			/* Reopen: snapshots do not survive it. */
			for (int i = 0; i < 4; i++)
				if (snaps[i].s) {
					check_equal(db, &snaps[i].m, snaps[i].s, seed, step);
					lsm_snapshot_release(db, snaps[i].s);
					snaps[i].s = NULL;
					model_free(&snaps[i].m);
				}
			ck_assert_int_eq(lsm_close(db), 0);
			db = open_store(env, "/m", &r);
			check_equal(db, &md, NULL, seed, step);
		}
	}
	check_equal(db, &md, NULL, seed, steps);
	for (int i = 0; i < 4; i++)
		if (snaps[i].s) {
			check_equal(db, &snaps[i].m, snaps[i].s, seed, steps);
			lsm_snapshot_release(db, snaps[i].s);
			model_free(&snaps[i].m);
		}
	/* Everything compacted to the bottom: garbage must be gone, data intact. */
	ck_assert_int_eq(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
	check_equal(db, &md, NULL, seed, steps);
	struct lsm_stats st;
	lsm_stats_get(db, &st);
	ck_assert_uint_gt(st.flushes, 0);
	ck_assert_uint_gt(st.compactions, 0);
	ck_assert_int_eq(lsm_close(db), 0);
	model_free(&md);
	env->destroy(env);
}
END_TEST

/* ---------------------------------------------------------------- crashes */

/* After a crash: the store must hold base + writes[0..p) for some p with min_p <= p <= n. */
static void check_prefix(lsm_db *db, const struct model *base, struct write *ws, int n, int min_p, uint64_t seed,
			 const char *what)
{
	struct model got = {0}, cur = {0};
	int st = read_all(db, NULL, &got);
	ck_assert_msg(st == 0, "seed %llu %s: scan after recovery: %s", (unsigned long long)seed, what, lsm_errmsg());
	model_copy(&cur, base);
	int match = -1, where = -1;
	for (int p = 0; p <= n; p++) {
		if (p > 0)
			apply_write(&cur, &ws[p - 1]);
		if (p >= min_p && model_eq(&cur, &got, &where)) {
			match = p;
			break;
		}
	}
	if (match < 0) {
		/* Say how the closest candidates differ, to make a failure readable. */
		model_copy(&cur, base);
		for (int p = 0; p <= n; p++) {
			if (p > 0)
				apply_write(&cur, &ws[p - 1]);
			if (p >= min_p && p + 3 > n) {
				model_eq(&cur, &got, &where);
				fprintf(stderr, "  prefix %d: first difference at key %d (model %s %zu, store %s %zu)\n", p,
					where, cur.present[where] ? "has" : "lacks", cur.len[where],
					got.present[where] ? "has" : "lacks", got.len[where]);
			}
		}
	}
	ck_assert_msg(match >= 0, "seed %llu %s: recovered store equals no prefix of the %d writes at least %d "
		      "long", (unsigned long long)seed, what, n, min_p);
	model_free(&got);
	model_free(&cur);
}

/* Run a workload on a fault env armed to crash after `crash_at` calls; recover; check. Returns the
 * number of env calls the workload made (for the every-N sweep). */
static uint64_t crash_cycle(uint64_t seed, uint64_t crash_at, int nwrites)
{
	struct rng r = {seed};
	lsm_env *mem = lsm_env_mem_new();
	lsm_env *fe = lsm_fault_env_new(mem);
	struct model base = {0};
	struct write *ws = calloc((size_t)nwrites + 1, sizeof *ws);
	int acked = 0, synced = 0;
	struct rng cfg = {seed ^ 0x5bd1e995};
	lsm_db *db = open_store(fe, "/c", &cfg);
	if (crash_at)
		lsm_fault_set_crash_after(fe, crash_at);
	int n = 0; /* writes attempted: a failed one may or may not be durable */
	while (n < nwrites) {
		gen_write(&r, &ws[n]);
		int rc = do_write(db, &ws[n]);
		n++;
		if (rc)
			break;
		acked = n;
		if (ws[n - 1].sync)
			synced = n;
		if (rng_below(&r, 50) == 0 && lsm_flush(db))
			break;
	}
	uint64_t calls = lsm_fault_calls(fe);
	lsm_close(db); /* with a crashed env this runs its error paths */
	ck_assert_int_eq(lsm_fault_crash(fe), 0);
	struct rng cfg2 = {seed ^ 0x5bd1e995};
	db = open_store(fe, "/c", &cfg2);
	char what[64];
	snprintf(what, sizeof what, "crash after call %llu", (unsigned long long)crash_at);
	check_prefix(db, &base, ws, n, crash_at ? synced : acked, seed, what);
	ck_assert_int_eq(lsm_close(db), 0);
	for (int i = 0; i < nwrites; i++)
		write_free(&ws[i]);
	free(ws);
	model_free(&base);
	fe->destroy(fe);
	mem->destroy(mem);
	return calls;
}

START_TEST(model_crash_random_points)
{
	uint64_t seed = test_seed("model_crash_random_points");
	struct rng r = {seed};
	int cycles = 40 * test_scale();
	for (int i = 0; i < cycles; i++) {
		uint64_t s = rng_next(&r);
		crash_cycle(s, 1 + rng_below(&r, 3000), 600);
	}
}
END_TEST

START_TEST(model_crash_every_call)
{
	uint64_t seed = test_seed("model_crash_every_call");
	/* A short workload; a dry run counts its env calls, then a crash after every N of them. */
	uint64_t calls = crash_cycle(seed, 0, 300);
	ck_assert_uint_gt(calls, 20);
	for (uint64_t n = 1; n <= calls + 5; n++)
		crash_cycle(seed, n, 300);
	fprintf(stderr, "model_crash_every_call: %llu crash points, each recovered correctly\n",
		(unsigned long long)calls + 5);
}
END_TEST

/* Process death: a child writes and reports each acknowledged write through a pipe; the parent kills
 * it with SIGKILL at a random moment. Everything acknowledged was handed to the kernel, so all of it
 * must survive (the page cache outlives the process). */
START_TEST(model_sigkill)
{
	uint64_t seed = test_seed("model_sigkill");
	struct rng r = {seed};
	char dir[128];
	test_tmpdir(dir, sizeof dir);
	int cycles = 6 * test_scale();
	struct model base = {0};
	for (int c = 0; c < cycles; c++) {
		uint64_t ws_seed = rng_next(&r);
		int nw = 3000;
		int fd[2];
		ck_assert_int_eq(pipe(fd), 0);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			close(fd[0]);
			struct rng wr = {ws_seed}, cfg = {ws_seed ^ 1};
			lsm_db *db = open_store(NULL, dir, &cfg);
			for (int i = 0; i < nw; i++) {
				struct write w;
				gen_write(&wr, &w);
				if (do_write(db, &w))
					_exit(3);
				write_free(&w);
				int one = i + 1;
				if (write(fd[1], &one, sizeof one) != sizeof one)
					_exit(4);
			}
			lsm_close(db);
			_exit(0);
		}
		close(fd[1]);
		/* Let it run for a random number of acknowledged writes, then kill it. */
		int target = 1 + (int)rng_below(&r, nw - 1), acked = 0, x;
		while (acked < target && read(fd[0], &x, sizeof x) == sizeof x)
			acked = x;
		kill(pid, SIGKILL);
		int status;
		waitpid(pid, &status, 0);
		while (read(fd[0], &x, sizeof x) == sizeof x)
			acked = x;
		close(fd[0]);
		/* Regenerate the child's writes. */
		struct rng wr = {ws_seed}, cfg = {ws_seed ^ 1};
		struct write *ws = calloc((size_t)nw, sizeof *ws);
		for (int i = 0; i < nw; i++)
			gen_write(&wr, &ws[i]);
		lsm_db *db = open_store(NULL, dir, &cfg);
		check_prefix(db, &base, ws, acked + 1 < nw ? acked + 1 : nw, acked, ws_seed, "after SIGKILL");
		/* The recovered state is the base of the next cycle. */
		struct model got = {0};
		ck_assert_int_eq(read_all(db, NULL, &got), 0);
		model_copy(&base, &got);
		model_free(&got);
		ck_assert_int_eq(lsm_close(db), 0);
		for (int i = 0; i < nw; i++)
			write_free(&ws[i]);
		free(ws);
	}
	model_free(&base);
	test_rmrf(dir);
}
END_TEST

Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("model");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, model_random_ops);
	tcase_add_test(tc, model_crash_random_points);
	tcase_add_test(tc, model_crash_every_call);
	tcase_add_test(tc, model_sigkill);
	suite_add_tcase(s, tc);
	return s;
}
