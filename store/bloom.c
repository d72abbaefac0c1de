/* bloom.c - one-cache-line-per-key bloom filters hashed with XXH3. */
#include <stdlib.h>
#include <xxhash.h>

#include "bloom.h"
#include "lsm.h"

#define LINE_BITS 512
#define LINE_BYTES 64

void bloom_builder_init(struct bloom_builder *b, int bits_per_key)
{
	memset(b, 0, sizeof *b);
	b->bits_per_key = bits_per_key;
}

void bloom_builder_free(struct bloom_builder *b)
{
	free(b->hashes);
	memset(b, 0, sizeof *b);
}

uint64_t bloom_hash(struct slice key)
{
	return XXH3_64bits(key.data, key.len);
}

int bloom_add(struct bloom_builder *b, struct slice key)
{
	uint64_t h = bloom_hash(key);
	/* Consecutive versions of one user key hash alike: store each hash once. */
	if (b->n && b->hashes[b->n - 1] == h)
		return LSM_OK;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		uint64_t *p = realloc(b->hashes, cap * sizeof *p);
		if (!p)
			return LSM_NOMEM;
		b->hashes = p;
		b->cap = cap;
	}
	b->hashes[b->n++] = h;
	return LSM_OK;
}

static inline uint32_t line_of(uint64_t h, uint32_t nlines)
{
	return (uint32_t)(((uint64_t)(uint32_t)h * nlines) >> 32);
}

/* The probe sequence inside a line: remix the high half by a golden-ratio multiply and take the top
 * 9 bits each time (multiplicative hashing spreads well and costs one multiply per probe). */
#define NEXT_PROBE(x) ((x) *= 0x9E3779B9u)

int bloom_finish(struct bloom_builder *b, struct buf *out)
{
	int probes = (int)(b->bits_per_key * 0.69); /* ln 2 * bits per key minimises false positives */
	if (probes < 1)
		probes = 1;
	if (probes > 30)
		probes = 30;
	uint64_t bits = (uint64_t)b->n * (uint64_t)b->bits_per_key;
	uint32_t nlines = (uint32_t)((bits + LINE_BITS - 1) / LINE_BITS);
	if (nlines == 0)
		nlines = 1;
	size_t start = out->len;
	if (buf_reserve(out, (size_t)nlines * LINE_BYTES + 5))
		return LSM_NOMEM;
	char *lines = out->data + start;
	memset(lines, 0, (size_t)nlines * LINE_BYTES);
	for (size_t i = 0; i < b->n; i++) {
		uint64_t h = b->hashes[i];
		unsigned char *line = (unsigned char *)lines + (size_t)line_of(h, nlines) * LINE_BYTES;
		uint32_t x = (uint32_t)(h >> 32) | 1; /* odd: the multiply never collapses to 0 */
		for (int p = 0; p < probes; p++) {
			NEXT_PROBE(x);
			uint32_t bit = x >> 23;
			line[bit >> 3] |= (unsigned char)(1u << (bit & 7));
		}
	}
	out->len = start + (size_t)nlines * LINE_BYTES;
	out->data[out->len++] = (char)probes;
	put_u32le(out->data + out->len, nlines);
	out->len += 4;
	b->n = 0;
	return LSM_OK;
}

int bloom_check(struct slice f)
{
	if (f.len < 5)
		return LSM_CORRUPT;
	uint32_t nlines = get_u32le(f.data + f.len - 4);
	int probes = (unsigned char)f.data[f.len - 5];
	if (nlines == 0 || (uint64_t)nlines * LINE_BYTES != f.len - 5 || probes < 1 || probes > 30)
		return LSM_CORRUPT;
	return LSM_OK;
}

int bloom_may_contain(struct slice f, uint64_t h)
{
	if (f.len < 5)
		return 1;
	uint32_t nlines = get_u32le(f.data + f.len - 4);
	int probes = (unsigned char)f.data[f.len - 5];
	if (nlines == 0 || (uint64_t)nlines * LINE_BYTES != f.len - 5)
		return 1;
	const unsigned char *line = (const unsigned char *)f.data + (size_t)line_of(h, nlines) * LINE_BYTES;
	uint32_t x = (uint32_t)(h >> 32) | 1; /* odd: the multiply never collapses to 0 */
	for (int p = 0; p < probes; p++) {
		NEXT_PROBE(x);
		uint32_t bit = x >> 23;
		if (!(line[bit >> 3] & (1u << (bit & 7))))
			return 0;
	}
	return 1;
}
