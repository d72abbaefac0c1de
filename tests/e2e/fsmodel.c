/*
 * fsmodel.c - the filesystem against a reference directory: random operations (create, write at
 * random offsets, truncate, rename, link, unlink, mkdir, rmdir, symlink, setxattr, chmod, utimens)
 * applied to a directory on the mount and to one on a native filesystem side by side. Every operation
 * must succeed on both or fail on both with the same errno; after every burst the two trees must be
 * identical (types, modes, sizes, link counts, contents, symlink targets, user xattrs).
 *
 * Usage: fsmodel run SEED OPS TEST_DIR REF_DIR   apply OPS operations, comparing every 100
 *        fsmodel compare TEST_DIR REF_DIR         compare the two trees only
 * Exit 0 = identical, 1 = a difference (described on stderr with the seed), 2 = usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static uint64_t rs;
static uint64_t rnd(void)
{
	uint64_t z = (rs += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}
static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static const char *A, *B; /* test and reference roots */
static unsigned long long seed;
static long opno;

#define DIFF(...)                                                                                      \
	do {                                                                                           \
		fprintf(stderr, "fsmodel: seed %llu op %ld: ", seed, opno);                            \
		fprintf(stderr, __VA_ARGS__);                                                          \
		fprintf(stderr, "\n");                                                                 \
		exit(1);                                                                               \
	} while (0)

/* ---------------------------------------------------------------- the reference tree's paths */

static char **paths;
static int npaths;

static void collect(const char *root, const char *rel)
{
	char full[4096];
	snprintf(full, sizeof full, "%s/%s", root, rel);
	DIR *d = opendir(full);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char r[4096];
		snprintf(r, sizeof r, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		paths = realloc(paths, (size_t)(npaths + 1) * sizeof *paths);
		paths[npaths++] = strdup(r);
		if (e->d_type == DT_DIR)
			collect(root, r);
	}
	closedir(d);
}

