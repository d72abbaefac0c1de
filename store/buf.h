/*
 * buf.h - a growable byte buffer (struct buf) used wherever the store assembles bytes: batches, blocks,
 * table and manifest records. Growth doubles; a failed allocation leaves the buffer unchanged and
 * returns LSM_NOMEM. Single-threaded; owns its bytes.
 */
#ifndef LSM_BUF_H
#define LSM_BUF_H

#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "lsm.h"

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

static inline int buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return LSM_NOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Give a caller's value buffer room for n bytes (what it held need not survive). 0 or LSM_NOMEM. */
static inline int lsm_buf_fit(struct lsm_buf *b, size_t n)
{
	if (n <= b->cap)
		return 0;
	void *p = realloc(b->data, n);
	if (!p)
		return LSM_NOMEM;
	b->data = p;
	b->cap = n;
	return 0;
}

static inline int buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n))
		return LSM_NOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static inline int buf_put_varint(struct buf *b, uint64_t v)
{
	if (buf_reserve(b, VARINT64_MAX))
		return LSM_NOMEM;
	b->len += put_varint64(b->data + b->len, v);
	return 0;
}

static inline int buf_put_u32le(struct buf *b, uint32_t v)
{
	if (buf_reserve(b, 4))
		return LSM_NOMEM;
	put_u32le(b->data + b->len, v);
	b->len += 4;
	return 0;
}

static inline int buf_put_u64le(struct buf *b, uint64_t v)
{
	if (buf_reserve(b, 8))
		return LSM_NOMEM;
	put_u64le(b->data + b->len, v);
	b->len += 8;
	return 0;
}

/* Length-prefixed bytes: varint length, then the bytes. */
static inline int buf_put_lp(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, VARINT64_MAX + n))
		return LSM_NOMEM;
	b->len += put_varint64(b->data + b->len, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static inline void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

#endif
