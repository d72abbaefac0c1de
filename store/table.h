/*
 * table.h - writing and reading table files (table_format.h).
 *
 * Builder: one thread; keys added in internal-key order; range tombstones in any order. The file is
 * written through the env with a 256 KiB user-space buffer (tables are not acknowledged writes: they
 * count only once finished, synced and named in the manifest). table_builder_finish syncs and closes.
 *
 * Reader: a struct table is immutable after table_open and shared by every thread (preads are
 * concurrent). Index, bloom filter, range tombstones and properties are read and checksummed at open
 * and stay in memory for the table's life ("pinned"). Data blocks: when the env can map files
 * (env->map: the posix env), each block is checksummed and read in place in the mapping, bypassing
 * the block cache; otherwise they are pread through the block cache. Any checksum or format error is
 * LSM_CORRUPT naming the file and the block's offset.
 */
#ifndef LSM_TABLE_H
#define LSM_TABLE_H

#include <stdint.h>

#include "block.h"
#include "coding.h"
#include "env.h"
#include "iter.h"
#include "rangedel.h"
#include "table_format.h"

struct cache;
struct lsm_buf;

struct table_props {
	uint64_t entries, deletes, range_dels;
	uint64_t min_seq, max_seq;
	uint64_t raw_key_bytes, raw_value_bytes, data_blocks;
	struct buf smallest, largest; /* internal keys */
};

struct table_opts {
	size_t block_size;
	int restart_interval;
	int bloom_bits;
};

struct table_builder;

int table_builder_open(lsm_env *env, const char *path, const struct table_opts *o, struct table_builder **out);
/* REQUIRES: ikey > every internal key added before. */
int table_builder_add(struct table_builder *tb, struct slice ikey, struct slice value);
int table_builder_add_range(struct table_builder *tb, struct slice begin, struct slice end, uint64_t seq);
/* Bytes written so far (a size estimate for splitting compaction output). */
uint64_t table_builder_size(const struct table_builder *tb);
uint64_t table_builder_entries(const struct table_builder *tb);
/* Write the meta blocks and footer, sync, close. On success *props (if given) receives the properties
 * (caller frees with table_props_free) and *file_size the size. The builder is freed either way. */
int table_builder_finish(struct table_builder *tb, struct table_props *props, uint64_t *file_size);
/* Close without finishing (the caller removes the file). */
void table_builder_abandon(struct table_builder *tb);
void table_props_free(struct table_props *p);

struct table {
	lsm_env *env;
	lsm_rfile *f;
	const char *map;          /* the whole file mapped (env->map), or NULL: blocks are pread */
	char *path;
	uint64_t number;
	uint64_t size;
	uint64_t cache_id;
	struct cache *cache;      /* block cache (may be NULL: no caching) */
	char *index_data;
	struct block index;
	char *filter_data;
	struct slice filter;      /* empty: no filter */
	struct rd_list tombstones;
	struct table_props props;
	uint64_t data_end;        /* offset where the meta blocks begin */
	struct block_handle h_filter, h_rangedel, h_props, h_index; /* from the footer */
	uint32_t format_version;
};

/* Open path (of `size` bytes; 0 = ask the env). cache may be NULL. */
int table_open(lsm_env *env, const char *path, uint64_t number, uint64_t size, struct cache *cache,
	       struct table **out);
void table_close(struct table *t);

/* A point lookup result. */
struct table_get_result {
	uint64_t seq;
	unsigned type;
	struct lsm_buf *value; /* filled for VT_VALUE if non-NULL */
};
/* The newest version of key with seqno <= snap: 1 (result filled), 0 (none), or <0 on error. Raises
 * *range_seq from the table's tombstones even when the bloom filter rules the key out. bloom_skips is
 * incremented when the filter answered. */
int table_get(struct table *t, struct slice key, uint64_t hash, uint64_t snap, uint64_t *range_seq,
	      struct table_get_result *res, uint64_t *bloom_skips);

/* Iterator over every point entry (internal keys). fill_cache: add blocks read to the cache. */
struct iter *table_iter_new(struct table *t, int fill_cache);

/* Read and verify one block (contents without trailer) into a malloc'd buffer. */
int table_read_block(struct table *t, struct block_handle h, char **out);
/* Decode a props block (exposed for inspection). */
int table_props_decode(struct table_props *p, struct slice s);

#endif
