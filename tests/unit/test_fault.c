/*
 * test_fault.c - every-N fault injection: a short workload (tiny memtables and tables, so that it
 * flushes, compacts, rolls the log and writes the manifest many times; range deletes; snapshots) runs
 * on the fault env, which fails its Nth env call, for every N from 1 past the last call the workload
 * makes, with EIO, with ENOSPC and as a short write (half an append, then the error).
 *
 * What must hold for every N:
 *  - no crash, no sanitizer report (make asan);
 *  - a write that fails leaves the store refusing writes (a background error in lsm_stats) unless it
 *    had no effect at all; a failed flush, compaction or manifest write is reported to a caller (the
 *    write, flush or compact call, or the close);
 *  - reads before and after the failure return what the acknowledged writes say, or an error;
 *  - after a reopen on a good env (the process restarted: nothing lost from the page cache), the store
 *    holds every acknowledged write (and maybe the failed one), and takes writes again;
 *  - after a power loss (the fault env drops every unsynced byte and every unsynced directory entry)
 *    and a reopen, it equals the model after some prefix of the attempted writes no shorter than the
 *    last synced one. A manifest naming a table that is not durable fails this (open or scan error).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "env.h"
#include "env_fault.h"
#include "lsm.h"
#include "testutil.h"

#define FK_KEYS 64
#define FK_MAXV 1500
#define FK_DIR "/f"

/* ---------------------------------------------------------------- model */

/* A value is named by (seed, len): its bytes are regenerated on demand. */
struct fmodel {
	int present[FK_KEYS];
	uint64_t vseed[FK_KEYS];
	size_t vlen[FK_KEYS];
};

static size_t fkey(int i, char *k)
{
	/* Every fourth key is long: prefix compression and separators get work. */
	return (size_t)snprintf(k, 48, i % 4 ? "k%03d" : "k%03d-long-suffix-for-prefix-compression", i);
}

static void fval(uint64_t seed, size_t len, char *out)
{
	struct rng r = {seed};
	for (size_t i = 0; i < len; i++)
		out[i] = (char)('A' + rng_below(&r, 58));
}

/* One mutation of a write: put, delete, or range delete of keys [k, k2). */
struct fmut {
	int type, k, k2;
	uint64_t vseed;
	size_t vlen;
};

struct fwrite {
	struct fmut m[6];
	int n;
	int sync;
};

static void fapply(struct fmodel *md, const struct fwrite *w)
{
	for (int i = 0; i < w->n; i++) {
		const struct fmut *u = &w->m[i];
		if (u->type == 0) {
			md->present[u->k] = 1;
			md->vseed[u->k] = u->vseed;
			md->vlen[u->k] = u->vlen;
		} else if (u->type == 1) {
			md->present[u->k] = 0;
		} else {
			for (int k = u->k; k < u->k2; k++)
				md->present[k] = 0;
		}
	}
}

static void fgen(struct rng *r, struct fwrite *w)
{
	memset(w, 0, sizeof *w);
	w->n = rng_below(r, 5) == 0 ? 2 + (int)rng_below(r, 5) : 1;
	w->sync = rng_below(r, 8) == 0;
	for (int i = 0; i < w->n; i++) {
		struct fmut *u = &w->m[i];
		uint64_t p = rng_below(r, 100);
		u->k = (int)rng_below(r, FK_KEYS);
		if (p < 75) {
			u->vseed = rng_next(r);
			u->vlen = rng_below(r, 10) == 0 ? rng_below(r, FK_MAXV) : rng_below(r, 160);
		} else if (p < 92) {
			u->type = 1;
		} else {
			u->type = 2;
			u->k2 = u->k + 1 + (int)rng_below(r, 12);
			if (u->k2 > FK_KEYS)
				u->k2 = FK_KEYS;
		}
	}
}

/* The end key of a range delete of [k, k2): "k%03d" of k2 sorts before every key with that id. */
static size_t fend(int k2, char *k)
{
	return (size_t)snprintf(k, 48, "k%03d", k2);
}

