/* db.c - the engine: open and recovery, the group-commit write path, gets, flush, snapshots, stats. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bloom.h"
#include "cache.h"
#include "db_impl.h"
#include "dbformat.h"
#include "iter.h"
#include "status.h"
#include "table.h"

/* A group commit folds at most this many payload bytes (LevelDB's choice: big enough to amortise the
 * write(2), small enough that a small write does not wait long behind a big group). */
#define GROUP_MAX_BYTES (1u << 20)
#define GROUP_SMALL_BYTES (128u << 10)

/* ---------------------------------------------------------------- counters */

static _Thread_local unsigned counter_slot_tls;
static _Atomic unsigned counter_slot_next;

void counter_add(struct sharded_counter *c, uint64_t n)
{
	if (!counter_slot_tls)
		counter_slot_tls = atomic_fetch_add_explicit(&counter_slot_next, 1, memory_order_relaxed) + 1;
	atomic_fetch_add_explicit(&c->s[counter_slot_tls % NCOUNTER_SHARDS].v, n, memory_order_relaxed);
}

uint64_t counter_sum(struct sharded_counter *c)
{
	uint64_t n = 0;
	for (int i = 0; i < NCOUNTER_SHARDS; i++)
		n += atomic_load_explicit(&c->s[i].v, memory_order_relaxed);
	return n;
}

/* ---------------------------------------------------------------- options */

void lsm_options_init(struct lsm_options *o)
{
	memset(o, 0, sizeof *o);
	o->create_if_missing = 1;
	o->write_buffer_size = 64u << 20;
	o->max_immutable = 2;
	o->block_size = 4096;
	o->block_restart_interval = 16;
	o->bloom_bits_per_key = 10;
	o->table_target_size = 8u << 20;
	o->block_cache_size = 32u << 20;
	o->max_open_tables = 1000;
	o->l0_compaction_trigger = 4;
	o->l0_slowdown_trigger = 12;
	o->l0_stop_trigger = 20;
	o->level1_max_bytes = 64u << 20;
}

static int check_options(const struct lsm_options *o)
{
	if (o->write_buffer_size < 4096)
		return st_error(LSM_INVAL, "write_buffer_size %zu is below 4096", o->write_buffer_size);
	if (o->max_immutable < 1 || o->max_immutable > MAX_IMM - 1)
		return st_error(LSM_INVAL, "max_immutable %d is outside 1..%d", o->max_immutable, MAX_IMM - 1);
	if (o->block_size < 256 || o->block_size > (64u << 20))
		return st_error(LSM_INVAL, "block_size %zu is outside 256..64 MiB", o->block_size);
	if (o->block_restart_interval < 1)
		return st_error(LSM_INVAL, "block_restart_interval must be >= 1");
	if (o->bloom_bits_per_key < 0 || o->bloom_bits_per_key > 40)
		return st_error(LSM_INVAL, "bloom_bits_per_key %d is outside 0..40", o->bloom_bits_per_key);
	if (o->max_open_tables < 16)
		return st_error(LSM_INVAL, "max_open_tables %d is below 16", o->max_open_tables);
	if (o->l0_compaction_trigger < 1 || o->l0_slowdown_trigger < o->l0_compaction_trigger ||
	    o->l0_stop_trigger < o->l0_slowdown_trigger)
		return st_error(LSM_INVAL, "level-0 triggers must satisfy 1 <= compaction <= slowdown <= stop");
	if (o->table_target_size < 4096 || o->level1_max_bytes < 4096)
		return st_error(LSM_INVAL, "table_target_size and level1_max_bytes must be >= 4096");
	return LSM_OK;
}

struct table_opts db_table_opts(const struct lsm_db *db)
{
	struct table_opts t = {db->o.block_size, db->o.block_restart_interval, db->o.bloom_bits_per_key};
	return t;
}

/* ---------------------------------------------------------------- super-versions */

/* Readers take a reference under sv_mu: a plain load-then-increment could race with the last release
 * of an old super-version freeing it in between. The lock is held for two instructions and never
 * around I/O. */
struct superversion *sv_acquire(struct lsm_db *db)
{
	pthread_mutex_lock(&db->sv_mu);
	struct superversion *sv = db->sv;
	atomic_fetch_add_explicit(&sv->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&db->sv_mu);
	return sv;
}

static void sv_free(struct superversion *sv)
{
	memtable_unref(sv->mem);
	for (int i = 0; i < sv->nimm; i++)
		memtable_unref(sv->imm[i]);
	struct lsm_db *db = sv->db;
	/* The last unref of a version unlinks it from the version set: take mu. */
	pthread_mutex_lock(&db->mu);
	version_unref(sv->v);
	pthread_mutex_unlock(&db->mu);
	free(sv);
}

void sv_release(struct superversion *sv)
{
	if (atomic_fetch_sub_explicit(&sv->refs, 1, memory_order_acq_rel) == 1)
		sv_free(sv);
}

/* Recompute lsm_write_may_wait's answer. REQUIRES: mu held. */
static void note_pressure(struct lsm_db *db)
{
	int l0 = db->vs->current->nfiles[0];
	int p = db->nimm >= db->o.max_immutable ||
		(!db->o.disable_compaction && l0 >= db->o.l0_slowdown_trigger) ||
		memtable_charge(db->mem) >= db->o.write_buffer_size / 8 * 7;
	atomic_store_explicit(&db->write_pressure, p, memory_order_relaxed);
}

int lsm_write_may_wait(lsm_db *db)
{
	return atomic_load_explicit(&db->write_pressure, memory_order_relaxed);
}

/* Build and publish a super-version of the current state. REQUIRES: mu held. */
static int install_sv(struct lsm_db *db)
{
	note_pressure(db);
	struct superversion *sv = calloc(1, sizeof *sv);
	if (!sv)
		return st_error(LSM_NOMEM, "out of memory");
	atomic_init(&sv->refs, 1);
	sv->db = db;
	sv->mem = db->mem;
	memtable_ref(sv->mem);
	for (int i = db->nimm - 1; i >= 0; i--) {
		sv->imm[sv->nimm++] = db->imm[i];
		memtable_ref(db->imm[i]);
	}
	sv->v = db->vs->current;
	version_ref(sv->v);
	pthread_mutex_lock(&db->sv_mu);
	struct superversion *old = db->sv;
	db->sv = sv;
	pthread_mutex_unlock(&db->sv_mu);
	if (old && atomic_fetch_sub_explicit(&old->refs, 1, memory_order_acq_rel) == 1) {
		/* We hold mu already: free without re-locking. */
		memtable_unref(old->mem);
		for (int i = 0; i < old->nimm; i++)
			memtable_unref(old->imm[i]);
		version_unref(old->v);
		free(old);
	}
	return LSM_OK;
}

/* ---------------------------------------------------------------- errors, pending outputs */

void db_set_bg_error(struct lsm_db *db, int rc)
{
	if (!db->bg_error && rc) {
		db->bg_error = rc;
		pthread_cond_broadcast(&db->done_cv);
	}
}

int numbers_add(struct numbers *s, uint64_t x)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		uint64_t *p = realloc(s->v, cap * sizeof *p);
		if (!p)
			return LSM_NOMEM;
		s->v = p;
		s->cap = cap;
	}
	s->v[s->n++] = x;
	return LSM_OK;
}

