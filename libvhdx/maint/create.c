/*
 * create.c - L4, vhdx_create(): validates options, takes a differencing
 * child's geometry and identity from its parent, and hands the layout to
 * the format (ops->create_check, then ops->create).  A file that could not be created completely is removed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "format/format.h"
#include "format/vhdx_create.h"
#include "io/fault.h"

void vhdx_create_options_init(struct vhdx_create_options *o)
{
	memset(o, 0, sizeof *o);
	o->struct_size = sizeof *o;
	o->format = VHDX_FORMAT_VHDX;
	o->type = VHDX_TYPE_DYNAMIC;
}

/*
 * Issue #15 item 3: every byte of the new file is allocated for real, as
 * Windows does: a fixed disk's whole data area (its writes must never fail
 * for want of space), and the headers, log, metadata and BAT of the others
 * (the log is written by every later change: compact, resize and replay
 * must not meet a full file system at their first log write).  A file
 * system without room fails the create now, with ENOSPC, instead of a
 * write later.  Then flushed, so that the allocation is durable too.
 */
static int allocate_all(struct vhdx_io *file_io, struct vhdx_io *io, enum vhdx_disk_type type)
{
	uint64_t size;
	int ret = vhdx_io_get_size(file_io, &size);

	if (ret == 0)
		ret = vhdx_io_allocate(file_io, 0, size, type == VHDX_TYPE_FIXED ? VHDX_TAG_PAYLOAD : VHDX_TAG_LOG);
	if (ret == -ENOSPC)
		return vhdx_err(ENOSPC, "no room for the %s image of %llu bytes: %s; free some space or choose another folder%s",
				vhdx_disk_type_name(type), (unsigned long long)size, strerror(ENOSPC),
				type == VHDX_TYPE_FIXED ? " (a dynamic disk grows as it is written)" : "");
	if (ret == 0)
		ret = vhdx_io_flush(io);
	return ret;
}

