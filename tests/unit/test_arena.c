/* test_arena.c - the memtable's bump allocator: alignment, no overlap, block accounting, big allocations. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "testutil.h"

/* Every passing ck_assert reports its location to the runner through a pipe; in hot loops that cost
 * dominates, so they use these, which cost nothing until they fail. */
#define FAST_TRUE(c)                                                                                   \
	do {                                                                                           \
		if (!(c))                                                                              \
			ck_abort_msg("Assertion '%s' failed", #c);                                     \
	} while (0)
#define FAST_EQ(a, b)                                                                                  \
	do {                                                                                           \
		unsigned long long fa_ = (unsigned long long)(a), fb_ = (unsigned long long)(b);       \
		if (fa_ != fb_)                                                                        \
			ck_abort_msg("Assertion '%s == %s' failed: %llu != %llu", #a, #b, fa_, fb_);   \
	} while (0)

/* A block costs its payload plus a small header; the header is private, so allow up to this much. */
#define HDR_SLACK 64

START_TEST(test_alignment_and_contents)
{
	struct arena a;
	arena_init(&a, 4096);
	ck_assert_uint_eq(arena_usage(&a), 0);
	struct rng r = {test_seed("arena_alignment_and_contents")};
	enum { N = 3000 };
	unsigned char *ptr[N];
	size_t len[N];
	for (int i = 0; i < N; i++) {
		/* mostly small; one in ten more than a quarter block (its own block unless it fits) */
		size_t n = rng_below(&r, 10) == 0 ? 1025 + rng_below(&r, 3000) : 1 + rng_below(&r, 200);
		ptr[i] = arena_alloc(&a, n);
		FAST_TRUE(ptr[i] != NULL);
		FAST_EQ((uintptr_t)ptr[i] % 8, 0);
		len[i] = n;
		memset(ptr[i], (int)(i * 31 + 7), n);
	}
	/* No allocation overwrote another: every byte still holds its owner's pattern. */
	for (int i = 0; i < N; i++)
		for (size_t j = 0; j < len[i]; j++)
			if (ptr[i][j] != (unsigned char)(i * 31 + 7))
				ck_abort_msg("allocation %d byte %zu overwritten", i, j);
	arena_free(&a);
	ck_assert_uint_eq(arena_usage(&a), 0);
}
END_TEST

START_TEST(test_usage_accounting)
{
	struct arena a;
	arena_init(&a, 4096);
	void *p1 = arena_alloc(&a, 10);
	ck_assert_ptr_nonnull(p1);
	size_t u1 = arena_usage(&a);
	ck_assert_uint_ge(u1, 4096);
	ck_assert_uint_le(u1, 4096 + HDR_SLACK);
	size_t hdr = u1 - 4096;

	/* Small allocations come from the same block: no new usage, and they are adjacent (8-byte rounding). */
	char *p2 = arena_alloc(&a, 3);
	char *p3 = arena_alloc(&a, 8);
	ck_assert_ptr_eq(p2, (char *)p1 + 16);
	ck_assert_ptr_eq(p3, p2 + 8);
	ck_assert_uint_eq(arena_usage(&a), u1);

	/* Whatever fits the current block comes from it, even a big request. 32 bytes used so far. */
	char *fill = arena_alloc(&a, 3000);
	ck_assert_ptr_eq(fill, p3 + 8);
	ck_assert_uint_eq(arena_usage(&a), u1);

	/* A request that does not fit and is more than a quarter block gets its own block of exactly
	 * that size; the current block stays current. */
	char *big = arena_alloc(&a, 2000);
	ck_assert_ptr_nonnull(big);
	ck_assert_uint_eq(arena_usage(&a), u1 + hdr + 2000);
	char *p4 = arena_alloc(&a, 8);
	ck_assert_ptr_eq(p4, fill + 3000);
	char *p5 = arena_alloc(&a, 1024); /* 3040 + 1024 <= 4096 */
	ck_assert_ptr_eq(p5, p4 + 8);
	ck_assert_uint_eq(arena_usage(&a), u1 + hdr + 2000);

	/* A small request that does not fit starts a new block; the old block's last 32 bytes are lost. */
	char *p6 = arena_alloc(&a, 100);
	ck_assert_ptr_nonnull(p6);
	ck_assert_uint_eq(arena_usage(&a), 2 * u1 + hdr + 2000);
	char *p7 = arena_alloc(&a, 1);
	ck_assert_ptr_eq(p7, p6 + 104);

	arena_free(&a);
	ck_assert_uint_eq(arena_usage(&a), 0);
	ck_assert_uint_eq(a.block_size, 4096); /* reusable with the same block size */
	ck_assert_ptr_nonnull(arena_alloc(&a, 1));
	ck_assert_uint_eq(arena_usage(&a), u1);
	arena_free(&a);
}
END_TEST

START_TEST(test_default_block_size)
{
	struct arena a;
	arena_init(&a, 0);
	ck_assert_uint_eq(a.block_size, 1u << 20);
	ck_assert_ptr_nonnull(arena_alloc(&a, 1));
	ck_assert_uint_ge(arena_usage(&a), 1u << 20);
	ck_assert_uint_le(arena_usage(&a), (1u << 20) + HDR_SLACK);
	arena_free(&a);
	arena_free(&a); /* freeing an empty arena is harmless */
	ck_assert_uint_eq(arena_usage(&a), 0);
}
END_TEST

/* An impossible request must fail cleanly: NULL, arena unchanged. A size near SIZE_MAX must not wrap
 * around into a small block (that would hand out a pointer to far fewer bytes than asked for). */
START_TEST(test_huge_request_fails)
{
	struct arena a;
	arena_init(&a, 4096);
	ck_assert_ptr_nonnull(arena_alloc(&a, 16));
	size_t before = arena_usage(&a);
	ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX - 8));
	ck_assert_uint_eq(arena_usage(&a), before);
	ck_assert_ptr_null(arena_alloc(&a, SIZE_MAX));
	ck_assert_uint_eq(arena_usage(&a), before);
	arena_free(&a);
}
END_TEST

Suite *arena_suite(void)
{
	Suite *s = suite_create("arena");
	TCase *tc = tcase_create("arena");
	tcase_add_test(tc, test_alignment_and_contents);
	tcase_add_test(tc, test_usage_accounting);
	tcase_add_test(tc, test_default_block_size);
	tcase_add_test(tc, test_huge_request_fails);
	suite_add_tcase(s, tc);
	return s;
}
