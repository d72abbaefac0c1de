/*
 * compaction.c - leveled compaction: picking inputs, merging them with snapshot-aware garbage
 * collection of old versions and tombstones, splitting output into tables, and compact_range.
 *
 * Version retention. Live snapshots S1 < S2 < ... < Sk cut the seqno axis into stripes
 * (0, S1], (S1, S2], ..., (Sk, inf). A reader at any seqno inside a stripe sees, of the versions of a
 * key in that stripe, only the newest. So for each user key the merge keeps the newest version of
 * every stripe and drops the rest (this is the rule the Rust lsm-tree crate's issue #321 got wrong by
 * comparing against the wrong version). A version hidden by a range tombstone of the same stripe is
 * dropped too: no reader can see one without the other. A point tombstone is dropped only when it is in
 * the first stripe and no deeper level may hold the key; range tombstone seqnos likewise.
 * Readers that hold no registered snapshot are safe: they read the version they acquired, and one that
 * acquires the new version does so at a seqno at least as new as every input.
 *
 * Output boundaries. Outputs split only between user keys. Range tombstones are cut at output
 * boundaries: a table ending before key K records its tombstones up to K (exclusive) and its largest
 * key as (K, SEQNO_MAX), which sorts before any real entry of K, so tables of a level never overlap in
 * internal-key order and lookups compare internal keys to pick a table (version.c).
 *
 * Blob files. References (VT_BLOB) are copied like any value, and each output records the blob files it
 * references (file_meta.blobs). A reference into a blob file that the current tables reference for less
 * than half its size has its value copied into this compaction's own blob file (relocation), so that
 * the old file stops being referenced once every table naming it has been compacted.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "db_impl.h"
#include "dbformat.h"
#include "iter.h"
#include "rangedel.h"
#include "status.h"
#include "table.h"

struct compaction {
	int level;                       /* inputs from level and level + 1 */
	struct file_meta **in[2];
	int nin[2];
	struct version *v;               /* the version the inputs were picked from (ref held) */
	int trivial;                     /* a single table moved down without rewriting */
	struct buf next_ptr;             /* compaction pointer to record for `level` */
};

static struct slice fsmall(const struct file_meta *f)
{
	return slice_make(f->smallest.data, f->smallest.len);
}
static struct slice flarge(const struct file_meta *f)
{
	return slice_make(f->largest.data, f->largest.len);
}

static void compaction_free(struct lsm_db *db, struct compaction *c)
{
	if (!c)
		return;
	for (int w = 0; w < 2; w++) {
		for (int i = 0; i < c->nin[w]; i++)
			c->in[w][i]->being_compacted = 0;
		free(c->in[w]);
	}
	if (c->v) {
		(void)db;
		version_unref(c->v); /* mu held by every caller */
	}
	buf_free(&c->next_ptr);
	free(c);
}

/* User-key range [lo, hi] of a set of files. */
static void range_of(struct file_meta **f, int n, struct slice *lo, struct slice *hi)
{
	for (int i = 0; i < n; i++) {
		struct slice s = ikey_user(fsmall(f[i])), l = ikey_user(flarge(f[i]));
		if (i == 0 || slice_cmp(s, *lo) < 0)
			*lo = s;
		if (i == 0 || slice_cmp(l, *hi) > 0)
			*hi = l;
	}
}

static int overlaps(const struct file_meta *f, struct slice lo, struct slice hi)
{
	/* NULL data: unbounded. */
	if (hi.data && slice_cmp(ikey_user(fsmall(f)), hi) > 0)
		return 0;
	if (lo.data && slice_cmp(ikey_user(flarge(f)), lo) < 0)
		return 0;
	return 1;
}

static int push(struct file_meta ***v, int *n, struct file_meta *f)
{
	struct file_meta **p = realloc(*v, (size_t)(*n + 1) * sizeof **v);
	if (!p)
		return LSM_NOMEM;
	*v = p;
	(*v)[(*n)++] = f;
	return LSM_OK;
}

