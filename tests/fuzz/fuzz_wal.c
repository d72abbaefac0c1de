/* fuzz_wal.c - libFuzzer target: the input as a write-ahead log, read in every mode; each record's
 * write batch decoded and applied to a memtable (what recovery does). */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "memtable.h"
#include "wal.h"
#include "wal_format.h"

#define PATH "/w/000005.log"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_log(lsm_env *env, int mode)
{
	struct wal_reader *r;
	int rc = wal_reader_open(env, PATH, 5, mode, &r);
	if (rc)
		abort(); /* the file is there, in memory */
	struct memtable *m = memtable_new(5, 1 << 20);
	if (!m)
		abort();
	uint64_t last_off = 0;
	int first = 1;
	for (;;) {
		unsigned type;
		struct slice payload;
		uint64_t off;
		rc = wal_read(r, &type, &payload, &off);
		if (rc <= 0)
			break;
		if (!first && off <= last_off)
			abort(); /* records come in file order */
		first = 0;
		last_off = off;
		if (off + WAL_HEADER_SIZE + payload.len > r->size)
			abort();
		if (type != WAL_REC_BATCH)
			continue;
		(void)memtable_apply_batch(m, payload.data, payload.len); /* a damaged batch stops where it is */
	}
	fuzz_check_status(rc < 0 ? rc : 0, "wal_read");
	fuzz_check_corrupt(rc, PATH);
	if (rc < 0 && mode == WAL_REPAIR)
		abort(); /* repair skips damaged records and drops a damaged tail: it never fails */
	memtable_unref(m);
	wal_reader_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lsm_env *env = fuzz_env_with_file("/w", PATH, data, size);
	read_log(env, WAL_STRICT);
	read_log(env, WAL_TAIL_OK);
	read_log(env, WAL_REPAIR);
	env->destroy(env);
	return 0;
}
