/*
 * vhd_footer.c - the VHD footer (VHD spec "Hard Disk Footer Format";
 * FORMAT.md 2.2), the one's-complement checksum (2.6), the CHS geometry
 * rule of the spec's appendix (2.7), sector bitmap arithmetic and bit
 * setting (2.5) and the id/fourcc helpers shared by the footer and the
 * dynamic header.
 */
#include "config.h"

#include <string.h>

#include "base/base.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhd_codec.h"

uint32_t vhdx_vhd_checksum(const uint8_t *buf, size_t len, size_t skip_off)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++) {
		if (i >= skip_off && i < skip_off + 4)
			continue;
		sum += buf[i];
	}
	return ~sum;
}

void vhdx_vhd_fourcc(uint32_t code, char out[5])
{
	for (int i = 0; i < 4; i++) {
		unsigned char c = (unsigned char)(code >> (24 - 8 * i));
		out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : (c == 0 ? ' ' : '?');
	}
	out[4] = '\0';
}

static const char *type_name(uint32_t t)
{
	switch (t) {
	case VHD_TYPE_NONE: return "none";
	case 1: return "reserved, deprecated";
	case VHD_TYPE_FIXED: return "fixed";
	case VHD_TYPE_DYNAMIC: return "dynamic";
	case VHD_TYPE_DIFFERENCING: return "differencing";
	case 5:
	case 6: return "reserved, deprecated";
	default: return "unknown";
	}
}

int vhdx_vhd_footer_decode(const uint8_t *buf, size_t len, unsigned flags, struct vhdx_vhd_footer *f)
{
	memset(f, 0, sizeof *f);
	if (len < VHD_FOOTER_SIZE)
		return vhdx_err(EBADMSG, "footer: %zu bytes is too short", len);
	if (memcmp(buf, VHD_FOOTER_COOKIE, 8) != 0)
		return vhdx_err(EBADMSG, "footer: cookie is not \"conectix\"");
	f->features = vhdx_get_be32(buf + 8);
	f->version = vhdx_get_be32(buf + 12);
	f->data_offset = vhdx_get_be64(buf + 16);
	f->timestamp = vhdx_get_be32(buf + 24);
	memcpy(f->creator_app, buf + 28, 4);
	f->creator_version = vhdx_get_be32(buf + 32);
	f->creator_os = vhdx_get_be32(buf + 36);
	f->original_size = vhdx_get_be64(buf + 40);
	f->current_size = vhdx_get_be64(buf + 48);
	f->cylinders = vhdx_get_be16(buf + 56);
	f->heads = buf[58];
	f->sectors_per_track = buf[59];
	f->disk_type = vhdx_get_be32(buf + 60);
	f->checksum = vhdx_get_be32(buf + VHD_FOOTER_CHECKSUM_OFF);
	memcpy(f->unique_id, buf + 68, 16);
	f->saved_state = buf[84];
	for (size_t i = 85; i < VHD_FOOTER_SIZE; i++)
		f->reserved_nonzero |= buf[i] != 0;

	/* The checksum comes before every field check: a field is only
	 * meaningful once the bytes are known to be what was written. */
	f->checksum_computed = vhdx_vhd_checksum(buf, VHD_FOOTER_SIZE, VHD_FOOTER_CHECKSUM_OFF);
	f->checksum_valid = f->checksum_computed == f->checksum;
	if (!f->checksum_valid && !(flags & VHDX_VHD_DECODE_SALVAGE))
		return vhdx_err(EBADMSG, "footer: checksum mismatch (stored 0x%08x, computed 0x%08x)", f->checksum,
				f->checksum_computed);
	if (f->version >> 16 != 1)
		return vhdx_err(ENOTSUP, "footer: file format version 0x%08x is not supported (expected 0x%08x)",
				f->version, VHD_VERSION_1);
	if (f->disk_type != VHD_TYPE_FIXED && f->disk_type != VHD_TYPE_DYNAMIC &&
	    f->disk_type != VHD_TYPE_DIFFERENCING)
		return vhdx_err(ENOTSUP, "footer: disk type %u (%s) is not supported (only 2 fixed, 3 dynamic, 4 differencing)",
				f->disk_type, type_name(f->disk_type));
	if (f->current_size % VHD_SECTOR)
		return vhdx_err(EBADMSG, "footer: current size %llu is not a multiple of 512",
				(unsigned long long)f->current_size);
	if (f->disk_type != VHD_TYPE_FIXED && (f->data_offset % VHD_SECTOR || f->data_offset == UINT64_MAX))
		return vhdx_err(EBADMSG, "footer: data offset 0x%llx of a %s disk is not a 512-byte aligned offset",
				(unsigned long long)f->data_offset, type_name(f->disk_type));
	return 0;
}

