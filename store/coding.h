/*
 * coding.h - byte-order helpers and varints shared by every on-disk format of the store.
 *
 * Fixed-width integers in store formats are little-endian (fast to load on the machines we run on);
 * the filesystem's key schema uses big-endian so that byte order equals numeric order (fs/schema.h).
 * All functions are inline and pure; decoders never read past the limit they are given.
 */
#ifndef LSM_CODING_H
#define LSM_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

_Static_assert(sizeof(uint64_t) == 8 && sizeof(uint32_t) == 4, "fixed-width integers");

/* A borrowed byte range: never owns its bytes. */
struct slice {
	const char *data;
	size_t len;
};

static inline struct slice slice_make(const void *p, size_t n)
{
	struct slice s = {(const char *)p, n};
	return s;
}

/* memcmp's sign, inlined: 8 bytes at a time compared as big-endian words. Keys are short (16-40
 * bytes); the libc call (PLT, length dispatch) was 13 % of a point lookup's instructions (callgrind). */
static inline int key_memcmp(const char *a, const char *b, size_t n)
{
	while (n >= 8) {
		uint64_t x, y;
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		if (x != y) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			x = __builtin_bswap64(x);
			y = __builtin_bswap64(y);
#endif
			return x < y ? -1 : 1;
		}
		a += 8;
		b += 8;
		n -= 8;
	}
	for (; n; n--, a++, b++)
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
	return 0;
}

static inline int slice_cmp(struct slice a, struct slice b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int r = key_memcmp(a.data, b.data, n);
	if (r)
		return r;
	return a.len < b.len ? -1 : a.len > b.len;
}

static inline void put_u16le(char *p, uint16_t v)
{
	p[0] = (char)v;
	p[1] = (char)(v >> 8);
}
static inline void put_u32le(char *p, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(p, &v, 4);
#else
	for (int i = 0; i < 4; i++)
		p[i] = (char)(v >> (8 * i));
#endif
}
static inline void put_u64le(char *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(p, &v, 8);
#else
	for (int i = 0; i < 8; i++)
		p[i] = (char)(v >> (8 * i));
#endif
}
static inline uint16_t get_u16le(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint16_t)(u[0] | (u[1] << 8));
}
static inline uint32_t get_u32le(const char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
#else
	const unsigned char *u = (const unsigned char *)p;
	return u[0] | (u[1] << 8) | (u[2] << 16) | ((uint32_t)u[3] << 24);
#endif
}
static inline uint64_t get_u64le(const char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
#else
	return get_u32le(p) | ((uint64_t)get_u32le(p + 4) << 32);
#endif
}

static inline void put_u32be(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}
static inline void put_u64be(char *p, uint64_t v)
{
	put_u32be(p, (uint32_t)(v >> 32));
	put_u32be(p + 4, (uint32_t)v);
}
static inline uint32_t get_u32be(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return ((uint32_t)u[0] << 24) | (u[1] << 16) | (u[2] << 8) | u[3];
}
static inline uint64_t get_u64be(const char *p)
{
	return ((uint64_t)get_u32be(p) << 32) | get_u32be(p + 4);
}

/* Varints: 7 bits per byte, low groups first, high bit = more follows (LevelDB's encoding). */
#define VARINT64_MAX 10

static inline size_t put_varint64(char *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (char)v;
	return n;
}

static inline size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Decode a varint from [p, limit); returns the byte after it, or NULL if malformed or truncated. */
static inline const char *get_varint64(const char *p, const char *limit, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned shift = 0; shift <= 63 && p < limit; shift += 7) {
		uint64_t b = (unsigned char)*p++;
		r |= (b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return p;
		}
	}
	return NULL;
}

static inline const char *get_varint32(const char *p, const char *limit, uint32_t *v)
{
	if (p < limit && !(*(const unsigned char *)p & 0x80)) { /* fast path: one byte */
		*v = (unsigned char)*p;
		return p + 1;
	}
	uint64_t r;
	p = get_varint64(p, limit, &r);
	if (!p || r > UINT32_MAX)
		return NULL;
	*v = (uint32_t)r;
	return p;
}

/* A length-prefixed slice: varint length, then bytes. */
static inline const char *get_lp_slice(const char *p, const char *limit, struct slice *s)
{
	uint64_t n;
	p = get_varint64(p, limit, &n);
	if (!p || n > (uint64_t)(limit - p))
		return NULL;
	s->data = p;
	s->len = (size_t)n;
	return p + n;
}

#endif
