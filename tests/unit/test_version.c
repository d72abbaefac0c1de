/* test_version.c - version edits, the manifest (create, log_and_apply, recover), file names, lookups. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bloom.h"
#include "cache.h"
#include "dbformat.h"
#include "env.h"
#include "env_fault.h"
#include "lsm.h"
#include "table.h"
#include "testutil.h"
#include "version.h"
#include "wal.h"
#include "wal_format.h"

/* ---------------------------------------------------------------- helpers */

static void set_ikey(struct buf *b, const char *user, uint64_t seq, unsigned type)
{
	size_t ul = strlen(user);
	b->len = 0;
	ck_assert_int_eq(buf_reserve(b, ul + IKEY_TRAILER), 0);
	ikey_build(b->data, slice_make(user, ul), seq, type);
	b->len = ul + IKEY_TRAILER;
}

/* A file covering user keys [lo, hi]; every field derived from the number so that mix-ups show. */
static struct file_meta *fm(uint64_t number, const char *lo, const char *hi)
{
	struct file_meta *f = file_meta_new();
	ck_assert_ptr_nonnull(f);
	f->number = number;
	f->size = 1000 * number + 7;
	set_ikey(&f->smallest, lo, 100 + number, VT_VALUE);
	set_ikey(&f->largest, hi, 50 + number, VT_DELETE);
	f->min_seq = 50 + number;
	f->max_seq = 100 + number;
	f->entries = 3 * number;
	f->deletes = number;
	f->range_dels = number % 3;
	return f;
}

static void fm_equal(const struct file_meta *a, const struct file_meta *b)
{
	ck_assert_uint_eq(a->number, b->number);
	ck_assert_uint_eq(a->size, b->size);
	ck_assert_uint_eq(a->smallest.len, b->smallest.len);
	ck_assert_mem_eq(a->smallest.data, b->smallest.data, a->smallest.len);
	ck_assert_uint_eq(a->largest.len, b->largest.len);
	ck_assert_mem_eq(a->largest.data, b->largest.data, a->largest.len);
	ck_assert_uint_eq(a->min_seq, b->min_seq);
	ck_assert_uint_eq(a->max_seq, b->max_seq);
	ck_assert_uint_eq(a->entries, b->entries);
	ck_assert_uint_eq(a->deletes, b->deletes);
	ck_assert_uint_eq(a->range_dels, b->range_dels);
}

/* Add a file to an edit, handing it over (the edit takes its own reference; ours is dropped). */
static void add(struct version_edit *e, int level, struct file_meta *f)
{
	ck_assert_int_eq(edit_add_file(e, level, f), 0);
	file_meta_unref(f);
}

/* The layout as text: "L0:7,5 L1:3,4" (levels with files only, in the version's order). */
static void layout(const struct version *v, char *out, size_t n)
{
	out[0] = 0;
	for (int l = 0; l < NUM_LEVELS; l++) {
		if (!v->nfiles[l])
			continue;
		size_t k = strlen(out);
		snprintf(out + k, n - k, "%sL%d:", k ? " " : "", l);
		for (int i = 0; i < v->nfiles[l]; i++) {
			k = strlen(out);
			snprintf(out + k, n - k, "%s%" PRIu64, i ? "," : "", v->files[l][i]->number);
		}
	}
}

static void expect_layout(const struct version *v, const char *want)
{
	char got[512];
	layout(v, got, sizeof got);
	ck_assert_str_eq(got, want);
}

static void versions_equal(const struct version *a, const struct version *b)
{
	for (int l = 0; l < NUM_LEVELS; l++) {
		ck_assert_int_eq(a->nfiles[l], b->nfiles[l]);
		for (int i = 0; i < a->nfiles[l]; i++)
			fm_equal(a->files[l][i], b->files[l][i]);
	}
}

/* ---------------------------------------------------------------- edits */

static void edit_full(struct version_edit *e)
{
	edit_init(e);
	e->has_format = e->has_log_number = e->has_next_file = e->has_last_seq = 1;
	e->format = MANIFEST_FORMAT_VERSION;
	e->log_number = 300;
	e->next_file = UINT64_C(1) << 40; /* multi-byte varints */
	e->last_seq = SEQNO_MAX;
	e->has_compact_ptr[1] = e->has_compact_ptr[6] = 1;
	set_ikey(&e->compact_ptr[1].key, "ptr-one", 9, VT_VALUE);
	set_ikey(&e->compact_ptr[6].key, "", 0, VT_VALUE);
	ck_assert_int_eq(edit_delete_file(e, 0, 17), 0);
	ck_assert_int_eq(edit_delete_file(e, 3, UINT64_MAX), 0);
	for (int i = 0; i < 10; i++) /* more than the initial capacity of 8 */
		add(e, i % NUM_LEVELS, fm(20 + (uint64_t)i, "aaa", "zzz"));
}

