/*
 * crc32.h - CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the
 * checksum of GPT headers and partition entry arrays (UEFI 2.x, 5.3.2).
 * Not to be confused with CRC-32C (crc32c.h), which VHDX uses.
 */
#ifndef VHDX_CODEC_CRC32_H
#define VHDX_CODEC_CRC32_H

#include <stddef.h>
#include <stdint.h>

/** Continues a CRC-32: pass 0 to start; returns the finished value (pre/post inversion included). */
uint32_t vhdx_crc32(uint32_t crc, const void *buf, size_t len);

/**
 * Fills T with the one-byte-a-step table of the reflected polynomial POLY
 * (shared with CRC-32C, whose slicing tables start from it).
 */
void vhdx_crc_table_fill(uint32_t poly, uint32_t t[256]);

#endif
