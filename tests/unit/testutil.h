/* testutil.h - helpers shared by the unit tests: seeded randomness, temp dirs, seeds to replay. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stdint.h>
#include <stddef.h>

/* splitmix64: a small, seedable PRNG so every randomized test replays from its printed seed. */
struct rng {
	uint64_t s;
};
static inline uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

/* Seed for a randomized test: $LSM_SEED if set, else time-based; printed to stderr with the name. */
uint64_t test_seed(const char *test_name);
/* Scale factor for iteration counts: $LSM_TEST_SCALE (default 1; stress runs use more). */
int test_scale(void);
/* mkdtemp under $TMPDIR (default /tmp) into out (size >= 64); aborts the test on failure. */
void test_tmpdir(char *out, size_t outlen);
/* rm -rf path (test cleanup). */
void test_rmrf(const char *path);

#endif