static int fdo(lsm_db *db, const struct fwrite *w)
{
	char k[48], k2[48], v[FK_MAXV];
	unsigned fl = w->sync ? LSM_SYNC : 0;
	if (w->n == 1) {
		const struct fmut *u = &w->m[0];
		size_t kl = fkey(u->k, k);
		if (u->type == 0) {
			fval(u->vseed, u->vlen, v);
			return lsm_put(db, k, kl, v, u->vlen, fl);
		}
		if (u->type == 1)
			return lsm_delete(db, k, kl, fl);
		return lsm_delete_range(db, k, 4, k2, fend(u->k2, k2), fl);
	}
	lsm_batch *b = lsm_batch_new();
	ck_assert_ptr_nonnull(b);
	for (int i = 0; i < w->n; i++) {
		const struct fmut *u = &w->m[i];
		size_t kl = fkey(u->k, k);
		if (u->type == 0) {
			fval(u->vseed, u->vlen, v);
			ck_assert_int_eq(lsm_batch_put(b, k, kl, v, u->vlen), 0);
		} else if (u->type == 1) {
			ck_assert_int_eq(lsm_batch_delete(b, k, kl), 0);
		} else {
			ck_assert_int_eq(lsm_batch_delete_range(b, k, 4, k2, fend(u->k2, k2)), 0);
		}
	}
	int rc = lsm_write(db, b, fl);
	lsm_batch_free(b);
	return rc;
}

/* Key id of a store key, or -1 if it is no key of ours. */
static int fid(const char *k, size_t kl)
{
	char want[48];
	if (kl < 4 || k[0] != 'k')
		return -1;
	int id = (k[1] - '0') * 100 + (k[2] - '0') * 10 + (k[3] - '0');
	if (id < 0 || id >= FK_KEYS || fkey(id, want) != kl || memcmp(want, k, kl))
		return -1;
	return id;
}

/*
 * Scan the store (at snap) and compare with md. Returns 1 if equal, 0 if not (with *why), or the
 * iterator's error status (< 0).
 */
static int fscan_eq(lsm_db *db, const lsm_snapshot *snap, const struct fmodel *md, char *why, size_t whylen)
{
	struct lsm_read_options ro = {.snapshot = snap};
	lsm_iter *it = lsm_iter_new(db, &ro);
	if (!it)
		return LSM_NOMEM;
	char v[FK_MAXV];
	int next = 0, eq = 1;
	for (lsm_iter_seek_first(it); lsm_iter_valid(it) && eq; lsm_iter_next(it)) {
		size_t kl, vl;
		const char *k = lsm_iter_key(it, &kl);
		const char *val = lsm_iter_value(it, &vl);
		int id = fid(k, kl);
		while (next < FK_KEYS && !md->present[next])
			next++;
		if (id < 0 || id != next) {
			snprintf(why, whylen, "scan gave key %d (%.*s), model's next is %d", id, (int)kl, k, next);
			eq = 0;
			break;
		}
		fval(md->vseed[id], md->vlen[id], v);
		if (vl != md->vlen[id] || memcmp(v, val, vl)) {
			snprintf(why, whylen, "key %d: value of %zu bytes differs from the model's %zu", id, vl,
				 md->vlen[id]);
			eq = 0;
			break;
		}
		next++;
	}
	int st = lsm_iter_status(it);
	lsm_iter_free(it);
	if (st)
		return st;
	if (eq) {
		while (next < FK_KEYS && !md->present[next])
			next++;
		if (next < FK_KEYS) {
			snprintf(why, whylen, "scan ended before key %d", next);
			eq = 0;
		}
	}
	return eq;
}

/* Point lookups of every key: 1 if all agree with md, 0 if one differs, <0 on a read error. */
static int fgets_eq(lsm_db *db, const lsm_snapshot *snap, const struct fmodel *md, char *why, size_t whylen)
{
	struct lsm_read_options ro = {.snapshot = snap};
	struct lsm_buf b = {0};
	char k[48], v[FK_MAXV];
	int res = 1;
	for (int i = 0; i < FK_KEYS && res == 1; i++) {
		int rc = lsm_get(db, &ro, k, fkey(i, k), &b);
		if (rc != LSM_OK && rc != LSM_NOTFOUND) {
			res = rc;
		} else if (md->present[i]) {
			fval(md->vseed[i], md->vlen[i], v);
			if (rc != LSM_OK || b.len != md->vlen[i] || memcmp(b.data, v, b.len)) {
				snprintf(why, whylen, "get key %d: rc %d, %zu bytes, model has %zu", i, rc,
					 rc ? 0 : b.len, md->vlen[i]);
				res = 0;
			}
		} else if (rc != LSM_NOTFOUND) {
			snprintf(why, whylen, "get key %d: found %zu bytes, model lacks it", i, b.len);
			res = 0;
		}
	}
	lsm_buf_free(&b);
	return res;
}

