/*
 * crc_ref.h - a bit-at-a-time reflected CRC-32 for the tests, independent
 * of the library's table code: the tests compare the library's CRC-32C
 * (VHDX) and CRC-32 (GPT) against it.
 */
#ifndef VHDX_TESTS_CRC_REF_H
#define VHDX_TESTS_CRC_REF_H

#include <stddef.h>
#include <stdint.h>

#define CRC_REF_CASTAGNOLI 0x82f63b78u /* CRC-32C, reflected */
#define CRC_REF_IEEE 0xedb88320u       /* CRC-32 (IEEE 802.3), reflected */

/* The CRC of P[0..LEN) with the reflected polynomial POLY, initial value and final xor all ones. */
static inline uint32_t crc_ref(uint32_t poly, const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (poly & (0u - (c & 1)));
	}
	return ~c;
}

#endif /* VHDX_TESTS_CRC_REF_H */
