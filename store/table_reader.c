/* table_reader.c - opens, checks and reads table files: point lookups, iterators, pinned meta blocks. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "bloom.h"
#include "buf.h"
#include "cache.h"
#include "dbformat.h"
#include "hash.h"
#include "lsm.h"
#include "status.h"
#include "table.h"

/* A data block as the block cache holds it: parsed header and the bytes in one allocation. */
struct cached_block {
	struct block b;
	size_t len;
	char data[];
};

static void cached_block_free(void *v, void *arg)
{
	(void)arg;
	free(v);
}

/* Check a block's bounds against the file (before reading it). */
static int check_handle(struct table *t, struct block_handle h)
{
	if (h.offset > t->size || (uint64_t)h.size + BLOCK_TRAILER_SIZE > t->size - h.offset)
		return st_corrupt(t->path, h.offset, "block handle (size %u) runs past the end of the %" PRIu64
				  "-byte file", h.size, t->size);
	return LSM_OK;
}

/* Check the trailer of a block read whole (contents + trailer) at p. */
static int verify_block(struct table *t, struct block_handle h, const char *p)
{
	uint32_t want = get_u32le(p + h.size + 1);
	uint32_t have = (uint32_t)lsm_xxh3(p, (size_t)h.size + 1);
	if (want != have)
		return st_corrupt(t->path, h.offset, "block checksum mismatch (stored %08x, computed %08x)", want, have);
	unsigned kind = (unsigned char)p[h.size];
	if (kind != BLOCK_RAW)
		return st_corrupt(t->path, h.offset, "unknown block compression %u", kind);
	return LSM_OK;
}

/* pread a whole block (contents + trailer) into p (room for h.size + BLOCK_TRAILER_SIZE) and verify it. */
static int read_block_into(struct table *t, struct block_handle h, char *p)
{
	size_t n = (size_t)h.size + BLOCK_TRAILER_SIZE;
	int64_t got = t->env->pread(t->f, p, n, h.offset);
	if (got < 0)
		return st_errno((int)got, "read %s at offset %" PRIu64, t->path, h.offset);
	if ((size_t)got != n)
		return st_corrupt(t->path, h.offset, "short read of a block (%" PRId64 " of %zu bytes): file truncated?",
				  got, n);
	return verify_block(t, h, p);
}

int table_read_block(struct table *t, struct block_handle h, char **out)
{
	*out = NULL;
	int rc = check_handle(t, h);
	if (rc)
		return rc;
	size_t n = (size_t)h.size + BLOCK_TRAILER_SIZE;
	char *p = malloc(n);
	if (!p)
		return st_error(LSM_NOMEM, "out of memory reading %s", t->path);
	if ((rc = read_block_into(t, h, p))) {
		free(p);
		return rc;
	}
	*out = p;
	return LSM_OK;
}

int table_props_decode(struct table_props *p, struct slice s)
{
	memset(p, 0, sizeof *p);
	const char *q = s.data, *end = s.data + s.len;
	while (q < end) {
		uint64_t tag, v;
		struct slice ks;
		if (!(q = get_varint64(q, end, &tag)))
			return LSM_CORRUPT;
		if (tag == TP_SMALLEST || tag == TP_LARGEST) {
			if (!(q = get_lp_slice(q, end, &ks)) || ks.len < IKEY_TRAILER)
				return LSM_CORRUPT;
			struct buf *b = tag == TP_SMALLEST ? &p->smallest : &p->largest;
			b->len = 0;
			if (buf_append(b, ks.data, ks.len))
				return LSM_NOMEM;
			continue;
		}
		if (!(q = get_varint64(q, end, &v)))
			return LSM_CORRUPT;
		switch (tag) {
		case TP_ENTRIES: p->entries = v; break;
		case TP_DELETES: p->deletes = v; break;
		case TP_RANGE_DELS: p->range_dels = v; break;
		case TP_MIN_SEQ: p->min_seq = v; break;
		case TP_MAX_SEQ: p->max_seq = v; break;
		case TP_RAW_KEY_BYTES: p->raw_key_bytes = v; break;
		case TP_RAW_VALUE_BYTES: p->raw_value_bytes = v; break;
		case TP_DATA_BLOCKS: p->data_blocks = v; break;
		default: return LSM_CORRUPT;
		}
	}
	return LSM_OK;
}

