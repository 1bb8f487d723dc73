/*
 * file_lock.c - the public door to the image locks of io/lock.c for a
 * caller that replaces a file instead of opening it (the vhdx tool writes
 * a new image under a temporary name and renames it over the old one):
 * without it, a rename would swap the file out from under a process that
 * writes it, and that process's acknowledged writes would go to a file
 * nobody can see any more.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "internal.h"
#include "io/io.h"

struct vhdx_file_lock {
	struct vhdx_io *io; /* the open that holds the lock */
};

int vhdx_lock_file(const char *path, struct vhdx_file_lock **out)
{
	struct vhdx_file_lock *l;
	struct vhdx_io *io;
	int ret;

	vhdx_err_clear();
	if (!path || !out)
		return vhdx_err(EINVAL, "vhdx_lock_file: path and out must not be NULL");
	/* writable: an exclusive OFD lock needs a descriptor open for writing */
	ret = vhdx_io_open_locked(path, true, VHDX_LOCK_EXCLUSIVE, NULL, &io);
	if (ret < 0)
		return ret;
	l = malloc(sizeof *l);
	if (!l) {
		vhdx_io_close(io);
		return vhdx_err(ENOMEM, "out of memory");
	}
	l->io = io;
	*out = l;
	return 0;
}

void vhdx_unlock_file(struct vhdx_file_lock *lock)
{
	if (!lock)
		return;
	vhdx_io_close(lock->io);
	free(lock);
}
