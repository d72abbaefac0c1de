/*
 * fuzz_schema.c - libFuzzer target: the filesystem's key and value decoders (fs/schema.h) on arbitrary
 * bytes, with round trips: a key that decodes prints (fs_key_format) as text that parses back
 * (fs_key_parse) to the same bytes; a value that decodes re-encodes to a value that decodes the same.
 * The input is also parsed as the text form of a key, and a key that parses must decode.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_key(const uint8_t *k, size_t len)
{
	struct fs_key d;
	char text[4 * FS_KEY_MAX + 64];
	fs_key_format(k, len, text, sizeof text);
	if (strlen(text) >= sizeof text)
		abort();
	if (fs_key_decode(k, len, &d))
		return;
	if (d.namelen && (d.name < (const char *)k || d.name + d.namelen > (const char *)k + len))
		abort();
	char back[FS_KEY_MAX];
	size_t blen = 0;
	if (fs_key_parse(text, back, &blen) || blen != len || memcmp(back, k, len)) {
		fprintf(stderr, "key of %zu bytes prints as %s, which does not parse back to it\n", len, text);
		abort();
	}
}

static void check_values(const uint8_t *v, size_t len)
{
	struct fs_inode in = {0}, in2 = {0};
	if (!fs_inode_decode(v, len, &in)) {
		char a[FS_INODE_LEN], b[FS_INODE_LEN];
		fs_inode_encode(&in, a);
		if (fs_inode_decode(a, sizeof a, &in2))
			abort();
		fs_inode_encode(&in2, b);
		if (memcmp(a, b, sizeof a))
			abort();
	}
	uint64_t ino, next;
	unsigned type;
	if (!fs_dirent_decode(v, len, &ino, &type)) {
		char a[FS_DIRENT_LEN];
		uint64_t ino2;
		unsigned type2;
		fs_dirent_encode(ino, type, a);
		if (fs_dirent_decode(a, sizeof a, &ino2, &type2) || ino2 != ino || type2 != type || memcmp(a, v, len))
			abort();
	}
	struct fs_super s;
	if (!fs_super_decode(v, len, &s)) {
		char a[FS_SUPER_LEN];
		fs_super_encode(&s, a);
		if (memcmp(a, v, len))
			abort();
	}
	if (!fs_alloc_decode(v, len, &next)) {
		char a[8];
		fs_alloc_encode(next, a);
		if (memcmp(a, v, len))
			abort();
	}
	(void)fs_mode_to_dtype(in.mode);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_key(data, size);
	check_values(data, size);
	/* The same bytes as the text form of a key. */
	char *text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = 0;
	char key[FS_KEY_MAX];
	size_t klen = 0;
	if (!fs_key_parse(text, key, &klen)) {
		struct fs_key d;
		if (klen > FS_KEY_MAX || fs_key_decode(key, klen, &d)) {
			fprintf(stderr, "text %s parses to a key that does not decode\n", text);
			abort();
		}
		check_key((const uint8_t *)key, klen);
	}
	free(text);
	return 0;
}
