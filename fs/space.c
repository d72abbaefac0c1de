/* space.c - the free-space reserve of the store's disk.
 *
 * An LSM tree needs free space to delete: a deletion is a write (log record, then table), and the
 * space of what it deletes comes back only when compaction rewrites the tables that hold it. So
 * operations that grow the filesystem (write, create, mkdir, link, setxattr, fallocate) fail with
 * ENOSPC while the disk has less than the reserve free, counting as used what the store has yet to
 * write (memtables, and level 0 with the level-1 tables it overlaps, which compaction rewrites); deletions, renames and truncates go on
 * using the reserve, and flushes and compactions always find room. statfs reports the space above
 * the reserve as available, so `df` shows the filesystem full when it refuses growth.
 *
 * Deleting or truncating a large file while space is short compacts its block range at once (in a
 * background thread) instead of when leveled compaction reaches it: `rm` of a big file on a full
 * disk gives the space back within seconds. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "lsmfs.h"

#define RECHECK_NS (20 * 1000 * 1000)   /* statvfs at most every 20 ms ... */
#define RECLAIM_MIN (1u << 20)           /* deletions smaller than this are left to compaction */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Free bytes on the store's disk less what is promised: refreshed when stale or when much was
 * admitted since; writes in flight (claimed, not yet in the store) always count. */
static uint64_t space_avail(struct fs *fs)
{
	struct fs_space *s = &fs->space;
	int64_t now = mono_ns();
	int64_t grown = atomic_load(&s->grown);
	int64_t checked = atomic_load(&s->checked_ns);
	int64_t much = s->reserve / 8 > (1u << 20) ? (int64_t)(s->reserve / 8) : (1 << 20);
	/* One thread measures (the one that moves checked_ns); the others use the last figure. */
	if ((now - checked > RECHECK_NS || grown > much) && atomic_compare_exchange_strong(&s->checked_ns, &checked, now)) {
		struct statvfs sv;
		struct lsm_stats st;
		if (statvfs(fs->cfg.store_dir, &sv) == 0 && lsm_stats_get(fs->db, &st) == 0) {
			/* Space the store has already promised away: memtables still to be written as
			 * tables, level 0 with the level-1 tables it overlaps, and the compaction
			 * running now: compaction writes its outputs before it deletes its inputs. */
			uint64_t free_now = (uint64_t)sv.f_bavail * sv.f_frsize;
			uint64_t debt = st.mem_bytes + st.imm_bytes + st.l0_compaction_bytes + st.compacting_bytes;
			atomic_store(&s->avail, free_now > debt ? free_now - debt : 0);
			atomic_fetch_sub(&s->grown, grown); /* what the measurement now includes */
		}
	}
	int64_t owed = atomic_load(&s->grown) + atomic_load(&s->inflight);
	uint64_t avail = atomic_load(&s->avail);
	if (owed <= 0)
		return avail;
	return avail > (uint64_t)owed ? avail - (uint64_t)owed : 0;
}

int fs_space_claim(struct fs *fs, uint64_t bytes)
{
	struct fs_space *s = &fs->space;
	if (!s->reserve)
		return 0;
	/* Claim first, then look: concurrent writers (the kernel sends up to max_threads writebacks
	 * at once) must not all pass on the same stale measurement. */
	atomic_fetch_add(&s->inflight, (int64_t)bytes);
	if (space_avail(fs) < s->reserve) {
		atomic_fetch_sub(&s->inflight, (int64_t)bytes);
		return ENOSPC;
	}
	return 0;
}

void fs_space_done(struct fs *fs, uint64_t bytes)
{
	struct fs_space *s = &fs->space;
	if (!s->reserve)
		return;
	/* In the store now (log and memtable): counted until the next measurement sees it. */
	atomic_fetch_add(&s->grown, (int64_t)bytes);
	atomic_fetch_sub(&s->inflight, (int64_t)bytes);
}

int fs_space_check(struct fs *fs, uint64_t growth)
{
	int rc = fs_space_claim(fs, growth);
	if (!rc)
		fs_space_done(fs, growth);
	return rc;
}

uint64_t fs_space_usable(struct fs *fs, const struct statvfs *sv)
{
	if (!fs->space.reserve) /* read-only: no reserve, no debt */
		return (uint64_t)sv->f_bavail * sv->f_frsize;
	uint64_t a = space_avail(fs);
	return a > fs->space.reserve ? a - fs->space.reserve : 0;
}

void fs_space_freed(struct fs *fs, uint64_t ino, uint64_t bytes)
{
	struct fs_space *s = &fs->space;
	if (!s->started || bytes < RECLAIM_MIN || space_avail(fs) >= 2 * s->reserve)
		return;
	pthread_mutex_lock(&s->mu);
	int dup = 0;
	for (int i = 0; i < s->nq; i++)
		dup |= s->queue[i] == ino;
	if (!dup && s->nq < FS_SPACE_QUEUE)
		s->queue[s->nq++] = ino;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void *reclaim_main(void *arg)
{
	struct fs *fs = arg;
	struct fs_space *s = &fs->space;
	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->stop && s->nq == 0)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stop)
			break;
		uint64_t ino = s->queue[--s->nq];
		pthread_mutex_unlock(&s->mu);
		char k1[FS_KEY_MAX], k2[FS_KEY_MAX];
		size_t l1 = fs_key_kind_ino(k1, FS_K_BLOCK, ino);
		size_t l2 = fs_key_kind_ino(k2, FS_K_BLOCK, ino + 1);
		int rc = lsm_compact_range(fs->db, k1, l1, k2, l2);
		if (rc)
			fprintf(stderr, "lsmfs: compacting the blocks of deleted inode %llu: %s\n",
				(unsigned long long)ino, lsm_errmsg());
		atomic_store(&s->checked_ns, 0); /* measure again: space came back */
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int fs_space_start(struct fs *fs)
{
	struct fs_space *s = &fs->space;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->inited = 1;
	s->nq = 0;
	s->stop = 0;
	if (fs->cfg.read_only) {
		s->reserve = 0;
		return 0;
	}
	/* Memtables and level 0 are counted as debt when measuring (space_avail); the reserve covers a
	 * compaction step below level 0 (a table and what it overlaps) and the deletions themselves. */
	s->reserve = fs->cfg.reserve_set ? fs->cfg.reserve : (32u << 20);
	atomic_store(&s->checked_ns, 0);
	if (pthread_create(&s->thread, NULL, reclaim_main, fs))
		return -1;
	s->started = 1;
	return 0;
}

void fs_space_stop(struct fs *fs)
{
	struct fs_space *s = &fs->space;
	if (!s->inited)
		return;
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
		s->started = 0;
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	s->inited = 0;
}
