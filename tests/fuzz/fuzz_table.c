/*
 * fuzz_table.c - libFuzzer target: the input as a table file, opened through the in-memory env, read
 * by a full iteration, seeks and point lookups.
 *
 * Input: one control byte, then the file. Control bit 0: before opening, recompute the checksums of
 * the footer and of every block the footer and the index name, so that mutations reach the block,
 * index, bloom, properties and range-tombstone decoders instead of stopping at a checksum (a real disk
 * error almost never keeps a checksum valid, but a bug in our own writer would). Bit 1: read through a
 * block cache. Bit 2: iterations fill the cache.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "bloom.h"
#include "cache.h"
#include "dbformat.h"
#include "fuzz_util.h"
#include "table.h"

#define PATH "/t/000007.sst"
#define MAX_STEPS 20000
#define MAX_KEYS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Recompute the trailer checksum of the block at (off, sz) of buf if it lies inside it. */
static void fix_block(char *buf, size_t len, uint64_t off, uint64_t sz)
{
	if (off > len || sz + BLOCK_TRAILER_SIZE > len - off)
		return;
	char *p = buf + off;
	put_u32le(p + sz + 1, (uint32_t)XXH3_64bits(p, (size_t)sz + 1));
}

static void fix_checksums(char *buf, size_t len)
{
	if (len < TABLE_FOOTER_SIZE)
		return;
	char *ft = buf + len - TABLE_FOOTER_SIZE;
	put_u32le(ft + 52, (uint32_t)XXH3_64bits(ft, 52));
	for (int i = 0; i < 4; i++)
		fix_block(buf, len, get_u64le(ft + 12 * i), get_u32le(ft + 12 * i + 8));
	/* Data blocks: the index block's values are (varint offset, varint size). */
	uint64_t ioff = get_u64le(ft + 36), isz = get_u32le(ft + 44);
	if (ioff > len || isz + BLOCK_TRAILER_SIZE > len - ioff)
		return;
	struct block ib;
	if (block_parse(&ib, buf + ioff, (size_t)isz))
		return;
	/* The index is copied: fixing a data block that overlaps it must not change what we walk. */
	struct block_iter bi;
	char *copy = malloc(isz ? isz : 1);
	if (!copy)
		abort();
	memcpy(copy, buf + ioff, isz);
	if (block_parse(&ib, copy, (size_t)isz))
		abort();
	block_iter_init(&bi, &ib, BLOCK_CMP_IKEY);
	int n = 0;
	for (iter_seek_first(&bi.base); bi.base.valid && n < MAX_STEPS; iter_next(&bi.base), n++) {
		struct slice v = bi.base.value;
		uint64_t off, sz;
		const char *p = get_varint64(v.data, v.data + v.len, &off);
		if (p && get_varint64(p, v.data + v.len, &sz))
			fix_block(buf, len, off, sz);
	}
	block_iter_cleanup(&bi);
	free(copy);
}

static void lookup(struct table *t, struct slice uk)
{
	uint64_t range_seq = 0, skips = 0;
	struct lsm_buf val = {0};
	struct table_get_result res = {.value = &val};
	int rc = table_get(t, uk, bloom_hash(uk), SEQNO_MAX, &range_seq, &res, &skips);
	if (rc < 0) {
		fuzz_check_status(rc, "table_get");
		fuzz_check_corrupt(rc, PATH);
	}
	range_seq = 0;
	rc = table_get(t, uk, bloom_hash(uk), 1, &range_seq, &res, &skips);
	if (rc < 0)
		fuzz_check_corrupt(rc, PATH);
	lsm_buf_free(&val);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned ctl = data[0];
	size_t len = size - 1;
	char *buf = malloc(len ? len : 1);
	if (!buf)
		abort();
	memcpy(buf, data + 1, len);
	if (ctl & 1)
		fix_checksums(buf, len);
	lsm_env *env = fuzz_env_with_file("/t", PATH, buf, len);
	free(buf);
	struct cache *cache = (ctl & 2) ? cache_new(64 << 10) : NULL;
	struct table *t;
	int rc = table_open(env, PATH, 7, 0, cache, &t);
	fuzz_check_status(rc, "table_open");
	fuzz_check_corrupt(rc, PATH);
	if (rc == LSM_OK) {
		/* Keys seen by the iteration (copied: they live only until the next move). */
		char *keys[MAX_KEYS];
		size_t klen[MAX_KEYS];
		int nk = 0;
		struct iter *it = table_iter_new(t, (ctl & 4) != 0);
		if (!it)
			abort();
		int steps = 0;
		for (iter_seek_first(it); it->valid && steps < MAX_STEPS; iter_next(it), steps++) {
			if (it->key.len < IKEY_TRAILER)
				abort(); /* the reader must refuse keys too short to be internal keys */
			if (nk < MAX_KEYS && (steps & 3) == 0) {
				klen[nk] = it->key.len;
				keys[nk] = malloc(it->key.len ? it->key.len : 1);
				memcpy(keys[nk], it->key.data, it->key.len);
				nk++;
			}
		}
		fuzz_check_status(it->status, "table iteration");
		fuzz_check_corrupt(it->status, PATH);
		for (int i = 0; i < nk; i++) {
			struct slice ik = slice_make(keys[i], klen[i]);
			iter_seek(it, ik);
			if (it->status)
				fuzz_check_corrupt(it->status, PATH);
			lookup(t, ikey_user(ik));
			free(keys[i]);
		}
		iter_destroy(it);
		lookup(t, slice_make("", 0));
		lookup(t, slice_make("k", 1));
		table_close(t);
	}
	cache_free(cache);
	env->destroy(env);
	return 0;
}