void numbers_remove(struct numbers *s, uint64_t x)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == x) {
			s->v[i] = s->v[--s->n];
			return;
		}
}

int db_pending_add(struct lsm_db *db, uint64_t number)
{
	return numbers_add(&db->pending, number) ? st_error(LSM_NOMEM, "out of memory") : LSM_OK;
}

void db_pending_remove(struct lsm_db *db, uint64_t number)
{
	numbers_remove(&db->pending, number);
}

/* ---------------------------------------------------------------- obsolete files */

struct live_set {
	struct numbers s;
	int oom;
};

static void live_add(void *arg, uint64_t number)
{
	struct live_set *ls = arg;
	ls->oom |= numbers_add(&ls->s, number) != LSM_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct obsolete_scan {
	struct lsm_db *db;
	struct live_set live;
	char **doomed;
	size_t n, cap;
	int oom;
};

static int collect_obsolete(void *arg, const char *name)
{
	struct obsolete_scan *s = arg;
	struct lsm_db *db = s->db;
	uint64_t number;
	int dead = 0;
	switch (parse_file_name(name, &number)) {
	case SF_LOG:
		/* Logs below the manifest's log number are fully in tables; the active log and those of
		 * memtables not yet flushed are at or above it. */
		dead = number < db->vs->log_number;
		break;
	case SF_TABLE:
	case SF_BLOB:
		/* Blob files: live while a live version's table references them, or pending (the active
		 * memtable's, those of memtables awaiting flush, a compaction's relocation output). */
		dead = !s->live.s.n || !bsearch(&number, s->live.s.v, s->live.s.n, sizeof *s->live.s.v, cmp_u64);
		break;
	case SF_MANIFEST:
		dead = number != db->vs->manifest_number;
		break;
	case SF_TEMP:
		dead = 1;
		break;
	default:
		break; /* CURRENT, LOCK, and files we do not know: never ours to delete */
	}
	if (!dead)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		char **p = realloc(s->doomed, cap * sizeof *p);
		if (!p) {
			s->oom = 1;
			return 1;
		}
		s->doomed = p;
		s->cap = cap;
	}
	if (!(s->doomed[s->n] = strdup(name))) {
		s->oom = 1;
		return 1;
	}
	s->n++;
	return 0;
}

/* Delete every file no live version, pending output or log position needs. REQUIRES: mu held; the
 * unlinks run without it. A failure to delete is not an error (the next pass retries). */
void db_delete_obsolete_files(struct lsm_db *db)
{
	if (db->o.read_only || db->bg_error)
		return;
	struct obsolete_scan s = {.db = db};
	vset_live_files(db->vs, live_add, &s.live);
	for (size_t i = 0; i < db->pending.n; i++)
		live_add(&s.live, db->pending.v[i]);
	pthread_mutex_lock(&db->pin_mu);
	for (size_t i = 0; i < db->blob_pins.n; i++)
		live_add(&s.live, db->blob_pins.v[i]);
	pthread_mutex_unlock(&db->pin_mu);
	if (s.live.oom) {
		free(s.live.s.v);
		return;
	}
	if (s.live.s.n)
		qsort(s.live.s.v, s.live.s.n, sizeof *s.live.s.v, cmp_u64);
	db->env->list(db->env, db->dir, collect_obsolete, &s);
	pthread_mutex_unlock(&db->mu);
	for (size_t i = 0; i < s.n; i++) {
		uint64_t number;
		enum store_file t = s.oom ? SF_UNKNOWN : parse_file_name(s.doomed[i], &number);
		if (t == SF_TABLE)
			vset_table_evict(db->vs, number);
		else if (t == SF_BLOB)
			blob_files_evict(&db->blobs, number);
		char *p = path_join(db->dir, s.doomed[i]);
		if (p && !s.oom)
			db->env->unlink(db->env, p);
		free(p);
		free(s.doomed[i]);
	}
	pthread_mutex_lock(&db->mu);
	free(s.doomed);
	free(s.live.s.v);
}

/* Log the edit, then publish a super-version with it; `flushed` (the oldest immutable memtable, whose
 * table the edit adds) leaves the immutable list in that same super-version, so no reader ever sees
 * the data twice or not at all. */
static int install_edit(struct lsm_db *db, struct version_edit *e, struct memtable *flushed)
{
	while (db->manifest_busy)
		pthread_cond_wait(&db->done_cv, &db->mu);
	db->manifest_busy = 1;
	int rc = vset_log_and_apply(db->vs, e, &db->mu);
	db->manifest_busy = 0;
	pthread_cond_broadcast(&db->done_cv);
	if (rc) {
		/* A manifest write that failed leaves unknown which manifest (and which edits) a restart
		 * reads: stop writes and file deletions, whoever asked (flush, compaction, compact_range). */
		db_set_bg_error(db, rc);
		return rc;
	}
	if (flushed && db->nimm > 0 && db->imm[0] == flushed) {
		memmove(db->imm, db->imm + 1, (size_t)(db->nimm - 1) * sizeof *db->imm);
		db->nimm--;
		memtable_unref(flushed);
	}
	return install_sv(db);
}

int db_install_edit(struct lsm_db *db, struct version_edit *e)
{
	return install_edit(db, e, NULL);
}

/* ---------------------------------------------------------------- flush */

/* Write memtable m as table `number`; fills f (size, keys, seqnos). LSM_NOTFOUND: it held nothing a
 * table keeps (no file is left). No lock held. */
static int write_memtable(struct lsm_db *db, struct memtable *m, uint64_t number, struct file_meta *f)
{
	char *path = path_table(db->dir, number);
	if (!path)
		return st_error(LSM_NOMEM, "out of memory");
	struct table_opts to = db_table_opts(db);
	struct table_builder *tb;
	int rc = table_builder_open(db->env, path, &to, &tb);
	if (rc) {
		free(path);
		return rc;
	}
	struct iter *it = memtable_iter_new(m);
	if (!it) {
		table_builder_abandon(tb);
		db->env->unlink(db->env, path);
		free(path);
		return st_error(LSM_NOMEM, "out of memory");
	}
	for (iter_seek_first(it); it->valid && !rc; iter_next(it)) {
		rc = table_builder_add(tb, it->key, it->value);
		if (!rc && (rc = blob_uses_note(&f->blobs, it->key, it->value)))
			rc = rc == LSM_NOMEM ? st_error(rc, "out of memory")
					     : st_error(rc, "malformed blob reference in memtable %" PRIu64, m->log_number);
	}
	iter_destroy(it);
	const struct rd_tombstone *rts;
	size_t nrts = memtable_range_raw(m, &rts);
	for (size_t i = 0; i < nrts && !rc; i++)
		rc = table_builder_add_range(tb, rts[i].begin, rts[i].end, rts[i].seq);
	struct table_props props;
	if (rc) {
		table_builder_abandon(tb);
	} else {
		rc = table_builder_finish(tb, &props, &f->size);
	}
	if (!rc && props.entries + props.range_dels == 0) {
		/* Only empty range deletes (begin >= end), which hide nothing and which the builder
		 * leaves out: a table of nothing has no key range, so it must not join a level. */
		table_props_free(&props);
		f->size = 0;
		rc = LSM_NOTFOUND;
	}
	if (rc) {
		db->env->unlink(db->env, path);
		free(path);
		return rc;
	}
	free(path);
	f->number = number;
	f->smallest = props.smallest;
	f->largest = props.largest;
	f->min_seq = props.min_seq;
	f->max_seq = props.max_seq;
	f->entries = props.entries;
	f->deletes = props.deletes;
	f->range_dels = props.range_dels;
	return LSM_OK;
}

