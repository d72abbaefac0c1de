/* fsck_store.c - store-level checks: lock, CURRENT, manifest, files on disk, every table, every log. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsck.h"

/* What the manifest says (replayed from its edits, without opening the store). */
struct live_table {
	uint64_t number;
	int level;
	int on_disk;
	int bad;                   /* unreadable or inconsistent */
	uint64_t file_size;
	struct lsm_table_report rep;
	/* First and last user key of the point entries, as read (malloc'd). */
	char *first, *last;
	size_t first_len, last_len;
	int have_keys;
	uint64_t blob_refs, blob_ref_bytes; /* references into blob files (each one read and checked) */
};

struct manifest_state {
	struct live_table *t;
	size_t n, cap;
	uint64_t log_number, next_file, last_seq;
	uint64_t edits;
	int have_format, have_log, have_next, have_seq;
	int oom;
};

static struct live_table *find_table(struct manifest_state *m, uint64_t number)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->t[i].number == number)
			return &m->t[i];
	return NULL;
}

static int edit_cb(void *arg, const struct lsm_edit_info *e)
{
	struct manifest_state *m = arg;
	m->edits++;
	m->have_format |= e->has_format;
	m->have_log |= e->has_log_number;
	m->have_next |= e->has_next_file;
	m->have_seq |= e->has_last_seq;
	if (e->has_log_number)
		m->log_number = e->log_number;
	if (e->has_next_file)
		m->next_file = e->next_file;
	if (e->has_last_seq)
		m->last_seq = e->last_seq;
	for (int i = 0; i < e->ndeleted; i++) {
		struct live_table *t = find_table(m, e->deleted_number[i]);
		if (t)
			*t = m->t[--m->n];
	}
	for (int i = 0; i < e->nadded; i++) {
		if (find_table(m, e->added_number[i]))
			continue;
		if (m->n == m->cap) {
			size_t cap = m->cap ? 2 * m->cap : 64;
			struct live_table *nt = realloc(m->t, cap * sizeof *nt);
			if (!nt) {
				m->oom = 1;
				return 1;
			}
			m->t = nt;
			m->cap = cap;
		}
		memset(&m->t[m->n], 0, sizeof m->t[0]);
		m->t[m->n].number = e->added_number[i];
		m->t[m->n].level = e->added_level[i];
		m->n++;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_table_number(const void *a, const void *b)
{
	const struct live_table *x = a, *y = b;
	return x->number < y->number ? -1 : x->number > y->number;
}

static int key_cb(void *arg, const struct lsm_raw_entry *e)
{
	struct live_table *t = arg;
	if (e->type == LSM_ENTRY_RANGE_DELETE)
		return 0;
	uint64_t bnum, boff;
	uint32_t blen;
	if (e->type == LSM_ENTRY_BLOB && !lsm_inspect_blob_ref(e->value, e->vlen, &bnum, &boff, &blen)) {
		t->blob_refs++;
		t->blob_ref_bytes += blen;
	}
	if (!t->have_keys) {
		t->first = malloc(e->klen + 1);
		if (!t->first)
			return LSM_NOMEM;
		memcpy(t->first, e->key, e->klen);
		t->first_len = e->klen;
		t->have_keys = 1;
	}
	if (t->last_len < e->klen || !t->last) {
		free(t->last);
		t->last = malloc(e->klen + 1);
		if (!t->last)
			return LSM_NOMEM;
	}
	memcpy(t->last, e->key, e->klen);
	t->last_len = e->klen;
	return 0;
}

static int ukey_cmp(const void *a, size_t al, const void *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int r = n ? memcmp(a, b, n) : 0;
	return r ? r : al < bl ? -1 : al > bl;
}

/* Verify one table file completely (every block checksum, order, properties). */
static void check_table_file(struct fsck *c, struct live_table *t)
{
	char path[4096], name[64];
	snprintf(path, sizeof path, "%s/%06" PRIu64 ".sst", c->dir, t->number);
	snprintf(name, sizeof name, "%06" PRIu64 ".sst", t->number);
	int rc = lsm_inspect_table_file(NULL, path, key_cb, t, &t->rep);
	if (rc == LSM_NOTFOUND && c->locked) {
		/* Listed a moment ago, gone now: the running store compacted it away (its manifest moved on).
		 * Not a reason to check again: its keys are in newer tables, which the filesystem checks read. */
		fsck_note(c, "table-gone", "%s (level %d) was deleted while the check read it (the running store "
			  "compacted it away)", name, t->level);
		t->on_disk = 0;
		return;
	}
	if (rc) {
		t->bad = 1;
		if (rc == LSM_CORRUPT)
			fsck_problem(c, "table-corrupt", NULL, 0, "", NULL, 0, "%s (level %d): %s", name, t->level, lsm_errmsg());
		else
			fsck_problem(c, "table-unreadable", NULL, 0, "", NULL, 0, "%s (level %d): %s", name, t->level,
				     lsm_errmsg());
	}
	c->tables++;
	c->table_bytes += t->file_size;
	c->blob_refs += t->blob_refs;
	c->blob_ref_bytes += t->blob_ref_bytes;
}

struct disk_file {
	char name[256];
	const char *kind;
	uint64_t number;
	uint64_t size;
	int orphan;                /* nothing refers to it */
};

struct disk_list {
	struct disk_file *f;
	size_t n, cap;
};

static int list_dir(struct fsck *c, struct disk_list *l)
{
	DIR *d = opendir(c->dir);
	if (!d) {
		fsck_operr(c, "cannot read %s: %s", c->dir, strerror(errno));
		return -1;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || strlen(de->d_name) >= 256)
			continue;
		if (l->n == l->cap) {
			size_t cap = l->cap ? 2 * l->cap : 64;
			struct disk_file *nf = realloc(l->f, cap * sizeof *nf);
			if (!nf) {
				closedir(d);
				fsck_operr(c, "out of memory");
				return -1;
			}
			l->f = nf;
			l->cap = cap;
		}
		struct disk_file *f = &l->f[l->n++];
		snprintf(f->name, sizeof f->name, "%s", de->d_name);
		f->kind = lsm_inspect_file_kind(f->name, &f->number);
		char path[4096];
		struct stat st;
		snprintf(path, sizeof path, "%s/%s", c->dir, f->name);
		f->size = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
	}
	closedir(d);
	return 0;
}

/* CURRENT's manifest number: 0; -1 if CURRENT cannot be read (errno says why); -2 if it names no manifest.
 * (The store replaces CURRENT by a rename: it is never seen half written.) */
static int current_manifest(const char *dir, uint64_t *mnum)
{
	char path[4096], buf[128];
	snprintf(path, sizeof path, "%s/CURRENT", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *end;
	if (n < 11 || strncmp(buf, "MANIFEST-", 9) || buf[n - 1] != '\n' ||
	    (*mnum = strtoull(buf + 9, &end, 10), end != buf + n - 1))
		return -2;
	return 0;
}

/* Read CURRENT: the live manifest's number, or -1 with a problem reported. */
static int read_current(struct fsck *c, uint64_t *mnum)
{
	int r = current_manifest(c->dir, mnum);
	if (r == -1) {
		fsck_operr(c, "%s holds no store (no CURRENT file: %s)", c->dir, strerror(errno));
		return -1;
	}
	if (r) {
		fsck_problem(c, "current-corrupt", NULL, 0, "CURRENT", NULL, 0, "CURRENT does not name a manifest");
		return -1;
	}
	return 0;
}

/* The version stamp: the running store appends an edit to its manifest (or switches to a new one)
 * before it deletes any table or log, so while the stamp stays the same no file the check relies on
 * has been deleted, and a read-only open in that time saw one consistent state. */
static int stamp_read(const char *dir, uint64_t *mnum, uint64_t *msize)
{
	char path[4096];
	struct stat st;
	if (current_manifest(dir, mnum))
		return -1;
	snprintf(path, sizeof path, "%s/MANIFEST-%06" PRIu64, dir, *mnum);
	if (stat(path, &st))
		return -1;
	*msize = (uint64_t)st.st_size;
	return 0;
}

void fsck_store_stamp(struct fsck *c)
{
	c->stamp_ok = stamp_read(c->dir, &c->stamp_mnum, &c->stamp_msize) == 0;
}

int fsck_store_changed(struct fsck *c)
{
	uint64_t mnum, msize;
	return !c->stamp_ok || stamp_read(c->dir, &mnum, &msize) || mnum != c->stamp_mnum || msize != c->stamp_msize;
}

/* Check the manifest's tables against the files, tables' own contents against the manifest's view
 * (REQUIRES c->db), and the order of the levels. */
struct meta_ctx {
	struct fsck *c;
	struct manifest_state *m;
	/* Previous table of the same level (levels >= 1 must not overlap). */
	int prev_level;
	char *prev_largest;
	size_t prev_largest_len;
	uint64_t prev_largest_seq, prev_number;
};

/* Nothing to see: looking a table's first key up opens the table (and the table cache keeps it open). */
static int pin_cb(void *arg, const struct lsm_version_info *v)
{
	(void)arg;
	(void)v;
	return 0;
}

static int meta_cb(void *arg, const struct lsm_table_info *ti)
{
	struct meta_ctx *x = arg;
	struct fsck *c = x->c;
	struct live_table *t = find_table(x->m, ti->number);
	char name[64];
	snprintf(name, sizeof name, "%06" PRIu64 ".sst", ti->number);
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", c->dir, name);
	/* A mounted store: open every table now, which keeps it readable (an open file) after the running
	 * store deletes it, until lsm_close. (Damage is the table check's to report.) */
	if (c->locked && lsm_inspect_key(c->db, ti->smallest, ti->smallest_len, pin_cb, NULL) && access(path, F_OK) &&
	    errno == ENOENT) {
		fsck_note(c, "table-gone", "%s (level %d) was deleted before the check could open it (the running "
			  "store compacted it away)", name, ti->level);
		c->moved = 1; /* the filesystem checks cannot read it: check again (lsmfsck.c) */
	}
	if (t && t->on_disk && !t->bad) {
		const struct lsm_table_report *r = &t->rep;
		if (ti->size != t->file_size)
			fsck_problem(c, "table-size", NULL, 0, "", NULL, 0,
				     "%s (level %d): the file is %" PRIu64 " bytes, the manifest says %" PRIu64, name, ti->level,
				     t->file_size, ti->size);
		if (r->entries != ti->entries || r->deletes != ti->deletes || r->range_dels != ti->range_dels)
			fsck_problem(c, "table-meta", NULL, 0, "", NULL, 0,
				     "%s (level %d): holds %" PRIu64 " entries / %" PRIu64 " deletes / %" PRIu64
				     " range deletes, the manifest says %" PRIu64 " / %" PRIu64 " / %" PRIu64,
				     name, ti->level, r->entries, r->deletes, r->range_dels, ti->entries, ti->deletes,
				     ti->range_dels);
		if (r->entries + r->range_dels && (r->min_seq != ti->min_seq || r->max_seq != ti->max_seq))
			fsck_problem(c, "table-seqno", NULL, 0, "", NULL, 0,
				     "%s (level %d): seqnos %" PRIu64 "..%" PRIu64 ", the manifest says %" PRIu64 "..%" PRIu64,
				     name, ti->level, r->min_seq, r->max_seq, ti->min_seq, ti->max_seq);
		if (t->have_keys && (ukey_cmp(t->first, t->first_len, ti->smallest, ti->smallest_len) < 0 ||
				     ukey_cmp(t->last, t->last_len, ti->largest, ti->largest_len) > 0))
			fsck_problem(c, "table-range", NULL, 0, "", NULL, 0,
				     "%s (level %d): holds keys outside the range the manifest gives it", name, ti->level);
	}
	if (ti->level >= 1) {
		if (x->prev_level == ti->level && x->prev_largest) {
			int r = ukey_cmp(x->prev_largest, x->prev_largest_len, ti->smallest, ti->smallest_len);
			/* Same user key: the earlier table must end on a newer (larger) seqno. */
			if (r > 0 || (r == 0 && x->prev_largest_seq <= ti->smallest_seq))
				fsck_problem(c, "level-overlap", NULL, 0, "", NULL, 0,
					     "level %d: %06" PRIu64 ".sst and %s overlap (or are out of order)", ti->level,
					     x->prev_number, name);
		}
		free(x->prev_largest);
		x->prev_largest = malloc(ti->largest_len + 1);
		if (x->prev_largest)
			memcpy(x->prev_largest, ti->largest, ti->largest_len);
		x->prev_largest_len = ti->largest_len;
		x->prev_largest_seq = ti->largest_seq;
		x->prev_number = ti->number;
		x->prev_level = ti->level;
	}
	return 0;
}

int fsck_store_probe(struct fsck *c)
{
	struct stat st;
	if (stat(c->dir, &st)) {
		fsck_operr(c, "cannot open %s: %s", c->dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fsck_operr(c, "cannot open %s: not a directory", c->dir);
		return -1;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/CURRENT", c->dir);
	if (access(path, F_OK)) {
		fsck_operr(c, "%s holds no store (no CURRENT file)", c->dir);
		return -1;
	}
	int l = lsm_inspect_locked(NULL, c->dir);
	if (l < 0) {
		fsck_operr(c, "%s", lsm_errmsg());
		return -1;
	}
	c->locked = l;
	if (c->locked && c->repair) {
		fsck_operr(c, "%s is in use by another process (mounted?): refusing to repair it; unmount it first", c->dir);
		return -1;
	}
	return 0;
}

int fsck_store(struct fsck *c)
{
	uint64_t mnum;
	char path[4096];
	if (c->locked)
		fsck_note(c, "mounted", "the store is in use (mounted?): checking it read-only; the live write-ahead log "
			  "may be ahead of what this check saw, and files may change under it");
	if (read_current(c, &mnum))
		return -1;

	/* The manifest, replayed here (not by the store) so that its damage is reported and the tables can
	 * be verified before anything trusts them. */
	struct manifest_state m = {0};
	snprintf(path, sizeof path, "%s/MANIFEST-%06" PRIu64, c->dir, mnum);
	int rc = lsm_inspect_manifest_file(NULL, path, mnum, edit_cb, &m);
	int ret = 0;
	if (m.oom) {
		fsck_operr(c, "out of memory");
		free(m.t);
		return -1;
	}
	if (rc == LSM_NOTFOUND && c->locked) {
		/* The running store started a new manifest after CURRENT was read. */
		fsck_note(c, "store-changed", "MANIFEST-%06" PRIu64 " was replaced while the check read it (by the "
			  "running store)", mnum);
		c->moved = 1;
		ret = -1;
	} else if (rc) {
		fsck_problem(c, rc == LSM_NOTFOUND ? "manifest-missing" : "manifest-corrupt", NULL, 0, "", NULL, 0,
			     "%s", rc == LSM_NOTFOUND ? "CURRENT names a manifest that is missing" : lsm_errmsg());
		ret = -1;
	} else if (!m.have_format || !m.have_log || !m.have_next || !m.have_seq) {
		/* A damaged first record reads as a torn tail: the manifest then ends early. */
		fsck_problem(c, "manifest-corrupt", NULL, 0, "", NULL, 0,
			     "MANIFEST-%06" PRIu64 " lacks %s (its first records are damaged or missing)", mnum,
			     !m.have_format ? "its format version" : !m.have_log ? "a log number" :
			     !m.have_next ? "the next file number" : "the last sequence number");
		ret = -1;
	}
	qsort(m.t, m.n, sizeof *m.t, cmp_table_number);

	struct disk_list dl = {0};
	if (list_dir(c, &dl)) {
		free(m.t);
		return -1;
	}
	/* Logs at or above the manifest's log number hold writes not yet in tables. */
	uint64_t *logs = malloc((dl.n + 1) * sizeof *logs);
	size_t nlogs = 0;
	if (!logs) {
		fsck_operr(c, "out of memory");
		free(m.t);
		free(dl.f);
		return -1;
	}
	for (size_t i = 0; i < dl.n; i++) {
		struct disk_file *f = &dl.f[i];
		const char *k = f->kind;
		int orphan = 0;
		if (!strcmp(k, "table")) {
			struct live_table *t = find_table(&m, f->number);
			if (t) {
				t->on_disk = 1;
				t->file_size = f->size;
			} else {
				orphan = 1;
			}
		} else if (!strcmp(k, "log")) {
			if (f->number >= m.log_number)
				logs[nlogs++] = f->number;
			else
				orphan = 1;
		} else if (!strcmp(k, "manifest")) {
			orphan = f->number != mnum;
		} else if (!strcmp(k, "blob")) {
			/* Live while a table or an unflushed memtable refers to it: the tables' references
			 * are each read and checked below; the store deletes unreferenced ones itself. */
			c->blob_files++;
			c->blob_file_bytes += f->size;
		} else if (!strcmp(k, "temp")) {
			orphan = 1;
		} else if (!strcmp(k, "unknown")) {
			fsck_note(c, "unknown-file", "%s is not a store file (left alone)", f->name);
		}
		f->orphan = orphan && !ret;
	}
	qsort(logs, nlogs, sizeof *logs, cmp_u64);
	c->logs = logs;
	c->nlogs = nlogs;

	/* Every live table: present, and every block readable with good checksums. */
	int bad_tables = 0;
	for (size_t i = 0; i < m.n; i++) {
		struct live_table *t = &m.t[i];
		if (!t->on_disk && c->locked) {
			/* The running store may have compacted it away after the manifest was read. */
			fsck_note(c, "table-gone", "%06" PRIu64 ".sst (level %d) is named by the manifest but gone (the running "
				  "store may have compacted it away)", t->number, t->level);
		} else if (!t->on_disk) {
			fsck_problem(c, "table-missing", NULL, 0, "", NULL, 0,
				     "%06" PRIu64 ".sst (level %d) is named by the manifest but missing", t->number, t->level);
			t->bad = 1;
		} else {
			fsck_progress(c, "checking table", i + 1, m.n);
			check_table_file(c, t);
		}
		bad_tables += t->bad;
	}

	/* Every live log parses to its end; only the newest may end in a torn (never synced) tail. */
	int bad_log = 0;
	char **walerr = calloc(nlogs + 1, sizeof *walerr);
	size_t nwalerr = 0;
	int walerr_lost = 0;        /* damaged logs whose message found no room (out of memory) */
	for (size_t i = 0; i < nlogs; i++) {
		snprintf(path, sizeof path, "%s/%06" PRIu64 ".log", c->dir, logs[i]);
		struct lsm_log_report r;
		fsck_progress(c, "checking log", i + 1, nlogs);
		rc = lsm_inspect_log_file(NULL, path, logs[i], i + 1 == nlogs, NULL, NULL, &r);
		c->log_files++;
		c->log_bytes += r.size;
		c->log_records += r.records;
		if (rc == LSM_NOTFOUND && c->locked) {
			/* Listed a moment ago, gone now: the running store flushed it into a table. */
			fsck_note(c, "log-gone", "%06" PRIu64 ".log was deleted while the check read it (the running store "
				  "flushed it)", logs[i]);
		} else if (rc) {
			bad_log = 1;
			if (walerr)
				walerr[nwalerr++] = strdup(lsm_errmsg());
			else
				walerr_lost++;
		} else if (r.torn_bytes) {
			fsck_note(c, "wal-torn-tail",
				  "%06" PRIu64 ".log ends in a torn record at %" PRIu64 " (%" PRIu64 " bytes never synced; "
				  "discarded at open, not an error)", logs[i], r.torn_offset, r.torn_bytes);
		}
	}

	/* Open the store: read-only for a check (writes nothing, takes no lock), read-write with the log
	 * repair option for a repair. A check of a store with a damaged log reads it the way a repair
	 * would, so the filesystem checks still run. */
	struct lsm_options o;
	lsm_options_init(&o);
	o.create_if_missing = 0;
	o.block_cache_size = 8u << 20;
	o.read_only = !c->repair || bad_tables;
	o.repair = c->repair || bad_log;
	if (c->repair && bad_tables)
		fsck_note(c, "no-repair", "not repairing: the store has damage lsmfsck cannot fix (tables); "
			  "checking read-only");
	rc = ret ? LSM_CORRUPT : lsm_open(c->dir, &o, &c->db);
	char openerr[1024];
	snprintf(openerr, sizeof openerr, "%s", rc ? lsm_errmsg() : "");
	if (rc)
		c->db = NULL;
	/* What the read-write open fixed, reported now that it is done: it deleted the files nothing
	 * refers to and skipped the damaged log records. */
	int fixed = !rc && !o.read_only;
	for (size_t i = 0; i < dl.n; i++) {
		struct disk_file *f = &dl.f[i];
		if (!f->orphan)
			continue;
		if (c->locked)
			fsck_note(c, "orphan-file", "%s (%s, %" PRIu64 " bytes) is not live (the running store may be "
				  "writing or deleting it)", f->name, f->kind, f->size);
		else if (fixed)
			fsck_note(c, "orphan-file", "%s (%s, %" PRIu64 " bytes) was not live: deleted by the store's "
				  "read-write open", f->name, f->kind, f->size);
		else
			/* What a crash leaves behind (the output of a flush or compaction that never reached
			 * the manifest, or a file whose deletion was cut short) is wasted space, not damage:
			 * the store deletes it at its next read-write open. */
			fsck_note(c, "orphan-file", "%s (%s, %" PRIu64 " bytes) is not live: nothing refers to it "
				  "(left by a crash; the next mount or --repair deletes it)", f->name, f->kind, f->size);
	}
	for (size_t i = 0; i < nwalerr; i++) {
		fsck_problem(c, "wal-corrupt", NULL, 0, "", "damaged records skipped by the store's repair open", fixed,
			     "%s", walerr[i] ? walerr[i] : "damaged log");
		free(walerr[i]);
	}
	free(walerr);
	if (walerr_lost)
		fsck_problem(c, "wal-corrupt", NULL, 0, "", "damaged records skipped by the store's repair open", fixed,
			     "%d damaged log(s) (out of memory for the details)", walerr_lost);
	if (ret)
		goto out;
	if (rc && c->locked && (rc == LSM_CORRUPT || rc == LSM_NOTFOUND) && fsck_store_changed(c)) {
		/* The read-only open found a file gone that the state it read named: the running store moved on. */
		fsck_note(c, "store-changed", "the store changed while the check opened it (%s)", openerr);
		c->moved = 1;
		ret = -1;
		goto out;
	}
	if (rc) {
		if (rc == LSM_CORRUPT)
			fsck_problem(c, "store-open", NULL, 0, "", NULL, 0, "the store does not open: %s", openerr);
		else
			fsck_operr(c, "cannot open %s: %s", c->dir, openerr);
		ret = -1;
		goto out;
	}
	if (o.repair) {
		struct lsm_stats s;
		lsm_stats_get(c->db, &s);
		if (s.wal_skipped_records)
			fsck_note(c, "wal-skipped", "%s %" PRIu64 " damaged log record(s), %" PRIu64 " bytes%s",
				  o.read_only ? "reading past" : "skipped", s.wal_skipped_records, s.wal_skipped_bytes,
				  o.read_only ? " (what they held is not seen by the checks below)" : "");
	}
	if (!o.read_only) {
		/* The read-write open started a new log and deleted obsolete files: the live logs changed. */
		struct lsm_stats s;
		lsm_stats_get(c->db, &s);
		c->nlogs = 0;
		c->logs[c->nlogs++] = s.wal_number;
	}

	struct meta_ctx x = {.c = c, .m = &m, .prev_level = -1};
	lsm_inspect_tables(c->db, meta_cb, &x);
	free(x.prev_largest);
	if (c->moved)
		ret = -1;
	if (bad_tables) {
		fsck_note(c, "fs-skipped", "filesystem checks skipped: %d table(s) cannot be read, so not every key "
			  "can be seen", bad_tables);
		ret = -1;
	}
out:
	for (size_t i = 0; i < m.n; i++) {
		free(m.t[i].first);
		free(m.t[i].last);
	}
	free(m.t);
	free(dl.f);
	return ret;
}