static void edits_equal(const struct version_edit *a, const struct version_edit *b)
{
	ck_assert_int_eq(a->has_format, b->has_format);
	ck_assert_int_eq(a->has_log_number, b->has_log_number);
	ck_assert_int_eq(a->has_next_file, b->has_next_file);
	ck_assert_int_eq(a->has_last_seq, b->has_last_seq);
	if (a->has_format)
		ck_assert_uint_eq(a->format, b->format);
	if (a->has_log_number)
		ck_assert_uint_eq(a->log_number, b->log_number);
	if (a->has_next_file)
		ck_assert_uint_eq(a->next_file, b->next_file);
	if (a->has_last_seq)
		ck_assert_uint_eq(a->last_seq, b->last_seq);
	for (int l = 0; l < NUM_LEVELS; l++) {
		ck_assert_int_eq(a->has_compact_ptr[l], b->has_compact_ptr[l]);
		if (a->has_compact_ptr[l]) {
			ck_assert_uint_eq(a->compact_ptr[l].key.len, b->compact_ptr[l].key.len);
			ck_assert_mem_eq(a->compact_ptr[l].key.data, b->compact_ptr[l].key.data, a->compact_ptr[l].key.len);
		}
	}
	ck_assert_int_eq(a->ndeleted, b->ndeleted);
	for (int i = 0; i < a->ndeleted; i++) {
		ck_assert_int_eq(a->deleted[i].level, b->deleted[i].level);
		ck_assert_uint_eq(a->deleted[i].number, b->deleted[i].number);
	}
	ck_assert_int_eq(a->nadded, b->nadded);
	for (int i = 0; i < a->nadded; i++) {
		ck_assert_int_eq(a->added[i].level, b->added[i].level);
		fm_equal(a->added[i].f, b->added[i].f);
	}
}

START_TEST(test_edit_round_trip)
{
	struct version_edit e, d;
	edit_full(&e);
	struct buf enc = {0}, enc2 = {0};
	ck_assert_int_eq(edit_encode(&e, &enc), 0);
	ck_assert_int_eq(edit_decode(&d, slice_make(enc.data, enc.len)), 0);
	edits_equal(&e, &d);
	ck_assert_int_eq(edit_encode(&d, &enc2), 0);
	ck_assert_uint_eq(enc.len, enc2.len);
	ck_assert_mem_eq(enc.data, enc2.data, enc.len);
	/* the decoded edit owns its files: one reference each */
	for (int i = 0; i < d.nadded; i++)
		ck_assert_int_eq(atomic_load(&d.added[i].f->refs), 1);
	edit_free(&d);
	edit_free(&e);
	ck_assert_int_eq(e.nadded, 0);
	buf_free(&enc2);

	/* an empty edit is zero bytes and decodes to nothing */
	edit_init(&e);
	enc.len = 0;
	ck_assert_int_eq(edit_encode(&e, &enc), 0);
	ck_assert_uint_eq(enc.len, 0);
	ck_assert_int_eq(edit_decode(&d, slice_make("", 0)), 0);
	edits_equal(&e, &d);
	edit_free(&d);
	buf_free(&enc);
}
END_TEST

/* Every prefix of an encoded edit either decodes to exactly that prefix's fields (it ends on a field
 * boundary) or is LSM_CORRUPT; nothing is read past its end (ASan: exact-size copies). */
START_TEST(test_edit_prefixes)
{
	struct version_edit e, d;
	edit_full(&e);
	struct buf enc = {0}, re = {0};
	ck_assert_int_eq(edit_encode(&e, &enc), 0);
	int ok = 0, bad = 0;
	for (size_t n = 0; n <= enc.len; n++) {
		char *p = malloc(n ? n : 1);
		ck_assert_ptr_nonnull(p);
		memcpy(p, enc.data, n);
		int rc = edit_decode(&d, slice_make(p, n));
		if (rc == LSM_OK) {
			re.len = 0;
			ck_assert_int_eq(edit_encode(&d, &re), 0);
			ck_assert_uint_eq(re.len, n);
			ck_assert(n == 0 || memcmp(re.data, p, n) == 0);
			edit_free(&d);
			ok++;
		} else {
			ck_assert_int_eq(rc, LSM_CORRUPT);
			ck_assert_int_eq(d.nadded, 0); /* a failed decode leaves nothing to free */
			bad++;
		}
		free(p);
	}
	/* 4 scalars + 2 pointers + 2 deletes + 10 files end on boundaries, plus the empty prefix */
	ck_assert_int_eq(ok, 19);
	ck_assert_int_eq(ok + bad, (int)enc.len + 1);
	edit_free(&e);
	buf_free(&enc);
	buf_free(&re);
}
END_TEST

