/*
 * compact.c - vhdx_compact(): the public entry point of in-place
 * compaction (like Hyper-V's Optimize-VHD).  Opens the one file writable
 * (a dirty log is replayed first) and hands it to the format's compactor
 * (ops->compact: format/vhdx_compact.c, format/vhd_compact.c), which
 * document the crash-safety argument.
 */
#include "config.h"

#include <string.h>

#include "internal.h"
#include "format/vhdx_maint.h"

void vhdx_compact_options_init(struct vhdx_compact_options *o)
{
	memset(o, 0, sizeof *o);
	o->struct_size = sizeof *o;
}

int vhdx_compact(const char *path, const struct vhdx_compact_options *opts_in, struct vhdx_compact_result *res_out)
{
	struct vhdx_compact_options opts;
	struct vhdx_compact_result res;
	struct vhdx_maint_progress prog;
	struct vhdx_layer *l = NULL;
	int ret, r2;

	vhdx_err_clear();
	if (!path)
		return vhdx_err(EINVAL, "vhdx_compact: path must not be NULL");
	ret = vhdx_options_in(&opts, sizeof opts, opts_in, sizeof(size_t), "vhdx_compact");
	if (ret < 0)
		return ret;
	if (res_out && res_out->struct_size < sizeof(size_t))
		return vhdx_err(EINVAL, "vhdx_compact: result struct_size %zu is too small", res_out->struct_size);
	memset(&res, 0, sizeof res);
	res.struct_size = sizeof res;
	prog.fn = opts.progress;
	prog.arg = opts.progress_arg;
	ret = vhdx_layer_open_faults(path, VHDX_LAYER_WRITABLE, opts.faults, &l);
	if (ret < 0)
		return ret;
	ret = l->ops->compact ? l->ops->compact(l, &prog, &res)
			      : vhdx_err(ENOTSUP, "%s: a %s cannot be compacted here", path, l->ops->name);
	r2 = vhdx_layer_close(l);
	if (ret == 0)
		ret = r2;
	vhdx_struct_copy_out(res_out, &res, sizeof res);
	return ret;
}