/* ---------------------------------------------------------------- one run */

/* How a run ended, for the summary the sweep prints. */
enum outcome {
	OC_NOT_REACHED,   /* the workload made fewer than N calls: no fault */
	OC_OPEN_FAILED,   /* lsm_open returned the error */
	OC_WRITE_ERROR,   /* a write, sync, flush or compact call returned it; the store stopped */
	OC_WRITE_NOSTOP,  /* a call returned it without stopping the store: it had no effect */
	OC_BG_ERROR,      /* only in lsm_stats / at close (a background flush or compaction) */
	OC_READ_ERROR,    /* only a read returned it */
	OC_ABSORBED,      /* nobody saw an error: the fault hit a call whose failure is harmless */
	OC_COUNT
};
static const char *const outcome_names[OC_COUNT] = {
	"not reached", "open failed", "write/flush call failed + store stopped",
	"write/flush call failed, no effect, store goes on", "background error only",
	"read failed only", "absorbed (harmless)",
};

struct fmode {
	const char *name;
	int err;
	int short_write;
	int plain_reopen; /* reopen without a power loss first (then lose power and reopen again);
			   * 2: for odd N only */
};

static const struct fmode fmodes[] = {
	{"EIO", EIO, 0, 0},
	{"ENOSPC", ENOSPC, 0, 1},
	{"short write + ENOSPC", ENOSPC, 1, 2},
};
#define NFMODES (sizeof fmodes / sizeof fmodes[0])

/* Values of at least this size go to blob files (0: none): fault_every_n_blob sets it. */
static size_t fk_blob_min;

static lsm_db *fopen_db(lsm_env *env, int *rc)
{
	struct lsm_options o;
	lsm_options_init(&o);
	o.env = env;
	o.write_buffer_size = 4096;       /* the minimum: a new log and a flush every few writes */
	o.table_target_size = 4096;       /* compactions write several tables */
	o.level1_max_bytes = 8192;        /* and push data down to level 2 */
	o.block_size = 256;               /* several data blocks per table */
	o.block_restart_interval = 4;
	o.l0_compaction_trigger = 2;
	o.block_cache_size = 16 << 10;
	o.max_open_tables = 16;
	o.blob_min_size = fk_blob_min;
	lsm_db *db = NULL;
	*rc = lsm_open(FK_DIR, &o, &db);
	return db;
}

struct frun {
	uint64_t seed;
	uint64_t nth;             /* 0: no fault (the dry run) */
	const struct fmode *mode;
	int nsteps;
	/* results */
	uint64_t calls;           /* env calls up to the power loss */
	enum outcome oc;
	struct lsm_stats st;      /* the workload's stats just before its close */
};

#define FAIL(r, ...)                                                                                  \
	ck_abort_msg("seed %llu N=%llu %s: %s", (unsigned long long)(r)->seed, (unsigned long long)(r)->nth, \
		     (r)->mode ? (r)->mode->name : "dry run", (snprintf(msgbuf, sizeof msgbuf, __VA_ARGS__), msgbuf))

static _Thread_local char msgbuf[512];

/* The store must equal base + ws[0..p) for some p in [min_p, n]. Returns p. */
static int fcheck_prefix(struct frun *r, lsm_db *db, const struct fwrite *ws, int n, int min_p, const char *what)
{
	struct fmodel cur = {0};
	char why[256] = "";
	for (int p = 0; p <= n; p++) {
		if (p > 0)
			fapply(&cur, &ws[p - 1]);
		if (p < min_p)
			continue;
		int eq = fscan_eq(db, NULL, &cur, why, sizeof why);
		if (eq < 0)
			FAIL(r, "%s: scan error %d: %s", what, eq, lsm_errmsg());
		if (eq == 1) {
			int g = fgets_eq(db, NULL, &cur, why, sizeof why);
			if (g != 1)
				FAIL(r, "%s: scan matches %d writes but gets do not: %s (%s)", what, p,
				     g < 0 ? lsm_errmsg() : why, g < 0 ? "read error" : "wrong data");
			return p;
		}
	}
	FAIL(r, "%s: the store equals no prefix of the %d writes at least %d long (last: %s)", what, n, min_p, why);
	return -1;
}

