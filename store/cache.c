/* cache.c - sharded LRU cache with pinned handles and a byte limit. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

#define SHARD_BITS 4
#define NSHARDS (1 << SHARD_BITS)

struct cache_handle {
	uint64_t id, off;
	uint32_t hash;
	int refs;          /* the cache's own reference counts as one while in_cache */
	int in_cache;
	size_t charge;
	void *value;
	cache_deleter deleter;
	void *arg;
	struct cache_handle *hnext;            /* hash chain */
	struct cache_handle *prev, *next;      /* LRU list (only unpinned entries in the cache) */
};

struct shard {
	pthread_mutex_t mu;
	size_t capacity;
	size_t usage;
	struct cache_handle **table;
	size_t tsize, count;
	struct cache_handle lru; /* sentinel: lru.next is the oldest */
	uint64_t hits, misses;   /* counted under mu, which lookups hold anyway */
};

struct cache {
	struct shard shards[NSHARDS];
	size_t capacity;
	_Atomic uint64_t next_id;
};

static uint32_t hash_key(uint64_t id, uint64_t off)
{
	uint64_t h = id * 0x9E3779B97F4A7C15ULL ^ (off + 0x632BE59BD9B4E019ULL) * 0xC2B2AE3D27D4EB4FULL;
	h ^= h >> 29;
	return (uint32_t)(h ^ (h >> 32));
}

struct cache *cache_new(size_t capacity)
{
	struct cache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->capacity = capacity;
	atomic_init(&c->next_id, 1);
	for (int i = 0; i < NSHARDS; i++) {
		struct shard *s = &c->shards[i];
		pthread_mutex_init(&s->mu, NULL);
		/* Split exactly: the shards together hold `capacity`, never more. */
		s->capacity = capacity / NSHARDS + ((size_t)i < capacity % NSHARDS);
		s->lru.next = s->lru.prev = &s->lru;
		s->tsize = 256;
		s->table = calloc(s->tsize, sizeof *s->table);
		if (!s->table) {
			for (int j = 0; j <= i; j++) {
				free(c->shards[j].table);
				pthread_mutex_destroy(&c->shards[j].mu);
			}
			free(c);
			return NULL;
		}
	}
	return c;
}

static void free_entry(struct cache_handle *e)
{
	if (e->deleter)
		e->deleter(e->value, e->arg);
	free(e);
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < NSHARDS; i++) {
		struct shard *s = &c->shards[i];
		for (size_t b = 0; b < s->tsize; b++) {
			struct cache_handle *e = s->table[b];
			while (e) {
				struct cache_handle *n = e->hnext;
				free_entry(e);
				e = n;
			}
		}
		free(s->table);
		pthread_mutex_destroy(&s->mu);
	}
	free(c);
}

static void lru_remove(struct cache_handle *e)
{
	e->next->prev = e->prev;
	e->prev->next = e->next;
	e->next = e->prev = NULL;
}

static void lru_append(struct shard *s, struct cache_handle *e)
{
	e->next = &s->lru;
	e->prev = s->lru.prev;
	e->prev->next = e;
	e->next->prev = e;
}

static struct cache_handle **slot_of(struct shard *s, uint64_t id, uint64_t off, uint32_t hash)
{
	struct cache_handle **p = &s->table[(hash >> SHARD_BITS) & (s->tsize - 1)];
	while (*p && ((*p)->id != id || (*p)->off != off))
		p = &(*p)->hnext;
	return p;
}

static void grow_table(struct shard *s)
{
	size_t nsize = s->tsize * 2;
	struct cache_handle **nt = calloc(nsize, sizeof *nt);
	if (!nt)
		return; /* keep the old table: longer chains, still correct */
	for (size_t b = 0; b < s->tsize; b++) {
		struct cache_handle *e = s->table[b];
		while (e) {
			struct cache_handle *n = e->hnext;
			struct cache_handle **p = &nt[(e->hash >> SHARD_BITS) & (nsize - 1)];
			e->hnext = *p;
			*p = e;
			e = n;
		}
	}
	free(s->table);
	s->table = nt;
	s->tsize = nsize;
}

/* Drop one reference; returns the entry if it must be freed (outside the lock). */
static struct cache_handle *unref_locked(struct shard *s, struct cache_handle *e)
{
	e->refs--;
	if (e->refs == 0) {
		s->usage -= e->charge;
		return e;
	}
	if (e->refs == 1 && e->in_cache)
		lru_append(s, e); /* only the cache holds it now: evictable */
	return NULL;
}

