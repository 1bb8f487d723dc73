/*
 * vhdx_region.c - the region table (MS-VHDX 2.2.3): where the BAT and the
 * metadata region live.
 */
#include "config.h"

#include <string.h>

#include "base/base.h"
#include "codec/crc32c.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_codec.h"

#define ENTRY_OFF(i) (16 + 32 * (size_t)(i))

int vhdx_region_table_decode(const uint8_t *buf, size_t len, struct vhdx_region_table *t)
{
	char gs[VHDX_GUID_STRLEN];
	int ret;

	t->entry_count = 0;
	ret = vhdx_checked_struct_open(buf, len, VHDX_REGION_SIZE, VHDX_REGION_SIG, "regi", "region table",
				       &t->checksum);
	if (ret < 0)
		return ret;
	t->entry_count = vhdx_get_le32(buf + 8);
	if (t->entry_count > VHDX_REGION_MAX_ENTRIES) {
		uint32_t n = t->entry_count;
		t->entry_count = 0;
		return vhdx_err(EBADMSG, "region table: entry count %u exceeds %u", n, VHDX_REGION_MAX_ENTRIES);
	}
	for (uint32_t i = 0; i < t->entry_count; i++) {
		const uint8_t *p = buf + ENTRY_OFF(i);
		struct vhdx_region_entry *e = &t->entries[i];
		uint32_t flags = vhdx_get_le32(p + 28);

		memcpy(e->guid, p, 16);
		e->file_offset = vhdx_get_le64(p + 16);
		e->length = vhdx_get_le32(p + 24);
		e->required = flags & 1;
		vhdx_guid_format(e->guid, gs);
		if (e->file_offset % VHDX_ALIGN || e->file_offset < VHDX_ALIGN)
			return vhdx_err(EBADMSG, "region table entry %u (%s): file offset 0x%llx is not a 1 MiB multiple of at least 1 MiB",
					i, gs, (unsigned long long)e->file_offset);
		if (e->length == 0 || e->length % VHDX_ALIGN)
			return vhdx_err(EBADMSG, "region table entry %u (%s): length 0x%x is not a non-zero 1 MiB multiple",
					i, gs, e->length);
		if (e->file_offset > UINT64_MAX - e->length)
			return vhdx_err(EBADMSG, "region table entry %u (%s): offset + length overflows", i, gs);
		for (uint32_t k = 0; k < i; k++) {
			const struct vhdx_region_entry *o = &t->entries[k];
			if (!memcmp(o->guid, e->guid, 16))
				return vhdx_err(EBADMSG, "region table entry %u: region %s appears twice", i, gs);
			if (vhdx_ranges_overlap(o->file_offset, o->length, e->file_offset, e->length))
				return vhdx_err(EBADMSG, "region table entry %u (%s) at 0x%llx overlaps entry %u", i, gs,
						(unsigned long long)e->file_offset, k);
		}
	}
	return 0;
}

void vhdx_region_table_encode(const struct vhdx_region_table *t, uint8_t buf[VHDX_REGION_SIZE])
{
	memset(buf, 0, VHDX_REGION_SIZE);
	vhdx_put_le32(buf, VHDX_REGION_SIG);
	vhdx_put_le32(buf + 8, t->entry_count);
	for (uint32_t i = 0; i < t->entry_count && i < VHDX_REGION_MAX_ENTRIES; i++) {
		uint8_t *p = buf + ENTRY_OFF(i);
		const struct vhdx_region_entry *e = &t->entries[i];
		memcpy(p, e->guid, 16);
		vhdx_put_le64(p + 16, e->file_offset);
		vhdx_put_le32(p + 24, e->length);
		vhdx_put_le32(p + 28, e->required ? 1 : 0);
	}
	vhdx_put_le32(buf + 4, vhdx_crc32c_struct(buf, VHDX_REGION_SIZE));
}

const struct vhdx_region_entry *vhdx_region_find(const struct vhdx_region_table *t, const uint8_t guid[16])
{
	for (uint32_t i = 0; i < t->entry_count; i++)
		if (!memcmp(t->entries[i].guid, guid, 16))
			return &t->entries[i];
	return NULL;
}
