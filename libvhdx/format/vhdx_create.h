/*
 * vhdx_create.h - format-level creation of new images (ops->create, called
 * by maint/create.c).
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

/**
 * The parent locator paths of a new child at CHILD_PATH over PARENT_PATH,
 * in Windows form as Hyper-V writes them: *RELATIVE from the child's
 * folder (".\parent.vhdx", "..\x\parent.vhdx") and *ABSOLUTE (the
 * resolved path with '/' turned into a backslash).  Both newly allocated.
 * 0 or -errno with a message (the parent or the child's folder missing).
 */
int vhdx_create_parent_paths(const char *child_path, const char *parent_path, char **relative, char **absolute);

/** Writes a new VHDX into the empty IO (PATH locates it for relative locator paths). */
int vhdx_create_vhdx(struct vhdx_io *io, const char *path, const struct vhdx_create_params *p);
/**
 * Checks P for a VHDX before any file is touched: the virtual size (a
 * multiple of the logical sector, at most 64 TiB), sector, block and log
 * sizes.  0, or -EINVAL with a message saying the allowed values.
 */
int vhdx_create_vhdx_check(const struct vhdx_create_params *p);

#endif
