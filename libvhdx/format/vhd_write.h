/*
 * vhd_write.h - the legacy VHD write path (leaf only; FORMAT.md 2.5):
 * fixed disks in place, dynamic and differencing disks by appending blocks
 * where the trailing footer was.  VHD has no log: crash safety comes from
 * the order of writes and flushes, described in vhd_write.c.
 */
#ifndef VHDX_FORMAT_VHD_WRITE_H
#define VHDX_FORMAT_VHD_WRITE_H

#include <stdint.h>

#include "format/vhd_format.h"

/**
 * Prepares S for writing (called by the VHD open of a writable layer, after
 * the footer, dynamic header and BAT are loaded).  Refuses (-EROFS with a
 * message) a layer whose footer or dynamic header was only accepted by
 * salvage: writing would spread the damaged bytes.  0 or -errno.
 */
int vhdx_vhd_write_open(struct vhdx_layer *l, struct vhdx_vhd_state *s);

/**
 * ops->pwrite: LEN bytes at VOFF, both multiples of 512 (image.c merges
 * partial sectors through the chain first).  The caller serialises writers
 * (the image write lock); concurrent reads through ops->map are safe.
 */
int vhdx_vhd_write(struct vhdx_layer *l, const void *buf, size_t len, uint64_t voff);

/** ops->flush: every completed write durable, with at most two flushes of the file. */
int vhdx_vhd_write_flush(struct vhdx_layer *l);

/** Final flush and release of the writer (called by the VHD close). 0 or the flush error. */
int vhdx_vhd_write_close(struct vhdx_layer *l, struct vhdx_vhd_state *s);

/* Statistics of the writer, for tests and benchmarks. */
struct vhdx_vhd_write_stats {
	uint64_t blocks_allocated;  /* blocks appended */
	uint64_t zero_writes_skipped; /* zero writes over unallocated dynamic blocks that stored nothing */
	uint64_t bat_sector_writes; /* 512-byte BAT sectors written */
	uint64_t bitmap_writes;     /* sector bitmaps written */
	uint64_t footer_writes;     /* trailing footers written */
	uint64_t commits;           /* flushes that wrote metadata */
};
void vhdx_vhd_write_get_stats(struct vhdx_layer *l, struct vhdx_vhd_write_stats *st);

#endif
