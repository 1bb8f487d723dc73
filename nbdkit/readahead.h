/*
 * readahead.h - a small shared cache of the plugin below for the vhdx
 * filter (vhdx_filter.c): a request to a remote plugin (curl: one HTTP
 * request each) costs far more than its bytes, and the VHDX reader asks
 * for what the client asked (nbdcopy: 256 KiB at a time, spread over four
 * connections).  A read that continues a recent one fetches the whole
 * aligned chunk around it once, and the reads after it are served from
 * memory; a read that continues nothing (random I/O) goes through as it
 * is, so random reads are not amplified.  Only for a source that does not
 * change under it (a read-only image).
 */
#ifndef VHDX_NBDKIT_READAHEAD_H
#define VHDX_NBDKIT_READAHEAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ra_cache;

/*
 * Reads LEN bytes at OFF of the source into BUF: the number read (short
 * only at the end of the source), or a negative value (the caller's error,
 * with its message already set).
 */
typedef ssize_t (*ra_fetch_fn)(void *ctx, void *buf, size_t len, uint64_t off);

/* A cache of SLOTS chunks of CHUNK bytes (a power of two) over a source of SIZE bytes; NULL without memory. */
struct ra_cache *ra_new(unsigned slots, uint32_t chunk, uint64_t size, ra_fetch_fn fetch, void *ctx);
void ra_free(struct ra_cache *c);

/* Like FETCH (thread-safe): bytes read, at most LEN, 0 at or past the end, or FETCH's negative value. */
ssize_t ra_read(struct ra_cache *c, void *buf, size_t len, uint64_t off);

#endif
