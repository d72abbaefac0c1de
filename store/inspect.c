/* inspect.c - read-only views of a store for the checker: tables, files, key versions, raw files. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "block.h"
#include "db_impl.h"
#include "dbformat.h"
#include "lsm_inspect.h"
#include "status.h"
#include "table.h"
#include "wal.h"

/* Take a reference on the current version (held across callbacks without the db mutex). */
static struct version *current_ref(struct lsm_db *db)
{
	pthread_mutex_lock(&db->mu);
	struct version *v = db->vs->current;
	version_ref(v);
	pthread_mutex_unlock(&db->mu);
	return v;
}

static void version_put(struct lsm_db *db, struct version *v)
{
	pthread_mutex_lock(&db->mu);
	version_unref(v);
	pthread_mutex_unlock(&db->mu);
}

int lsm_inspect_tables(lsm_db *db, int (*fn)(void *arg, const struct lsm_table_info *t), void *arg)
{
	struct version *v = current_ref(db);
	int rc = 0;
	for (int l = 0; l < NUM_LEVELS && !rc; l++)
		for (int i = 0; i < v->nfiles[l] && !rc; i++) {
			struct file_meta *f = v->files[l][i];
			struct slice s = slice_make(f->smallest.data, f->smallest.len);
			struct slice g = slice_make(f->largest.data, f->largest.len);
			struct lsm_table_info t = {
				.level = l, .number = f->number, .size = f->size,
				.smallest = s.data, .smallest_len = s.len - IKEY_TRAILER,
				.largest = g.data, .largest_len = g.len - IKEY_TRAILER,
				.smallest_seq = ikey_seq(s), .largest_seq = ikey_seq(g),
				.min_seq = f->min_seq, .max_seq = f->max_seq,
				.entries = f->entries, .deletes = f->deletes, .range_dels = f->range_dels,
			};
			rc = fn(arg, &t);
		}
	version_put(db, v);
	return rc;
}

int lsm_inspect_store(lsm_db *db, struct lsm_store_info *out)
{
	pthread_mutex_lock(&db->mu);
	out->manifest_number = db->vs->manifest_number;
	out->log_number = db->vs->log_number;
	out->next_file = db->vs->next_file;
	out->last_seq = db->vs->last_seq;
	out->edits_replayed = db->vs->edits_replayed;
	out->read_only = db->o.read_only;
	pthread_mutex_unlock(&db->mu);
	return LSM_OK;
}

struct files_ctx {
	struct lsm_db *db;
	struct version *v;
	uint64_t log_number, manifest_number;
	int (*fn)(void *, const char *, const char *, uint64_t, uint64_t, int);
	void *arg;
	int rc;
};

static int in_version(const struct version *v, uint64_t number)
{
	for (int l = 0; l < NUM_LEVELS; l++)
		for (int i = 0; i < v->nfiles[l]; i++)
			if (v->files[l][i]->number == number)
				return 1;
	return 0;
}

int lsm_inspect_blob_ref(const void *v, size_t n, uint64_t *blob_number, uint64_t *offset, uint32_t *len)
{
	struct blob_ref r;
	if (blob_ref_decode(slice_make(v, n), &r))
		return LSM_CORRUPT;
	*blob_number = r.number;
	*offset = r.offset;
	*len = r.len;
	return LSM_OK;
}

const char *lsm_inspect_file_kind(const char *name, uint64_t *number)
{
	switch (parse_file_name(name, number)) {
	case SF_TABLE: return "table";
	case SF_BLOB: return "blob";
	case SF_LOG: return "log";
	case SF_MANIFEST: return "manifest";
	case SF_CURRENT: return "CURRENT";
	case SF_LOCK: return "LOCK";
	case SF_TEMP: return "temp";
	default: return "unknown";
	}
}

