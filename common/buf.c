/*
 * buf.c - small buffer helpers shared by the formats, the write paths and the
 * tools (common/buf.h): compiled into the library and into the tools.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "common/buf.h"

bool vhdx_buf_is_zero(const void *buf, size_t len)
{
	static const uint8_t zero[4096];
	const uint8_t *p = buf;

	/* memcmp against a zero page runs at memory speed, unlike a byte loop */
	while (len >= sizeof zero) {
		if (memcmp(p, zero, sizeof zero))
			return false;
		p += sizeof zero;
		len -= sizeof zero;
	}
	return memcmp(p, zero, len) == 0;
}

int vhdx_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}