/* Reopen on the (disarmed) fault env: the store must open, hold a prefix in [min_p, n], take a write. */
static void freopen_check(struct frun *r, lsm_env *fe, struct fwrite *ws, int n, int min_p, const char *what)
{
	int rc;
	lsm_db *db = fopen_db(fe, &rc);
	if (rc)
		FAIL(r, "%s: reopen failed: %s (%s)", what, lsm_strerror(rc), lsm_errmsg());
	fcheck_prefix(r, db, ws, n, min_p, what);
	struct lsm_stats st;
	lsm_stats_get(db, &st);
	if (st.background_error)
		FAIL(r, "%s: background error %d right after reopen: %s", what, st.background_error, lsm_errmsg());
	if ((rc = lsm_put(db, "zz", 2, "after", 5, LSM_SYNC)))
		FAIL(r, "%s: the reopened store refuses a write: %s", what, lsm_errmsg());
	if ((rc = lsm_delete(db, "zz", 2, 0)))
		FAIL(r, "%s: the reopened store refuses a delete: %s", what, lsm_errmsg());
	if ((rc = lsm_close(db)))
		FAIL(r, "%s: close after reopen: %s", what, lsm_errmsg());
}

static void frun_one(struct frun *r)
{
	struct rng rg = {r->seed};
	lsm_env *mem = lsm_env_mem_new();
	lsm_env *fe = lsm_fault_env_new(mem);
	ck_assert_ptr_nonnull(fe);
	if (r->nth)
		lsm_fault_set_fail(fe, r->nth, r->mode->err, 0, r->mode->short_write, LSM_FAULT_ALL);

	struct fwrite *ws = calloc((size_t)r->nsteps + 1, sizeof *ws);
	struct fmodel acked_md = {0};
	int n = 0;              /* writes attempted (ws[0..n)) */
	int acked = 0, synced = 0;
	int write_err = 0, read_err = 0;
	struct {
		const lsm_snapshot *s;
		struct fmodel m;
	} snaps[3] = {{0}};
	char why[256];

	int rc;
	lsm_db *db = fopen_db(fe, &rc);
	int open_err = rc;
	if (!rc && !db)
		FAIL(r, "open returned OK and no handle");
	for (int step = 0; db && step < r->nsteps && !write_err; step++) {
		uint64_t p = rng_below(&rg, 100);
		if (p < 72) {
			fgen(&rg, &ws[n]);
			rc = fdo(db, &ws[n]);
			n++;
			if (rc) {
				write_err = rc;
				break;
			}
			acked = n;
			fapply(&acked_md, &ws[n - 1]);
			if (ws[n - 1].sync)
				synced = acked;
		} else if (p < 80) {
			/* Reads see exactly the acknowledged writes (or fail with an error). */
			int g = rng_below(&rg, 2) ? fgets_eq(db, NULL, &acked_md, why, sizeof why)
						  : fscan_eq(db, NULL, &acked_md, why, sizeof why);
			if (g == 0)
				FAIL(r, "step %d: read differs from the acknowledged writes: %s", step, why);
			if (g < 0)
				read_err = g;
		} else if (p < 88) {
			int i = (int)rng_below(&rg, 3);
			if (!snaps[i].s) {
				snaps[i].s = lsm_snapshot_create(db);
				snaps[i].m = acked_md;
			} else {
				int g = fscan_eq(db, snaps[i].s, &snaps[i].m, why, sizeof why);
				if (g == 0)
					FAIL(r, "step %d: snapshot read differs: %s", step, why);
				if (g < 0)
					read_err = g;
				if (rng_below(&rg, 2)) {
					lsm_snapshot_release(db, snaps[i].s);
					snaps[i].s = NULL;
				}
			}
		} else if (p < 93) {
			if ((rc = lsm_flush(db)))
				write_err = rc;
			else
				synced = acked;
		} else if (p < 97) {
			if ((rc = lsm_sync(db)))
				write_err = rc;
			else
				synced = acked;
		} else {
			if ((rc = lsm_compact_range(db, NULL, 0, NULL, 0)))
				write_err = rc;
			else
				synced = acked;
		}
	}
	/* The caller learns what went wrong: the injected error, not another one it led to. */
	int want = r->mode && r->mode->err == ENOSPC ? LSM_NOSPC : LSM_IOERR;
	if (write_err && write_err != want)
		FAIL(r, "a write/flush call returned %d (%s) for an injected %s: %s", write_err, lsm_strerror(write_err),
		     r->mode ? r->mode->name : "nothing", lsm_errmsg());
	if (read_err && read_err != want)
		FAIL(r, "a read returned %d (%s) for an injected %s: %s", read_err, lsm_strerror(read_err),
		     r->mode ? r->mode->name : "nothing", lsm_errmsg());
	int bg = 0;
	if (db) {
		struct lsm_stats st;
		lsm_stats_get(db, &st);
		r->st = st;
		bg = st.background_error;
		if (write_err) {
			/* Stopped: no write may be taken while the state is unknown. A write that failed
			 * without stopping the store must have had no effect. */
			if (!bg) {
				/* the store says its state is known: the failed write left no trace */
				int g = fscan_eq(db, NULL, &acked_md, why, sizeof why);
				if (g == 0)
					FAIL(r, "a failed write (%s) changed what readers see: %s", lsm_strerror(write_err),
					     why);
			} else {
				if (bg != want)
					FAIL(r, "background error %d (%s) for an injected %s", bg, lsm_strerror(bg),
					     r->mode->name);
				struct fwrite extra = {.m = {{.type = 0, .k = 1, .vseed = 7, .vlen = 3}}, .n = 1};
				rc = fdo(db, &extra);
				if (rc == 0)
					FAIL(r, "a write was accepted after background error %s", lsm_strerror(bg));
			}
			/* Reads go on and still see the acknowledged writes. */
			int g = fscan_eq(db, NULL, &acked_md, why, sizeof why);
			if (g == 0)
				FAIL(r, "after the failure, a scan differs from the acknowledged writes: %s", why);
		}
		for (int i = 0; i < 3; i++)
			if (snaps[i].s)
				lsm_snapshot_release(db, snaps[i].s);
		rc = lsm_close(db);
		if (rc == 0)
			synced = acked; /* a clean close syncs the log */
		else if (!bg && !write_err)
			bg = rc;
		if (rc && rc != want)
			FAIL(r, "close returned %d (%s) for an injected %s", rc, lsm_strerror(rc),
			     r->mode ? r->mode->name : "nothing");
	}
	r->calls = lsm_fault_calls(fe);
	lsm_fault_clear(fe);

	if (!r->nth) {
		if (open_err || write_err || read_err || bg)
			FAIL(r, "the dry run failed: %s", lsm_errmsg());
		r->oc = OC_NOT_REACHED;
	} else if (r->calls < r->nth) {
		r->oc = OC_NOT_REACHED;
	} else {
		r->oc = open_err ? OC_OPEN_FAILED : write_err ? (bg ? OC_WRITE_ERROR : OC_WRITE_NOSTOP) : bg ? OC_BG_ERROR
			: read_err ? OC_READ_ERROR : OC_ABSORBED;
	}
	if (open_err && open_err != (r->mode && r->mode->err == ENOSPC ? LSM_NOSPC : LSM_IOERR))
		FAIL(r, "open returned %d (%s) for an injected fault", open_err, lsm_strerror(open_err));

	/* Without a power loss every acknowledged write is there (the page cache has it all). */
	if (r->mode && (r->mode->plain_reopen == 1 || (r->mode->plain_reopen == 2 && (r->nth & 1))))
		freopen_check(r, fe, ws, n, acked, "reopen");
	ck_assert_int_eq(lsm_fault_crash(fe), 0);
	freopen_check(r, fe, ws, n, synced, "power loss + reopen");

	free(ws);
	fe->destroy(fe);
	mem->destroy(mem);
}

