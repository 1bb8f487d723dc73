/*
 * vhdx_write.h - the VHDX write path (leaf only): payload writes, block and
 * sector-bitmap allocation, and the journaled metadata updates that make
 * every flushed write survive a crash.
 */
#ifndef VHDX_FORMAT_WRITE_H
#define VHDX_FORMAT_WRITE_H

#include "format/vhdx_format.h"

/** Prepares S for writing (called by the VHDX open when the layer is writable). */
int vhdx_write_open(struct vhdx_layer *l, struct vhdx_state *s);
/** ops->pwrite: LEN bytes at VOFF, both multiples of the logical sector size. */
int vhdx_write(struct vhdx_layer *l, const void *buf, size_t len, uint64_t voff);
/** ops->flush: at most two flushes of the file however much was allocated. */
int vhdx_write_flush(struct vhdx_layer *l);
/** ops->discard: whole blocks become ZERO. */
int vhdx_write_discard(struct vhdx_layer *l, uint64_t voff, uint64_t len);
/** Final flush and LogGuid cleared through the header protocol; frees the writer. */
int vhdx_write_close(struct vhdx_layer *l, struct vhdx_state *s);

/* Statistics of the writer, for tests and benchmarks. */
struct vhdx_write_stats {
	uint64_t log_entries;     /* entries written */
	uint64_t log_pages;       /* 4 KiB pages journaled */
	uint64_t blocks_allocated;
	uint64_t bitmaps_allocated;
};
void vhdx_write_get_stats(struct vhdx_layer *l, struct vhdx_write_stats *st);

#endif
