/*
 * vhdx_maint.h - in-place maintenance of one opened layer (L2): compaction
 * (vhdx_compact.c, vhd_compact.c; like Hyper-V's Optimize-VHD) and resizing
 * (vhdx_resize.c for VHDX, vhd_resize.c for VHD), plus the journal helpers
 * they share; ops->compact and ops->resize of each format's table.  The
 * L4 entry points are libvhdx/maint/compact.c and libvhdx/maint/resize.c,
 * which call through the table; the crash tests call these functions
 * directly on a layer opened over a recording backend.
 */
#ifndef VHDX_FORMAT_MAINT_H
#define VHDX_FORMAT_MAINT_H

#include <stddef.h>
#include <stdint.h>

#include "libvhdx.h"
#include "format/vhdx_format.h"
#include "format/vhdx_journal.h"

/* Bytes [start, end) of a file. */
struct vhdx_span {
	uint64_t start, end;
};

/** qsort() order of spans: by start. */
int vhdx_span_cmp(const void *a, const void *b);

/**
 * The free gaps between USED[0..NU) (sorted by start, may overlap), each
 * ALIGN-aligned at both ends, into GAPS (room for NU), in file order;
 * returns how many.  *END: where the highest span ends.
 */
size_t vhdx_maint_gaps(const struct vhdx_span *used, size_t nu, uint64_t align, struct vhdx_span *gaps,
		       uint64_t *end);

/* Progress of a long operation: a non-zero return cancels it (ECANCELED). */
struct vhdx_maint_progress {
	int (*fn)(uint64_t done, uint64_t total, void *arg);
	void *arg;
};

/**
 * Compacts the writable VHDX layer L in place: blocks whose payload is all
 * zero stop being stored (NOT_PRESENT in a base disk, ZERO in a
 * differencing disk so that the parent stays hidden), partially present
 * blocks with no sector in this file become NOT_PRESENT, sector-bitmap
 * blocks of chunks without partially present blocks are freed, then blocks
 * move down into the lowest free 1 MiB-aligned space and the file is
 * truncated.  Crash-safe (see vhdx_compact.c).  Fills *RES (its
 * struct_size set by the caller).  0 or -errno.
 */
int vhdx_compact_vhdx(struct vhdx_layer *l, const struct vhdx_maint_progress *prog, struct vhdx_compact_result *res);

/**
 * Compacts the writable dynamic or differencing VHD layer L in place: a
 * dynamic disk's all-zero blocks and a differencing disk's blocks without a
 * sector of their own are released, blocks move down, the footer follows
 * them and the file is truncated.  Crash-safe (see vhd_compact.c).
 */
int vhdx_compact_vhd(struct vhdx_layer *l, const struct vhdx_maint_progress *prog, struct vhdx_compact_result *res);

/**
 * Changes the virtual size of the writable VHDX layer L to NEW_SIZE through
 * the log (and relocates the BAT region when it is too small).  Refuses a
 * differencing layer and a shrink past an allocated block.  0 or -errno.
 */
int vhdx_resize_vhdx(struct vhdx_layer *l, uint64_t new_size, struct vhdx_resize_result *res);

/**
 * Grows the writable VHD layer L (fixed: the file and the footer move;
 * dynamic: the BAT grows in place when there is room before the first
 * block).  Refuses shrinking and differencing layers.  0 or -errno.
 */
int vhdx_resize_vhd(struct vhdx_layer *l, uint64_t new_size, struct vhdx_resize_result *res);

/**
 * Journals PAGES[0..N) through J (started with HDR_FLAGS on first use), in
 * as many entries as the ring needs, and flushes after the last one so
 * that the applied pages are durable and the space they describe as free
 * may be reused.  FILE_SIZE: the durable size of the file.  0 or -errno.
 */
int vhdx_maint_commit(struct vhdx_layer *l, struct vhdx_journal *j, unsigned hdr_flags,
		      const struct vhdx_log_page *pages, const enum vhdx_tag *tags, size_t n, uint64_t file_size);

/**
 * Builds the 4 KiB BAT pages that hold the entries IDX[0..N) (any order,
 * repeats allowed) from s->bat, keeping the file's bytes of entries past
 * the table, into *PAGES / *TAGS / *DATA (malloc'd; free all three).
 * *NPAGES gets their count.  0 or -errno.
 */
int vhdx_maint_bat_pages(struct vhdx_layer *l, struct vhdx_state *s, uint64_t *idx, size_t n,
			 struct vhdx_log_page **pages, enum vhdx_tag **tags, uint8_t **data, size_t *npages);

/** Copies LEN bytes from file offset FROM to TO in L's file (payload/bitmap tag), in pieces. */
int vhdx_maint_copy(struct vhdx_layer *l, uint64_t from, uint64_t to, uint64_t len, enum vhdx_tag tag);

#endif
