/* wal.c - log records: writing them in one append each, reading them back with torn-tail detection. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "buf.h"
#include "hash.h"
#include "lsm.h"
#include "status.h"
#include "wal.h"
#include "wal_format.h"

/* Every this many bytes appended, start the log's writeback without waiting. The memtable switch
 * syncs the old log before the new one takes writes (wal records must become durable in order); with
 * the whole 64 MiB log dirty that sync took 60-220 ms in the writer's path, 12 times in a 4 KiB-value
 * overwrite of 800 MB (strace: 1.5 s of a ~5 s run). Written back as it grows, the log is mostly on
 * the device by then. The bytes written are the same: the sync wrote them all anyway. */
#define WAL_WRITEBACK_BYTES (1u << 20)

static uint32_t rec_checksum(const char *rec, size_t payload_len)
{
	return (uint32_t)lsm_xxh3(rec + 4, WAL_HEADER_SIZE - 4 + payload_len);
}

int wal_writer_open(lsm_env *env, const char *path, uint64_t number, struct wal_writer **out)
{
	*out = NULL;
	struct wal_writer *w = calloc(1, sizeof *w);
	if (!w || !(w->path = strdup(path))) {
		free(w);
		return st_error(LSM_NOMEM, "out of memory opening %s", path);
	}
	int e = env->new_writable(env, path, &w->f);
	if (e) {
		free(w->path);
		free(w);
		return st_errno(e, "create %s", path);
	}
	w->env = env;
	w->number = number;
	*out = w;
	return LSM_OK;
}

int wal_append(struct wal_writer *w, unsigned type, char *rec, size_t payload_len)
{
	if (payload_len > WAL_MAX_PAYLOAD)
		return st_error(LSM_INVAL, "log record of %zu bytes is too large", payload_len);
	put_u32le(rec + 4, (uint32_t)payload_len);
	rec[8] = (char)type;
	rec[9] = rec[10] = rec[11] = 0;
	put_u32le(rec + 12, (uint32_t)w->number);
	put_u64le(rec + 16, w->synced);
	put_u32le(rec, rec_checksum(rec, payload_len));
	return wal_append_raw(w, rec, WAL_HEADER_SIZE + payload_len);
}

int wal_append_raw(struct wal_writer *w, const void *data, size_t n)
{
	int e = w->env->append(w->f, data, n);
	if (e)
		return st_errno(e, "append to %s at offset %" PRIu64, w->path, w->offset);
	w->offset += n;
	if (w->env->writeback && w->offset - w->written_back >= WAL_WRITEBACK_BYTES) {
		/* Whole pages only: the next append rewrites the last partial page. A failed hint is
		 * harmless (the sync that matters reports errors). */
		uint64_t end = w->offset & ~(uint64_t)4095;
		(void)w->env->writeback(w->f, w->written_back, end - w->written_back);
		w->written_back = end;
	}
	return LSM_OK;
}

int wal_append_copy(struct wal_writer *w, unsigned type, const void *payload, size_t len)
{
	char *rec = malloc(WAL_HEADER_SIZE + len);
	if (!rec)
		return st_error(LSM_NOMEM, "out of memory writing %s", w->path);
	memcpy(rec + WAL_HEADER_SIZE, payload, len);
	int rc = wal_append(w, type, rec, len);
	free(rec);
	return rc;
}

int wal_sync(struct wal_writer *w)
{
	if (w->synced == w->offset)
		return LSM_OK;
	int e = w->env->sync(w->f);
	if (e)
		return st_errno(e, "sync %s", w->path);
	w->synced = w->offset;
	return LSM_OK;
}

int wal_writer_close(struct wal_writer *w)
{
	if (!w)
		return LSM_OK;
	int e = w->env->close_writable(w->f);
	int rc = e ? st_errno(e, "close %s", w->path) : LSM_OK;
	free(w->path);
	free(w);
	return rc;
}

/* ---------------------------------------------------------------- reader */

int wal_reader_open(lsm_env *env, const char *path, uint64_t number, int mode, struct wal_reader **out)
{
	*out = NULL;
	struct wal_reader *r = calloc(1, sizeof *r);
	if (!r || !(r->path = strdup(path))) {
		free(r);
		return st_error(LSM_NOMEM, "out of memory reading %s", path);
	}
	int e = lsm_env_read_all(env, path, &r->data, &r->size);
	if (e) {
		free(r->path);
		free(r);
		return st_errno(e, "read %s", path);
	}
	r->number = number;
	r->mode = mode;
	*out = r;
	return LSM_OK;
}

