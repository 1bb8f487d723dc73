/*
 * vhdx_bat.c - BAT geometry (MS-VHDX 2.4 and 2.5): chunk ratio, the number
 * of payload and sector-bitmap blocks, and the interleaved entry count.
 * The layout is the same for fixed and dynamic disks; only differencing
 * disks round the entry count up to whole chunks.
 */
#include "config.h"

#include <string.h>

#include "base/base.h"
#include "codec/vhdx_codec.h"

int vhdx_geometry_init(struct vhdx_geometry *g, uint64_t virtual_size, uint32_t block_size,
		       uint32_t logical_sector_size, bool has_parent)
{
	memset(g, 0, sizeof *g);
	if (logical_sector_size != 512 && logical_sector_size != 4096)
		return vhdx_err(EBADMSG, "logical sector size %u is neither 512 nor 4096", logical_sector_size);
	if (!vhdx_is_pow2(block_size) || block_size < VHDX_MIN_BLOCK_SIZE || block_size > VHDX_MAX_BLOCK_SIZE)
		return vhdx_err(EBADMSG, "block size %u is not a power of two from 1 MiB to 256 MiB", block_size);
	if (virtual_size == 0 || virtual_size > VHDX_MAX_VIRTUAL_SIZE)
		return vhdx_err(EBADMSG, "virtual disk size %llu is not between 1 byte and 64 TiB",
				(unsigned long long)virtual_size);
	if (virtual_size % logical_sector_size)
		return vhdx_err(EBADMSG, "virtual disk size %llu is not a multiple of the logical sector size %u",
				(unsigned long long)virtual_size, logical_sector_size);
	g->virtual_size = virtual_size;
	g->block_size = block_size;
	g->logical_sector_size = logical_sector_size;
	g->has_parent = has_parent;
	g->chunk_ratio = (VHDX_CHUNK_SECTORS * logical_sector_size) / block_size;
	g->payload_blocks = vhdx_div_round_up(virtual_size, block_size);
	g->bitmap_blocks = vhdx_div_round_up(g->payload_blocks, g->chunk_ratio);
	if (has_parent)
		g->bat_entries = g->bitmap_blocks * (g->chunk_ratio + 1);
	else
		g->bat_entries = g->payload_blocks + (g->payload_blocks - 1) / g->chunk_ratio;
	return 0;
}

const char *vhdx_bat_state_name(unsigned state, bool bitmap_entry)
{
	if (bitmap_entry) {
		switch (state) {
		case VHDX_BAT_NOT_PRESENT: return "SB_BLOCK_NOT_PRESENT";
		case VHDX_BAT_FULLY_PRESENT: return "SB_BLOCK_PRESENT";
		default: return "SB_INVALID";
		}
	}
	switch (state) {
	case VHDX_BAT_NOT_PRESENT: return "NOT_PRESENT";
	case VHDX_BAT_UNDEFINED: return "UNDEFINED";
	case VHDX_BAT_ZERO: return "ZERO";
	case VHDX_BAT_UNMAPPED: return "UNMAPPED";
	case VHDX_BAT_UNMAPPED_V095: return "UNMAPPED(v0.95)";
	case VHDX_BAT_FULLY_PRESENT: return "FULLY_PRESENT";
	case VHDX_BAT_PARTIALLY_PRESENT: return "PARTIALLY_PRESENT";
	default: return "INVALID";
	}
}
