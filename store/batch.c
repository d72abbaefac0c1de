/* batch.c - building and decoding write batches. */
#include <stdlib.h>

#include "batch.h"
#include "dbformat.h"
#include "lsm.h"

int batch_init(struct lsm_batch *b)
{
	memset(b, 0, sizeof *b);
	if (buf_reserve(&b->rep, 256))
		return LSM_NOMEM;
	memset(b->rep.data, 0, WAL_HEADER_SIZE + BATCH_HEADER_SIZE);
	b->rep.len = WAL_HEADER_SIZE + BATCH_HEADER_SIZE;
	return LSM_OK;
}

lsm_batch *lsm_batch_new(void)
{
	lsm_batch *b = malloc(sizeof *b);
	if (!b || batch_init(b)) {
		free(b);
		return NULL;
	}
	return b;
}

void lsm_batch_free(lsm_batch *b)
{
	if (!b)
		return;
	buf_free(&b->rep);
	free(b);
}

void lsm_batch_clear(lsm_batch *b)
{
	b->rep.len = WAL_HEADER_SIZE + BATCH_HEADER_SIZE;
	b->count = b->puts = b->deletes = b->range_deletes = 0;
	b->max_value = 0;
}

uint32_t lsm_batch_count(const lsm_batch *b)
{
	return b->count;
}

size_t lsm_batch_bytes(const lsm_batch *b)
{
	return batch_payload_len(b);
}

static int add_op(lsm_batch *b, unsigned type, const void *k, size_t kl, const void *v, size_t vl, int hasv)
{
	if (b->count == UINT32_MAX)
		return LSM_INVAL;
	size_t need = 1 + 2 * VARINT64_MAX + kl + vl;
	if (batch_payload_len(b) + need > WAL_MAX_PAYLOAD)
		return LSM_INVAL;
	if (buf_reserve(&b->rep, need))
		return LSM_NOMEM;
	char *p = b->rep.data + b->rep.len;
	*p++ = (char)type;
	p += put_varint64(p, kl);
	if (kl)
		memcpy(p, k, kl);
	p += kl;
	if (hasv) {
		p += put_varint64(p, vl);
		if (vl)
			memcpy(p, v, vl);
		p += vl;
	}
	b->rep.len = (size_t)(p - b->rep.data);
	b->count++;
	if (type == VT_VALUE && vl > b->max_value)
		b->max_value = vl;
	return LSM_OK;
}

int batch_add(struct lsm_batch *b, unsigned type, struct slice key, struct slice value)
{
	int rc = add_op(b, type, key.data, key.len, value.data, value.len, type != VT_DELETE);
	if (rc == LSM_OK) {
		b->puts += vt_is_put(type);
		b->deletes += type == VT_DELETE;
		b->range_deletes += type == VT_RANGE_DELETE;
	}
	return rc;
}

int lsm_batch_put(lsm_batch *b, const void *key, size_t klen, const void *val, size_t vlen)
{
	return batch_add(b, VT_VALUE, slice_make(key, klen), slice_make(val, vlen));
}

int lsm_batch_delete(lsm_batch *b, const void *key, size_t klen)
{
	return batch_add(b, VT_DELETE, slice_make(key, klen), slice_make(NULL, 0));
}

int lsm_batch_delete_range(lsm_batch *b, const void *begin, size_t blen, const void *end, size_t elen)
{
	return batch_add(b, VT_RANGE_DELETE, slice_make(begin, blen), slice_make(end, elen));
}

int batch_rewrite(struct slice payload, const struct batch_rewriter *rw, struct lsm_batch *out, int *changed)
{
	struct batch_reader r;
	struct batch_op op;
	uint64_t seq;
	uint32_t count;
	*changed = 0;
	int rc = batch_reader_init(&r, payload.data, payload.len, &seq, &count);
	while (!rc && !*changed && (rc = batch_reader_next(&r, &op)) == 1)
		*changed = rw->wants(rw->ctx, &op);
	if (rc < 0 || !*changed)
		return rc < 0 ? rc : LSM_OK;
	lsm_batch_clear(out);
	batch_reader_init(&r, payload.data, payload.len, &seq, &count);
	while ((rc = batch_reader_next(&r, &op)) == 1) {
		if (rw->wants(rw->ctx, &op) && (rc = rw->map(rw->ctx, &op)) < 0)
			return rc;
		if ((rc = batch_add(out, op.type, op.key, op.value)))
			return rc;
	}
	if (rc < 0)
		return rc;
	batch_set_seq(out, seq);
	return LSM_OK;
}

void batch_set_seq(struct lsm_batch *b, uint64_t seq)
{
	char *p = batch_payload(b);
	put_u64le(p, seq);
	put_u32le(p + 8, b->count);
}

int batch_append_ops(struct lsm_batch *dst, const struct lsm_batch *b)
{
	size_t n = batch_payload_len(b) - BATCH_HEADER_SIZE;
	if (batch_payload_len(dst) + n > WAL_MAX_PAYLOAD || (uint64_t)dst->count + b->count > UINT32_MAX)
		return LSM_INVAL;
	if (buf_append(&dst->rep, batch_payload(b) + BATCH_HEADER_SIZE, n))
		return LSM_NOMEM;
	dst->count += b->count;
	dst->puts += b->puts;
	dst->deletes += b->deletes;
	dst->range_deletes += b->range_deletes;
	if (b->max_value > dst->max_value)
		dst->max_value = b->max_value;
	return LSM_OK;
}

int batch_reader_init(struct batch_reader *r, const char *payload, size_t len, uint64_t *seq,
		      uint32_t *count)
{
	if (len < BATCH_HEADER_SIZE)
		return LSM_CORRUPT;
	*seq = get_u64le(payload);
	*count = get_u32le(payload + 8);
	r->p = payload + BATCH_HEADER_SIZE;
	r->end = payload + len;
	r->left = *count;
	/* Every op takes at least 2 bytes: a count beyond that is a lie. */
	if (*seq == 0 || *seq > SEQNO_MAX || *count > (len - BATCH_HEADER_SIZE) / 2 + 1 ||
	    SEQNO_MAX - *seq < *count)
		return LSM_CORRUPT;
	return LSM_OK;
}

int batch_reader_next(struct batch_reader *r, struct batch_op *op)
{
	if (r->left == 0)
		return r->p == r->end ? 0 : LSM_CORRUPT;
	if (r->p >= r->end)
		return LSM_CORRUPT;
	op->type = (unsigned char)*r->p++;
	const char *p = get_lp_slice(r->p, r->end, &op->key);
	if (!p)
		return LSM_CORRUPT;
	switch (op->type) {
	case VT_DELETE:
		op->value = slice_make(NULL, 0);
		break;
	case VT_VALUE:
	case VT_BLOB:
	case VT_RANGE_DELETE:
		p = get_lp_slice(p, r->end, &op->value);
		if (!p)
			return LSM_CORRUPT;
		break;
	default:
		return LSM_CORRUPT;
	}
	r->p = p;
	r->left--;
	return 1;
}
