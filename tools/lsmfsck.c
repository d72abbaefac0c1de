/*
 * lsmfsck.c - check, inspect and repair an lsmfs store: e2fsck + debugfs + sst_dump in one.
 *
 * `lsmfsck STORE_DIR` checks the store (tables, logs, manifest, files) and the filesystem in it (entries,
 * link counts, reachability, blocks, orphans, allocator), one line per problem, exit codes in the e2fsck
 * tradition. --repair fixes what can be fixed through ordinary write batches. The inspection options
 * read the store without a mount. docs/lsmfsck.md is the manual; --help says the same in short.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsck.h"

static const char usage_text[] =
	"usage: lsmfsck [--repair [-y]] [--quiet] [--json] STORE_DIR      check (and repair) a store\n"
	"       lsmfsck --stats [--json] STORE_DIR                        levels, tables, logs, space, key counts\n"
	"       lsmfsck --ls PATH | --stat PATH | --cat PATH STORE_DIR    read the filesystem without a mount\n"
	"       lsmfsck --dump-key KEY STORE_DIR                          every stored version of a key\n"
	"       lsmfsck --dump-table FILE [STORE_DIR]                     every entry of a table file\n"
	"       lsmfsck --dump-log FILE [STORE_DIR]                       every operation of a write-ahead log\n"
	"\n"
	"Check (the default) opens the store read-only and reports one line per problem:\n"
	"  error[CODE]: KEY: WHAT (WHERE)    KEY decoded (i|INO, d|PARENT|\"NAME\", b|INO|BLOCK, ...),\n"
	"                                    WHERE the table file and block offset or the log record\n"
	"  note[CODE]: ...                   worth knowing, not an error (a torn log tail, a mounted store)\n"
	"A mounted (locked) store is checked read-only; its live log may be ahead of what the check saw.\n"
	"\n"
	"Options:\n"
	"  --repair      fix what can be fixed: link and entry counts, unattached inodes (to /lost+found),\n"
	"                dangling entries, blocks past EOF, stray keys, a stale inode allocator, a log with a\n"
	"                damaged record in the middle (skipped), files nothing refers to; refuses a mounted store\n"
	"  -y, --yes     repair without asking (implies --repair; without it --repair asks on a terminal)\n"
	"  -q, --quiet   print only the problems (no notes, summary or progress)\n"
	"  --json        the check's problems and summary (or --stats) as one JSON object on stdout\n"
	"  -h, --help    this text\n"
	"\n"
	"KEY for --dump-key: S, N, i|INO, d|PARENT|NAME, b|INO|BLOCK, l|INO, x|INO|NAME, o|INO\n"
	"(NAME may be \"quoted\" and use \\xHH), or hex:HEXBYTES for any raw key.\n"
	"\n"
	"Exit status (OR-ed): 0 clean, 1 errors corrected, 4 errors left uncorrected,\n"
	"8 operational error (cannot open, mounted while repairing, I/O), 16 usage error.\n"
	"Progress goes to stderr, only when it is a terminal.\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "lsmfsck: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'lsmfsck --help' for more information.\n");
	return FSCK_EXIT_USAGE;
}

enum mode { M_CHECK, M_STATS, M_LS, M_STAT, M_CAT, M_DUMP_KEY, M_DUMP_TABLE, M_DUMP_LOG };

static const char *mode_name[] = {"check", "--stats", "--ls", "--stat", "--cat", "--dump-key", "--dump-table",
				  "--dump-log"};

static void summary(struct fsck *c)
{
	double secs = fsck_now() - c->t0;
	uint64_t left = c->errors - c->fixed;
	if (c->json) {
		printf("\n  ],\n");
		printf("  \"errors\": %" PRIu64 ", \"fixed\": %" PRIu64 ", \"left\": %" PRIu64 ", \"notes\": %" PRIu64
		       ",\n", c->errors, c->fixed, left, c->notes);
		printf("  \"exit\": %d, \"mounted\": %s, \"repair\": %s, \"fs_checked\": %s, \"seconds\": %.3f,\n", c->exit,
		       c->locked ? "true" : "false", c->repair ? "true" : "false", c->fs_checked ? "true" : "false", secs);
		printf("  \"by_code\": {");
		for (int i = 0; i < c->ncounts; i++)
			printf("%s\"%s\": %" PRIu64, i ? ", " : "", c->counts[i].code, c->counts[i].n);
		printf("},\n");
		printf("  \"checked\": {\"tables\": %" PRIu64 ", \"table_bytes\": %" PRIu64 ", \"logs\": %" PRIu64
		       ", \"log_bytes\": %" PRIu64 ", \"log_records\": %" PRIu64 ", \"inodes\": %" PRIu64
		       ", \"dirents\": %" PRIu64 ", \"blocks\": %" PRIu64 ", \"xattrs\": %" PRIu64 ", \"symlinks\": %" PRIu64
		       ", \"orphans\": %" PRIu64 "}\n}\n",
		       c->tables, c->table_bytes, c->log_files, c->log_bytes, c->log_records, c->inodes, c->dirents, c->blocks,
		       c->xattrs, c->symlinks, c->orphans);
		return;
	}
	if (c->quiet)
		return;
	if (!c->errors && (c->exit & FSCK_EXIT_OPERR))
		printf("lsmfsck: %s: %s", c->dir,
		       c->tables || c->log_files || c->fs_checked ? "not fully checked" : "not checked");
	else if (!c->errors)
		printf("lsmfsck: %s: clean", c->dir);
	else if (c->repair)
		printf("lsmfsck: %s: %" PRIu64 " error%s, %" PRIu64 " fixed, %" PRIu64 " left", c->dir, c->errors,
		       c->errors == 1 ? "" : "s", c->fixed, left);
	else
		printf("lsmfsck: %s: %" PRIu64 " error%s", c->dir, c->errors, c->errors == 1 ? "" : "s");
	printf(", %" PRIu64 " note%s%s\n", c->notes, c->notes == 1 ? "" : "s",
	       c->exit & FSCK_EXIT_OPERR ? " (stopped by an operational error)" : "");
	printf("lsmfsck: checked %" PRIu64 " table%s (%" PRIu64 " bytes), %" PRIu64 " log%s (%" PRIu64 " records)",
	       c->tables, c->tables == 1 ? "" : "s", c->table_bytes, c->log_files, c->log_files == 1 ? "" : "s",
	       c->log_records);
	if (c->blob_files || c->blob_refs)
		printf(", %" PRIu64 " blob file%s (%" PRIu64 " bytes; %" PRIu64 " references to %" PRIu64 " value bytes checked)",
		       c->blob_files, c->blob_files == 1 ? "" : "s", c->blob_file_bytes, c->blob_refs, c->blob_ref_bytes);
	if (c->fs_checked)
		printf(", %" PRIu64 " inodes, %" PRIu64 " entries, %" PRIu64 " blocks, %" PRIu64 " xattrs, %" PRIu64
		       " symlinks, %" PRIu64 " orphans",
		       c->inodes, c->dirents, c->blocks, c->xattrs, c->symlinks, c->orphans);
	else
		printf("; filesystem not checked");
	printf(" in %.2f s\n", secs);
	if (c->ncounts) {
		printf("lsmfsck: problems by kind:");
		for (int i = 0; i < c->ncounts; i++)
			printf(" %s %" PRIu64, c->counts[i].code, c->counts[i].n);
		printf("\n");
	}
	if (c->fixable && !c->repair) {
		/* A mounted store cannot be repaired (the daemon holds its lock): say what to do first. */
		const char *first = c->locked ? " once the store is unmounted" : "";
		if (c->errors == 1)
			printf("lsmfsck: --repair can fix it%s\n", first);
		else
			printf("lsmfsck: --repair can fix %" PRIu64 " of them%s\n", c->fixable, first);
	}
}

