/* block.c - building and reading prefix-compressed blocks with restart points. */
#include <stdlib.h>

#include "block.h"
#include "dbformat.h"
#include "lsm.h"

void bb_init(struct block_builder *b, int restart_interval)
{
	memset(b, 0, sizeof *b);
	b->interval = restart_interval > 0 ? restart_interval : 16;
}

void bb_free(struct block_builder *b)
{
	buf_free(&b->buf);
	buf_free(&b->last_key);
	free(b->restarts);
	memset(b, 0, sizeof *b);
}

void bb_reset(struct block_builder *b)
{
	b->buf.len = 0;
	b->last_key.len = 0;
	b->nrestarts = 0;
	b->counter = 0;
	b->entries = 0;
}

static int push_restart(struct block_builder *b, uint32_t off)
{
	if (b->nrestarts == b->caprestarts) {
		size_t cap = b->caprestarts ? b->caprestarts * 2 : 64;
		uint32_t *p = realloc(b->restarts, cap * sizeof *p);
		if (!p)
			return LSM_NOMEM;
		b->restarts = p;
		b->caprestarts = cap;
	}
	b->restarts[b->nrestarts++] = off;
	return LSM_OK;
}

int bb_add(struct block_builder *b, struct slice key, struct slice value)
{
	size_t shared = 0;
	if (b->counter >= b->interval || b->entries == 0) {
		if (push_restart(b, (uint32_t)b->buf.len))
			return LSM_NOMEM;
		b->counter = 0;
	} else {
		size_t n = key.len < b->last_key.len ? key.len : b->last_key.len;
		while (shared < n && key.data[shared] == b->last_key.data[shared])
			shared++;
	}
	size_t unshared = key.len - shared;
	if (buf_reserve(&b->buf, 3 * VARINT64_MAX + unshared + value.len))
		return LSM_NOMEM;
	char *p = b->buf.data + b->buf.len;
	p += put_varint64(p, shared);
	p += put_varint64(p, unshared);
	p += put_varint64(p, value.len);
	memcpy(p, key.data + shared, unshared);
	p += unshared;
	if (value.len)
		memcpy(p, value.data, value.len);
	p += value.len;
	b->buf.len = (size_t)(p - b->buf.data);
	b->last_key.len = 0;
	if (buf_append(&b->last_key, key.data, key.len))
		return LSM_NOMEM;
	b->counter++;
	b->entries++;
	return LSM_OK;
}

size_t bb_estimate(const struct block_builder *b)
{
	return b->buf.len + 4 * (b->nrestarts + 1);
}

struct slice bb_finish(struct block_builder *b)
{
	if (b->nrestarts == 0)
		push_restart(b, 0); /* an empty block still has one restart; capacity 64 never fails twice */
	if (buf_reserve(&b->buf, 4 * (b->nrestarts + 1)) == LSM_OK) {
		for (size_t i = 0; i < b->nrestarts; i++)
			buf_put_u32le(&b->buf, b->restarts[i]);
		buf_put_u32le(&b->buf, (uint32_t)b->nrestarts);
	} else {
		return slice_make(NULL, 0);
	}
	return slice_make(b->buf.data, b->buf.len);
}

int block_parse(struct block *b, const char *data, size_t len)
{
	if (len < 4)
		return LSM_CORRUPT;
	uint32_t n = get_u32le(data + len - 4);
	if (n == 0 || n > (len - 4) / 4)
		return LSM_CORRUPT;
	b->data = data;
	b->size = len - 4 - 4 * (size_t)n;
	b->restarts = data + b->size;
	b->nrestarts = n;
	for (uint32_t i = 0; i < n; i++) /* offsets must lie inside the entries area, ascending */
		if (get_u32le(b->restarts + 4 * i) > b->size ||
		    (i && get_u32le(b->restarts + 4 * i) < get_u32le(b->restarts + 4 * (i - 1))))
			return LSM_CORRUPT;
	return LSM_OK;
}

/* ---------------------------------------------------------------- iterator */


static inline int bi_cmp(const struct block_iter *bi, struct slice a, struct slice b)
{
	if (bi->cmp == BLOCK_CMP_IKEY) {
		if (a.len < IKEY_TRAILER || b.len < IKEY_TRAILER)
			return slice_cmp(a, b);
		return ikey_cmp(a, b);
	}
	return slice_cmp(a, b);
}

static void bi_corrupt(struct block_iter *bi)
{
	bi->base.valid = 0;
	bi->base.status = LSM_CORRUPT;
}

