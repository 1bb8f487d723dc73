/*
 * textbuf.h - a growing text buffer written with printf (textbuf.c),
 * shared by the library (the fault engine's rule and event lists) and
 * vhdxfs (its .stats file); compiled into both, not API.
 */
#ifndef VHDX_COMMON_TEXTBUF_H
#define VHDX_COMMON_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "port/compat.h" /* VHDX_PRINTF_ARCHETYPE: printf, or mingw's gnu_printf */

/* Start from { 0 }.  P is NUL-terminated once anything was written; the caller frees it. */
struct vhdx_textbuf {
	char *p;
	size_t len, cap;
	bool failed; /* out of memory (or a bad format): later writes are ignored */
};

/** Appends FMT's text to T, growing it as needed; on failure T->failed is set. */
void vhdx_textbuf_printf(struct vhdx_textbuf *t, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(VHDX_PRINTF_ARCHETYPE, 2, 3)))
#endif
	;

#endif
