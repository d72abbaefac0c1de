/*
 * version.h - which tables are live at which level: file metadata, versions, version edits, and the
 * version set that records edits in the manifest.
 *
 * A version is an immutable snapshot of the table layout. Level 0 holds flushed memtables, newest
 * first, possibly overlapping; levels >= 1 hold tables sorted by key with disjoint ranges. Versions and
 * file metadata are refcounted: a reader or compaction holding a version keeps its tables alive, and a
 * table file is deleted only when no live version names it.
 *
 * Threads: versions are read-only and shareable. The version set is guarded by the db mutex, which
 * vset_log_and_apply releases while it writes the manifest; the db guarantees that only one
 * log_and_apply runs at a time (manifest_busy). Version refcounts are atomic, but the last unref must
 * happen with the db mutex held (it unlinks the version from the set's list).
 *
 * Manifest: MANIFEST-NNNNNN holds version edits as log records (wal_format.h, type WAL_REC_EDIT); the
 * first edit of a manifest is a snapshot of the whole layout. CURRENT names the live manifest and is
 * replaced by an atomic rename followed by a directory sync.
 */
#ifndef LSM_VERSION_H
#define LSM_VERSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "blob.h"
#include "buf.h"
#include "env.h"
#include "lsm.h"

struct cache;
struct wal_writer;
struct table;
struct iter;

#define NUM_LEVELS LSM_MAX_LEVELS
/* 2 added ET_BLOB_USES (blob files); a format-1 manifest is read as one without blob files. */
#define MANIFEST_FORMAT_VERSION 2

struct file_meta {
	_Atomic int refs;
	uint64_t number;
	uint64_t size;
	struct buf smallest, largest; /* internal keys */
	uint64_t min_seq, max_seq;
	uint64_t entries, deletes, range_dels;
	struct blob_uses blobs;       /* blob files it references (blob.h), by number */
	int being_compacted;          /* guarded by the db mutex */
};

struct file_meta *file_meta_new(void);
void file_meta_ref(struct file_meta *f);
void file_meta_unref(struct file_meta *f);

struct vset;

struct version {
	_Atomic int refs;
	struct vset *vs;
	struct file_meta **files[NUM_LEVELS];
	int nfiles[NUM_LEVELS];
	struct version *prev, *next; /* the set's list of live versions */
	/* Set when the version is built: the level most in need of compaction and its score (>= 1 means
	 * compaction is due). */
	double compaction_score;
	int compaction_level;
	struct blob_uses blobs;  /* every blob file its tables reference, bytes summed over them */
};

void version_ref(struct version *v);
/* REQUIRES: db mutex held (see above). */
void version_unref(struct version *v);
uint64_t version_level_bytes(const struct version *v, int level);
/* What compacting level 0 would rewrite: its tables and the level-1 tables overlapping their key
 * range (space that compaction needs free before it can delete anything). */
uint64_t version_l0_compaction_bytes(const struct version *v);

/* Tombstones / gets through a version. */
struct get_ctx {
	struct slice key;
	uint64_t hash;        /* bloom hash of key */
	uint64_t snap;
	uint64_t range_seq;   /* newest covering tombstone found so far */
	uint64_t seq;         /* result: the version found */
	unsigned type;
	struct lsm_buf *value;
	uint64_t bloom_skips;
};
/* 1 if found (ctx seq/type/value set), 0 if not in the version, <0 error. Stops early when a covering
 * tombstone makes every older version irrelevant (ctx->range_seq > 0, returns 0). */
int version_get(struct version *v, struct get_ctx *ctx);

struct version_edit {
	int has_log_number, has_next_file, has_last_seq, has_format;
	uint64_t log_number, next_file, last_seq;
	uint32_t format;
	struct {
		int level;
		uint64_t number;
	} *deleted;
	int ndeleted, capdeleted;
	struct {
		int level;
		struct file_meta *f; /* a reference owned by the edit */
	} *added;
	int nadded, capadded;
	struct {
		int level;
		struct buf key;
	} compact_ptr[NUM_LEVELS];
	int has_compact_ptr[NUM_LEVELS];
};

