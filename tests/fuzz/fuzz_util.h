/*
 * fuzz_util.h - helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.c, built by tests/fuzz/fuzz.mk).
 *
 * Every target feeds its input to one reader of an on-disk format through the in-memory env, so that a
 * run touches no disk. Besides "no crash, no hang, no sanitizer report", a target checks that a
 * corruption status names the file it read (st_corrupt's "corruption in FILE at offset OFF"):
 * fuzz_check_corrupt aborts (a finding) when it does not.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "lsm.h"

/* A fresh in-memory env holding dir/ and the file path = data[0..len). Aborts if the env fails (it is
 * memory only: a failure is a harness bug). */
static inline lsm_env *fuzz_env_with_file(const char *dir, const char *path, const void *data, size_t len)
{
	lsm_env *env = lsm_env_mem_new();
	if (!env || env->mkdir(env, dir, 0700) || lsm_env_write_all(env, path, data, len, 1))
		abort();
	return env;
}

/* rc is a status returned while reading `file`: corruption must be reported as "... in FILE at offset". */
static inline void fuzz_check_corrupt(int rc, const char *file)
{
	if (rc != LSM_CORRUPT)
		return;
	const char *m = lsm_errmsg();
	if (!strstr(m, file) || !strstr(m, "offset")) {
		fprintf(stderr, "corruption reported without naming %s and an offset: %s\n", file, m);
		abort();
	}
}

/* Only these statuses may come out of reading bad bytes from memory. */
static inline void fuzz_check_status(int rc, const char *what)
{
	if (rc == LSM_OK || rc == LSM_NOTFOUND || rc == LSM_CORRUPT || rc == LSM_NOMEM || rc == LSM_INVAL)
		return;
	fprintf(stderr, "%s: unexpected status %d (%s): %s\n", what, rc, lsm_strerror(rc), lsm_errmsg());
	abort();
}

#endif
