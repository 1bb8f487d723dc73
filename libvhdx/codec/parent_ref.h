/*
 * parent_ref.h - what a differencing layer says about its parent, decoded
 * from its locator (VHDX: codec/vhdx_locator.c, MS-VHDX 2.6.2.6; VHD: the
 * parent locator entries of the dynamic header, format/vhd.c): the identity
 * the parent must have and the paths to look for it at.  Plain data, no I/O;
 * the formats fill it (format/format.h, struct vhdx_layer) and the chain
 * (chain/parent.c) resolves it.
 */
#ifndef VHDX_CODEC_PARENT_REF_H
#define VHDX_CODEC_PARENT_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One parent-locator path, in the format's resolution order. */
struct vhdx_parent_path {
	char *key;   /* "relative_path", "volume_path", "absolute_win32_path", "W2ru", "W2ku", "parent_name" */
	char *value; /* as stored (Windows form, UTF-8) */
};

/* What a differencing layer says about its parent. */
struct vhdx_parent_ref {
	uint8_t linkage[16];   /* VHDX: parent DataWriteGuid; VHD: parent unique id */
	bool has_linkage2;
	uint8_t linkage2[16];  /* VHDX parent_linkage2 */
	uint32_t timestamp;    /* VHD parent time stamp (informational) */
	size_t n_paths;
	struct vhdx_parent_path *paths; /* resolution order */
};

/** Frees R's paths (their keys and values) and zeroes *R; R itself is the caller's. */
void vhdx_parent_ref_free(struct vhdx_parent_ref *r);

#endif /* VHDX_CODEC_PARENT_REF_H */