/* Flush the oldest immutable memtable. REQUIRES: mu held, nimm > 0. */
static int flush_one(struct lsm_db *db)
{
	struct memtable *m = db->imm[0];
	uint64_t number = vset_new_file_number(db->vs);
	struct file_meta *f = file_meta_new();
	int rc = f ? db_pending_add(db, number) : st_error(LSM_NOMEM, "out of memory");
	if (rc) {
		file_meta_unref(f);
		return rc;
	}
	int empty = memtable_empty(m);
	pthread_mutex_unlock(&db->mu);
	/* The table is synced by the builder; its directory entry is synced with the manifest's CURRENT
	 * or below, before the manifest names it. */
	if (!empty) {
		rc = write_memtable(db, m, number, f);
		if (rc == LSM_NOTFOUND) {
			rc = LSM_OK;
			empty = 1;
		} else if (!rc) {
			int e = db->env->sync_dir(db->env, db->dir);
			if (e)
				rc = st_errno(e, "sync directory %s", db->dir);
		}
	}
	pthread_mutex_lock(&db->mu);
	if (!rc) {
		struct version_edit e;
		edit_init(&e);
		if (!empty)
			rc = edit_add_file(&e, 0, f) ? st_error(LSM_NOMEM, "out of memory") : LSM_OK;
		/* Logs before the next unflushed memtable's are now redundant. */
		e.has_log_number = 1;
		e.log_number = db->nimm > 1 ? db->imm[1]->log_number : db->mem->log_number;
		e.has_last_seq = 1;
		e.last_seq = db->last_seq;
		if (!rc)
			rc = install_edit(db, &e, m);
		edit_free(&e);
	}
	db_pending_remove(db, number);
	if (!rc) {
		db->st_flushes++;
		db->st_bytes_flushed += empty ? 0 : f->size;
	}
	file_meta_unref(f);
	return rc;
}