/* Checks of a mounted store: the store changes under a check that reads it. A table or log deleted after
 * the listing is only a note (fsck_store.c), but an attempt that lost what it cannot do without (the
 * manifest, a table before the open or the filesystem scans could read it: c->moved), or that found
 * anything wrong while the store's manifest changed (a read-only open then may have seen a state between
 * two), is dropped and run again, up to this many times. Under constant writes most attempts stand. */
#define FSCK_ATTEMPTS 10

static void close_db(struct fsck *c)
{
	if (!c->db)
		return;
	int rc = lsm_close(c->db);
	c->db = NULL;
	if (rc) {
		fsck_operr(c, "closing the store: %s", lsm_errmsg());
		if (c->repair)
			fsck_unfix(c, c->fixed);
	}
}

/* Copy a buffer's contents to f and free it. */
static void buf_flush(FILE **b, char **data, size_t *len, FILE *f)
{
	if (!*b)
		return;
	fclose(*b);
	*b = NULL;
	if (*len)
		fwrite(*data, 1, *len, f);
	fflush(f);
	free(*data);
	*data = NULL;
	*len = 0;
}

static void buf_drop(FILE **b, char **data, size_t *len)
{
	if (!*b)
		return;
	fclose(*b);
	*b = NULL;
	free(*data);
	*data = NULL;
	*len = 0;
}

static void check_attempts(struct fsck *c)
{
	for (int attempt = 1;; attempt++) {
		/* Unlocked: one attempt, written as it goes. Locked: buffered until it is known to stand. */
		int may_retry = c->locked && attempt < FSCK_ATTEMPTS;
		struct fsck saved = *c;
		char *outd = NULL, *errd = NULL;
		size_t outl = 0, errl = 0;
		if (may_retry) {
			c->out = open_memstream(&outd, &outl);
			c->errout = c->out ? open_memstream(&errd, &errl) : NULL;
			if (!c->errout) {
				buf_drop(&c->out, &outd, &outl);
				may_retry = 0;
			}
		}
		c->moved = 0;
		if (c->locked)
			fsck_store_stamp(c);
		if (attempt > 1)
			fsck_note(c, "store-changed", "the running store changed what the check read: checked again "
				  "(attempt %d of at most %d)", attempt, FSCK_ATTEMPTS);
		if (fsck_store(c) == 0 && c->db)
			fsck_fs(c);
		close_db(c);
		int failed = c->moved || c->errors != saved.errors || (c->exit & FSCK_EXIT_OPERR);
		if (may_retry && failed && fsck_store_changed(c)) {
			buf_drop(&c->out, &outd, &outl);
			buf_drop(&c->errout, &errd, &errl);
			free(c->logs);
			*c = saved;
			continue;
		}
		buf_flush(&c->out, &outd, &outl, stdout);
		buf_flush(&c->errout, &errd, &errl, stderr);
		if (c->locked && failed && attempt == FSCK_ATTEMPTS && fsck_store_changed(c))
			fsck_note(c, "store-changed", "the running store changed the store during each of %d attempts: what "
				  "is reported may be due to that (unmount it for a definitive check)", FSCK_ATTEMPTS);
		return;
	}
}