/* ---------------------------------------------------------------- the sweep */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run the workload once per N in 1..calls+slack for every mode; print what the faults led to. */
static void fault_sweep(uint64_t seed, int nsteps, const char *name)
{
	double t0 = now_s();
	struct frun dry = {.seed = seed, .nsteps = nsteps};
	frun_one(&dry);
	ck_assert_uint_gt(dry.calls, 50);
	/* Background threads make the count vary a little from run to run: go past the dry run's. */
	uint64_t last = dry.calls + dry.calls / 10 + 10;
	unsigned long counts[NFMODES][OC_COUNT];
	memset(counts, 0, sizeof counts);
	unsigned long runs = 0;
	for (size_t m = 0; m < NFMODES; m++) {
		for (uint64_t nth = 1; nth <= last; nth++) {
			struct frun r = {.seed = seed, .nth = nth, .mode = &fmodes[m], .nsteps = nsteps};
			frun_one(&r);
			counts[m][r.oc]++;
			runs++;
		}
	}
	fprintf(stderr, "%s: seed %llu: workload of %d steps makes %llu env calls; N = 1..%llu for %zu modes "
		"(%lu runs, %.1f s)\n", name, (unsigned long long)seed, nsteps, (unsigned long long)dry.calls,
		(unsigned long long)last, NFMODES, runs, now_s() - t0);
	fprintf(stderr, "  the workload: %llu writes, %llu flushes, %llu compactions, tables on levels 0/1/2: "
		"%llu/%llu/%llu, last file number %llu, %llu value bytes to blob files (%llu relocated)\n",
		(unsigned long long)dry.st.batches,
		(unsigned long long)dry.st.flushes, (unsigned long long)dry.st.compactions,
		(unsigned long long)dry.st.level_tables[0], (unsigned long long)dry.st.level_tables[1],
		(unsigned long long)dry.st.level_tables[2], (unsigned long long)dry.st.wal_number,
		(unsigned long long)dry.st.blob_bytes_written, (unsigned long long)dry.st.blob_bytes_relocated);
	if (fk_blob_min)
		ck_assert_uint_gt(dry.st.blob_bytes_written, 0);
	for (size_t m = 0; m < NFMODES; m++) {
		fprintf(stderr, "  %-21s", fmodes[m].name);
		for (int o = 0; o < OC_COUNT; o++)
			if (counts[m][o])
				fprintf(stderr, " %s %lu;", outcome_names[o], counts[m][o]);
		fprintf(stderr, "\n");
	}
}