static int load_tombstones(struct table *t, struct block_handle h)
{
	char *raw;
	int rc = table_read_block(t, h, &raw);
	if (rc)
		return rc;
	struct block b;
	if (block_parse(&b, raw, h.size)) {
		free(raw);
		return st_corrupt(t->path, h.offset, "malformed range-deletion block");
	}
	struct rd_tombstone *ts = NULL;
	size_t n = 0, cap = 0;
	struct iter *it = block_iter_new(&b, BLOCK_CMP_IKEY, NULL, NULL);
	if (!it) {
		free(raw);
		return st_error(LSM_NOMEM, "out of memory opening %s", t->path);
	}
	/* The keys point into the block iterator's key buffer, which changes: copy into one arena. */
	struct buf keys = {0};
	struct { size_t bo, bl, eo, el; uint64_t seq; } *pos = NULL;
	rc = LSM_OK;
	for (iter_seek_first(it); it->valid; iter_next(it)) {
		if (ikey_type(it->key) != VT_RANGE_DELETE) {
			rc = st_corrupt(t->path, h.offset, "range-deletion block holds an entry of type %u",
					ikey_type(it->key));
			break;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			void *np = realloc(pos, cap * sizeof *pos);
			if (!np) {
				rc = LSM_NOMEM;
				break;
			}
			pos = np;
		}
		struct slice uk = ikey_user(it->key);
		pos[n].bo = keys.len;
		pos[n].bl = uk.len;
		pos[n].seq = ikey_seq(it->key);
		if (buf_append(&keys, uk.data, uk.len)) {
			rc = LSM_NOMEM;
			break;
		}
		pos[n].eo = keys.len;
		pos[n].el = it->value.len;
		if (buf_append(&keys, it->value.data, it->value.len)) {
			rc = LSM_NOMEM;
			break;
		}
		n++;
	}
	if (!rc && it->status)
		rc = st_corrupt(t->path, h.offset, "malformed range-deletion block");
	iter_destroy(it);
	if (!rc && n) {
		ts = malloc(n * sizeof *ts);
		if (!ts)
			rc = LSM_NOMEM;
		for (size_t i = 0; !rc && i < n; i++) {
			ts[i].begin = slice_make(keys.data + pos[i].bo, pos[i].bl);
			ts[i].end = slice_make(keys.data + pos[i].eo, pos[i].el);
			ts[i].seq = pos[i].seq;
		}
		if (!rc)
			rc = rd_list_build(&t->tombstones, ts, n);
	}
	if (rc == LSM_NOMEM)
		rc = st_error(LSM_NOMEM, "out of memory opening %s", t->path);
	free(ts);
	free(pos);
	buf_free(&keys);
	free(raw);
	return rc;
}

