/* blob.c - blob file records, references, the per-table reference counts, and reading values back. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "dbformat.h"
#include "hash.h"
#include "status.h"
#include "version.h"

/* Appended bytes between writeback hints (as for the log: the sync at the memtable switch then finds
 * the file mostly on the device already). */
#define BLOB_WRITEBACK_BYTES (1u << 20)

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

int blob_uses_add(struct blob_uses *u, uint64_t number, uint64_t bytes)
{
	int lo = 0, hi = u->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (u->v[mid].number < number)
			lo = mid + 1;
		else
			hi = mid;
	}
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
	/* Whole record bytes, so that a fully referenced file counts as its whole size. */
	return blob_uses_add(u, r.number, BLOB_REC_HEADER + (ikey.len - IKEY_TRAILER) + r.len);
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

int blob_writer_open(lsm_env *env, const char *dir, uint64_t number, struct blob_writer **out)
{
	*out = NULL;
	struct blob_writer *w = calloc(1, sizeof *w);
	if (!w || !(w->path = path_blob(dir, number))) {
		free(w);
		return st_error(LSM_NOMEM, "out of memory");
	}
	int e = env->new_writable(env, w->path, &w->f);
	if (e) {
		int rc = st_errno(e, "create %s", w->path);
		free(w->path);
		free(w);
		return rc;
	}
	w->env = env;
	w->number = number;
	char h[BLOB_HEADER_SIZE];
	memcpy(h, BLOB_MAGIC, 8);
	put_u32le(h + 8, BLOB_FORMAT_VERSION);
	put_u32le(h + 12, 0);
	int rc = blob_writer_append(w, h, sizeof h);
	if (rc) {
		env->unlink(env, w->path);
		blob_writer_close(w);
		return rc;
	}
	*out = w;
	return LSM_OK;
}