START_TEST(fault_every_n)
{
	uint64_t seed = test_seed("fault_every_n");
	fault_sweep(seed, 60, "fault_every_n");
}
END_TEST

/* The same with about half the values in blob files: their records must be durable before a synced log
 * record names them, recovery must cut a log at a reference to blob bytes that did not survive, and
 * blob files must live exactly as long as a table or memtable references them. */
START_TEST(fault_every_n_blob)
{
	uint64_t seed = test_seed("fault_every_n_blob");
	fk_blob_min = 100;
	fault_sweep(seed, 60, "fault_every_n_blob");
	fk_blob_min = 0;
}
END_TEST

/* LSM_TEST_SCALE=N: N more sweeps, each on its own seed, with a longer workload. */
START_TEST(fault_every_n_scaled)
{
	int scale = test_scale();
	if (scale <= 1)
		return;
	uint64_t seed = test_seed("fault_every_n_scaled");
	struct rng r = {seed};
	for (int i = 0; i < scale - 1; i++)
		fault_sweep(rng_next(&r), 250, "fault_every_n_scaled");
}
END_TEST

/* ---------------------------------------------------------------- byte flips */

/*
 * A store with tables on two levels, a manifest of many edits, a log with unflushed writes and CURRENT
 * is built and closed cleanly; then, one at a time, a byte of one of its files is changed (XOR with a
 * random non-zero mask) and a copy of the store with that one change is opened, scanned and read key by
 * key. Every case must end in one of:
 *  - a corruption error (at open or on a read) whose message names the file and an offset;
 *  - exactly the data written (the byte was one no reader depends on, e.g. in the empty record a clean
 *    close ends the log and the manifest with, which recovery drops as a torn tail).
 * Anything else (other data, even an older state of it; an error that names no file; another status)
 * fails the test. The store was closed cleanly, so every write was synced: losing any is wrong.
 */
struct bf_file {
	char name[64];
	char *data;
	size_t len;
};

enum bf_outcome { BF_OPEN_CORRUPT, BF_READ_CORRUPT, BF_CORRECT, BF_NOUTCOMES };
static const char *const bf_outcome_names[BF_NOUTCOMES] = {
	"corruption at open", "corruption on read", "correct data",
};