static int contains(struct file_meta **v, int n, const struct file_meta *f)
{
	for (int i = 0; i < n; i++)
		if (v[i] == f)
			return 1;
	return 0;
}

/* Add every file of `level` overlapping [lo, hi]; for level 0, widen the range by what was added
 * until nothing more overlaps (an older overlapping level-0 table must never stay above a newer one
 * that moves down). Returns 1 if a needed file is being compacted already. */
static int add_overlapping(struct version *v, int level, struct slice lo, struct slice hi,
			   struct file_meta ***out, int *n)
{
	int changed = 1;
	while (changed) {
		changed = 0;
		for (int i = 0; i < v->nfiles[level]; i++) {
			struct file_meta *f = v->files[level][i];
			if (contains(*out, *n, f) || !overlaps(f, lo, hi))
				continue;
			if (f->being_compacted)
				return 1;
			if (push(out, n, f))
				return 1;
			if (level == 0) {
				range_of(*out, *n, &lo, &hi);
				changed = 1;
			}
		}
	}
	return 0;
}

/* Complete c->in[1] from c->in[0]; decide on a trivial move. */
static int finish_pick(struct compaction *c)
{
	struct slice lo, hi;
	range_of(c->in[0], c->nin[0], &lo, &hi);
	if (c->level + 1 < NUM_LEVELS && add_overlapping(c->v, c->level + 1, lo, hi, &c->in[1], &c->nin[1]))
		return -1;
	c->trivial = c->nin[0] == 1 && c->nin[1] == 0;
	return 0;
}

static struct compaction *compaction_new(struct version *v, int level)
{
	struct compaction *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->level = level;
	c->v = v;
	version_ref(v);
	return c;
}

/* Choose the next compaction from the version's scores. REQUIRES: mu held. NULL: nothing to do. */
static struct compaction *pick(struct lsm_db *db)
{
	struct version *v = db->vs->current;
	if (v->compaction_score < 1)
		return NULL;
	int level = v->compaction_level;
	struct compaction *c = compaction_new(v, level);
	if (!c)
		return NULL;
	if (level == 0) {
		/* The oldest table, widened to every level-0 table it overlaps. */
		struct file_meta *oldest = v->files[0][v->nfiles[0] - 1];
		struct slice lo = ikey_user(fsmall(oldest)), hi = ikey_user(flarge(oldest));
		if (add_overlapping(v, 0, lo, hi, &c->in[0], &c->nin[0]) || c->nin[0] == 0)
			goto none;
	} else {
		/* Round-robin through the level from where the last compaction of it stopped. */
		struct buf *ptr = &db->vs->compact_ptr[level];
		struct file_meta *f = NULL;
		for (int i = 0; i < v->nfiles[level]; i++) {
			struct file_meta *x = v->files[level][i];
			if (x->being_compacted)
				continue;
			if (!ptr->len || ikey_cmp(flarge(x), slice_make(ptr->data, ptr->len)) > 0) {
				f = x;
				break;
			}
		}
		for (int i = 0; !f && i < v->nfiles[level]; i++)
			if (!v->files[level][i]->being_compacted)
				f = v->files[level][i];
		if (!f || push(&c->in[0], &c->nin[0], f))
			goto none;
		if (buf_append(&c->next_ptr, f->largest.data, f->largest.len))
			goto none;
	}
	if (finish_pick(c))
		goto none;
	return c;
none:
	compaction_free(db, c);
	return NULL;
}

/* ---------------------------------------------------------------- the merge */

struct snapshots {
	uint64_t *s; /* ascending */
	int n;
};

