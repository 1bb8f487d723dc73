/*
 * vhd_create.h - creating legacy VHD files (called by create.c).
 */
#ifndef VHDX_FORMAT_VHD_CREATE_H
#define VHDX_FORMAT_VHD_CREATE_H

#include "format/vhdx_create.h"

/* The largest dynamic or differencing VHD: 2040 GiB (the VHD specification's limit, 0xFF000000 sectors). */
#define VHD_MAX_DYNAMIC_SIZE (2040ull << 30)

/**
 * Writes a new fixed, dynamic or differencing VHD (P->type) into the empty
 * IO.  PATH is where the file is (for the relative parent locator).  A
 * differencing disk needs PARENT, the parent opened as a VHD layer (read
 * only here), and P->parent, the path it was opened by; its size must be
 * P->virtual_size.  P->block_size is a power of two from 4 KiB to 256 MiB
 * (dynamic and differencing only), P->logical_sector_size 512, P->creator
 * NULL ("vhdx") or a string whose first 4 bytes become the creator
 * application.  0 or -errno with a message (EINVAL for bad parameters).
 */
/** The same as vhdx_create_vhdx_check for a VHD (PARENT: the opened parent of a differencing one). */
int vhdx_create_vhd_check(const struct vhdx_create_params *p, const struct vhdx_layer *parent);

int vhdx_create_vhd(struct vhdx_io *io, const char *path, const struct vhdx_create_params *p,
		    const struct vhdx_layer *parent);

#endif
