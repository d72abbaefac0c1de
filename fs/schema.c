/* schema.c - the filesystem's key and value codec (see schema.h for the layout). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <dirent.h>

#include "schema.h"

/* Byte order helpers (fs/ reaches the store only through lsm.h, so it keeps its own). */
static void put_u32le(char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (char)(v >> (8 * i));
}
static void put_u64le(char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (char)(v >> (8 * i));
}
static uint32_t get_u32le(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return u[0] | (u[1] << 8) | (u[2] << 16) | ((uint32_t)u[3] << 24);
}
static uint64_t get_u64le(const char *p)
{
	return get_u32le(p) | ((uint64_t)get_u32le(p + 4) << 32);
}
static void put_u64be(char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (char)(v >> (56 - 8 * i));
}
static uint64_t get_u64be(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | u[i];
	return v;
}

size_t fs_key_super(char *k)
{
	k[0] = FS_K_SUPER;
	return 1;
}

size_t fs_key_alloc(char *k)
{
	k[0] = FS_K_ALLOC;
	return 1;
}

size_t fs_key_kind_ino(char *k, char kind, uint64_t ino)
{
	k[0] = kind;
	put_u64be(k + 1, ino);
	return 9;
}

size_t fs_key_inode(char *k, uint64_t ino)
{
	return fs_key_kind_ino(k, FS_K_INODE, ino);
}

size_t fs_key_dirent_prefix(char *k, uint64_t parent)
{
	return fs_key_kind_ino(k, FS_K_DIRENT, parent);
}

size_t fs_key_dirent(char *k, uint64_t parent, const char *name, size_t namelen)
{
	size_t n = fs_key_kind_ino(k, FS_K_DIRENT, parent);
	memcpy(k + n, name, namelen);
	return n + namelen;
}

size_t fs_key_block(char *k, uint64_t ino, uint64_t blockno)
{
	size_t n = fs_key_kind_ino(k, FS_K_BLOCK, ino);
	put_u64be(k + n, blockno);
	return n + 8;
}

size_t fs_key_symlink(char *k, uint64_t ino)
{
	return fs_key_kind_ino(k, FS_K_SYMLINK, ino);
}

size_t fs_key_xattr_prefix(char *k, uint64_t ino)
{
	return fs_key_kind_ino(k, FS_K_XATTR, ino);
}

size_t fs_key_xattr(char *k, uint64_t ino, const char *name, size_t namelen)
{
	size_t n = fs_key_kind_ino(k, FS_K_XATTR, ino);
	memcpy(k + n, name, namelen);
	return n + namelen;
}

size_t fs_key_orphan(char *k, uint64_t ino)
{
	return fs_key_kind_ino(k, FS_K_ORPHAN, ino);
}

int fs_key_decode(const void *key, size_t len, struct fs_key *out)
{
	const char *k = key;
	memset(out, 0, sizeof *out);
	if (len < 1)
		return -1;
	out->kind = k[0];
	switch (k[0]) {
	case FS_K_SUPER:
	case FS_K_ALLOC:
		return len == 1 ? 0 : -1;
	case FS_K_INODE:
	case FS_K_SYMLINK:
	case FS_K_ORPHAN:
		if (len != 9)
			return -1;
		out->ino = get_u64be(k + 1);
		return 0;
	case FS_K_BLOCK:
		if (len != 17)
			return -1;
		out->ino = get_u64be(k + 1);
		out->blockno = get_u64be(k + 9);
		return 0;
	case FS_K_DIRENT:
	case FS_K_XATTR:
		if (len < 10 || len > 9 + FS_NAME_MAX)
			return -1;
		out->ino = get_u64be(k + 1);
		out->name = k + 9;
		out->namelen = len - 9;
		return 0;
	}
	return -1;
}

static void fmt_name(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	if (outlen < 4) {
		if (outlen)
			out[0] = 0;
		return;
	}
	out[o++] = '"';
	for (size_t i = 0; i < n && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (isprint(c)) {
			out[o++] = (char)c;
		} else {
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
		}
	}
	out[o++] = '"';
	out[o] = 0;
}

