/*
 * wal.h - log writer and reader (record framing of wal_format.h), for the WAL and the manifest; the
 * writer also appends the unframed records of blob files (wal_append_raw).
 *
 * Writer: one record per append call, handed to the kernel before the call returns (no user-space
 * buffering, so a process kill loses nothing acknowledged). Not thread-safe: the db serializes writers.
 * A failed append or sync leaves the file in an unknown state: the caller must stop using the log.
 *
 * Reader: reads a whole log into memory and walks its records. Damage is classified (see
 * wal_format.h): in the newest log a damaged record that no later record vouches for is a torn tail and
 * ends the log; anything else is LSM_CORRUPT naming the file and offset, unless the reader is in repair
 * mode, which skips to the next intact record and counts what it skipped.
 */
#ifndef LSM_WAL_H
#define LSM_WAL_H

#include <stdint.h>

#include "coding.h"
#include "env.h"

struct wal_writer {
	lsm_env *env;
	lsm_wfile *f;
	uint64_t number;
	uint64_t offset;  /* bytes appended */
	uint64_t synced;  /* bytes known durable */
	uint64_t written_back; /* bytes handed to env->writeback (a page multiple) */
	char *path;
};

/* Create path (truncating) as log number `number`. */
int wal_writer_open(lsm_env *env, const char *path, uint64_t number, struct wal_writer **out);
/* Append one record. rec points at WAL_HEADER_SIZE writable bytes followed by the payload; the header
 * is filled in place. */
int wal_append(struct wal_writer *w, unsigned type, char *rec, size_t payload_len);
/* Append bytes as they are, no record framing (blob files: blob.h). */
int wal_append_raw(struct wal_writer *w, const void *data, size_t n);
/* Same as wal_append, for a payload without reserved header room (copies; for small records like version edits). */
int wal_append_copy(struct wal_writer *w, unsigned type, const void *payload, size_t len);
int wal_sync(struct wal_writer *w);
/* Close (no sync) and free; NULL is ignored. */
int wal_writer_close(struct wal_writer *w);

enum wal_read_mode {
	WAL_STRICT = 0,     /* any damage is corruption (an old log, the manifest but the last record) */
	WAL_TAIL_OK = 1,    /* the newest log: a torn tail ends it quietly */
	WAL_REPAIR = 2,     /* skip damaged records, count them (implies WAL_TAIL_OK) */
};

struct wal_reader {
	char *path;
	uint64_t number;
	char *data;        /* the whole file */
	size_t size;
	size_t off;        /* next record */
	int mode;
	int done;
	/* What the walk found: */
	uint64_t torn_offset;    /* where a torn tail started (valid when torn_bytes > 0) */
	uint64_t torn_bytes;
	uint64_t skipped_records;
	uint64_t skipped_bytes;
	uint64_t first_skip_offset;
};

int wal_reader_open(lsm_env *env, const char *path, uint64_t number, int mode, struct wal_reader **out);
/* Next record: 1 and (*type, *payload, *offset) set; 0 at the end; LSM_CORRUPT with lsm_errmsg naming
 * file and offset. The payload points into the reader's buffer (valid until close). */
int wal_read(struct wal_reader *r, unsigned *type, struct slice *payload, uint64_t *offset);
/* The same for a write-ahead log, whose records are all write batches: 1 and the batch (*payload, its
 * *seq and op *count, a reader br positioned on its first op); 0 at the end; LSM_CORRUPT naming file
 * and offset for a record of another type or a malformed batch header. */
struct batch_reader;
int wal_read_batch(struct wal_reader *r, struct slice *payload, uint64_t *offset, struct batch_reader *br,
		   uint64_t *seq, uint32_t *count);
/* The intact record at off names data that is gone (a blob record never synced): if this is the newest
 * log (WAL_TAIL_OK) and no later record vouches that off was synced, end the log there as a torn tail
 * and return 1; else return 0 (the caller reports corruption, or skips the record in repair mode). */
int wal_reader_cut(struct wal_reader *r, uint64_t off);
void wal_reader_close(struct wal_reader *r);

#endif