int blob_record_encode(struct buf *recs, const struct blob_writer *w, struct slice key, struct slice value,
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

int blob_writer_append(struct blob_writer *w, const void *recs, size_t n)
{
	int e = w->env->append(w->f, recs, n);
	if (e)
		return st_errno(e, "append to %s at offset %" PRIu64, w->path, w->offset);
	w->offset += n;
	if (w->env->writeback && w->offset - w->written_back >= BLOB_WRITEBACK_BYTES) {
		uint64_t end = w->offset & ~(uint64_t)4095;
		(void)w->env->writeback(w->f, w->written_back, end - w->written_back);
		w->written_back = end;
	}
	return LSM_OK;
}

int blob_writer_sync(struct blob_writer *w)
{
	if (w->synced == w->offset)
		return LSM_OK;
	int e = w->env->sync(w->f);
	if (e)
		return st_errno(e, "sync %s", w->path);
	w->synced = w->offset;
	return LSM_OK;
}

int blob_writer_close(struct blob_writer *w)
{
	if (!w)
		return LSM_OK;
	int e = w->env->close_writable(w->f);
	int rc = e ? st_errno(e, "close %s", w->path) : LSM_OK;
	free(w->path);
	free(w);
	return rc;
}

/* ---------------------------------------------------------------- reading */

int blob_files_init(struct blob_files *bf, lsm_env *env, const char *dir)
{
	memset(bf, 0, sizeof *bf);
	bf->env = env;
	if (!(bf->dir = strdup(dir)))
		return LSM_NOMEM;
	pthread_mutex_init(&bf->mu, NULL);
	atomic_init(&bf->growing, 0);
	return LSM_OK;
}

static void slot_close(struct blob_files *bf, struct blob_open *s)
{
	bf->env->close_readable(s->f);
	memset(s, 0, sizeof *s);
}

void blob_files_destroy(struct blob_files *bf)
{
	if (!bf->dir)
		return;
	for (int i = 0; i < BLOB_OPEN_MAX; i++)
		if (bf->slot[i].number)
			slot_close(bf, &bf->slot[i]);
	pthread_mutex_destroy(&bf->mu);
	free(bf->dir);
	bf->dir = NULL;
}

void blob_files_evict(struct blob_files *bf, uint64_t number)
{
	pthread_mutex_lock(&bf->mu);
	for (int i = 0; i < BLOB_OPEN_MAX; i++) {
		struct blob_open *s = &bf->slot[i];
		if (s->number != number || s->doomed)
			continue;
		if (s->refs)
			s->doomed = 1;
		else
			slot_close(bf, s);
	}
	pthread_mutex_unlock(&bf->mu);
}

/* A referenced open slot for number, opening (and mapping, unless the file may still grow) it if
 * needed. Returns the slot or NULL with *rc set. */
static struct blob_open *slot_get(struct blob_files *bf, uint64_t number, int *rc)
{
	pthread_mutex_lock(&bf->mu);
	struct blob_open *victim = NULL;
	for (int i = 0; i < BLOB_OPEN_MAX; i++) {
		struct blob_open *s = &bf->slot[i];
		if (s->number == number && !s->doomed) {
			s->refs++;
			s->used = ++bf->tick;
			pthread_mutex_unlock(&bf->mu);
			return s;
		}
		if (!s->number) {
			if (!victim || victim->number)
				victim = s;
		} else if (!s->refs && (!victim || (victim->number && s->used < victim->used))) {
			victim = s;
		}
	}
	if (!victim) {
		pthread_mutex_unlock(&bf->mu);
		*rc = st_error(LSM_NOMEM, "more than %d blob files are being read at once", BLOB_OPEN_MAX);
		return NULL;
	}
	if (victim->number)
		slot_close(bf, victim);
	/* Opened under the lock: rare (once per file while it stays among the open ones). */
	char *path = path_blob(bf->dir, number);
	if (!path) {
		pthread_mutex_unlock(&bf->mu);
		*rc = st_error(LSM_NOMEM, "out of memory");
		return NULL;
	}
	lsm_rfile *f;
	int e = bf->env->open_readable(bf->env, path, &f);
	if (e) {
		pthread_mutex_unlock(&bf->mu);
		*rc = e == -ENOENT ? st_corrupt(path, 0, "blob file is missing") : st_errno(e, "open %s", path);
		free(path);
		return NULL;
	}
	uint64_t size = 0;
	const char *map = NULL;
	if (number != atomic_load_explicit(&bf->growing, memory_order_acquire) && bf->env->map &&
	    !bf->env->file_size(bf->env, path, &size) && size > 0)
		map = bf->env->map(f, size);
	free(path);
	victim->number = number;
	victim->f = f;
	victim->map = map;
	victim->size = map ? size : 0;
	victim->refs = 1;
	victim->doomed = 0;
	victim->used = ++bf->tick;
	pthread_mutex_unlock(&bf->mu);
	return victim;
}

static void slot_put(struct blob_files *bf, struct blob_open *s)
{
	pthread_mutex_lock(&bf->mu);
	if (--s->refs == 0 && s->doomed)
		slot_close(bf, s);
	pthread_mutex_unlock(&bf->mu);
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
	struct blob_open *s = slot_get(bf, ref->number, &rc);
	if (!s)
		return rc;
	if (n > out->cap) {
		void *p = realloc(out->data, n);
		if (!p) {
			slot_put(bf, s);
			return st_error(LSM_NOMEM, "out of memory");
		}
		out->data = p;
		out->cap = n;
	}
	char *dst = out->data;
	if (s->map) {
		if (ref->offset > s->size || n > s->size - ref->offset) {
			rc = blob_corrupt(bf->dir, ref, "blob record runs past the end of the file");
		} else {
			const char *rec = s->map + ref->offset;
			rc = check_record(rec, n, key, ref, bf->dir);
			if (!rc && ref->len)
				memcpy(dst, rec + BLOB_REC_HEADER + key.len, ref->len);
		}
	} else {
		int64_t got = bf->env->pread(s->f, dst, n, ref->offset);
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
	slot_put(bf, s);
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
