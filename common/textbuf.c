/*
 * textbuf.c - see textbuf.h.  vsnprintf measures first, so the buffer
 * grows once to the size a line needs.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/grow.h"
#include "common/textbuf.h"

void vhdx_textbuf_printf(struct vhdx_textbuf *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if (t->p && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		if (grow(&t->p, &t->cap, t->len + (size_t)n + 1, 1, 256) < 0) {
			t->failed = true;
			return;
		}
		t->p[t->len] = '\0';
	}
}