/* Remove e from the table (it must be there); returns the entry to free, if any. */
static struct cache_handle *detach_locked(struct shard *s, struct cache_handle *e)
{
	struct cache_handle **p = slot_of(s, e->id, e->off, e->hash);
	*p = e->hnext;
	s->count--;
	e->in_cache = 0;
	if (e->next)
		lru_remove(e);
	return unref_locked(s, e);
}

/* Evict unpinned entries, oldest first, until the shard fits; the victims are chained onto *dead. */
static void evict_locked(struct shard *s, struct cache_handle **dead)
{
	while (s->usage > s->capacity && s->lru.next != &s->lru) {
		struct cache_handle *old = detach_locked(s, s->lru.next);
		if (old) {
			old->hnext = *dead;
			*dead = old;
		}
	}
}

static void free_chain(struct cache_handle *e)
{
	while (e) {
		struct cache_handle *n = e->hnext;
		free_entry(e);
		e = n;
	}
}

struct cache_handle *cache_insert(struct cache *c, uint64_t id, uint64_t off, void *value, size_t charge,
				  cache_deleter deleter, void *arg)
{
	uint32_t hash = hash_key(id, off);
	struct shard *s = &c->shards[hash & (NSHARDS - 1)];
	struct cache_handle *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->id = id;
	e->off = off;
	e->hash = hash;
	e->refs = 2; /* the cache's and the caller's */
	e->in_cache = 1;
	e->charge = charge;
	e->value = value;
	e->deleter = deleter;
	e->arg = arg;

	struct cache_handle *dead = NULL; /* entries to free after unlocking, chained by hnext */
	pthread_mutex_lock(&s->mu);
	struct cache_handle **p = slot_of(s, id, off, hash);
	if (*p) {
		struct cache_handle *old = detach_locked(s, *p);
		if (old) {
			old->hnext = dead;
			dead = old;
		}
		p = slot_of(s, id, off, hash);
	}
	e->hnext = *p;
	*p = e;
	s->count++;
	s->usage += charge;
	evict_locked(s, &dead);
	if (s->count > s->tsize)
		grow_table(s);
	pthread_mutex_unlock(&s->mu);
	free_chain(dead);
	return e;
}

struct cache_handle *cache_lookup(struct cache *c, uint64_t id, uint64_t off)
{
	uint32_t hash = hash_key(id, off);
	struct shard *s = &c->shards[hash & (NSHARDS - 1)];
	pthread_mutex_lock(&s->mu);
	struct cache_handle *e = *slot_of(s, id, off, hash);
	if (e) {
		if (e->refs == 1 && e->in_cache)
			lru_remove(e); /* pinned now: not evictable */
		e->refs++;
		s->hits++;
	} else {
		s->misses++;
	}
	pthread_mutex_unlock(&s->mu);
	return e;
}

void cache_release(struct cache *c, struct cache_handle *e)
{
	struct shard *s = &c->shards[e->hash & (NSHARDS - 1)];
	pthread_mutex_lock(&s->mu);
	struct cache_handle *dead = unref_locked(s, e);
	if (dead)
		dead->hnext = NULL;
	/* Releasing may leave the shard over capacity (entries pinned during an insert). */
	evict_locked(s, &dead);
	pthread_mutex_unlock(&s->mu);
	free_chain(dead);
}

void *cache_value(const struct cache_handle *h)
{
	return h->value;
}

void cache_erase(struct cache *c, uint64_t id, uint64_t off)
{
	uint32_t hash = hash_key(id, off);
	struct shard *s = &c->shards[hash & (NSHARDS - 1)];
	struct cache_handle *dead = NULL;
	pthread_mutex_lock(&s->mu);
	struct cache_handle *e = *slot_of(s, id, off, hash);
	if (e)
		dead = detach_locked(s, e);
	pthread_mutex_unlock(&s->mu);
	if (dead)
		free_entry(dead);
}

uint64_t cache_new_id(struct cache *c)
{
	return atomic_fetch_add_explicit(&c->next_id, 1, memory_order_relaxed);
}

void cache_counts(struct cache *c, uint64_t *hits, uint64_t *misses, uint64_t *entries)
{
	*hits = *misses = *entries = 0;
	for (int i = 0; i < NSHARDS; i++) {
		pthread_mutex_lock(&c->shards[i].mu);
		*hits += c->shards[i].hits;
		*misses += c->shards[i].misses;
		*entries += c->shards[i].count;
		pthread_mutex_unlock(&c->shards[i].mu);
	}
}

size_t cache_usage(struct cache *c)
{
	size_t u = 0;
	for (int i = 0; i < NSHARDS; i++) {
		pthread_mutex_lock(&c->shards[i].mu);
		u += c->shards[i].usage;
		pthread_mutex_unlock(&c->shards[i].mu);
	}
	return u;
}

size_t cache_capacity(const struct cache *c)
{
	return c->capacity;
}
