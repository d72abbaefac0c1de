/* testutil.c - shared unit-test helpers. */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

uint64_t test_seed(const char *test_name)
{
	const char *e = getenv("LSM_SEED");
	uint64_t seed;
	if (e && *e) {
		seed = strtoull(e, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
	}
	fprintf(stderr, "%s: seed %llu (replay with LSM_SEED=%llu)\n", test_name,
		(unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

int test_scale(void)
{
	const char *e = getenv("LSM_TEST_SCALE");
	int s = e ? atoi(e) : 1;
	return s > 0 ? s : 1;
}

void test_tmpdir(char *out, size_t outlen)
{
	const char *t = getenv("TMPDIR");
	snprintf(out, outlen, "%s/lsmtest.XXXXXX", t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(out));
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void test_rmrf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
