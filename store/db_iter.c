/* db_iter.c - user-facing iterators: a merge of every source, filtered to one snapshot, with point and
 * range tombstones applied. */
#include <stdlib.h>
#include <string.h>

#include "db_impl.h"
#include "dbformat.h"
#include "iter.h"
#include "status.h"
#include "table.h"

/* ---------------------------------------------------------------- level iterator */

/* Walks the disjoint, sorted tables of one level >= 1, opening each through the table cache only
 * when the walk reaches it. */
struct level_iter {
	struct iter base;
	struct vset *vs;
	struct file_meta **files;
	int n;
	int idx;
	int fill;
	struct iter *cur;
};

static void li_close_cur(struct level_iter *li)
{
	iter_destroy(li->cur);
	li->cur = NULL;
}

static int li_open(struct level_iter *li, int idx)
{
	li_close_cur(li);
	li->idx = idx;
	if (idx >= li->n)
		return 0;
	int rc = vset_table_iter(li->vs, li->files[idx], li->fill, &li->cur);
	if (rc) {
		li->base.status = rc;
		return -1;
	}
	return 0;
}

static void li_settle(struct level_iter *li)
{
	while (li->cur && !li->cur->valid) {
		if (li->cur->status) {
			li->base.status = li->cur->status;
			break;
		}
		if (li_open(li, li->idx + 1))
			break;
		if (li->cur)
			iter_seek_first(li->cur);
	}
	if (li->cur && li->cur->valid && !li->base.status) {
		li->base.valid = 1;
		li->base.key = li->cur->key;
		li->base.value = li->cur->value;
	} else {
		li->base.valid = 0;
	}
}

static void li_seek_first(struct iter *it)
{
	struct level_iter *li = (struct level_iter *)it;
	if (!li_open(li, 0) && li->cur)
		iter_seek_first(li->cur);
	li_settle(li);
}

