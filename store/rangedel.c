/* rangedel.c - fragmenting range tombstones: immutable lists for tables, a mutable map for memtables. */
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "rangedel.h"

/* ---------------------------------------------------------------- immutable lists */

static int cmp_slice_ptr(const void *a, const void *b)
{
	return slice_cmp(*(const struct slice *)a, *(const struct slice *)b);
}

static int cmp_u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x > y ? -1 : x < y;
}

/* Lay out frags, seqnos and key bytes in one block: frags[nf], seqs[nseq], keys. */
static int list_alloc(struct rd_list *out, size_t nf, size_t nseq, size_t keybytes)
{
	size_t sz = nf * sizeof(struct rd_frag) + nseq * sizeof(uint64_t) + keybytes;
	out->mem = malloc(sz ? sz : 1);
	if (!out->mem)
		return LSM_NOMEM;
	out->frags = out->mem;
	out->n = nf;
	return LSM_OK;
}

static long find_boundary(const struct slice *b, size_t n, struct slice key)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (slice_cmp(b[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo;
}

int rd_list_build(struct rd_list *out, const struct rd_tombstone *t, size_t n)
{
	memset(out, 0, sizeof *out);
	if (n == 0)
		return LSM_OK;
	/* Every begin and end is a fragment boundary. */
	struct slice *bounds = malloc(2 * n * sizeof *bounds);
	uint32_t *cnt = NULL;
	int rc = LSM_NOMEM;
	if (!bounds)
		return LSM_NOMEM;
	size_t nb = 0;
	for (size_t i = 0; i < n; i++) {
		if (slice_cmp(t[i].begin, t[i].end) >= 0)
			continue;
		bounds[nb++] = t[i].begin;
		bounds[nb++] = t[i].end;
	}
	if (nb == 0) {
		free(bounds);
		return LSM_OK;
	}
	qsort(bounds, nb, sizeof *bounds, cmp_slice_ptr);
	size_t u = 0;
	for (size_t i = 0; i < nb; i++)
		if (u == 0 || slice_cmp(bounds[u - 1], bounds[i]) != 0)
			bounds[u++] = bounds[i];
	nb = u;
	size_t nfr = nb - 1; /* candidate fragments [bounds[i], bounds[i+1]) */
	cnt = calloc(nfr + 1, sizeof *cnt);
	if (!cnt)
		goto out;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (slice_cmp(t[i].begin, t[i].end) >= 0)
			continue;
		long bi = find_boundary(bounds, nb, t[i].begin), ei = find_boundary(bounds, nb, t[i].end);
		for (long j = bi; j < ei; j++)
			cnt[j]++;
		total += (size_t)(ei - bi);
	}
	size_t nf = 0, keybytes = 0;
	for (size_t j = 0; j < nfr; j++)
		if (cnt[j]) {
			nf++;
			keybytes += bounds[j].len + bounds[j + 1].len;
		}
	if (list_alloc(out, nf, total, keybytes))
		goto out;
	uint64_t *seqs = (uint64_t *)(out->frags + nf);
	char *kp = (char *)(seqs + total);
	/* Map candidate index -> output fragment, with seqno slots. */
	size_t f = 0, s = 0;
	long *slot = malloc((nfr + 1) * sizeof *slot);
	if (!slot) {
		rd_list_free(out);
		goto out;
	}
	for (size_t j = 0; j < nfr; j++) {
		slot[j] = -1;
		if (!cnt[j])
			continue;
		struct rd_frag *fr = &out->frags[f];
		memcpy(kp, bounds[j].data, bounds[j].len);
		fr->begin = slice_make(kp, bounds[j].len);
		kp += bounds[j].len;
		memcpy(kp, bounds[j + 1].data, bounds[j + 1].len);
		fr->end = slice_make(kp, bounds[j + 1].len);
		kp += bounds[j + 1].len;
		fr->seqs = seqs + s;
		fr->nseq = 0;
		slot[j] = (long)f;
		s += cnt[j];
		f++;
	}
	for (size_t i = 0; i < n; i++) {
		if (slice_cmp(t[i].begin, t[i].end) >= 0)
			continue;
		long bi = find_boundary(bounds, nb, t[i].begin), ei = find_boundary(bounds, nb, t[i].end);
		for (long j = bi; j < ei; j++) {
			struct rd_frag *fr = &out->frags[slot[j]];
			((uint64_t *)fr->seqs)[fr->nseq++] = t[i].seq;
		}
	}
	for (size_t j = 0; j < nf; j++) {
		struct rd_frag *fr = &out->frags[j];
		uint64_t *sq = (uint64_t *)fr->seqs;
		qsort(sq, fr->nseq, sizeof *sq, cmp_u64_desc);
		uint32_t k = 0;
		for (uint32_t i = 0; i < fr->nseq; i++)
			if (k == 0 || sq[k - 1] != sq[i])
				sq[k++] = sq[i];
		fr->nseq = k;
	}
	free(slot);
	rc = LSM_OK;
out:
	free(cnt);
	free(bounds);
	return rc;
}

void rd_list_free(struct rd_list *l)
{
	free(l->mem);
	memset(l, 0, sizeof *l);
}

long rd_list_find(const struct rd_list *l, struct slice key)
{
	/* Last fragment with begin <= key. */
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (slice_cmp(l->frags[mid].begin, key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	const struct rd_frag *f = &l->frags[lo - 1];
	return slice_cmp(key, f->end) < 0 ? (long)(lo - 1) : -1;
}

uint64_t rd_list_covering(const struct rd_list *l, struct slice key, uint64_t snap)
{
	if (l->n == 0)
		return 0;
	long i = rd_list_find(l, key);
	return i < 0 ? 0 : rd_frag_newest(&l->frags[i], snap);
}

void rd_cursor_seek(struct rd_cursor *c, struct slice key)
{
	/* First fragment whose end > key. */
	size_t lo = 0, hi = c->l->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (slice_cmp(c->l->frags[mid].end, key) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	c->i = lo;
}

uint64_t rd_cursor_covering(struct rd_cursor *c, struct slice key, uint64_t snap)
{
	const struct rd_list *l = c->l;
	while (c->i < l->n && slice_cmp(l->frags[c->i].end, key) <= 0)
		c->i++;
	if (c->i >= l->n || slice_cmp(l->frags[c->i].begin, key) > 0)
		return 0;
	return rd_frag_newest(&l->frags[c->i], snap);
}

/* ---------------------------------------------------------------- the memtable's mutable map */

/* Fragments live in a small single-threaded skiplist (the caller's lock makes it so) whose nodes are
 * mutable: inserting a tombstone splits at most two fragments and adds its seqno to the ones between,
 * O(log n + fragments covered). Fragment keys point into the raw tombstones' copies. */
#define RDM_MAX_H 16

struct rd_node {
	struct slice begin, end;
	uint64_t *seqs; /* descending */
	uint32_t nseq, cap;
	int height;
	struct rd_node *next[];
};

struct rd_map {
	struct rd_node *head;
	int height;
	uint64_t rnd;
	struct rd_tombstone *raw;
	size_t nraw, capraw;
	size_t nfrag;
};

static struct rd_node *rdn_new(int h)
{
	struct rd_node *n = calloc(1, sizeof *n + (size_t)h * sizeof(n->next[0]));
	if (n)
		n->height = h;
	return n;
}

static void rdn_free(struct rd_node *n)
{
	free(n->seqs);
	free(n);
}

struct rd_map *rd_map_new(void)
{
	struct rd_map *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->head = rdn_new(RDM_MAX_H);
	if (!m->head) {
		free(m);
		return NULL;
	}
	m->height = 1;
	m->rnd = 0x9E3779B97F4A7C15ULL;
	return m;
}

void rd_map_free(struct rd_map *m)
{
	if (!m)
		return;
	struct rd_node *x = m->head;
	while (x) {
		struct rd_node *n = x->next[0];
		rdn_free(x);
		x = n;
	}
	for (size_t i = 0; i < m->nraw; i++)
		free((void *)m->raw[i].begin.data);
	free(m->raw);
	free(m);
}

/* prev[i] = last node at level i with begin < key (or <= key when le). */
static struct rd_node *rdm_find(const struct rd_map *m, struct slice key, int le, struct rd_node **prev)
{
	struct rd_node *x = m->head;
	for (int i = m->height - 1; i >= 0; i--) {
		for (;;) {
			struct rd_node *n = x->next[i];
			if (!n)
				break;
			int c = slice_cmp(n->begin, key);
			if (c < 0 || (le && c == 0))
				x = n;
			else
				break;
		}
		if (prev)
			prev[i] = x;
	}
	return x == m->head ? NULL : x;
}

static int rdm_height(struct rd_map *m)
{
	uint64_t x = m->rnd;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	m->rnd = x;
	int h = 1;
	while (h < RDM_MAX_H && (x & 3) == 0) {
		h++;
		x >>= 2;
	}
	return h;
}

static int seqs_add(struct rd_node *n, uint64_t seq)
{
	for (uint32_t i = 0; i < n->nseq; i++)
		if (n->seqs[i] == seq)
			return LSM_OK;
	if (n->nseq == n->cap) {
		uint32_t cap = n->cap ? n->cap * 2 : 2;
		uint64_t *p = realloc(n->seqs, cap * sizeof *p);
		if (!p)
			return LSM_NOMEM;
		n->seqs = p;
		n->cap = cap;
	}
	uint32_t i = n->nseq++;
	while (i > 0 && n->seqs[i - 1] < seq) {
		n->seqs[i] = n->seqs[i - 1];
		i--;
	}
	n->seqs[i] = seq;
	return LSM_OK;
}

/* Insert a new fragment [b, e) holding the given seqnos. */
static struct rd_node *rdm_insert(struct rd_map *m, struct slice b, struct slice e, const uint64_t *seqs,
				  uint32_t nseq)
{
	struct rd_node *prev[RDM_MAX_H];
	rdm_find(m, b, 0, prev);
	int h = rdm_height(m);
	struct rd_node *n = rdn_new(h);
	if (!n)
		return NULL;
	n->begin = b;
	n->end = e;
	if (nseq) {
		n->seqs = malloc(nseq * sizeof *n->seqs);
		if (!n->seqs) {
			free(n);
			return NULL;
		}
		memcpy(n->seqs, seqs, nseq * sizeof *seqs);
		n->nseq = n->cap = nseq;
	}
	if (h > m->height) {
		for (int i = m->height; i < h; i++)
			prev[i] = m->head;
		m->height = h;
	}
	for (int i = 0; i < h; i++) {
		n->next[i] = prev[i]->next[i];
		prev[i]->next[i] = n;
	}
	m->nfrag++;
	return n;
}

/* Split the fragment containing key (begin < key < end) at key. */
static int rdm_split(struct rd_map *m, struct slice key)
{
	struct rd_node *f = rdm_find(m, key, 1, NULL);
	if (!f || slice_cmp(f->begin, key) >= 0 || slice_cmp(key, f->end) >= 0)
		return LSM_OK;
	struct slice end = f->end;
	if (!rdm_insert(m, key, end, f->seqs, f->nseq))
		return LSM_NOMEM;
	f->end = key;
	return LSM_OK;
}

int rd_map_add(struct rd_map *m, struct slice begin, struct slice end, uint64_t seq)
{
	if (m->nraw == m->capraw) {
		size_t cap = m->capraw ? m->capraw * 2 : 8;
		struct rd_tombstone *p = realloc(m->raw, cap * sizeof *p);
		if (!p)
			return LSM_NOMEM;
		m->raw = p;
		m->capraw = cap;
	}
	char *k = malloc(begin.len + end.len + 1);
	if (!k)
		return LSM_NOMEM;
	memcpy(k, begin.data, begin.len);
	memcpy(k + begin.len, end.data, end.len);
	struct rd_tombstone *t = &m->raw[m->nraw++];
	t->begin = slice_make(k, begin.len);
	t->end = slice_make(k + begin.len, end.len);
	t->seq = seq;
	if (slice_cmp(begin, end) >= 0)
		return LSM_OK; /* empty range: recorded (it is in the log) but hides nothing */
	struct slice b = t->begin, e = t->end;
	/* A failure below leaves the map with extra splits but the same meaning; the tombstone itself is
	 * then missing from the fragments, so report it: the caller treats NOMEM as fatal for the write. */
	if (rdm_split(m, b) || rdm_split(m, e))
		return LSM_NOMEM;
	struct slice cur = b;
	struct rd_node *prev[RDM_MAX_H];
	rdm_find(m, b, 0, prev);
	struct rd_node *x = prev[0]->next[0];
	while (x && slice_cmp(x->begin, e) < 0) {
		if (slice_cmp(cur, x->begin) < 0) {
			if (!rdm_insert(m, cur, x->begin, &seq, 1))
				return LSM_NOMEM;
		}
		if (seqs_add(x, seq))
			return LSM_NOMEM;
		cur = x->end;
		x = x->next[0];
	}
	if (slice_cmp(cur, e) < 0 && !rdm_insert(m, cur, e, &seq, 1))
		return LSM_NOMEM;
	return LSM_OK;
}

uint64_t rd_map_covering(const struct rd_map *m, struct slice key, uint64_t snap)
{
	struct rd_node *f = rdm_find(m, key, 1, NULL);
	if (!f || slice_cmp(key, f->end) >= 0)
		return 0;
	for (uint32_t i = 0; i < f->nseq; i++)
		if (f->seqs[i] <= snap)
			return f->seqs[i];
	return 0;
}

size_t rd_map_count(const struct rd_map *m)
{
	return m->nraw;
}

const struct rd_tombstone *rd_map_raw(const struct rd_map *m)
{
	return m->raw;
}

int rd_map_snapshot(const struct rd_map *m, struct slice lo, struct slice hi, struct rd_list *out)
{
	memset(out, 0, sizeof *out);
	struct rd_node *first = NULL;
	if (lo.data) {
		first = rdm_find(m, lo, 1, NULL);
		if (!first || slice_cmp(lo, first->end) >= 0)
			first = first ? first->next[0] : m->head->next[0];
	} else {
		first = m->head->next[0];
	}
	size_t nf = 0, nseq = 0, kb = 0;
	for (struct rd_node *x = first; x && (!hi.data || slice_cmp(x->begin, hi) < 0); x = x->next[0]) {
		nf++;
		nseq += x->nseq;
		kb += x->begin.len + x->end.len;
	}
	if (nf == 0)
		return LSM_OK;
	if (list_alloc(out, nf, nseq, kb))
		return LSM_NOMEM;
	uint64_t *seqs = (uint64_t *)(out->frags + nf);
	char *kp = (char *)(seqs + nseq);
	size_t f = 0;
	for (struct rd_node *x = first; f < nf; x = x->next[0], f++) {
		struct rd_frag *fr = &out->frags[f];
		memcpy(kp, x->begin.data, x->begin.len);
		fr->begin = slice_make(kp, x->begin.len);
		kp += x->begin.len;
		memcpy(kp, x->end.data, x->end.len);
		fr->end = slice_make(kp, x->end.len);
		kp += x->end.len;
		memcpy(seqs, x->seqs, x->nseq * sizeof *seqs);
		fr->seqs = seqs;
		fr->nseq = x->nseq;
		seqs += x->nseq;
	}
	return LSM_OK;
}
