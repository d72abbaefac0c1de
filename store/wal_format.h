/*
 * wal_format.h - the record framing shared by the write-ahead log and the manifest (docs/format.md).
 *
 * A log file is a sequence of records, each a 24-byte header followed by its payload:
 *
 *   off  size  field
 *     0     4  checksum: low 32 bits of XXH3-64 over header bytes [4, 24) and the payload
 *     4     4  payload length (little-endian)
 *     8     1  record type (enum wal_rec_type)
 *     9     3  zero
 *    12     4  low 32 bits of the log file's number (a record copied into another file is caught)
 *    16     8  synced_upto: bytes of this file known durable when the record was written
 *
 * synced_upto is what lets recovery tell a torn tail from corruption: a damaged record at offset X is
 * the torn remains of a write that was never synced unless some later intact record says that X was
 * already durable (synced_upto > X), in which case it is corruption of acknowledged data. A clean close
 * ends the log with an empty batch (count 0) and the manifest with an empty edit, written after the last
 * sync: they vouch for every record before them, so that damage to those is never taken for a torn tail.
 * Records never span files and are not split into blocks: one write(2) per record.
 * The format version is the manifest's (version edits carry it); WAL version 1.
 */
#ifndef LSM_WAL_FORMAT_H
#define LSM_WAL_FORMAT_H

#define WAL_HEADER_SIZE 24
#define WAL_FORMAT_VERSION 1
/* A record's payload is at most this big (a batch of more is refused with LSM_INVAL). */
#define WAL_MAX_PAYLOAD (1u << 30)

/* Stored on disk: never renumber. */
enum wal_rec_type {
	WAL_REC_BATCH = 1, /* a write batch (batch.h) */
	WAL_REC_EDIT = 2,  /* a manifest version edit (version.h) */
};

/* Write batch payload: u64 first seqno, u32 count, then count operations:
 *   u8 type (dbformat.h value_type), varint klen, key, and for VT_VALUE / VT_RANGE_DELETE a varint
 *   vlen and the value (for a range delete: the exclusive end key). */
#define BATCH_HEADER_SIZE 12

#endif
