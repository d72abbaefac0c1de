/*
 * lsmbench.c - db_bench-like workloads on the lsmfs store (store/lsm.h), one TSV line per workload.
 *
 * It mirrors ../shared/bench/kv/kvbench.c (the RocksDB/LevelDB baseline) option for option so that
 * the three engines run the very same workload: same key format, same splitmix64 stream consumed in
 * the same order (value buffer, fillrandom permutation, overwrite and readrandom keys), same value
 * choices, same output. Do not change the order in which rnd() is drawn without changing kvbench too.
 *
 * Usage: lsmbench -d DIR [-n N] [-k KEYSZ>=16] [-v VALSZ] [-b LIST] [-w WRITE_BUFFER_MB]
 *                 [-c CACHE_MB] [-B BLOOM_BITS] [-s SEED]
 * Defaults: N=1000000, key 16 B, value 100 B, write buffer 64 MiB, block cache 32 MiB, bloom 10
 * bits/key, WAL on and not synced (flags 0), 1 thread. The store has no compression.
 *
 * Workloads (-b, comma-separated, run in order on one handle):
 *   fillseq     fresh store (the files in DIR are removed), N puts of keys 0..N-1 in order
 *   fillrandom  fresh store, N puts of a seeded random permutation of 0..N-1 (every key once)
 *   overwrite   N puts of uniformly random keys on the current store
 *   readrandom  N gets of uniformly random keys in 0..N-1 (all present after a fill)
 *   readseq     one forward scan of the whole store
 *   seekrandom  N seeks to uniformly random keys, each reading the key and value it lands on
 *               (one iterator, reused; lsmfs-only extra)
 *   readrandom4 readrandom with 4 threads, N gets split across them, ops/s over wall time
 *               (lsmfs-only extra)
 * Like kvbench and db_bench, background compaction left by a phase is not waited for.
 *
 * Output, stdout (TSV): engine valsize bench ops/s MiB/s seconds ops, engine "lsmfs"; MiB/s counts
 * key+value bytes (reads: only the keys found). stderr: a header, then after each phase one line of
 * lsm_stats (counter deltas over the phase, the shape of the tree at its end) for profiling.
 * LSMBENCH_VERIFY=1 in the environment also checks every value read against what was written
 * (costs a memcmp per read and 8 bytes of memory per key; off for the timed comparison runs).
 *
 * Exit: 0, 1 on a store error (the failing call and lsm_errmsg() on stderr), 2 on bad options.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lsm.h"

#define READ_THREADS 4     /* readrandom4 */
#define UNKNOWN UINT64_MAX /* verify: no value known for this key */
#define MAX_KEY 1024       /* -k limit: key buffers live on the stack, readers' threads included */

static long N = 1000000;
static int KSZ = 16, VSZ = 100;
static long WB_MB = 64, CACHE_MB = 32;
static int BLOOM = 10;
static uint64_t SEED = 42;
static const char *DBDIR;
static int verify;

static lsm_db *db;
static char *valbuf;
static size_t valbuf_sz;
/* verify: for key k, the mkval() argument of its last put, or UNKNOWN. */
static uint64_t *expect;
/* Keys the store is known to hold (after a fill in this process), or -1. */
static long known_keys = -1;

/* ---------------------------------------------------------------- helpers */

