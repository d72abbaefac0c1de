/*
 * table_format.h - the byte layout of a table file (SST); docs/format.md mirrors it.
 *
 *   [data block 0][trailer] ... [data block n-1][trailer]
 *   [filter][trailer]        bloom filter over the user keys of every point entry (bloom.h)
 *   [range-del block][trailer]  raw range tombstones: key = internal key (begin, seq, VT_RANGE_DELETE),
 *                                value = end user key; a block like the data blocks (may be empty)
 *   [properties][trailer]    tagged varints (TP_* below)
 *   [index block][trailer]   one entry per data block: key = a separator >= the block's last internal
 *                            key and < the next block's first; value = varint offset, varint size
 *   [footer]                 TABLE_FOOTER_SIZE bytes, fixed
 *
 * Block trailer (5 bytes): u8 compression (0 = none), u32 low 32 bits of XXH3-64 over the block
 * contents followed by that compression byte.
 *
 * Footer (64 bytes, little-endian):
 *    0  filter handle     u64 offset, u32 size (size excludes the trailer)
 *   12  range-del handle
 *   24  properties handle
 *   36  index handle
 *   48  u32 format version (TABLE_FORMAT_VERSION)
 *   52  u32 low 32 bits of XXH3-64 of footer bytes [0, 52)
 *   56  u64 magic (TABLE_MAGIC)
 */
#ifndef LSM_TABLE_FORMAT_H
#define LSM_TABLE_FORMAT_H

#include <stdint.h>

#define TABLE_FOOTER_SIZE 64
#define TABLE_FORMAT_VERSION 1
/* The ASCII bytes "lsmfsSST" read as a little-endian u64: a hexdump of a table ends in them. */
#define TABLE_MAGIC UINT64_C(0x5453537366736d6c)
#define BLOCK_TRAILER_SIZE 5

/* Stored on disk: never renumber. */
enum block_compression {
	BLOCK_RAW = 0,
};

/* Properties tags (stored on disk: never renumber). Tags 6 and 7 are length-prefixed byte strings,
 * every other value is a varint. */
enum table_prop_tag {
	TP_ENTRIES = 1,       /* point entries (puts + deletes) */
	TP_DELETES = 2,       /* point tombstones */
	TP_RANGE_DELS = 3,    /* range tombstones */
	TP_MIN_SEQ = 4,
	TP_MAX_SEQ = 5,
	TP_SMALLEST = 6,      /* smallest internal key (points and tombstone begins) */
	TP_LARGEST = 7,       /* largest internal key (tombstone ends count as (end, SEQNO_MAX, RANGE)) */
	TP_RAW_KEY_BYTES = 8,
	TP_RAW_VALUE_BYTES = 9,
	TP_DATA_BLOCKS = 10,
};

struct block_handle {
	uint64_t offset;
	uint32_t size;
};

#endif