/* Index of the stripe holding seq: the first snapshot >= seq (n: above every snapshot). */
static int stripe_of(const struct snapshots *sn, uint64_t seq)
{
	int lo = 0, hi = sn->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (sn->s[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct output {
	uint64_t number;
	struct file_meta *f;
};

struct cjob {
	struct lsm_db *db;
	struct compaction *c;
	struct snapshots sn;
	struct rd_list frags;      /* every input tombstone, fragmented */
	size_t frag_i;             /* next fragment to emit */
	struct buf lo;             /* lower boundary of the current output (empty before the first) */
	int have_lo;
	struct table_builder *tb;
	uint64_t tb_number;
	struct buf last_uk;        /* last user key written to the current output */
	int tb_has_key;
	struct output *outs;
	int nouts;
	uint64_t bytes_out;
	struct blob_uses uses;     /* blob files the current output references */
	/* Relocation (see the top): the blob files to empty (bytes unused); the output file and its
	 * pending records. */
	struct blob_uses reloc;
	struct wal_writer *bw;
	uint64_t bw_number;
	struct buf recs;
	struct lsm_buf val;
	uint64_t relocated;
	/* Deeper levels, for "may a deeper level hold this key?" (keys come in ascending order). */
	int deep_idx[NUM_LEVELS];
};

/* Could a level below the output level hold user key k? Cursors advance monotonically. */
static int deeper_has(struct cjob *j, struct slice k)
{
	struct version *v = j->c->v;
	for (int l = j->c->level + 2; l < NUM_LEVELS; l++) {
		int *i = &j->deep_idx[l];
		while (*i < v->nfiles[l] && slice_cmp(ikey_user(flarge(v->files[l][*i])), k) < 0)
			(*i)++;
		if (*i < v->nfiles[l] && slice_cmp(ikey_user(fsmall(v->files[l][*i])), k) <= 0)
			return 1;
	}
	return 0;
}

/* Could a level below the output level hold any key of [b, e)? (No cursor: tombstones are few.) */
static int deeper_has_range(struct cjob *j, struct slice b, struct slice e)
{
	struct version *v = j->c->v;
	for (int l = j->c->level + 2; l < NUM_LEVELS; l++)
		for (int i = 0; i < v->nfiles[l]; i++) {
			struct file_meta *f = v->files[l][i];
			if (slice_cmp(ikey_user(fsmall(f)), e) < 0 && slice_cmp(ikey_user(flarge(f)), b) >= 0)
				return 1;
		}
	return 0;
}

static int open_output(struct cjob *j)
{
	struct lsm_db *db = j->db;
	pthread_mutex_lock(&db->mu);
	uint64_t number = vset_new_file_number(db->vs);
	int rc = db_pending_add(db, number);
	pthread_mutex_unlock(&db->mu);
	if (rc)
		return rc;
	char *path = path_table(db->dir, number);
	if (!path)
		return st_error(LSM_NOMEM, "out of memory");
	struct table_opts to = db_table_opts(db);
	rc = table_builder_open(db->env, path, &to, &j->tb);
	free(path);
	if (rc)
		return rc;
	j->tb_number = number;
	j->tb_has_key = 0;
	return LSM_OK;
}

/* Emit the surviving tombstone fragments that intersect [lo, hi) into the current output, cut to
 * that range. hi NULL: unbounded. */
static int emit_fragments(struct cjob *j, struct slice hi)
{
	struct slice lo = j->have_lo ? slice_make(j->lo.data, j->lo.len) : slice_make(NULL, 0);
	while (j->frag_i < j->frags.n) {
		const struct rd_frag *fr = &j->frags.frags[j->frag_i];
		if (hi.data && slice_cmp(fr->begin, hi) >= 0)
			break;
		struct slice b = lo.data && slice_cmp(fr->begin, lo) < 0 ? lo : fr->begin;
		struct slice e = hi.data && slice_cmp(fr->end, hi) > 0 ? hi : fr->end;
		if (slice_cmp(b, e) < 0) {
			int bottom = !deeper_has_range(j, b, e);
			int last_stripe = -1;
			for (uint32_t s = 0; s < fr->nseq; s++) { /* newest first */
				int st = stripe_of(&j->sn, fr->seqs[s]);
				if (st == last_stripe)
					continue; /* an older tombstone of the same stripe adds nothing */
				last_stripe = st;
				if (st == 0 && bottom)
					continue; /* nothing left below or before it to hide */
				if (!j->tb) {
					int rc = open_output(j);
					if (rc)
						return rc;
				}
				int rc = table_builder_add_range(j->tb, b, e, fr->seqs[s]);
				if (rc)
					return rc;
			}
		}
		if (hi.data && slice_cmp(fr->end, hi) > 0)
			break; /* continues into the next output */
		j->frag_i++;
	}
	return LSM_OK;
}

/* Finish the current output at boundary hi (the next output's first user key; NULL: the last). */
static int close_output(struct cjob *j, struct slice hi)
{
	int rc = emit_fragments(j, hi);
	if (rc)
		return rc;
	if (hi.data) {
		j->lo.len = 0;
		if (buf_append(&j->lo, hi.data, hi.len))
			return st_error(LSM_NOMEM, "out of memory");
		j->have_lo = 1;
	}
	if (!j->tb)
		return LSM_OK;
	struct file_meta *f = file_meta_new();
	struct table_props props;
	if (!f) {
		table_builder_abandon(j->tb);
		j->tb = NULL;
		return st_error(LSM_NOMEM, "out of memory");
	}
	rc = table_builder_finish(j->tb, &props, &f->size);
	j->tb = NULL;
	if (rc) {
		file_meta_unref(f);
		return rc;
	}
	f->number = j->tb_number;
	f->smallest = props.smallest;
	f->largest = props.largest;
	f->min_seq = props.min_seq;
	f->max_seq = props.max_seq;
	f->entries = props.entries;
	f->deletes = props.deletes;
	f->range_dels = props.range_dels;
	f->blobs = j->uses;
	memset(&j->uses, 0, sizeof j->uses);
	struct output *o = realloc(j->outs, (size_t)(j->nouts + 1) * sizeof *o);
	if (!o) {
		file_meta_unref(f);
		return st_error(LSM_NOMEM, "out of memory");
	}
	j->outs = o;
	o[j->nouts].number = f->number;
	o[j->nouts].f = f;
	j->nouts++;
	j->bytes_out += f->size;
	return LSM_OK;
}

/* Collect every input table's tombstone fragments into one fragmented list. */
static int gather_tombstones(struct cjob *j)
{
	struct rd_tombstone *raw = NULL;
	size_t n = 0, cap = 0;
	void **pins = NULL;
	int npins = 0, rc = LSM_OK;
	for (int w = 0; w < 2 && !rc; w++)
		for (int i = 0; i < j->c->nin[w] && !rc; i++) {
			struct file_meta *f = j->c->in[w][i];
			if (!f->range_dels)
				continue;
			struct table *t;
			void *h;
			if ((rc = vset_table(j->db->vs, f, &t, &h)))
				break;
			void **np = realloc(pins, (size_t)(npins + 1) * sizeof *np);
			if (!np) {
				vset_table_release(j->db->vs, h);
				rc = LSM_NOMEM;
				break;
			}
			pins = np;
			pins[npins++] = h;
			for (size_t k = 0; k < t->tombstones.n && !rc; k++) {
				const struct rd_frag *fr = &t->tombstones.frags[k];
				for (uint32_t s = 0; s < fr->nseq; s++) {
					if (n == cap) {
						cap = cap ? 2 * cap : 64;
						struct rd_tombstone *p = realloc(raw, cap * sizeof *p);
						if (!p) {
							rc = LSM_NOMEM;
							break;
						}
						raw = p;
					}
					raw[n].begin = fr->begin;
					raw[n].end = fr->end;
					raw[n].seq = fr->seqs[s];
					n++;
				}
			}
		}
	if (!rc)
		rc = rd_list_build(&j->frags, raw, n);
	for (int i = 0; i < npins; i++)
		vset_table_release(j->db->vs, pins[i]);
	free(pins);
	free(raw);
	return rc == LSM_NOMEM ? st_error(rc, "out of memory") : rc;
}

/* The newest tombstone fragment seqno > seq covering uk (0 if none), from a cursor over frags. */
static uint64_t hiding_seq(const struct rd_frag *fr, uint64_t seq)
{
	uint64_t best = 0;
	for (uint32_t s = 0; s < fr->nseq && fr->seqs[s] > seq; s++)
		best = fr->seqs[s]; /* descending: ends at the smallest one above seq */
	return best;
}

/* Choose the blob files this compaction empties: those its inputs reference whose bytes the current
 * tables reference add up to less than half the file. REQUIRES: mu held (a stat per file). */
static int pick_relocations(struct cjob *j)
{
	struct lsm_db *db = j->db;
	int rc = LSM_OK;
	for (int w = 0; w < 2 && !rc; w++)
		for (int i = 0; i < j->c->nin[w] && !rc; i++) {
			const struct blob_uses *u = &j->c->in[w][i]->blobs;
			for (int b = 0; b < u->n && !rc; b++) {
				uint64_t number = u->v[b].number;
				if (blob_uses_find(&j->reloc, number))
					continue;
				/* Bytes the current tables reference in it (the version sums them). */
				const struct blob_use *live = blob_uses_find(&db->vs->current->blobs, number);
				char *path = path_blob(db->dir, number);
				uint64_t size = 0;
				if (path && live && !db->env->file_size(db->env, path, &size) && size > BLOB_HEADER_SIZE &&
				    live->bytes < (size - BLOB_HEADER_SIZE) / 2)
					rc = blob_uses_add(&j->reloc, number, 0);
				free(path);
			}
		}
	return rc ? st_error(rc, "out of memory") : LSM_OK;
}

/* Value bytes one compaction relocates at most. */
#define RELOCATE_MAX(db) (4 * (uint64_t)(db)->o.table_target_size)

/* Write the pending relocated records to the compaction's blob file. */
static int flush_relocated(struct cjob *j)
{
	if (!j->recs.len)
		return LSM_OK;
	int rc = wal_append_raw(j->bw, j->recs.data, j->recs.len);
	j->recs.len = 0;
	return rc;
}

/* If *ref points into a blob file being emptied, copy its value into the compaction's blob file and
 * point *ref at the copy. */
static int relocate(struct cjob *j, struct slice uk, struct blob_ref *ref)
{
	if (!blob_uses_find(&j->reloc, ref->number))
		return LSM_OK;
	/* A table of references can name gigabytes of values: copy at most a bounded amount per
	 * compaction (the space reserve covers about a compaction's outputs), later ones go on. */
	if (j->relocated + ref->len > RELOCATE_MAX(j->db))
		return LSM_OK;
	struct lsm_db *db = j->db;
	int rc = blob_read(&db->blobs, uk, ref, &j->val);
	if (rc)
		return rc;
	if (!j->bw) {
		pthread_mutex_lock(&db->mu);
		j->bw_number = vset_new_file_number(db->vs);
		rc = db_pending_add(db, j->bw_number);
		pthread_mutex_unlock(&db->mu);
		if (rc || (rc = blob_writer_open(db->env, db->dir, j->bw_number, &j->bw)))
			return rc;
	}
	j->relocated += ref->len;
	if ((rc = blob_record_encode(&j->recs, j->bw, uk, slice_make(j->val.data, j->val.len), ref)))
		return rc;
	return j->recs.len >= (1u << 20) ? flush_relocated(j) : LSM_OK;
}

/* Keep reference *value in the output: if it points into a blob file being emptied, copy the value
 * into the compaction's blob file and point *value at the copy (encoded into enc); count it in the
 * output's blob uses either way. */
static int keep_reference(struct cjob *j, struct slice uk, struct slice *value, char *enc)
{
	struct blob_ref ref;
	if (blob_ref_decode(*value, &ref))
		return st_error(LSM_CORRUPT, "malformed blob reference in a compaction input");
	uint64_t was = ref.number;
	int rc = relocate(j, uk, &ref);
	if (rc)
		return rc;
	if (blob_uses_add(&j->uses, ref.number, blob_record_size(uk.len, ref.len)))
		return st_error(LSM_NOMEM, "out of memory");
	if (ref.number != was) /* relocated: the output names the copy */
		*value = slice_make(enc, blob_ref_encode(enc, &ref));
	return LSM_OK;
}

static int run_merge(struct cjob *j)
{
	struct lsm_db *db = j->db;
	struct compaction *c = j->c;
	int nch = c->nin[0] + c->nin[1];
	struct iter **ch = calloc((size_t)(nch ? nch : 1), sizeof *ch);
	int rc = ch ? LSM_OK : LSM_NOMEM, n = 0;
	for (int w = 0; w < 2 && !rc; w++)
		for (int i = 0; i < c->nin[w] && !rc; i++)
			if (!(rc = vset_table_iter(db->vs, c->in[w][i], 0, &ch[n])))
				n++;
	if (rc) {
		for (int i = 0; i < n; i++)
			iter_destroy(ch[i]);
		free(ch);
		return rc == LSM_NOMEM ? st_error(rc, "out of memory") : rc;
	}
	struct iter *m = iter_merge_new(ch, n);
	free(ch);
	if (!m)
		return st_error(LSM_NOMEM, "out of memory");
	if ((rc = gather_tombstones(j))) {
		iter_destroy(m);
		return rc;
	}
	struct rd_cursor cur;
	rd_cursor_init(&cur, &j->frags);
	struct buf uk_cur = {0};
	int have_uk = 0, last_stripe = -1;
	size_t target = db->o.table_target_size;
	for (iter_seek_first(m); m->valid && !rc; iter_next(m)) {
		struct slice ik = m->key;
		struct slice uk = ikey_user(ik);
		uint64_t seq = ikey_seq(ik);
		unsigned type = ikey_type(ik);
		int new_key = !have_uk || slice_cmp(uk, slice_make(uk_cur.data, uk_cur.len)) != 0;
		if (new_key) {
			uk_cur.len = 0;
			if (buf_append(&uk_cur, uk.data, uk.len)) {
				rc = st_error(LSM_NOMEM, "out of memory");
				break;
			}
			have_uk = 1;
			last_stripe = -1;
		}
		int st = stripe_of(&j->sn, seq);
		if (st == last_stripe)
			continue; /* shadowed by a newer version of the same stripe */
		last_stripe = st;
		if (j->frags.n) {
			rd_cursor_covering(&cur, uk, SEQNO_MAX); /* positions the cursor */
			if (cur.i < j->frags.n && slice_cmp(j->frags.frags[cur.i].begin, uk) <= 0) {
				uint64_t r = hiding_seq(&j->frags.frags[cur.i], seq);
				if (r && stripe_of(&j->sn, r) == st)
					continue; /* hidden by a tombstone no reader can see past */
			}
		}
		if (type == VT_DELETE && st == 0 && !deeper_has(j, uk))
			continue;
		/* Split outputs only between user keys, once the current one is big enough. */
		if (j->tb && new_key && j->tb_has_key && table_builder_size(j->tb) >= target) {
			if ((rc = close_output(j, uk)))
				break;
		}
		if (!j->tb && (rc = open_output(j)))
			break;
		if (!j->tb_has_key) {
			/* Fragments before this output's first key belong to it (from the boundary on). */
			if ((rc = emit_fragments(j, uk)))
				break;
		}
		struct slice value = m->value;
		char enc[BLOB_REF_MAX];
		if (type == VT_BLOB && (rc = keep_reference(j, uk, &value, enc)))
			break;
		if ((rc = table_builder_add(j->tb, ik, value)))
			break;
		j->tb_has_key = 1;
	}
	if (!rc && m->status)
		rc = m->status;
	iter_destroy(m);
	buf_free(&uk_cur);
	if (!rc)
		rc = close_output(j, slice_make(NULL, 0));
	/* The relocated values must be durable before an install makes the outputs name them. */
	if (!rc && j->bw && !(rc = flush_relocated(j)))
		rc = wal_sync(j->bw);
	return rc;
}

/* Run c (mu held on entry and exit; released during I/O). */
static int run_compaction(struct lsm_db *db, struct compaction *c)
{
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < c->nin[w]; i++)
			c->in[w][i]->being_compacted = 1;
	struct version_edit e;
	edit_init(&e);
	int rc = LSM_OK;
	if (c->next_ptr.len) {
		e.has_compact_ptr[c->level] = 1;
		if (buf_append(&e.compact_ptr[c->level].key, c->next_ptr.data, c->next_ptr.len))
			rc = st_error(LSM_NOMEM, "out of memory");
	}
	if (!rc && c->trivial) {
		struct file_meta *f = c->in[0][0];
		if (edit_delete_file(&e, c->level, f->number) || edit_add_file(&e, c->level + 1, f))
			rc = st_error(LSM_NOMEM, "out of memory");
		if (!rc)
			rc = db_install_edit(db, &e);
		edit_free(&e);
		if (!rc)
			db->st_compactions++;
		return rc;
	}
	struct cjob j;
	memset(&j, 0, sizeof j);
	j.db = db;
	j.c = c;
	/* Its outputs take disk space until the install deletes the inputs (lsm_stats). */
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < c->nin[w]; i++)
			db->compacting_bytes += c->in[w][i]->size;
	j.sn.s = db_snapshot_list(db, &j.sn.n);
	if (!j.sn.s)
		rc = st_error(LSM_NOMEM, "out of memory");
	uint64_t bytes_in = 0;
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < c->nin[w]; i++)
			bytes_in += c->in[w][i]->size;
	if (!rc)
		rc = pick_relocations(&j);
	pthread_mutex_unlock(&db->mu);
	if (!rc)
		rc = run_merge(&j);
	if (!rc && j.nouts) {
		int err = db->env->sync_dir(db->env, db->dir);
		if (err)
			rc = st_errno(err, "sync directory %s", db->dir);
	}
	if (j.tb)
		table_builder_abandon(j.tb);
	if (j.bw) {
		int e = wal_writer_close(j.bw);
		if (!rc)
			rc = e;
	}
	pthread_mutex_lock(&db->mu);
	for (int w = 0; w < 2 && !rc; w++)
		for (int i = 0; i < c->nin[w] && !rc; i++)
			if (edit_delete_file(&e, c->level + w, c->in[w][i]->number))
				rc = st_error(LSM_NOMEM, "out of memory");
	for (int i = 0; i < j.nouts && !rc; i++)
		if (edit_add_file(&e, c->level + 1, j.outs[i].f))
			rc = st_error(LSM_NOMEM, "out of memory");
	if (!rc)
		rc = db_install_edit(db, &e);
	if (!rc) {
		db->st_compactions++;
		db->st_bytes_compacted_in += bytes_in;
		db->st_bytes_compacted_out += j.bytes_out;
		db->st_blob_bytes_relocated += j.relocated;
	}
	/* Outputs stay "pending" until here so that no obsolete-file pass deletes them mid-way; on
	 * failure the next pass removes them. */
	db_pending_remove(db, j.tb_number);
	if (j.bw_number)
		db_pending_remove(db, j.bw_number);
	for (int i = 0; i < j.nouts; i++) {
		db_pending_remove(db, j.outs[i].number);
		file_meta_unref(j.outs[i].f);
	}
	free(j.outs);
	blob_uses_free(&j.uses);
	blob_uses_free(&j.reloc);
	buf_free(&j.recs);
	lsm_buf_free(&j.val);
	edit_free(&e);
	rd_list_free(&j.frags);
	buf_free(&j.lo);
	buf_free(&j.last_uk);
	free(j.sn.s);
	db->compacting_bytes = 0;
	return rc;
}

