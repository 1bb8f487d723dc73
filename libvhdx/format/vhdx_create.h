/*
 * vhdx_create.h - format-level creation of new images (called by create.c).
 */
#ifndef VHDX_FORMAT_CREATE_H
#define VHDX_FORMAT_CREATE_H

#include "format/format.h"

struct vhdx_create_params {
	enum vhdx_disk_type type;
	uint64_t virtual_size;
	uint32_t block_size;
	uint32_t logical_sector_size;
	uint32_t physical_sector_size;
	uint32_t log_size;          /* VHDX: 1 MiB multiple */
	const char *creator;        /* NULL: "libvhdx VERSION" */
	const char *parent;         /* differencing: path of the parent */
	uint8_t parent_linkage[16]; /* differencing: the parent's identity */
	uint32_t parent_timestamp;  /* VHD differencing */
	const char *parent_name;    /* VHD differencing: the parent's Unicode name (UTF-8) */
};

/** Writes a new VHDX into the empty IO (PATH locates it for relative locator paths). */
int vhdx_create_vhdx(struct vhdx_io *io, const char *path, const struct vhdx_create_params *p);

#endif