/* Decode the entry at off into key/value. */
static int bi_decode(struct block_iter *bi, size_t off)
{
	const char *p = bi->b.data + off, *limit = bi->b.data + bi->b.size;
	uint32_t shared, unshared, vlen;
	if (!(p = get_varint32(p, limit, &shared)) || !(p = get_varint32(p, limit, &unshared)) ||
	    !(p = get_varint32(p, limit, &vlen)) || shared > bi->key.len ||
	    (size_t)(limit - p) < (size_t)unshared + vlen) {
		bi_corrupt(bi);
		return -1;
	}
	size_t klen = (size_t)shared + unshared;
	if (klen > bi->key.cap) {
		/* Grow off the inline buffer: no allocation for the keys this store normally holds. */
		size_t cap = 2 * klen;
		char *nk = bi->key.data == bi->inline_key ? malloc(cap) : realloc(bi->key.data, cap);
		if (!nk) {
			bi->base.valid = 0;
			bi->base.status = LSM_NOMEM;
			return -1;
		}
		if (bi->key.data == bi->inline_key)
			memcpy(nk, bi->inline_key, shared);
		bi->key.data = nk;
		bi->key.cap = cap;
	}
	memcpy(bi->key.data + shared, p, unshared);
	bi->key.len = klen;
	if (bi->cmp == BLOCK_CMP_IKEY && bi->key.len < IKEY_TRAILER) {
		bi_corrupt(bi);
		return -1;
	}
	bi->cur = off;
	bi->base.key = slice_make(bi->key.data, bi->key.len);
	bi->base.value = slice_make(p + unshared, vlen);
	bi->next_off = (size_t)(p + unshared + vlen - bi->b.data);
	bi->base.valid = 1;
	return 0;
}

/* Decode the entry after the current one. Entries at restart points must not borrow from the previous
 * key: forgetting it there makes a malformed `shared` at a restart fail instead of inventing a key. */
static int bi_advance(struct block_iter *bi)
{
	size_t off = bi->next_off;
	while (bi->next_restart < bi->b.nrestarts && get_u32le(bi->b.restarts + 4 * bi->next_restart) <= off) {
		if (get_u32le(bi->b.restarts + 4 * bi->next_restart) == off)
			bi->key.len = 0;
		bi->next_restart++;
	}
	return bi_decode(bi, off);
}

static void bi_next(struct iter *it)
{
	struct block_iter *bi = (struct block_iter *)it;
	if (bi->next_off >= bi->b.size) {
		bi->base.valid = 0;
		return;
	}
	bi_advance(bi);
}

static void bi_seek_first(struct iter *it)
{
	struct block_iter *bi = (struct block_iter *)it;
	bi->key.len = 0;
	if (bi->b.size == 0) {
		bi->base.valid = 0;
		return;
	}
	bi->next_restart = 1;
	bi_decode(bi, 0);
}

/* The key of the entry at restart offset off, in place in the block (a restart entry shares nothing
 * with its predecessor, so its key is whole). 0, or -1 if the entry is malformed. */
static int restart_key(const struct block_iter *bi, size_t off, struct slice *key)
{
	const char *p = bi->b.data + off, *limit = bi->b.data + bi->b.size;
	uint32_t shared, unshared, vlen;
	if (off >= bi->b.size || !(p = get_varint32(p, limit, &shared)) ||
	    !(p = get_varint32(p, limit, &unshared)) || !(p = get_varint32(p, limit, &vlen)) || shared ||
	    (size_t)(limit - p) < (size_t)unshared + vlen ||
	    (bi->cmp == BLOCK_CMP_IKEY && unshared < IKEY_TRAILER))
		return -1;
	*key = slice_make(p, unshared);
	return 0;
}

static void bi_seek(struct iter *it, struct slice target)
{
	struct block_iter *bi = (struct block_iter *)it;
	/* Binary search for the last restart whose key is < target, comparing the restart keys where
	 * they lie (no copy), then scan forward. */
	uint32_t lo = 0, hi = bi->b.nrestarts;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		struct slice k;
		if (restart_key(bi, get_u32le(bi->b.restarts + 4 * mid), &k)) {
			bi_corrupt(bi);
			return;
		}
		if (bi_cmp(bi, k, target) < 0)
			lo = mid;
		else
			hi = mid;
	}
	size_t off = get_u32le(bi->b.restarts + 4 * lo);
	bi->key.len = 0;
	if (off >= bi->b.size) {
		bi->base.valid = 0;
		return;
	}
	bi->next_restart = lo + 1;
	if (bi_decode(bi, off))
		return;
	while (bi_cmp(bi, bi->base.key, target) < 0) {
		if (bi->next_off >= bi->b.size) {
			bi->base.valid = 0;
			return;
		}
		if (bi_advance(bi))
			return;
	}
}

static void bi_destroy(struct iter *it)
{
	struct block_iter *bi = (struct block_iter *)it;
	if (bi->release)
		bi->release(bi->arg);
	block_iter_cleanup(bi);
	free(bi);
}

static const struct iter_ops block_iter_ops = {bi_seek_first, bi_seek, bi_next, bi_destroy};

void block_iter_init(struct block_iter *bi, const struct block *b, enum block_cmp cmp)
{
	memset(bi, 0, sizeof *bi);
	bi->base.ops = &block_iter_ops;
	bi->b = *b;
	bi->cmp = cmp;
	bi->key.data = bi->inline_key;
	bi->key.cap = sizeof bi->inline_key;
}

void block_iter_cleanup(struct block_iter *bi)
{
	if (bi->key.data != bi->inline_key)
		free(bi->key.data);
	bi->key.data = bi->inline_key;
	bi->key.cap = sizeof bi->inline_key;
}

struct iter *block_iter_new(const struct block *b, enum block_cmp cmp, void (*release)(void *), void *arg)
{
	struct block_iter *bi = malloc(sizeof *bi);
	if (!bi) {
		if (release)
			release(arg);
		return NULL;
	}
	block_iter_init(bi, b, cmp);
	bi->release = release;
	bi->arg = arg;
	return &bi->base;
}
