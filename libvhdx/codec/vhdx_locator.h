/*
 * vhdx_locator.h - the VHDX parent locator item (MS-VHDX 2.6.2.6):
 *
 *   0 16 LocatorType (B04AEFB7-D19E-4A81-B789-25B8E9445913)
 *  16  2 reserved    18 2 KeyValueCount
 *  20    KeyValueCount entries of 12 bytes:
 *        0 4 KeyOffset  4 4 ValueOffset (from the start of the item)
 *        8 2 KeyLength 10 2 ValueLength (bytes of UTF-16LE, no NUL)
 */
#ifndef VHDX_CODEC_LOCATOR_H
#define VHDX_CODEC_LOCATOR_H

#include <stddef.h>
#include <stdint.h>

#include "codec/parent_ref.h"

#define VHDX_LOCATOR_MAX_ENTRIES 256

/**
 * Decodes the locator item BUF[0..LEN) into *REF: parent_linkage (required),
 * parent_linkage2, and the paths in resolution order (relative_path,
 * volume_path, absolute_win32_path).  Every bound is checked; an error names
 * the entry and the offset inside the item.  0 or -EBADMSG/-ENOTSUP.
 */
int vhdx_locator_decode(const uint8_t *buf, size_t len, struct vhdx_parent_ref *ref);

/** One raw key/value pair, for `vhdx info` (all of them, in stored order). */
struct vhdx_locator_kv {
	char *key, *value;
};
/** Decodes every pair of the item; *KV (n entries) is freed with vhdx_locator_kv_free. */
int vhdx_locator_list(const uint8_t *buf, size_t len, struct vhdx_locator_kv **kv, size_t *n);
void vhdx_locator_kv_free(struct vhdx_locator_kv *kv, size_t n);

/**
 * Encodes KEYS[i] = VALUES[i] (UTF-8, N pairs) as a locator item in a new
 * buffer *OUT of *OUTLEN bytes.  0, -EINVAL or -ENOMEM.
 */
int vhdx_locator_encode(const char *const *keys, const char *const *values, size_t n, uint8_t **out,
			size_t *outlen);

#endif
