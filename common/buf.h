/*
 * buf.h - small buffer helpers (buf.c) shared by the library's formats and
 * write paths and by the tools (convert's sparse copy); compiled into both,
 * not API.  The library also declares them in its internal header.
 */
#ifndef VHDX_COMMON_BUF_H
#define VHDX_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>

/** True when the LEN bytes at P are all zero (the write paths and convert skip such data). */
bool vhdx_buf_is_zero(const void *p, size_t len);

/** qsort comparator of uint64_t values, ascending. */
int vhdx_cmp_u64(const void *a, const void *b);

#endif