/* splitmix64, as kvbench: the same seed gives the same values, permutation and key draws. */
static inline uint64_t sm64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t rng_main;
static inline uint64_t rnd(void)
{
	return sm64(&rng_main);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds used so far by clock id (CLOCK_THREAD_CPUTIME_ID: the benchmark thread;
 * CLOCK_PROCESS_CPUTIME_ID: every thread, background flush and compaction included). Unlike wall
 * time, these hardly move when other jobs share the CPUs, so two builds can be compared on a busy VM. */
static double cpu_secs(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU clocks at the start of the current phase; a fill marks again after removing the old store. */
static double cpu_thread0, cpu_all0;
static void cpu_mark(void)
{
	cpu_thread0 = cpu_secs(CLOCK_THREAD_CPUTIME_ID);
	cpu_all0 = cpu_secs(CLOCK_PROCESS_CPUTIME_ID);
}

/* A store call failed: name it, with the store's own detail (thread-local, so call from the failing
 * thread). */
static void die_lsm(const char *call, int rc)
{
	fprintf(stderr, "lsmbench: %s: %s: %s\n", call, lsm_strerror(rc), lsm_errmsg());
	exit(1);
}

static void die_sys(const char *what, const char *path)
{
	fprintf(stderr, "lsmbench: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void usage(const char *why)
{
	if (why)
		fprintf(stderr, "lsmbench: %s\n", why);
	fprintf(stderr, "usage: lsmbench -d DIR [-n N] [-k KEYSZ>=16] [-v VALSZ] [-b list] [-w MB] [-c MB] "
			"[-B bits] [-s seed]\n"
			"  list: fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom,readrandom4\n");
	exit(2);
}

/* Whole-string integer parse: atol() would take "1e6" as 1 and run a different benchmark. */
static long num_arg(int opt, const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max) {
		char msg[96];
		snprintf(msg, sizeof msg, "bad value '%s' for -%c (%ld..%ld)", s, opt, min, max);
		usage(msg);
	}
	return (long)v;
}

/* Same bytes as kvbench's mkkey (snprintf included: its cost is part of every engine's loop). */
static inline void mkkey(char *k, uint64_t i)
{
	char tmp[32];
	snprintf(tmp, sizeof tmp, "%016llu", (unsigned long long)i);
	memcpy(k, tmp, 16);
	if (KSZ > 16)
		memset(k + 16, '0', (size_t)KSZ - 16);
}

static inline const char *mkval(uint64_t i)
{
	return valbuf + (i * 7919) % (valbuf_sz - (size_t)VSZ);
}

static void report(const char *bench, long ops, uint64_t bytes, double secs)
{
	printf("lsmfs\t%d\t%s\t%.0f\t%.1f\t%.3f\t%ld\n", VSZ, bench, ops / secs, bytes / secs / 1048576.0, secs,
	       ops);
	fflush(stdout);
}

/* Remove everything under path (the store keeps a flat directory; recursion is for safety only). */
static void remove_tree(const char *path, int remove_self)
{
	DIR *d = opendir(path);
	if (!d) {
		if (errno == ENOENT)
			return;
		die_sys("opendir", path);
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char p[4096];
		snprintf(p, sizeof p, "%s/%s", path, de->d_name);
		struct stat st;
		if (lstat(p, &st))
			die_sys("lstat", p);
		if (S_ISDIR(st.st_mode))
			remove_tree(p, 1);
		else if (unlink(p))
			die_sys("unlink", p);
	}
	closedir(d);
	if (remove_self && rmdir(path))
		die_sys("rmdir", path);
}

/* ---------------------------------------------------------------- store handle */

static void store_open(int fresh)
{
	struct lsm_options o;
	lsm_options_init(&o);
	o.write_buffer_size = (size_t)WB_MB << 20;
	o.block_cache_size = (size_t)CACHE_MB << 20;
	o.bloom_bits_per_key = BLOOM;
	if (fresh) {
		remove_tree(DBDIR, 0);
		known_keys = -1;
		if (expect)
			for (long i = 0; i < N; i++)
				expect[i] = UNKNOWN;
	}
	int rc = lsm_open(DBDIR, &o, &db);
	if (rc)
		die_lsm("lsm_open", rc);
}

static void store_close(void)
{
	int rc = lsm_close(db);
	db = NULL;
	if (rc)
		die_lsm("lsm_close", rc);
}

static void stats(struct lsm_stats *st)
{
	int rc = lsm_stats_get(db, st);
	if (rc)
		die_lsm("lsm_stats_get", rc);
}

/* One stderr line per phase: counters as deltas over the phase, gauges at its end. */
static void phase_stats(const char *bench, const struct lsm_stats *a)
{
	struct lsm_stats b;
	stats(&b);
	char lv[160];
	int off = 0;
	for (int l = 0; l < LSM_MAX_LEVELS; l++)
		off += snprintf(lv + off, sizeof lv - (size_t)off, "%s%" PRIu64, l ? "/" : "", b.level_tables[l]);
	uint64_t hits = b.block_cache_hits - a->block_cache_hits;
	uint64_t miss = b.block_cache_misses - a->block_cache_misses;
	fprintf(stderr,
		"lsmbench: stats %s v%d: flushes +%" PRIu64 " compactions +%" PRIu64 " L0..L6 tables %s "
		"(%.1f MiB) mem %.1f MiB %" PRIu64 " entries, imm %" PRIu64 " | stalls: slowdowns +%" PRIu64 " stops +%" PRIu64 " imm_waits +%" PRIu64
		" stalled %.3f s | MiB flushed +%.1f compacted in +%.1f out +%.1f | block cache hit %.1f%% "
		"(+%" PRIu64 "/+%" PRIu64 ") tables open %" PRIu64 " bloom_useful +%" PRIu64 " groups +%" PRIu64
		" bg_error %d\n",
		bench, VSZ, b.flushes - a->flushes, b.compactions - a->compactions, lv,
		b.table_bytes / 1048576.0, b.mem_bytes / 1048576.0, b.mem_entries, b.imm_count, b.stall_slowdowns - a->stall_slowdowns,
		b.stall_stops - a->stall_stops, b.stall_imm_waits - a->stall_imm_waits,
		(b.stall_micros - a->stall_micros) / 1e6, (b.bytes_flushed - a->bytes_flushed) / 1048576.0,
		(b.bytes_compacted_in - a->bytes_compacted_in) / 1048576.0,
		(b.bytes_compacted_out - a->bytes_compacted_out) / 1048576.0,
		hits + miss ? 100.0 * hits / (hits + miss) : 0.0, hits, miss, b.tables_open,
		b.bloom_useful - a->bloom_useful, b.groups - a->groups, b.background_error);
}

/* ---------------------------------------------------------------- workloads */

static void put(const char *key, uint64_t k, uint64_t vi)
{
	int rc = lsm_put(db, key, (size_t)KSZ, mkval(vi), (size_t)VSZ, 0);
	if (rc)
		die_lsm("lsm_put", rc);
	if (expect)
		expect[k] = vi;
}

/* A value read for key k: right length always; right bytes when verifying. Returns 1 if good. */
static int check_value(uint64_t k, const void *v, size_t len)
{
	if (len != (size_t)VSZ)
		return 0;
	if (expect && expect[k] != UNKNOWN && memcmp(v, mkval(expect[k]), len))
		return 0;
	return 1;
}

static int get_one(struct lsm_buf *buf, const char *key, uint64_t k, long *bad)
{
	int rc = lsm_get(db, NULL, key, (size_t)KSZ, buf);
	if (rc == LSM_NOTFOUND)
		return 0;
	if (rc)
		die_lsm("lsm_get", rc);
	if (!check_value(k, buf->data, buf->len))
		(*bad)++;
	return 1;
}

static void fill(const char *bench, int rndorder, uint64_t **perm)
{
	char key[MAX_KEY];
	store_open(1);
	if (rndorder) {
		if (!*perm && !(*perm = malloc(sizeof **perm * (size_t)N))) {
			fprintf(stderr, "lsmbench: out of memory\n");
			exit(1);
		}
		uint64_t *p = *perm;
		for (long i = 0; i < N; i++)
			p[i] = (uint64_t)i;
		/* Fisher-Yates with kvbench's draws (rnd() % (i + 1)). */
		for (long i = N - 1; i > 0; i--) {
			long j = (long)(rnd() % (uint64_t)(i + 1));
			uint64_t x = p[i];
			p[i] = p[j];
			p[j] = x;
		}
	}
	cpu_mark(); /* not the removal of the previous store's files (unlinks of up to 1.5 GB) */
	double t0 = now();
	for (long i = 0; i < N; i++) {
		uint64_t k = rndorder ? (*perm)[i] : (uint64_t)i;
		mkkey(key, k);
		put(key, k, k + (uint64_t)i);
	}
	double t = now() - t0;
	report(bench, N, (uint64_t)N * (uint64_t)(KSZ + VSZ), t);
	known_keys = N;
}

static void overwrite(void)
{
	char key[MAX_KEY];
	double t0 = now();
	for (long i = 0; i < N; i++) {
		uint64_t k = rnd() % (uint64_t)N;
		mkkey(key, k);
		put(key, k, k + (uint64_t)i + 1);
	}
	double t = now() - t0;
	report("overwrite", N, (uint64_t)N * (uint64_t)(KSZ + VSZ), t);
}

static void readrandom(void)
{
	char key[MAX_KEY];
	struct lsm_buf buf = {0};
	long found = 0, bad = 0;
	double t0 = now();
	for (long i = 0; i < N; i++) {
		uint64_t k = rnd() % (uint64_t)N;
		mkkey(key, k);
		found += get_one(&buf, key, k, &bad);
	}
	double t = now() - t0;
	report("readrandom", N, (uint64_t)found * (uint64_t)(KSZ + VSZ), t);
	if (found != N)
		fprintf(stderr, "lsmbench: readrandom found %ld of %ld\n", found, N);
	if (bad)
		fprintf(stderr, "lsmbench: readrandom: %ld values wrong\n", bad);
	lsm_buf_free(&buf);
}

static void readseq(void)
{
	struct lsm_read_options ro = {0};
	lsm_iter *it = lsm_iter_new(db, &ro);
	if (!it)
		die_lsm("lsm_iter_new", LSM_NOMEM);
	long n = 0, bad = 0, order = 0;
	uint64_t bytes = 0;
	char prev[MAX_KEY];
	size_t prevlen = 0;
	double t0 = now();
	for (lsm_iter_seek_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const void *k = lsm_iter_key(it, &kl);
		lsm_iter_value(it, &vl);
		bytes += kl + vl;
		n++;
		/* Cheap sanity, not timed apart: keys are fixed-size and must come strictly ascending. */
		if (kl != (size_t)KSZ || vl != (size_t)VSZ)
			bad++;
		else if (prevlen && memcmp(prev, k, kl) >= 0)
			order++;
		if (kl == (size_t)KSZ) {
			memcpy(prev, k, kl);
			prevlen = kl;
		}
	}
	double t = now() - t0;
	int rc = lsm_iter_status(it);
	if (rc)
		die_lsm("lsm_iter (readseq)", rc);
	lsm_iter_free(it);
	report("readseq", n, bytes, t);
	if (known_keys >= 0 && n != known_keys)
		fprintf(stderr, "lsmbench: readseq saw %ld keys, expected %ld\n", n, known_keys);
	if (bad || order)
		fprintf(stderr, "lsmbench: readseq: %ld entries of wrong size, %ld out of order\n", bad, order);
}

static void seekrandom(void)
{
	char key[MAX_KEY];
	struct lsm_read_options ro = {0};
	lsm_iter *it = lsm_iter_new(db, &ro);
	if (!it)
		die_lsm("lsm_iter_new", LSM_NOMEM);
	long found = 0, bad = 0;
	uint64_t bytes = 0;
	volatile unsigned char sink = 0;
	double t0 = now();
	for (long i = 0; i < N; i++) {
		uint64_t k = rnd() % (uint64_t)N;
		mkkey(key, k);
		lsm_iter_seek(it, key, (size_t)KSZ);
		if (!lsm_iter_valid(it))
			continue;
		size_t kl, vl;
		const unsigned char *ik = lsm_iter_key(it, &kl);
		const unsigned char *iv = lsm_iter_value(it, &vl);
		bytes += kl + vl;
		/* "Read" the entry: compare the key, touch the value's first and last byte. */
		if (kl == (size_t)KSZ && !memcmp(ik, key, kl)) {
			found++;
			if (!check_value(k, iv, vl))
				bad++;
		}
		if (vl)
			sink ^= iv[0] ^ iv[vl - 1];
	}
	double t = now() - t0;
	int rc = lsm_iter_status(it);
	if (rc)
		die_lsm("lsm_iter_seek (seekrandom)", rc);
	lsm_iter_free(it);
	(void)sink;
	report("seekrandom", N, bytes, t);
	if (found != N)
		fprintf(stderr, "lsmbench: seekrandom landed on the key sought %ld of %ld times\n", found, N);
	if (bad)
		fprintf(stderr, "lsmbench: seekrandom: %ld values wrong\n", bad);
}

struct reader {
	pthread_t tid;
	pthread_barrier_t *start;
	uint64_t rng;
	long n, found, bad;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	char key[MAX_KEY];
	struct lsm_buf buf = {0};
	pthread_barrier_wait(r->start);
	for (long i = 0; i < r->n; i++) {
		uint64_t k = sm64(&r->rng) % (uint64_t)N;
		mkkey(key, k);
		r->found += get_one(&buf, key, k, &r->bad); /* dies in this thread: lsm_errmsg is ours */
	}
	lsm_buf_free(&buf);
	return NULL;
}

static void readrandom_mt(void)
{
	struct reader r[READ_THREADS];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, READ_THREADS + 1);
	for (int i = 0; i < READ_THREADS; i++) {
		r[i] = (struct reader){.start = &start, .rng = rnd(), .n = N / READ_THREADS + (i < N % READ_THREADS)};
		if ((errno = pthread_create(&r[i].tid, NULL, reader_main, &r[i]))) {
			perror("lsmbench: pthread_create");
			exit(1);
		}
	}
	/* Wall time from the common start to the last thread's end. */
	pthread_barrier_wait(&start);
	double t0 = now();
	long found = 0, bad = 0;
	for (int i = 0; i < READ_THREADS; i++) {
		pthread_join(r[i].tid, NULL);
		found += r[i].found;
		bad += r[i].bad;
	}
	double t = now() - t0;
	pthread_barrier_destroy(&start);
	report("readrandom4", N, (uint64_t)found * (uint64_t)(KSZ + VSZ), t);
	if (found != N)
		fprintf(stderr, "lsmbench: readrandom4 found %ld of %ld\n", found, N);
	if (bad)
		fprintf(stderr, "lsmbench: readrandom4: %ld values wrong\n", bad);
}

/* ---------------------------------------------------------------- main */

static const char *const known[] = {"fillseq",  "fillrandom", "overwrite",   "readrandom",
				    "readseq", "seekrandom", "readrandom4"};

int main(int argc, char **argv)
{
	char benches[512] = "fillseq,fillrandom,overwrite,readrandom,readseq";
	int c;
	while ((c = getopt(argc, argv, "d:n:k:v:b:w:c:B:s:")) != -1) {
		switch (c) {
		case 'd': DBDIR = optarg; break;
		case 'n': N = num_arg(c, optarg, 1, 1L << 40); break;
		case 'k': KSZ = (int)num_arg(c, optarg, 16, MAX_KEY); break;
		case 'v': VSZ = (int)num_arg(c, optarg, 1, 64 << 20); break;
		case 'b':
			if (strlen(optarg) >= sizeof benches)
				usage("benchmark list too long");
			snprintf(benches, sizeof benches, "%s", optarg);
			break;
		case 'w': WB_MB = num_arg(c, optarg, 1, 1L << 20); break;
		case 'c': CACHE_MB = num_arg(c, optarg, 0, 1L << 20); break;
		case 'B': BLOOM = (int)num_arg(c, optarg, 0, 40); break;
		case 's': {
			char *end;
			errno = 0;
			SEED = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end)
				usage("bad value for -s");
			break;
		}
		default: usage(NULL);
		}
	}
	if (optind < argc)
		usage("unexpected argument");
	if (!DBDIR)
		usage("need -d DIR");
	/* Check the whole list before running anything: a typo must not cost a 1 M fill first. */
	char check[sizeof benches];
	memcpy(check, benches, sizeof check);
	for (char *save, *b = strtok_r(check, ",", &save); b; b = strtok_r(NULL, ",", &save)) {
		size_t i = 0;
		while (i < sizeof known / sizeof known[0] && strcmp(b, known[i]))
			i++;
		if (i == sizeof known / sizeof known[0]) {
			fprintf(stderr, "lsmbench: unknown benchmark %s\n", b);
			usage(NULL);
		}
	}
	const char *ve = getenv("LSMBENCH_VERIFY");
	verify = ve && *ve && strcmp(ve, "0");

	rng_main = SEED;
	valbuf_sz = (size_t)VSZ * 64 + (1 << 20);
	valbuf = malloc(valbuf_sz);
	if (!valbuf) {
		fprintf(stderr, "lsmbench: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i + 8 <= valbuf_sz; i += 8) {
		uint64_t r = rnd();
		memcpy(valbuf + i, &r, 8);
	}
	if (verify) {
		if (!(expect = malloc(sizeof *expect * (size_t)N))) {
			fprintf(stderr, "lsmbench: out of memory\n");
			return 1;
		}
		for (long i = 0; i < N; i++)
			expect[i] = UNKNOWN;
	}
	fprintf(stderr,
		"lsmbench: engine=lsmfs dir=%s N=%ld key=%d value=%d wb=%ldMiB cache=%ldMiB bloom=%d "
		"compression=none wal=on sync=off verify=%s\n",
		DBDIR, N, KSZ, VSZ, WB_MB, CACHE_MB, BLOOM, verify ? "on" : "off");

	uint64_t *perm = NULL;
	for (char *save, *b = strtok_r(benches, ",", &save); b; b = strtok_r(NULL, ",", &save)) {
		int is_fill = !strcmp(b, "fillseq") || !strcmp(b, "fillrandom");
		if (db && is_fill)
			store_close();
		if (!db && !is_fill)
			store_open(0);
		struct lsm_stats before = {0};
		if (db)
			stats(&before);
		cpu_mark();
		if (is_fill) {
			fill(b, !strcmp(b, "fillrandom"), &perm); /* a fresh store: counters start at 0 */
		} else if (!strcmp(b, "overwrite")) {
			overwrite();
		} else if (!strcmp(b, "readrandom")) {
			readrandom();
		} else if (!strcmp(b, "readseq")) {
			readseq();
		} else if (!strcmp(b, "seekrandom")) {
			seekrandom();
		} else {
			readrandom_mt();
		}
		phase_stats(b, &before);
		fprintf(stderr, "lsmbench: cpu %s v%d: benchmark thread %.3f s, all threads %.3f s\n", b, VSZ,
			cpu_secs(CLOCK_THREAD_CPUTIME_ID) - cpu_thread0, cpu_secs(CLOCK_PROCESS_CPUTIME_ID) - cpu_all0);
	}
	if (db)
		store_close();
	free(perm);
	free(expect);
	free(valbuf);
	return 0;
}
