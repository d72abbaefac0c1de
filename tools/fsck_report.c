/* fsck_report.c - lsmfsck's output: problem lines (or JSON objects), notes, locations, progress. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsck.h"
#include "schema.h"

double fsck_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void json_str(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* Where problems and notes go (a buffer while a check of a mounted store may be run again). */
#define OUT(c) ((c)->out ? (c)->out : stdout)

static void count_code(struct fsck *c, const char *code)
{
	for (int i = 0; i < c->ncounts; i++)
		if (!strcmp(c->counts[i].code, code)) {
			c->counts[i].n++;
			return;
		}
	if (c->ncounts < (int)(sizeof c->counts / sizeof c->counts[0])) {
		c->counts[c->ncounts].code = code;
		c->counts[c->ncounts++].n = 1;
	}
}

static void json_item(struct fsck *c, const char *severity, const char *code, const char *key, const char *where,
		      const char *msg, const char *fix, int fixed)
{
	FILE *f = OUT(c);
	fprintf(f, "%s\n    {\"severity\": \"%s\", \"code\": \"%s\"", c->json_first ? "" : ",", severity, code);
	c->json_first = 0;
	if (key) {
		fprintf(f, ", \"key\": ");
		json_str(f, key, strlen(key));
	}
	if (where && *where) {
		fprintf(f, ", \"where\": ");
		json_str(f, where, strlen(where));
	}
	fprintf(f, ", \"message\": ");
	json_str(f, msg, strlen(msg));
	if (fix) {
		fprintf(f, ", \"fix\": ");
		json_str(f, fix, strlen(fix));
		fprintf(f, ", \"fixed\": %s", fixed ? "true" : "false");
	}
	fprintf(f, "}");
}

void fsck_problem(struct fsck *c, const char *code, const void *key, size_t klen, const char *where,
		  const char *fix, int fixed, const char *fmt, ...)
{
	char msg[1024], kbuf[4 * FS_KEY_MAX + 16], loc[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fixed = fixed && fix && c->repair;
	c->errors++;
	c->fixable += fix != NULL;
	if (fixed) {
		c->fixed++;
		c->exit |= FSCK_EXIT_FIXED;
	} else {
		c->exit |= FSCK_EXIT_LEFT;
	}
	count_code(c, code);
	if (key)
		fs_key_format(key, klen, kbuf, sizeof kbuf);
	if (!where) {
		loc[0] = 0;
		if (key)
			fsck_locate(c, key, klen, loc, sizeof loc);
		where = loc;
	}
	fsck_progress_done(c);
	if (c->json) {
		json_item(c, "error", code, key ? kbuf : NULL, where, msg, fix, fixed);
		return;
	}
	/* One line per problem; the fix, when made, goes on the same line. */
	fprintf(OUT(c), "error[%s]: %s%s%s%s%s%s%s%s\n", code, key ? kbuf : "", key ? ": " : "", msg,
		*where ? " (" : "", where, *where ? ")" : "", fixed ? "; fixed: " : "", fixed ? fix : "");
	fflush(OUT(c));
}

void fsck_unfix(struct fsck *c, uint64_t n)
{
	if (n > c->fixed)
		n = c->fixed;
	c->fixed -= n;
	if (n)
		c->exit |= FSCK_EXIT_LEFT;
}

void fsck_note(struct fsck *c, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->notes++;
	if (c->quiet)
		return;
	fsck_progress_done(c);
	if (c->json) {
		json_item(c, "note", code, NULL, NULL, msg, NULL, 0);
		return;
	}
	fprintf(OUT(c), "note[%s]: %s\n", code, msg);
	fflush(OUT(c));
}

void fsck_operr(struct fsck *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->exit |= FSCK_EXIT_OPERR;
	fsck_progress_done(c);
	fprintf(c->errout ? c->errout : stderr, "lsmfsck: %s\n", msg);
}

/* ---------------------------------------------------------------- locations */

struct newest {
	uint64_t seq, table, off;
	int level;
	int found;
};

static int newest_cb(void *arg, const struct lsm_version_info *v)
{
	struct newest *n = arg;
	if (v->type == LSM_ENTRY_RANGE_DELETE)
		return 0;
	if (!n->found || v->seq > n->seq) {
		n->found = 1;
		n->seq = v->seq;
		n->table = v->table_number;
		n->off = v->block_offset;
		n->level = v->level;
	}
	return 0;
}

struct log_find {
	const void *key;
	size_t klen;
	uint64_t seq, off;
};

static int log_find_cb(void *arg, const struct lsm_raw_entry *e)
{
	struct log_find *f = arg;
	if (e->seq == f->seq && e->klen == f->klen && !memcmp(e->key, f->key, f->klen)) {
		f->off = e->offset;
		return 1;
	}
	return 0;
}

void fsck_locate(struct fsck *c, const void *key, size_t klen, char *buf, size_t buflen)
{
	buf[0] = 0;
	if (!c->db)
		return;
	struct newest n = {0};
	if (lsm_inspect_key(c->db, key, klen, newest_cb, &n) || !n.found)
		return;
	if (n.table) {
		snprintf(buf, buflen, "%06" PRIu64 ".sst level %d, block at %" PRIu64, n.table, n.level, n.off);
		return;
	}
	/* Still in a memtable: the record of a live log that holds this version. Each search reads the
	 * logs, so only the first problems get one. */
	if (c->locate_budget <= 0) {
		snprintf(buf, buflen, "write-ahead log, seqno %" PRIu64, n.seq);
		return;
	}
	c->locate_budget--;
	for (size_t i = c->nlogs; i-- > 0;) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%06" PRIu64 ".log", c->dir, c->logs[i]);
		struct log_find f = {key, klen, n.seq, 0};
		if (lsm_inspect_log_file(NULL, path, c->logs[i], 1, log_find_cb, &f, NULL) == 1) {
			snprintf(buf, buflen, "%06" PRIu64 ".log, record at %" PRIu64, c->logs[i], f.off);
			return;
		}
	}
	snprintf(buf, buflen, "write-ahead log, seqno %" PRIu64, n.seq);
}

/* ---------------------------------------------------------------- progress */

static double last_progress;
static int progress_shown;

void fsck_progress(struct fsck *c, const char *what, uint64_t done, uint64_t total)
{
	if (!c->progress)
		return;
	double now = fsck_now();
	if (now - last_progress < 0.2)
		return;
	last_progress = now;
	if (total)
		fprintf(stderr, "\r\033[Klsmfsck: %s %" PRIu64 "/%" PRIu64, what, done, total);
	else
		fprintf(stderr, "\r\033[Klsmfsck: %s %" PRIu64, what, done);
	progress_shown = 1;
}

void fsck_progress_done(struct fsck *c)
{
	if (!c->progress || !progress_shown)
		return;
	fprintf(stderr, "\r\033[K");
	progress_shown = 0;
}
