/* fsck_inspect.c - lsmfsck's inspection commands: --stats, --ls, --stat, --cat, --dump-key/-table/-log. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fsck.h"
#include "schema.h"

static int operr(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "lsmfsck: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n");
	return FSCK_EXIT_OPERR;
}

int inspect_open(struct fsck *c)
{
	int l = lsm_inspect_locked(NULL, c->dir);
	if (l > 0)
		fprintf(stderr, "lsmfsck: note: %s is in use (mounted?): reading it read-only; the live write-ahead log "
			"may be ahead of what this shows\n", c->dir);
	c->locked = l > 0;
	struct lsm_options o;
	lsm_options_init(&o);
	o.read_only = 1;
	o.create_if_missing = 0;
	o.block_cache_size = 8u << 20;
	int rc = lsm_open(c->dir, &o, &c->db);
	if (rc) {
		c->db = NULL;
		return operr("cannot open %s: %s", c->dir, lsm_errmsg());
	}
	return 0;
}

static void inspect_close(struct fsck *c)
{
	if (c->db)
		lsm_close(c->db);
	c->db = NULL;
}

static void put_escaped(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (isprint(ch) && ch != '\\')
			fputc(ch, f);
		else
			fprintf(f, "\\x%02x", ch);
	}
}

static void put_hex(FILE *f, const void *p, size_t n, size_t max)
{
	const unsigned char *u = p;
	for (size_t i = 0; i < n && i < max; i++)
		fprintf(f, "%02x", u[i]);
	if (n > max)
		fprintf(f, "...");
}

static void put_key(FILE *f, const void *k, size_t kl)
{
	char buf[4 * FS_KEY_MAX + 16];
	fs_key_format(k, kl, buf, sizeof buf);
	fputs(buf, f);
}

static const char *mode_string(uint32_t mode, char *s)
{
	const char *t = "?";
	switch (mode & S_IFMT) {
	case S_IFREG: t = "-"; break;
	case S_IFDIR: t = "d"; break;
	case S_IFLNK: t = "l"; break;
	case S_IFIFO: t = "p"; break;
	case S_IFCHR: t = "c"; break;
	case S_IFBLK: t = "b"; break;
	case S_IFSOCK: t = "s"; break;
	}
	snprintf(s, 11, "%s%c%c%c%c%c%c%c%c%c", t, mode & 0400 ? 'r' : '-', mode & 0200 ? 'w' : '-',
		 mode & 04000 ? (mode & 0100 ? 's' : 'S') : (mode & 0100 ? 'x' : '-'), mode & 040 ? 'r' : '-',
		 mode & 020 ? 'w' : '-', mode & 02000 ? (mode & 010 ? 's' : 'S') : (mode & 010 ? 'x' : '-'),
		 mode & 04 ? 'r' : '-', mode & 02 ? 'w' : '-', mode & 01000 ? (mode & 01 ? 't' : 'T') : (mode & 01 ? 'x' : '-'));
	return s;
}

static void put_time(FILE *f, int64_t sec, uint32_t nsec)
{
	time_t t = (time_t)sec;
	struct tm tm;
	char buf[64];
	if (gmtime_r(&t, &tm) && strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm))
		fprintf(f, "%s.%09u UTC", buf, nsec);
	else
		fprintf(f, "%" PRId64 ".%09u", sec, nsec);
}

static void put_inode_line(FILE *f, const struct fs_inode *in)
{
	char ms[12];
	fprintf(f, "ino %" PRIu64 " %s mode %06o nlink %u uid %u gid %u size %" PRIu64 " entries %" PRIu64
		   " xattrs %u rdev %" PRIu64 " mtime ",
		in->ino, mode_string(in->mode, ms), in->mode, in->nlink, in->uid, in->gid, in->size, in->nentries,
		in->nxattrs, in->rdev);
	put_time(f, in->mtime_sec, in->mtime_nsec);
}

/* A value decoded by the kind of its key. */
static void put_value(FILE *f, const void *k, size_t kl, const void *v, size_t vl)
{
	struct fs_key d;
	if (fs_key_decode(k, kl, &d)) {
		fprintf(f, "%zu bytes ", vl);
		put_hex(f, v, vl, 32);
		return;
	}
	switch (d.kind) {
	case FS_K_SUPER: {
		struct fs_super s;
		if (fs_super_decode(v, vl, &s) == 0) {
			fprintf(f, "superblock version %u block size %u created ", s.version, s.block_size);
			put_time(f, (int64_t)s.created_sec, 0);
			return;
		}
		break;
	}
	case FS_K_ALLOC: {
		uint64_t n;
		if (fs_alloc_decode(v, vl, &n) == 0) {
			fprintf(f, "next inode %" PRIu64, n);
			return;
		}
		break;
	}
	case FS_K_INODE: {
		struct fs_inode in = {.ino = d.ino};
		if (fs_inode_decode(v, vl, &in) == 0) {
			put_inode_line(f, &in);
			return;
		}
		break;
	}
	case FS_K_DIRENT: {
		uint64_t ino;
		unsigned t;
		if (fs_dirent_decode(v, vl, &ino, &t) == 0) {
			fprintf(f, "-> inode %" PRIu64 " type %u", ino, t);
			return;
		}
		break;
	}
	case FS_K_SYMLINK:
		fprintf(f, "target \"");
		put_escaped(f, v, vl);
		fprintf(f, "\"");
		return;
	case FS_K_BLOCK:
	case FS_K_XATTR:
		fprintf(f, "%zu bytes ", vl);
		put_hex(f, v, vl, 32);
		return;
	case FS_K_ORPHAN:
		fprintf(f, "(orphan record)");
		return;
	}
	fprintf(f, "MALFORMED %zu bytes ", vl);
	put_hex(f, v, vl, 32);
}