static int files_cb(void *arg, const char *name)
{
	struct files_ctx *c = arg;
	uint64_t number = 0, size = 0;
	int live = 0;
	switch (parse_file_name(name, &number)) {
	case SF_TABLE: live = in_version(c->v, number); break;
	case SF_BLOB: live = blob_uses_find(&c->v->blobs, number) != NULL; break;
	case SF_LOG: live = number >= c->log_number; break;
	case SF_MANIFEST: live = number == c->manifest_number; break;
	case SF_CURRENT: live = 1; break;
	case SF_LOCK: live = 1; break;
	default: break;
	}
	const char *kind = lsm_inspect_file_kind(name, &number);
	char *p = path_join(c->db->dir, name);
	if (p)
		c->db->env->file_size(c->db->env, p, &size);
	free(p);
	c->rc = c->fn(c->arg, name, kind, number, size, live);
	return c->rc;
}

int lsm_inspect_files(lsm_db *db, int (*fn)(void *arg, const char *name, const char *kind, uint64_t number,
					     uint64_t size, int live),
		      void *arg)
{
	struct files_ctx c = {.db = db, .fn = fn, .arg = arg};
	c.v = current_ref(db);
	pthread_mutex_lock(&db->mu);
	c.log_number = db->vs->log_number;
	c.manifest_number = db->vs->manifest_number;
	pthread_mutex_unlock(&db->mu);
	int e = db->env->list(db->env, db->dir, files_cb, &c);
	version_put(db, c.v);
	if (e)
		return st_errno(e, "list %s", db->dir);
	return c.rc;
}

/* ---------------------------------------------------------------- versions of one key */

/* Offset of the data block of table t that holds internal key ik (the first index entry >= ik). */
static uint64_t data_block_of(struct table *t, struct slice ik)
{
	struct block_iter idx;
	uint64_t off = 0;
	block_iter_init(&idx, &t->index, BLOCK_CMP_IKEY);
	iter_seek(&idx.base, ik);
	if (idx.base.valid) {
		struct slice v = idx.base.value;
		const char *p = get_varint64(v.data, v.data + v.len, &off);
		if (!p)
			off = 0;
	}
	block_iter_cleanup(&idx);
	return off;
}

/* t: the table the iterator walks (NULL: a memtable). */
static int report_iter_versions(struct iter *it, struct slice key, const char *source, struct table *t, int level,
				int (*fn)(void *, const struct lsm_version_info *), void *arg)
{
	char stackbuf[256];
	char *ik = key.len + IKEY_TRAILER <= sizeof stackbuf ? stackbuf : malloc(key.len + IKEY_TRAILER);
	if (!ik)
		return st_error(LSM_NOMEM, "out of memory");
	ikey_build(ik, key, SEQNO_MAX, VT_SEEK);
	int rc = 0;
	for (iter_seek(it, slice_make(ik, key.len + IKEY_TRAILER)); it->valid && !rc; iter_next(it)) {
		struct slice uk = ikey_user(it->key);
		if (slice_cmp(uk, key))
			break;
		struct lsm_version_info vi = {
			.source = source, .seq = ikey_seq(it->key), .type = (int)ikey_type(it->key),
			.value = it->value.data, .value_len = it->value.len, .begin = key.data, .begin_len = key.len,
			.table_number = t ? t->number : 0, .block_offset = t ? data_block_of(t, it->key) : 0,
			.level = t ? level : -1,
		};
		rc = fn(arg, &vi);
	}
	if (!rc && it->status)
		rc = it->status;
	if (ik != stackbuf)
		free(ik);
	return rc;
}

static int report_fragments(const struct rd_list *l, struct slice key, const char *source, struct table *t,
			    int level, int (*fn)(void *, const struct lsm_version_info *), void *arg)
{
	long i = rd_list_find(l, key);
	if (i < 0)
		return 0;
	const struct rd_frag *f = &l->frags[i];
	for (uint32_t s = 0; s < f->nseq; s++) {
		struct lsm_version_info vi = {
			.source = source, .seq = f->seqs[s], .type = LSM_ENTRY_RANGE_DELETE,
			.value = f->end.data, .value_len = f->end.len, .begin = f->begin.data, .begin_len = f->begin.len,
			.table_number = t ? t->number : 0, .block_offset = t ? t->h_rangedel.offset : 0,
			.level = t ? level : -1,
		};
		int rc = fn(arg, &vi);
		if (rc)
			return rc;
	}
	return 0;
}