static lsm_db *bf_open(lsm_env *env, const char *dir, int *rc)
{
	struct lsm_options o;
	lsm_options_init(&o);
	o.env = env;
	o.write_buffer_size = 4096;
	o.table_target_size = 4096;
	o.level1_max_bytes = 8192;
	o.block_size = 256;
	o.block_restart_interval = 4;
	o.l0_compaction_trigger = 2;
	o.block_cache_size = 0;
	o.max_open_tables = 16;
	lsm_db *db = NULL;
	*rc = lsm_open(dir, &o, &db);
	return db;
}

static int bf_collect(void *arg, const char *name)
{
	struct bf_file **files = arg;
	struct bf_file *f = files[0];
	size_t *n = (size_t *)files[1];
	if (!strcmp(name, "LOCK"))
		return 0;
	ck_assert_uint_lt(*n, 256);
	snprintf(f[*n].name, sizeof f[*n].name, "%s", name);
	(*n)++;
	return 0;
}

static const char *bf_kind(const char *name)
{
	size_t l = strlen(name);
	if (l > 4 && !strcmp(name + l - 4, ".sst"))
		return "table";
	if (l > 4 && !strcmp(name + l - 4, ".log"))
		return "log";
	if (!strncmp(name, "MANIFEST-", 9))
		return "manifest";
	return name;
}

/* The message of a corruption status must name a file of the store and an offset. */
static int bf_clean_error(int rc)
{
	const char *m = lsm_errmsg();
	return rc == LSM_CORRUPT && strstr(m, "/b/") && strstr(m, "offset");
}

