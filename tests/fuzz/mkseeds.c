/*
 * mkseeds.c - writes the seed corpus of the fuzz targets from real files: a small store is built in the
 * in-memory env (tiny memtables and tables, so that it has several logs, tables with every block kind,
 * and a manifest with many edits), and its files are copied out; blocks and filesystem keys and values
 * are made with the encoders the code itself uses.
 *
 *   mkseeds OUTDIR      creates OUTDIR/{wal,table,manifest,block,schema}/ (existing files are replaced)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "block.h"
#include "dbformat.h"
#include "env.h"
#include "lsm.h"
#include "schema.h"

static const char *outdir;
static int nfiles;

static void die(const char *what)
{
	fprintf(stderr, "mkseeds: %s: %s\n", what, lsm_errmsg());
	exit(1);
}

static void put_file(const char *kind, const char *name, const void *a, size_t alen, const void *b, size_t blen)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", outdir, kind);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof path, "%s/%s/%s", outdir, kind, name);
	FILE *f = fopen(path, "wb");
	if (!f || (alen && fwrite(a, 1, alen, f) != alen) || (blen && fwrite(b, 1, blen, f) != blen) || fclose(f)) {
		perror(path);
		exit(1);
	}
	nfiles++;
}

/* ---------------------------------------------------------------- store files */

struct copy_ctx {
	lsm_env *env;
	int variant;
};

static int copy_one(void *arg, const char *name)
{
	struct copy_ctx *c = arg;
	char path[256];
	snprintf(path, sizeof path, "/s/%s", name);
	char *data;
	size_t len;
	if (lsm_env_read_all(c->env, path, &data, &len))
		die(path);
	size_t nl = strlen(name);
	char vname[300];
	snprintf(vname, sizeof vname, "v%d-%s", c->variant, name);
	if (nl > 4 && !strcmp(name + nl - 4, ".log")) {
		put_file("wal", vname, data, len, NULL, 0);
	} else if (nl > 4 && !strcmp(name + nl - 4, ".sst")) {
		/* the table target's control byte first: as is, with fixed checksums, with a cache */
		static const unsigned char ctl[] = {0, 1, 3, 7};
		for (size_t i = 0; i < sizeof ctl; i++) {
			char n[320];
			snprintf(n, sizeof n, "%s.%u", vname, ctl[i]);
			put_file("table", n, &ctl[i], 1, data, len);
		}
	} else if (!strncmp(name, "MANIFEST-", 9)) {
		put_file("manifest", vname, data, len, NULL, 0);
	}
	free(data);
	return 0;
}

static void store_seeds(int variant)
{
	lsm_env *env = lsm_env_mem_new();
	struct lsm_options o;
	lsm_options_init(&o);
	o.env = env;
	o.write_buffer_size = 4096;
	o.table_target_size = 4096;
	o.block_size = 256;
	o.block_restart_interval = variant ? 1 : 4;
	o.bloom_bits_per_key = variant ? 0 : 10;
	o.l0_compaction_trigger = 2;
	o.level1_max_bytes = 8192;
	lsm_db *db;
	if (lsm_open("/s", &o, &db))
		die("open");
	char k[32], v[200];
	const lsm_snapshot *snap = NULL;
	for (int i = 0; i < 120; i++) {
		int id = (i * 37) % 50;
		snprintf(k, sizeof k, "key%03d%s", id, id % 3 ? "" : "/longer/name");
		memset(v, 'a' + i % 26, sizeof v);
		int rc;
		if (i % 11 == 5)
			rc = lsm_delete(db, k, strlen(k), 0);
		else if (i % 17 == 9)
			rc = lsm_delete_range(db, "key010", 6, "key020", 6, 0);
		else
			rc = lsm_put(db, k, strlen(k), v, (size_t)(i * 13) % sizeof v, i % 10 == 0 ? LSM_SYNC : 0);
		if (rc)
			die("write");
		if (i == 60)
			snap = lsm_snapshot_create(db);
		if (i % 40 == 39 && lsm_flush(db))
			die("flush");
	}
	if (lsm_compact_range(db, NULL, 0, NULL, 0))
		die("compact");
	for (int i = 0; i < 20; i++) {
		snprintf(k, sizeof k, "tail%02d", i);
		if (lsm_put(db, k, strlen(k), "x", 1, 0))
			die("write");
	}
	lsm_snapshot_release(db, snap);
	if (lsm_close(db))
		die("close");
	struct copy_ctx c = {env, variant};
	if (env->list(env, "/s", copy_one, &c))
		die("list");
	env->destroy(env);
}