void edit_init(struct version_edit *e);
void edit_free(struct version_edit *e);
int edit_delete_file(struct version_edit *e, int level, uint64_t number);
/* Takes a new reference on f. */
int edit_add_file(struct version_edit *e, int level, struct file_meta *f);
int edit_encode(const struct version_edit *e, struct buf *out);
/* LSM_OK, LSM_CORRUPT (message names nothing: the caller names file and offset), LSM_NOMEM. */
int edit_decode(struct version_edit *e, struct slice in);

struct vset {
	lsm_env *env;
	char *dir;
	struct cache *table_cache;
	struct cache *block_cache;
	uint64_t next_file;
	uint64_t manifest_number;
	uint64_t log_number;      /* logs below this are fully in tables */
	uint64_t last_seq;        /* recorded in the manifest */
	struct version *current;
	struct version head;      /* list sentinel */
	struct wal_writer *manifest;
	uint64_t manifest_bytes;
	struct buf compact_ptr[NUM_LEVELS];
	uint64_t level1_max_bytes;
	int l0_trigger;
	int read_only;
	/* Recovery report. */
	uint64_t edits_replayed;
};

int vset_new(lsm_env *env, const char *dir, const struct lsm_options *o, struct cache *table_cache,
	     struct cache *block_cache, struct vset **out);
void vset_free(struct vset *vs);
/* Create a brand-new store's manifest and CURRENT. */
int vset_create(struct vset *vs);
/* Read CURRENT and replay the manifest into vs->current. */
int vset_recover(struct vset *vs);
/* Apply edit to the current version, write it to the manifest (a new manifest with a snapshot first if
 * none is open or the open one is large), sync, and make the result current. mu is released during
 * the I/O and held again on return. On failure the current version is unchanged. */
int vset_log_and_apply(struct vset *vs, struct version_edit *e, pthread_mutex_t *mu);
static inline uint64_t vset_new_file_number(struct vset *vs)
{
	return vs->next_file++;
}
/* At a clean close: end the open manifest with an empty edit and sync it, so that its last real edit
 * is vouched for (its bytes are known synced: wal_format.h) and damage to it is corruption, not a torn
 * tail quietly dropped. REQUIRES: no log_and_apply running. */
int vset_seal_manifest(struct vset *vs);
/* Mark every file of every live version in `live` (a callback per file number): its tables and the
 * blob files they reference. */
void vset_live_files(struct vset *vs, void (*fn)(void *arg, uint64_t number), void *arg);

/* Table access through the table cache: a pinned table for f. */
int vset_table(struct vset *vs, const struct file_meta *f, struct table **t, void **handle);
void vset_table_release(struct vset *vs, void *handle);
void vset_table_evict(struct vset *vs, uint64_t number);
/* An iterator over f's table that keeps the table pinned until destroyed. */
int vset_table_iter(struct vset *vs, const struct file_meta *f, int fill_cache, struct iter **out);
/* An iterator over the disjoint sorted files of a level >= 1, opening tables lazily. The files array
 * must outlive it (hold the version). NULL if out of memory. */
struct iter *level_iter_new(struct vset *vs, struct file_meta **files, int n, int fill_cache);

/* Paths of store files (caller frees). */
char *path_table(const char *dir, uint64_t number);
char *path_blob(const char *dir, uint64_t number);
char *path_log(const char *dir, uint64_t number);
char *path_manifest(const char *dir, uint64_t number);
char *path_join(const char *dir, const char *name);

/* Classify a file name of the store directory. */
enum store_file { SF_UNKNOWN, SF_TABLE, SF_LOG, SF_MANIFEST, SF_CURRENT, SF_LOCK, SF_TEMP, SF_BLOB };
enum store_file parse_file_name(const char *name, uint64_t *number);

#endif