/* ---------------------------------------------------------------- paths */

static int get_inode(struct fsck *c, uint64_t ino, struct fs_inode *in)
{
	char k[FS_KEY_MAX];
	size_t kl = fs_key_inode(k, ino);
	struct lsm_buf v = {0};
	int rc = lsm_get(c->db, NULL, k, kl, &v);
	in->ino = ino;
	if (rc == LSM_OK && fs_inode_decode(v.data, v.len, in))
		rc = LSM_CORRUPT;
	lsm_buf_free(&v);
	return rc;
}

/* Walk path from the root: 0 and the inode, or an exit code with a message. */
static int resolve(struct fsck *c, const char *path, struct fs_inode *in)
{
	uint64_t ino = FS_ROOT_INO;
	const char *p = path;
	for (;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n > FS_NAME_MAX)
			return operr("%s: name too long%s", path, "");
		if (!(n == 1 && p[0] == '.')) {
			if (n == 2 && p[0] == '.' && p[1] == '.')
				return operr("%s: '..' is not supported in paths%s", path, "");
			char k[FS_KEY_MAX];
			size_t kl = fs_key_dirent(k, ino, p, n);
			struct lsm_buf v = {0};
			int rc = lsm_get(c->db, NULL, k, kl, &v);
			unsigned type;
			if (rc == LSM_OK && fs_dirent_decode(v.data, v.len, &ino, &type))
				rc = LSM_CORRUPT;
			lsm_buf_free(&v);
			if (rc == LSM_NOTFOUND)
				return operr("%s: no such file or directory%s", path, "");
			if (rc)
				return operr("%s: %s", path, lsm_errmsg());
		}
		p += n;
	}
	int rc = get_inode(c, ino, in);
	if (rc == LSM_NOTFOUND)
		return operr("%s: the entry names an inode that does not exist%s", path, "");
	if (rc == LSM_CORRUPT)
		return operr("%s: the inode record does not decode%s", path, "");
	if (rc)
		return operr("%s: %s", path, lsm_errmsg());
	return 0;
}

/* Open the store and find path's inode; on failure the store is closed again. */
static int inspect_open_path(struct fsck *c, const char *path, struct fs_inode *in)
{
	int rc = inspect_open(c);
	if (rc)
		return rc;
	if ((rc = resolve(c, path, in)))
		inspect_close(c);
	return rc;
}

static int read_target(struct fsck *c, uint64_t ino, struct lsm_buf *v)
{
	char k[FS_KEY_MAX];
	size_t kl = fs_key_symlink(k, ino);
	return lsm_get(c->db, NULL, k, kl, v);
}

static void ls_line(struct fsck *c, const struct fs_inode *in, const char *name, size_t nl)
{
	char ms[12];
	printf("%s %3u %5u %5u %10" PRIu64 " ", mode_string(in->mode, ms), in->nlink, in->uid, in->gid, in->size);
	time_t t = (time_t)in->mtime_sec;
	struct tm tm;
	char buf[32];
	if (gmtime_r(&t, &tm) && strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm))
		printf("%s ", buf);
	printf("%8" PRIu64 " ", in->ino);
	put_escaped(stdout, name, nl);
	if (S_ISLNK(in->mode)) {
		struct lsm_buf v = {0};
		if (read_target(c, in->ino, &v) == LSM_OK) {
			printf(" -> ");
			put_escaped(stdout, v.data, v.len);
		}
		lsm_buf_free(&v);
	}
	printf("\n");
}

