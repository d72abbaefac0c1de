/*
 * schema.h - how the filesystem maps onto store keys: encode and decode every key and value.
 *
 * FUSE-free (the daemon and tools/lsmfsck both use it). Inode numbers, not paths, anchor the keys, so
 * renaming a directory never rewrites its subtree. Integers in keys are big-endian so that byte order
 * is numeric order and prefix scans come back sorted. docs/format.md ("Filesystem schema") mirrors
 * this file; the key prefixes and value layouts are on disk: never renumber.
 *
 *   "S"                         superblock (struct fs_super)
 *   "N"                         inode allocator: next inode number never used (u64), persisted ahead
 *   "i" ino                     inode attributes (struct fs_inode)
 *   "d" parent name             directory entry -> (ino, type)
 *   "b" ino blockno             file data block (at most block_size bytes; no key = a hole)
 *   "l" ino                     symlink target
 *   "x" ino name                extended attribute value
 *   "o" ino                     orphan: an inode with no links that was still open at the last write
 */
#ifndef FS_SCHEMA_H
#define FS_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#define FS_FORMAT_VERSION 1
#define FS_MAGIC UINT64_C(0x3153464d534c) /* "LSMFS1" read little-endian */
#define FS_ROOT_INO 1
#define FS_NAME_MAX 255
/* Keys: prefix byte + u64 + u64 or a name. */
#define FS_KEY_MAX (1 + 8 + 8 + FS_NAME_MAX + 1)

enum fs_key_kind {
	FS_K_SUPER = 'S',
	FS_K_ALLOC = 'N',
	FS_K_INODE = 'i',
	FS_K_DIRENT = 'd',
	FS_K_BLOCK = 'b',
	FS_K_SYMLINK = 'l',
	FS_K_XATTR = 'x',
	FS_K_ORPHAN = 'o',
};

struct fs_super {
	uint64_t magic;
	uint32_t version;
	uint32_t block_size;
	uint64_t created_sec;
};

/* Inode attributes (value of "i" ino). */
struct fs_inode {
	uint64_t ino;
	uint32_t mode;       /* type and permission bits (S_IF* | 07777) */
	uint32_t uid, gid;
	uint32_t nlink;
	uint64_t size;
	uint64_t rdev;
	int64_t atime_sec, mtime_sec, ctime_sec, btime_sec;
	uint32_t atime_nsec, mtime_nsec, ctime_nsec, btime_nsec;
	uint64_t nentries;   /* directories: entries in it (rmdir checks this, not a scan) */
	uint32_t nxattrs;    /* extended attributes it has (0 answers getxattr without a lookup) */
	uint32_t flags;
};

/* Encoded sizes. */
#define FS_SUPER_LEN 24
#define FS_INODE_LEN 112
#define FS_DIRENT_LEN 9

/* Keys: each returns the key length written to k (which has room for FS_KEY_MAX bytes). */
size_t fs_key_super(char *k);
size_t fs_key_alloc(char *k);
size_t fs_key_inode(char *k, uint64_t ino);
size_t fs_key_dirent(char *k, uint64_t parent, const char *name, size_t namelen);
/* The prefix of every entry of a directory ("d" parent); the end of that range is parent + 1. */
size_t fs_key_dirent_prefix(char *k, uint64_t parent);
size_t fs_key_block(char *k, uint64_t ino, uint64_t blockno);
size_t fs_key_symlink(char *k, uint64_t ino);
size_t fs_key_xattr(char *k, uint64_t ino, const char *name, size_t namelen);
size_t fs_key_xattr_prefix(char *k, uint64_t ino);
size_t fs_key_orphan(char *k, uint64_t ino);
/* Prefix of one kind (1 byte), and "kind ino" (9 bytes) for per-inode ranges. */
size_t fs_key_kind_ino(char *k, char kind, uint64_t ino);

/* Decoded key. */
struct fs_key {
	char kind;
	uint64_t ino;        /* inode, parent (dirent), or owner (block, xattr) */
	uint64_t blockno;
	const char *name;    /* dirent / xattr name (not NUL-terminated), points into the key */
	size_t namelen;
};
/* 0, or -1 if the key is malformed for its kind (or of an unknown kind). */
int fs_key_decode(const void *key, size_t len, struct fs_key *out);
/* Human-readable form, e.g. `d|1|"name"`, `b|42|7`, into buf (always NUL-terminated). */
void fs_key_format(const void *key, size_t len, char *buf, size_t buflen);
/* Parse the form fs_key_format prints back into a key (for lsmfsck --dump-key). -1 on bad input. */
int fs_key_parse(const char *text, char *key, size_t *len);

void fs_super_encode(const struct fs_super *s, char *out);
int fs_super_decode(const void *v, size_t len, struct fs_super *s);
/* A new inode's attributes: everything zero but these, nlink 2 for a directory and 1 otherwise, and all
 * four times now (the daemon's creates, the root at mkfs, lsmfsck's /lost+found). */
void fs_inode_init(struct fs_inode *in, uint64_t ino, uint32_t mode, uint32_t uid, uint32_t gid);
void fs_inode_encode(const struct fs_inode *in, char *out);
int fs_inode_decode(const void *v, size_t len, struct fs_inode *in);
void fs_dirent_encode(uint64_t ino, unsigned type, char *out);
int fs_dirent_decode(const void *v, size_t len, uint64_t *ino, unsigned *type);
void fs_alloc_encode(uint64_t next, char *out);
int fs_alloc_decode(const void *v, size_t len, uint64_t *next);

/* The DT_* type of a mode (S_IFDIR -> DT_DIR, ...). */
unsigned fs_mode_to_dtype(uint32_t mode);

#endif
