/*
 * guid.h - GUIDs kept as their 16 on-disk bytes (Microsoft mixed-endian:
 * Data1 u32 LE, Data2 u16 LE, Data3 u16 LE, Data4 8 raw bytes) and compared
 * as blobs.  Conversion to and from text happens only at the edges.
 */
#ifndef VHDX_CODEC_GUID_H
#define VHDX_CODEC_GUID_H

#include <stdbool.h>
#include <stdint.h>

#define VHDX_GUID_STRLEN 37 /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" + NUL */

/** Formats the mixed-endian GUID G as lower-case text without braces. */
void vhdx_guid_format(const uint8_t g[16], char out[VHDX_GUID_STRLEN]);

/**
 * Parses text (with or without braces, any case) into on-disk bytes.
 * Returns 0, or -EINVAL (no message recorded) when S is not a GUID.
 */
int vhdx_guid_parse(const char *s, uint8_t g[16]);

/** Parses LEN characters of S (no NUL needed) like vhdx_guid_parse. */
int vhdx_guid_parse_n(const char *s, size_t len, uint8_t g[16]);

/**
 * Converts between the text (big-endian, RFC 4122) byte order and the
 * on-disk mixed-endian order; the swap is its own inverse.  IN and OUT may
 * be the same buffer.
 */
void vhdx_guid_swap_order(const uint8_t in[16], uint8_t out[16]);

bool vhdx_guid_is_zero(const uint8_t g[16]);

/** Fills G with a random version-4 GUID (from getrandom, urandom fallback). 0 or -errno. */
int vhdx_guid_generate(uint8_t g[16]);

#endif