int inspect_ls(struct fsck *c, const char *path)
{
	struct fs_inode in;
	int rc = inspect_open_path(c, path, &in);
	if (rc)
		return rc;
	if (!S_ISDIR(in.mode)) {
		const char *base = strrchr(path, '/');
		base = base ? base + 1 : path;
		ls_line(c, &in, base, strlen(base));
		goto out;
	}
	lsm_iter *it = lsm_iter_new(c->db, NULL);
	if (!it) {
		rc = operr("out of memory%s%s", "", "");
		goto out;
	}
	char k[FS_KEY_MAX];
	size_t pl = fs_key_dirent_prefix(k, in.ino);
	for (lsm_iter_seek(it, k, pl); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *ik = lsm_iter_key(it, &kl);
		if (kl < pl || memcmp(ik, k, pl))
			break;
		const void *v = lsm_iter_value(it, &vl);
		struct fs_key d;
		uint64_t ino;
		unsigned type;
		if (fs_key_decode(ik, kl, &d) || fs_dirent_decode(v, vl, &ino, &type)) {
			printf("?????????? (malformed entry ");
			put_key(stdout, ik, kl);
			printf(")\n");
			continue;
		}
		struct fs_inode ch;
		if (get_inode(c, ino, &ch)) {
			printf("?????????? %3s %5s %5s %10s %16s %8" PRIu64 " ", "?", "?", "?", "?", "?", ino);
			put_escaped(stdout, d.name, d.namelen);
			printf(" (no such inode)\n");
			continue;
		}
		ls_line(c, &ch, d.name, d.namelen);
	}
	if (lsm_iter_status(it))
		rc = operr("reading %s: %s", path, lsm_errmsg());
	lsm_iter_free(it);
out:
	inspect_close(c);
	return rc;
}

int inspect_stat(struct fsck *c, const char *path)
{
	struct fs_inode in;
	int rc = inspect_open_path(c, path, &in);
	if (rc)
		return rc;
	char ms[12];
	printf("path:    %s\n", path);
	printf("inode:   %" PRIu64 "\n", in.ino);
	printf("mode:    %s (%06o)\n", mode_string(in.mode, ms), in.mode);
	printf("links:   %u\n", in.nlink);
	printf("uid/gid: %u/%u\n", in.uid, in.gid);
	printf("size:    %" PRIu64 "\n", in.size);
	if (S_ISCHR(in.mode) || S_ISBLK(in.mode))
		printf("rdev:    %" PRIu64 "\n", in.rdev);
	if (S_ISDIR(in.mode))
		printf("entries: %" PRIu64 "\n", in.nentries);
	printf("atime:   ");
	put_time(stdout, in.atime_sec, in.atime_nsec);
	printf("\nmtime:   ");
	put_time(stdout, in.mtime_sec, in.mtime_nsec);
	printf("\nctime:   ");
	put_time(stdout, in.ctime_sec, in.ctime_nsec);
	printf("\nbtime:   ");
	put_time(stdout, in.btime_sec, in.btime_nsec);
	printf("\nflags:   %u\n", in.flags);
	if (S_ISLNK(in.mode)) {
		struct lsm_buf v = {0};
		int r = read_target(c, in.ino, &v);
		printf("target:  ");
		if (r == LSM_OK) {
			printf("\"");
			put_escaped(stdout, v.data, v.len);
			printf("\"\n");
		} else {
			printf("(missing)\n");
		}
		lsm_buf_free(&v);
	}
	/* Stored blocks and extended attributes: one prefix scan each. */
	lsm_iter *it = lsm_iter_new(c->db, NULL);
	if (!it) {
		rc = operr("out of memory%s%s", "", "");
		goto out;
	}
	char k[FS_KEY_MAX];
	size_t pl = fs_key_kind_ino(k, FS_K_BLOCK, in.ino);
	uint64_t nblocks = 0, bytes = 0;
	for (lsm_iter_seek(it, k, pl); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *ik = lsm_iter_key(it, &kl);
		if (kl < pl || memcmp(ik, k, pl))
			break;
		vl = lsm_iter_value_size(it);
		nblocks++;
		bytes += vl;
	}
	printf("blocks:  %" PRIu64 " stored (%" PRIu64 " bytes)\n", nblocks, bytes);
	pl = fs_key_xattr_prefix(k, in.ino);
	printf("xattrs:  %u", in.nxattrs);
	for (lsm_iter_seek(it, k, pl); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *ik = lsm_iter_key(it, &kl);
		if (kl < pl || memcmp(ik, k, pl))
			break;
		lsm_iter_value(it, &vl);
		printf("%s", " ");
		put_escaped(stdout, ik + pl, kl - pl);
		printf("(%zu bytes)", vl);
	}
	printf("\n");
	if (lsm_iter_status(it))
		rc = operr("reading %s: %s", path, lsm_errmsg());
	lsm_iter_free(it);
	struct lsm_buf v = {0};
	pl = fs_key_orphan(k, in.ino);
	if (lsm_get(c->db, NULL, k, pl, &v) == LSM_OK)
		printf("orphan:  yes (unlinked while open; reclaimed at the next mount)\n");
	lsm_buf_free(&v);
out:
	inspect_close(c);
	return rc;
}

/* 0, or the errno of a failed write to stdout. */
static int cat_write(const void *p, size_t n)
{
	errno = 0;
	return fwrite(p, 1, n, stdout) == n ? 0 : errno ? errno : EIO;
}

