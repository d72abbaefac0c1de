/*
 * fsck.h - lsmfsck's shared state: the run's options, the store handle, problem reporting and counts.
 *
 * lsmfsck is one thread. The checker reports every problem through fsck_problem() (one line, or one
 * JSON object), which counts it as left or fixed; fsck_note() reports what is worth knowing but not
 * wrong. Exit codes are e2fsck's, OR-ed: FSCK_EXIT_*. Modules: fsck_store.c (files, manifest, tables,
 * logs), fsck_fs.c (the filesystem's invariants and their repair), fsck_inspect.c (--stats, --ls, ...),
 * fsck_report.c (output), lsmfsck.c (options, main).
 */
#ifndef LSMFSCK_H
#define LSMFSCK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lsm.h"
#include "lsm_inspect.h"

#define FSCK_EXIT_OK 0
#define FSCK_EXIT_FIXED 1     /* errors were corrected */
#define FSCK_EXIT_LEFT 4      /* errors left uncorrected */
#define FSCK_EXIT_OPERR 8     /* operational error: cannot open, mounted while repairing, I/O */
#define FSCK_EXIT_USAGE 16

struct fsck_count {
	const char *code;
	uint64_t n;
};

struct fsck {
	/* Options (fixed after parsing). */
	const char *dir;
	int repair;
	int yes;
	int quiet;
	int json;
	int progress;            /* stderr is a terminal and not --quiet */
	/* Output (NULL: stdout and stderr). A check of a mounted store writes into buffers instead, so
	 * that an attempt the running store disturbed can be dropped and run again (lsmfsck.c). */
	FILE *out;               /* problems and notes */
	FILE *errout;            /* operational errors */
	/* The store. */
	int locked;              /* a process (the daemon) holds the store's lock */
	lsm_db *db;              /* open (read-only unless repairing) once the store checks allow it */
	uint64_t *logs;          /* live log numbers, ascending (for locating keys still in a log) */
	size_t nlogs;
	int locate_budget;       /* log searches left for problem locations (each reads the logs) */
	/* A mounted store: the manifest when this attempt began (fsck_store_stamp), and whether the running
	 * store deleted or replaced something this attempt could not do without (the manifest, a table the
	 * filesystem checks read): a note, not an error, and the attempt is run again (lsmfsck.c). */
	uint64_t stamp_mnum, stamp_msize;
	int stamp_ok;
	int moved;
	/* Results. */
	uint64_t errors, fixed, notes;
	uint64_t fixable;        /* errors --repair knows how to fix */
	int exit;                /* FSCK_EXIT_* bits so far */
	int json_first;          /* no problem printed to the JSON array yet */
	struct fsck_count counts[64]; /* problems by code */
	int ncounts;
	/* What the checks covered (the summary). */
	uint64_t tables, table_bytes, log_files, log_bytes, log_records;
	uint64_t blob_files, blob_file_bytes, blob_refs, blob_ref_bytes;
	uint64_t inodes, dirents, blocks, xattrs, symlinks, orphans;
	int fs_checked;          /* the filesystem pass ran to the end */
	double t0;
};

/* ---- fsck_report.c ---- */
double fsck_now(void);
/* A problem. key (may be NULL) is decoded with the schema and located (table file and block, or log
 * record). fix: what --repair does about it (NULL: lsmfsck cannot fix it); fixed: whether it was done
 * (only meaningful when repairing). */
void fsck_problem(struct fsck *c, const char *code, const void *key, size_t klen, const char *where,
		  const char *fix, int fixed, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
void fsck_note(struct fsck *c, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A fix that was counted as done could not be written after all. */
void fsck_unfix(struct fsck *c, uint64_t n);
/* Operational error: message on stderr, exit bit 8. */
void fsck_operr(struct fsck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "(in 000012.sst at 4096)"-style location of the newest version of key, into buf ("" if unknown). */
void fsck_locate(struct fsck *c, const void *key, size_t klen, char *buf, size_t buflen);
/* Progress line on a terminal (rate-limited); fsck_progress_done clears it. */
void fsck_progress(struct fsck *c, const char *what, uint64_t done, uint64_t total);
void fsck_progress_done(struct fsck *c);
/* JSON string (quoted, escaped) to f. */
void json_str(FILE *f, const char *s, size_t n);

/* ---- fsck_store.c ---- */
/* The directory holds a store; whether it is locked (c->locked); a locked store is not repaired.
 * 0, or -1 with an operational error reported. */
int fsck_store_probe(struct fsck *c);
/* Record the store's version stamp in c->stamp_*: CURRENT's manifest number and that manifest's size. */
void fsck_store_stamp(struct fsck *c);
/* 1 if the stamp changed since fsck_store_stamp (or could not be read either time). */
int fsck_store_changed(struct fsck *c);
/* Store level: lock, CURRENT, manifest, files, tables, logs. Opens c->db (read-only, or read-write with
 * the log repair option when repairing). Returns 0 if the filesystem pass can run, -1 if not. */
int fsck_store(struct fsck *c);

/* ---- fsck_fs.c ---- */
/* Filesystem level (and its repair when c->repair). REQUIRES: c->db open. */
void fsck_fs(struct fsck *c);

/* ---- fsck_inspect.c ---- */
/* Open the store read-only for inspection (8 and a message on failure). */
int inspect_open(struct fsck *c);
int inspect_stats(struct fsck *c);
int inspect_ls(struct fsck *c, const char *path);
int inspect_stat(struct fsck *c, const char *path);
int inspect_cat(struct fsck *c, const char *path);
int inspect_dump_key(struct fsck *c, const char *key);
int inspect_dump_table(struct fsck *c, const char *file);
int inspect_dump_log(struct fsck *c, const char *file);

#endif