int table_open(lsm_env *env, const char *path, uint64_t number, uint64_t size, struct cache *cache,
	       struct table **out)
{
	*out = NULL;
	struct table *t = calloc(1, sizeof *t);
	if (!t || !(t->path = strdup(path))) {
		free(t);
		return st_error(LSM_NOMEM, "out of memory opening %s", path);
	}
	t->env = env;
	t->number = number;
	t->cache = cache;
	t->cache_id = cache ? cache_new_id(cache) : 0;
	int rc, e;
	if (!size && (e = env->file_size(env, path, &size))) {
		rc = st_errno(e, "stat %s", path);
		goto fail;
	}
	t->size = size;
	if ((e = env->open_readable(env, path, &t->f))) {
		rc = st_errno(e, "open %s", path);
		goto fail;
	}
	if (env->map)
		t->map = env->map(t->f, size); /* NULL: pread */
	if (size < TABLE_FOOTER_SIZE) {
		rc = st_corrupt(path, 0, "file of %" PRIu64 " bytes is too short to be a table", size);
		goto fail;
	}
	char ft[TABLE_FOOTER_SIZE];
	int64_t got = env->pread(t->f, ft, sizeof ft, size - TABLE_FOOTER_SIZE);
	if (got < 0) {
		rc = st_errno((int)got, "read %s", path);
		goto fail;
	}
	uint64_t foff = size - TABLE_FOOTER_SIZE;
	if (got != TABLE_FOOTER_SIZE) {
		rc = st_corrupt(path, foff, "short read of the footer: file truncated?");
		goto fail;
	}
	if (get_u64le(ft + 56) != TABLE_MAGIC) {
		rc = st_corrupt(path, foff + 56, "bad magic number: not a table, or truncated");
		goto fail;
	}
	if (get_u32le(ft + 52) != (uint32_t)XXH3_64bits(ft, 52)) {
		rc = st_corrupt(path, foff, "footer checksum mismatch");
		goto fail;
	}
	if (get_u32le(ft + 48) != TABLE_FORMAT_VERSION) {
		rc = st_corrupt(path, foff + 48, "unsupported table format version %u", get_u32le(ft + 48));
		goto fail;
	}
	struct block_handle hs[4];
	for (int i = 0; i < 4; i++) {
		hs[i].offset = get_u64le(ft + 12 * i);
		hs[i].size = get_u32le(ft + 12 * i + 8);
	}
	t->h_filter = hs[0];
	t->h_rangedel = hs[1];
	t->h_props = hs[2];
	t->h_index = hs[3];
	t->format_version = get_u32le(ft + 48);
	/* index */
	if ((rc = table_read_block(t, hs[3], &t->index_data)))
		goto fail;
	if (block_parse(&t->index, t->index_data, hs[3].size)) {
		rc = st_corrupt(path, hs[3].offset, "malformed index block");
		goto fail;
	}
	/* filter (size 0: the table was built without one) */
	if (hs[0].size) {
		if ((rc = table_read_block(t, hs[0], &t->filter_data)))
			goto fail;
		t->filter = slice_make(t->filter_data, hs[0].size);
		if (bloom_check(t->filter)) {
			rc = st_corrupt(path, hs[0].offset, "malformed bloom filter");
			goto fail;
		}
	}
	/* properties */
	char *pd;
	if ((rc = table_read_block(t, hs[2], &pd)))
		goto fail;
	rc = table_props_decode(&t->props, slice_make(pd, hs[2].size));
	free(pd);
	if (rc) {
		rc = rc == LSM_NOMEM ? st_error(rc, "out of memory opening %s", path)
				     : st_corrupt(path, hs[2].offset, "malformed properties block");
		goto fail;
	}
	if ((rc = load_tombstones(t, hs[1])))
		goto fail;
	t->data_end = hs[0].size ? hs[0].offset : hs[1].offset;
	*out = t;
	return LSM_OK;
fail:
	table_close(t);
	return rc;
}

void table_close(struct table *t)
{
	if (!t)
		return;
	if (t->f)
		t->env->close_readable(t->f);
	free(t->index_data);
	free(t->filter_data);
	rd_list_free(&t->tombstones);
	table_props_free(&t->props);
	free(t->path);
	free(t);
}

static int decode_handle(struct slice v, struct block_handle *h)
{
	uint64_t off, sz;
	const char *p = get_varint64(v.data, v.data + v.len, &off);
	if (!p || !(p = get_varint64(p, v.data + v.len, &sz)) || sz > UINT32_MAX)
		return LSM_CORRUPT;
	h->offset = off;
	h->size = (uint32_t)sz;
	return LSM_OK;
}

/* A data block in use: parsed, and pinned by a cache handle or owned (freed by put_block). */
struct block_ref {
	struct block b;
	struct cache_handle *ch;
	struct cached_block *owned;
};

/* The data block at h. A table read through a mapping uses the block where the mapping holds it, after
 * checking its checksum, and bypasses the block cache: the page cache already holds the bytes, and
 * keeping a verified-block entry per block costs a cache insert and an eviction on every miss, which
 * on a scan of a large table (every block a miss) was 15 % of the time per block, more than the
 * checksum it saves on a hit. Other tables go through the block cache (a pread on a miss). */