int inspect_cat(struct fsck *c, const char *path)
{
	struct fs_inode in;
	int rc = inspect_open_path(c, path, &in);
	if (rc)
		return rc;
	if (!S_ISREG(in.mode)) {
		rc = operr("%s: not a regular file%s", path, "");
		goto out;
	}
	char k[FS_KEY_MAX];
	size_t kl = fs_key_super(k);
	struct lsm_buf sv = {0};
	struct fs_super s = {.block_size = 4096};
	if (lsm_get(c->db, NULL, k, kl, &sv) == LSM_OK && fs_super_decode(sv.data, sv.len, &s))
		s.block_size = 4096;
	lsm_buf_free(&sv);
	/* As the check does: a block size lsmfs never writes is taken for 4096 (and would overrun zeros[]). */
	if (s.block_size < 512 || s.block_size > 65536 || (s.block_size & (s.block_size - 1))) {
		fprintf(stderr, "lsmfsck: the superblock's block size %u is invalid: 4096 assumed (run lsmfsck %s)\n",
			s.block_size, c->dir);
		s.block_size = 4096;
	}
	uint64_t bs = s.block_size;
	static const char zeros[65536];
	lsm_iter *it = lsm_iter_new(c->db, NULL);
	if (!it) {
		rc = operr("out of memory%s%s", "", "");
		goto out;
	}
	size_t pl = fs_key_kind_ino(k, FS_K_BLOCK, in.ino);
	uint64_t pos = 0; /* bytes written so far */
	int werr = 0;     /* errno of a failed write to stdout: stop (the output would be silently short) */
	for (lsm_iter_seek(it, k, pl); !werr && lsm_iter_valid(it) && pos < in.size; lsm_iter_next(it)) {
		size_t ikl, vl;
		const char *ik = lsm_iter_key(it, &ikl);
		struct fs_key d;
		if (ikl < pl || memcmp(ik, k, pl) || fs_key_decode(ik, ikl, &d))
			break;
		const char *v = lsm_iter_value(it, &vl);
		if (d.blockno >= in.size / bs + 1)
			break;
		uint64_t start = d.blockno * bs;
		while (!werr && pos < start && pos < in.size) { /* a hole reads as zeros */
			uint64_t n = start - pos < sizeof zeros ? start - pos : sizeof zeros;
			werr = cat_write(zeros, n);
			pos += n;
		}
		uint64_t n = vl < bs ? vl : bs;
		if (start + n > in.size)
			n = in.size - start;
		if (!werr)
			werr = cat_write(v, n);
		pos = start + n;
	}
	if (!werr && lsm_iter_status(it))
		rc = operr("reading %s: %s", path, lsm_errmsg());
	lsm_iter_free(it);
	while (!rc && !werr && pos < in.size) {
		uint64_t n = in.size - pos < sizeof zeros ? in.size - pos : sizeof zeros;
		werr = cat_write(zeros, n);
		pos += n;
	}
	if (!werr && fflush(stdout))
		werr = errno ? errno : EIO;
	if (!werr && ferror(stdout))
		werr = EIO;
	if (werr)
		rc = operr("writing the output: %s%s", strerror(werr), "");
out:
	inspect_close(c);
	return rc;
}

/* ---------------------------------------------------------------- dumps */

static int parse_any_key(const char *text, char *key, size_t *len)
{
	if (!strncmp(text, "hex:", 4)) {
		const char *p = text + 4;
		size_t n = strlen(p);
		if (n % 2 || n / 2 > FS_KEY_MAX)
			return -1;
		for (size_t i = 0; i < n / 2; i++) {
			if (!isxdigit((unsigned char)p[2 * i]) || !isxdigit((unsigned char)p[2 * i + 1]))
				return -1;
			char h[3] = {p[2 * i], p[2 * i + 1], 0};
			key[i] = (char)strtoul(h, NULL, 16);
		}
		*len = n / 2;
		return 0;
	}
	return fs_key_parse(text, key, len);
}

static const char *entry_type(int t)
{
	return t == LSM_ENTRY_VALUE ? "put" : t == LSM_ENTRY_DELETE ? "delete" : t == LSM_ENTRY_RANGE_DELETE ? "range-delete"
	       : t == LSM_ENTRY_BLOB ? "put (blob)" : "?";
}

/* Where a blob entry's value is: "in 000012.blob at offset 4096, 4096 bytes". */
static void put_blob_ref(FILE *out, const void *v, size_t n)
{
	uint64_t num, off;
	uint32_t len;
	if (lsm_inspect_blob_ref(v, n, &num, &off, &len))
		fprintf(out, "malformed reference");
	else
		fprintf(out, "in %06" PRIu64 ".blob at offset %" PRIu64 ", %" PRIu32 " bytes", num, off, len);
}

