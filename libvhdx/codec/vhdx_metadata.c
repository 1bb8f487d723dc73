/*
 * vhdx_metadata.c - the metadata table (MS-VHDX 2.6.1) and the file
 * parameters item (2.6.2.1).  The table has no checksum, so range and
 * consistency checks here are all that stands between a flipped bit and a
 * wild read.
 */
#include "config.h"

#include <string.h>

#include "base/base.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_codec.h"

#define ENTRY_OFF(i) (32 + 32 * (size_t)(i))

int vhdx_metadata_table_decode(const uint8_t *buf, size_t len, uint32_t region_len, struct vhdx_metadata_table *t)
{
	char gs[VHDX_GUID_STRLEN];
	unsigned user_items = 0;

	t->entry_count = 0;
	if (len < VHDX_METADATA_TABLE_SIZE)
		return vhdx_err(EBADMSG, "metadata table: %zu bytes is too short", len);
	if (memcmp(buf, VHDX_METADATA_SIG, 8) != 0)
		return vhdx_err(EBADMSG, "metadata table: signature is not \"metadata\"");
	t->entry_count = vhdx_get_le16(buf + 10);
	if (t->entry_count > VHDX_METADATA_MAX_ENTRIES) {
		uint16_t n = t->entry_count;
		t->entry_count = 0;
		return vhdx_err(EBADMSG, "metadata table: entry count %u exceeds %u", n, VHDX_METADATA_MAX_ENTRIES);
	}
	for (uint16_t i = 0; i < t->entry_count; i++) {
		const uint8_t *p = buf + ENTRY_OFF(i);
		struct vhdx_metadata_entry *e = &t->entries[i];
		uint32_t flags = vhdx_get_le32(p + 24);

		memcpy(e->item_id, p, 16);
		e->offset = vhdx_get_le32(p + 16);
		e->length = vhdx_get_le32(p + 20);
		e->is_user = flags & 1;
		e->is_virtual_disk = (flags >> 1) & 1;
		e->is_required = (flags >> 2) & 1;
		vhdx_guid_format(e->item_id, gs);
		if (e->length > VHDX_METADATA_MAX_ITEM)
			return vhdx_err(EBADMSG, "metadata entry %u (%s): length %u exceeds 1 MiB", i, gs, e->length);
		if (e->length == 0 ? e->offset != 0 : e->offset < VHDX_METADATA_TABLE_SIZE)
			return vhdx_err(EBADMSG, "metadata entry %u (%s): offset 0x%x is inside the table or set for an empty item",
					i, gs, e->offset);
		if (!vhdx_range_ok(e->offset, e->length, region_len))
			return vhdx_err(EBADMSG, "metadata entry %u (%s): item at 0x%x+%u lies past the metadata region (%u bytes)",
					i, gs, e->offset, e->length, region_len);
		if (e->is_user && ++user_items > 1024)
			return vhdx_err(EBADMSG, "metadata table: more than 1024 user items");
		for (uint16_t k = 0; k < i; k++) {
			const struct vhdx_metadata_entry *o = &t->entries[k];
			if (!memcmp(o->item_id, e->item_id, 16) && o->is_user == e->is_user)
				return vhdx_err(EBADMSG, "metadata entry %u: item %s appears twice", i, gs);
			if (vhdx_ranges_overlap(o->offset, o->length, e->offset, e->length))
				return vhdx_err(EBADMSG, "metadata entry %u (%s) at 0x%x overlaps entry %u", i, gs,
						e->offset, k);
		}
	}
	return 0;
}

void vhdx_metadata_table_encode(const struct vhdx_metadata_table *t, uint8_t buf[VHDX_METADATA_TABLE_SIZE])
{
	memset(buf, 0, VHDX_METADATA_TABLE_SIZE);
	memcpy(buf, VHDX_METADATA_SIG, 8);
	vhdx_put_le16(buf + 10, t->entry_count);
	for (uint16_t i = 0; i < t->entry_count && i < VHDX_METADATA_MAX_ENTRIES; i++) {
		uint8_t *p = buf + ENTRY_OFF(i);
		const struct vhdx_metadata_entry *e = &t->entries[i];
		memcpy(p, e->item_id, 16);
		vhdx_put_le32(p + 16, e->offset);
		vhdx_put_le32(p + 20, e->length);
		vhdx_put_le32(p + 24, (e->is_user ? 1u : 0) | (e->is_virtual_disk ? 2u : 0) | (e->is_required ? 4u : 0));
	}
}

const struct vhdx_metadata_entry *vhdx_metadata_find(const struct vhdx_metadata_table *t, const uint8_t id[16],
						     bool is_user)
{
	for (uint16_t i = 0; i < t->entry_count; i++)
		if (!memcmp(t->entries[i].item_id, id, 16) && t->entries[i].is_user == is_user)
			return &t->entries[i];
	return NULL;
}

int vhdx_file_params_decode(const uint8_t *buf, size_t len, struct vhdx_file_params *p)
{
	uint32_t flags;

	if (len != 8)
		return vhdx_err(EBADMSG, "file parameters: item is %zu bytes, expected 8", len);
	p->block_size = vhdx_get_le32(buf);
	flags = vhdx_get_le32(buf + 4);
	p->leave_blocks_allocated = flags & VHDX_FILE_PARAMS_LEAVE_ALLOCATED;
	p->has_parent = flags & VHDX_FILE_PARAMS_HAS_PARENT;
	if (!vhdx_is_pow2(p->block_size) || p->block_size < VHDX_MIN_BLOCK_SIZE || p->block_size > VHDX_MAX_BLOCK_SIZE)
		return vhdx_err(EBADMSG, "file parameters: block size %u is not a power of two from 1 MiB to 256 MiB",
				p->block_size);
	return 0;
}

void vhdx_file_params_encode(const struct vhdx_file_params *p, uint8_t buf[8])
{
	vhdx_put_le32(buf, p->block_size);
	vhdx_put_le32(buf + 4, (p->leave_blocks_allocated ? VHDX_FILE_PARAMS_LEAVE_ALLOCATED : 0) |
				       (p->has_parent ? VHDX_FILE_PARAMS_HAS_PARENT : 0));
}
