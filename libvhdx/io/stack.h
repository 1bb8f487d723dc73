/*
 * stack.h - building and closing the I/O stack of one image file (DESIGN.md
 * "L0"), so that the layers above open a file with one call and never name
 * a backend:
 *
 *     [fault] -> file | nbd      locked in the asked mode (io/lock.c)
 *
 * vhdx_io_stack_open opens the file (or the NBD export a URI names), wraps
 * it in the fault backend when fault rules are given (io/fault.h), and
 * takes the file's lock.  A format may put more on top afterwards (an
 * overlay holding a replayed log, io/overlay.c); vhdx_io_stack_close closes
 * whatever is on top, after the fault backend's op=close rules.
 */
#ifndef VHDX_IO_STACK_H
#define VHDX_IO_STACK_H

#include <stdbool.h>

#include "io/io.h"

struct vhdx_io_stack_opts {
	bool writable;              /* read-write; else pwrite and set_size fail with EROFS */
	bool regular_only;          /* refuse anything but a regular file (vhdx_io_file_open_kind) */
	enum vhdx_lock_mode lock;   /* NONE: take no lock; nor is one taken that an active lock set covers */
	struct vhdx_faults *faults; /* fault rules (io/fault.h), or NULL for no fault backend */
	bool open_uncounted;        /* a lock set's own open: no op=open rule sees it */
};

/**
 * Opens PATH as O says: op=open fault rules act before anything is opened
 * (unless O->open_uncounted), then the file or NBD export is opened, wrapped
 * in the fault backend when O->faults is set, and locked.  On a lock
 * conflict (-EBUSY) nothing has been read or written.  0 with *OUT owned by
 * the caller (vhdx_io_stack_close or vhdx_io_close), or -errno with a
 * message; *OUT is untouched on failure.
 */
int vhdx_io_stack_open(const char *path, const struct vhdx_io_stack_opts *o, struct vhdx_io **out);

/**
 * Closes TOP, the top of a stack: BUILT is what vhdx_io_stack_open returned
 * (TOP itself, or an io that TOP wraps and owns), or NULL for an io the
 * caller brought.  The op=close rules of BUILT's fault backend run first, as
 * close(2) would fail.  Returns 0, or the injected -errno with the fault
 * engine's message (the caller adds which file); TOP is closed either way.
 * NULL TOP is a no-op.
 */
int vhdx_io_stack_close(struct vhdx_io *top, struct vhdx_io *built);

#endif /* VHDX_IO_STACK_H */