/* ---------------------------------------------------------------- blocks */

static void block_seeds(void)
{
	for (int interval = 1; interval <= 16; interval *= 4) {
		struct block_builder b;
		bb_init(&b, interval);
		char uk[32], ik[40];
		for (int i = 0; i < 24; i++) {
			int n = snprintf(uk, sizeof uk, "user-key-%04d", i * 3);
			ikey_build(ik, slice_make(uk, (size_t)n), 100 + (uint64_t)i, i % 5 ? VT_VALUE : VT_DELETE);
			if (bb_add(&b, slice_make(ik, (size_t)n + IKEY_TRAILER), slice_make("value", (size_t)(i % 6))))
				die("bb_add");
		}
		struct slice s = bb_finish(&b);
		char name[32];
		snprintf(name, sizeof name, "ikeys-%d", interval);
		put_file("block", name, s.data, s.len, NULL, 0);
		bb_free(&b);
	}
	struct block_builder b;
	bb_init(&b, 2);
	bb_add(&b, slice_make("a", 1), slice_make("1", 1));
	bb_add(&b, slice_make("ab", 2), slice_make("", 0));
	bb_add(&b, slice_make("abc", 3), slice_make("333", 3));
	struct slice s = bb_finish(&b);
	put_file("block", "bytes", s.data, s.len, NULL, 0);
	bb_free(&b);
	put_file("block", "empty", "\0\0\0\0", 4, NULL, 0);
}

/* ---------------------------------------------------------------- filesystem schema */

static void schema_seeds(void)
{
	char k[FS_KEY_MAX], text[4 * FS_KEY_MAX + 64], v[FS_INODE_LEN];
	size_t n;
	n = fs_key_super(k);
	put_file("schema", "key-super", k, n, NULL, 0);
	n = fs_key_inode(k, 12345);
	put_file("schema", "key-inode", k, n, NULL, 0);
	n = fs_key_dirent(k, 1, "hello \"world\"\n", 14);
	put_file("schema", "key-dirent", k, n, NULL, 0);
	fs_key_format(k, n, text, sizeof text);
	put_file("schema", "text-dirent", text, strlen(text), NULL, 0);
	n = fs_key_block(k, 7, 99);
	put_file("schema", "key-block", k, n, NULL, 0);
	fs_key_format(k, n, text, sizeof text);
	put_file("schema", "text-block", text, strlen(text), NULL, 0);
	n = fs_key_xattr(k, 7, "user.x", 6);
	put_file("schema", "key-xattr", k, n, NULL, 0);
	struct fs_inode in = {.ino = 5, .mode = 0100644, .uid = 1000, .gid = 1000, .nlink = 1, .size = 4096,
			      .mtime_sec = 1700000000, .mtime_nsec = 5};
	fs_inode_encode(&in, v);
	put_file("schema", "inode", v, FS_INODE_LEN, NULL, 0);
	fs_dirent_encode(5, 8, v);
	put_file("schema", "dirent", v, FS_DIRENT_LEN, NULL, 0);
	struct fs_super sb = {FS_MAGIC, FS_FORMAT_VERSION, 4096, 1700000000};
	fs_super_encode(&sb, v);
	put_file("schema", "super", v, FS_SUPER_LEN, NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds OUTDIR\n");
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) && errno != EEXIST) {
		perror(outdir);
		return 1;
	}
	store_seeds(0);
	store_seeds(1);
	block_seeds();
	schema_seeds();
	printf("mkseeds: %d seed files in %s\n", nfiles, outdir);
	return 0;
}
