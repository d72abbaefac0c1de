/*
 * fsck_damage.c - test helper for tests/e2e/lsmfsck.sh: writes one known kind of damage into an
 * unmounted store through ordinary store writes (raw schema keys), then flushes it into a table
 * (unless -w: keep it in the write-ahead log). Not installed; never run on a store you care about.
 *
 *   fsck_damage [-w] STORE put-dirent PARENT NAME INO DTYPE
 *   fsck_damage [-w] STORE set-inode INO FIELD VALUE        (nlink, size, nentries, nxattrs, mode)
 *   fsck_damage [-w] STORE new-inode INO MODE NLINK [SIZE]  (MODE in octal, e.g. 100644)
 *   fsck_damage [-w] STORE put-block INO BLOCKNO LEN
 *   fsck_damage [-w] STORE put-orphan INO
 *   fsck_damage [-w] STORE del KEY                          (KEY as lsmfsck prints it)
 *   fsck_damage [-w] STORE set-alloc N
 *   fsck_damage [-w] STORE set-block-size N                 (the superblock's block size)
 *   fsck_damage STORE flush                                 (only open read-write and flush: tables)
 *   fsck_damage STORE wal-two-batches   two synced batches rewriting S and N with their own values;
 *                                       prints "LOGFILE OFFSET-OF-THE-FIRST" (to corrupt it)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lsm.h"
#include "schema.h"

static int die(const char *what)
{
	fprintf(stderr, "fsck_damage: %s: %s\n", what, lsm_errmsg());
	return 1;
}

static uint64_t num(const char *s)
{
	return strtoull(s, NULL, 0);
}

static int get_inode(lsm_db *db, uint64_t ino, struct fs_inode *in)
{
	char k[FS_KEY_MAX];
	size_t kl = fs_key_inode(k, ino);
	struct lsm_buf v = {0};
	int rc = lsm_get(db, NULL, k, kl, &v);
	in->ino = ino;
	if (!rc && fs_inode_decode(v.data, v.len, in))
		rc = LSM_CORRUPT;
	lsm_buf_free(&v);
	return rc;
}

static int put_inode(lsm_db *db, const struct fs_inode *in)
{
	char k[FS_KEY_MAX], v[FS_INODE_LEN];
	size_t kl = fs_key_inode(k, in->ino);
	fs_inode_encode(in, v);
	return lsm_put(db, k, kl, v, sizeof v, LSM_SYNC);
}

static int run(lsm_db *db, int argc, char **argv)
{
	const char *cmd = argv[0];
	char k[FS_KEY_MAX], v[FS_INODE_LEN];
	size_t kl;
	if (!strcmp(cmd, "put-dirent") && argc == 5) {
		kl = fs_key_dirent(k, num(argv[1]), argv[2], strlen(argv[2]));
		fs_dirent_encode(num(argv[3]), (unsigned)num(argv[4]), v);
		return lsm_put(db, k, kl, v, FS_DIRENT_LEN, LSM_SYNC);
	}
	if (!strcmp(cmd, "set-inode") && argc == 4) {
		struct fs_inode in;
		int rc = get_inode(db, num(argv[1]), &in);
		if (rc)
			return rc;
		uint64_t val = strtoull(argv[3], NULL, 0);
		if (!strcmp(argv[2], "nlink"))
			in.nlink = (uint32_t)val;
		else if (!strcmp(argv[2], "size"))
			in.size = val;
		else if (!strcmp(argv[2], "nentries"))
			in.nentries = val;
		else if (!strcmp(argv[2], "nxattrs"))
			in.nxattrs = (uint32_t)val;
		else if (!strcmp(argv[2], "mode"))
			in.mode = (uint32_t)strtoul(argv[3], NULL, 8);
		else
			return LSM_INVAL;
		return put_inode(db, &in);
	}
	if (!strcmp(cmd, "new-inode") && (argc == 4 || argc == 5)) {
		struct fs_inode in;
		memset(&in, 0, sizeof in);
		in.ino = num(argv[1]);
		in.mode = (uint32_t)strtoul(argv[2], NULL, 8);
		in.nlink = (uint32_t)num(argv[3]);
		in.size = argc == 5 ? num(argv[4]) : 0;
		in.mtime_sec = in.ctime_sec = in.atime_sec = in.btime_sec = time(NULL);
		return put_inode(db, &in);
	}
	if (!strcmp(cmd, "put-block") && argc == 4) {
		size_t len = (size_t)num(argv[3]);
		char *data = malloc(len ? len : 1);
		if (!data)
			return LSM_NOMEM;
		memset(data, 'z', len);
		kl = fs_key_block(k, num(argv[1]), num(argv[2]));
		int rc = lsm_put(db, k, kl, data, len, LSM_SYNC);
		free(data);
		return rc;
	}
	if (!strcmp(cmd, "put-orphan") && argc == 2) {
		kl = fs_key_orphan(k, num(argv[1]));
		return lsm_put(db, k, kl, "", 0, LSM_SYNC);
	}
	if (!strcmp(cmd, "del") && argc == 2) {
		if (fs_key_parse(argv[1], k, &kl))
			return LSM_INVAL;
		return lsm_delete(db, k, kl, LSM_SYNC);
	}
	if (!strcmp(cmd, "set-alloc") && argc == 2) {
		kl = fs_key_alloc(k);
		fs_alloc_encode(num(argv[1]), v);
		return lsm_put(db, k, kl, v, 8, LSM_SYNC);
	}
	if (!strcmp(cmd, "set-block-size") && argc == 2) {
		struct lsm_buf b = {0};
		struct fs_super sb;
		char sv[FS_SUPER_LEN];
		kl = fs_key_super(k);
		int rc = lsm_get(db, NULL, k, kl, &b);
		if (!rc && fs_super_decode(b.data, b.len, &sb))
			rc = LSM_CORRUPT;
		lsm_buf_free(&b);
		if (rc)
			return rc;
		sb.block_size = (uint32_t)num(argv[1]);
		fs_super_encode(&sb, sv);
		return lsm_put(db, k, kl, sv, sizeof sv, LSM_SYNC);
	}
	if (!strcmp(cmd, "flush") && argc == 1)
		return 0;
	if (!strcmp(cmd, "wal-two-batches") && argc == 1) {
		const char kinds[2] = {FS_K_SUPER, FS_K_ALLOC};
		struct lsm_stats st;
		lsm_stats_get(db, &st);
		uint64_t off = st.wal_bytes;
		for (int i = 0; i < 2; i++) {
			struct lsm_buf b = {0};
			int rc = lsm_get(db, NULL, &kinds[i], 1, &b);
			if (!rc)
				rc = lsm_put(db, &kinds[i], 1, b.data, b.len, LSM_SYNC);
			lsm_buf_free(&b);
			if (rc)
				return rc;
		}
		printf("%06" PRIu64 ".log %" PRIu64 "\n", st.wal_number, off);
		return 0;
	}
	fprintf(stderr, "fsck_damage: bad command (see tools/fsck_damage.c)\n");
	return LSM_INVAL;
}

int main(int argc, char **argv)
{
	int keep_in_log = 0;
	if (argc > 1 && !strcmp(argv[1], "-w")) {
		keep_in_log = 1;
		argv++;
		argc--;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: fsck_damage [-w] STORE COMMAND ARGS... (see tools/fsck_damage.c)\n");
		return 2;
	}
	struct lsm_options o;
	lsm_options_init(&o);
	o.create_if_missing = 0;
	lsm_db *db;
	if (lsm_open(argv[1], &o, &db))
		return die("open");
	int rc = run(db, argc - 2, argv + 2);
	if (rc) {
		lsm_close(db);
		return die(argv[2]);
	}
	if (!keep_in_log && strcmp(argv[2], "wal-two-batches") && lsm_flush(db)) {
		lsm_close(db);
		return die("flush");
	}
	if (lsm_close(db))
		return die("close");
	return 0;
}