static int get_block(struct table *t, struct block_handle h, int fill, struct block_ref *r)
{
	r->ch = NULL;
	r->owned = NULL;
	int rc;
	if (t->map) {
		if ((rc = check_handle(t, h)))
			return rc;
		const char *p = t->map + h.offset;
		if ((rc = verify_block(t, h, p)))
			return rc;
		if (block_parse(&r->b, p, h.size))
			return st_corrupt(t->path, h.offset, "malformed data block");
		return LSM_OK;
	}
	if (t->cache && (r->ch = cache_lookup(t->cache, t->cache_id, h.offset))) {
		r->b = ((struct cached_block *)cache_value(r->ch))->b;
		return LSM_OK;
	}
	if ((rc = check_handle(t, h)))
		return rc;
	/* One allocation that the cache entry keeps: read straight into it. */
	struct cached_block *cb = malloc(sizeof *cb + h.size + BLOCK_TRAILER_SIZE);
	if (!cb)
		return st_error(LSM_NOMEM, "out of memory reading %s", t->path);
	if ((rc = read_block_into(t, h, cb->data))) {
		free(cb);
		return rc;
	}
	cb->len = h.size;
	if (block_parse(&cb->b, cb->data, h.size)) {
		free(cb);
		return st_corrupt(t->path, h.offset, "malformed data block");
	}
	r->b = cb->b;
	if (t->cache && fill)
		r->ch = cache_insert(t->cache, t->cache_id, h.offset, cb, sizeof *cb + h.size + BLOCK_TRAILER_SIZE,
				     cached_block_free, NULL);
	if (!r->ch)
		r->owned = cb;
	return LSM_OK;
}

static void put_block(struct table *t, struct block_ref *r)
{
	if (r->ch)
		cache_release(t->cache, r->ch);
	free(r->owned);
	r->ch = NULL;
	r->owned = NULL;
}

int table_get(struct table *t, struct slice key, uint64_t hash, uint64_t snap, uint64_t *range_seq,
	      struct table_get_result *res, uint64_t *bloom_skips)
{
	if (t->tombstones.n) {
		uint64_t s = rd_list_covering(&t->tombstones, key, snap);
		if (s > *range_seq)
			*range_seq = s;
	}
	if (t->filter.len && !bloom_may_contain(t->filter, hash)) {
		if (bloom_skips)
			(*bloom_skips)++;
		return 0;
	}
	char stackbuf[256];
	char *ik = key.len + IKEY_TRAILER <= sizeof stackbuf ? stackbuf : malloc(key.len + IKEY_TRAILER);
	if (!ik)
		return st_error(LSM_NOMEM, "out of memory");
	ikey_build(ik, key, snap, VT_SEEK);
	struct slice target = slice_make(ik, key.len + IKEY_TRAILER);
	int rc = 0;
	struct block_iter idx;
	block_iter_init(&idx, &t->index, BLOCK_CMP_IKEY);
	iter_seek(&idx.base, target);
	if (!idx.base.valid) {
		if (idx.base.status)
			rc = st_corrupt(t->path, t->h_index.offset, "malformed index block");
		goto out_idx;
	}
	struct block_handle h;
	if (decode_handle(idx.base.value, &h)) {
		rc = st_corrupt(t->path, t->h_index.offset + idx.cur, "malformed block handle in the index");
		goto out_idx;
	}
	struct block_ref br;
	if ((rc = get_block(t, h, 1, &br)))
		goto out_idx;
	struct block_iter bi;
	block_iter_init(&bi, &br.b, BLOCK_CMP_IKEY);
	iter_seek(&bi.base, target);
	if (bi.base.valid) {
		struct slice uk = ikey_user(bi.base.key);
		if (uk.len == key.len && !memcmp(uk.data, key.data, key.len)) {
			uint64_t tr = ikey_trailer(bi.base.key);
			res->seq = tr >> 8;
			res->type = (unsigned)(tr & 0xff);
			rc = 1;
			if (vt_is_put(res->type) && res->value) {
				struct lsm_buf *v = res->value;
				size_t n = bi.base.value.len;
				if (lsm_buf_fit(v, n))
					rc = st_error(LSM_NOMEM, "out of memory");
				if (rc == 1) {
					if (n)
						memcpy(v->data, bi.base.value.data, n);
					v->len = n;
				}
			}
		}
	} else if (bi.base.status) {
		rc = st_corrupt(t->path, h.offset, "malformed data block");
	}
	block_iter_cleanup(&bi);
	put_block(t, &br);
out_idx:
	block_iter_cleanup(&idx);
	if (ik != stackbuf)
		free(ik);
	return rc;
}

/* ---------------------------------------------------------------- iterator */

/* Two levels: the index block picks data blocks; a block iterator walks each. */
struct table_iter {
	struct iter base;
	struct table *t;
	int fill;
	struct block_iter idx;
	struct iter *data;
	struct block_ref blk;
	uint64_t blk_off;
};

static void ti_release_block(struct table_iter *ti)
{
	if (ti->data) {
		block_iter_cleanup((struct block_iter *)ti->data);
		ti->data = NULL;
		put_block(ti->t, &ti->blk);
	}
}