START_TEST(fault_byte_flips)
{
	uint64_t seed = test_seed("fault_byte_flips");
	struct rng rg = {seed};
	double t0 = now_s();

	/* Build the store. */
	lsm_env *env = lsm_env_mem_new();
	int rc;
	lsm_db *db = bf_open(env, "/b", &rc);
	ck_assert_msg(rc == 0, "open: %s", lsm_errmsg());
	int nw = 160;
	struct fwrite *ws = calloc((size_t)nw, sizeof *ws);
	struct fmodel md = {0};
	for (int i = 0; i < nw; i++) {
		fgen(&rg, &ws[i]);
		ws[i].sync = 0;
		ck_assert_int_eq(fdo(db, &ws[i]), 0);
		fapply(&md, &ws[i]);
		if (i == 60 || i == 100)
			ck_assert_int_eq(lsm_flush(db), 0);
		if (i == 80)
			ck_assert_int_eq(lsm_compact_range(db, NULL, 0, NULL, 0), 0);
	}
	struct lsm_stats st;
	lsm_stats_get(db, &st);
	ck_assert_uint_gt(st.level_tables[0] + st.level_tables[1] + st.level_tables[2], 0);
	ck_assert_int_eq(lsm_close(db), 0);

	struct bf_file files[256];
	size_t nf = 0;
	void *ctx[2] = {files, &nf};
	ck_assert_int_eq(env->list(env, "/b", bf_collect, ctx), 0);
	size_t total = 0;
	for (size_t i = 0; i < nf; i++) {
		char p[128];
		snprintf(p, sizeof p, "/b/%.63s", files[i].name);
		ck_assert_int_eq(lsm_env_read_all(env, p, &files[i].data, &files[i].len), 0);
		total += files[i].len;
	}
	env->destroy(env);

	/* Positions: every byte of small files, a stratified random sample of big ones; at least 2000. */
	size_t budget = 2400u * (size_t)test_scale();
	unsigned long counts[BF_NOUTCOMES] = {0}, cases = 0;
	struct {
		const char *kind;
		unsigned long n[BF_NOUTCOMES];
		unsigned long files, bytes, flips;
	} per[4] = {{"table", {0}, 0, 0, 0}, {"log", {0}, 0, 0, 0}, {"manifest", {0}, 0, 0, 0},
		    {"CURRENT", {0}, 0, 0, 0}};
	char why[256];
	for (size_t fi = 0; fi < nf; fi++) {
		struct bf_file *f = &files[fi];
		const char *kind = bf_kind(f->name);
		int pk = -1;
		for (int k = 0; k < 4; k++)
			if (!strcmp(per[k].kind, kind))
				pk = k;
		ck_assert_msg(pk >= 0, "unexpected file %s in the store", f->name);
		per[pk].files++;
		per[pk].bytes += f->len;
		size_t want = f->len <= 64 ? f->len : 64 + (size_t)((double)budget * (double)f->len / (double)total);
		if (want > f->len)
			want = f->len;
		for (size_t j = 0; j < want; j++) {
			size_t pos = want == f->len ? j : j * f->len / want + rng_below(&rg, f->len / want);
			unsigned char mask = (unsigned char)(1 + rng_below(&rg, 255));
			/* The damaged copy. */
			lsm_env *e = lsm_env_mem_new();
			ck_assert_int_eq(e->mkdir(e, "/b", 0700), 0);
			for (size_t k = 0; k < nf; k++) {
				char p[128];
				snprintf(p, sizeof p, "/b/%.63s", files[k].name);
				if (k == fi)
					files[k].data[pos] ^= (char)mask;
				ck_assert_int_eq(lsm_env_write_all(e, p, files[k].data, files[k].len, 1), 0);
				if (k == fi)
					files[k].data[pos] ^= (char)mask;
			}
			enum bf_outcome oc;
			lsm_db *d = bf_open(e, "/b", &rc);
			if (rc) {
				ck_assert_msg(bf_clean_error(rc), "seed %llu: %s byte %zu ^ 0x%02x: open failed with %d (%s) "
					      "without naming a file and offset: %s", (unsigned long long)seed, f->name, pos,
					      mask, rc, lsm_strerror(rc), lsm_errmsg());
				oc = BF_OPEN_CORRUPT;
			} else {
				int g = fscan_eq(d, NULL, &md, why, sizeof why);
				if (g == 1)
					g = fgets_eq(d, NULL, &md, why, sizeof why);
				if (g < 0) {
					ck_assert_msg(bf_clean_error(g), "seed %llu: %s byte %zu ^ 0x%02x: read failed with %d "
						      "(%s) without naming a file and offset: %s", (unsigned long long)seed,
						      f->name, pos, mask, g, lsm_strerror(g), lsm_errmsg());
					oc = BF_READ_CORRUPT;
				} else if (g == 1) {
					oc = BF_CORRECT;
				} else {
					/* Only a dropped log tail may lose writes, and only the newest ones. */
					lsm_stats_get(d, &st);
					struct fmodel cur = {0};
					int match = -1;
					for (int p = 0; p <= nw && match < 0; p++) {
						if (p > 0)
							fapply(&cur, &ws[p - 1]);
						if (fscan_eq(d, NULL, &cur, why, sizeof why) == 1 &&
						    fgets_eq(d, NULL, &cur, why, sizeof why) == 1)
							match = p;
					}
					ck_abort_msg("seed %llu: %s byte %zu ^ 0x%02x: wrong data returned silently (%s; "
						      "torn bytes %llu, equals prefix %d of %d writes)",
						      (unsigned long long)seed, f->name, pos, mask, why,
						      (unsigned long long)st.wal_torn_bytes, match, nw);
					oc = BF_CORRECT; /* not reached */
				}
				lsm_close(d); /* may report what a background compaction met */
			}
			e->destroy(e);
			counts[oc]++;
			per[pk].n[oc]++;
			per[pk].flips++;
			cases++;
		}
	}
	ck_assert_uint_ge(cases, 2000);
	fprintf(stderr, "fault_byte_flips: seed %llu: %lu flips in %zu files (%zu bytes), %.1f s\n",
		(unsigned long long)seed, cases, nf, total, now_s() - t0);
	for (int k = 0; k < 4; k++) {
		ck_assert_msg(per[k].flips > 0, "no flip in a %s file", per[k].kind);
		fprintf(stderr, "  %-8s %lu files, %lu bytes, %lu flips:", per[k].kind, per[k].files, per[k].bytes,
			per[k].flips);
		for (int o = 0; o < BF_NOUTCOMES; o++)
			if (per[k].n[o])
				fprintf(stderr, " %s %lu;", bf_outcome_names[o], per[k].n[o]);
		fprintf(stderr, "\n");
	}
	for (size_t i = 0; i < nf; i++)
		free(files[i].data);
	free(ws);
}
END_TEST

Suite *fault_suite(void)
{
	Suite *s = suite_create("fault");
	TCase *tc = tcase_create("fault");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, fault_every_n);
	tcase_add_test(tc, fault_every_n_blob);
	tcase_add_test(tc, fault_every_n_scaled);
	tcase_add_test(tc, fault_byte_flips);
	suite_add_tcase(s, tc);
	return s;
}