void *compaction_thread_main(void *arg)
{
	struct lsm_db *db = arg;
	pthread_mutex_lock(&db->mu);
	while (!db->shutting_down) {
		struct compaction *c = NULL;
		if (!db->bg_error && !db->o.disable_compaction && !db->manual_compaction)
			c = pick(db);
		if (!c) {
			pthread_cond_wait(&db->bg_cv, &db->mu);
			continue;
		}
		/* `compacting` spans the whole job, installs included (they drop mu), so that a manual
		 * compaction never finds tables of this one still marked busy. */
		db->compacting = 1;
		int rc = run_compaction(db, c);
		compaction_free(db, c);
		db->compacting = 0;
		if (rc)
			db_set_bg_error(db, rc);
		else
			db_delete_obsolete_files(db);
		pthread_cond_broadcast(&db->done_cv);
	}
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

/* Compact every table overlapping [begin, end) level by level down to the deepest level holding
 * data. Runs on the caller's thread while the background compactor stands aside. */
int compaction_manual(struct lsm_db *db, const void *begin, size_t blen, const void *end, size_t elen)
{
	struct slice lo = begin ? slice_make(begin, blen) : slice_make(NULL, 0);
	struct slice hi = end ? slice_make(end, elen) : slice_make(NULL, 0);
	int rc = LSM_OK;
	pthread_mutex_lock(&db->mu);
	while (db->manual_compaction || db->compacting)
		pthread_cond_wait(&db->done_cv, &db->mu);
	db->manual_compaction = 1;
	int deepest = 0;
	for (int l = 0; l < NUM_LEVELS; l++)
		if (db->vs->current->nfiles[l])
			deepest = l;
	for (int level = 0; level < NUM_LEVELS - 1 && !rc; level++) {
		/* Levels at or past the deepest one still get compacted into the next one when they are
		 * the deepest and hold tombstones (so that the bottom can drop them). */
		if (level > deepest)
			break;
		for (;;) {
			if (db->bg_error) {
				rc = db->bg_error;
				break;
			}
			struct version *v = db->vs->current;
			struct compaction *c = compaction_new(v, level);
			if (!c) {
				rc = st_error(LSM_NOMEM, "out of memory");
				break;
			}
			/* All of this level's tables overlapping the range (closed under level-0 overlap). */
			if (add_overlapping(v, level, lo, hi, &c->in[0], &c->nin[0])) {
				compaction_free(db, c);
				rc = st_error(LSM_BUSY, "tables are being compacted");
				break;
			}
			if (c->nin[0] == 0) {
				compaction_free(db, c);
				break;
			}
			if (level == deepest) {
				/* The bottom: rewrite in place into the next level only if that sheds tombstones
				 * or old versions; otherwise leave it. */
				uint64_t garbage = 0;
				for (int i = 0; i < c->nin[0]; i++)
					garbage += c->in[0][i]->deletes + c->in[0][i]->range_dels;
				if (!garbage && db->nsnapshots == 0 && level > 0) {
					compaction_free(db, c);
					break;
				}
			}
			if (finish_pick(c)) {
				compaction_free(db, c);
				rc = st_error(LSM_BUSY, "tables are being compacted");
				break;
			}
			if (level == deepest)
				c->trivial = 0; /* rewrite: that is how the bottom sheds garbage */
			rc = run_compaction(db, c);
			compaction_free(db, c);
			if (!rc)
				db_delete_obsolete_files(db);
			if (rc || level > 0)
				break; /* one pass per level >= 1 covers every overlapping table */
		}
		if (level == deepest && level + 1 < NUM_LEVELS && !rc) {
			deepest = level + 1 < NUM_LEVELS - 1 ? level + 1 : deepest;
			if (!db->vs->current->nfiles[level + 1])
				break;
		}
	}
	db->manual_compaction = 0;
	pthread_cond_broadcast(&db->done_cv);
	pthread_cond_broadcast(&db->bg_cv);
	pthread_mutex_unlock(&db->mu);
	return rc;
}
