/* version.c - file metadata, versions, version edits, the manifest and the table cache. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "dbformat.h"
#include "iter.h"
#include "status.h"
#include "table.h"
#include "version.h"
#include "wal.h"
#include "wal_format.h"

/* A new manifest (starting with a full snapshot) is begun once the open one passes this size, so that
 * replay at open stays short however long the store lives. */
#define MANIFEST_ROLL_BYTES (4u << 20)

/* ---------------------------------------------------------------- names */

static char *fmt_path(const char *fmt, const char *dir, uint64_t n)
{
	char *p = NULL;
	if (asprintf(&p, fmt, dir, n) < 0)
		return NULL;
	return p;
}

char *path_table(const char *dir, uint64_t n)
{
	return fmt_path("%s/%06" PRIu64 ".sst", dir, n);
}
char *path_blob(const char *dir, uint64_t n)
{
	return fmt_path("%s/%06" PRIu64 ".blob", dir, n);
}
char *path_log(const char *dir, uint64_t n)
{
	return fmt_path("%s/%06" PRIu64 ".log", dir, n);
}
char *path_manifest(const char *dir, uint64_t n)
{
	return fmt_path("%s/MANIFEST-%06" PRIu64, dir, n);
}
char *path_join(const char *dir, const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

static int parse_number(const char *s, const char *end, uint64_t *n)
{
	if (s == end)
		return 0;
	uint64_t v = 0;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*n = v;
	return 1;
}

enum store_file parse_file_name(const char *name, uint64_t *number)
{
	size_t len = strlen(name);
	*number = 0;
	if (!strcmp(name, "CURRENT"))
		return SF_CURRENT;
	if (!strcmp(name, "LOCK"))
		return SF_LOCK;
	if (!strncmp(name, "MANIFEST-", 9))
		return parse_number(name + 9, name + len, number) ? SF_MANIFEST : SF_UNKNOWN;
	if (len > 4 && !strcmp(name + len - 4, ".sst"))
		return parse_number(name, name + len - 4, number) ? SF_TABLE : SF_UNKNOWN;
	if (len > 4 && !strcmp(name + len - 4, ".log"))
		return parse_number(name, name + len - 4, number) ? SF_LOG : SF_UNKNOWN;
	if (len > 5 && !strcmp(name + len - 5, ".blob"))
		return parse_number(name, name + len - 5, number) ? SF_BLOB : SF_UNKNOWN;
	if (len > 4 && !strcmp(name + len - 4, ".tmp"))
		return SF_TEMP;
	return SF_UNKNOWN;
}

/* ---------------------------------------------------------------- file metadata */

struct file_meta *file_meta_new(void)
{
	struct file_meta *f = calloc(1, sizeof *f);
	if (f)
		atomic_init(&f->refs, 1);
	return f;
}

void file_meta_ref(struct file_meta *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void file_meta_unref(struct file_meta *f)
{
	if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) {
		buf_free(&f->smallest);
		buf_free(&f->largest);
		blob_uses_free(&f->blobs);
		free(f);
	}
}

static struct slice fm_smallest(const struct file_meta *f)
{
	return slice_make(f->smallest.data, f->smallest.len);
}
static struct slice fm_largest(const struct file_meta *f)
{
	return slice_make(f->largest.data, f->largest.len);
}

/* ---------------------------------------------------------------- edits */

/* Edit record tags: stored on disk, never renumber. */
enum edit_tag {
	ET_FORMAT = 1,
	ET_LOG_NUMBER = 2,
	ET_NEXT_FILE = 3,
	ET_LAST_SEQ = 4,
	ET_COMPACT_PTR = 5,  /* level, key */
	ET_DELETED = 6,      /* level, number */
	ET_ADDED = 7,        /* level, number, size, smallest, largest, min_seq, max_seq, entries, deletes,
			      * range_dels */
	ET_BLOB_USES = 8,    /* count, then (blob file number, value bytes) * count: of the file added just
			      * before it */
};

void edit_init(struct version_edit *e)
{
	memset(e, 0, sizeof *e);
}

void edit_free(struct version_edit *e)
{
	for (int i = 0; i < e->nadded; i++)
		file_meta_unref(e->added[i].f);
	free(e->added);
	free(e->deleted);
	for (int i = 0; i < NUM_LEVELS; i++)
		buf_free(&e->compact_ptr[i].key);
	memset(e, 0, sizeof *e);
}

int edit_delete_file(struct version_edit *e, int level, uint64_t number)
{
	if (e->ndeleted == e->capdeleted) {
		int cap = e->capdeleted ? 2 * e->capdeleted : 8;
		void *p = realloc(e->deleted, (size_t)cap * sizeof *e->deleted);
		if (!p)
			return LSM_NOMEM;
		e->deleted = p;
		e->capdeleted = cap;
	}
	e->deleted[e->ndeleted].level = level;
	e->deleted[e->ndeleted].number = number;
	e->ndeleted++;
	return LSM_OK;
}

int edit_add_file(struct version_edit *e, int level, struct file_meta *f)
{
	if (e->nadded == e->capadded) {
		int cap = e->capadded ? 2 * e->capadded : 8;
		void *p = realloc(e->added, (size_t)cap * sizeof *e->added);
		if (!p)
			return LSM_NOMEM;
		e->added = p;
		e->capadded = cap;
	}
	file_meta_ref(f);
	e->added[e->nadded].level = level;
	e->added[e->nadded].f = f;
	e->nadded++;
	return LSM_OK;
}

int edit_encode(const struct version_edit *e, struct buf *o)
{
	int rc = 0;
	if (e->has_format)
		rc |= buf_put_varint(o, ET_FORMAT) | buf_put_varint(o, e->format);
	if (e->has_log_number)
		rc |= buf_put_varint(o, ET_LOG_NUMBER) | buf_put_varint(o, e->log_number);
	if (e->has_next_file)
		rc |= buf_put_varint(o, ET_NEXT_FILE) | buf_put_varint(o, e->next_file);
	if (e->has_last_seq)
		rc |= buf_put_varint(o, ET_LAST_SEQ) | buf_put_varint(o, e->last_seq);
	for (int l = 0; l < NUM_LEVELS; l++)
		if (e->has_compact_ptr[l])
			rc |= buf_put_varint(o, ET_COMPACT_PTR) | buf_put_varint(o, (uint64_t)l) |
			      buf_put_lp(o, e->compact_ptr[l].key.data, e->compact_ptr[l].key.len);
	for (int i = 0; i < e->ndeleted; i++)
		rc |= buf_put_varint(o, ET_DELETED) | buf_put_varint(o, (uint64_t)e->deleted[i].level) |
		      buf_put_varint(o, e->deleted[i].number);
	for (int i = 0; i < e->nadded; i++) {
		const struct file_meta *f = e->added[i].f;
		rc |= buf_put_varint(o, ET_ADDED) | buf_put_varint(o, (uint64_t)e->added[i].level) |
		      buf_put_varint(o, f->number) | buf_put_varint(o, f->size) |
		      buf_put_lp(o, f->smallest.data, f->smallest.len) | buf_put_lp(o, f->largest.data, f->largest.len) |
		      buf_put_varint(o, f->min_seq) | buf_put_varint(o, f->max_seq) | buf_put_varint(o, f->entries) |
		      buf_put_varint(o, f->deletes) | buf_put_varint(o, f->range_dels);
		if (f->blobs.n) {
			rc |= buf_put_varint(o, ET_BLOB_USES) | buf_put_varint(o, (uint64_t)f->blobs.n);
			for (int b = 0; b < f->blobs.n; b++)
				rc |= buf_put_varint(o, f->blobs.v[b].number) | buf_put_varint(o, f->blobs.v[b].bytes);
		}
	}
	return rc ? LSM_NOMEM : LSM_OK;
}

int edit_decode(struct version_edit *e, struct slice in)
{
	edit_init(e);
	const char *p = in.data, *end = in.data + in.len;
	while (p < end) {
		uint64_t tag, v, lvl;
		struct slice s;
		if (!(p = get_varint64(p, end, &tag)))
			goto bad;
		switch (tag) {
		case ET_FORMAT:
			if (!(p = get_varint64(p, end, &v)) || v > UINT32_MAX)
				goto bad;
			e->has_format = 1;
			e->format = (uint32_t)v;
			break;
		case ET_LOG_NUMBER:
			if (!(p = get_varint64(p, end, &e->log_number)))
				goto bad;
			e->has_log_number = 1;
			break;
		case ET_NEXT_FILE:
			if (!(p = get_varint64(p, end, &e->next_file)))
				goto bad;
			e->has_next_file = 1;
			break;
		case ET_LAST_SEQ:
			if (!(p = get_varint64(p, end, &e->last_seq)) || e->last_seq > SEQNO_MAX)
				goto bad;
			e->has_last_seq = 1;
			break;
		case ET_COMPACT_PTR:
			if (!(p = get_varint64(p, end, &lvl)) || lvl >= NUM_LEVELS || !(p = get_lp_slice(p, end, &s)))
				goto bad;
			e->compact_ptr[lvl].key.len = 0;
			if (buf_append(&e->compact_ptr[lvl].key, s.data, s.len))
				goto nomem;
			e->has_compact_ptr[lvl] = 1;
			break;
		case ET_DELETED:
			if (!(p = get_varint64(p, end, &lvl)) || lvl >= NUM_LEVELS || !(p = get_varint64(p, end, &v)))
				goto bad;
			if (edit_delete_file(e, (int)lvl, v))
				goto nomem;
			break;
		case ET_ADDED: {
			struct slice sm, lg;
			struct file_meta *f = file_meta_new();
			if (!f)
				goto nomem;
			if (!(p = get_varint64(p, end, &lvl)) || lvl >= NUM_LEVELS ||
			    !(p = get_varint64(p, end, &f->number)) || !(p = get_varint64(p, end, &f->size)) ||
			    !(p = get_lp_slice(p, end, &sm)) || !(p = get_lp_slice(p, end, &lg)) ||
			    sm.len < IKEY_TRAILER || lg.len < IKEY_TRAILER ||
			    !(p = get_varint64(p, end, &f->min_seq)) || !(p = get_varint64(p, end, &f->max_seq)) ||
			    !(p = get_varint64(p, end, &f->entries)) || !(p = get_varint64(p, end, &f->deletes)) ||
			    !(p = get_varint64(p, end, &f->range_dels))) {
				file_meta_unref(f);
				goto bad;
			}
			if (buf_append(&f->smallest, sm.data, sm.len) || buf_append(&f->largest, lg.data, lg.len) ||
			    edit_add_file(e, (int)lvl, f)) {
				file_meta_unref(f);
				goto nomem;
			}
			file_meta_unref(f); /* the edit holds it */
			break;
		}
		case ET_BLOB_USES: {
			uint64_t n;
			if (!e->nadded || e->added[e->nadded - 1].f->blobs.n || !(p = get_varint64(p, end, &n)) ||
			    n > (uint64_t)(end - p) / 2)
				goto bad;
			struct file_meta *f = e->added[e->nadded - 1].f;
			for (uint64_t b = 0; b < n; b++) {
				uint64_t num, bytes;
				if (!(p = get_varint64(p, end, &num)) || !(p = get_varint64(p, end, &bytes)) || !num)
					goto bad;
				if (blob_uses_add(&f->blobs, num, bytes))
					goto nomem;
			}
			break;
		}
		default:
			goto bad;
		}
	}
	return LSM_OK;
bad:
	edit_free(e);
	return LSM_CORRUPT;
nomem:
	edit_free(e);
	return LSM_NOMEM;
}

/* ---------------------------------------------------------------- versions */

static struct version *version_new(struct vset *vs)
{
	struct version *v = calloc(1, sizeof *v);
	if (!v)
		return NULL;
	atomic_init(&v->refs, 0);
	v->vs = vs;
	v->prev = v->next = v;
	return v;
}

static void version_free(struct version *v)
{
	for (int l = 0; l < NUM_LEVELS; l++) {
		for (int i = 0; i < v->nfiles[l]; i++)
			file_meta_unref(v->files[l][i]);
		free(v->files[l]);
	}
	blob_uses_free(&v->blobs);
	free(v);
}

void version_ref(struct version *v)
{
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

void version_unref(struct version *v)
{
	if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
		return;
	v->prev->next = v->next;
	v->next->prev = v->prev;
	version_free(v);
}

uint64_t version_level_bytes(const struct version *v, int level)
{
	uint64_t n = 0;
	for (int i = 0; i < v->nfiles[level]; i++)
		n += v->files[level][i]->size;
	return n;
}

uint64_t version_l0_compaction_bytes(const struct version *v)
{
	if (v->nfiles[0] == 0)
		return 0;
	struct slice lo = {0}, hi = {0};
	for (int i = 0; i < v->nfiles[0]; i++) {
		const struct file_meta *f = v->files[0][i];
		struct slice s = ikey_user(slice_make(f->smallest.data, f->smallest.len));
		struct slice l = ikey_user(slice_make(f->largest.data, f->largest.len));
		if (i == 0 || slice_cmp(s, lo) < 0)
			lo = s;
		if (i == 0 || slice_cmp(l, hi) > 0)
			hi = l;
	}
	uint64_t bytes = version_level_bytes(v, 0);
	for (int i = 0; i < v->nfiles[1]; i++) {
		const struct file_meta *f = v->files[1][i];
		if (slice_cmp(ikey_user(slice_make(f->smallest.data, f->smallest.len)), hi) <= 0 &&
		    slice_cmp(ikey_user(slice_make(f->largest.data, f->largest.len)), lo) >= 0)
			bytes += f->size;
	}
	return bytes;
}

static int cmp_l0(const void *a, const void *b)
{
	const struct file_meta *x = *(struct file_meta *const *)a, *y = *(struct file_meta *const *)b;
	/* Newest first: flushes are numbered in the order their memtables filled. */
	return x->number > y->number ? -1 : x->number < y->number;
}

static int cmp_by_smallest(const void *a, const void *b)
{
	const struct file_meta *x = *(struct file_meta *const *)a, *y = *(struct file_meta *const *)b;
	int c = ikey_cmp(fm_smallest(x), fm_smallest(y));
	return c ? c : (x->number < y->number ? -1 : x->number > y->number);
}

static void compute_score(struct version *v)
{
	struct vset *vs = v->vs;
	double best = (double)v->nfiles[0] / (vs->l0_trigger > 0 ? vs->l0_trigger : 4);
	int best_level = 0;
	double max_bytes = (double)vs->level1_max_bytes;
	for (int l = 1; l < NUM_LEVELS - 1; l++) {
		double s = (double)version_level_bytes(v, l) / max_bytes;
		if (s > best) {
			best = s;
			best_level = l;
		}
		max_bytes *= 10;
	}
	v->compaction_score = best;
	v->compaction_level = best_level;
}

/* base + edit -> a new version (refs 0, not yet linked). */
static int version_build(struct vset *vs, const struct version *base, const struct version_edit *e,
			 struct version **out, char *err, size_t errlen)
{
	struct version *v = version_new(vs);
	if (!v)
		return LSM_NOMEM;
	for (int l = 0; l < NUM_LEVELS; l++) {
		int n = base ? base->nfiles[l] : 0;
		int add = 0;
		for (int i = 0; i < e->nadded; i++)
			add += e->added[i].level == l;
		v->files[l] = malloc((size_t)(n + add + 1) * sizeof *v->files[l]);
		if (!v->files[l]) {
			version_free(v);
			return LSM_NOMEM;
		}
		for (int i = 0; i < n; i++) {
			struct file_meta *f = base->files[l][i];
			int gone = 0;
			for (int d = 0; d < e->ndeleted; d++)
				if (e->deleted[d].level == l && e->deleted[d].number == f->number)
					gone = 1;
			if (!gone) {
				file_meta_ref(f);
				v->files[l][v->nfiles[l]++] = f;
			}
		}
		for (int i = 0; i < e->nadded; i++)
			if (e->added[i].level == l) {
				file_meta_ref(e->added[i].f);
				v->files[l][v->nfiles[l]++] = e->added[i].f;
			}
		qsort(v->files[l], (size_t)v->nfiles[l], sizeof *v->files[l], l == 0 ? cmp_l0 : cmp_by_smallest);
		/* Levels >= 1 must not overlap: a manifest that says otherwise is corrupt. */
		for (int i = 1; l > 0 && i < v->nfiles[l]; i++) {
			if (ikey_cmp(fm_largest(v->files[l][i - 1]), fm_smallest(v->files[l][i])) >= 0) {
				snprintf(err, errlen, "tables %06" PRIu64 " and %06" PRIu64 " overlap on level %d",
					 v->files[l][i - 1]->number, v->files[l][i]->number, l);
				version_free(v);
				return LSM_CORRUPT;
			}
		}
	}
	/* A deleted file must have existed. */
	for (int d = 0; d < e->ndeleted; d++) {
		int found = 0;
		for (int i = 0; base && i < base->nfiles[e->deleted[d].level]; i++)
			found |= base->files[e->deleted[d].level][i]->number == e->deleted[d].number;
		if (!found) {
			snprintf(err, errlen, "edit deletes table %06" PRIu64 " which is not on level %d",
				 e->deleted[d].number, e->deleted[d].level);
			version_free(v);
			return LSM_CORRUPT;
		}
	}
	compute_score(v);
	/* The blob files its tables reference, with the bytes each: liveness, relocation and stats. */
	for (int l = 0; l < NUM_LEVELS; l++)
		for (int i = 0; i < v->nfiles[l]; i++) {
			const struct blob_uses *u = &v->files[l][i]->blobs;
			for (int b = 0; b < u->n; b++)
				if (blob_uses_add(&v->blobs, u->v[b].number, u->v[b].bytes)) {
					version_free(v);
					return LSM_NOMEM;
				}
		}
	*out = v;
	return LSM_OK;
}

static void vset_install(struct vset *vs, struct version *v)
{
	version_ref(v);
	v->prev = vs->head.prev;
	v->next = &vs->head;
	v->prev->next = v;
	v->next->prev = v;
	if (vs->current)
		version_unref(vs->current);
	vs->current = v;
}

/* ---------------------------------------------------------------- table cache */

static void table_deleter(void *value, void *arg)
{
	(void)arg;
	table_close(value);
}

int vset_table(struct vset *vs, const struct file_meta *f, struct table **t, void **handle)
{
	struct cache_handle *h = cache_lookup(vs->table_cache, f->number, 0);
	if (!h) {
		char *path = path_table(vs->dir, f->number);
		if (!path)
			return st_error(LSM_NOMEM, "out of memory");
		struct table *nt;
		int rc = table_open(vs->env, path, f->number, f->size, vs->block_cache, &nt);
		if (rc == LSM_NOTFOUND) /* never "no such key": the manifest names this table */
			rc = st_corrupt(path, 0, "table named by the manifest is missing");
		free(path);
		if (rc)
			return rc;
		h = cache_insert(vs->table_cache, f->number, 0, nt, 1, table_deleter, NULL);
		if (!h) {
			table_close(nt);
			return st_error(LSM_NOMEM, "out of memory");
		}
	}
	*t = cache_value(h);
	*handle = h;
	return LSM_OK;
}

void vset_table_release(struct vset *vs, void *handle)
{
	cache_release(vs->table_cache, handle);
}

void vset_table_evict(struct vset *vs, uint64_t number)
{
	cache_erase(vs->table_cache, number, 0);
}

/* A table iterator plus the cache pin that keeps its table open. */
struct pinned_iter {
	struct iter base;
	struct iter *in;
	struct vset *vs;
	void *handle;
};

static void pi_sync(struct pinned_iter *p)
{
	p->base.valid = p->in->valid;
	p->base.status = p->in->status;
	p->base.key = p->in->key;
	p->base.value = p->in->value;
}
static void pi_seek_first(struct iter *it)
{
	struct pinned_iter *p = (struct pinned_iter *)it;
	iter_seek_first(p->in);
	pi_sync(p);
}
static void pi_seek(struct iter *it, struct slice t)
{
	struct pinned_iter *p = (struct pinned_iter *)it;
	iter_seek(p->in, t);
	pi_sync(p);
}
static void pi_next(struct iter *it)
{
	struct pinned_iter *p = (struct pinned_iter *)it;
	iter_next(p->in);
	pi_sync(p);
}
static void pi_destroy(struct iter *it)
{
	struct pinned_iter *p = (struct pinned_iter *)it;
	iter_destroy(p->in);
	vset_table_release(p->vs, p->handle);
	free(p);
}
static const struct iter_ops pinned_iter_ops = {pi_seek_first, pi_seek, pi_next, pi_destroy};

int vset_table_iter(struct vset *vs, const struct file_meta *f, int fill_cache, struct iter **out)
{
	*out = NULL;
	struct table *t;
	void *h;
	int rc = vset_table(vs, f, &t, &h);
	if (rc)
		return rc;
	struct pinned_iter *p = calloc(1, sizeof *p);
	if (!p || !(p->in = table_iter_new(t, fill_cache))) {
		free(p);
		vset_table_release(vs, h);
		return st_error(LSM_NOMEM, "out of memory");
	}
	p->base.ops = &pinned_iter_ops;
	p->vs = vs;
	p->handle = h;
	*out = &p->base;
	return LSM_OK;
}

/* ---------------------------------------------------------------- gets */

static int get_in_file(struct vset *vs, struct file_meta *f, struct get_ctx *c)
{
	struct table *t;
	void *h;
	int rc = vset_table(vs, f, &t, &h);
	if (rc)
		return rc;
	struct table_get_result r = {0, 0, c->value};
	rc = table_get(t, c->key, c->hash, c->snap, &c->range_seq, &r, &c->bloom_skips);
	vset_table_release(vs, h);
	if (rc == 1) {
		c->seq = r.seq;
		c->type = r.type;
	}
	return rc;
}

/* Is user key k inside f's range? */
static int in_range(const struct file_meta *f, struct slice k)
{
	return slice_cmp(k, ikey_user(fm_smallest(f))) >= 0 && slice_cmp(k, ikey_user(fm_largest(f))) <= 0;
}

int version_get(struct version *v, struct get_ctx *c)
{
	for (int i = 0; i < v->nfiles[0]; i++) {
		struct file_meta *f = v->files[0][i];
		if (!in_range(f, c->key))
			continue;
		int rc = get_in_file(v->vs, f, c);
		if (rc)
			return rc;
		if (c->range_seq)
			return 0;
	}
	char stackbuf[256];
	char *ik = c->key.len + IKEY_TRAILER <= sizeof stackbuf ? stackbuf : malloc(c->key.len + IKEY_TRAILER);
	if (!ik)
		return st_error(LSM_NOMEM, "out of memory");
	ikey_build(ik, c->key, c->snap, VT_SEEK);
	struct slice target = slice_make(ik, c->key.len + IKEY_TRAILER);
	int rc = 0;
	for (int l = 1; l < NUM_LEVELS && !rc; l++) {
		int n = v->nfiles[l];
		if (!n)
			continue;
		/* First file whose largest internal key >= target (see the boundary note in compaction.c:
		 * comparing internal keys, not user keys, sends a key equal to a truncated tombstone's end to
		 * the next file, where it lives). */
		int lo = 0, hi = n;
		while (lo < hi) {
			int mid = (lo + hi) / 2;
			if (ikey_cmp(fm_largest(v->files[l][mid]), target) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == n)
			continue;
		struct file_meta *f = v->files[l][lo];
		if (slice_cmp(c->key, ikey_user(fm_smallest(f))) < 0)
			continue;
		rc = get_in_file(v->vs, f, c);
		if (rc == 0 && c->range_seq)
			break;
	}
	if (ik != stackbuf)
		free(ik);
	return rc;
}

/* ---------------------------------------------------------------- version set */

int vset_new(lsm_env *env, const char *dir, const struct lsm_options *o, struct cache *table_cache,
	     struct cache *block_cache, struct vset **out)
{
	*out = NULL;
	struct vset *vs = calloc(1, sizeof *vs);
	if (!vs || !(vs->dir = strdup(dir))) {
		free(vs);
		return st_error(LSM_NOMEM, "out of memory");
	}
	vs->env = env;
	vs->table_cache = table_cache;
	vs->block_cache = block_cache;
	vs->next_file = 2;
	vs->head.prev = vs->head.next = &vs->head;
	vs->level1_max_bytes = o->level1_max_bytes;
	vs->l0_trigger = o->l0_compaction_trigger;
	vs->read_only = o->read_only;
	struct version_edit empty;
	edit_init(&empty);
	struct version *v;
	char err[128];
	if (version_build(vs, NULL, &empty, &v, err, sizeof err)) {
		free(vs->dir);
		free(vs);
		return st_error(LSM_NOMEM, "out of memory");
	}
	vset_install(vs, v);
	*out = vs;
	return LSM_OK;
}

void vset_free(struct vset *vs)
{
	if (!vs)
		return;
	wal_writer_close(vs->manifest);
	if (vs->current)
		version_unref(vs->current);
	/* Versions still referenced elsewhere are a caller bug; free what is left to stay leak-free. */
	while (vs->head.next != &vs->head) {
		struct version *v = vs->head.next;
		v->prev->next = v->next;
		v->next->prev = v->prev;
		version_free(v);
	}
	for (int l = 0; l < NUM_LEVELS; l++)
		buf_free(&vs->compact_ptr[l]);
	free(vs->dir);
	free(vs);
}

/* Point CURRENT at manifest `number`: write a temp file, sync it, rename, sync the directory.
 * *renamed (if given) tells whether the rename happened: after that, even on error, CURRENT may name
 * the new manifest (now, and after a crash), so the caller must keep that manifest. */
static int set_current(struct vset *vs, uint64_t number, int *renamed)
{
	char content[64];
	int n = snprintf(content, sizeof content, "MANIFEST-%06" PRIu64 "\n", number);
	char *tmp = path_join(vs->dir, "CURRENT.tmp"), *cur = path_join(vs->dir, "CURRENT");
	int rc = LSM_OK, e;
	if (!tmp || !cur) {
		rc = st_error(LSM_NOMEM, "out of memory");
		goto out;
	}
	if ((e = lsm_env_write_all(vs->env, tmp, content, (size_t)n, 1))) {
		rc = st_errno(e, "write %s", tmp);
		vs->env->unlink(vs->env, tmp);
		goto out;
	}
	if ((e = vs->env->rename(vs->env, tmp, cur))) {
		rc = st_errno(e, "rename %s to %s", tmp, cur);
		vs->env->unlink(vs->env, tmp);
		goto out;
	}
	if (renamed)
		*renamed = 1;
	if ((e = vs->env->sync_dir(vs->env, vs->dir)))
		rc = st_errno(e, "sync directory %s", vs->dir);
out:
	free(tmp);
	free(cur);
	return rc;
}

/* The whole current layout as one edit (the first record of a new manifest). */
static int snapshot_edit(struct vset *vs, struct version_edit *e)
{
	edit_init(e);
	e->has_format = 1;
	e->format = MANIFEST_FORMAT_VERSION;
	for (int l = 0; l < NUM_LEVELS; l++) {
		for (int i = 0; i < vs->current->nfiles[l]; i++)
			if (edit_add_file(e, l, vs->current->files[l][i]))
				return LSM_NOMEM;
		if (vs->compact_ptr[l].len) {
			e->has_compact_ptr[l] = 1;
			if (buf_append(&e->compact_ptr[l].key, vs->compact_ptr[l].data, vs->compact_ptr[l].len))
				return LSM_NOMEM;
		}
	}
	return LSM_OK;
}

/* Start manifest `number` with a snapshot of the current layout. */
static int new_manifest(struct vset *vs, uint64_t number, struct wal_writer **out)
{
	char *path = path_manifest(vs->dir, number);
	if (!path)
		return st_error(LSM_NOMEM, "out of memory");
	struct wal_writer *w;
	int rc = wal_writer_open(vs->env, path, number, &w);
	free(path);
	if (rc)
		return rc;
	struct version_edit snap;
	struct buf rec = {0};
	rc = snapshot_edit(vs, &snap);
	if (!rc)
		rc = edit_encode(&snap, &rec);
	if (rc)
		rc = st_error(LSM_NOMEM, "out of memory");
	else
		rc = wal_append_copy(w, WAL_REC_EDIT, rec.data, rec.len);
	edit_free(&snap);
	buf_free(&rec);
	if (rc) {
		wal_writer_close(w);
		return rc;
	}
	*out = w;
	return LSM_OK;
}

int vset_create(struct vset *vs)
{
	vs->manifest_number = 1;
	vs->next_file = 2;
	struct wal_writer *w;
	int rc = new_manifest(vs, 1, &w);
	if (rc)
		return rc;
	struct version_edit e;
	edit_init(&e);
	e.has_log_number = e.has_next_file = e.has_last_seq = 1;
	e.log_number = 0;
	e.next_file = vs->next_file;
	e.last_seq = 0;
	struct buf rec = {0};
	rc = edit_encode(&e, &rec) ? st_error(LSM_NOMEM, "out of memory") : wal_append_copy(w, WAL_REC_EDIT, rec.data, rec.len);
	buf_free(&rec);
	if (!rc)
		rc = wal_sync(w);
	wal_writer_close(w);
	if (!rc)
		rc = set_current(vs, 1, NULL);
	return rc;
}

int vset_recover(struct vset *vs)
{
	char *cur = path_join(vs->dir, "CURRENT");
	char *data = NULL, *mpath = NULL;
	size_t len = 0;
	int rc = LSM_OK, e;
	struct wal_reader *r = NULL;
	if (!cur)
		return st_error(LSM_NOMEM, "out of memory");
	if ((e = lsm_env_read_all(vs->env, cur, &data, &len))) {
		rc = st_errno(e, "read %s", cur);
		goto out;
	}
	uint64_t mnum;
	if (len < 11 || data[len - 1] != '\n' || strncmp(data, "MANIFEST-", 9) ||
	    !parse_number(data + 9, data + len - 1, &mnum)) {
		rc = st_corrupt(cur, 0, "CURRENT does not name a manifest");
		goto out;
	}
	mpath = path_manifest(vs->dir, mnum);
	if (!mpath) {
		rc = st_error(LSM_NOMEM, "out of memory");
		goto out;
	}
	/* The manifest's last edit may be torn: it was never synced, so no table depends on it. */
	if ((rc = wal_reader_open(vs->env, mpath, mnum, WAL_TAIL_OK, &r))) {
		if (rc == LSM_NOTFOUND)
			rc = st_corrupt(cur, 0, "CURRENT names %s, which is missing", mpath);
		goto out;
	}
	struct version *v = NULL;
	int have_log = 0, have_next = 0, have_seq = 0, have_format = 0;
	for (;;) {
		unsigned type;
		struct slice payload;
		uint64_t off;
		int n = wal_read(r, &type, &payload, &off);
		if (n < 0) {
			rc = n;
			goto out;
		}
		if (n == 0)
			break;
		struct version_edit ed;
		if (type != WAL_REC_EDIT) {
			rc = st_corrupt(mpath, off, "record of type %u in a manifest", type);
			goto out;
		}
		if ((rc = edit_decode(&ed, payload))) {
			rc = rc == LSM_NOMEM ? st_error(rc, "out of memory") : st_corrupt(mpath, off, "malformed version edit");
			goto out;
		}
		if (ed.has_format) {
			have_format = 1;
			if (ed.format < 1 || ed.format > MANIFEST_FORMAT_VERSION) {
				uint32_t format = ed.format;
				edit_free(&ed);
				rc = st_corrupt(mpath, off, "unsupported manifest format version %u", format);
				goto out;
			}
		}
		char err[160];
		rc = version_build(vs, vs->current, &ed, &v, err, sizeof err);
		if (rc) {
			edit_free(&ed);
			rc = rc == LSM_NOMEM ? st_error(rc, "out of memory") : st_corrupt(mpath, off, "%s", err);
			goto out;
		}
		vset_install(vs, v);
		if (ed.has_log_number) {
			vs->log_number = ed.log_number;
			have_log = 1;
		}
		if (ed.has_next_file) {
			vs->next_file = ed.next_file;
			have_next = 1;
		}
		if (ed.has_last_seq) {
			vs->last_seq = ed.last_seq;
			have_seq = 1;
		}
		for (int l = 0; l < NUM_LEVELS; l++)
			if (ed.has_compact_ptr[l]) {
				vs->compact_ptr[l].len = 0;
				if (buf_append(&vs->compact_ptr[l], ed.compact_ptr[l].key.data, ed.compact_ptr[l].key.len)) {
					edit_free(&ed);
					rc = st_error(LSM_NOMEM, "out of memory");
					goto out;
				}
			}
		edit_free(&ed);
		vs->edits_replayed++;
	}
	if (!have_format || !have_log || !have_next || !have_seq) {
		rc = st_corrupt(mpath, 0, "manifest lacks %s", !have_format ? "its format version" :
				!have_log ? "a log number" : !have_next ? "the next file number" : "the last sequence number");
		goto out;
	}
	/* Every table must be below next_file, or a new file could overwrite a live table. */
	for (int l = 0; l < NUM_LEVELS; l++)
		for (int i = 0; i < vs->current->nfiles[l]; i++)
			if (vs->current->files[l][i]->number >= vs->next_file)
				vs->next_file = vs->current->files[l][i]->number + 1;
	if (vs->next_file <= mnum)
		vs->next_file = mnum + 1;
	vs->manifest_number = mnum;
out:
	wal_reader_close(r);
	free(data);
	free(cur);
	free(mpath);
	return rc;
}

int vset_log_and_apply(struct vset *vs, struct version_edit *e, pthread_mutex_t *mu)
{
	if (!e->has_log_number) {
		e->has_log_number = 1;
		e->log_number = vs->log_number;
	}
	e->has_next_file = 1;
	e->next_file = vs->next_file;
	if (!e->has_last_seq) {
		e->has_last_seq = 1;
		e->last_seq = vs->last_seq;
	}
	struct version *v;
	char err[160];
	int rc = version_build(vs, vs->current, e, &v, err, sizeof err);
	if (rc)
		return rc == LSM_NOMEM ? st_error(rc, "out of memory") : st_error(LSM_CORRUPT, "bad version edit: %s", err);
	struct buf rec = {0};
	if (edit_encode(e, &rec)) {
		version_free(v);
		return st_error(LSM_NOMEM, "out of memory");
	}
	/* A fresh manifest when none is open (first edit after open) or the open one grew large. */
	struct wal_writer *fresh = NULL;
	uint64_t fresh_number = 0;
	if (!vs->manifest || vs->manifest_bytes > MANIFEST_ROLL_BYTES) {
		fresh_number = vset_new_file_number(vs);
		e->next_file = vs->next_file;
		rec.len = 0;
		if (edit_encode(e, &rec)) {
			version_free(v);
			buf_free(&rec);
			return st_error(LSM_NOMEM, "out of memory");
		}
	}
	/* The snapshot must describe the version before this edit: take it under the lock. */
	if (fresh_number)
		rc = new_manifest(vs, fresh_number, &fresh);
	struct wal_writer *w = fresh ? fresh : vs->manifest;
	pthread_mutex_unlock(mu);
	if (!rc)
		rc = wal_append_copy(w, WAL_REC_EDIT, rec.data, rec.len);
	if (!rc)
		rc = wal_sync(w);
	int renamed = 0;
	if (!rc && fresh)
		rc = set_current(vs, fresh_number, &renamed);
	pthread_mutex_lock(mu);
	buf_free(&rec);
	if (rc) {
		version_free(v);
		if (fresh) {
			wal_writer_close(fresh);
			/* Once CURRENT may name it, the new manifest must stay (the caller stops the store:
			 * which manifest a restart reads is not known). */
			char *p = renamed ? NULL : path_manifest(vs->dir, fresh_number);
			if (p)
				vs->env->unlink(vs->env, p);
			free(p);
		} else {
			/* The open manifest may now end in a partial record: never append after it. */
			wal_writer_close(vs->manifest);
			vs->manifest = NULL;
		}
		return rc;
	}
	if (fresh) {
		wal_writer_close(vs->manifest);
		vs->manifest = fresh;
		vs->manifest_number = fresh_number;
	}
	vs->manifest_bytes = vs->manifest->offset;
	vs->log_number = e->log_number;
	vs->last_seq = e->last_seq;
	for (int l = 0; l < NUM_LEVELS; l++)
		if (e->has_compact_ptr[l]) {
			vs->compact_ptr[l].len = 0;
			buf_append(&vs->compact_ptr[l], e->compact_ptr[l].key.data, e->compact_ptr[l].key.len);
		}
	vset_install(vs, v);
	return LSM_OK;
}

int vset_seal_manifest(struct vset *vs)
{
	struct wal_writer *w = vs->manifest;
	if (!w || w->offset == 0)
		return LSM_OK;
	int rc = wal_append_copy(w, WAL_REC_EDIT, "", 0); /* an empty edit: changes nothing */
	return rc ? rc : wal_sync(w);
}

void vset_live_files(struct vset *vs, void (*fn)(void *arg, uint64_t number), void *arg)
{
	for (struct version *v = vs->head.next; v != &vs->head; v = v->next) {
		for (int l = 0; l < NUM_LEVELS; l++)
			for (int i = 0; i < v->nfiles[l]; i++)
				fn(arg, v->files[l][i]->number);
		for (int b = 0; b < v->blobs.n; b++)
			fn(arg, v->blobs.v[b].number);
	}
}
