/*
 * dbformat.h - internal keys: how the store orders versions of a user key.
 *
 * An internal key is the user key followed by an 8-byte little-endian trailer (seqno << 8 | type).
 * Internal keys sort by user key ascending (memcmp, shorter first), then by trailer DESCENDING, so
 * the newest version of a key comes first and a seek to (key, snapshot_seqno) lands on the newest
 * version visible at that snapshot. Sequence numbers are 56 bits.
 *
 * The value types are stored on disk (log records, tables): never renumber them.
 */
#ifndef LSM_DBFORMAT_H
#define LSM_DBFORMAT_H

#include <stdint.h>
#include <string.h>

#include "coding.h"

enum value_type {
	VT_DELETE = 0,       /* point tombstone */
	VT_VALUE = 1,        /* a put */
	VT_RANGE_DELETE = 2, /* range tombstone: key = begin, value = end (exclusive) */
	VT_BLOB = 3,         /* a put whose value lives in a blob file: value = struct blob_ref (blob.h) */
	/* 4.. reserved (merge operands) */
};
/* A seek for "newest version at or below seqno s" uses type VT_SEEK: the largest type, so
 * (key, s, VT_SEEK) sorts before every real entry (key, s, t). */
#define VT_SEEK VT_BLOB
#define VT_MAX VT_BLOB

/* Entry types that are a put (a live value, inline or in a blob file). */
static inline int vt_is_put(unsigned type)
{
	return type == VT_VALUE || type == VT_BLOB;
}

#define SEQNO_MAX ((UINT64_C(1) << 56) - 1)
#define IKEY_TRAILER 8

static inline uint64_t pack_trailer(uint64_t seq, unsigned type)
{
	return (seq << 8) | type;
}

/* Split an internal key (len >= 8; callers check). */
static inline struct slice ikey_user(struct slice ik)
{
	return slice_make(ik.data, ik.len - IKEY_TRAILER);
}
static inline uint64_t ikey_trailer(struct slice ik)
{
	return get_u64le(ik.data + ik.len - IKEY_TRAILER);
}
static inline uint64_t ikey_seq(struct slice ik)
{
	return ikey_trailer(ik) >> 8;
}
static inline unsigned ikey_type(struct slice ik)
{
	return (unsigned)(ikey_trailer(ik) & 0xff);
}

/* Compare two internal keys (see the order above). */
static inline int ikey_cmp(struct slice a, struct slice b)
{
	size_t al = a.len - IKEY_TRAILER, bl = b.len - IKEY_TRAILER;
	size_t n = al < bl ? al : bl;
	int r = key_memcmp(a.data, b.data, n);
	if (r)
		return r;
	if (al != bl)
		return al < bl ? -1 : 1;
	uint64_t ta = get_u64le(a.data + al), tb = get_u64le(b.data + bl);
	return ta > tb ? -1 : ta < tb;
}

/* Write user key + trailer into dst (which has room for ukey.len + 8). */
static inline void ikey_build(char *dst, struct slice ukey, uint64_t seq, unsigned type)
{
	if (ukey.len)
		memcpy(dst, ukey.data, ukey.len);
	put_u64le(dst + ukey.len, pack_trailer(seq, type));
}

#endif
