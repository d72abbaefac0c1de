/*
 * blob.h - blob files: big values written once, outside the tree (key-value separation, as in WiscKey's
 * value log and RocksDB's BlobDB).
 *
 * A put whose value has at least lsm_options.blob_min_size bytes is appended to the active blob file by
 * the write leader; the log record, the memtable and the tables hold a reference instead (a VT_BLOB
 * entry whose value is the encoded struct blob_ref). Flushes and compactions then copy only references,
 * so a big value costs one write instead of one per level (docs/format.md, "Blob files").
 *
 * Durability: the leader appends a group's blob records before its log record and syncs the blob file
 * before the log whenever it syncs the log, so a synced log record never names unsynced blob bytes.
 * Recovery reads every reference of the replayed logs back into the memtable as a plain value (checking
 * the record), so tables written by recovery hold no references into files no table tracks.
 *
 * Liveness: each table's file_meta lists the blob files it references and the value bytes it references
 * in each (struct blob_use, recorded in the manifest). A blob file is deleted once no live version's
 * table and no unflushed memtable references it. Compaction copies the values still referenced out of
 * blob files whose referenced bytes fell below half their size (relocation), so overwritten values do
 * not pin whole files forever.
 *
 * Threads: a blob_writer belongs to one thread at a time. struct blob_files (open files for reading) is
 * thread-safe; reads of one file run concurrently.
 */
#ifndef LSM_BLOB_H
#define LSM_BLOB_H

#include <stdatomic.h>
#include <stdint.h>

#include "buf.h"
#include "coding.h"
#include "env.h"
#include "lsm.h"

#define BLOB_MAGIC "LSMBLOB1"
#define BLOB_FORMAT_VERSION 1
#define BLOB_HEADER_SIZE 16     /* magic[8], u32 version, u32 zero */
#define BLOB_REC_HEADER 12      /* u32 checksum (low 32 bits of XXH3 of the rest), u32 klen, u32 vlen */
#define BLOB_REF_MAX 30         /* three varints */

/* Where a value lives: the record at `offset` of blob file `number`, holding a value of `len` bytes. */
struct blob_ref {
	uint64_t number;
	uint64_t offset;
	uint32_t len;
};

size_t blob_ref_encode(char *dst, const struct blob_ref *r);
/* LSM_OK or LSM_CORRUPT (the caller names where the reference came from). */
int blob_ref_decode(struct slice v, struct blob_ref *r);

/* Per-table bookkeeping: record bytes (header, key, value) a table references in one blob file. */
struct blob_use {
	uint64_t number;
	uint64_t bytes;
};
struct blob_uses {
	struct blob_use *v;
	int n, cap;
};
/* Add bytes to the entry for number (kept sorted by number). LSM_OK or LSM_NOMEM. */
int blob_uses_add(struct blob_uses *u, uint64_t number, uint64_t bytes);
/* The entry for number, or NULL. */
const struct blob_use *blob_uses_find(const struct blob_uses *u, uint64_t number);
/* Bytes a record takes in a blob file (what blob uses count: a fully used file counts as its size). */
static inline uint64_t blob_record_size(size_t klen, uint32_t vlen)
{
	return BLOB_REC_HEADER + (uint64_t)klen + vlen;
}
/* If the entry (ikey, value) is a reference, count it. LSM_OK, LSM_CORRUPT (bad reference), LSM_NOMEM. */
int blob_uses_note(struct blob_uses *u, struct slice ikey, struct slice value);
void blob_uses_free(struct blob_uses *u);

/* Writing: a blob file is an append-only file like a log, written through the log writer (wal.h):
 * wal_append_raw appends encoded records, wal_sync and wal_writer_close as for a log. */
struct wal_writer;
/* Create blob file `number` in dir (truncating) and write its header. */
int blob_writer_open(lsm_env *env, const char *dir, uint64_t number, struct wal_writer **out);
/* Encode one record (key, value) at the end of recs; *ref says where it will live once recs is
 * appended to w (at w's offset now, after the records already in recs). */
int blob_record_encode(struct buf *recs, const struct wal_writer *w, struct slice key, struct slice value,
		       struct blob_ref *ref);

/* Reading: open blob files are kept in a cache of open files (cache.h, keyed by (number,
 * BLOB_CACHE_OFF): the store shares its table cache, whose numbers never collide with blob numbers),
 * mapped once they can no longer grow. */
struct cache;
#define BLOB_CACHE_OFF 1
struct blob_files {
	lsm_env *env;
	char *dir;
	struct cache *cache;
	int own_cache;             /* blob_files_init made it (freed by destroy) */
	_Atomic uint64_t growing;  /* the blob file the write leader appends to (never mapped) */
};

/* cache NULL: make a small one of its own. */
int blob_files_init(struct blob_files *bf, lsm_env *env, const char *dir, struct cache *cache);
void blob_files_destroy(struct blob_files *bf);
/* Forget file `number` (it was deleted, or stopped growing and may now be mapped). */
void blob_files_evict(struct blob_files *bf, uint64_t number);
/* Read the value ref points at into out, checking the record's checksum and that it belongs to key.
 * LSM_OK, LSM_CORRUPT / LSM_IOERR naming the blob file and offset, LSM_NOMEM. */
int blob_read(struct blob_files *bf, struct slice key, const struct blob_ref *ref, struct lsm_buf *out);
/* Resolve a reference value (an entry of type VT_BLOB) for key into out. */
int blob_resolve(struct blob_files *bf, struct slice key, struct slice refval, struct lsm_buf *out);

#endif
