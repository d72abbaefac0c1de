/* blob.c - blob file records, references, the per-table reference counts, and reading values back. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "cache.h"
#include "dbformat.h"
#include "hash.h"
#include "status.h"
#include "version.h"
#include "wal.h"

/* ---------------------------------------------------------------- references */

size_t blob_ref_encode(char *dst, const struct blob_ref *r)
{
	size_t n = put_varint64(dst, r->number);
	n += put_varint64(dst + n, r->offset);
	n += put_varint64(dst + n, r->len);
	return n;
}

int blob_ref_decode(struct slice v, struct blob_ref *r)
{
	const char *p = v.data, *end = v.data + v.len;
	if (!(p = get_varint64(p, end, &r->number)) || !(p = get_varint64(p, end, &r->offset)) ||
	    !(p = get_varint32(p, end, &r->len)) || p != end || r->number == 0 || r->offset < BLOB_HEADER_SIZE)
		return LSM_CORRUPT;
	return LSM_OK;
}

/* Index of the first entry >= number. */
static int uses_lower_bound(const struct blob_uses *u, uint64_t number)
{
	int lo = 0, hi = u->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (u->v[mid].number < number)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct blob_use *blob_uses_find(const struct blob_uses *u, uint64_t number)
{
	int i = uses_lower_bound(u, number);
	return i < u->n && u->v[i].number == number ? &u->v[i] : NULL;
}

int blob_uses_add(struct blob_uses *u, uint64_t number, uint64_t bytes)
{
	int lo = uses_lower_bound(u, number);
	if (lo < u->n && u->v[lo].number == number) {
		u->v[lo].bytes += bytes;
		return LSM_OK;
	}
	if (u->n == u->cap) {
		int cap = u->cap ? 2 * u->cap : 4;
		struct blob_use *p = realloc(u->v, (size_t)cap * sizeof *p);
		if (!p)
			return LSM_NOMEM;
		u->v = p;
		u->cap = cap;
	}
	memmove(u->v + lo + 1, u->v + lo, (size_t)(u->n - lo) * sizeof *u->v);
	u->v[lo].number = number;
	u->v[lo].bytes = bytes;
	u->n++;
	return LSM_OK;
}

int blob_uses_note(struct blob_uses *u, struct slice ikey, struct slice value)
{
	if (ikey.len < IKEY_TRAILER || ikey_type(ikey) != VT_BLOB)
		return LSM_OK;
	struct blob_ref r;
	if (blob_ref_decode(value, &r))
		return LSM_CORRUPT;
	return blob_uses_add(u, r.number, blob_record_size(ikey.len - IKEY_TRAILER, r.len));
}

void blob_uses_free(struct blob_uses *u)
{
	free(u->v);
	memset(u, 0, sizeof *u);
}

/* ---------------------------------------------------------------- writer */

static uint32_t rec_checksum(const char *rec, size_t n)
{
	return (uint32_t)lsm_xxh3(rec + 4, n - 4);
}

int blob_writer_open(lsm_env *env, const char *dir, uint64_t number, struct wal_writer **out)
{
	*out = NULL;
	char *path = path_blob(dir, number);
	if (!path)
		return st_error(LSM_NOMEM, "out of memory");
	struct wal_writer *w;
	int rc = wal_writer_open(env, path, number, &w);
	if (!rc) {
		char h[BLOB_HEADER_SIZE];
		memcpy(h, BLOB_MAGIC, 8);
		put_u32le(h + 8, BLOB_FORMAT_VERSION);
		put_u32le(h + 12, 0);
		if ((rc = wal_append_raw(w, h, sizeof h))) {
			wal_writer_close(w);
			env->unlink(env, path);
		} else {
			*out = w;
		}
	}
	free(path);
	return rc;
}

int blob_record_encode(struct buf *recs, const struct wal_writer *w, struct slice key, struct slice value,
		       struct blob_ref *ref)
{
	if (key.len > UINT32_MAX || value.len > UINT32_MAX)
		return st_error(LSM_INVAL, "value of %zu bytes is too large for a blob record", value.len);
	size_t n = BLOB_REC_HEADER + key.len + value.len;
	if (buf_reserve(recs, n))
		return st_error(LSM_NOMEM, "out of memory");
	char *p = recs->data + recs->len;
	put_u32le(p + 4, (uint32_t)key.len);
	put_u32le(p + 8, (uint32_t)value.len);
	if (key.len)
		memcpy(p + BLOB_REC_HEADER, key.data, key.len);
	if (value.len)
		memcpy(p + BLOB_REC_HEADER + key.len, value.data, value.len);
	put_u32le(p, rec_checksum(p, n));
	ref->number = w->number;
	ref->offset = w->offset + recs->len;
	ref->len = (uint32_t)value.len;
	recs->len += n;
	return LSM_OK;
}

/* ---------------------------------------------------------------- reading */

/* An open blob file, as the cache holds it. */
struct blob_open {
	lsm_env *env;
	lsm_rfile *f;
	const char *map;       /* NULL: read with pread */
	uint64_t size;         /* mapped bytes */
};

static void blob_open_free(void *v, void *arg)
{
	(void)arg;
	struct blob_open *o = v;
	o->env->close_readable(o->f);
	free(o);
}

int blob_files_init(struct blob_files *bf, lsm_env *env, const char *dir, struct cache *cache)
{
	memset(bf, 0, sizeof *bf);
	bf->env = env;
	atomic_init(&bf->growing, 0);
	if (!cache) {
		if (!(cache = cache_new(16)))
			return LSM_NOMEM;
		bf->own_cache = 1;
	}
	bf->cache = cache;
	if (!(bf->dir = strdup(dir))) {
		blob_files_destroy(bf);
		return LSM_NOMEM;
	}
	return LSM_OK;
}

void blob_files_destroy(struct blob_files *bf)
{
	if (bf->own_cache)
		cache_free(bf->cache);
	free(bf->dir);
	memset(bf, 0, sizeof *bf);
}

void blob_files_evict(struct blob_files *bf, uint64_t number)
{
	cache_erase(bf->cache, number, BLOB_CACHE_OFF);
}

/* A pinned handle on open file `number`, opening (and mapping, unless the file may still grow) it on
 * a miss. Returns NULL with *rc set. */
static struct cache_handle *blob_open(struct blob_files *bf, uint64_t number, int *rc)
{
	struct cache_handle *h = cache_lookup(bf->cache, number, BLOB_CACHE_OFF);
	if (h)
		return h;
	char *path = path_blob(bf->dir, number);
	struct blob_open *o = calloc(1, sizeof *o);
	if (!path || !o) {
		free(path);
		free(o);
		*rc = st_error(LSM_NOMEM, "out of memory");
		return NULL;
	}
	int e = bf->env->open_readable(bf->env, path, &o->f);
	if (e) {
		*rc = e == -ENOENT ? st_corrupt(path, 0, "blob file is missing") : st_errno(e, "open %s", path);
		free(path);
		free(o);
		return NULL;
	}
	o->env = bf->env;
	uint64_t size = 0;
	if (number != atomic_load_explicit(&bf->growing, memory_order_acquire) && bf->env->map &&
	    !bf->env->file_size(bf->env, path, &size) && size > 0 && (o->map = bf->env->map(o->f, size)))
		o->size = size;
	free(path);
	/* (two readers that both missed insert twice: the second replaces the first, freed when
	 * released, as for tables) */
	if (!(h = cache_insert(bf->cache, number, BLOB_CACHE_OFF, o, 1, blob_open_free, NULL))) {
		blob_open_free(o, NULL);
		*rc = st_error(LSM_NOMEM, "out of memory");
	}
	return h;
}

static int blob_corrupt(const char *dir, const struct blob_ref *ref, const char *why)
{
	char *path = path_blob(dir, ref->number);
	int rc = st_corrupt(path ? path : "blob file", ref->offset, "%s", why);
	free(path);
	return rc;
}

static int check_record(const char *rec, size_t n, struct slice key, const struct blob_ref *ref, const char *dir)
{
	const char *why = NULL;
	if (get_u32le(rec + 4) != key.len || get_u32le(rec + 8) != ref->len)
		why = "blob record lengths do not match the reference";
	else if (get_u32le(rec) != rec_checksum(rec, n))
		why = "blob record checksum mismatch";
	else if (key.len && memcmp(rec + BLOB_REC_HEADER, key.data, key.len))
		why = "blob record belongs to another key";
	return why ? blob_corrupt(dir, ref, why) : LSM_OK;
}

int blob_read(struct blob_files *bf, struct slice key, const struct blob_ref *ref, struct lsm_buf *out)
{
	size_t n = BLOB_REC_HEADER + key.len + ref->len;
	int rc = LSM_OK;
	struct cache_handle *h = blob_open(bf, ref->number, &rc);
	if (!h)
		return rc;
	const struct blob_open *o = cache_value(h);
	if (lsm_buf_fit(out, n)) {
		cache_release(bf->cache, h);
		return st_error(LSM_NOMEM, "out of memory");
	}
	char *dst = out->data;
	if (o->map) {
		if (ref->offset > o->size || n > o->size - ref->offset) {
			rc = blob_corrupt(bf->dir, ref, "blob record runs past the end of the file");
		} else {
			const char *rec = o->map + ref->offset;
			rc = check_record(rec, n, key, ref, bf->dir);
			if (!rc && ref->len)
				memcpy(dst, rec + BLOB_REC_HEADER + key.len, ref->len);
		}
	} else {
		int64_t got = bf->env->pread(o->f, dst, n, ref->offset);
		if (got < 0) {
			char *path = path_blob(bf->dir, ref->number);
			rc = st_errno((int)got, "read %s at offset %" PRIu64, path ? path : "blob file", ref->offset);
			free(path);
		} else if ((size_t)got < n) {
			rc = blob_corrupt(bf->dir, ref, "blob record runs past the end of the file");
		} else {
			rc = check_record(dst, n, key, ref, bf->dir);
			if (!rc && ref->len)
				memmove(dst, dst + BLOB_REC_HEADER + key.len, ref->len);
		}
	}
	cache_release(bf->cache, h);
	if (!rc)
		out->len = ref->len;
	return rc;
}

int blob_resolve(struct blob_files *bf, struct slice key, struct slice refval, struct lsm_buf *out)
{
	struct blob_ref r;
	if (blob_ref_decode(refval, &r))
		return st_error(LSM_CORRUPT, "malformed blob reference for a %zu-byte key", key.len);
	return blob_read(bf, key, &r, out);
}