int wal_read_batch(struct wal_reader *r, struct slice *payload, uint64_t *offset, struct batch_reader *br,
		   uint64_t *seq, uint32_t *count)
{
	unsigned type;
	int n = wal_read(r, &type, payload, offset);
	if (n <= 0)
		return n;
	if (type != WAL_REC_BATCH)
		return st_corrupt(r->path, *offset, "record of type %u in a write-ahead log", type);
	if (batch_reader_init(br, payload->data, payload->len, seq, count))
		return st_corrupt(r->path, *offset, "malformed write batch");
	return 1;
}

void wal_reader_close(struct wal_reader *r)
{
	if (!r)
		return;
	free(r->data);
	free(r->path);
	free(r);
}

/* Is there an intact record at off? Sets *len to its payload length. */
static int intact_at(const struct wal_reader *r, size_t off, uint32_t *len)
{
	if (r->size - off < WAL_HEADER_SIZE)
		return 0;
	const char *h = r->data + off;
	if (get_u32le(h + 12) != (uint32_t)r->number || h[9] || h[10] || h[11])
		return 0;
	unsigned type = (unsigned char)h[8];
	if (type != WAL_REC_BATCH && type != WAL_REC_EDIT)
		return 0;
	uint32_t n = get_u32le(h + 4);
	if (n > r->size - off - WAL_HEADER_SIZE)
		return 0;
	if (get_u32le(h) != rec_checksum(h, n))
		return 0;
	*len = n;
	return 1;
}

/* The first intact record after bad_off, or size if none. *vouched is set if some intact record after
 * bad_off says bad_off was already durable when it was written. */
static size_t next_intact(const struct wal_reader *r, size_t bad_off, int *vouched)
{
	size_t first = r->size;
	*vouched = 0;
	for (size_t o = bad_off + 1; o + WAL_HEADER_SIZE <= r->size;) {
		uint32_t n;
		if (!intact_at(r, o, &n)) {
			o++;
			continue;
		}
		if (first == r->size)
			first = o;
		if (get_u64le(r->data + o + 16) > bad_off) {
			*vouched = 1;
			break;
		}
		o += WAL_HEADER_SIZE + n;
	}
	return first;
}

int wal_reader_cut(struct wal_reader *r, uint64_t off)
{
	int vouched = 0;
	if (r->mode != WAL_TAIL_OK) /* repair skips the one record instead */
		return 0;
	next_intact(r, (size_t)off, &vouched);
	if (vouched)
		return 0;
	r->torn_offset = off;
	r->torn_bytes = r->size - off;
	r->done = 1;
	return 1;
}

int wal_read(struct wal_reader *r, unsigned *type, struct slice *payload, uint64_t *offset)
{
	while (!r->done && r->off < r->size) {
		uint32_t n;
		size_t off = r->off;
		if (intact_at(r, off, &n)) {
			*type = (unsigned char)r->data[off + 8];
			*payload = slice_make(r->data + off + WAL_HEADER_SIZE, n);
			*offset = off;
			r->off = off + WAL_HEADER_SIZE + n;
			return 1;
		}
		int vouched;
		size_t next = next_intact(r, off, &vouched);
		if (r->mode == WAL_REPAIR && next < r->size) {
			if (!r->skipped_records)
				r->first_skip_offset = off;
			r->skipped_records++;
			r->skipped_bytes += next - off;
			r->off = next;
			continue;
		}
		if (r->mode != WAL_STRICT && !vouched) {
			r->torn_offset = off;
			r->torn_bytes = r->size - off;
			r->done = 1;
			return 0;
		}
		const char *why = r->size - off < WAL_HEADER_SIZE ? "truncated record header"
				  : get_u32le(r->data + off + 4) > r->size - off - WAL_HEADER_SIZE
					  ? "record runs past the end of the file"
					  : "bad record checksum or header";
		return st_corrupt(r->path, off, "%s%s", why,
				  vouched ? " (a later record says these bytes had been synced)" : "");
	}
	r->done = 1;
	return 0;
}