static int dump_version(void *arg, const struct lsm_version_info *v)
{
	int *n = arg;
	(*n)++;
	printf("  %s", v->source);
	if (v->table_number)
		printf(" block at %" PRIu64, v->block_offset);
	printf(": seqno %" PRIu64 " %s", v->seq, entry_type(v->type));
	if (v->type == LSM_ENTRY_VALUE) {
		printf(" ");
		put_value(stdout, v->begin, v->begin_len, v->value, v->value_len);
	} else if (v->type == LSM_ENTRY_BLOB) {
		printf(" ");
		put_blob_ref(stdout, v->value, v->value_len);
	} else if (v->type == LSM_ENTRY_RANGE_DELETE) {
		printf(" [");
		put_key(stdout, v->begin, v->begin_len);
		printf(", ");
		put_key(stdout, v->value, v->value_len);
		printf(")");
	}
	printf("\n");
	return 0;
}

int inspect_dump_key(struct fsck *c, const char *text)
{
	char key[FS_KEY_MAX + 1];
	size_t kl;
	if (parse_any_key(text, key, &kl)) {
		fprintf(stderr, "lsmfsck: cannot parse key '%s' (forms: S, N, i|INO, d|PARENT|NAME, b|INO|BLOCK, l|INO, "
			"x|INO|NAME, o|INO, hex:HEX)\nTry 'lsmfsck --help' for more information.\n", text);
		return FSCK_EXIT_USAGE;
	}
	int rc = inspect_open(c);
	if (rc)
		return rc;
	printf("key ");
	put_key(stdout, key, kl);
	printf(" (hex ");
	put_hex(stdout, key, kl, FS_KEY_MAX);
	printf("):\n");
	int n = 0;
	rc = lsm_inspect_key(c->db, key, kl, dump_version, &n);
	if (rc)
		rc = operr("reading the key: %s%s", lsm_errmsg(), "");
	else if (!n)
		printf("  no version stored\n");
	inspect_close(c);
	return rc;
}

static const char *file_path(struct fsck *c, const char *file, char *buf, size_t n)
{
	if (!c->dir || strchr(file, '/'))
		return file;
	snprintf(buf, n, "%s/%s", c->dir, file);
	return buf;
}

static int dump_entry(void *arg, const struct lsm_raw_entry *e)
{
	(void)arg;
	printf("%10" PRIu64 "  ", e->offset);
	put_key(stdout, e->key, e->klen);
	printf("  seqno %" PRIu64 " %s", e->seq, entry_type(e->type));
	if (e->type == LSM_ENTRY_VALUE) {
		printf("  ");
		put_value(stdout, e->key, e->klen, e->value, e->vlen);
	} else if (e->type == LSM_ENTRY_BLOB) {
		printf("  ");
		put_blob_ref(stdout, e->value, e->vlen);
	} else if (e->type == LSM_ENTRY_RANGE_DELETE) {
		printf(" to ");
		put_key(stdout, e->value, e->vlen);
	}
	printf("\n");
	return 0;
}

int inspect_dump_table(struct fsck *c, const char *file)
{
	char buf[4096];
	const char *path = file_path(c, file, buf, sizeof buf);
	struct lsm_table_report r;
	printf("table %s\n%10s  key  seqno type value\n", path, "block");
	int rc = lsm_inspect_table_file(NULL, path, dump_entry, NULL, &r);
	if (rc) {
		fflush(stdout);
		fprintf(stderr, "lsmfsck: %s\n", lsm_errmsg());
		return rc == LSM_CORRUPT ? FSCK_EXIT_LEFT : FSCK_EXIT_OPERR;
	}
	printf("size %" PRIu64 " bytes, format version %u, %" PRIu64 " data blocks, index %" PRIu64 " bytes, "
	       "bloom filter %" PRIu64 " bytes\n",
	       r.size, r.format_version, r.data_blocks, r.index_bytes, r.filter_bytes);
	printf("%" PRIu64 " entries (%" PRIu64 " deletes), %" PRIu64 " range deletes, seqnos %" PRIu64 "..%" PRIu64
	       "; every checksum verified\n", r.entries, r.deletes, r.range_dels, r.min_seq, r.max_seq);
	return 0;
}

int inspect_dump_log(struct fsck *c, const char *file)
{
	char buf[4096];
	const char *path = file_path(c, file, buf, sizeof buf);
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	uint64_t number = strtoull(base, NULL, 10);
	struct lsm_log_report r;
	printf("log %s\n%10s  key  seqno type value\n", path, "record");
	int rc = lsm_inspect_log_file(NULL, path, number, 1, dump_entry, NULL, &r);
	if (rc) {
		fflush(stdout);
		fprintf(stderr, "lsmfsck: %s\n", lsm_errmsg());
		return rc == LSM_CORRUPT ? FSCK_EXIT_LEFT : FSCK_EXIT_OPERR;
	}
	printf("%" PRIu64 " bytes, %" PRIu64 " records, %" PRIu64 " operations, seqnos %" PRIu64 "..%" PRIu64 "\n",
	       r.size, r.records, r.ops, r.first_seq, r.last_seq);
	if (r.torn_bytes)
		printf("torn tail at %" PRIu64 ": %" PRIu64 " bytes (never synced; discarded at open)\n", r.torn_offset,
		       r.torn_bytes);
	return 0;
}

