/*
 * maint_crash.h - the power-cut driver of the maintenance unit tests
 * (test_compact.c, test_resize.c): an operation runs once over a recording
 * backend (crash_io.h), then a power cut is simulated after EVERY I/O event
 * (unflushed writes dropped, all kept, the last one torn at 512 and 4096
 * bytes, a random subset kept) and the image must open (read-only: log
 * replayed in memory; and writable: replayed in place) and read exactly what
 * it read before (resize: the old bytes up to the smaller size, zeros past
 * the old end, and a size that is the old or the new one).
 * Compiled into each test that uses it (it calls cmocka).
 */
#ifndef VHDX_TEST_MAINT_CRASH_H
#define VHDX_TEST_MAINT_CRASH_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "format/vhdx_maint.h"

#define MiB (1024u * 1024)

/* Bytes of a disk compared byte for byte; past them a dynamic disk must map no data. */
#define MAINT_READ_LIMIT (24ull * MiB)

enum maint_op { MAINT_COMPACT, MAINT_RESIZE };

/*
 * Opens BYTES (FLAGS) and returns what the disk reads (over BASE when not
 * NULL; a buffer shared by every call, valid until the next one), or fails
 * the test naming WHAT and AFTER.  *SIZE gets the virtual size.
 */
uint8_t *maint_disk_of(const uint8_t *bytes, size_t len, unsigned flags, struct vhdx_layer *base, uint64_t *size,
		       const char *what, size_t after);

/*
 * Runs OP (MAINT_RESIZE: to NEW_SIZE) on IMG (over BASE) through a
 * recording backend, checks the image after a power cut at every event
 * under every mode, and returns the final bytes in *FINAL (malloc'd) and,
 * for a compact, its result in *CRES (may be NULL).
 */
void maint_crash_run(const uint8_t *img, size_t img_len, struct vhdx_layer *base, enum maint_op op,
		     uint64_t new_size, const char *what, uint8_t **final, size_t *final_len,
		     struct vhdx_compact_result *cres);

struct vhdx_gen_image;

/* The fixed VHDX both tests grow or refuse: 3 MiB + 512 bytes, seed 11 (vhdx_gen_free() it). */
struct vhdx_gen_image *maint_fixed_image(void);

/* IMG opened writable over a memory backend named NAME (fails the test otherwise). */
struct vhdx_layer *maint_open_writable(const struct vhdx_gen_image *img, const char *name);

#endif