static void refresh_paths(void)
{
	for (int i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	paths = NULL;
	npaths = 0;
	collect(B, "");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *pick_path(void)
{
	return npaths ? paths[below((uint64_t)npaths)] : "";
}

/* A new name, in a random existing directory (or the root). */
static void new_path(char *out, size_t n)
{
	const char *dir = "";
	for (int tries = 0; tries < 4 && npaths; tries++) {
		const char *p = pick_path();
		char full[4096];
		struct stat st;
		snprintf(full, sizeof full, "%s/%s", B, p);
		if (!lstat(full, &st) && S_ISDIR(st.st_mode)) {
			dir = p;
			break;
		}
	}
	static const char *names[] = {"a", "b", "c", "dir", "file", "x", "long-name-with-some-length", "z9"};
	snprintf(out, n, "%s%s%s%llu", dir, *dir ? "/" : "", names[below(8)], (unsigned long long)below(6));
}

/* ---------------------------------------------------------------- running one op on both trees */

struct res {
	int rc;
	int err;
};

static int trace;
static char pa[8200], pb[8200], qa[8200], qb[8200];

static void same(struct res a, struct res b, const char *what)
{
	if (trace)
		fprintf(stderr, "op %ld %s %s -> %d %s\n", opno, what, pb, b.rc, b.rc < 0 ? strerror(b.err) : "");
	if ((a.rc < 0) != (b.rc < 0))
		DIFF("%s: test %s, reference %s", what, a.rc < 0 ? strerror(a.err) : "succeeded",
		     b.rc < 0 ? strerror(b.err) : "succeeded");
	if (a.rc < 0 && a.err != b.err)
		DIFF("%s: test failed with %s, reference with %s", what, strerror(a.err), strerror(b.err));
}

#define BOTH(what, expr_a, expr_b)                                                                     \
	do {                                                                                           \
		struct res ra, rb;                                                                     \
		errno = 0;                                                                             \
		ra.rc = (expr_a);                                                                      \
		ra.err = errno;                                                                        \
		errno = 0;                                                                             \
		rb.rc = (expr_b);                                                                      \
		rb.err = errno;                                                                        \
		same(ra, rb, what);                                                                    \
	} while (0)


static void at(const char *rel, const char *rel2)
{
	snprintf(pa, sizeof pa, "%s/%s", A, rel);
	snprintf(pb, sizeof pb, "%s/%s", B, rel);
	if (rel2) {
		snprintf(qa, sizeof qa, "%s/%s", A, rel2);
		snprintf(qb, sizeof qb, "%s/%s", B, rel2);
	}
}

static int do_write(const char *p, off_t off, size_t len, uint64_t vseed, int trunc)
{
	int fd = open(p, O_WRONLY | (trunc ? O_TRUNC : 0));
	if (fd < 0)
		return -1;
	char *buf = malloc(len ? len : 1);
	uint64_t s = vseed;
	for (size_t i = 0; i < len; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		buf[i] = (char)(s >> 56);
	}
	ssize_t w = pwrite(fd, buf, len, off);
	int e = errno;
	free(buf);
	close(fd);
	errno = e;
	return w == (ssize_t)len ? 0 : -1;
}

static int do_create(const char *p, mode_t m)
{
	int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, m);
	if (fd < 0)
		return -1;
	return close(fd);
}

static void one_op(void)
{
	char np[4096];
	const char *p = pick_path();
	uint64_t k = below(100);
	if (k < 14) {
		new_path(np, sizeof np);
		at(np, NULL);
		mode_t m = 0600 | (mode_t)(below(2) ? 044 : 0);
		BOTH("create", do_create(pa, m), do_create(pb, m));
	} else if (k < 34) {
		at(p, NULL);
		off_t off = (off_t)(below(4) == 0 ? below(300000) : below(20000));
		size_t len = (size_t)(below(5) == 0 ? below(70000) : below(5000));
		uint64_t vs = rnd();
		int tr = below(10) == 0;
		if (trace)
			fprintf(stderr, "write off %lld len %zu trunc %d\n", (long long)off, len, tr);
		BOTH("write", do_write(pa, off, len, vs, tr), do_write(pb, off, len, vs, tr));
	} else if (k < 42) {
		at(p, NULL);
		off_t len = (off_t)below(40000);
		if (trace)
			fprintf(stderr, "truncate to %lld\n", (long long)len);
		BOTH("truncate", truncate(pa, len), truncate(pb, len));
	} else if (k < 52) {
		new_path(np, sizeof np);
		const char *dst = below(3) == 0 ? pick_path() : np;
		at(p, dst);
		BOTH("rename", rename(pa, qa), rename(pb, qb));
	} else if (k < 57) {
		new_path(np, sizeof np);
		at(p, np);
		BOTH("link", link(pa, qa), link(pb, qb));
	} else if (k < 65) {
		at(p, NULL);
		BOTH("unlink", unlink(pa), unlink(pb));
	} else if (k < 73) {
		new_path(np, sizeof np);
		at(np, NULL);
		BOTH("mkdir", mkdir(pa, 0755), mkdir(pb, 0755));
	} else if (k < 78) {
		at(p, NULL);
		BOTH("rmdir", rmdir(pa), rmdir(pb));
	} else if (k < 83) {
		new_path(np, sizeof np);
		at(np, NULL);
		const char *target = below(2) ? p : "no/such/target";
		BOTH("symlink", symlink(target, pa), symlink(target, pb));
	} else if (k < 89) {
		at(p, NULL);
		char name[32], val[64];
		snprintf(name, sizeof name, "user.k%d", (int)below(4));
		int vl = snprintf(val, sizeof val, "value-%llu", (unsigned long long)rnd());
		int fl = below(4) == 0 ? XATTR_CREATE : 0;
		BOTH("setxattr", lsetxattr(pa, name, val, (size_t)vl, fl), lsetxattr(pb, name, val, (size_t)vl, fl));
	} else if (k < 91) {
		at(p, NULL);
		char name[32];
		snprintf(name, sizeof name, "user.k%d", (int)below(4));
		BOTH("removexattr", lremovexattr(pa, name), lremovexattr(pb, name));
	} else if (k < 96) {
		at(p, NULL);
		mode_t m = (mode_t)(0400 | below(0377));
		BOTH("chmod", chmod(pa, m), chmod(pb, m));
	} else {
		at(p, NULL);
		struct timespec ts[2] = {{(time_t)below(2000000000), (long)below(1000000000)},
					 {(time_t)below(2000000000), (long)below(1000000000)}};
		BOTH("utimens", utimensat(AT_FDCWD, pa, ts, AT_SYMLINK_NOFOLLOW),
		     utimensat(AT_FDCWD, pb, ts, AT_SYMLINK_NOFOLLOW));
	}
}

/* ---------------------------------------------------------------- comparing trees */

static char **list_tree(const char *root, int *n)
{
	char **saved = paths;
	int savedn = npaths;
	paths = NULL;
	npaths = 0;
	collect(root, "");
	char **out = paths;
	*n = npaths;
	paths = saved;
	npaths = savedn;
	qsort(out, (size_t)*n, sizeof *out, cmp_str);
	return out;
}

static void compare_file(const char *rel, const char *fa, const char *fb, off_t size)
{
	int da = open(fa, O_RDONLY), db = open(fb, O_RDONLY);
	if (da < 0 || db < 0)
		DIFF("%s: cannot open for comparing", rel);
	char x[65536], y[65536];
	off_t done = 0;
	for (;;) {
		ssize_t n = read(da, x, sizeof x), m = read(db, y, sizeof y);
		if (n != m)
			DIFF("%s: reads of %zd and %zd bytes at %lld", rel, n, m, (long long)done);
		if (n <= 0)
			break;
		if (memcmp(x, y, (size_t)n)) {
			for (ssize_t i = 0; i < n; i++)
				if (x[i] != y[i])
					DIFF("%s: content differs at byte %lld (test %d, reference %d)", rel,
					     (long long)(done + i), x[i], y[i]);
		}
		done += n;
	}
	if (done != size)
		DIFF("%s: read %lld bytes of %lld", rel, (long long)done, (long long)size);
	close(da);
	close(db);
}

static void compare_xattrs(const char *rel, const char *fa, const char *fb)
{
	char la[4096], lb[4096];
	ssize_t na = llistxattr(fa, la, sizeof la), nb = llistxattr(fb, lb, sizeof lb);
	/* Only user.* attributes are ours to compare (the reference fs may carry security ones). */
	char ua[4096] = "", ub[4096] = "";
	for (int w = 0; w < 2; w++) {
		char *l = w ? lb : la, *u = w ? ub : ua;
		ssize_t n = w ? nb : na;
		char *names[64];
		int cnt = 0;
		for (ssize_t i = 0; i < n && cnt < 64; i += (ssize_t)strlen(l + i) + 1)
			if (!strncmp(l + i, "user.", 5))
				names[cnt++] = l + i;
		qsort(names, (size_t)cnt, sizeof *names, cmp_str);
		for (int i = 0; i < cnt; i++) {
			char v[256];
			ssize_t vl = lgetxattr(w ? fb : fa, names[i], v, sizeof v - 1);
			v[vl > 0 ? vl : 0] = 0;
			strncat(u, names[i], 4095 - strlen(u));
			strncat(u, "=", 4095 - strlen(u));
			strncat(u, v, 4095 - strlen(u));
			strncat(u, ";", 4095 - strlen(u));
		}
	}
	if (strcmp(ua, ub))
		DIFF("%s: xattrs differ: test {%s} reference {%s}", rel, ua, ub);
}

static void compare_trees(void)
{
	int na, nb;
	char **ta = list_tree(A, &na), **tb = list_tree(B, &nb);
	for (int i = 0; i < na || i < nb; i++) {
		if (i >= na || i >= nb || strcmp(ta[i], tb[i]))
			DIFF("trees differ: test has %s, reference has %s", i < na ? ta[i] : "(end)", i < nb ? tb[i] : "(end)");
		char fa[4096], fb[4096];
		snprintf(fa, sizeof fa, "%s/%s", A, ta[i]);
		snprintf(fb, sizeof fb, "%s/%s", B, tb[i]);
		struct stat sa, sb;
		if (lstat(fa, &sa) || lstat(fb, &sb))
			DIFF("%s: lstat failed", ta[i]);
		if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT))
			DIFF("%s: types differ", ta[i]);
		if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777))
			DIFF("%s: modes %o vs %o", ta[i], sa.st_mode & 07777, sb.st_mode & 07777);
		if (sa.st_nlink != sb.st_nlink)
			DIFF("%s: link counts %lu vs %lu", ta[i], (unsigned long)sa.st_nlink, (unsigned long)sb.st_nlink);
		if (S_ISREG(sa.st_mode)) {
			if (sa.st_size != sb.st_size)
				DIFF("%s: sizes %lld vs %lld", ta[i], (long long)sa.st_size, (long long)sb.st_size);
			compare_file(ta[i], fa, fb, sa.st_size);
		}
		if (S_ISLNK(sa.st_mode)) {
			char la[4096], lb[4096];
			ssize_t x = readlink(fa, la, sizeof la - 1), y = readlink(fb, lb, sizeof lb - 1);
			if (x < 0 || y < 0 || x != y || memcmp(la, lb, (size_t)x))
				DIFF("%s: symlink targets differ", ta[i]);
		}
		/* Times are not compared: each filesystem stamps its own clock readings. */
		if (!S_ISLNK(sa.st_mode))
			compare_xattrs(ta[i], fa, fb);
	}
	for (int i = 0; i < na; i++)
		free(ta[i]);
	for (int i = 0; i < nb; i++)
		free(tb[i]);
	free(ta);
	free(tb);
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "compare")) {
		A = argv[2];
		B = argv[3];
		compare_trees();
		return 0;
	}
	if (argc != 6 || strcmp(argv[1], "run")) {
		fprintf(stderr, "usage: fsmodel run SEED OPS TEST_DIR REF_DIR | fsmodel compare TEST_DIR REF_DIR\n");
		return 2;
	}
	seed = strtoull(argv[2], NULL, 0);
	long ops = atol(argv[3]);
	A = argv[4];
	B = argv[5];
	rs = seed;
	trace = getenv("FSMODEL_TRACE") != NULL;
	umask(0);
	for (opno = 0; opno < ops; opno++) {
		refresh_paths();
		one_op();
		if (opno % 100 == 99 || trace)
			compare_trees();
	}
	compare_trees();
	refresh_paths();
	fprintf(stderr, "fsmodel: seed %llu: %ld operations, trees identical (%d entries)\n", seed, ops, npaths);
	return 0;
}
