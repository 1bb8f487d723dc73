/*
 * crash_io.h - a test backend that records every write and flush so that a
 * "power cut" can be replayed after any event: the durable image is what
 * the last flush made durable, plus any chosen subset of the writes that
 * were still in flight, the last of them possibly torn at a sector boundary.
 * It is how the crash tests prove that a crash at any instant leaves an
 * image that opens with every flushed write intact (the SQLite test6.c way).
 */
#ifndef VHDX_TEST_CRASH_IO_H
#define VHDX_TEST_CRASH_IO_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"

struct crash_event {
	int is_flush;
	uint64_t off;
	size_t len;
	uint8_t *data; /* writes only */
};

/** A recording mem-like backend starting with INITIAL[0..LEN). */
int crash_io_new(const uint8_t *initial, size_t len, struct vhdx_io **out);
/** Number of events (writes + flushes + truncates as writes of nothing) recorded so far. */
size_t crash_io_events(struct vhdx_io *io);

enum crash_mode {
	CRASH_DROP_ALL,     /* every unflushed write lost */
	CRASH_KEEP_ALL,     /* every unflushed write reached the disk */
	CRASH_TORN_512,     /* all unflushed writes but the last, which keeps only its first 512-byte sectors */
	CRASH_TORN_4096,    /* same at 4 KiB */
	CRASH_RANDOM,       /* a random subset (SEED) of them, applied in order */
};

/**
 * The bytes the disk would hold after a power cut right after event
 * AFTER_EVENTS (0 = before the first), under MODE.  *OUT is malloc'd.
 * Sizes (truncates) are tracked: the image has the size of the last size
 * change that is considered persisted.
 */
int crash_io_image(struct vhdx_io *io, size_t after_events, enum crash_mode mode, unsigned seed, uint8_t **out,
		   size_t *out_len);

/** A forwarding io over IO whose close does not close IO (so a layer can own it). */
int crash_io_borrow(struct vhdx_io *io, struct vhdx_io **out);

#endif
