/*
 * api_struct.c - copying the versioned option and result structs of the
 * public API (first member `size_t struct_size`) between the caller's size
 * and ours, so that programs built against older headers keep working.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "base/base.h"
#include "base/struct_copy.h"

int vhdx_struct_copy_in(void *out, size_t out_size, const void *in, size_t min_size, const char *fn, const char *what)
{
	size_t in_size;

	if (!in)
		return 0;
	memcpy(&in_size, in, sizeof in_size);
	if (in_size < VHDX_MAX(min_size, sizeof(size_t)))
		return vhdx_err(EINVAL, "%s: %s struct_size %zu is too small", fn, what, in_size);
	memcpy(out, in, VHDX_MIN(in_size, out_size));
	/* OUT now holds every member of our version: the caller's, then the defaults */
	memcpy(out, &out_size, sizeof out_size);
	return 0;
}

int vhdx_options_in(void *out, size_t out_size, const void *in, size_t min_size, const char *fn)
{
	memset(out, 0, out_size);
	memcpy(out, &out_size, sizeof out_size);
	return vhdx_struct_copy_in(out, out_size, in, min_size, fn, "options");
}

void vhdx_struct_copy_out(void *dst, const void *src, size_t src_size)
{
	size_t dst_size, n;

	if (!dst)
		return;
	memcpy(&dst_size, dst, sizeof dst_size);
	n = VHDX_MIN(dst_size, src_size);
	if (n > sizeof(size_t))
		memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t), n - sizeof(size_t));
}
