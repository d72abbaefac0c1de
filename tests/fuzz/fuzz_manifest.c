/*
 * fuzz_manifest.c - libFuzzer target: open a store whose manifest is the input (manifest replay:
 * record framing, version edits, version building), first read-only (then a full scan and a lookup:
 * the tables it names are missing, which must be a clean corruption error), then read-write (recovery
 * writes a new manifest and a log) and close.
 *
 * CURRENT names MANIFEST-N where N is the file number the input's first record header claims (header
 * bytes 12..16), so that manifests copied from real stores replay as they are.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "coding.h"
#include "fuzz_util.h"

#define DIR "/m"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void scan(lsm_db *db)
{
	lsm_iter *it = lsm_iter_new(db, NULL);
	if (!it)
		return;
	int n = 0;
	for (lsm_iter_seek_first(it); lsm_iter_valid(it) && n < 10000; lsm_iter_next(it))
		n++;
	int rc = lsm_iter_status(it);
	fuzz_check_status(rc, "scan");
	lsm_iter_free(it);
	struct lsm_buf b = {0};
	rc = lsm_get(db, NULL, "k", 1, &b);
	fuzz_check_status(rc, "get");
	lsm_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t number = size >= 16 ? get_u32le((const char *)data + 12) : 1;
	char mpath[64], current[64];
	int clen = snprintf(current, sizeof current, "MANIFEST-%06" PRIu32 "\n", number);
	snprintf(mpath, sizeof mpath, DIR "/MANIFEST-%06" PRIu32, number);
	lsm_env *env = fuzz_env_with_file(DIR, mpath, data, size);
	if (lsm_env_write_all(env, DIR "/CURRENT", current, (size_t)clen, 1))
		abort();

	struct lsm_options o;
	lsm_options_init(&o);
	o.env = env;
	o.read_only = 1;
	o.write_buffer_size = 64 << 10;
	o.block_cache_size = 64 << 10;
	o.max_open_tables = 16;
	lsm_db *db;
	int rc = lsm_open(DIR, &o, &db);
	fuzz_check_status(rc, "read-only open");
	fuzz_check_corrupt(rc, DIR "/");
	if (rc == LSM_OK) {
		scan(db);
		lsm_close(db);
		o.read_only = 0;
		o.disable_compaction = 1; /* the tables are missing: no background work on them */
		rc = lsm_open(DIR, &o, &db);
		fuzz_check_status(rc, "open");
		if (rc == LSM_OK) {
			scan(db);
			if (lsm_put(db, "k", 1, "v", 1, 0) == LSM_OK)
				rc = lsm_close(db);
			else
				lsm_close(db);
		}
	}
	env->destroy(env);
	return 0;
}
