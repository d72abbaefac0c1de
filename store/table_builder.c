/* table_builder.c - writes a table file: data blocks, bloom filter, range tombstones, props, index, footer. */
#include <inttypes.h>
#include <stdlib.h>
/* The streaming state's layout is needed to keep it on the stack (hash.h includes xxhash.h). */
#define XXH_STATIC_LINKING_ONLY

#include "bloom.h"
#include "dbformat.h"
#include "hash.h"
#include "lsm.h"
#include "status.h"
#include "table.h"

/* Table output is staged in user space and written in big appends: a table is not an acknowledged
 * write (it counts only once synced and named by the manifest), so buffering costs no durability. */
#define TB_WBUF (256u << 10)

struct table_builder {
	lsm_env *env;
	lsm_wfile *f;
	char *path;
	struct table_opts o;
	uint64_t offset;           /* bytes handed to the env + bytes staged */
	struct buf wbuf;
	struct block_builder data;
	struct block_builder index;
	struct bloom_builder bloom;
	struct buf last_key;       /* last internal key added */
	int pending_index;         /* a finished data block awaits its index entry */
	struct block_handle pending;
	struct table_props props;
	struct rd_tombstone *rts;  /* range tombstones (keys malloc'd) */
	size_t nrts, caprts;
	int err;
};

static int tb_flush_wbuf(struct table_builder *tb)
{
	if (!tb->wbuf.len)
		return LSM_OK;
	int e = tb->env->append(tb->f, tb->wbuf.data, tb->wbuf.len);
	if (e)
		return st_errno(e, "write %s", tb->path);
	tb->wbuf.len = 0;
	return LSM_OK;
}

static int tb_write(struct table_builder *tb, const void *p, size_t n)
{
	if (tb->wbuf.len + n > TB_WBUF) {
		int rc = tb_flush_wbuf(tb);
		if (rc)
			return rc;
	}
	if (n > TB_WBUF) {
		int e = tb->env->append(tb->f, p, n);
		if (e)
			return st_errno(e, "write %s", tb->path);
	} else if (buf_append(&tb->wbuf, p, n)) {
		return st_error(LSM_NOMEM, "out of memory writing %s", tb->path);
	}
	tb->offset += n;
	return LSM_OK;
}

/* Write contents + trailer; *h receives where. */
static int tb_write_block(struct table_builder *tb, struct slice contents, struct block_handle *h)
{
	if (contents.len > UINT32_MAX)
		return st_error(LSM_INVAL, "block of %zu bytes in %s", contents.len, tb->path);
	h->offset = tb->offset;
	h->size = (uint32_t)contents.len;
	char trailer[BLOCK_TRAILER_SIZE];
	trailer[0] = BLOCK_RAW;
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	lsm_xxh3_update(&st, contents.data, contents.len);
	XXH3_64bits_update(&st, trailer, 1);
	put_u32le(trailer + 1, (uint32_t)XXH3_64bits_digest(&st));
	int rc = tb_write(tb, contents.data, contents.len);
	return rc ? rc : tb_write(tb, trailer, sizeof trailer);
}

int table_builder_open(lsm_env *env, const char *path, const struct table_opts *o, struct table_builder **out)
{
	*out = NULL;
	struct table_builder *tb = calloc(1, sizeof *tb);
	if (!tb || !(tb->path = strdup(path))) {
		free(tb);
		return st_error(LSM_NOMEM, "out of memory creating %s", path);
	}
	int e = env->new_writable(env, path, &tb->f);
	if (e) {
		free(tb->path);
		free(tb);
		return st_errno(e, "create %s", path);
	}
	tb->env = env;
	tb->o = *o;
	if (tb->o.block_size < 256)
		tb->o.block_size = 256;
	bb_init(&tb->data, o->restart_interval);
	bb_init(&tb->index, 1); /* every index entry a restart: a seek is a pure binary search */
	bloom_builder_init(&tb->bloom, o->bloom_bits);
	*out = tb;
	return LSM_OK;
}

/* The shortest user key s with a <= s < b (both user keys, a < b), as an index separator: saves index
 * space and lets a seek skip a block whose last key is just below the target. */