void vhdx_vhd_footer_encode(const struct vhdx_vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE])
{
	memset(buf, 0, VHD_FOOTER_SIZE);
	memcpy(buf, VHD_FOOTER_COOKIE, 8);
	vhdx_put_be32(buf + 8, f->features);
	vhdx_put_be32(buf + 12, f->version);
	vhdx_put_be64(buf + 16, f->data_offset);
	vhdx_put_be32(buf + 24, f->timestamp);
	memcpy(buf + 28, f->creator_app, 4);
	vhdx_put_be32(buf + 32, f->creator_version);
	vhdx_put_be32(buf + 36, f->creator_os);
	vhdx_put_be64(buf + 40, f->original_size);
	vhdx_put_be64(buf + 48, f->current_size);
	vhdx_put_be16(buf + 56, f->cylinders);
	buf[58] = f->heads;
	buf[59] = f->sectors_per_track;
	vhdx_put_be32(buf + 60, f->disk_type);
	memcpy(buf + 68, f->unique_id, 16);
	buf[84] = f->saved_state;
	vhdx_put_be32(buf + VHD_FOOTER_CHECKSUM_OFF, vhdx_vhd_checksum(buf, VHD_FOOTER_SIZE, VHD_FOOTER_CHECKSUM_OFF));
}

void vhdx_vhd_chs_calc(uint64_t size, struct vhdx_vhd_chs *out)
{
	uint64_t total = size / VHD_SECTOR;
	uint64_t spt, heads, cyl_heads;

	if (total > 65535ull * 16 * 255)
		total = 65535ull * 16 * 255;
	if (total >= 65535ull * 16 * 63) {
		spt = 255;
		heads = 16;
		cyl_heads = total / spt;
	} else {
		spt = 17;
		cyl_heads = total / spt;
		heads = (cyl_heads + 1023) / 1024;
		if (heads < 4)
			heads = 4;
		if (cyl_heads >= heads * 1024 || heads > 16) {
			spt = 31;
			heads = 16;
			cyl_heads = total / spt;
		}
		if (cyl_heads >= heads * 1024) {
			spt = 63;
			heads = 16;
			cyl_heads = total / spt;
		}
	}
	out->cylinders = (uint16_t)(cyl_heads / heads);
	out->heads = (uint8_t)heads;
	out->sectors_per_track = (uint8_t)spt;
}

uint64_t vhdx_vhd_chs_size(uint16_t cylinders, uint8_t heads, uint8_t sectors_per_track)
{
	return (uint64_t)cylinders * heads * sectors_per_track * VHD_SECTOR;
}

uint32_t vhdx_vhd_bitmap_size(uint32_t block_size)
{
	uint64_t bytes = vhdx_div_round_up(vhdx_div_round_up(block_size, VHD_SECTOR), 8);

	return (uint32_t)vhdx_round_up(bytes, VHD_SECTOR);
}

uint64_t vhdx_vhd_bitmap_run(const uint8_t *bm, uint64_t first, uint64_t limit, bool *value)
{
	bool v = vhdx_vhd_bitmap_bit(bm, first);
	uint64_t i = first + 1;

	*value = v;
	/* finish the current byte bit by bit, then skip whole bytes of 0x00 / 0xff */
	while (i < limit && (i & 7)) {
		if (vhdx_vhd_bitmap_bit(bm, i) != v)
			return i - first;
		i++;
	}
	while (i + 8 <= limit && bm[i >> 3] == (v ? 0xff : 0x00))
		i += 8;
	while (i < limit && vhdx_vhd_bitmap_bit(bm, i) == v)
		i++;
	return i - first;
}

bool vhdx_vhd_bitmap_set(uint8_t *bm, uint64_t first, uint64_t n)
{
	uint64_t i = first, end = first + n;
	bool changed = false;

	/* leading bits up to a byte boundary, whole bytes, trailing bits */
	while (i < end && (i & 7)) {
		uint8_t m = (uint8_t)(0x80u >> (i & 7));
		changed |= !(bm[i >> 3] & m);
		bm[i >> 3] |= m;
		i++;
	}
	while (i + 8 <= end) {
		changed |= bm[i >> 3] != 0xff;
		bm[i >> 3] = 0xff;
		i += 8;
	}
	while (i < end) {
		uint8_t m = (uint8_t)(0x80u >> (i & 7));
		changed |= !(bm[i >> 3] & m);
		bm[i >> 3] |= m;
		i++;
	}
	return changed;
}

void vhdx_vhd_uuid_to_guid(const uint8_t uuid[16], uint8_t guid[16])
{
	vhdx_guid_swap_order(uuid, guid);
}