static void li_seek(struct iter *it, struct slice target)
{
	struct level_iter *li = (struct level_iter *)it;
	int lo = 0, hi = li->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		struct file_meta *f = li->files[mid];
		if (ikey_cmp(slice_make(f->largest.data, f->largest.len), target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!li_open(li, lo) && li->cur)
		iter_seek(li->cur, target);
	li_settle(li);
}

static void li_next(struct iter *it)
{
	struct level_iter *li = (struct level_iter *)it;
	iter_next(li->cur);
	li_settle(li);
}

static void li_destroy(struct iter *it)
{
	struct level_iter *li = (struct level_iter *)it;
	li_close_cur(li);
	free(li);
}

static const struct iter_ops level_iter_ops = {li_seek_first, li_seek, li_next, li_destroy};

/* The version must outlive the iterator (the caller holds a reference). */
struct iter *level_iter_new(struct vset *vs, struct file_meta **files, int n, int fill)
{
	struct level_iter *li = calloc(1, sizeof *li);
	if (!li)
		return NULL;
	li->base.ops = &level_iter_ops;
	li->vs = vs;
	li->files = files;
	li->n = n;
	li->fill = fill;
	return &li->base;
}

/* ---------------------------------------------------------------- the db iterator */

struct rd_source {
	struct rd_list own;       /* a memtable's snapshot (owned) */
	const struct rd_list *l;  /* the list used: &own or a pinned table's */
	void *handle;             /* table cache pin, if a table's */
	struct rd_cursor cur;
};

struct lsm_iter {
	lsm_db *db;
	struct superversion *sv;
	uint64_t snap;
	struct iter *m;            /* merge of every source */
	struct rd_source *rd;
	int nrd;
	int valid;
	int status;
	struct buf key;            /* current user key (a copy: the merge moves on) */
	struct slice value;
	struct lsm_buf blobval;    /* the current value when it lives in a blob file */
	int blob_pending;          /* value is still the reference: read on lsm_iter_value (key-only
				    * walks never read blob files) */
};

/* The next free source slot (it->rd never moves: sized for every source at creation). */
static struct rd_source *next_rd(struct lsm_iter *it)
{
	struct rd_source *src = &it->rd[it->nrd];
	memset(src, 0, sizeof *src);
	return src;
}

static void commit_rd(struct lsm_iter *it, struct rd_source *src, const struct rd_list *l)
{
	src->l = l;
	rd_cursor_init(&src->cur, l);
	it->nrd++;
}

lsm_iter *lsm_iter_new(lsm_db *db, const struct lsm_read_options *ro)
{
	struct lsm_iter *it = calloc(1, sizeof *it);
	if (!it) {
		st_error(LSM_NOMEM, "out of memory");
		return NULL;
	}
	it->db = db;
	it->snap = ro && ro->snapshot ? ro->snapshot->seq : atomic_load_explicit(&db->visible_seq, memory_order_acquire);
	it->sv = sv_acquire(db);
	int fill = !(ro && ro->dont_fill_cache);
	struct superversion *sv = it->sv;
	struct version *v = sv->v;
	int nsrc = 1 + sv->nimm + v->nfiles[0] + NUM_LEVELS;
	struct iter **ch = calloc((size_t)nsrc, sizeof *ch);
	int ntables = 0;
	for (int l = 0; l < NUM_LEVELS; l++)
		ntables += v->nfiles[l];
	it->rd = calloc((size_t)(1 + sv->nimm + ntables), sizeof *it->rd);
	int n = 0, rc = LSM_OK;
	if (!ch || !it->rd) {
		rc = LSM_NOMEM;
		goto fail;
	}
	struct memtable *mems[MAX_IMM + 1];
	int nm = 0;
	mems[nm++] = sv->mem;
	for (int i = 0; i < sv->nimm; i++)
		mems[nm++] = sv->imm[i];
	for (int i = 0; i < nm; i++) {
		if (!(ch[n] = memtable_iter_new(mems[i]))) {
			rc = LSM_NOMEM;
			goto fail;
		}
		n++;
		struct rd_source *src = next_rd(it);
		if (memtable_range_snapshot(mems[i], slice_make(NULL, 0), slice_make(NULL, 0), &src->own)) {
			rc = LSM_NOMEM;
			goto fail;
		}
		if (src->own.n)
			commit_rd(it, src, &src->own);
	}
	for (int i = 0; i < v->nfiles[0]; i++) {
		if ((rc = vset_table_iter(db->vs, v->files[0][i], fill, &ch[n])))
			goto fail;
		n++;
	}
	for (int l = 1; l < NUM_LEVELS; l++) {
		if (!v->nfiles[l])
			continue;
		if (!(ch[n] = level_iter_new(db->vs, v->files[l], v->nfiles[l], fill))) {
			rc = LSM_NOMEM;
			goto fail;
		}
		n++;
	}
	/* Range tombstones of tables: pinned for the iterator's life so their lists stay valid. */
	for (int l = 0; l < NUM_LEVELS; l++)
		for (int i = 0; i < v->nfiles[l]; i++) {
			if (!v->files[l][i]->range_dels)
				continue;
			struct table *t;
			struct rd_source *src = next_rd(it);
			if ((rc = vset_table(db->vs, v->files[l][i], &t, &src->handle)))
				goto fail;
			commit_rd(it, src, &t->tombstones);
		}
	it->m = iter_merge_new(ch, n);
	free(ch);
	ch = NULL;
	if (!it->m) {
		rc = LSM_NOMEM;
		goto fail;
	}
	return it;
fail:
	for (int i = 0; ch && i < n; i++)
		iter_destroy(ch[i]);
	free(ch);
	it->status = rc == LSM_NOMEM ? st_error(rc, "out of memory") : rc;
	/* Keep the handle usable: an invalid iterator reporting the error. */
	for (int i = 0; i < it->nrd; i++) {
		rd_list_free(&it->rd[i].own);
		if (it->rd[i].handle)
			vset_table_release(db->vs, it->rd[i].handle);
	}
	it->nrd = 0;
	if (!(it->m = iter_empty_new(it->status))) {
		sv_release(it->sv);
		free(it->rd);
		free(it);
		return NULL;
	}
	return it;
}

/* Is user key uk at seqno seq hidden by a range tombstone visible at the snapshot? */
static int covered(struct lsm_iter *it, struct slice uk, uint64_t seq)
{
	for (int i = 0; i < it->nrd; i++)
		if (rd_cursor_covering(&it->rd[i].cur, uk, it->snap) > seq)
			return 1;
	return 0;
}

/* From the merge's position, find the next user key whose newest visible version is a live value. */
static void find_next(struct lsm_iter *it, int skipping)
{
	struct iter *m = it->m;
	while (m->valid) {
		struct slice ik = m->key;
		if (ik.len < IKEY_TRAILER) {
			it->status = st_error(LSM_CORRUPT, "internal key of %zu bytes", ik.len);
			break;
		}
		uint64_t tr = ikey_trailer(ik);
		struct slice uk = ikey_user(ik);
		if ((tr >> 8) > it->snap ||
		    (skipping && slice_cmp(uk, slice_make(it->key.data, it->key.len)) == 0)) {
			iter_next(m);
			continue;
		}
		/* The newest visible version of uk: it decides. */
		it->key.len = 0;
		if (buf_append(&it->key, uk.data, uk.len)) {
			it->status = st_error(LSM_NOMEM, "out of memory");
			break;
		}
		skipping = 1;
		if (!vt_is_put(tr & 0xff) || covered(it, uk, tr >> 8)) {
			iter_next(m);
			continue;
		}
		it->blob_pending = (tr & 0xff) == VT_BLOB;
		it->value = m->value;
		it->valid = 1;
		return;
	}
	if (!it->status && m->status)
		it->status = m->status;
	it->valid = 0;
}

void lsm_iter_seek_first(lsm_iter *it)
{
	it->valid = 0;
	if (it->status)
		return;
	for (int i = 0; i < it->nrd; i++)
		rd_cursor_init(&it->rd[i].cur, it->rd[i].l);
	iter_seek_first(it->m);
	find_next(it, 0);
}

void lsm_iter_seek(lsm_iter *it, const void *key, size_t klen)
{
	it->valid = 0;
	if (it->status)
		return;
	char stackbuf[256];
	char *ik = klen + IKEY_TRAILER <= sizeof stackbuf ? stackbuf : malloc(klen + IKEY_TRAILER);
	if (!ik) {
		it->status = st_error(LSM_NOMEM, "out of memory");
		return;
	}
	struct slice k = slice_make(key, klen);
	ikey_build(ik, k, it->snap, VT_SEEK);
	for (int i = 0; i < it->nrd; i++)
		rd_cursor_seek(&it->rd[i].cur, k);
	iter_seek(it->m, slice_make(ik, klen + IKEY_TRAILER));
	if (ik != stackbuf)
		free(ik);
	find_next(it, 0);
}

void lsm_iter_next(lsm_iter *it)
{
	if (!it->valid)
		return;
	iter_next(it->m);
	find_next(it, 1);
}

int lsm_iter_valid(const lsm_iter *it)
{
	return it->valid;
}

const void *lsm_iter_key(const lsm_iter *it, size_t *klen)
{
	*klen = it->key.len;
	return it->key.data;
}

size_t lsm_iter_value_size(const lsm_iter *it)
{
	struct blob_ref ref;
	if (it->blob_pending && !blob_ref_decode(it->value, &ref))
		return ref.len;
	return it->value.len; /* (a malformed reference: lsm_iter_value reports it) */
}

const void *lsm_iter_value(const lsm_iter *cit, size_t *vlen)
{
	/* The handle is ours and never const underneath: reading a blob value fills its buffer. */
	lsm_iter *it = (lsm_iter *)cit;
	if (it->blob_pending) {
		int rc = blob_resolve(&it->db->blobs, slice_make(it->key.data, it->key.len), it->value, &it->blobval);
		if (rc) {
			/* The walk ends here; lsm_iter_status tells why. */
			it->status = rc;
			it->valid = 0;
			*vlen = 0;
			return NULL;
		}
		it->blob_pending = 0;
		it->value = slice_make(it->blobval.data, it->blobval.len);
	}
	*vlen = it->value.len;
	return it->value.data;
}

int lsm_iter_status(const lsm_iter *it)
{
	return it->status;
}

void lsm_iter_free(lsm_iter *it)
{
	if (!it)
		return;
	iter_destroy(it->m);
	for (int i = 0; i < it->nrd; i++) {
		rd_list_free(&it->rd[i].own);
		if (it->rd[i].handle)
			vset_table_release(it->db->vs, it->rd[i].handle);
	}
	free(it->rd);
	buf_free(&it->key);
	lsm_buf_free(&it->blobval);
	sv_release(it->sv);
	free(it);
}
