/*
 * cache.h - a sharded LRU cache with a byte limit (block cache, table cache).
 *
 * Entries are keyed by (id, offset) and carry a charge (bytes). Lookups and inserts return a pinned
 * handle; a pinned entry is never freed, even if evicted or replaced, until its last release. When the
 * unpinned entries' charge pushes usage over capacity, the least recently used unpinned ones go.
 * Pinned entries count towards usage, so usage can exceed capacity while readers hold many handles.
 * Thread-safe: 16 shards, one mutex each, chosen by the key's hash. The deleter runs outside any lock.
 */
#ifndef LSM_CACHE_H
#define LSM_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct cache;
struct cache_handle;

typedef void (*cache_deleter)(void *value, void *arg);

struct cache *cache_new(size_t capacity);
/* Every handle must have been released. */
void cache_free(struct cache *c);
/* Insert (replacing any entry with the same key); returns a pinned handle, or NULL if out of memory
 * (the deleter is then NOT called: the caller still owns value). */
struct cache_handle *cache_insert(struct cache *c, uint64_t id, uint64_t off, void *value, size_t charge,
				  cache_deleter deleter, void *arg);
struct cache_handle *cache_lookup(struct cache *c, uint64_t id, uint64_t off);
void cache_release(struct cache *c, struct cache_handle *h);
void *cache_value(const struct cache_handle *h);
/* Drop the entry if present (it is freed when its last pin goes). */
void cache_erase(struct cache *c, uint64_t id, uint64_t off);
/* A fresh id for a new user of the cache (e.g. each table opened), never reused. */
uint64_t cache_new_id(struct cache *c);
size_t cache_usage(struct cache *c);
/* Lookups that hit and missed since creation, and entries held now. */
void cache_counts(struct cache *c, uint64_t *hits, uint64_t *misses, uint64_t *entries);
size_t cache_capacity(const struct cache *c);

#endif