int vhdx_create(const char *path, const struct vhdx_create_options *in)
{
	struct vhdx_create_options o;
	struct vhdx_create_params p;
	struct vhdx_layer *parent = NULL;
	const struct vhdx_format_ops *fmt;
	struct vhdx_io *io = NULL, *file_io;
	int fd, ret;

	vhdx_err_clear();
	if (!path || !in)
		return vhdx_err(EINVAL, "vhdx_create: path and options are required");
	vhdx_create_options_init(&o);
	ret = vhdx_struct_copy_in(&o, sizeof o, in, offsetof(struct vhdx_create_options, flags), "vhdx_create", "options");
	if (ret < 0)
		return ret;
	memset(&p, 0, sizeof p);
	p.type = o.parent ? VHDX_TYPE_DIFFERENCING : o.type;
	if (p.type != VHDX_TYPE_FIXED && p.type != VHDX_TYPE_DYNAMIC && p.type != VHDX_TYPE_DIFFERENCING)
		return vhdx_err(EINVAL, "unknown disk type %d", (int)o.type);
	if (o.type == VHDX_TYPE_DIFFERENCING && !o.parent)
		return vhdx_err(EINVAL, "a differencing disk needs a parent");
	p.virtual_size = o.virtual_size;
	p.block_size = o.block_size;
	p.logical_sector_size = o.logical_sector_size ? o.logical_sector_size : 512;
	p.physical_sector_size = o.physical_sector_size ? o.physical_sector_size : 4096;
	p.log_size = o.log_size;
	p.creator = o.creator;

	if (o.parent) {
		/* the parent is only read: its identity, size and sector sizes */
		ret = vhdx_layer_open_faults(o.parent, 0, o.faults, &parent);
		if (ret < 0)
			return vhdx_err_prefix(ret, "parent");
		if (o.virtual_size && o.virtual_size != parent->virtual_size) {
			ret = vhdx_err(EINVAL, "a child must have its parent's virtual size (%llu bytes), not %llu",
				       (unsigned long long)parent->virtual_size, (unsigned long long)o.virtual_size);
			goto out;
		}
		if (o.format == VHDX_FORMAT_VHDX && parent->format != VHDX_FORMAT_VHDX) {
			ret = vhdx_err(EINVAL, "%s: a VHDX child needs a VHDX parent (this one is VHD)", o.parent);
			goto out;
		}
		if (o.format == VHDX_FORMAT_VHD && parent->format != VHDX_FORMAT_VHD) {
			ret = vhdx_err(EINVAL, "%s: a VHD child needs a VHD parent (this one is VHDX)", o.parent);
			goto out;
		}
		p.virtual_size = parent->virtual_size;
		if (o.logical_sector_size && o.logical_sector_size != parent->logical_sector_size) {
			ret = vhdx_err(EINVAL, "a child must have its parent's logical sector size (%u)",
				       parent->logical_sector_size);
			goto out;
		}
		p.logical_sector_size = parent->logical_sector_size;
		if (!o.physical_sector_size)
			p.physical_sector_size = parent->physical_sector_size;
		memcpy(p.parent_linkage, parent->identity, 16);
		p.parent = o.parent;
	}
	if (!p.block_size && o.format == VHDX_FORMAT_VHD)
		p.block_size = 2u << 20; /* the VHD specification's default, for every type */
	if (!p.block_size)
		p.block_size = p.type == VHDX_TYPE_DIFFERENCING ? 2u << 20 : 32u << 20;
	if (!p.virtual_size) {
		ret = vhdx_err(EINVAL, "the virtual size must be given (and not 0)");
		goto out;
	}
	fmt = vhdx_format_by_id(o.format);
	if (!fmt || !fmt->create) {
		ret = vhdx_err(EINVAL, "unknown image format %d", (int)o.format);
		goto out;
	}

	/* every parameter checked before the file is touched: a bad size must not truncate a file under --force */
	ret = fmt->create_check ? fmt->create_check(&p, parent) : 0;
	if (ret < 0) {
		ret = vhdx_err_prefix(ret, "%s", path);
		goto out;
	}
	/* no O_TRUNC: an existing file is emptied only once its lock is ours (issue #14) */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | ((o.flags & VHDX_CREATE_OVERWRITE) ? 0 : O_EXCL), 0644);
	if (fd < 0) {
		ret = vhdx_err(errno, "%s: %s%s", path, strerror(errno),
			       errno == EEXIST ? " (use the overwrite option to replace it)" : "");
		goto out;
	}
	ret = vhdx_io_file_from_fd(fd, path, true, true, &io);
	if (ret < 0) {
		close(fd);
		goto out;
	}
	file_io = io; /* below a fault io: the descriptor for the allocation */
	/* fault injection (io/fault.h): the new file's writes and flushes pass the rules */
	if (o.faults) {
		ret = vhdx_fault_check_open(o.faults, path);
		if (ret == 0)
			ret = vhdx_io_fault_new(o.faults, io, &io);
		else
			vhdx_io_close(io);
		if (ret < 0) {
			if (!(o.flags & VHDX_CREATE_OVERWRITE))
				unlink(path);
			goto out;
		}
	}
	/* another process holding a file being overwritten keeps it: refused, the file untouched */
	ret = vhdx_io_lock(io, VHDX_LOCK_EXCLUSIVE);
	if (ret == 0 && (o.flags & VHDX_CREATE_OVERWRITE))
		ret = vhdx_io_set_size(io, 0);
	if (ret < 0) {
		vhdx_io_close(io);
		if (!(o.flags & VHDX_CREATE_OVERWRITE))
			unlink(path);
		goto out;
	}
	ret = fmt->create(io, path, &p, parent);
	if (ret == 0)
		ret = allocate_all(file_io, io, p.type);
	vhdx_io_close(io);
	if (ret < 0) {
		unlink(path);
		ret = vhdx_err_prefix(ret, "%s", path);
	}
out:
	vhdx_layer_close(parent);
	return ret;
}
