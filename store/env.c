/* env.c - whole-file helpers shared by every env: they call only the env's function pointers. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "env.h"
#include "env_fault.h"
#include "lsm.h"

/*
 * The buffer gets one extra byte set to '\0' after the data, so that small text files (CURRENT, test
 * fixtures) can be parsed as C strings; *len never counts it. A file that shrinks while we read returns
 * what was there; one that grows returns the size seen by file_size (a snapshot, not a tail -f).
 */
int lsm_env_read_all(lsm_env *env, const char *path, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;

	uint64_t size;
	int rc = env->file_size(env, path, &size);
	if (rc < 0)
		return rc;
	if (size >= SIZE_MAX || size > (uint64_t)INT64_MAX)
		return -EFBIG;

	lsm_rfile *f;
	rc = env->open_readable(env, path, &f);
	if (rc < 0)
		return rc;

	char *buf = malloc((size_t)size + 1);
	if (!buf) {
		(void)env->close_readable(f); /* keep the first error */
		return -ENOMEM;
	}
	size_t got = 0;
	while (got < size) {
		int64_t n = env->pread(f, buf + got, (size_t)size - got, got);
		if (n < 0) {
			free(buf);
			(void)env->close_readable(f); /* keep the first error */
			return (int)n;
		}
		if (n == 0)
			break; /* the file shrank since file_size */
		got += (size_t)n;
	}
	rc = env->close_readable(f);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

/*
 * On failure the file is left as it is (possibly a prefix): the caller knows whether a partial file is
 * harmful (a temp file it will unlink) and a crashed fault env would refuse an unlink here anyway.
 */
int lsm_env_write_all(lsm_env *env, const char *path, const void *data, size_t len, int do_sync)
{
	lsm_wfile *f;
	int rc = env->new_writable(env, path, &f);
	if (rc < 0)
		return rc;
	if (len)
		rc = env->append(f, data, len);
	if (rc == 0 && do_sync)
		rc = env->sync(f);
	int crc = env->close_writable(f); /* always frees f */
	return rc < 0 ? rc : crc;
}

int lsm_env_crash_journal(const char *journal_path, lsm_env **out)
{
	return lsm_fault_env_new_journal(lsm_env_posix(), journal_path, out);
}

void lsm_env_destroy(lsm_env *env)
{
	if (env && env->destroy)
		env->destroy(env);
}
