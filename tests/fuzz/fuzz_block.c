/*
 * fuzz_block.c - libFuzzer target: the block decoder (block.h) on arbitrary bytes, as a data block
 * (internal-key order) and as a plain-bytes block: parse, iterate, and seek to keys it holds and to
 * keys taken from the input. The iterator must stay inside the block and end with LSM_CORRUPT on bad
 * bytes, never read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "dbformat.h"
#include "lsm.h"

#define MAX_STEPS 20000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct block *b, enum block_cmp cmp, const uint8_t *data, size_t size)
{
	struct block_iter bi;
	block_iter_init(&bi, b, cmp);
	struct iter *it = &bi.base;
	char *saved = NULL;
	size_t saved_len = 0;
	int steps = 0;
	for (iter_seek_first(it); it->valid && steps < MAX_STEPS; iter_next(it), steps++) {
		if (cmp == BLOCK_CMP_IKEY && it->key.len < IKEY_TRAILER)
			abort(); /* an internal-key block must refuse keys without a trailer */
		if (steps == 3) {
			saved = malloc(it->key.len + 1);
			memcpy(saved, it->key.data, it->key.len);
			saved_len = it->key.len;
		}
	}
	if (it->status && it->status != LSM_CORRUPT)
		abort();
	if (saved) {
		iter_seek(it, slice_make(saved, saved_len));
		free(saved);
	}
	/* Seek to a key made of the input's first bytes (an internal key needs its 8-byte trailer). */
	size_t kl = size < 24 ? size : 24;
	if (cmp == BLOCK_CMP_BYTES || kl >= IKEY_TRAILER) {
		iter_seek(it, slice_make((const char *)data, kl));
		for (int i = 0; it->valid && i < 4; i++)
			iter_next(it);
	}
	if (it->status && it->status != LSM_CORRUPT)
		abort();
	block_iter_cleanup(&bi);

	/* The heap iterator (what table iterators use) on the same block. */
	struct iter *hi = block_iter_new(b, cmp, NULL, NULL);
	if (hi) {
		steps = 0;
		for (iter_seek_first(hi); hi->valid && steps < MAX_STEPS; iter_next(hi), steps++)
			;
		iter_destroy(hi);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy of exactly size bytes: ASan then catches any read past the block. */
	char *copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	struct block b;
	if (block_parse(&b, copy, size) == LSM_OK) {
		walk(&b, BLOCK_CMP_IKEY, data, size);
		walk(&b, BLOCK_CMP_BYTES, data, size);
	}
	free(copy);
	return 0;
}
