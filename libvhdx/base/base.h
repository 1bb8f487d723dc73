/*
 * base.h - what every layer of the library stands on, the codecs (L1) and
 * the I/O stack (L0) included: error recording (a thread-local message
 * plus -errno; error.c), overflow-checked arithmetic, and small buffer
 * helpers (buf.c).  Nothing here does I/O, and nothing here names a layer
 * above, so a codec includes this and never the root headers.
 */
#ifndef VHDX_BASE_H
#define VHDX_BASE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "port/compat.h"

#define VHDX_KiB (1024ull)
#define VHDX_MiB (1024ull * 1024)
#define VHDX_GiB (1024ull * 1024 * 1024)
#define VHDX_TiB (1024ull * 1024 * 1024 * 1024)

#define VHDX_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VHDX_MAX(a, b) ((a) > (b) ? (a) : (b))
#define VHDX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define VHDX_PRINTF(f, a) __attribute__((format(VHDX_PRINTF_ARCHETYPE, f, a)))
#else
#define VHDX_PRINTF(f, a)
#endif

/**
 * Records a message for the calling thread (see vhdx_errmsg()) and returns
 * -ERR, so that `return vhdx_err(EBADMSG, "...")` is the idiom.  ERR must be
 * a positive errno value.
 */
int vhdx_err(int err, const char *fmt, ...) VHDX_PRINTF(2, 3);

/**
 * Puts "PREFIX: " in front of the calling thread's current message and
 * returns RET unchanged (a negative errno).  Used by upper layers to add
 * context ("layer 2 (base.vhdx)") without losing the lower layer's detail.
 */
int vhdx_err_prefix(int ret, const char *fmt, ...) VHDX_PRINTF(2, 3);

/** Clears the calling thread's message. */
void vhdx_err_clear(void);

/** Copies the calling thread's message into a newly allocated string (or NULL). */
char *vhdx_err_dup(void);

/* Overflow-checked arithmetic: return true on overflow. */
static inline bool vhdx_add_ovf(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_add_overflow(a, b, r);
}
static inline bool vhdx_mul_ovf(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_mul_overflow(a, b, r);
}

/** True when [off, off+len) lies inside [0, limit) without overflow. */
static inline bool vhdx_range_ok(uint64_t off, uint64_t len, uint64_t limit)
{
	uint64_t end;
	return !vhdx_add_ovf(off, len, &end) && end <= limit;
}

/** True when the ranges [a, a+alen) and [b, b+blen) intersect (no overflow assumed). */
static inline bool vhdx_ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

static inline bool vhdx_is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static inline uint64_t vhdx_div_round_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static inline uint64_t vhdx_round_up(uint64_t a, uint64_t b)
{
	return vhdx_div_round_up(a, b) * b;
}

/** True when the LEN bytes at P are all zero (the write paths and convert skip such data). */
bool vhdx_buf_is_zero(const void *p, size_t len);

/** qsort comparator of uint64_t values, ascending. */
int vhdx_cmp_u64(const void *a, const void *b);

/** calloc that treats n*size overflow as failure. */
void *vhdx_calloc(size_t n, size_t size);

/** The calling thread's message (also declared, exported, in libvhdx.h). */
const char *vhdx_errmsg(void);

#endif /* VHDX_BASE_H */