static void *flush_thread_main(void *arg)
{
	struct lsm_db *db = arg;
	pthread_mutex_lock(&db->mu);
	for (;;) {
		while (!db->shutting_down && (db->nimm == 0 || db->bg_error))
			pthread_cond_wait(&db->bg_cv, &db->mu);
		if (db->shutting_down)
			break;
		int rc = flush_one(db);
		if (rc)
			db_set_bg_error(db, rc);
		else
			db_delete_obsolete_files(db);
		/* Writers waiting for room, lsm_flush callers and the compaction thread all care. */
		pthread_cond_broadcast(&db->done_cv);
		pthread_cond_broadcast(&db->bg_cv);
	}
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

/* ---------------------------------------------------------------- write path */

/* Make the active memtable an immutable one and start a new memtable with a new log. The old log is
 * synced first: a record of the new log must never be durable while an older one is not.
 * REQUIRES: mu held, and the caller is the write leader (nobody inserts meanwhile). */
static int switch_memtable(struct lsm_db *db)
{
	int rc = db->blob ? wal_sync(db->blob) : LSM_OK;
	if (!rc)
		rc = wal_sync(db->log);
	if (rc) {
		/* The log's state is unknown after a failed sync (wal.h): no write may use it again. */
		db_set_bg_error(db, rc);
		return rc;
	}
	uint64_t number = vset_new_file_number(db->vs);
	char *path = path_log(db->dir, number);
	if (!path)
		return st_error(LSM_NOMEM, "out of memory");
	struct wal_writer *w;
	rc = wal_writer_open(db->env, path, number, &w);
	free(path);
	if (rc)
		return rc;
	int e = db->env->sync_dir(db->env, db->dir);
	struct memtable *m = e ? NULL : memtable_new(number, db->o.write_buffer_size);
	if (!m) {
		wal_writer_close(w);
		return e ? st_errno(e, "sync directory %s", db->dir) : st_error(LSM_NOMEM, "out of memory");
	}
	wal_writer_close(db->log);
	db->log = w;
	if (db->blob) {
		/* Sealed: never appended to again, so readers may map it from now on. */
		uint64_t bn = db->blob->number;
		(void)wal_writer_close(db->blob); /* synced above: a close error loses nothing */
		db->blob = NULL;
		atomic_store_explicit(&db->blobs.growing, 0, memory_order_release);
		blob_files_evict(&db->blobs, bn);
	}
	db->imm[db->nimm++] = db->mem;
	db->mem = m;
	rc = install_sv(db);
	pthread_cond_broadcast(&db->bg_cv);
	return rc;
}

static uint64_t now_micros(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Ensure the memtable has room, stalling the writer when flushes or level 0 fall behind (bounded
 * memory, bounded read amplification). force: switch even if the memtable is not full (lsm_flush).
 * REQUIRES: mu held, caller is the leader. */
static int make_room(struct lsm_db *db, int force)
{
	int delayed = 0;
	for (;;) {
		if (db->bg_error)
			return db->bg_error;
		int l0 = db->vs->current->nfiles[0];
		if (!force && !delayed && !db->o.disable_compaction && l0 >= db->o.l0_slowdown_trigger) {
			/* Give compaction some of this writer's time, once per write, instead of stopping
			 * dead later: smooths latency under a write flood. */
			uint64_t t0 = now_micros();
			pthread_mutex_unlock(&db->mu);
			usleep(1000);
			pthread_mutex_lock(&db->mu);
			delayed = 1;
			db->st_stall_slowdowns++;
			db->st_stall_micros += now_micros() - t0;
			continue;
		}
		if (!force && memtable_charge(db->mem) < db->o.write_buffer_size)
			return LSM_OK;
		if (force && memtable_empty(db->mem))
			return LSM_OK;
		if (db->nimm >= db->o.max_immutable) {
			uint64_t t0 = now_micros();
			db->st_stall_imm_waits++;
			pthread_cond_wait(&db->done_cv, &db->mu);
			db->st_stall_micros += now_micros() - t0;
			continue;
		}
		if (!db->o.disable_compaction && l0 >= db->o.l0_stop_trigger) {
			uint64_t t0 = now_micros();
			db->st_stall_stops++;
			pthread_cond_broadcast(&db->bg_cv);
			pthread_cond_wait(&db->done_cv, &db->mu);
			db->st_stall_micros += now_micros() - t0;
			continue;
		}
		return switch_memtable(db);
	}
}

/* Gather the writers behind the leader into one group. Returns the batch to log (the leader's own, or
 * db->group holding all of them); *last is the last writer included; *want_sync whether any asked for
 * a sync. A sync writer never joins a leader that would not sync. REQUIRES: mu held. */
static struct lsm_batch *build_group(struct lsm_db *db, struct writer **last, int *want_sync)
{
	struct writer *w = db->wq_head;
	*last = w;
	*want_sync = w->sync;
	size_t size = w->batch ? batch_payload_len(w->batch) : 0;
	size_t max = size <= GROUP_SMALL_BYTES ? size + GROUP_SMALL_BYTES : GROUP_MAX_BYTES;
	struct lsm_batch *result = w->batch;
	int merged = 0;
	for (struct writer *n = w->next; n; n = n->next) {
		if ((n->sync && !w->sync) || n->exclusive)
			break;
		if (n->batch) {
			size_t add = batch_payload_len(n->batch) - BATCH_HEADER_SIZE;
			if (size + add > max)
				break;
			if (!merged && (result || n->batch)) {
				lsm_batch_clear(&db->group);
				if (result && batch_append_ops(&db->group, result))
					break;
				result = &db->group;
				merged = 1;
			}
			if (batch_append_ops(&db->group, n->batch))
				break;
			size += add;
		}
		*last = n;
	}
	return result;
}

/* A memtable that referred to blob file `number` is gone (memtable.h). */
static void blob_unpin(void *arg, uint64_t number)
{
	struct lsm_db *db = arg;
	pthread_mutex_lock(&db->pin_mu);
	numbers_remove(&db->blob_pins, number);
	pthread_mutex_unlock(&db->pin_mu);
}

static int blob_pin(struct lsm_db *db, uint64_t number)
{
	pthread_mutex_lock(&db->pin_mu);
	int rc = numbers_add(&db->blob_pins, number);
	pthread_mutex_unlock(&db->pin_mu);
	return rc ? st_error(rc, "out of memory") : LSM_OK;
}

/* Open the active memtable's blob file. REQUIRES: mu held, caller is the leader, db->blob NULL. */
static int open_blob(struct lsm_db *db)
{
	uint64_t number = vset_new_file_number(db->vs);
	/* Pinned from before the file exists until the memtable that refers to it is freed. */
	int rc = blob_pin(db, number);
	if (rc)
		return rc;
	struct wal_writer *w;
	rc = blob_writer_open(db->env, db->dir, number, &w);
	if (!rc) {
		/* Its name must be durable before any synced log record refers to it. */
		int e = db->env->sync_dir(db->env, db->dir);
		if (e) {
			rc = st_errno(e, "sync directory %s", db->dir);
			wal_writer_close(w);
		}
	}
	if (rc) {
		blob_unpin(db, number);
		return rc;
	}
	atomic_store_explicit(&db->blobs.growing, number, memory_order_release);
	db->blob = w;
	db->mem->blob_number = number;
	db->mem->blob_release = blob_unpin;
	db->mem->blob_release_arg = db;
	return LSM_OK;
}

/* separate_blobs' rewriter: a big put becomes a reference to its record, appended to db->blob_recs. */
struct separate_ctx {
	struct lsm_db *db;
	uint64_t moved;
	int failed;              /* to_reference's error (its message is set) */
	char enc[BLOB_REF_MAX];
};
static int is_big_put(void *arg, const struct batch_op *op)
{
	struct separate_ctx *c = arg;
	return op->type == VT_VALUE && op->value.len >= c->db->o.blob_min_size;
}
static int to_reference(void *arg, struct batch_op *op)
{
	struct separate_ctx *c = arg;
	struct blob_ref ref;
	int rc = blob_record_encode(&c->db->blob_recs, c->db->blob, op->key, op->value, &ref);
	if (rc) {
		c->failed = 1;
		return rc;
	}
	c->moved += op->value.len;
	op->type = VT_BLOB;
	op->value = slice_make(c->enc, blob_ref_encode(c->enc, &ref));
	return LSM_OK;
}

/* Move the group's big values into the blob file: *out is g with references in their place (or g
 * itself when none is big), *moved the value bytes moved. The records go to the file before the log
 * record that refers to them. REQUIRES: the caller is the leader; no lock needed. */
static int separate_blobs(struct lsm_db *db, struct lsm_batch *g, struct lsm_batch **out, uint64_t *moved)
{
	struct separate_ctx c = {.db = db};
	struct batch_rewriter rw = {is_big_put, to_reference, &c};
	int changed;
	*out = g;
	*moved = 0;
	db->blob_recs.len = 0;
	int rc = batch_rewrite(slice_make(batch_payload(g), batch_payload_len(g)), &rw, &db->blob_batch, &changed);
	if (rc && !c.failed)
		return st_error(rc, rc == LSM_CORRUPT ? "malformed write batch" : "out of memory");
	if (rc || !changed)
		return rc;
	if ((rc = wal_append_raw(db->blob, db->blob_recs.data, db->blob_recs.len)))
		return rc;
	*out = &db->blob_batch;
	*moved = c.moved;
	return LSM_OK;
}

static int write_internal(struct lsm_db *db, struct lsm_batch *batch, int sync)
{
	if (db->o.read_only)
		return st_error(LSM_READONLY, "store %s is open read-only", db->dir);
	struct writer w = {.batch = batch, .sync = sync};
	pthread_cond_init(&w.cv, NULL);
	pthread_mutex_lock(&db->mu);
	if (db->wq_tail)
		db->wq_tail->next = &w;
	else
		db->wq_head = &w;
	db->wq_tail = &w;
	while (!w.done && db->wq_head != &w)
		pthread_cond_wait(&w.cv, &db->mu);
	if (w.done) {
		pthread_mutex_unlock(&db->mu);
		pthread_cond_destroy(&w.cv);
		if (w.status)
			st_error(w.status, "write failed: %s (the store stopped accepting writes)", lsm_strerror(w.status));
		return w.status;
	}

	/* Leader. */
	int rc = make_room(db, 0);
	struct writer *last = &w;
	if (!rc) {
		int want_sync;
		struct lsm_batch *g = build_group(db, &last, &want_sync);
		uint32_t count = g ? g->count : 0;
		uint64_t first = db->last_seq + 1;
		struct memtable *mem = db->mem;
		struct wal_writer *log = db->log;
		if (count)
			batch_set_seq(g, first);
		int may_blob = count && db->o.blob_min_size && g->max_value >= db->o.blob_min_size;
		if (may_blob && !db->blob)
			rc = open_blob(db);
		struct wal_writer *blob = db->blob;
		pthread_mutex_unlock(&db->mu);
		struct lsm_batch *logged = g;
		uint64_t moved = 0;
		if (!rc && may_blob)
			rc = separate_blobs(db, g, &logged, &moved);
		if (!rc && count)
			rc = wal_append(log, WAL_REC_BATCH, logged->rep.data, batch_payload_len(logged));
		/* Blob bytes first: a synced log record never names blob bytes that are not. */
		if (!rc && want_sync && blob)
			rc = wal_sync(blob);
		if (!rc && want_sync)
			rc = wal_sync(log);
		if (!rc && count)
			rc = memtable_apply_batch(mem, batch_payload(logged), batch_payload_len(logged));
		if (!rc && moved)
			atomic_fetch_add_explicit(&mem->blob_bytes, moved, memory_order_relaxed);
		pthread_mutex_lock(&db->mu);
		if (rc) {
			/* The log may hold a partial record, or the memtable part of a batch: the store's
			 * state is unknown, so it takes no more writes. */
			db_set_bg_error(db, rc);
		} else {
			db->last_seq += count;
			/* The one publication per group: readers see the whole group or none of it. */
			atomic_store_explicit(&db->visible_seq, db->last_seq, memory_order_release);
			note_pressure(db);
			db->st_groups += count > 0;
			db->st_syncs += want_sync;
			db->st_blob_bytes_written += moved;
			if (g) {
				db->st_puts += g->puts;
				db->st_deletes += g->deletes;
				db->st_range_deletes += g->range_deletes;
			}
			for (struct writer *x = &w;; x = x->next) {
				db->st_batches += x->batch != NULL;
				if (x == last)
					break;
			}
		}
	}
	for (;;) {
		struct writer *x = db->wq_head;
		db->wq_head = x->next;
		if (!db->wq_head)
			db->wq_tail = NULL;
		if (x != &w) {
			x->status = rc;
			x->done = 1;
			pthread_cond_signal(&x->cv);
		}
		if (x == last)
			break;
	}
	if (db->wq_head)
		pthread_cond_signal(&db->wq_head->cv);
	pthread_mutex_unlock(&db->mu);
	pthread_cond_destroy(&w.cv);
	return rc;
}

int lsm_write(lsm_db *db, lsm_batch *batch, unsigned flags)
{
	if (!batch || batch->count == 0)
		return (flags & LSM_SYNC) ? lsm_sync(db) : LSM_OK;
	return write_internal(db, batch, (flags & LSM_SYNC) != 0);
}

/* Single-operation writes build their batch on the stack: no heap allocation for small keys. */
#define SMALL_BATCH 512

static int write_one(lsm_db *db, unsigned type, const void *k, size_t kl, const void *v, size_t vl,
		     unsigned flags)
{
	char stack[SMALL_BATCH];
	struct lsm_batch b;
	memset(&b, 0, sizeof b);
	size_t need = WAL_HEADER_SIZE + BATCH_HEADER_SIZE + 1 + 2 * VARINT64_MAX + kl + vl;
	int heap = need > sizeof stack;
	if (heap) {
		int rc = batch_init(&b);
		if (rc)
			return st_error(rc, "out of memory");
	} else {
		b.rep.data = stack;
		b.rep.cap = sizeof stack;
		b.rep.len = WAL_HEADER_SIZE + BATCH_HEADER_SIZE;
	}
	int rc;
	if (type == VT_VALUE)
		rc = lsm_batch_put(&b, k, kl, v, vl);
	else if (type == VT_DELETE)
		rc = lsm_batch_delete(&b, k, kl);
	else
		rc = lsm_batch_delete_range(&b, k, kl, v, vl);
	if (!rc)
		rc = write_internal(db, &b, (flags & LSM_SYNC) != 0);
	else
		st_error(rc, "cannot encode the write (%zu-byte key, %zu-byte value)", kl, vl);
	if (heap)
		buf_free(&b.rep);
	return rc;
}

int lsm_put(lsm_db *db, const void *key, size_t klen, const void *val, size_t vlen, unsigned flags)
{
	return write_one(db, VT_VALUE, key, klen, val, vlen, flags);
}

int lsm_delete(lsm_db *db, const void *key, size_t klen, unsigned flags)
{
	return write_one(db, VT_DELETE, key, klen, NULL, 0, flags);
}

int lsm_delete_range(lsm_db *db, const void *begin, size_t blen, const void *end, size_t elen, unsigned flags)
{
	return write_one(db, VT_RANGE_DELETE, begin, blen, end, elen, flags);
}

int lsm_sync(lsm_db *db)
{
	if (db->o.read_only)
		return LSM_OK;
	return write_internal(db, NULL, 1);
}

/* ---------------------------------------------------------------- reads */

int lsm_get(lsm_db *db, const struct lsm_read_options *ro, const void *key, size_t klen, struct lsm_buf *val)
{
	/* The seqno first, then the super-version: everything at or below the seqno is in it. */
	uint64_t snap = ro && ro->snapshot ? ro->snapshot->seq
					   : atomic_load_explicit(&db->visible_seq, memory_order_acquire);
	struct superversion *sv = sv_acquire(db);
	struct slice k = slice_make(key, klen);
	uint64_t range_seq = 0;
	struct mem_entry me;
	int rc = 0, found = 0;
	uint64_t seq = 0;
	unsigned type = 0;
	struct memtable *mems[MAX_IMM + 1];
	int nm = 0;
	mems[nm++] = sv->mem;
	for (int i = 0; i < sv->nimm; i++)
		mems[nm++] = sv->imm[i];
	for (int i = 0; i < nm && !found && !range_seq; i++) {
		rc = memtable_get(mems[i], k, snap, &me, &range_seq);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			found = 1;
			seq = me.seq;
			type = me.type;
			if (vt_is_put(type) && !(range_seq > seq)) {
				if (lsm_buf_fit(val, me.value.len)) {
					rc = st_error(LSM_NOMEM, "out of memory");
					goto out;
				}
				if (me.value.len)
					memcpy(val->data, me.value.data, me.value.len);
				val->len = me.value.len;
			}
		}
	}
	if (!found && !range_seq) {
		struct get_ctx c = {.key = k, .hash = bloom_hash(k), .snap = snap, .value = val};
		rc = version_get(sv->v, &c);
		if (c.bloom_skips)
			counter_add(&db->bloom_useful, c.bloom_skips);
		if (rc < 0)
			goto out;
		range_seq = c.range_seq;
		if (rc == 1) {
			found = 1;
			seq = c.seq;
			type = c.type;
		}
	}
	rc = found && vt_is_put(type) && range_seq <= seq ? LSM_OK : LSM_NOTFOUND;
	if (rc == LSM_OK && type == VT_BLOB) /* val holds the reference (decoded before it is overwritten) */
		rc = blob_resolve(&db->blobs, k, slice_make(val->data, val->len), val);
out:
	sv_release(sv);
	return rc;
}

void lsm_buf_free(struct lsm_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* ---------------------------------------------------------------- snapshots */

const lsm_snapshot *lsm_snapshot_create(lsm_db *db)
{
	lsm_snapshot *s = malloc(sizeof *s);
	if (!s)
		return NULL;
	pthread_mutex_lock(&db->mu);
	s->seq = atomic_load_explicit(&db->visible_seq, memory_order_acquire);
	s->next = &db->snapshots;
	s->prev = db->snapshots.prev;
	s->prev->next = s;
	s->next->prev = s;
	db->nsnapshots++;
	pthread_mutex_unlock(&db->mu);
	return s;
}

void lsm_snapshot_release(lsm_db *db, const lsm_snapshot *snap)
{
	lsm_snapshot *s = (lsm_snapshot *)snap;
	if (!s)
		return;
	pthread_mutex_lock(&db->mu);
	s->prev->next = s->next;
	s->next->prev = s->prev;
	db->nsnapshots--;
	pthread_mutex_unlock(&db->mu);
	free(s);
}

uint64_t lsm_snapshot_seqno(const lsm_snapshot *snap)
{
	return snap->seq;
}

uint64_t db_oldest_snapshot(struct lsm_db *db)
{
	return db->snapshots.next != &db->snapshots ? db->snapshots.next->seq : 0;
}

uint64_t *db_snapshot_list(struct lsm_db *db, int *n)
{
	uint64_t *v = malloc((size_t)(db->nsnapshots + 1) * sizeof *v);
	*n = 0;
	if (!v)
		return NULL;
	/* Snapshots are taken in seqno order, so the list is already ascending. */
	for (lsm_snapshot *s = db->snapshots.next; s != &db->snapshots; s = s->next)
		v[(*n)++] = s->seq;
	return v;
}

/* ---------------------------------------------------------------- flush / compact API */

int lsm_flush(lsm_db *db)
{
	if (db->o.read_only)
		return LSM_OK;
	/* Switch the memtable as a writer (the leader role serialises it with writes). */
	struct writer w = {.batch = NULL, .sync = 0, .exclusive = 1};
	pthread_cond_init(&w.cv, NULL);
	pthread_mutex_lock(&db->mu);
	if (db->wq_tail)
		db->wq_tail->next = &w;
	else
		db->wq_head = &w;
	db->wq_tail = &w;
	while (db->wq_head != &w)
		pthread_cond_wait(&w.cv, &db->mu);
	int rc = make_room(db, 1);
	db->wq_head = w.next;
	if (!db->wq_head)
		db->wq_tail = NULL;
	else
		pthread_cond_signal(&db->wq_head->cv);
	/* Wait until every memtable that existed is flushed. */
	while (!rc && db->nimm > 0 && !db->bg_error)
		pthread_cond_wait(&db->done_cv, &db->mu);
	if (!rc)
		rc = db->bg_error;
	pthread_mutex_unlock(&db->mu);
	pthread_cond_destroy(&w.cv);
	return rc;
}

int lsm_compact_range(lsm_db *db, const void *begin, size_t blen, const void *end, size_t elen)
{
	if (db->o.read_only)
		return st_error(LSM_READONLY, "store %s is open read-only", db->dir);
	int rc = lsm_flush(db);
	if (rc)
		return rc;
	return compaction_manual(db, begin, blen, end, elen);
}

/* ---------------------------------------------------------------- stats */

int lsm_stats_get(lsm_db *db, struct lsm_stats *st)
{
	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&db->mu);
	st->last_seqno = db->last_seq;
	st->visible_seqno = atomic_load_explicit(&db->visible_seq, memory_order_acquire);
	st->puts = db->st_puts;
	st->deletes = db->st_deletes;
	st->range_deletes = db->st_range_deletes;
	st->batches = db->st_batches;
	st->groups = db->st_groups;
	st->syncs = db->st_syncs;
	st->mem_bytes = memtable_bytes(db->mem);
	st->mem_entries = atomic_load_explicit(&db->mem->entries, memory_order_relaxed);
	st->imm_count = (uint64_t)db->nimm;
	for (int i = 0; i < db->nimm; i++)
		st->imm_bytes += memtable_bytes(db->imm[i]);
	st->wal_number = db->log ? db->log->number : 0;
	st->wal_bytes = db->log ? db->log->offset : 0;
	st->flushes = db->st_flushes;
	st->compactions = db->st_compactions;
	st->bytes_flushed = db->st_bytes_flushed;
	st->bytes_compacted_in = db->st_bytes_compacted_in;
	st->bytes_compacted_out = db->st_bytes_compacted_out;
	st->stall_slowdowns = db->st_stall_slowdowns;
	st->stall_stops = db->st_stall_stops;
	st->stall_imm_waits = db->st_stall_imm_waits;
	st->stall_micros = db->st_stall_micros;
	struct version *v = db->vs->current;
	for (int l = 0; l < LSM_MAX_LEVELS; l++) {
		st->level_tables[l] = (uint64_t)v->nfiles[l];
		st->level_bytes[l] = version_level_bytes(v, l);
		st->table_count += st->level_tables[l];
		st->table_bytes += st->level_bytes[l];
	}
	st->l0_compaction_bytes = version_l0_compaction_bytes(v);
	st->compacting_bytes = db->compacting_bytes;
	st->snapshots = (uint64_t)db->nsnapshots;
	st->oldest_snapshot = db_oldest_snapshot(db);
	st->background_error = db->bg_error;
	st->wal_records_replayed = db->rec_records;
	st->wal_torn_bytes = db->rec_torn_bytes;
	st->wal_skipped_records = db->rec_skipped_records;
	st->wal_skipped_bytes = db->rec_skipped_bytes;
	st->blob_bytes_written = db->st_blob_bytes_written;
	st->blob_bytes_relocated = db->st_blob_bytes_relocated;
	for (int b = 0; b < v->blobs.n; b++)
		st->blob_live_bytes += v->blobs.v[b].bytes;
	st->blob_files = (uint64_t)v->blobs.n;
	pthread_mutex_unlock(&db->mu);
	uint64_t entries;
	cache_counts(db->block_cache, &st->block_cache_hits, &st->block_cache_misses, &entries);
	st->block_cache_bytes = cache_usage(db->block_cache);
	cache_counts(db->table_cache, &st->table_cache_hits, &st->table_cache_misses, &st->tables_open);
	st->bloom_useful = counter_sum(&db->bloom_useful);
	return LSM_OK;
}

/* ---------------------------------------------------------------- open, recovery, close */

struct name_list {
	char **v;
	size_t n, cap;
	int oom;
};

static int collect_name(void *arg, const char *name)
{
	struct name_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		char **p = realloc(l->v, cap * sizeof *p);
		if (!p) {
			l->oom = 1;
			return 1;
		}
		l->v = p;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strdup(name))) {
		l->oom = 1;
		return 1;
	}
	l->n++;
	return 0;
}