void fs_key_format(const void *key, size_t len, char *buf, size_t buflen)
{
	struct fs_key d;
	char name[4 * FS_NAME_MAX + 8];
	if (fs_key_decode(key, len, &d)) {
		/* Unknown: hex. */
		size_t o = (size_t)snprintf(buf, buflen, "?");
		for (size_t i = 0; i < len && o + 3 < buflen; i++)
			o += (size_t)snprintf(buf + o, buflen - o, "%02x", ((const unsigned char *)key)[i]);
		return;
	}
	switch (d.kind) {
	case FS_K_SUPER:
	case FS_K_ALLOC:
		snprintf(buf, buflen, "%c", d.kind);
		break;
	case FS_K_BLOCK:
		snprintf(buf, buflen, "b|%" PRIu64 "|%" PRIu64, d.ino, d.blockno);
		break;
	case FS_K_DIRENT:
	case FS_K_XATTR:
		fmt_name(d.name, d.namelen, name, sizeof name);
		snprintf(buf, buflen, "%c|%" PRIu64 "|%s", d.kind, d.ino, name);
		break;
	default:
		snprintf(buf, buflen, "%c|%" PRIu64, d.kind, d.ino);
		break;
	}
}

int fs_key_parse(const char *t, char *key, size_t *len)
{
	if (!t[0])
		return -1;
	char kind = t[0];
	if (kind == FS_K_SUPER || kind == FS_K_ALLOC) {
		if (t[1])
			return -1;
		key[0] = kind;
		*len = 1;
		return 0;
	}
	if (t[1] != '|')
		return -1;
	char *end;
	uint64_t ino = strtoull(t + 2, &end, 10);
	if (end == t + 2)
		return -1;
	switch (kind) {
	case FS_K_INODE:
	case FS_K_SYMLINK:
	case FS_K_ORPHAN:
		if (*end)
			return -1;
		*len = fs_key_kind_ino(key, kind, ino);
		return 0;
	case FS_K_BLOCK: {
		if (*end != '|')
			return -1;
		char *e2;
		uint64_t b = strtoull(end + 1, &e2, 10);
		if (e2 == end + 1 || *e2)
			return -1;
		*len = fs_key_block(key, ino, b);
		return 0;
	}
	case FS_K_DIRENT:
	case FS_K_XATTR: {
		if (*end != '|')
			return -1;
		const char *p = end + 1;
		int quoted = *p == '"';
		if (quoted)
			p++;
		char name[FS_NAME_MAX + 1];
		size_t n = 0;
		for (; *p && !(quoted && *p == '"'); p++) {
			if (n >= FS_NAME_MAX)
				return -1;
			if (*p == '\\' && p[1] == 'x' && isxdigit((unsigned char)p[2]) && isxdigit((unsigned char)p[3])) {
				char hex[3] = {p[2], p[3], 0};
				name[n++] = (char)strtoul(hex, NULL, 16);
				p += 3;
			} else if (*p == '\\' && p[1]) {
				name[n++] = *++p;
			} else {
				name[n++] = *p;
			}
		}
		if (quoted && (*p != '"' || p[1]))
			return -1;
		if (n == 0)
			return -1;
		*len = kind == FS_K_DIRENT ? fs_key_dirent(key, ino, name, n) : fs_key_xattr(key, ino, name, n);
		return 0;
	}
	}
	return -1;
}

void fs_super_encode(const struct fs_super *s, char *out)
{
	put_u64le(out, s->magic);
	put_u32le(out + 8, s->version);
	put_u32le(out + 12, s->block_size);
	put_u64le(out + 16, s->created_sec);
}

int fs_super_decode(const void *v, size_t len, struct fs_super *s)
{
	const char *p = v;
	if (len != FS_SUPER_LEN)
		return -1;
	s->magic = get_u64le(p);
	s->version = get_u32le(p + 8);
	s->block_size = get_u32le(p + 12);
	s->created_sec = get_u64le(p + 16);
	return s->magic == FS_MAGIC ? 0 : -1;
}