/* Load the block the index iterator points at. */
static int ti_load(struct table_iter *ti)
{
	ti_release_block(ti);
	struct block_handle h;
	if (decode_handle(ti->idx.base.value, &h)) {
		ti->base.status = st_corrupt(ti->t->path, ti->t->h_index.offset + ti->idx.cur,
					     "malformed block handle in the index");
		return -1;
	}
	int rc = get_block(ti->t, h, ti->fill, &ti->blk);
	if (rc) {
		ti->base.status = rc;
		return -1;
	}
	ti->blk_off = h.offset;
	if (ti->t->map) {
		/* A scan reads the next block soon: start loading its first cache lines (and the
		 * translation of its page) while this one is checksummed. Hardware prefetchers stop at
		 * page boundaries, and a 4 KiB block spans two pages. */
		uint64_t next = h.offset + h.size + BLOCK_TRAILER_SIZE;
		if (next < ti->t->data_end)
			__builtin_prefetch(ti->t->map + next);
		if (next + 4096 < ti->t->data_end)
			__builtin_prefetch(ti->t->map + next + 4096);
	}
	return 0;
}

/* The embedded data iterator lives in the table iterator (no allocation per block). */
struct table_iter_full {
	struct table_iter ti;
	struct block_iter data_it;
};

static void ti_settle(struct table_iter *ti)
{
	struct table_iter_full *f = (struct table_iter_full *)ti;
	for (;;) {
		if (ti->data && ti->data->valid) {
			ti->base.valid = 1;
			ti->base.key = ti->data->key;
			ti->base.value = ti->data->value;
			return;
		}
		if (ti->data && ti->data->status) {
			ti->base.status = st_corrupt(ti->t->path, ti->blk_off, "malformed data block");
			break;
		}
		/* Next block. */
		if (ti->data) {
			iter_next(&ti->idx.base);
		}
		if (!ti->idx.base.valid) {
			if (ti->idx.base.status)
				ti->base.status = st_corrupt(ti->t->path, ti->t->h_index.offset, "malformed index block");
			break;
		}
		if (ti_load(ti))
			break;
		block_iter_init(&f->data_it, &ti->blk.b, BLOCK_CMP_IKEY);
		ti->data = &f->data_it.base;
		iter_seek_first(ti->data);
	}
	ti_release_block(ti);
	ti->base.valid = 0;
}

static void ti_seek_first(struct iter *it)
{
	struct table_iter *ti = (struct table_iter *)it;
	ti_release_block(ti);
	iter_seek_first(&ti->idx.base);
	if (ti->idx.base.valid && !ti_load(ti)) {
		struct table_iter_full *f = (struct table_iter_full *)ti;
		block_iter_init(&f->data_it, &ti->blk.b, BLOCK_CMP_IKEY);
		ti->data = &f->data_it.base;
		iter_seek_first(ti->data);
	}
	ti_settle(ti);
}

static void ti_seek(struct iter *it, struct slice target)
{
	struct table_iter *ti = (struct table_iter *)it;
	ti_release_block(ti);
	iter_seek(&ti->idx.base, target);
	if (ti->idx.base.valid && !ti_load(ti)) {
		struct table_iter_full *f = (struct table_iter_full *)ti;
		block_iter_init(&f->data_it, &ti->blk.b, BLOCK_CMP_IKEY);
		ti->data = &f->data_it.base;
		iter_seek(ti->data, target);
	}
	ti_settle(ti);
}

static void ti_next(struct iter *it)
{
	struct table_iter *ti = (struct table_iter *)it;
	iter_next(ti->data);
	ti_settle(ti);
}

static void ti_destroy(struct iter *it)
{
	struct table_iter *ti = (struct table_iter *)it;
	ti_release_block(ti);
	block_iter_cleanup(&ti->idx);
	free(ti);
}

static const struct iter_ops table_iter_ops = {ti_seek_first, ti_seek, ti_next, ti_destroy};

struct iter *table_iter_new(struct table *t, int fill_cache)
{
	struct table_iter_full *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	struct table_iter *ti = &f->ti;
	ti->base.ops = &table_iter_ops;
	ti->t = t;
	ti->fill = fill_cache;
	block_iter_init(&ti->idx, &t->index, BLOCK_CMP_IKEY);
	return &ti->base;
}
