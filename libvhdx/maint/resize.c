/*
 * resize.c - vhdx_resize(): the public entry point of changing a disk's
 * virtual size in place.  Opens the one file writable (a dirty VHDX log is
 * replayed first) and hands it to the format (ops->resize:
 * format/vhdx_resize.c, format/vhd_resize.c), which document the
 * crash-safety argument.
 */
#include "config.h"

#include <string.h>

#include "internal.h"
#include "format/vhdx_maint.h"

void vhdx_resize_options_init(struct vhdx_resize_options *o)
{
	memset(o, 0, sizeof *o);
	o->struct_size = sizeof *o;
}

int vhdx_resize(const char *path, uint64_t new_size, const struct vhdx_resize_options *opts_in,
		struct vhdx_resize_result *res_out)
{
	struct vhdx_resize_options opts;
	struct vhdx_resize_result res;
	struct vhdx_layer *l = NULL;
	int ret, r2;

	vhdx_err_clear();
	if (!path)
		return vhdx_err(EINVAL, "vhdx_resize: path must not be NULL");
	ret = vhdx_options_in(&opts, sizeof opts, opts_in, sizeof(size_t), "vhdx_resize");
	if (ret < 0)
		return ret;
	if (res_out && res_out->struct_size < sizeof(size_t))
		return vhdx_err(EINVAL, "vhdx_resize: result struct_size %zu is too small", res_out->struct_size);
	memset(&res, 0, sizeof res);
	res.struct_size = sizeof res;
	ret = vhdx_layer_open_faults(path, VHDX_LAYER_WRITABLE, opts.faults, &l);
	if (ret < 0)
		return ret;
	ret = l->ops->resize ? l->ops->resize(l, new_size, &res)
			     : vhdx_err(ENOTSUP, "%s: a %s cannot be resized here", path, l->ops->name);
	r2 = vhdx_layer_close(l);
	if (ret == 0)
		ret = r2;
	vhdx_struct_copy_out(res_out, &res, sizeof res);
	return ret;
}
