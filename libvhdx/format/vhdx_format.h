/*
 * vhdx_format.h - the state of one opened VHDX file (L2), shared by the
 * VHDX reader (vhdx.c), log replay (vhdx_log.c), the write path and the
 * `vhdx info` / `check` reports, which print these fields.
 */
#ifndef VHDX_FORMAT_VHDX_H
#define VHDX_FORMAT_VHDX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "codec/vhdx_codec.h"
#include "format/format.h"

struct vhdx_state {
	struct vhdx_fileid fileid;
	uint64_t file_size;               /* as seen through l->io (after any replay) */

	struct vhdx_header headers[2];    /* slot 0 at 64 KiB, slot 1 at 128 KiB */
	bool header_valid[2];
	char *header_error[2];            /* why a slot is invalid (owned), or NULL */
	int current;                      /* index of the current header */

	struct vhdx_region_table *regions;/* the table in use */
	bool region_valid[2];
	char *region_error[2];
	bool regions_differ;              /* both valid but not byte-identical */
	int region_used;                  /* which copy was used */

	uint64_t bat_off;
	uint32_t bat_len;
	uint64_t meta_off;
	uint32_t meta_len;

	struct vhdx_metadata_table *meta;
	struct vhdx_file_params params;
	struct vhdx_geometry geo;
	bool has_chs, has_incomplete, has_pmem;
	uint8_t *locator_raw;             /* parent locator item bytes (owned), if any */
	uint32_t locator_len;

	uint64_t *bat;                    /* geo.bat_entries entries, host order */
	uint64_t bat_counts[8];           /* payload entries per state */
	uint64_t sb_present;              /* sector-bitmap entries present */

	bool log_was_dirty;               /* LogGuid was non-zero at open */
	char *log_report;                 /* summary of the replay (owned), or NULL */

	struct vhdx_writer *writer;       /* write-path state of a writable layer (vhdx_write.c) */

	pthread_rwlock_t lock;            /* BAT and bitmap cache: read for map, write for updates */
	pthread_mutex_t bitmap_mutex;     /* loading of bitmap blocks */
	uint8_t **bitmaps;                /* geo.bitmap_blocks cached 1 MiB blocks (NULL = not loaded) */
	/*
	 * A read-only layer loads its bitmap blocks a 4 KiB page at a time:
	 * VHDX_BITMAP_WORDS words per chunk, bit p set once page p of that
	 * chunk's block is in bitmaps[chunk] (set with release order after
	 * the page's bytes).  NULL for a writable layer, which loads whole
	 * blocks (its flush writes whole cached pages back).
	 */
	uint64_t *bitmap_loaded;
};

#define VHDX_BITMAP_PAGE 4096u
#define VHDX_BITMAP_WORDS (VHDX_ALIGN / VHDX_BITMAP_PAGE / 64)

static inline struct vhdx_state *vhdx_state_of(struct vhdx_layer *l)
{
	return (struct vhdx_state *)l->priv;
}

/* Header changes requested from vhdx_header_update(). */
#define VHDX_HDR_NEW_FILE_GUID 0x1u /* fresh FileWriteGuid (first change of a session) */
#define VHDX_HDR_NEW_DATA_GUID 0x2u /* fresh DataWriteGuid (first user-visible change) */

/**
 * The header update protocol of MS-VHDX 2.2.2.1: builds a header from the
 * current one with LOG_GUID (NULL keeps it) and the GUIDs FLAGS asks to
 * renew, sequence number + 1, writes it over the non-current slot and
 * flushes; then does the same once more so that both slots are current
 * (a torn write of either leaves the other valid).  Updates s->headers and
 * s->current.  Needs a writable l->io.  0 or -errno.
 */
int vhdx_header_update(struct vhdx_layer *l, struct vhdx_state *s, const uint8_t *log_guid, unsigned flags);

#endif