START_TEST(test_edit_malformed)
{
	struct {
		const char *what;
		uint64_t v[8];
		int n;
	} cases[] = {
		{"unknown tag", {99, 1}, 2},
		{"tag 0", {0}, 1},
		{"format beyond 32 bits", {1, UINT64_C(1) << 32}, 2},
		{"last seq beyond 56 bits", {4, SEQNO_MAX + 1}, 2},
		{"compact pointer level out of range", {5, NUM_LEVELS, 0}, 3},
		{"deleted file level out of range", {6, NUM_LEVELS, 5}, 3},
		{"added file level out of range", {7, NUM_LEVELS}, 2},
	};
	struct version_edit d;
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		struct buf b = {0};
		for (int i = 0; i < cases[c].n; i++)
			ck_assert_int_eq(buf_put_varint(&b, cases[c].v[i]), 0);
		ck_assert_msg(edit_decode(&d, slice_make(b.data, b.len)) == LSM_CORRUPT, "%s: accepted", cases[c].what);
		buf_free(&b);
	}
	/* an added file whose smallest key is shorter than an internal-key trailer */
	struct buf b = {0};
	ck_assert_int_eq(buf_put_varint(&b, 7) | buf_put_varint(&b, 1) | buf_put_varint(&b, 5) | buf_put_varint(&b, 100) |
				 buf_put_lp(&b, "short", 5) | buf_put_lp(&b, "longer-than-8", 13),
			 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(buf_put_varint(&b, 1), 0);
	ck_assert_int_eq(edit_decode(&d, slice_make(b.data, b.len)), LSM_CORRUPT);
	/* the same with a valid smallest decodes */
	b.len = 0;
	ck_assert_int_eq(buf_put_varint(&b, 7) | buf_put_varint(&b, 1) | buf_put_varint(&b, 5) | buf_put_varint(&b, 100) |
				 buf_put_lp(&b, "longer-than-8", 13) | buf_put_lp(&b, "longer-than-8", 13),
			 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(buf_put_varint(&b, 1), 0);
	ck_assert_int_eq(edit_decode(&d, slice_make(b.data, b.len)), 0);
	ck_assert_int_eq(d.nadded, 1);
	ck_assert_uint_eq(d.added[0].f->number, 5);
	edit_free(&d);
	buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- the manifest */

static lsm_env *env;
static struct cache *tcache, *bcache;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
#define DIR "/db"

static void setup(void)
{
	env = lsm_env_mem_new();
	ck_assert_ptr_nonnull(env);
	ck_assert_int_eq(env->mkdir(env, DIR, 0700), 0);
	tcache = cache_new(100);
	bcache = cache_new(1 << 20);
	ck_assert(tcache && bcache);
}

static void teardown(void)
{
	cache_free(tcache);
	cache_free(bcache);
	env->destroy(env);
}

static struct vset *vs_new(lsm_env *e)
{
	struct lsm_options o;
	lsm_options_init(&o);
	struct vset *vs;
	ck_assert_int_eq(vset_new(e, DIR, &o, tcache, bcache, &vs), 0);
	ck_assert_ptr_nonnull(vs->current);
	expect_layout(vs->current, "");
	return vs;
}

static int apply(struct vset *vs, struct version_edit *e)
{
	pthread_mutex_lock(&mu);
	int rc = vset_log_and_apply(vs, e, &mu);
	pthread_mutex_unlock(&mu);
	return rc;
}

static struct vset *recover(lsm_env *e)
{
	struct vset *vs = vs_new(e);
	int rc = vset_recover(vs);
	ck_assert_msg(rc == 0, "recover: %d %s", rc, lsm_errmsg());
	return vs;
}

static void expect_recover_fails(lsm_env *e, int code, const char *msg_part)
{
	struct vset *vs = vs_new(e);
	ck_assert_int_eq(vset_recover(vs), code);
	if (msg_part)
		ck_assert_msg(strstr(lsm_errmsg(), msg_part), "message '%s' lacks '%s'", lsm_errmsg(), msg_part);
	vset_free(vs);
}

static char *current_contents(lsm_env *e)
{
	char *d;
	size_t n;
	ck_assert_int_eq(lsm_env_read_all(e, DIR "/CURRENT", &d, &n), 0);
	return d;
}

/* A history of edits; returns the vset (still open) with everything applied. */
static struct vset *history(lsm_env *e)
{
	struct vset *vs = vs_new(e);
	ck_assert_int_eq(vset_create(vs), 0);
	char *cur = current_contents(e);
	ck_assert_str_eq(cur, "MANIFEST-000001\n");
	free(cur);
	ck_assert_uint_eq(vs->next_file, 2);
	struct version_edit ed;

	/* two flushes to level 0 */
	uint64_t a = vset_new_file_number(vs), b = vset_new_file_number(vs);
	ck_assert_uint_eq(a, 2);
	ck_assert_uint_eq(b, 3);
	edit_init(&ed);
	add(&ed, 0, fm(a, "d", "m"));
	ed.has_log_number = 1;
	ed.log_number = 1;
	ed.has_last_seq = 1;
	ed.last_seq = 500;
	ck_assert_int_eq(apply(vs, &ed), 0);
	edit_free(&ed);
	/* the first apply after create opened a fresh manifest (number 4) and pointed CURRENT at it */
	ck_assert_uint_eq(vs->manifest_number, 4);
	ck_assert_uint_eq(vs->next_file, 5);
	cur = current_contents(e);
	ck_assert_str_eq(cur, "MANIFEST-000004\n");
	free(cur);
	edit_init(&ed);
	add(&ed, 0, fm(b, "a", "z"));
	ck_assert_int_eq(apply(vs, &ed), 0);
	edit_free(&ed);
	expect_layout(vs->current, "L0:3,2"); /* newest first */
	ck_assert_uint_eq(vs->log_number, 1);  /* kept when an edit does not say */
	ck_assert_uint_eq(vs->last_seq, 500);

	/* a compaction: both level-0 files into three level-1 files, a compaction pointer */
	uint64_t c1 = vset_new_file_number(vs), c2 = vset_new_file_number(vs), c3 = vset_new_file_number(vs);
	edit_init(&ed);
	ck_assert_int_eq(edit_delete_file(&ed, 0, a), 0);
	ck_assert_int_eq(edit_delete_file(&ed, 0, b), 0);
	add(&ed, 1, fm(c3, "p", "z"));
	add(&ed, 1, fm(c1, "a", "f"));
	add(&ed, 1, fm(c2, "g", "o"));
	ed.has_compact_ptr[0] = 1;
	set_ikey(&ed.compact_ptr[0].key, "m", 7, VT_VALUE);
	ed.has_last_seq = 1;
	ed.last_seq = 900;
	ed.has_log_number = 1;
	ed.log_number = 8;
	ck_assert_int_eq(apply(vs, &ed), 0);
	edit_free(&ed);
	expect_layout(vs->current, "L1:5,6,7"); /* by smallest key */
	ck_assert_uint_eq(vs->last_seq, 900);
	ck_assert_uint_eq(vs->log_number, 8);
	ck_assert_uint_eq(vs->compact_ptr[0].len, 9);

	/* a trivial move down and a new level-0 file */
	uint64_t d = vset_new_file_number(vs);
	edit_init(&ed);
	ck_assert_int_eq(edit_delete_file(&ed, 1, c2), 0);
	struct file_meta *moved = fm(c2, "g", "o");
	add(&ed, 2, moved);
	add(&ed, 0, fm(d, "b", "c"));
	ck_assert_int_eq(apply(vs, &ed), 0);
	edit_free(&ed);
	expect_layout(vs->current, "L0:8 L1:5,7 L2:6");
	ck_assert_uint_eq(vs->next_file, 9);
	return vs;
}

START_TEST(test_manifest_replay)
{
	struct vset *vs = history(env);
	struct vset *rv = recover(env);
	expect_layout(rv->current, "L0:8 L1:5,7 L2:6");
	versions_equal(vs->current, rv->current);
	ck_assert_uint_eq(rv->log_number, 8);
	ck_assert_uint_eq(rv->last_seq, 900);
	ck_assert_uint_eq(rv->next_file, vs->next_file);
	ck_assert_uint_eq(rv->manifest_number, 4);
	ck_assert_uint_eq(rv->compact_ptr[0].len, vs->compact_ptr[0].len);
	ck_assert_mem_eq(rv->compact_ptr[0].data, vs->compact_ptr[0].data, vs->compact_ptr[0].len);
	ck_assert_uint_eq(rv->edits_replayed, 5); /* the snapshot and four edits */
	vset_free(vs);

	/* go on from the recovered set: a fresh manifest (with a snapshot) is started */
	struct version_edit ed;
	edit_init(&ed);
	ck_assert_int_eq(edit_delete_file(&ed, 0, 8), 0);
	ck_assert_int_eq(apply(rv, &ed), 0);
	edit_free(&ed);
	ck_assert_uint_eq(rv->manifest_number, 9);
	ck_assert_uint_eq(rv->next_file, 10);
	char *cur = current_contents(env);
	ck_assert_str_eq(cur, "MANIFEST-000009\n");
	free(cur);
	struct vset *rv2 = recover(env);
	expect_layout(rv2->current, "L1:5,7 L2:6");
	versions_equal(rv->current, rv2->current);
	ck_assert_uint_eq(rv2->edits_replayed, 2);
	ck_assert_uint_eq(rv2->log_number, 8);
	ck_assert_uint_eq(rv2->last_seq, 900);
	ck_assert_uint_eq(rv2->next_file, 10);
	/* the compaction pointer travelled in the snapshot */
	ck_assert_uint_eq(rv2->compact_ptr[0].len, rv->compact_ptr[0].len);
	ck_assert_mem_eq(rv2->compact_ptr[0].data, rv->compact_ptr[0].data, rv->compact_ptr[0].len);
	vset_free(rv);
	vset_free(rv2);
}
END_TEST

/* Versions held by readers keep their files; the set lists every live version's files. */
static void collect(void *arg, uint64_t n)
{
	uint64_t *seen = arg;
	ck_assert_uint_lt(n, 64);
	seen[n]++;
}

START_TEST(test_live_versions)
{
	struct vset *vs = vs_new(env);
	ck_assert_int_eq(vset_create(vs), 0);
	struct version_edit ed;
	edit_init(&ed);
	struct file_meta *f = fm(vset_new_file_number(vs), "a", "b");
	ck_assert_int_eq(edit_add_file(&ed, 0, f), 0);
	ck_assert_int_eq(apply(vs, &ed), 0);
	edit_free(&ed);
	ck_assert_int_eq(atomic_load(&f->refs), 2); /* ours and the current version's */
	struct version *old = vs->current;
	version_ref(old);
	edit_init(&ed);
	ck_assert_int_eq(edit_delete_file(&ed, 0, f->number), 0);
	ck_assert_int_eq(apply(vs, &ed), 0);
	edit_free(&ed);
	ck_assert_ptr_ne(vs->current, old);
	ck_assert_int_eq(vs->current->nfiles[0], 0);
	ck_assert_int_eq(atomic_load(&f->refs), 2); /* the old version still holds it */
	uint64_t seen[64] = {0};
	vset_live_files(vs, collect, seen);
	ck_assert_uint_eq(seen[f->number], 1);
	pthread_mutex_lock(&mu);
	version_unref(old);
	pthread_mutex_unlock(&mu);
	ck_assert_int_eq(atomic_load(&f->refs), 1);
	memset(seen, 0, sizeof seen);
	vset_live_files(vs, collect, seen);
	ck_assert_uint_eq(seen[f->number], 0);
	file_meta_unref(f);
	vset_free(vs);
}
END_TEST

/* An edit that contradicts the layout is refused before anything is written. */
START_TEST(test_bad_edits)
{
	struct vset *vs = history(env);
	struct version *before = vs->current;
	uint64_t msize;
	char *mpath = path_manifest(DIR, vs->manifest_number);
	ck_assert_int_eq(env->file_size(env, mpath, &msize), 0);
	struct version_edit ed;

	edit_init(&ed);
	ck_assert_int_eq(edit_delete_file(&ed, 1, 99), 0); /* no such file */
	ck_assert_int_eq(apply(vs, &ed), LSM_CORRUPT);
	ck_assert_ptr_nonnull(strstr(lsm_errmsg(), "000099"));
	edit_free(&ed);
	edit_init(&ed);
	ck_assert_int_eq(edit_delete_file(&ed, 2, 5), 0); /* exists, but on level 1 */
	ck_assert_int_eq(apply(vs, &ed), LSM_CORRUPT);
	edit_free(&ed);
	edit_init(&ed);
	add(&ed, 1, fm(50, "e", "h")); /* overlaps 5 [a,f] on level 1 */
	ck_assert_int_eq(apply(vs, &ed), LSM_CORRUPT);
	ck_assert_ptr_nonnull(strstr(lsm_errmsg(), "overlap"));
	edit_free(&ed);
	edit_init(&ed);
	add(&ed, 2, fm(51, "a", "c"));
	add(&ed, 2, fm(52, "c", "d")); /* overlaps its sibling at "c" */
	ck_assert_int_eq(apply(vs, &ed), LSM_CORRUPT);
	edit_free(&ed);

	ck_assert_ptr_eq(vs->current, before);
	uint64_t msize2;
	ck_assert_int_eq(env->file_size(env, mpath, &msize2), 0);
	ck_assert_uint_eq(msize2, msize);
	/* overlap is fine on level 0 */
	edit_init(&ed);
	add(&ed, 0, fm(53, "a", "z"));
	add(&ed, 0, fm(54, "a", "z"));
	ck_assert_int_eq(apply(vs, &ed), 0);
	edit_free(&ed);
	expect_layout(vs->current, "L0:54,53,8 L1:5,7 L2:6");
	ck_assert_uint_eq(vs->next_file, 9); /* the edit's files were not numbered by the set */
	struct vset *rv = recover(env);
	versions_equal(vs->current, rv->current);
	/* recovery raises next_file past every live table, so no new file can overwrite one */
	ck_assert_uint_eq(rv->next_file, 55);
	vset_free(rv);
	vset_free(vs);
	free(mpath);
}
END_TEST

/* The last manifest record may be torn (it was never acknowledged); earlier damage is corruption. */
START_TEST(test_recover_damaged_manifest)
{
	struct vset *vs = history(env);
	char *mpath = path_manifest(DIR, vs->manifest_number);
	vset_free(vs);
	char *d;
	size_t n;
	ck_assert_int_eq(lsm_env_read_all(env, mpath, &d, &n), 0);
	/* record offsets */
	uint64_t off[8];
	int nrec = 0;
	for (size_t o = 0; o < n; o += WAL_HEADER_SIZE + get_u32le(d + o + 4))
		off[nrec++] = o;
	ck_assert_int_eq(nrec, 5);

	/* cut into the last record: recovery ends before it */
	ck_assert_int_eq(env->truncate(env, mpath, n - 3), 0);
	struct vset *rv = recover(env);
	expect_layout(rv->current, "L1:5,6,7");
	ck_assert_uint_eq(rv->edits_replayed, 4);
	vset_free(rv);

	/* damage in record 3 of 5: later records vouch for it (every edit is synced) */
	d[off[2] + WAL_HEADER_SIZE + 1] ^= 0x40;
	ck_assert_int_eq(lsm_env_write_all(env, mpath, d, n, 1), 0);
	expect_recover_fails(env, LSM_CORRUPT, mpath);
	char want[128];
	snprintf(want, sizeof want, "at offset %" PRIu64, off[2]);
	expect_recover_fails(env, LSM_CORRUPT, want);
	free(d);
	free(mpath);
}
END_TEST

static void write_current(const char *s)
{
	ck_assert_int_eq(lsm_env_write_all(env, DIR "/CURRENT", s, strlen(s), 1), 0);
}

/* A manifest made of the given edits (as records of log `number`). */
static void write_manifest(uint64_t number, struct version_edit *eds, int n, unsigned type)
{
	char *p = path_manifest(DIR, number);
	struct wal_writer *w;
	ck_assert_int_eq(wal_writer_open(env, p, number, &w), 0);
	for (int i = 0; i < n; i++) {
		struct buf b = {0};
		ck_assert_int_eq(edit_encode(&eds[i], &b), 0);
		ck_assert_int_eq(wal_append_copy(w, type, b.data, b.len), 0);
		buf_free(&b);
	}
	ck_assert_int_eq(wal_sync(w), 0);
	ck_assert_int_eq(wal_writer_close(w), 0);
	free(p);
}

START_TEST(test_recover_errors)
{
	expect_recover_fails(env, LSM_NOTFOUND, "CURRENT"); /* no store here */
	write_current("hello\n");
	expect_recover_fails(env, LSM_CORRUPT, "CURRENT does not name a manifest");
	write_current("MANIFEST-000003"); /* no newline: a torn write */
	expect_recover_fails(env, LSM_CORRUPT, "CURRENT does not name a manifest");
	write_current("MANIFEST-\n");
	expect_recover_fails(env, LSM_CORRUPT, "CURRENT does not name a manifest");
	write_current("MANIFEST-000003\n");
	expect_recover_fails(env, LSM_CORRUPT, "CURRENT names " DIR "/MANIFEST-000003, which is missing");

	/* manifests that lack a required field */
	struct version_edit ed[2];
	edit_init(&ed[0]);
	ed[0].has_format = 1;
	ed[0].format = MANIFEST_FORMAT_VERSION;
	edit_init(&ed[1]);
	ed[1].has_log_number = ed[1].has_next_file = 1;
	ed[1].log_number = 2;
	ed[1].next_file = 4;
	write_manifest(3, ed, 2, WAL_REC_EDIT);
	expect_recover_fails(env, LSM_CORRUPT, "the last sequence number");
	ed[1].has_last_seq = 1;
	ed[1].last_seq = 10;
	write_manifest(3, ed, 1, WAL_REC_EDIT);
	expect_recover_fails(env, LSM_CORRUPT, "a log number");
	write_manifest(3, ed + 1, 1, WAL_REC_EDIT);
	expect_recover_fails(env, LSM_CORRUPT, "its format version");
	/* a manifest from the future: the message names the version found */
	ed[0].format = MANIFEST_FORMAT_VERSION + 1;
	write_manifest(3, ed, 2, WAL_REC_EDIT);
	char want[64];
	snprintf(want, sizeof want, "unsupported manifest format version %u", MANIFEST_FORMAT_VERSION + 1);
	expect_recover_fails(env, LSM_CORRUPT, want);
	/* a log record that is not an edit */
	ed[0].format = MANIFEST_FORMAT_VERSION;
	write_manifest(3, ed, 2, WAL_REC_BATCH);
	expect_recover_fails(env, LSM_CORRUPT, "record of type 1");
	/* an edit that does not decode */
	char *p = path_manifest(DIR, 3);
	struct wal_writer *w;
	ck_assert_int_eq(wal_writer_open(env, p, 3, &w), 0);
	ck_assert_int_eq(wal_append_copy(w, WAL_REC_EDIT, "\x63\x01", 2), 0);
	ck_assert_int_eq(wal_writer_close(w), 0);
	expect_recover_fails(env, LSM_CORRUPT, "malformed version edit");
	free(p);
	/* and the good one: next_file is raised past the manifest's own number */
	write_manifest(3, ed, 2, WAL_REC_EDIT);
	struct vset *vs = recover(env);
	ck_assert_uint_eq(vs->log_number, 2);
	ck_assert_uint_eq(vs->last_seq, 10);
	ck_assert_uint_eq(vs->next_file, 4);
	ck_assert_uint_eq(vs->manifest_number, 3);
	vset_free(vs);
	ed[1].next_file = 2; /* below the manifest's number */
	write_manifest(3, ed, 2, WAL_REC_EDIT);
	vs = recover(env);
	ck_assert_uint_eq(vs->next_file, 4);
	vset_free(vs);
	edit_free(&ed[0]);
	edit_free(&ed[1]);
}
END_TEST

/* I/O failures during log_and_apply leave the current version as it was, and a later apply and a
 * recovery see exactly the edits that succeeded. */
START_TEST(test_apply_io_failures)
{
	lsm_env *fe = lsm_fault_env_new(env);
	ck_assert_ptr_nonnull(fe);
	struct vset *vs = history(fe);
	struct version *before = vs->current;
	uint64_t m_before = vs->manifest_number;
	struct version_edit ed;

	/* the sync of the open manifest fails: the manifest is abandoned */
	edit_init(&ed);
	add(&ed, 0, fm(vset_new_file_number(vs), "x", "y"));
	lsm_fault_set_fail(fe, 1, EIO, 0, 0, LSM_FAULT_SYNC);
	ck_assert_int_eq(apply(vs, &ed), LSM_IOERR);
	edit_free(&ed);
	ck_assert_ptr_eq(vs->current, before);
	ck_assert_ptr_null(vs->manifest);

	/* the next apply starts a fresh manifest; its rename of CURRENT fails: nothing changes, the
	 * fresh manifest is removed */
	edit_init(&ed);
	add(&ed, 0, fm(vset_new_file_number(vs), "x", "y"));
	uint64_t fresh = vs->next_file;
	lsm_fault_set_fail(fe, 1, EIO, 0, 0, LSM_FAULT_RENAME);
	ck_assert_int_eq(apply(vs, &ed), LSM_IOERR);
	ck_assert_ptr_eq(vs->current, before);
	char *fp = path_manifest(DIR, fresh);
	ck_assert_int_eq(env->exists(env, fp), -ENOENT);
	free(fp);
	char *cur = current_contents(env);
	char want[64];
	snprintf(want, sizeof want, "MANIFEST-%06" PRIu64 "\n", m_before);
	ck_assert_str_eq(cur, want);
	free(cur);

	/* and then it works */
	lsm_fault_clear(fe);
	ck_assert_int_eq(apply(vs, &ed), 0);
	uint64_t added = ed.added[0].f->number;
	edit_free(&ed);
	ck_assert_uint_ne(vs->manifest_number, m_before);
	char layout_now[128];
	snprintf(layout_now, sizeof layout_now, "L0:%" PRIu64 ",8 L1:5,7 L2:6", added);
	expect_layout(vs->current, layout_now);
	struct vset *rv = recover(env);
	expect_layout(rv->current, layout_now);
	versions_equal(vs->current, rv->current);
	vset_free(rv);
	vset_free(vs);
	fe->destroy(fe);
}
END_TEST

/* A power loss right after apply returned keeps the edit (it was synced, CURRENT too). */
START_TEST(test_apply_survives_crash)
{
	lsm_env *fe = lsm_fault_env_new(env);
	ck_assert_ptr_nonnull(fe);
	struct vset *vs = history(fe);
	ck_assert_int_eq(lsm_fault_crash(fe), 0);
	struct vset *rv = recover(env);
	versions_equal(vs->current, rv->current);
	vset_free(rv);
	vset_free(vs);
	fe->destroy(fe);
}
END_TEST

/* ---------------------------------------------------------------- names */

START_TEST(test_file_names)
{
	struct {
		const char *name;
		enum store_file kind;
		uint64_t number;
	} cases[] = {
		{"CURRENT", SF_CURRENT, 0},
		{"LOCK", SF_LOCK, 0},
		{"MANIFEST-000002", SF_MANIFEST, 2},
		{"MANIFEST-1844674407370955160", SF_MANIFEST, UINT64_C(1844674407370955160)},
		{"000123.sst", SF_TABLE, 123},
		{"7.sst", SF_TABLE, 7},
		{"000004.log", SF_LOG, 4},
		{"CURRENT.tmp", SF_TEMP, 0},
		{"MANIFEST-", SF_UNKNOWN, 0},
		{"MANIFEST-12x", SF_UNKNOWN, 0},
		{".sst", SF_UNKNOWN, 0},
		{"abc.sst", SF_UNKNOWN, 0},
		{"-1.log", SF_UNKNOWN, 0},
		{"99999999999999999999999.log", SF_UNKNOWN, 0},
		{"000004.log.bak", SF_UNKNOWN, 0},
		{"current", SF_UNKNOWN, 0},
		{"", SF_UNKNOWN, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint64_t n = 77;
		ck_assert_msg(parse_file_name(cases[i].name, &n) == cases[i].kind, "%s", cases[i].name);
		if (cases[i].kind == SF_TABLE || cases[i].kind == SF_LOG || cases[i].kind == SF_MANIFEST)
			ck_assert_uint_eq(n, cases[i].number);
	}
	char *p = path_table("/d", 5);
	ck_assert_str_eq(p, "/d/000005.sst");
	free(p);
	p = path_log("/d", 1234567);
	ck_assert_str_eq(p, "/d/1234567.log");
	free(p);
	p = path_manifest("/d", 12);
	ck_assert_str_eq(p, "/d/MANIFEST-000012");
	free(p);
	p = path_join("/d", "CURRENT");
	ck_assert_str_eq(p, "/d/CURRENT");
	free(p);
	/* names round-trip through the parser */
	uint64_t n;
	p = path_table("", 42);
	ck_assert_int_eq(parse_file_name(p + 1, &n), SF_TABLE);
	ck_assert_uint_eq(n, 42);
	free(p);
}
END_TEST

/* ---------------------------------------------------------------- lookups through a version */

/* Write a table of (key, seq, type, value) entries (sorted by the caller) and return its metadata. */
struct kv {
	const char *k;
	uint64_t seq;
	unsigned type;
	const char *v;
};

static struct file_meta *write_table(struct vset *vs, const struct kv *kvs, int n, const char *rb, const char *re,
				     uint64_t rseq)
{
	uint64_t number = vset_new_file_number(vs);
	char *path = path_table(DIR, number);
	struct table_opts o = {4096, 16, 10};
	struct table_builder *tb;
	ck_assert_int_eq(table_builder_open(env, path, &o, &tb), 0);
	for (int i = 0; i < n; i++) {
		char ik[64];
		size_t kl = strlen(kvs[i].k);
		ikey_build(ik, slice_make(kvs[i].k, kl), kvs[i].seq, kvs[i].type);
		ck_assert_int_eq(table_builder_add(tb, slice_make(ik, kl + 8), slice_make(kvs[i].v, strlen(kvs[i].v))), 0);
	}
	if (rb)
		ck_assert_int_eq(table_builder_add_range(tb, slice_make(rb, strlen(rb)), slice_make(re, strlen(re)), rseq), 0);
	struct table_props p;
	struct file_meta *f = file_meta_new();
	ck_assert_int_eq(table_builder_finish(tb, &p, &f->size), 0);
	f->number = number;
	f->smallest = p.smallest;
	f->largest = p.largest;
	f->min_seq = p.min_seq;
	f->max_seq = p.max_seq;
	f->entries = p.entries;
	f->deletes = p.deletes;
	f->range_dels = p.range_dels;
	free(path);
	return f;
}

static int get(struct vset *vs, const char *key, uint64_t snap, struct get_ctx *c, struct lsm_buf *val)
{
	memset(c, 0, sizeof *c);
	c->key = slice_make(key, strlen(key));
	c->hash = bloom_hash(c->key);
	c->snap = snap;
	c->value = val;
	return version_get(vs->current, c);
}

START_TEST(test_version_get)
{
	struct vset *vs = vs_new(env);
	ck_assert_int_eq(vset_create(vs), 0);
	/* level 2: old data; level 1: two disjoint tables; level 0: two newer flushes */
	const struct kv l2[] = {{"a", 1, VT_VALUE, "a1"}, {"m", 2, VT_VALUE, "m2"}, {"q", 3, VT_VALUE, "q3"}};
	const struct kv l1a[] = {{"a", 10, VT_VALUE, "a10"}, {"c", 11, VT_DELETE, ""}};
	const struct kv l1b[] = {{"m", 12, VT_VALUE, "m12"}, {"m", 5, VT_VALUE, "m5"}, {"p", 13, VT_VALUE, "p13"}};
	const struct kv l0old[] = {{"a", 20, VT_VALUE, "a20"}, {"z", 21, VT_VALUE, "z21"}};
	const struct kv l0new[] = {{"b", 30, VT_VALUE, "b30"}, {"m", 31, VT_DELETE, ""}};
	struct version_edit ed;
	edit_init(&ed);
	add(&ed, 2, write_table(vs, l2, 3, NULL, NULL, 0));
	add(&ed, 1, write_table(vs, l1a, 2, NULL, NULL, 0));
	add(&ed, 1, write_table(vs, l1b, 3, NULL, NULL, 0));
	add(&ed, 0, write_table(vs, l0old, 2, NULL, NULL, 0));
	add(&ed, 0, write_table(vs, l0new, 2, "p", "r", 32)); /* and [p, r)@32 */
	ck_assert_int_eq(apply(vs, &ed), 0);
	edit_free(&ed);

	struct {
		const char *key;
		uint64_t snap;
		int rc;
		uint64_t seq;
		unsigned type;
		const char *val;
		uint64_t range_seq;
	} cases[] = {
		{"a", SEQNO_MAX, 1, 20, VT_VALUE, "a20", 0}, /* level 0 shadows level 1 */
		{"a", 19, 1, 10, VT_VALUE, "a10", 0},
		{"a", 9, 1, 1, VT_VALUE, "a1", 0},
		{"a", 0, 0, 0, 0, NULL, 0},
		{"b", SEQNO_MAX, 1, 30, VT_VALUE, "b30", 0},
		{"c", SEQNO_MAX, 1, 11, VT_DELETE, NULL, 0},
		{"m", SEQNO_MAX, 1, 31, VT_DELETE, NULL, 0},
		{"m", 30, 1, 12, VT_VALUE, "m12", 0},
		{"m", 11, 1, 5, VT_VALUE, "m5", 0},
		{"m", 4, 1, 2, VT_VALUE, "m2", 0},
		{"z", SEQNO_MAX, 1, 21, VT_VALUE, "z21", 0},
		{"n", SEQNO_MAX, 0, 0, 0, NULL, 0},
		{"zz", SEQNO_MAX, 0, 0, 0, NULL, 0},
		/* the tombstone [p, r)@32 in the newest level-0 file: the search stops there */
		{"q", SEQNO_MAX, 0, 0, 0, NULL, 32},
		{"p", SEQNO_MAX, 0, 0, 0, NULL, 32},
		{"q", 31, 1, 3, VT_VALUE, "q3", 0}, /* below the tombstone's seqno it does not exist */
		{"p", 31, 1, 13, VT_VALUE, "p13", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct get_ctx c;
		struct lsm_buf val = {0};
		int rc = get(vs, cases[i].key, cases[i].snap, &c, &val);
		ck_assert_msg(rc == cases[i].rc, "%s@%llu: rc %d (%s)", cases[i].key, (unsigned long long)cases[i].snap, rc,
			      lsm_errmsg());
		ck_assert_msg(c.range_seq == cases[i].range_seq, "%s@%llu: range_seq %llu", cases[i].key,
			      (unsigned long long)cases[i].snap, (unsigned long long)c.range_seq);
		if (rc == 1) {
			ck_assert_uint_eq(c.seq, cases[i].seq);
			ck_assert_uint_eq(c.type, cases[i].type);
			if (cases[i].val) {
				ck_assert_uint_eq(val.len, strlen(cases[i].val));
				ck_assert_mem_eq(val.data, cases[i].val, val.len);
			}
		}
		lsm_buf_free(&val);
	}
	/* the tables stay open in the table cache, pinned only while used */
	uint64_t hits, misses, entries;
	cache_counts(tcache, &hits, &misses, &entries);
	ck_assert_uint_eq(entries, 5);
	ck_assert_uint_gt(hits, 0);
	vset_free(vs);
}
END_TEST

/* A table the manifest names but the directory lacks is damage to report, never a quiet "not found":
 * lsm_get turns a version_get result of LSM_NOTFOUND into "no such key". */
START_TEST(test_missing_table_is_not_notfound)
{
	struct vset *vs = vs_new(env);
	ck_assert_int_eq(vset_create(vs), 0);
	const struct kv kvs[] = {{"k", 5, VT_VALUE, "v"}};
	struct version_edit ed;
	edit_init(&ed);
	add(&ed, 1, write_table(vs, kvs, 1, NULL, NULL, 0));
	ck_assert_int_eq(apply(vs, &ed), 0);
	edit_free(&ed);
	struct get_ctx c;
	struct lsm_buf val = {0};
	ck_assert_int_eq(get(vs, "k", SEQNO_MAX, &c, &val), 1);
	uint64_t number = vs->current->files[1][0]->number;
	char *p = path_table(DIR, number);
	ck_assert_int_eq(env->unlink(env, p), 0);
	vset_table_evict(vs, number);
	int rc = get(vs, "k", SEQNO_MAX, &c, &val);
	ck_assert_msg(rc < 0 && rc != LSM_NOTFOUND,
		      "version_get over a missing table returned %d (%s): lsm_get would report the key as absent", rc,
		      lsm_errmsg());
	ck_assert_ptr_nonnull(strstr(lsm_errmsg(), p));
	struct iter *it = (struct iter *)&c;
	rc = vset_table_iter(vs, vs->current->files[1][0], 0, &it);
	ck_assert_msg(rc < 0 && rc != LSM_NOTFOUND, "vset_table_iter returned %d", rc);
	ck_assert_ptr_null(it);
	free(p);
	lsm_buf_free(&val);
	vset_free(vs);
}
END_TEST

Suite *version_suite(void)
{
	Suite *s = suite_create("version");
	TCase *tc = tcase_create("edits");
	tcase_add_test(tc, test_edit_round_trip);
	tcase_add_test(tc, test_edit_prefixes);
	tcase_add_test(tc, test_edit_malformed);
	tcase_add_test(tc, test_file_names);
	suite_add_tcase(s, tc);
	tc = tcase_create("manifest");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_manifest_replay);
	tcase_add_test(tc, test_live_versions);
	tcase_add_test(tc, test_bad_edits);
	tcase_add_test(tc, test_recover_damaged_manifest);
	tcase_add_test(tc, test_recover_errors);
	tcase_add_test(tc, test_apply_io_failures);
	tcase_add_test(tc, test_apply_survives_crash);
	tcase_add_test(tc, test_version_get);
	tcase_add_test(tc, test_missing_table_is_not_notfound);
	suite_add_tcase(s, tc);
	return s;
}