int lsm_inspect_key(lsm_db *db, const void *key, size_t klen,
		    int (*fn)(void *arg, const struct lsm_version_info *v), void *arg)
{
	struct slice k = slice_make(key, klen);
	struct superversion *sv = sv_acquire(db);
	int rc = 0;
	struct memtable *mems[MAX_IMM + 1];
	int nm = 0;
	mems[nm++] = sv->mem;
	for (int i = 0; i < sv->nimm; i++)
		mems[nm++] = sv->imm[i];
	for (int i = 0; i < nm && !rc; i++) {
		const char *src = i == 0 ? "memtable" : "immutable memtable";
		struct rd_list l;
		if ((rc = memtable_range_snapshot(mems[i], slice_make(NULL, 0), slice_make(NULL, 0), &l)))
			break;
		rc = report_fragments(&l, k, src, NULL, -1, fn, arg);
		rd_list_free(&l);
		struct iter *it = rc ? NULL : memtable_iter_new(mems[i]);
		if (!rc && !it)
			rc = st_error(LSM_NOMEM, "out of memory");
		if (it) {
			rc = report_iter_versions(it, k, src, NULL, -1, fn, arg);
			iter_destroy(it);
		}
	}
	struct version *v = sv->v;
	for (int l = 0; l < NUM_LEVELS && !rc; l++)
		for (int i = 0; i < v->nfiles[l] && !rc; i++) {
			struct file_meta *f = v->files[l][i];
			if (slice_cmp(k, ikey_user(slice_make(f->smallest.data, f->smallest.len))) < 0 ||
			    slice_cmp(k, ikey_user(slice_make(f->largest.data, f->largest.len))) > 0)
				continue;
			char src[64];
			snprintf(src, sizeof src, "table %06" PRIu64 ".sst (level %d)", f->number, l);
			struct table *t;
			void *h;
			if ((rc = vset_table(db->vs, f, &t, &h)))
				break;
			rc = report_fragments(&t->tombstones, k, src, t, l, fn, arg);
			struct iter *it = rc ? NULL : table_iter_new(t, 0);
			if (!rc && !it)
				rc = st_error(LSM_NOMEM, "out of memory");
			if (it) {
				rc = report_iter_versions(it, k, src, t, l, fn, arg);
				iter_destroy(it);
			}
			vset_table_release(db->vs, h);
		}
	sv_release(sv);
	return rc;
}

/* ---------------------------------------------------------------- table files */

static int decode_handle(struct slice v, struct block_handle *h)
{
	uint64_t off, sz;
	const char *p = get_varint64(v.data, v.data + v.len, &off);
	if (!p || !(p = get_varint64(p, v.data + v.len, &sz)) || sz > UINT32_MAX)
		return -1;
	h->offset = off;
	h->size = (uint32_t)sz;
	return 0;
}

static void note_seq(struct lsm_table_report *r, uint64_t seq)
{
	if (r->entries + r->range_dels == 0 || seq < r->min_seq)
		r->min_seq = seq;
	if (seq > r->max_seq)
		r->max_seq = seq;
}