static int separator(struct buf *out, struct slice a_ik, struct slice b_ik)
{
	struct slice a = ikey_user(a_ik), b = ikey_user(b_ik);
	size_t n = a.len < b.len ? a.len : b.len, i = 0;
	while (i < n && a.data[i] == b.data[i])
		i++;
	out->len = 0;
	if (i < n && (unsigned char)a.data[i] < 0xff && (unsigned char)a.data[i] + 1 < (unsigned char)b.data[i]) {
		if (buf_append(out, a.data, i + 1))
			return LSM_NOMEM;
		out->data[i]++;
		if (buf_reserve(out, IKEY_TRAILER))
			return LSM_NOMEM;
		/* The largest trailer: sorts before every real entry of this user key. */
		put_u64le(out->data + out->len, pack_trailer(SEQNO_MAX, VT_MAX));
		out->len += IKEY_TRAILER;
		return LSM_OK;
	}
	return buf_append(out, a_ik.data, a_ik.len);
}

static int tb_add_index(struct table_builder *tb, struct slice next_key)
{
	char hv[2 * VARINT64_MAX];
	size_t hn = put_varint64(hv, tb->pending.offset);
	hn += put_varint64(hv + hn, tb->pending.size);
	struct buf sep = {0};
	int rc;
	if (next_key.data)
		rc = separator(&sep, slice_make(tb->last_key.data, tb->last_key.len), next_key);
	else
		rc = buf_append(&sep, tb->last_key.data, tb->last_key.len);
	if (!rc)
		rc = bb_add(&tb->index, slice_make(sep.data, sep.len), slice_make(hv, hn));
	buf_free(&sep);
	tb->pending_index = 0;
	return rc ? st_error(rc, "out of memory building %s", tb->path) : LSM_OK;
}

static int tb_flush_data(struct table_builder *tb)
{
	if (bb_empty(&tb->data))
		return LSM_OK;
	struct slice c = bb_finish(&tb->data);
	if (!c.data)
		return st_error(LSM_NOMEM, "out of memory building %s", tb->path);
	int rc = tb_write_block(tb, c, &tb->pending);
	bb_reset(&tb->data);
	if (rc)
		return rc;
	tb->pending_index = 1;
	tb->props.data_blocks++;
	return LSM_OK;
}

static int key_bounds(struct table_builder *tb, struct slice ik_lo, struct slice ik_hi)
{
	struct table_props *p = &tb->props;
	if (!p->smallest.len || ikey_cmp(ik_lo, slice_make(p->smallest.data, p->smallest.len)) < 0) {
		p->smallest.len = 0;
		if (buf_append(&p->smallest, ik_lo.data, ik_lo.len))
			return LSM_NOMEM;
	}
	if (!p->largest.len || ikey_cmp(ik_hi, slice_make(p->largest.data, p->largest.len)) > 0) {
		p->largest.len = 0;
		if (buf_append(&p->largest, ik_hi.data, ik_hi.len))
			return LSM_NOMEM;
	}
	return LSM_OK;
}

static void note_seq(struct table_props *p, uint64_t seq)
{
	if (p->entries + p->range_dels == 0 || seq < p->min_seq)
		p->min_seq = seq;
	if (seq > p->max_seq)
		p->max_seq = seq;
}

int table_builder_add(struct table_builder *tb, struct slice ikey, struct slice value)
{
	if (tb->err)
		return tb->err;
	int rc;
	if (tb->pending_index && (rc = tb_add_index(tb, ikey)))
		return tb->err = rc;
	uint64_t seq = ikey_seq(ikey);
	unsigned type = ikey_type(ikey);
	note_seq(&tb->props, seq);
	if ((rc = key_bounds(tb, ikey, ikey)) || (tb->o.bloom_bits > 0 && bloom_add(&tb->bloom, ikey_user(ikey))) ||
	    bb_add(&tb->data, ikey, value)) {
		return tb->err = st_error(LSM_NOMEM, "out of memory building %s", tb->path);
	}
	tb->last_key.len = 0;
	if (buf_append(&tb->last_key, ikey.data, ikey.len))
		return tb->err = st_error(LSM_NOMEM, "out of memory building %s", tb->path);
	tb->props.entries++;
	tb->props.deletes += type == VT_DELETE;
	tb->props.raw_key_bytes += ikey.len;
	tb->props.raw_value_bytes += value.len;
	if (bb_estimate(&tb->data) >= tb->o.block_size && (rc = tb_flush_data(tb)))
		return tb->err = rc;
	return LSM_OK;
}