/* ---------------------------------------------------------------- stats */

struct lvl {
	uint64_t tables, bytes, entries, min_seq, max_seq;
	char *smallest, *largest;
	size_t slen, llen;
};

struct stats_ctx {
	struct lvl lv[LSM_MAX_LEVELS];
	struct fsck *c;
	int json;
	int first;
};

/* (Out of memory: an empty key, never a NULL pointer with a length.) */
static void keep_key(char **dst, size_t *dl, const void *k, size_t kl)
{
	free(*dst);
	*dst = malloc(kl + 1);
	if (*dst)
		memcpy(*dst, k, kl);
	*dl = *dst ? kl : 0;
}

static int kcmp(const void *a, size_t al, const void *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int r = n ? memcmp(a, b, n) : 0;
	return r ? r : al < bl ? -1 : al > bl;
}

static void json_key(const void *k, size_t kl)
{
	char buf[4 * FS_KEY_MAX + 16];
	fs_key_format(k, kl, buf, sizeof buf);
	json_str(stdout, buf, strlen(buf));
}

static int table_cb(void *arg, const struct lsm_table_info *t)
{
	struct stats_ctx *s = arg;
	if (t->level < 0 || t->level >= LSM_MAX_LEVELS)
		return 0;
	struct lvl *l = &s->lv[t->level];
	if (!l->tables || t->min_seq < l->min_seq)
		l->min_seq = t->min_seq;
	if (t->max_seq > l->max_seq)
		l->max_seq = t->max_seq;
	if (!l->tables || kcmp(t->smallest, t->smallest_len, l->smallest, l->slen) < 0)
		keep_key(&l->smallest, &l->slen, t->smallest, t->smallest_len);
	if (!l->tables || kcmp(t->largest, t->largest_len, l->largest, l->llen) > 0)
		keep_key(&l->largest, &l->llen, t->largest, t->largest_len);
	l->tables++;
	l->bytes += t->size;
	l->entries += t->entries;
	if (s->json) {
		printf("%s\n    {\"level\": %d, \"file\": \"%06" PRIu64 ".sst\", \"bytes\": %" PRIu64 ", \"entries\": %" PRIu64
		       ", \"deletes\": %" PRIu64 ", \"range_deletes\": %" PRIu64 ", \"min_seqno\": %" PRIu64
		       ", \"max_seqno\": %" PRIu64 ", \"smallest\": ",
		       s->first ? "" : ",", t->level, t->number, t->size, t->entries, t->deletes, t->range_dels, t->min_seq,
		       t->max_seq);
		json_key(t->smallest, t->smallest_len);
		printf(", \"largest\": ");
		json_key(t->largest, t->largest_len);
		printf("}");
		s->first = 0;
	} else {
		printf("  L%d %06" PRIu64 ".sst %10" PRIu64 " bytes %8" PRIu64 " entries (%" PRIu64 " deletes, %" PRIu64
		       " range) seqnos %" PRIu64 "..%" PRIu64 " keys ",
		       t->level, t->number, t->size, t->entries, t->deletes, t->range_dels, t->min_seq, t->max_seq);
		put_key(stdout, t->smallest, t->smallest_len);
		printf(" .. ");
		put_key(stdout, t->largest, t->largest_len);
		printf("\n");
	}
	return 0;
}

struct file_sum {
	uint64_t table_bytes, blob_bytes, log_bytes, manifest_bytes, other_bytes;
	uint64_t nlogs;
	struct fsck *c;
	int json, first;
};

static int files_cb(void *arg, const char *name, const char *kind, uint64_t number, uint64_t size, int live)
{
	struct file_sum *f = arg;
	if (!strcmp(kind, "table"))
		f->table_bytes += size;
	else if (!strcmp(kind, "blob"))
		f->blob_bytes += size;
	else if (!strcmp(kind, "log"))
		f->log_bytes += size;
	else if (!strcmp(kind, "manifest"))
		f->manifest_bytes += size;
	else
		f->other_bytes += size;
	if (strcmp(kind, "log"))
		return 0;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", f->c->dir, name);
	struct lsm_log_report r;
	int rc = lsm_inspect_log_file(NULL, path, number, 1, NULL, NULL, &r);
	f->nlogs++;
	if (f->json) {
		printf("%s\n    {\"file\": \"%s\", \"bytes\": %" PRIu64 ", \"live\": %s, \"records\": %" PRIu64
		       ", \"operations\": %" PRIu64 ", \"first_seqno\": %" PRIu64 ", \"last_seqno\": %" PRIu64
		       ", \"torn_bytes\": %" PRIu64 ", \"ok\": %s}",
		       f->first ? "" : ",", name, size, live ? "true" : "false", r.records, r.ops, r.first_seq, r.last_seq,
		       r.torn_bytes, rc ? "false" : "true");
		f->first = 0;
	} else {
		printf("  %s %10" PRIu64 " bytes %8" PRIu64 " records %8" PRIu64 " operations seqnos %" PRIu64 "..%" PRIu64 "%s%s\n",
		       name, size, r.records, r.ops, r.first_seq, r.last_seq, live ? "" : " (not live)",
		       rc ? " (damaged)" : r.torn_bytes ? " (torn tail)" : "");
	}
	return 0;
}