int lsm_inspect_table_file(lsm_env *env, const char *path, int (*fn)(void *arg, const struct lsm_raw_entry *e),
			   void *arg, struct lsm_table_report *rep)
{
	struct lsm_table_report dummy;
	if (!rep)
		rep = &dummy;
	memset(rep, 0, sizeof *rep);
	if (!env)
		env = lsm_env_posix();
	struct table *t;
	int rc = table_open(env, path, 0, 0, NULL, &t); /* checks footer, index, filter, tombstones, props */
	if (rc)
		return rc;
	/* Blob files live beside the table. */
	struct blob_files bf = {0};
	struct lsm_buf bval = {0};
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
	if (!dir || blob_files_init(&bf, env, dir, NULL)) {
		free(dir);
		table_close(t);
		return st_error(LSM_NOMEM, "out of memory");
	}
	free(dir);
	rep->size = t->size;
	rep->format_version = t->format_version;
	rep->prop_entries = t->props.entries;
	rep->prop_deletes = t->props.deletes;
	rep->prop_range_dels = t->props.range_dels;
	rep->index_bytes = t->h_index.size;
	rep->filter_bytes = t->filter.len;
	rep->has_filter = t->filter.len > 0;
	struct buf prev = {0};
	struct block_iter idx;
	block_iter_init(&idx, &t->index, BLOCK_CMP_IKEY);
	uint64_t expect_off = 0;
	struct buf prev_index = {0};
	for (iter_seek_first(&idx.base); idx.base.valid && !rc; iter_next(&idx.base)) {
		struct block_handle h;
		if (decode_handle(idx.base.value, &h)) {
			rc = st_corrupt(path, t->h_index.offset, "malformed block handle in the index entry at %zu", idx.cur);
			break;
		}
		if (h.offset != expect_off) {
			rc = st_corrupt(path, h.offset, "index points at a data block at %" PRIu64 ", expected %" PRIu64,
					h.offset, expect_off);
			break;
		}
		if (prev_index.len && ikey_cmp(slice_make(prev_index.data, prev_index.len), idx.base.key) >= 0) {
			rc = st_corrupt(path, t->h_index.offset, "index keys out of order");
			break;
		}
		prev_index.len = 0;
		buf_append(&prev_index, idx.base.key.data, idx.base.key.len);
		expect_off = h.offset + h.size + BLOCK_TRAILER_SIZE;
		char *raw;
		if ((rc = table_read_block(t, h, &raw)))
			break;
		rep->data_blocks++;
		struct block b;
		if (block_parse(&b, raw, h.size)) {
			free(raw);
			rc = st_corrupt(path, h.offset, "malformed data block (restart array)");
			break;
		}
		struct block_iter bi;
		block_iter_init(&bi, &b, BLOCK_CMP_IKEY);
		for (iter_seek_first(&bi.base); bi.base.valid && !rc; iter_next(&bi.base)) {
			struct slice ik = bi.base.key;
			if (prev.len && ikey_cmp(slice_make(prev.data, prev.len), ik) >= 0) {
				rc = st_corrupt(path, h.offset, "keys out of order in a data block");
				break;
			}
			unsigned type = ikey_type(ik);
			if (type != VT_VALUE && type != VT_DELETE && type != VT_BLOB) {
				rc = st_corrupt(path, h.offset, "entry of unknown type %u", type);
				break;
			}
			if (type == VT_BLOB) {
				struct blob_ref ref;
				if (blob_ref_decode(bi.base.value, &ref)) {
					rc = st_corrupt(path, h.offset, "malformed blob reference");
					break;
				}
				if ((rc = blob_read(&bf, ikey_user(ik), &ref, &bval)))
					break;
			}
			prev.len = 0;
			buf_append(&prev, ik.data, ik.len);
			note_seq(rep, ikey_seq(ik));
			rep->entries++;
			rep->deletes += type == VT_DELETE;
			if (fn) {
				struct lsm_raw_entry e = {ik.data, ik.len - IKEY_TRAILER, ikey_seq(ik), (int)type,
							  bi.base.value.data, bi.base.value.len, h.offset};
				rc = fn(arg, &e);
			}
		}
		if (!rc && bi.base.status)
			rc = st_corrupt(path, h.offset, "malformed entry in a data block");
		if (!rc && ikey_cmp(slice_make(prev.data, prev.len), idx.base.key) > 0)
			rc = st_corrupt(path, t->h_index.offset, "index key below the last key of block %" PRIu64, h.offset);
		block_iter_cleanup(&bi);
		free(raw);
	}
	if (!rc && idx.base.status)
		rc = st_corrupt(path, t->h_index.offset, "malformed index block");
	block_iter_cleanup(&idx);
	if (!rc && expect_off != t->data_end)
		rc = st_corrupt(path, expect_off, "data blocks end at %" PRIu64 " but the meta blocks start at %" PRIu64,
				expect_off, t->data_end);
	/* Raw range tombstones. */
	if (!rc && t->h_rangedel.size) {
		char *raw;
		if (!(rc = table_read_block(t, t->h_rangedel, &raw))) {
			struct block b;
			if (block_parse(&b, raw, t->h_rangedel.size)) {
				rc = st_corrupt(path, t->h_rangedel.offset, "malformed range-deletion block");
			} else {
				struct block_iter bi;
				block_iter_init(&bi, &b, BLOCK_CMP_IKEY);
				for (iter_seek_first(&bi.base); bi.base.valid && !rc; iter_next(&bi.base)) {
					note_seq(rep, ikey_seq(bi.base.key));
					rep->range_dels++;
					if (fn) {
						struct lsm_raw_entry e = {bi.base.key.data, bi.base.key.len - IKEY_TRAILER,
									  ikey_seq(bi.base.key), LSM_ENTRY_RANGE_DELETE,
									  bi.base.value.data, bi.base.value.len,
									  t->h_rangedel.offset};
						rc = fn(arg, &e);
					}
				}
				block_iter_cleanup(&bi);
			}
			free(raw);
		}
	}
	if (!rc && (rep->entries != rep->prop_entries || rep->deletes != rep->prop_deletes ||
		    rep->range_dels != rep->prop_range_dels))
		rc = st_corrupt(path, t->h_props.offset,
				"properties say %" PRIu64 " entries / %" PRIu64 " deletes / %" PRIu64
				" range deletes, the blocks hold %" PRIu64 " / %" PRIu64 " / %" PRIu64,
				rep->prop_entries, rep->prop_deletes, rep->prop_range_dels, rep->entries, rep->deletes,
				rep->range_dels);
	if (!rc && rep->entries + rep->range_dels &&
	    (rep->min_seq != t->props.min_seq || rep->max_seq != t->props.max_seq))
		rc = st_corrupt(path, t->h_props.offset, "properties give seqnos %" PRIu64 "..%" PRIu64
				", the entries span %" PRIu64 "..%" PRIu64, t->props.min_seq, t->props.max_seq,
				rep->min_seq, rep->max_seq);
	buf_free(&prev);
	buf_free(&prev_index);
	blob_files_destroy(&bf);
	lsm_buf_free(&bval);
	table_close(t);
	return rc;
}

