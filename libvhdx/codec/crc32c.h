/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of VHDX headers, region
 * tables and log entries (MS-VHDX 2.2.2 and 2.3.1.1).
 */
#ifndef VHDX_CODEC_CRC32C_H
#define VHDX_CODEC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/** Continues a CRC-32C: pass 0 to start; returns the finished value (pre/post inversion included). */
uint32_t vhdx_crc32c(uint32_t crc, const void *buf, size_t len);

/**
 * CRC-32C of a VHDX structure of LEN bytes whose own 4-byte checksum field
 * sits at byte offset 4: computed as if that field were zero.
 */
uint32_t vhdx_crc32c_struct(const uint8_t *buf, size_t len);

#endif