/* Inode value layout (little-endian), version byte first so it can grow. */
void fs_inode_init(struct fs_inode *in, uint64_t ino, uint32_t mode, uint32_t uid, uint32_t gid)
{
	memset(in, 0, sizeof *in);
	in->ino = ino;
	in->mode = mode;
	in->uid = uid;
	in->gid = gid;
	in->nlink = S_ISDIR(mode) ? 2 : 1;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	in->atime_sec = in->mtime_sec = in->ctime_sec = in->btime_sec = ts.tv_sec;
	in->atime_nsec = in->mtime_nsec = in->ctime_nsec = in->btime_nsec = (uint32_t)ts.tv_nsec;
}

void fs_inode_encode(const struct fs_inode *in, char *out)
{
	memset(out, 0, FS_INODE_LEN);
	out[0] = 1; /* value version */
	put_u32le(out + 4, in->mode);
	put_u32le(out + 8, in->uid);
	put_u32le(out + 12, in->gid);
	put_u32le(out + 16, in->nlink);
	put_u32le(out + 20, in->nxattrs);
	put_u64le(out + 24, in->size);
	put_u64le(out + 32, in->rdev);
	put_u64le(out + 40, (uint64_t)in->atime_sec);
	put_u64le(out + 48, (uint64_t)in->mtime_sec);
	put_u64le(out + 56, (uint64_t)in->ctime_sec);
	put_u64le(out + 64, (uint64_t)in->btime_sec);
	put_u32le(out + 72, in->atime_nsec);
	put_u32le(out + 76, in->mtime_nsec);
	put_u32le(out + 80, in->ctime_nsec);
	put_u32le(out + 84, in->btime_nsec);
	put_u64le(out + 88, in->nentries);
	put_u32le(out + 96, in->flags);
}

int fs_inode_decode(const void *v, size_t len, struct fs_inode *in)
{
	const char *p = v;
	if (len != FS_INODE_LEN || p[0] != 1)
		return -1;
	uint64_t ino = in->ino;
	memset(in, 0, sizeof *in);
	in->ino = ino;
	in->mode = get_u32le(p + 4);
	in->uid = get_u32le(p + 8);
	in->gid = get_u32le(p + 12);
	in->nlink = get_u32le(p + 16);
	in->nxattrs = get_u32le(p + 20);
	in->size = get_u64le(p + 24);
	in->rdev = get_u64le(p + 32);
	in->atime_sec = (int64_t)get_u64le(p + 40);
	in->mtime_sec = (int64_t)get_u64le(p + 48);
	in->ctime_sec = (int64_t)get_u64le(p + 56);
	in->btime_sec = (int64_t)get_u64le(p + 64);
	in->atime_nsec = get_u32le(p + 72);
	in->mtime_nsec = get_u32le(p + 76);
	in->ctime_nsec = get_u32le(p + 80);
	in->btime_nsec = get_u32le(p + 84);
	in->nentries = get_u64le(p + 88);
	in->flags = get_u32le(p + 96);
	if (in->atime_nsec >= 1000000000u || in->mtime_nsec >= 1000000000u || in->ctime_nsec >= 1000000000u ||
	    in->btime_nsec >= 1000000000u)
		return -1;
	switch (in->mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFIFO: case S_IFCHR: case S_IFBLK: case S_IFSOCK:
		return 0;
	}
	return -1;
}

void fs_dirent_encode(uint64_t ino, unsigned type, char *out)
{
	put_u64le(out, ino);
	out[8] = (char)type;
}

int fs_dirent_decode(const void *v, size_t len, uint64_t *ino, unsigned *type)
{
	const char *p = v;
	if (len != FS_DIRENT_LEN)
		return -1;
	*ino = get_u64le(p);
	*type = (unsigned char)p[8];
	return *ino ? 0 : -1;
}

void fs_alloc_encode(uint64_t next, char *out)
{
	put_u64le(out, next);
}

int fs_alloc_decode(const void *v, size_t len, uint64_t *next)
{
	if (len != 8)
		return -1;
	*next = get_u64le(v);
	return 0;
}

unsigned fs_mode_to_dtype(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return DT_REG;
	case S_IFDIR: return DT_DIR;
	case S_IFLNK: return DT_LNK;
	case S_IFIFO: return DT_FIFO;
	case S_IFCHR: return DT_CHR;
	case S_IFBLK: return DT_BLK;
	case S_IFSOCK: return DT_SOCK;
	}
	return DT_UNKNOWN;
}
