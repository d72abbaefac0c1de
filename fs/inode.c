/* inode.c - the in-memory inode table: lookup counts, open counts, and reclaiming unlinked inodes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lsmfs.h"

static struct inode_shard *shard_of(struct fs *fs, uint64_t ino)
{
	return &fs->shards[(ino * 0x9E3779B97F4A7C15ULL) >> 58];
}

static size_t bucket_of(const struct inode_shard *s, uint64_t ino)
{
	return (size_t)((ino * 0xC2B2AE3D27D4EB4FULL) >> 20) & (s->nbuckets - 1);
}

void itab_init(struct fs *fs)
{
	for (int i = 0; i < INODE_SHARDS; i++) {
		struct inode_shard *s = &fs->shards[i];
		pthread_mutex_init(&s->mu, NULL);
		s->nbuckets = 64;
		s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
		s->count = 0;
	}
}

static void inode_free(struct inode *in)
{
	pthread_mutex_destroy(&in->mu);
	free(in);
}

void itab_destroy(struct fs *fs)
{
	for (int i = 0; i < INODE_SHARDS; i++) {
		struct inode_shard *s = &fs->shards[i];
		for (size_t b = 0; s->buckets && b < s->nbuckets; b++) {
			struct inode *in = s->buckets[b];
			while (in) {
				struct inode *n = in->hnext;
				inode_free(in);
				in = n;
			}
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->mu);
	}
}

static struct inode *find_locked(struct inode_shard *s, uint64_t ino)
{
	for (struct inode *in = s->buckets[bucket_of(s, ino)]; in; in = in->hnext)
		if (in->ino == ino)
			return in;
	return NULL;
}

static void grow_locked(struct inode_shard *s)
{
	size_t nb = s->nbuckets * 2;
	struct inode **nt = calloc(nb, sizeof *nt);
	if (!nt)
		return; /* longer chains, still correct */
	struct inode **old = s->buckets;
	size_t ob = s->nbuckets;
	s->buckets = nt;
	s->nbuckets = nb;
	for (size_t b = 0; b < ob; b++) {
		struct inode *in = old[b];
		while (in) {
			struct inode *n = in->hnext;
			size_t k = bucket_of(s, in->ino);
			in->hnext = nt[k];
			nt[k] = in;
			in = n;
		}
	}
	free(old);
}

static void insert_locked(struct inode_shard *s, struct inode *in)
{
	size_t k = bucket_of(s, in->ino);
	in->hnext = s->buckets[k];
	s->buckets[k] = in;
	if (++s->count > 2 * s->nbuckets)
		grow_locked(s);
}

static void remove_locked(struct inode_shard *s, struct inode *in)
{
	struct inode **p = &s->buckets[bucket_of(s, in->ino)];
	while (*p && *p != in)
		p = &(*p)->hnext;
	if (*p) {
		*p = in->hnext;
		s->count--;
	}
}

static struct inode *inode_alloc(const struct fs_inode *a)
{
	struct inode *in = calloc(1, sizeof *in);
	if (!in)
		return NULL;
	pthread_mutex_init(&in->mu, NULL);
	in->ino = a->ino;
	in->a = *a;
	return in;
}

int inode_get(struct fs *fs, uint64_t ino, struct inode **out)
{
	struct inode_shard *s = shard_of(fs, ino);
retry:
	pthread_mutex_lock(&s->mu);
	struct inode *in = find_locked(s, ino);
	if (in) {
		in->refs++;
		pthread_mutex_unlock(&s->mu);
		*out = in;
		return 0;
	}
	uint64_t gen = s->evictions;
	pthread_mutex_unlock(&s->mu);

	char key[FS_KEY_MAX];
	size_t kl = fs_key_inode(key, ino);
	struct lsm_buf v = {0};
	int rc = lsm_get(fs->db, NULL, key, kl, &v);
	if (rc) {
		lsm_buf_free(&v);
		return rc == LSM_NOTFOUND ? -ENOENT : -fs_store_errno(rc);
	}
	struct fs_inode a = {.ino = ino};
	rc = fs_inode_decode(v.data, v.len, &a);
	lsm_buf_free(&v);
	if (rc)
		return -EIO; /* a malformed inode record: lsmfsck names it */
	struct inode *fresh = inode_alloc(&a);
	if (!fresh)
		return -ENOMEM;
	pthread_mutex_lock(&s->mu);
	in = find_locked(s, ino);
	if (in) {
		/* Someone loaded it meanwhile: theirs is the one (it may be newer than what we read). */
		in->refs++;
		pthread_mutex_unlock(&s->mu);
		inode_free(fresh);
		*out = in;
		return 0;
	}
	if (s->evictions != gen) {
		/* An inode of this shard was dropped while we read: it may have been ino, written after our
		 * read. Read again rather than cache a stale copy. */
		pthread_mutex_unlock(&s->mu);
		inode_free(fresh);
		goto retry;
	}
	fresh->refs = 1;
	insert_locked(s, fresh);
	pthread_mutex_unlock(&s->mu);
	*out = fresh;
	return 0;
}

int inode_new(struct fs *fs, const struct fs_inode *a, struct inode **out)
{
	struct inode *in = inode_alloc(a);
	if (!in)
		return -ENOMEM;
	in->refs = 1;
	struct inode_shard *s = shard_of(fs, a->ino);
	pthread_mutex_lock(&s->mu);
	insert_locked(s, in);
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add(&fs->ninodes, 1);
	*out = in;
	return 0;
}

/* The last user is gone: drop the struct, and if the inode has no links, its storage. REQUIRES: shard
 * lock held; it is released. */
static void maybe_evict_unlock(struct fs *fs, struct inode_shard *s, struct inode *in)
{
	if (in->refs || in->nlookup || in->nopen) {
		pthread_mutex_unlock(&s->mu);
		return;
	}
	remove_locked(s, in);
	s->evictions++;
	pthread_mutex_unlock(&s->mu);
	if (in->a.nlink == 0 && !in->dead && !fs->cfg.read_only)
		fs_reclaim_cached(fs, &in->a);
	inode_free(in);
}

void inode_put(struct fs *fs, struct inode *in)
{
	if (!in)
		return;
	struct inode_shard *s = shard_of(fs, in->ino);
	pthread_mutex_lock(&s->mu);
	in->refs--;
	maybe_evict_unlock(fs, s, in);
}

void inode_lookup_inc(struct fs *fs, struct inode *in)
{
	struct inode_shard *s = shard_of(fs, in->ino);
	pthread_mutex_lock(&s->mu);
	in->nlookup++;
	pthread_mutex_unlock(&s->mu);
}

void inode_forget(struct fs *fs, uint64_t ino, uint64_t n)
{
	struct inode_shard *s = shard_of(fs, ino);
	pthread_mutex_lock(&s->mu);
	struct inode *in = find_locked(s, ino);
	if (!in) {
		pthread_mutex_unlock(&s->mu);
		return;
	}
	in->nlookup = n > in->nlookup ? 0 : in->nlookup - n;
	maybe_evict_unlock(fs, s, in);
}

void inode_open_inc(struct fs *fs, struct inode *in)
{
	struct inode_shard *s = shard_of(fs, in->ino);
	pthread_mutex_lock(&s->mu);
	in->nopen++;
	pthread_mutex_unlock(&s->mu);
}

void inode_open_dec(struct fs *fs, struct inode *in)
{
	struct inode_shard *s = shard_of(fs, in->ino);
	pthread_mutex_lock(&s->mu);
	in->nopen--;
	pthread_mutex_unlock(&s->mu);
}