/* ---------------------------------------------------------------- logs and manifests */

int lsm_inspect_log_file(lsm_env *env, const char *path, uint64_t number, int tail_ok,
			 int (*fn)(void *arg, const struct lsm_raw_entry *e), void *arg, struct lsm_log_report *rep)
{
	struct lsm_log_report dummy;
	if (!rep)
		rep = &dummy;
	memset(rep, 0, sizeof *rep);
	if (!env)
		env = lsm_env_posix();
	struct wal_reader *r;
	int rc = wal_reader_open(env, path, number, tail_ok ? WAL_TAIL_OK : WAL_STRICT, &r);
	if (rc)
		return rc;
	rep->size = r->size;
	for (;;) {
		struct slice payload;
		uint64_t off, seq;
		uint32_t count;
		struct batch_reader br;
		int n = wal_read_batch(r, &payload, &off, &br, &seq, &count);
		if (n <= 0) {
			rc = n;
			break;
		}
		rep->records++;
		if (count) {
			if (!rep->first_seq)
				rep->first_seq = seq;
			if (seq + count - 1 < rep->last_seq) {
				rc = st_corrupt(path, off, "seqno %" PRIu64 " goes back (last was %" PRIu64 ")", seq,
						rep->last_seq);
				break;
			}
			rep->last_seq = seq + count - 1;
		}
		struct batch_op op;
		int k;
		while ((k = batch_reader_next(&br, &op)) == 1) {
			rep->ops++;
			if (fn) {
				struct lsm_raw_entry e = {op.key.data, op.key.len, seq, (int)op.type, op.value.data,
							  op.value.len, off};
				if ((rc = fn(arg, &e)))
					break;
			}
			seq++;
		}
		if (rc)
			break;
		if (k < 0) {
			rc = st_corrupt(path, off, "malformed write batch");
			break;
		}
	}
	rep->torn_offset = r->torn_offset;
	rep->torn_bytes = r->torn_bytes;
	rep->skipped_records = r->skipped_records;
	rep->skipped_bytes = r->skipped_bytes;
	wal_reader_close(r);
	return rc;
}

