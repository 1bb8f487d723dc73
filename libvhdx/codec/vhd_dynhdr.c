/*
 * vhd_dynhdr.c - the VHD dynamic disk header (VHD spec "Dynamic Disk
 * Header Format"; FORMAT.md 2.3) and its 8 parent locator entries (2.4):
 * decoding with every bound checked, encoding with the checksum filled in,
 * and decoding of the parent name and locator paths.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "codec/endian.h"
#include "codec/utf16.h"
#include "codec/vhd_codec.h"

int vhdx_vhd_dynhdr_decode(const uint8_t *buf, size_t len, unsigned flags, struct vhdx_vhd_dynhdr *h)
{
	memset(h, 0, sizeof *h);
	if (len < VHD_DYNHDR_SIZE)
		return vhdx_err(EBADMSG, "dynamic header: %zu bytes is too short", len);
	if (memcmp(buf, VHD_DYNHDR_COOKIE, 8) != 0)
		return vhdx_err(EBADMSG, "dynamic header: cookie is not \"cxsparse\"");
	h->data_offset = vhdx_get_be64(buf + 8);
	h->table_offset = vhdx_get_be64(buf + 16);
	h->version = vhdx_get_be32(buf + 24);
	h->max_table_entries = vhdx_get_be32(buf + 28);
	h->block_size = vhdx_get_be32(buf + 32);
	h->checksum = vhdx_get_be32(buf + VHD_DYNHDR_CHECKSUM_OFF);
	memcpy(h->parent_unique_id, buf + 40, 16);
	h->parent_timestamp = vhdx_get_be32(buf + 56);
	memcpy(h->parent_name, buf + VHD_DYNHDR_NAME_OFF, VHD_PARENT_NAME_LEN);
	for (unsigned i = 0; i < VHD_N_LOCATORS; i++) {
		const uint8_t *p = buf + VHD_DYNHDR_LOCATOR_OFF + VHD_LOCATOR_ENTRY_SIZE * i;
		struct vhdx_vhd_locator *e = &h->locators[i];
		e->code = vhdx_get_be32(p);
		e->data_space = vhdx_get_be32(p + 4);
		e->data_length = vhdx_get_be32(p + 8);
		e->reserved = vhdx_get_be32(p + 12);
		e->data_offset = vhdx_get_be64(p + 16);
	}

	h->checksum_computed = vhdx_vhd_checksum(buf, VHD_DYNHDR_SIZE, VHD_DYNHDR_CHECKSUM_OFF);
	h->checksum_valid = h->checksum_computed == h->checksum;
	if (!h->checksum_valid && !(flags & VHDX_VHD_DECODE_SALVAGE))
		return vhdx_err(EBADMSG, "dynamic header: checksum mismatch (stored 0x%08x, computed 0x%08x)",
				h->checksum, h->checksum_computed);
	if (h->version >> 16 != 1)
		return vhdx_err(ENOTSUP, "dynamic header: header version 0x%08x is not supported (expected 0x%08x)",
				h->version, VHD_VERSION_1);
	if (!vhdx_is_pow2(h->block_size) || h->block_size < VHD_MIN_BLOCK_SIZE ||
	    h->block_size > VHD_MAX_BLOCK_SIZE)
		return vhdx_err(EBADMSG, "dynamic header: block size %u is not a power of two from %u to %u",
				h->block_size, VHD_MIN_BLOCK_SIZE, VHD_MAX_BLOCK_SIZE);
	if (h->table_offset % VHD_SECTOR)
		return vhdx_err(EBADMSG, "dynamic header: table offset 0x%llx is not a multiple of 512",
				(unsigned long long)h->table_offset);
	return 0;
}

void vhdx_vhd_dynhdr_encode(const struct vhdx_vhd_dynhdr *h, uint8_t buf[VHD_DYNHDR_SIZE])
{
	memset(buf, 0, VHD_DYNHDR_SIZE);
	memcpy(buf, VHD_DYNHDR_COOKIE, 8);
	vhdx_put_be64(buf + 8, h->data_offset);
	vhdx_put_be64(buf + 16, h->table_offset);
	vhdx_put_be32(buf + 24, h->version);
	vhdx_put_be32(buf + 28, h->max_table_entries);
	vhdx_put_be32(buf + 32, h->block_size);
	memcpy(buf + 40, h->parent_unique_id, 16);
	vhdx_put_be32(buf + 56, h->parent_timestamp);
	memcpy(buf + VHD_DYNHDR_NAME_OFF, h->parent_name, VHD_PARENT_NAME_LEN);
	for (unsigned i = 0; i < VHD_N_LOCATORS; i++) {
		uint8_t *p = buf + VHD_DYNHDR_LOCATOR_OFF + VHD_LOCATOR_ENTRY_SIZE * i;
		const struct vhdx_vhd_locator *e = &h->locators[i];
		vhdx_put_be32(p, e->code);
		vhdx_put_be32(p + 4, e->data_space);
		vhdx_put_be32(p + 8, e->data_length);
		vhdx_put_be32(p + 12, e->reserved);
		vhdx_put_be64(p + 16, e->data_offset);
	}
	vhdx_put_be32(buf + VHD_DYNHDR_CHECKSUM_OFF, vhdx_vhd_checksum(buf, VHD_DYNHDR_SIZE, VHD_DYNHDR_CHECKSUM_OFF));
}

int vhdx_vhd_dynhdr_check_size(const struct vhdx_vhd_dynhdr *h, uint64_t current_size)
{
	uint64_t need = vhdx_div_round_up(current_size, h->block_size);

	if (need > h->max_table_entries)
		return vhdx_err(EBADMSG, "dynamic header: max table entries %u cannot cover the current size %llu with %u-byte blocks (%llu entries needed)",
				h->max_table_entries, (unsigned long long)current_size, h->block_size,
				(unsigned long long)need);
	return 0;
}

int vhdx_vhd_parent_name(const struct vhdx_vhd_dynhdr *h, char **out)
{
	int ret = vhdx_utf16_to_utf8(h->parent_name, VHD_PARENT_NAME_LEN, true, true, out);

	if (ret == -EINVAL)
		return vhdx_err(EBADMSG, "dynamic header: the parent Unicode name is not valid UTF-16BE");
	if (ret < 0)
		return vhdx_err(-ret, "out of memory");
	return 0;
}

int vhdx_vhd_locator_check(const struct vhdx_vhd_dynhdr *h, unsigned idx, uint64_t data_end)
{
	const struct vhdx_vhd_locator *e = &h->locators[idx];
	char cc[5];

	if (e->code == VHD_PLAT_NONE)
		return 0;
	vhdx_vhd_fourcc(e->code, cc);
	if (e->data_length > VHD_LOCATOR_MAX_LEN)
		return vhdx_err(EBADMSG, "parent locator entry %u (%s): data length %u is larger than %u", idx, cc,
				e->data_length, VHD_LOCATOR_MAX_LEN);
	if (e->data_length && !vhdx_range_ok(e->data_offset, e->data_length, data_end))
		return vhdx_err(EBADMSG, "parent locator entry %u (%s): data at 0x%llx (+%u bytes) lies outside the file's data area (0x%llx bytes)",
				idx, cc, (unsigned long long)e->data_offset, e->data_length,
				(unsigned long long)data_end);
	return 0;
}

/* Single-byte text (ASCII or an ANSI code page we cannot know: Latin-1) to UTF-8. */
static int bytes_to_utf8(const uint8_t *data, size_t len, char **out)
{
	size_t n = 0, o = 0;
	char *s;

	while (n < len && data[n])
		n++;
	s = malloc(2 * n + 1);
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (data[i] < 0x80) {
			s[o++] = (char)data[i];
		} else {
			s[o++] = (char)(0xC0 | (data[i] >> 6));
			s[o++] = (char)(0x80 | (data[i] & 0x3F));
		}
	}
	s[o] = '\0';
	*out = s;
	return 0;
}

