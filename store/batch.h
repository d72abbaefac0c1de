/*
 * batch.h - write batches: the encoded form of an atomic group of updates, ready to be a log record.
 *
 * struct lsm_batch keeps its payload (wal_format.h) behind WAL_HEADER_SIZE reserved bytes, so the
 * write path fills in the record header in place and hands the log one contiguous buffer: no copy for
 * a batch that commits alone. A batch belongs to one thread.
 */
#ifndef LSM_BATCH_H
#define LSM_BATCH_H

#include <stdint.h>

#include "buf.h"
#include "coding.h"
#include "wal_format.h"

struct lsm_batch {
	struct buf rep;    /* [WAL header reserve][u64 seq][u32 count][ops] */
	uint32_t count;
	uint32_t puts, deletes, range_deletes;
	size_t max_value;  /* longest VT_VALUE value: may the write path have one for a blob file? */
};

/* Initialise an embedded batch (lsm_batch_new does this on the heap). */
int batch_init(struct lsm_batch *b);
static inline char *batch_payload(const struct lsm_batch *b)
{
	return b->rep.data + WAL_HEADER_SIZE;
}
static inline size_t batch_payload_len(const struct lsm_batch *b)
{
	return b->rep.len - WAL_HEADER_SIZE;
}
/* Stamp the first seqno (and the count) into the payload header. */
void batch_set_seq(struct lsm_batch *b, uint64_t seq);
/* Append one operation of any type (VT_DELETE carries no value). LSM_OK, LSM_INVAL (too big), LSM_NOMEM. */
int batch_add(struct lsm_batch *b, unsigned type, struct slice key, struct slice value);
/* Append b's operations (not its header) to dst, a batch being grown into a group. */
int batch_append_ops(struct lsm_batch *dst, const struct lsm_batch *b);

/* Decoding a payload (from a batch or a log record). */
struct batch_op {
	unsigned type;
	struct slice key;
	struct slice value; /* end key for range deletes; empty for deletes */
};
struct batch_reader {
	const char *p, *end;
	uint32_t left;
};
/* LSM_OK, or LSM_CORRUPT if the header is malformed (the caller names file and offset). */
int batch_reader_init(struct batch_reader *r, const char *payload, size_t len, uint64_t *seq,
		      uint32_t *count);
/* 1: *op filled; 0: end; LSM_CORRUPT: malformed op or count mismatch. */
int batch_reader_next(struct batch_reader *r, struct batch_op *op);

/* Copy a payload (seqno included) into out with the ops that `wants` selects rewritten by `map` (which
 * sets op->type / op->value, valid until its next call, or returns an error that stops the copy). When
 * no op is selected, out is left alone and *changed is 0: a first pass only looks. Errors: map's, the
 * batch's own (LSM_NOMEM, LSM_INVAL), LSM_CORRUPT for a malformed payload. */
struct batch_rewriter {
	int (*wants)(void *ctx, const struct batch_op *op);
	int (*map)(void *ctx, struct batch_op *op);
	void *ctx;
};
int batch_rewrite(struct slice payload, const struct batch_rewriter *rw, struct lsm_batch *out, int *changed);

#endif