/* Key counts by kind (inodes by type) and the bytes of live data, from one scan. */
struct key_counts {
	uint64_t super, alloc, inodes, by_type[8], dirents, blocks, block_bytes, symlinks, xattrs, orphans, other;
	uint64_t keys, live_bytes;
};

static const char *type_keys[8] = {"regular", "directory", "symlink", "fifo", "chardev", "blockdev", "socket",
				   "undecodable"};

static int count_keys(struct fsck *c, struct key_counts *n)
{
	struct lsm_read_options ro = {.dont_fill_cache = 1};
	lsm_iter *it = lsm_iter_new(c->db, &ro);
	if (!it)
		return LSM_NOMEM;
	for (lsm_iter_seek_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		size_t kl, vl;
		const char *k = lsm_iter_key(it, &kl);
		const void *v = lsm_iter_value(it, &vl);
		n->keys++;
		n->live_bytes += kl + vl;
		struct fs_key d;
		if (fs_key_decode(k, kl, &d)) {
			n->other++;
			continue;
		}
		switch (d.kind) {
		case FS_K_SUPER: n->super++; break;
		case FS_K_ALLOC: n->alloc++; break;
		case FS_K_INODE: {
			struct fs_inode in = {.ino = d.ino};
			int t = 7;
			if (fs_inode_decode(v, vl, &in) == 0) {
				switch (in.mode & S_IFMT) {
				case S_IFREG: t = 0; break;
				case S_IFDIR: t = 1; break;
				case S_IFLNK: t = 2; break;
				case S_IFIFO: t = 3; break;
				case S_IFCHR: t = 4; break;
				case S_IFBLK: t = 5; break;
				case S_IFSOCK: t = 6; break;
				}
			}
			n->inodes++;
			n->by_type[t]++;
			break;
		}
		case FS_K_DIRENT: n->dirents++; break;
		case FS_K_BLOCK: n->blocks++; n->block_bytes += vl; break;
		case FS_K_SYMLINK: n->symlinks++; break;
		case FS_K_XATTR: n->xattrs++; break;
		case FS_K_ORPHAN: n->orphans++; break;
		default: n->other++; break;
		}
		if ((n->keys & 65535) == 0)
			fsck_progress(c, "counting keys", n->keys, 0);
	}
	fsck_progress_done(c);
	int rc = lsm_iter_status(it);
	lsm_iter_free(it);
	return rc;
}

