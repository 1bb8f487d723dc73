/*
 * crc32.c - table-driven CRC-32 (IEEE), reflected polynomial 0xEDB88320,
 * one byte a step: GPT checksums cover at most a few hundred KiB, read once
 * per open, so the simple loop is plenty.
 */
#include "config.h"

#include <pthread.h>

#include "codec/crc32.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

void vhdx_crc_table_fill(uint32_t poly, uint32_t t[256])
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (poly & (0u - (c & 1)));
		t[i] = c;
	}
}

static void table_init(void)
{
	vhdx_crc_table_fill(0xEDB88320u, table);
}

uint32_t vhdx_crc32(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = ~crc;

	pthread_once(&table_once, table_init);
	while (len--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}
