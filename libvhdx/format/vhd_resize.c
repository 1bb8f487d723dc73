/*
 * vhd_resize.c - growing a legacy VHD in place (VHD spec v1.0: footer
 * "Current Size" and "Disk Geometry", dynamic header "Max Table Entries";
 * FORMAT.md 2.2-2.5, 2.7).
 *
 * VHD has no log, so every step is one sector write (atomic on the devices
 * we target) ordered by flushes:
 *
 *   fixed:    0. the new space reserved on the file system, the size
 *                unchanged (ENOSPC here changes nothing);
 *             1. the new footer at the new end (the file grows; the gap
 *                reads as zeros), flush: from here the trailing footer, and
 *                so the size, is the new one;
 *             2. the old footer's bytes (now inside the new area) zeroed,
 *                flush.
 *             A crash between 1 and 2 leaves the new size with the old
 *             content intact but the 512 bytes at the old end still holding
 *             the old footer (run the resize again, or write zeros there).
 *   dynamic:  1. the entries of the new blocks set to unallocated: those
 *                already in the table (an entry past the old disk's end is
 *                not data, and the grown part must read zeros) and, when
 *                the table grows, the new ones in the space between the
 *                table and the first block; the rest of the old last block
 *                zeroed when it was only partly inside the disk; flush;
 *             2. the first sector of the dynamic header with the new Max
 *                Table Entries (and its checksum), flush;
 *             3. the trailing footer with the new size and geometry, flush:
 *                the new size is in effect;
 *             4. the leading copy, flush.
 *             A crash before 3 leaves the old size (a larger table is fine);
 *             between 3 and 4 readers use the trailing footer.
 * The unique id stays (the disk's identity); shrinking and differencing
 * disks are refused.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "libvhdx.h"
#include "base/base.h"
#include "codec/endian.h"
#include "format/vhd_format.h"
#include "format/vhdx_maint.h"

#define VHD_MAX_SIZE (2040ull * VHDX_GiB)

/* The footer bytes of the copy in use with NEW_SIZE, its geometry and a fresh checksum. */
static void new_footer(const struct vhdx_vhd_state *s, uint64_t new_size, uint8_t buf[VHD_FOOTER_SIZE])
{
	struct vhdx_vhd_chs chs;

	memcpy(buf, s->copies[s->used].raw, VHD_FOOTER_SIZE);
	vhdx_vhd_chs_calc(new_size, &chs);
	vhdx_put_be64(buf + 48, new_size);
	vhdx_put_be16(buf + 56, chs.cylinders);
	buf[58] = chs.heads;
	buf[59] = chs.sectors_per_track;
	vhdx_put_be32(buf + VHD_FOOTER_CHECKSUM_OFF, vhdx_vhd_checksum(buf, VHD_FOOTER_SIZE, VHD_FOOTER_CHECKSUM_OFF));
}

static int grow_fixed(struct vhdx_layer *l, struct vhdx_vhd_state *s, uint64_t new_size)
{
	uint64_t old_size = l->virtual_size, old_file = s->file_size;
	uint8_t foot[VHD_FOOTER_SIZE];
	int ret;

	new_footer(s, new_size, foot);
	/* 0: a fixed disk's space exists on the file system before the footer moves (a disk
	 * too full fails here, the file unchanged; a sparse grow failed at some later write) */
	ret = vhdx_io_reserve(l->io, old_file, new_size + VHD_FOOTER_SIZE - old_file, VHDX_TAG_PAYLOAD);
	if (ret < 0)
		return ret;
	/* 1: the file ends with the new footer (the space between reads as zeros) */
	ret = vhdx_io_pwrite(l->io, foot, VHD_FOOTER_SIZE, new_size, VHDX_TAG_FOOTER);
	if (ret == 0)
		ret = vhdx_io_flush(l->io);
	/* 2: whatever lay between the old end of the data and the old end of the file reads zero */
	if (ret == 0 && old_file > old_size)
		ret = vhdx_io_zero_range(l->io, old_size, VHDX_MIN(old_file, new_size) - old_size, VHDX_TAG_PAYLOAD);
	if (ret == 0)
		ret = vhdx_io_flush(l->io);
	if (ret == 0)
		s->file_size = new_size + VHD_FOOTER_SIZE;
	return ret;
}

