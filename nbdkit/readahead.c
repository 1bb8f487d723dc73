/*
 * readahead.c - the vhdx filter's shared chunk cache (readahead.h).
 *
 * Slots hold aligned chunks of the source.  A slot being filled is LOADING:
 * readers of that chunk wait for it instead of fetching it again; a fill
 * that fails leaves the slot EMPTY and each waiter then fetches for itself
 * (and gets its own error message).  Copies out of a slot happen under the
 * lock, so a slot is never refilled while it is read.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "readahead.h"

#define RA_ENDS 8 /* recent read ends: a read near one of them continues a stream */

enum slot_state { SLOT_EMPTY, SLOT_LOADING, SLOT_READY };

struct ra_slot {
	enum slot_state state;
	uint64_t off;   /* of the chunk in the source */
	size_t len;     /* bytes held (the last chunk may be short) */
	uint64_t used;  /* tick of the last use, for eviction */
	uint8_t *data;
};

struct ra_cache {
	pthread_mutex_t lock;
	pthread_cond_t filled;
	uint32_t chunk;
	uint64_t size, tick;
	uint64_t ends[RA_ENDS];
	unsigned next_end;
	ra_fetch_fn fetch;
	void *ctx;
	unsigned n_slots;
	struct ra_slot slots[];
};

struct ra_cache *ra_new(unsigned slots, uint32_t chunk, uint64_t size, ra_fetch_fn fetch, void *ctx)
{
	struct ra_cache *c = calloc(1, sizeof *c + slots * sizeof c->slots[0]);

	if (!c)
		return NULL;
	for (unsigned i = 0; i < slots; i++) {
		c->slots[i].data = malloc(chunk);
		if (!c->slots[i].data) {
			c->n_slots = i;
			ra_free(c);
			return NULL;
		}
	}
	c->n_slots = slots;
	c->chunk = chunk;
	c->size = size;
	c->fetch = fetch;
	c->ctx = ctx;
	for (unsigned i = 0; i < RA_ENDS; i++)
		c->ends[i] = UINT64_MAX;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->filled, NULL);
	return c;
}

void ra_free(struct ra_cache *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->n_slots; i++)
		free(c->slots[i].data);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->filled);
	free(c);
}

/* Caller holds the lock.  True when OFF lies within a chunk of where a recent read ended. */
static bool continues_stream(const struct ra_cache *c, uint64_t off)
{
	for (unsigned i = 0; i < RA_ENDS; i++) {
		uint64_t e = c->ends[i];

		if (e != UINT64_MAX && (off >= e ? off - e : e - off) <= c->chunk)
			return true;
	}
	return false;
}

/* Caller holds the lock: the slot holding the chunk at BASE, or NULL. */
static struct ra_slot *find(struct ra_cache *c, uint64_t base)
{
	for (unsigned i = 0; i < c->n_slots; i++)
		if (c->slots[i].state != SLOT_EMPTY && c->slots[i].off == base)
			return &c->slots[i];
	return NULL;
}

/* Caller holds the lock: the least recently used slot that is not being filled, or NULL. */
static struct ra_slot *victim(struct ra_cache *c)
{
	struct ra_slot *v = NULL;

	for (unsigned i = 0; i < c->n_slots; i++) {
		struct ra_slot *s = &c->slots[i];

		if (s->state == SLOT_LOADING)
			continue;
		if (!v || s->state == SLOT_EMPTY || (v->state != SLOT_EMPTY && s->used < v->used))
			v = s;
		if (v->state == SLOT_EMPTY)
			break;
	}
	return v;
}

/* Fills S with the chunk at its offset (lock not held); 0 or FETCH's negative value. */
static ssize_t fill(struct ra_cache *c, struct ra_slot *s, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = c->fetch(c->ctx, s->data + done, len - done, s->off + done);

		if (r < 0)
			return r;
		if (r == 0)
			return -EIO; /* the source ended before the size it gave */
		done += (size_t)r;
	}
	return 0;
}

/* Caller holds the lock: copies what S holds of [OFF, OFF+LEN) into BUF; the bytes copied. */
static size_t copy_out(struct ra_cache *c, struct ra_slot *s, void *buf, size_t len, uint64_t off)
{
	size_t n = s->len - (size_t)(off - s->off);

	if (n > len)
		n = len;
	memcpy(buf, s->data + (off - s->off), n);
	s->used = ++c->tick;
	c->ends[c->next_end++ % RA_ENDS] = off + n;
	return n;
}

ssize_t ra_read(struct ra_cache *c, void *buf, size_t len, uint64_t off)
{
	uint64_t base = off & ~(uint64_t)(c->chunk - 1);
	struct ra_slot *s;
	size_t clen;
	ssize_t r;

	if (off >= c->size || len == 0)
		return 0;
	if (len >= c->chunk)
		return c->fetch(c->ctx, buf, len, off); /* large reads gain nothing from a copy */
	clen = c->size - base < c->chunk ? (size_t)(c->size - base) : c->chunk;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		s = find(c, base);
		if (!s || s->state == SLOT_READY)
			break;
		pthread_cond_wait(&c->filled, &c->lock);
	}
	if (s) {
		r = (ssize_t)copy_out(c, s, buf, len, off);
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	s = continues_stream(c, off) ? victim(c) : NULL;
	c->ends[c->next_end++ % RA_ENDS] = off + len;
	if (!s) {
		/* random I/O (or every slot busy): exactly what was asked, not cached */
		pthread_mutex_unlock(&c->lock);
		return c->fetch(c->ctx, buf, len, off);
	}
	s->state = SLOT_LOADING;
	s->off = base;
	s->len = clen;
	pthread_mutex_unlock(&c->lock);

	r = fill(c, s, clen);

	pthread_mutex_lock(&c->lock);
	s->state = r < 0 ? SLOT_EMPTY : SLOT_READY;
	pthread_cond_broadcast(&c->filled);
	if (r >= 0)
		r = (ssize_t)copy_out(c, s, buf, len, off);
	pthread_mutex_unlock(&c->lock);
	return r;
}