int inspect_stats(struct fsck *c)
{
	int rc = inspect_open(c);
	if (rc)
		return rc;
	struct lsm_store_info si;
	lsm_inspect_store(c->db, &si);
	struct lsm_stats st;
	lsm_stats_get(c->db, &st);
	struct stats_ctx s = {.c = c, .json = c->json, .first = 1};
	if (c->json) {
		printf("{\n  \"store\": ");
		json_str(stdout, c->dir, strlen(c->dir));
		printf(", \"mounted\": %s, \"manifest\": \"MANIFEST-%06" PRIu64 "\", \"log_number\": %" PRIu64
		       ", \"next_file\": %" PRIu64 ", \"manifest_last_seqno\": %" PRIu64 ", \"last_seqno\": %" PRIu64
		       ",\n  \"tables\": [",
		       c->locked ? "true" : "false", si.manifest_number, si.log_number, si.next_file, si.last_seq,
		       st.last_seqno);
	} else {
		printf("store %s%s\n", c->dir, c->locked ? " (in use: the live log may be ahead of this)" : "");
		printf("manifest MANIFEST-%06" PRIu64 " (%" PRIu64 " edits), log number %" PRIu64 ", next file %" PRIu64
		       ", last seqno %" PRIu64 " (%" PRIu64 " after the log)\n",
		       si.manifest_number, si.edits_replayed, si.log_number, si.next_file, si.last_seq, st.last_seqno);
		printf("tables:\n");
	}
	lsm_inspect_tables(c->db, table_cb, &s);
	if (c->json) {
		printf("\n  ],\n  \"levels\": [");
		int first = 1;
		for (int l = 0; l < LSM_MAX_LEVELS; l++) {
			struct lvl *v = &s.lv[l];
			if (!v->tables)
				continue;
			printf("%s\n    {\"level\": %d, \"tables\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"entries\": %" PRIu64
			       ", \"min_seqno\": %" PRIu64 ", \"max_seqno\": %" PRIu64 ", \"smallest\": ",
			       first ? "" : ",", l, v->tables, v->bytes, v->entries, v->min_seq, v->max_seq);
			json_key(v->smallest, v->slen);
			printf(", \"largest\": ");
			json_key(v->largest, v->llen);
			printf("}");
			first = 0;
		}
		printf("\n  ],\n  \"logs\": [");
	} else {
		printf("levels:\n");
		for (int l = 0; l < LSM_MAX_LEVELS; l++) {
			struct lvl *v = &s.lv[l];
			if (!v->tables)
				continue;
			printf("  level %d: %" PRIu64 " tables, %" PRIu64 " bytes, %" PRIu64 " entries, seqnos %" PRIu64 "..%" PRIu64
			       ", keys ", l, v->tables, v->bytes, v->entries, v->min_seq, v->max_seq);
			put_key(stdout, v->smallest, v->slen);
			printf(" .. ");
			put_key(stdout, v->largest, v->llen);
			printf("\n");
		}
		printf("logs:\n");
	}
	struct file_sum fsum = {.c = c, .json = c->json, .first = 1};
	lsm_inspect_files(c->db, files_cb, &fsum);
	struct key_counts n;
	memset(&n, 0, sizeof n);
	rc = count_keys(c, &n);
	if (rc) {
		if (c->json)
			printf("\n  ]\n}\n");
		fflush(stdout);
		rc = operr("reading the keys: %s%s", lsm_errmsg(), "");
		inspect_close(c);
		return rc;
	}
	uint64_t total = fsum.table_bytes + fsum.blob_bytes + fsum.log_bytes + fsum.manifest_bytes;
	double amp = n.live_bytes ? (double)total / (double)n.live_bytes : 0;
	if (c->json) {
		printf("\n  ],\n  \"bytes\": {\"tables\": %" PRIu64 ", \"blob_files\": %" PRIu64 ", \"logs\": %" PRIu64
		       ", \"manifest\": %" PRIu64 ", \"total\": %" PRIu64 ", \"live\": %" PRIu64
		       ", \"space_amplification\": %.3f},\n",
		       fsum.table_bytes, fsum.blob_bytes, fsum.log_bytes, fsum.manifest_bytes, total, n.live_bytes, amp);
		printf("  \"keys\": {\"total\": %" PRIu64 ", \"superblock\": %" PRIu64 ", \"allocator\": %" PRIu64
		       ", \"inodes\": %" PRIu64 ", \"dirents\": %" PRIu64 ", \"blocks\": %" PRIu64 ", \"block_bytes\": %" PRIu64
		       ", \"symlinks\": %" PRIu64 ", \"xattrs\": %" PRIu64 ", \"orphans\": %" PRIu64 ", \"other\": %" PRIu64
		       ",\n    \"inodes_by_type\": {",
		       n.keys, n.super, n.alloc, n.inodes, n.dirents, n.blocks, n.block_bytes, n.symlinks, n.xattrs, n.orphans,
		       n.other);
		for (int i = 0; i < 8; i++)
			printf("%s\"%s\": %" PRIu64, i ? ", " : "", type_keys[i], n.by_type[i]);
		printf("}}\n}\n");
	} else {
		printf("space: tables %" PRIu64 " + blob files %" PRIu64 " + logs %" PRIu64 " + manifest %" PRIu64 " = %" PRIu64
		       " bytes on disk; live data %" PRIu64 " bytes (keys + values); space amplification %.2f\n",
		       fsum.table_bytes, fsum.blob_bytes, fsum.log_bytes, fsum.manifest_bytes, total, n.live_bytes, amp);
		printf("keys: %" PRIu64 " live: superblock %" PRIu64 ", allocator %" PRIu64 ", inodes %" PRIu64
		       ", dirents %" PRIu64 ", blocks %" PRIu64 " (%" PRIu64 " bytes), symlinks %" PRIu64 ", xattrs %" PRIu64
		       ", orphans %" PRIu64 ", other %" PRIu64 "\n",
		       n.keys, n.super, n.alloc, n.inodes, n.dirents, n.blocks, n.block_bytes, n.symlinks, n.xattrs,
		       n.orphans, n.other);
		printf("inodes by type:");
		for (int i = 0; i < 8; i++)
			printf(" %s %" PRIu64, type_keys[i], n.by_type[i]);
		printf("\n");
	}
	for (int l = 0; l < LSM_MAX_LEVELS; l++) {
		free(s.lv[l].smallest);
		free(s.lv[l].largest);
	}
	inspect_close(c);
	return 0;
}