/*
 * Writes 0xFFFFFFFF ("not allocated") over the BAT bytes [FROM, TO) of the
 * file, in bounded pieces (the range may be large: up to 4 bytes per block
 * of a 2040 GiB disk).
 */
static int write_unused(struct vhdx_layer *l, uint64_t from, uint64_t to)
{
	uint64_t piece = VHDX_MIN(to - from, (uint64_t)VHD_BAT_READ_CHUNK);
	uint8_t *ff = malloc(piece ? piece : 1);
	int ret = 0;

	if (!ff)
		return vhdx_err(ENOMEM, "out of memory");
	memset(ff, 0xff, piece ? piece : 1);
	for (uint64_t off = from; off < to && ret == 0; off += piece) {
		piece = VHDX_MIN(piece, to - off);
		ret = vhdx_io_pwrite(l->io, ff, piece, off, VHDX_TAG_BAT);
	}
	free(ff);
	return ret;
}

/*
 * Steps 1-4 of the dynamic grow (top of the file).  Only the file changes:
 * S keeps the old size and its bat[] the old disk's entries, so the layer
 * is closed after a resize (maint/resize.c) and the next open loads the new ones.
 */
static int grow_dynamic(struct vhdx_layer *l, struct vhdx_vhd_state *s, uint64_t new_size)
{
	const struct vhdx_vhd_dynhdr *d = &s->dyn;
	uint64_t need = vhdx_div_round_up(new_size, d->block_size);
	uint64_t old_need = s->blocks_needed; /* s->bat holds these entries only */
	uint64_t limit = s->data_end, bat_end;
	uint8_t foot[VHD_FOOTER_SIZE], hdr[VHD_DYNHDR_SIZE];
	int ret;

	if (need > d->max_table_entries) {
		/* room between the table and whatever follows it; the blocks
		 * of entries past the old disk's end do not count: those
		 * entries are set to unallocated below */
		for (uint64_t i = 0; i < old_need; i++)
			if (s->bat[i] != VHD_BAT_UNUSED)
				limit = VHDX_MIN(limit, vhdx_vhd_block_foff(s->bat[i]));
		for (unsigned k = 0; k < VHD_N_LOCATORS; k++)
			if (d->locators[k].code != VHD_PLAT_NONE && d->locators[k].data_offset > d->table_offset)
				limit = VHDX_MIN(limit, d->locators[k].data_offset);
		if (s->dynhdr_off > d->table_offset)
			limit = VHDX_MIN(limit, s->dynhdr_off);
		bat_end = d->table_offset + vhdx_round_up(4 * need, VHD_SECTOR);
		if (need > UINT32_MAX - 1 || bat_end > limit)
			return vhdx_err(ENOSPC, "cannot grow %s to %llu bytes: its BAT at 0x%llx has %u entries (max table entries) and needs %llu, but the space after it ends at 0x%llx (the first block or other data); convert the image instead",
					l->path, (unsigned long long)new_size, (unsigned long long)d->table_offset,
					d->max_table_entries, (unsigned long long)need, (unsigned long long)limit);
		/* 1: unallocated entries (and padding) for the new blocks: the
		 * table's old tail, then space nothing uses */
		ret = write_unused(l, d->table_offset + 4 * old_need, bat_end);
		if (ret < 0)
			return ret;
	} else if (need > old_need) {
		/* 1: the table has room; its entries past the old end become the
		 * new blocks', unallocated (whatever they held is not disk data) */
		ret = write_unused(l, d->table_offset + 4 * old_need, d->table_offset + 4 * need);
		if (ret < 0)
			return ret;
	}
	if (l->virtual_size % d->block_size) {
		/* the old last block: the part past the old size must read zero now */
		uint64_t blk = l->virtual_size / d->block_size, have = l->virtual_size % d->block_size;
		if (blk < old_need && s->bat[blk] != VHD_BAT_UNUSED) {
			uint64_t data = vhdx_vhd_block_foff(s->bat[blk]) + s->bitmap_size;
			if (data + d->block_size > s->data_end)
				return vhdx_err(ENOSPC, "cannot grow %s: its last block at 0x%llx is cut short by the footer",
						l->path, (unsigned long long)(data - s->bitmap_size));
			ret = vhdx_io_zero_range(l->io, data + have, d->block_size - have, VHDX_TAG_PAYLOAD);
			if (ret < 0)
				return ret;
		}
	}
	ret = vhdx_io_flush(l->io);
	if (ret < 0)
		return ret;
	if (need > d->max_table_entries) {
		/* 2: only the first sector changes (Max Table Entries at 28, checksum at 36) */
		ret = vhdx_io_pread(l->io, hdr, VHD_DYNHDR_SIZE, s->dynhdr_off, VHDX_TAG_DYNHDR);
		if (ret < 0)
			return ret;
		vhdx_put_be32(hdr + 28, (uint32_t)need);
		vhdx_put_be32(hdr + VHD_DYNHDR_CHECKSUM_OFF, vhdx_vhd_checksum(hdr, VHD_DYNHDR_SIZE, VHD_DYNHDR_CHECKSUM_OFF));
		ret = vhdx_io_pwrite(l->io, hdr, VHD_SECTOR, s->dynhdr_off, VHDX_TAG_DYNHDR);
		if (ret == 0)
			ret = vhdx_io_flush(l->io);
		if (ret < 0)
			return ret;
	}
	/* 3: the trailing footer decides the size; 4: the leading copy follows */
	new_footer(s, new_size, foot);
	ret = vhdx_io_pwrite(l->io, foot, VHD_FOOTER_SIZE, s->data_end, VHDX_TAG_FOOTER);
	if (ret == 0)
		ret = vhdx_io_flush(l->io);
	if (ret == 0)
		ret = vhdx_io_pwrite(l->io, foot, VHD_FOOTER_SIZE, 0, VHDX_TAG_FOOTER);
	if (ret == 0)
		ret = vhdx_io_flush(l->io);
	if (ret == 0)
		s->file_size = VHDX_MAX(s->file_size, s->data_end + VHD_FOOTER_SIZE);
	return ret;
}