static void name_list_free(struct name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* Write memtable m as a new level-0 table during recovery and add it to e. REQUIRES: no threads. */
static int recovery_flush(struct lsm_db *db, struct memtable *m, struct version_edit *e)
{
	uint64_t number = vset_new_file_number(db->vs);
	struct file_meta *f = file_meta_new();
	if (!f)
		return st_error(LSM_NOMEM, "out of memory");
	int rc = write_memtable(db, m, number, f);
	if (rc == LSM_NOTFOUND) {
		file_meta_unref(f);
		return LSM_OK;
	}
	if (!rc && edit_add_file(e, 0, f))
		rc = st_error(LSM_NOMEM, "out of memory");
	if (!rc) {
		db->st_flushes++;
		db->st_bytes_flushed += f->size;
	}
	file_meta_unref(f);
	return rc;
}

/* inline_blobs' rewriter: a reference becomes the value it names, read back and checked. */
struct inline_ctx {
	struct lsm_db *db;
	struct lsm_buf *val;
	int blob_bad;
};
static int is_reference(void *arg, const struct batch_op *op)
{
	(void)arg;
	return op->type == VT_BLOB;
}
static int to_value(void *arg, struct batch_op *op)
{
	struct inline_ctx *c = arg;
	int rc = blob_resolve(&c->db->blobs, op->key, op->value, c->val);
	if (rc) {
		c->blob_bad = 1;
		return rc;
	}
	op->type = VT_VALUE;
	op->value = slice_make(c->val->data, c->val->len);
	return LSM_OK;
}

/* Recovery: a copy of a logged batch payload with every blob reference replaced by the value it names
 * (read back and checked), so that the tables recovery writes hold no references. *out is the payload
 * itself when it holds none. A malformed batch is left to memtable_apply_batch to report; a reference
 * that cannot be read returns its error with *blob_bad set. */
static int inline_blobs(struct lsm_db *db, struct slice payload, struct lsm_batch *tmp, struct lsm_buf *val,
			struct slice *out, int *blob_bad)
{
	struct inline_ctx c = {.db = db, .val = val};
	struct batch_rewriter rw = {is_reference, to_value, &c};
	int changed;
	int rc = batch_rewrite(payload, &rw, tmp, &changed);
	*blob_bad = c.blob_bad;
	*out = payload;
	if (rc == LSM_CORRUPT && !c.blob_bad)
		return LSM_OK; /* malformed: the apply reports it */
	if (rc == LSM_NOMEM)
		return st_error(LSM_NOMEM, "out of memory");
	if (rc == LSM_INVAL) /* the values back in place make the batch bigger than a batch may be */
		return st_error(LSM_CORRUPT, "a logged batch with its blob values inline exceeds the batch limit");
	if (!rc && changed)
		*out = slice_make(batch_payload(tmp), batch_payload_len(tmp));
	return rc;
}

/* Replay every log at or after the manifest's log number into memtables (flushing full ones unless
 * read-only). On return *memp is the memtable holding the tail, *max_seq the newest seqno seen. */
static int replay_logs(struct lsm_db *db, struct version_edit *e, struct memtable **memp, uint64_t *max_seq)
{
	struct name_list names = {0};
	int rc = LSM_OK;
	int err = db->env->list(db->env, db->dir, collect_name, &names);
	if (err || names.oom) {
		name_list_free(&names);
		return err ? st_errno(err, "list %s", db->dir) : st_error(LSM_NOMEM, "out of memory");
	}
	uint64_t *logs = malloc((names.n + 1) * sizeof *logs);
	size_t nlogs = 0;
	if (!logs) {
		name_list_free(&names);
		return st_error(LSM_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < names.n; i++) {
		uint64_t number;
		enum store_file t = parse_file_name(names.v[i], &number);
		if (t == SF_LOG && number >= db->vs->log_number)
			logs[nlogs++] = number;
		/* Never hand out a number a file already has, even an unknown leftover. */
		if (t != SF_UNKNOWN && t != SF_CURRENT && t != SF_LOCK && t != SF_TEMP && number >= db->vs->next_file)
			db->vs->next_file = number + 1;
	}
	name_list_free(&names);
	qsort(logs, nlogs, sizeof *logs, cmp_u64);

	struct memtable *mem = memtable_new(0, db->o.write_buffer_size);
	struct lsm_batch tmp;
	struct lsm_buf val = {0};
	if (!mem || batch_init(&tmp)) {
		memtable_unref(mem);
		free(logs);
		return st_error(LSM_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < nlogs && !rc; i++) {
		char *path = path_log(db->dir, logs[i]);
		if (!path) {
			rc = st_error(LSM_NOMEM, "out of memory");
			break;
		}
		int mode = db->o.repair ? WAL_REPAIR : i + 1 == nlogs ? WAL_TAIL_OK : WAL_STRICT;
		struct wal_reader *r;
		rc = wal_reader_open(db->env, path, logs[i], mode, &r);
		while (!rc) {
			struct slice payload;
			uint64_t off, seq;
			uint32_t count;
			struct batch_reader br;
			int n = wal_read_batch(r, &payload, &off, &br, &seq, &count);
			if (n <= 0) {
				rc = n;
				break;
			}
			struct slice plain;
			int blob_bad;
			rc = inline_blobs(db, payload, &tmp, &val, &plain, &blob_bad);
			if (blob_bad && rc == LSM_CORRUPT && wal_reader_cut(r, off)) {
				/* Blob bytes of a write never synced did not survive: a torn tail. */
				rc = LSM_OK;
				break;
			}
			if (blob_bad && rc == LSM_CORRUPT && db->o.repair) {
				if (!r->skipped_records)
					r->first_skip_offset = off;
				r->skipped_records++;
				r->skipped_bytes += payload.len;
				rc = LSM_OK;
				continue;
			}
			if (blob_bad && rc == LSM_CORRUPT) {
				char msg[400];
				snprintf(msg, sizeof msg, "%s", lsm_errmsg());
				rc = st_corrupt(path, off, "record names a damaged blob value: %s", msg);
			}
			if (rc)
				break;
			rc = memtable_apply_batch(mem, plain.data, plain.len);
			if (rc == LSM_CORRUPT)
				rc = st_corrupt(path, off, "malformed write batch");
			else if (rc)
				rc = st_error(rc, "out of memory replaying %s", path);
			if (rc)
				break;
			if (count && seq + count - 1 > *max_seq)
				*max_seq = seq + count - 1;
			db->rec_records++;
			/* (an empty memtable's arena may already pass a tiny write_buffer_size: a table of
			 * nothing would have no key range) */
			if (!db->o.read_only && !memtable_empty(mem) && memtable_bytes(mem) >= db->o.write_buffer_size) {
				rc = recovery_flush(db, mem, e);
				memtable_unref(mem);
				mem = rc ? NULL : memtable_new(0, db->o.write_buffer_size);
				if (!rc && !mem)
					rc = st_error(LSM_NOMEM, "out of memory");
			}
		}
		if (r) {
			db->rec_torn_bytes += r->torn_bytes;
			db->rec_skipped_records += r->skipped_records;
			db->rec_skipped_bytes += r->skipped_bytes;
			wal_reader_close(r);
		}
		free(path);
	}
	free(logs);
	buf_free(&tmp.rep);
	lsm_buf_free(&val);
	if (rc) {
		memtable_unref(mem);
		return rc;
	}
	*memp = mem;
	return LSM_OK;
}

/* Is the directory empty of everything but a lock file? (create refuses to take over foreign data)
 * What a create that failed before writing CURRENT leaves (the first manifest, CURRENT's temp file)
 * counts as empty too: CURRENT is the last file a create writes, so without it that manifest names no
 * table and no log, and a retried create rewrites both files. */
static int dir_is_empty_cb(void *arg, const char *name)
{
	if (strcmp(name, "LOCK") && strcmp(name, "CURRENT.tmp") && strcmp(name, "MANIFEST-000001")) {
		*(int *)arg = 0;
		return 1;
	}
	return 0;
}

static void db_free(struct lsm_db *db)
{
	if (db->sv) {
		struct superversion *sv = db->sv;
		db->sv = NULL;
		memtable_unref(sv->mem);
		for (int i = 0; i < sv->nimm; i++)
			memtable_unref(sv->imm[i]);
		version_unref(sv->v);
		free(sv);
	}
	memtable_unref(db->mem);
	for (int i = 0; i < db->nimm; i++)
		memtable_unref(db->imm[i]);
	wal_writer_close(db->log);
	wal_writer_close(db->blob);
	blob_files_destroy(&db->blobs);
	buf_free(&db->blob_batch.rep);
	buf_free(&db->blob_recs);
	free(db->blob_pins.v);
	pthread_mutex_destroy(&db->pin_mu);
	vset_free(db->vs);
	cache_free(db->table_cache);
	cache_free(db->block_cache);
	if (db->lock)
		db->env->unlock(db->lock);
	buf_free(&db->group.rep);
	free(db->pending.v);
	pthread_mutex_destroy(&db->mu);
	pthread_mutex_destroy(&db->sv_mu);
	pthread_cond_destroy(&db->bg_cv);
	pthread_cond_destroy(&db->done_cv);
	free(db->dir);
	free(db);
}

static int open_store(struct lsm_db *db)
{
	int rc, e;
	lsm_env *env = db->env;
	if (!db->o.read_only) {
		e = env->mkdir(env, db->dir, 0700);
		if (e && e != -EEXIST) {
			if (e == -ENOENT || !db->o.create_if_missing)
				return st_errno(e, "create store directory %s", db->dir);
			return st_errno(e, "create store directory %s", db->dir);
		}
		char *lp = path_join(db->dir, "LOCK");
		if (!lp)
			return st_error(LSM_NOMEM, "out of memory");
		e = env->lock(env, lp, &db->lock);
		free(lp);
		if (e == -EBUSY)
			return st_error(LSM_BUSY, "store %s is in use by another process (its LOCK is held)", db->dir);
		if (e)
			return st_errno(e, "lock %s/LOCK", db->dir);
	}
	if ((rc = vset_new(env, db->dir, &db->o, db->table_cache, db->block_cache, &db->vs)))
		return rc;
	char *cur = path_join(db->dir, "CURRENT");
	if (!cur)
		return st_error(LSM_NOMEM, "out of memory");
	e = env->exists(env, cur);
	free(cur);
	if (e == -ENOENT) {
		if (db->o.read_only || !db->o.create_if_missing)
			return st_error(LSM_NOTFOUND, "%s holds no store (no CURRENT file)", db->dir);
		int empty = 1;
		if ((e = env->list(env, db->dir, dir_is_empty_cb, &empty)))
			return st_errno(e, "list %s", db->dir);
		if (!empty)
			return st_error(LSM_INVAL, "%s is not empty and holds no store: refusing to create one there",
					db->dir);
		if ((rc = vset_create(db->vs)))
			return rc;
	} else if (e) {
		return st_errno(e, "stat %s/CURRENT", db->dir);
	} else if (db->o.error_if_exists) {
		return st_error(LSM_INVAL, "a store already exists in %s", db->dir);
	}
	if ((rc = vset_recover(db->vs)))
		return rc;

	struct version_edit edit;
	edit_init(&edit);
	uint64_t max_seq = db->vs->last_seq;
	struct memtable *mem = NULL;
	rc = replay_logs(db, &edit, &mem, &max_seq);
	if (rc) {
		edit_free(&edit);
		return rc;
	}
	db->last_seq = max_seq;
	atomic_store_explicit(&db->visible_seq, max_seq, memory_order_release);
	if (db->o.read_only) {
		db->mem = mem;
		edit_free(&edit);
		pthread_mutex_lock(&db->mu);
		rc = install_sv(db);
		pthread_mutex_unlock(&db->mu);
		return rc;
	}
	if (!memtable_empty(mem))
		rc = recovery_flush(db, mem, &edit);
	memtable_unref(mem);
	uint64_t lognum = vset_new_file_number(db->vs);
	char *lpath = path_log(db->dir, lognum);
	if (!rc && !lpath)
		rc = st_error(LSM_NOMEM, "out of memory");
	if (!rc)
		rc = wal_writer_open(env, lpath, lognum, &db->log);
	free(lpath);
	if (!rc && (e = env->sync_dir(env, db->dir)))
		rc = st_errno(e, "sync directory %s", db->dir);
	if (!rc && !(db->mem = memtable_new(lognum, db->o.write_buffer_size)))
		rc = st_error(LSM_NOMEM, "out of memory");
	if (!rc) {
		edit.has_log_number = 1;
		edit.log_number = lognum;
		edit.has_last_seq = 1;
		edit.last_seq = max_seq;
		pthread_mutex_lock(&db->mu);
		rc = install_edit(db, &edit, NULL);
		if (!rc)
			db_delete_obsolete_files(db);
		pthread_mutex_unlock(&db->mu);
	}
	edit_free(&edit);
	return rc;
}

int lsm_open(const char *dir, const struct lsm_options *opts, lsm_db **out)
{
	*out = NULL;
	struct lsm_options o;
	if (opts)
		o = *opts;
	else
		lsm_options_init(&o);
	int rc = check_options(&o);
	if (rc)
		return rc;
	struct lsm_db *db = calloc(1, sizeof *db);
	if (!db || !(db->dir = strdup(dir))) {
		free(db);
		return st_error(LSM_NOMEM, "out of memory");
	}
	db->o = o;
	db->env = o.env ? o.env : lsm_env_posix();
	pthread_mutex_init(&db->mu, NULL);
	pthread_mutex_init(&db->sv_mu, NULL);
	pthread_mutex_init(&db->pin_mu, NULL);
	pthread_cond_init(&db->bg_cv, NULL);
	pthread_cond_init(&db->done_cv, NULL);
	db->snapshots.prev = db->snapshots.next = &db->snapshots;
	db->block_cache = cache_new(o.block_cache_size);
	db->table_cache = cache_new((size_t)o.max_open_tables);
	if (!db->block_cache || !db->table_cache || batch_init(&db->group) || batch_init(&db->blob_batch) ||
	    blob_files_init(&db->blobs, db->env, dir, db->table_cache)) {
		db_free(db);
		return st_error(LSM_NOMEM, "out of memory");
	}
	rc = open_store(db);
	if (!rc && !o.read_only) {
		if (pthread_create(&db->flush_thread, NULL, flush_thread_main, db)) {
			rc = st_error(LSM_NOMEM, "cannot start the flush thread");
		} else if (pthread_create(&db->compact_thread, NULL, compaction_thread_main, db)) {
			pthread_mutex_lock(&db->mu);
			db->shutting_down = 1;
			pthread_cond_broadcast(&db->bg_cv);
			pthread_mutex_unlock(&db->mu);
			pthread_join(db->flush_thread, NULL);
			rc = st_error(LSM_NOMEM, "cannot start the compaction thread");
		} else {
			db->threads_started = 1;
		}
	}
	if (rc) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", lsm_errmsg());
		db_free(db);
		st_error(rc, "%s", msg); /* db_free may have overwritten the message */
		return rc;
	}
	*out = db;
	return LSM_OK;
}

/*
 * Recovery takes a damaged record at the end of the newest log for the torn remains of a write that was
 * never synced, unless a later record says its bytes had been synced (wal_format.h). The last records
 * of a log have no later record, so a flipped byte in them would silently drop acknowledged, synced
 * writes. A clean close therefore ends the synced log with an empty batch (count 0) whose synced_upto
 * vouches for every byte before it; damage to that record itself loses nothing. REQUIRES: the log is
 * synced, no writer is active.
 */
static int seal_log(struct lsm_db *db)
{
	if (db->log->offset == 0)
		return LSM_OK;
	char rec[WAL_HEADER_SIZE + BATCH_HEADER_SIZE];
	put_u64le(rec + WAL_HEADER_SIZE, db->last_seq + 1); /* a valid first seqno; no op uses it */
	put_u32le(rec + WAL_HEADER_SIZE + 8, 0);
	int rc = wal_append(db->log, WAL_REC_BATCH, rec, BATCH_HEADER_SIZE);
	return rc ? rc : wal_sync(db->log);
}

int lsm_close(lsm_db *db)
{
	if (!db)
		return LSM_OK;
	pthread_mutex_lock(&db->mu);
	db->shutting_down = 1;
	pthread_cond_broadcast(&db->bg_cv);
	pthread_cond_broadcast(&db->done_cv);
	pthread_mutex_unlock(&db->mu);
	if (db->threads_started) {
		pthread_join(db->flush_thread, NULL);
		pthread_join(db->compact_thread, NULL);
	}
	int rc = db->bg_error;
	/* Everything acknowledged is in the log; make it durable so a clean close loses nothing even on
	 * power loss right after. */
	if (!rc && db->blob)
		rc = wal_sync(db->blob);
	if (!rc && db->log)
		rc = wal_sync(db->log);
	if (!rc && db->log)
		rc = seal_log(db);
	if (!rc)
		rc = vset_seal_manifest(db->vs);
	db_free(db);
	return rc;
}
