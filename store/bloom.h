/*
 * bloom.h - cache-local bloom filters over user keys, one per table.
 *
 * Layout (docs/format.md): num_lines 64-byte lines of bits, then u8 probes, then u32 num_lines.
 * A key's 64-bit XXH3 hash picks one line with its low half and sets/tests `probes` bits inside that
 * line with its high half: one cache miss per lookup however large the table, at the price of a
 * slightly higher false-positive rate than a classic filter of the same size (about 1.1 % instead of
 * 0.8 % at 10 bits per key).
 * The builder belongs to one thread; a finished filter is read-only and shareable.
 */
#ifndef LSM_BLOOM_H
#define LSM_BLOOM_H

#include <stdint.h>

#include "buf.h"
#include "coding.h"

struct bloom_builder {
	uint64_t *hashes;
	size_t n, cap;
	int bits_per_key;
};

void bloom_builder_init(struct bloom_builder *b, int bits_per_key);
void bloom_builder_free(struct bloom_builder *b);
int bloom_add(struct bloom_builder *b, struct slice key);
/* Append the filter for every key added to out; then the builder is empty again. */
int bloom_finish(struct bloom_builder *b, struct buf *out);

uint64_t bloom_hash(struct slice key);
/* 1 if key may be in the set, 0 if it certainly is not. A malformed filter answers 1 (never hides). */
int bloom_may_contain(struct slice filter, uint64_t hash);
/* LSM_OK if filter is well-formed, else LSM_CORRUPT. */
int bloom_check(struct slice filter);

#endif