int table_builder_add_range(struct table_builder *tb, struct slice begin, struct slice end, uint64_t seq)
{
	if (tb->err)
		return tb->err;
	if (slice_cmp(begin, end) >= 0)
		return LSM_OK; /* an empty range hides nothing: keep it out of the table and its bounds */
	if (tb->nrts == tb->caprts) {
		size_t cap = tb->caprts ? tb->caprts * 2 : 16;
		struct rd_tombstone *p = realloc(tb->rts, cap * sizeof *p);
		if (!p)
			return tb->err = st_error(LSM_NOMEM, "out of memory building %s", tb->path);
		tb->rts = p;
		tb->caprts = cap;
	}
	char *k = malloc(begin.len + end.len + 1);
	if (!k)
		return tb->err = st_error(LSM_NOMEM, "out of memory building %s", tb->path);
	memcpy(k, begin.data, begin.len);
	memcpy(k + begin.len, end.data, end.len);
	struct rd_tombstone *t = &tb->rts[tb->nrts++];
	t->begin = slice_make(k, begin.len);
	t->end = slice_make(k + begin.len, end.len);
	t->seq = seq;
	note_seq(&tb->props, seq);
	tb->props.range_dels++;
	/* The table's key range must include the tombstone: (begin, seq) .. (end, SEQNO_MAX). */
	char lo[512], hi[512];
	char *lp = begin.len + 8 <= sizeof lo ? lo : malloc(begin.len + 8);
	char *hp = end.len + 8 <= sizeof hi ? hi : malloc(end.len + 8);
	int rc = LSM_NOMEM;
	if (lp && hp) {
		ikey_build(lp, begin, seq, VT_RANGE_DELETE);
		ikey_build(hp, end, SEQNO_MAX, VT_RANGE_DELETE);
		rc = key_bounds(tb, slice_make(lp, begin.len + 8), slice_make(hp, end.len + 8));
	}
	if (lp != lo)
		free(lp);
	if (hp != hi)
		free(hp);
	return rc ? (tb->err = st_error(rc, "out of memory building %s", tb->path)) : LSM_OK;
}

uint64_t table_builder_size(const struct table_builder *tb)
{
	return tb->offset + bb_estimate(&tb->data);
}

uint64_t table_builder_entries(const struct table_builder *tb)
{
	return tb->props.entries + tb->props.range_dels;
}

static int cmp_rts(const void *a, const void *b)
{
	const struct rd_tombstone *x = a, *y = b;
	int c = slice_cmp(x->begin, y->begin);
	if (c)
		return c;
	return x->seq > y->seq ? -1 : x->seq < y->seq; /* internal-key order: newer first */
}

static int encode_props(const struct table_props *p, struct buf *out)
{
	int rc = 0;
	uint64_t vals[][2] = {
		{TP_ENTRIES, p->entries},       {TP_DELETES, p->deletes},
		{TP_RANGE_DELS, p->range_dels}, {TP_MIN_SEQ, p->min_seq},
		{TP_MAX_SEQ, p->max_seq},       {TP_RAW_KEY_BYTES, p->raw_key_bytes},
		{TP_RAW_VALUE_BYTES, p->raw_value_bytes}, {TP_DATA_BLOCKS, p->data_blocks},
	};
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
		rc |= buf_put_varint(out, vals[i][0]) | buf_put_varint(out, vals[i][1]);
	rc |= buf_put_varint(out, TP_SMALLEST) | buf_put_lp(out, p->smallest.data, p->smallest.len);
	rc |= buf_put_varint(out, TP_LARGEST) | buf_put_lp(out, p->largest.data, p->largest.len);
	return rc ? LSM_NOMEM : LSM_OK;
}

