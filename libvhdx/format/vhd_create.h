/*
 * vhd_create.h - creating legacy VHD files (ops->create of the VHD format,
 * called by maint/create.c).
 */
#ifndef VHDX_FORMAT_VHD_CREATE_H
#define VHDX_FORMAT_VHD_CREATE_H

#include "codec/vhd_codec.h"
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

/**
 * The Parent Unicode Name a child stores for a parent at REL_WIN (the
 * relative path in Windows form that vhdx_create_parent_paths() returns,
 * ".\p.vhd", "..\other\p.vhd", "sub\p.vhd"): that path with '/'
 * separators and without a leading ".\", as UTF-16BE zero-padded into NAME
 * (the file name alone when the path does not fit the 512 bytes).  Both
 * vhd-lib, which resolves the field against the child's folder, and
 * libvhdx find the parent through it.  0 or -errno with a message.
 */
int vhdx_vhd_parent_name_encode(const char *rel_win, uint8_t name[VHD_PARENT_NAME_LEN]);

#endif
