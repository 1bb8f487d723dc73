/*
 * stack.c - the I/O stack of one image file (io/stack.h): open, wrap in the
 * fault backend, lock; and close again.  The only place above the backends
 * that knows the fault backend is there.
 */
#include "config.h"

#include "internal.h"
#include "io/fault.h"
#include "io/io.h"
#include "io/stack.h"

int vhdx_io_stack_open(const char *path, const struct vhdx_io_stack_opts *o, struct vhdx_io **out)
{
	struct vhdx_io *io;
	int ret;

	if (o->faults && !o->open_uncounted) {
		/* fault injection (io/fault.h): op=open rules act before the file is opened */
		ret = vhdx_fault_check_open(o->faults, path);
		if (ret < 0)
			return vhdx_err_prefix(ret, "%s: opening", path);
	}
	/* an NBD URI (io/nbd.c) is an export, not a file: no kind to judge, no lock to take */
	ret = vhdx_io_is_uri(path) ? vhdx_io_open_path(path, o->writable, &io)
				   : vhdx_io_file_open_kind(path, o->writable, o->regular_only, &io);
	if (ret < 0)
		return ret;
	/* faults sit right on the file, below any overlay a format adds: they hit the file's bytes */
	if (o->faults) {
		ret = vhdx_io_fault_new(o->faults, io, &io); /* closes IO on failure */
		if (ret < 0)
			return ret;
	}
	/* before the first byte is read: a refused open has seen and changed nothing */
	if (o->lock != VHDX_LOCK_NONE && !vhdx_lockset_covers(path, o->lock)) {
		ret = vhdx_io_lock(io, o->lock);
		if (ret < 0) {
			vhdx_io_close(io);
			return ret;
		}
	}
	*out = io;
	return 0;
}

int vhdx_io_stack_close(struct vhdx_io *top, struct vhdx_io *built)
{
	int ret = 0;

	if (!top)
		return 0;
	/* fault injection: op=close rules (io/fault.h) fail the close like close(2) would */
	if (built)
		ret = vhdx_io_fault_close_check(built);
	vhdx_io_close(top);
	return ret;
}

int vhdx_io_open_locked(const char *path, bool writable, enum vhdx_lock_mode mode, struct vhdx_faults *faults,
			struct vhdx_io **out)
{
	struct vhdx_io_stack_opts o = { .writable = writable, .lock = mode, .faults = faults };

	return vhdx_io_stack_open(path, &o, out);
}
