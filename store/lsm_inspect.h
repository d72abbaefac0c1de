/*
 * lsm_inspect.h - looking inside a store: levels, tables, logs, manifest edits, raw entries, every
 * version of a key, and full checksum verification. The checker (tools/lsmfsck) is built on it.
 *
 * The functions that take an lsm_db work on an open handle (usually opened read-only, which replays the
 * log in memory and writes nothing). The file-level ones read a single file through an env and need no
 * open store: they are how a damaged store is examined. Callbacks return 0 to go on, non-zero to stop
 * (the function then returns that value). Keys handed to callbacks are valid only during the call.
 */
#ifndef LSM_INSPECT_H
#define LSM_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "lsm.h"

/* Entry types as stored (the store's value types; never renumbered). */
enum lsm_entry_type {
	LSM_ENTRY_DELETE = 0,
	LSM_ENTRY_VALUE = 1,
	LSM_ENTRY_RANGE_DELETE = 2, /* key = begin, value = end (exclusive) */
	LSM_ENTRY_BLOB = 3,         /* a put whose value is in a blob file: value = the encoded reference */
};

/* Decode a reference (an LSM_ENTRY_BLOB value): LSM_OK or LSM_CORRUPT. */
int lsm_inspect_blob_ref(const void *v, size_t n, uint64_t *blob_number, uint64_t *offset, uint32_t *len);

struct lsm_table_info {
	int level;
	uint64_t number;
	uint64_t size;
	const void *smallest; /* user keys of the table's range; largest may be a range tombstone's end */
	size_t smallest_len;
	const void *largest;
	size_t largest_len;
	uint64_t smallest_seq, largest_seq; /* seqnos of those two bounds */
	uint64_t min_seq, max_seq;          /* seqno range of every entry, per the manifest */
	uint64_t entries, deletes, range_dels;
};

/* Every live table, level by level (level 0 newest first, others in key order). */
int lsm_inspect_tables(lsm_db *db, int (*fn)(void *arg, const struct lsm_table_info *t), void *arg);

struct lsm_store_info {
	uint64_t manifest_number;
	uint64_t log_number;      /* logs at or above it hold writes not yet in tables */
	uint64_t next_file;
	uint64_t last_seq;        /* recorded in the manifest */
	uint64_t edits_replayed;  /* manifest records read at open */
	int read_only;
};
int lsm_inspect_store(lsm_db *db, struct lsm_store_info *out);

/* The store directory's files, classified. kind: "table", "blob", "log", "manifest", "CURRENT", "LOCK",
 * "temp", or "unknown"; live (a blob file: referenced by a live table; those of unflushed memtables
 * count as not live): whether the current state needs it (a live table, a log at or above the log
 * number, the current manifest, CURRENT, LOCK). */
int lsm_inspect_files(lsm_db *db, int (*fn)(void *arg, const char *name, const char *kind, uint64_t number,
					     uint64_t size, int live),
		      void *arg);

/* Every version of key still stored anywhere (memtables first, then tables newest first), newest first
 * within each source; range tombstones covering key are reported as LSM_ENTRY_RANGE_DELETE with their
 * begin/end. source: "memtable", "immutable memtable", or "table 000123.sst (level N)". */
struct lsm_version_info {
	const char *source;
	uint64_t seq;
	int type;
	const void *value;     /* value, or a range tombstone's end */
	size_t value_len;
	const void *begin;     /* range tombstone begin (else the key) */
	size_t begin_len;
	/* Where it is stored: a table's number (0 for a memtable) and the offset of the data block that
	 * holds it (of the range-deletion block for a tombstone). */
	uint64_t table_number;
	uint64_t block_offset;
	int level;             /* the table's level (-1 for a memtable) */
};
int lsm_inspect_key(lsm_db *db, const void *key, size_t klen,
		    int (*fn)(void *arg, const struct lsm_version_info *v), void *arg);

/* ---- single files, no open store needed ---- */

struct lsm_raw_entry {
	const void *key;
	size_t klen;
	uint64_t seq;
	int type;
	const void *value;
	size_t vlen;
	uint64_t offset;       /* table: offset of the data block holding it; log: offset of the record */
};

struct lsm_table_report {
	uint64_t size;
	uint32_t format_version;
	uint64_t data_blocks;
	uint64_t entries, deletes, range_dels;   /* counted while reading */
	uint64_t prop_entries, prop_deletes, prop_range_dels; /* what the table's properties say */
	uint64_t min_seq, max_seq;               /* counted */
	uint64_t index_bytes, filter_bytes;
	int has_filter;
};

/* Read every block of a table file, verifying every checksum, the key order inside the table and the
 * properties against what was read, and every blob value the table references (in blob files of the
 * table's directory: record checksum and key); call fn for each point entry and range tombstone (fn may be NULL).
 * Returns LSM_OK, LSM_CORRUPT (lsm_errmsg names the file and offset), or another error. */
int lsm_inspect_table_file(lsm_env *env, const char *path, int (*fn)(void *arg, const struct lsm_raw_entry *e),
			   void *arg, struct lsm_table_report *rep);

struct lsm_log_report {
	uint64_t size;
	uint64_t records;
	uint64_t ops;
	uint64_t first_seq, last_seq;
	uint64_t torn_offset, torn_bytes;     /* an unsynced tail that was cut off (not an error) */
	uint64_t skipped_records, skipped_bytes; /* repair mode only */
};

/* Walk a write-ahead log (number = its file number). tail_ok: treat it as the newest log, where a torn
 * tail is expected after a crash. fn gets each operation (may be NULL). */
int lsm_inspect_log_file(lsm_env *env, const char *path, uint64_t number, int tail_ok,
			 int (*fn)(void *arg, const struct lsm_raw_entry *e), void *arg, struct lsm_log_report *rep);

/* One manifest edit, decoded. */
struct lsm_edit_info {
	uint64_t offset;
	int has_log_number, has_next_file, has_last_seq, has_format;
	uint64_t log_number, next_file, last_seq;
	uint32_t format;
	int nadded, ndeleted;
	/* Added/deleted tables: level and number (arrays of nadded / ndeleted). */
	const int *added_level;
	const uint64_t *added_number;
	const int *deleted_level;
	const uint64_t *deleted_number;
};
int lsm_inspect_manifest_file(lsm_env *env, const char *path, uint64_t number,
			      int (*fn)(void *arg, const struct lsm_edit_info *e), void *arg);

/* Classify a store directory entry by name as lsm_inspect_files does ("table", "log", "manifest",
 * "CURRENT", "LOCK", "temp", "unknown"); *number gets its file number (0 if none). */
const char *lsm_inspect_file_kind(const char *name, uint64_t *number);

/* 1 if a process holds the store's lock (a daemon has it mounted), 0 if not, <0 on error. */
int lsm_inspect_locked(lsm_env *env, const char *dir);

#endif
