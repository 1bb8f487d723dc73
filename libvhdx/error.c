/*
 * error.c - the per-thread error message behind vhdx_errmsg().  Messages are
 * thread-local so that a multi-threaded FUSE loop or nbdkit plugin can report
 * each request's failure without locking (the libnbd convention).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ERRMSG_MAX 4096

static _Thread_local char errmsg[ERRMSG_MAX];

static int verr(int err, const char *fmt, va_list ap)
{
	vsnprintf(errmsg, sizeof errmsg, fmt, ap);
	return -err;
}

int vhdx_err(int err, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = verr(err, fmt, ap);
	va_end(ap);
	return ret;
}

/* Appends SRC to DST (of capacity ERRMSG_MAX) at *LEN, truncating. */
static void append(char *dst, size_t *len, const char *src)
{
	while (*src && *len + 1 < ERRMSG_MAX)
		dst[(*len)++] = *src++;
	dst[*len] = '\0';
}

int vhdx_err_prefix(int ret, const char *fmt, ...)
{
	char msg[ERRMSG_MAX];
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	len = strlen(msg);
	append(msg, &len, ": ");
	append(msg, &len, errmsg[0] ? errmsg : strerror(ret < 0 ? -ret : ret));
	memcpy(errmsg, msg, len + 1);
	return ret;
}

int vhdx_set_errmsg(int err, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = verr(err, fmt, ap);
	va_end(ap);
	return ret;
}

void vhdx_err_clear(void)
{
	errmsg[0] = '\0';
}

char *vhdx_err_dup(void)
{
	return errmsg[0] ? strdup(errmsg) : NULL;
}

const char *vhdx_errmsg(void)
{
	return errmsg;
}

void *vhdx_calloc(size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total))
		return NULL;
	return calloc(n ? n : 1, size ? size : 1);
}