int lsm_inspect_manifest_file(lsm_env *env, const char *path, uint64_t number,
			      int (*fn)(void *arg, const struct lsm_edit_info *e), void *arg)
{
	if (!env)
		env = lsm_env_posix();
	struct wal_reader *r;
	int rc = wal_reader_open(env, path, number, WAL_TAIL_OK, &r);
	if (rc)
		return rc;
	for (;;) {
		unsigned type;
		struct slice payload;
		uint64_t off;
		int n = wal_read(r, &type, &payload, &off);
		if (n <= 0) {
			rc = n;
			break;
		}
		if (type != WAL_REC_EDIT) {
			rc = st_corrupt(path, off, "record of type %u in a manifest", type);
			break;
		}
		struct version_edit e;
		if ((rc = edit_decode(&e, payload))) {
			rc = rc == LSM_NOMEM ? st_error(rc, "out of memory") : st_corrupt(path, off, "malformed version edit");
			break;
		}
		int na = e.nadded, nd = e.ndeleted;
		int *al = malloc(sizeof(int) * (size_t)(na + 1)), *dl = malloc(sizeof(int) * (size_t)(nd + 1));
		uint64_t *an = malloc(sizeof(uint64_t) * (size_t)(na + 1)), *dn = malloc(sizeof(uint64_t) * (size_t)(nd + 1));
		if (!al || !dl || !an || !dn) {
			rc = st_error(LSM_NOMEM, "out of memory");
		} else {
			for (int i = 0; i < na; i++) {
				al[i] = e.added[i].level;
				an[i] = e.added[i].f->number;
			}
			for (int i = 0; i < nd; i++) {
				dl[i] = e.deleted[i].level;
				dn[i] = e.deleted[i].number;
			}
			struct lsm_edit_info info = {
				.offset = off, .has_log_number = e.has_log_number, .has_next_file = e.has_next_file,
				.has_last_seq = e.has_last_seq, .has_format = e.has_format, .log_number = e.log_number,
				.next_file = e.next_file, .last_seq = e.last_seq, .format = e.format, .nadded = na,
				.ndeleted = nd, .added_level = al, .added_number = an, .deleted_level = dl,
				.deleted_number = dn,
			};
			rc = fn(arg, &info);
		}
		free(al);
		free(dl);
		free(an);
		free(dn);
		edit_free(&e);
		if (rc)
			break;
	}
	wal_reader_close(r);
	return rc;
}

int lsm_inspect_locked(lsm_env *env, const char *dir)
{
	if (!env)
		env = lsm_env_posix();
	char *p = path_join(dir, "LOCK");
	if (!p)
		return st_error(LSM_NOMEM, "out of memory");
	int r = env->lock_held(env, p);
	free(p);
	return r < 0 ? st_errno(r, "probe the lock of %s", dir) : r;
}