int vhdx_resize_vhd(struct vhdx_layer *l, uint64_t new_size, struct vhdx_resize_result *res)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
	int ret;

	res->old_size = l->virtual_size;
	res->new_size = new_size;
	res->old_file_size = res->new_file_size = s->file_size;
	if (l->type == VHDX_TYPE_DIFFERENCING)
		return vhdx_err(EINVAL, "%s is a differencing image: its virtual size must stay its parent's (%llu bytes)",
				l->path, (unsigned long long)l->virtual_size);
	if (new_size == 0 || new_size % VHD_SECTOR)
		return vhdx_err(EINVAL, "new size %llu is not a positive multiple of 512 bytes", (unsigned long long)new_size);
	if (new_size < l->virtual_size)
		return vhdx_err(ENOTSUP, "cannot shrink %s from %llu to %llu bytes: shrinking a VHD is not supported",
				l->path, (unsigned long long)l->virtual_size, (unsigned long long)new_size);
	if (new_size > VHD_MAX_SIZE)
		return vhdx_err(EINVAL, "new size %llu is larger than the VHD limit of 2040 GiB", (unsigned long long)new_size);
	if (!l->writable || !s->writer)
		return vhdx_err(EROFS, "%s: opened read-only", l->path);
	if (new_size == l->virtual_size)
		return 0;
	ret = l->type == VHDX_TYPE_FIXED ? grow_fixed(l, s, new_size) : grow_dynamic(l, s, new_size);
	if (ret == 0)
		res->new_file_size = s->file_size;
	return ret;
}