/* Copies UTF-8 up to the first NUL after checking that it is well formed. */
static int utf8_copy(const uint8_t *data, size_t len, char **out)
{
	size_t n = 0;
	char *s;

	while (n < len && data[n])
		n++;
	for (size_t i = 0; i < n;) {
		uint8_t c = data[i];
		size_t k = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 4;
		if (k == 4 || (k == 1 && c < 0xC2) || i + k >= n)
			return -EBADMSG;
		for (size_t j = 1; j <= k; j++)
			if ((data[i + j] & 0xC0) != 0x80)
				return -EBADMSG;
		i += k + 1;
	}
	s = malloc(n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, data, n);
	s[n] = '\0';
	*out = s;
	return 0;
}

int vhdx_vhd_locator_path(uint32_t code, const uint8_t *data, size_t len, char **out)
{
	int ret;

	switch (code) {
	case VHD_PLAT_W2RU:
	case VHD_PLAT_W2KU:
		/* an odd trailing byte cannot be part of a UTF-16 path: ignore it */
		ret = vhdx_utf16_to_utf8(data, len & ~(size_t)1, false, true, out);
		return ret == -EINVAL ? -EBADMSG : ret;
	case VHD_PLAT_WI2R:
	case VHD_PLAT_WI2K:
		return bytes_to_utf8(data, len, out);
	case VHD_PLAT_MACX:
		return utf8_copy(data, len, out);
	default:
		return -ENOTSUP;
	}
}