static void tb_free(struct table_builder *tb)
{
	for (size_t i = 0; i < tb->nrts; i++)
		free((void *)tb->rts[i].begin.data);
	free(tb->rts);
	bb_free(&tb->data);
	bb_free(&tb->index);
	bloom_builder_free(&tb->bloom);
	buf_free(&tb->last_key);
	buf_free(&tb->wbuf);
	table_props_free(&tb->props);
	free(tb->path);
	free(tb);
}

int table_builder_finish(struct table_builder *tb, struct table_props *props, uint64_t *file_size)
{
	int rc = tb->err;
	struct block_handle fh = {0, 0}, rh, ph, ih;
	struct buf tmp = {0};
	if (!rc)
		rc = tb_flush_data(tb);
	if (!rc && tb->pending_index)
		rc = tb_add_index(tb, slice_make(NULL, 0));
	if (!rc && tb->o.bloom_bits > 0) {
		rc = bloom_finish(&tb->bloom, &tmp) ? st_error(LSM_NOMEM, "out of memory building %s", tb->path)
						     : tb_write_block(tb, slice_make(tmp.data, tmp.len), &fh);
	}
	if (!rc) {
		/* Range tombstones in internal-key order, as a block of (begin ikey -> end). */
		struct block_builder rb;
		bb_init(&rb, 16);
		if (tb->nrts)
			qsort(tb->rts, tb->nrts, sizeof *tb->rts, cmp_rts);
		for (size_t i = 0; i < tb->nrts && !rc; i++) {
			tmp.len = 0;
			if (buf_reserve(&tmp, tb->rts[i].begin.len + 8)) {
				rc = LSM_NOMEM;
				break;
			}
			ikey_build(tmp.data, tb->rts[i].begin, tb->rts[i].seq, VT_RANGE_DELETE);
			rc = bb_add(&rb, slice_make(tmp.data, tb->rts[i].begin.len + 8), tb->rts[i].end);
		}
		struct slice c = rc ? slice_make(NULL, 0) : bb_finish(&rb);
		if (!rc && !c.data)
			rc = LSM_NOMEM;
		if (rc)
			rc = st_error(rc, "out of memory building %s", tb->path);
		else
			rc = tb_write_block(tb, c, &rh);
		bb_free(&rb);
	}
	if (!rc) {
		tmp.len = 0;
		rc = encode_props(&tb->props, &tmp) ? st_error(LSM_NOMEM, "out of memory building %s", tb->path)
						    : tb_write_block(tb, slice_make(tmp.data, tmp.len), &ph);
	}
	if (!rc) {
		struct slice c = bb_finish(&tb->index);
		rc = c.data ? tb_write_block(tb, c, &ih) : st_error(LSM_NOMEM, "out of memory building %s", tb->path);
	}
	if (!rc) {
		char ft[TABLE_FOOTER_SIZE];
		memset(ft, 0, sizeof ft);
		struct block_handle hs[4] = {fh, rh, ph, ih};
		for (int i = 0; i < 4; i++) {
			put_u64le(ft + 12 * i, hs[i].offset);
			put_u32le(ft + 12 * i + 8, hs[i].size);
		}
		put_u32le(ft + 48, TABLE_FORMAT_VERSION);
		put_u32le(ft + 52, (uint32_t)XXH3_64bits(ft, 52));
		put_u64le(ft + 56, TABLE_MAGIC);
		rc = tb_write(tb, ft, sizeof ft);
	}
	if (!rc)
		rc = tb_flush_wbuf(tb);
	if (!rc) {
		int e = tb->env->sync(tb->f);
		if (e)
			rc = st_errno(e, "sync %s", tb->path);
	}
	int e = tb->env->close_writable(tb->f);
	if (!rc && e)
		rc = st_errno(e, "close %s", tb->path);
	buf_free(&tmp);
	if (!rc) {
		if (file_size)
			*file_size = tb->offset;
		if (props) {
			*props = tb->props;
			memset(&tb->props, 0, sizeof tb->props); /* ownership of the key buffers moves */
		}
	}
	tb_free(tb);
	return rc;
}

void table_builder_abandon(struct table_builder *tb)
{
	if (!tb)
		return;
	tb->env->close_writable(tb->f);
	tb_free(tb);
}

void table_props_free(struct table_props *p)
{
	buf_free(&p->smallest);
	buf_free(&p->largest);
}