static int run_check(struct fsck *c)
{
	if (c->repair && !c->yes && isatty(0) && isatty(2)) {
		fprintf(stderr, "lsmfsck: repair %s in place? [y/N] ", c->dir);
		char line[16];
		if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y')) {
			fprintf(stderr, "lsmfsck: not repairing\n");
			return FSCK_EXIT_OPERR;
		}
	}
	c->t0 = fsck_now();
	c->locate_budget = 64;
	if (c->json) {
		printf("{\n  \"store\": ");
		json_str(stdout, c->dir, strlen(c->dir));
		printf(",\n  \"problems\": [");
	}
	if (fsck_store_probe(c) == 0)
		check_attempts(c);
	/* The status from the final counts (a fix counted early may have failed to be written). */
	c->exit = (c->exit & FSCK_EXIT_OPERR) | (c->fixed ? FSCK_EXIT_FIXED : 0) |
		  (c->errors > c->fixed ? FSCK_EXIT_LEFT : 0);
	summary(c);
	free(c->logs);
	return c->exit;
}

int main(int argc, char **argv)
{
	struct fsck c;
	memset(&c, 0, sizeof c);
	c.json_first = 1;
	enum mode mode = M_CHECK;
	const char *arg = NULL;
	int nmodes = 0;
	static const struct option opts[] = {
		{"repair", no_argument, NULL, 'r'},   {"yes", no_argument, NULL, 'y'},
		{"quiet", no_argument, NULL, 'q'},    {"json", no_argument, NULL, 'j'},
		{"stats", no_argument, NULL, 's'},    {"ls", required_argument, NULL, 'L'},
		{"stat", required_argument, NULL, 'S'}, {"cat", required_argument, NULL, 'C'},
		{"dump-key", required_argument, NULL, 'K'}, {"dump-table", required_argument, NULL, 'T'},
		{"dump-log", required_argument, NULL, 'W'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	opterr = 0;
	int o;
	while ((o = getopt_long(argc, argv, ":yqh", opts, NULL)) != -1) {
		switch (o) {
		case 'r': c.repair = 1; break;
		case 'y': c.repair = c.yes = 1; break;
		case 'q': c.quiet = 1; break;
		case 'j': c.json = 1; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 's': mode = M_STATS; nmodes++; break;
		case 'L': mode = M_LS; arg = optarg; nmodes++; break;
		case 'S': mode = M_STAT; arg = optarg; nmodes++; break;
		case 'C': mode = M_CAT; arg = optarg; nmodes++; break;
		case 'K': mode = M_DUMP_KEY; arg = optarg; nmodes++; break;
		case 'T': mode = M_DUMP_TABLE; arg = optarg; nmodes++; break;
		case 'W': mode = M_DUMP_LOG; arg = optarg; nmodes++; break;
		case ':': return usage_error("%s needs an argument", argv[optind - 1]);
		default: return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (nmodes > 1)
		return usage_error("%sonly one of --stats, --ls, --stat, --cat, --dump-key, --dump-table, --dump-log", "");
	if (c.repair && mode != M_CHECK)
		return usage_error("--repair goes with a check, not %s", mode_name[mode]);
	if (c.json && mode != M_CHECK && mode != M_STATS)
		return usage_error("--json goes with a check or --stats, not %s", mode_name[mode]);
	int nargs = argc - optind;
	int dir_optional = mode == M_DUMP_TABLE || mode == M_DUMP_LOG;
	if (nargs == 0 && !dir_optional)
		return usage_error("%smissing STORE_DIR", "");
	if (nargs > 1)
		return usage_error("unexpected argument %s", argv[optind + 1]);
	c.dir = nargs ? argv[optind] : NULL;
	c.progress = !c.quiet && !c.json && isatty(2);

	switch (mode) {
	case M_CHECK: return run_check(&c);
	case M_STATS: return inspect_stats(&c);
	case M_LS: return inspect_ls(&c, arg);
	case M_STAT: return inspect_stat(&c, arg);
	case M_CAT: return inspect_cat(&c, arg);
	case M_DUMP_KEY: return inspect_dump_key(&c, arg);
	case M_DUMP_TABLE: return inspect_dump_table(&c, arg);
	case M_DUMP_LOG: return inspect_dump_log(&c, arg);
	}
	return FSCK_EXIT_USAGE;
}
