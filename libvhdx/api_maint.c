/*
 * api_maint.c - the public doors to maintenance that the tools used to
 * reach internally: vhdx_reparent_ex() (vhdx_reparent with a fault
 * engine) and vhdx_merge_pending() (the CHILD.merging record of merge.c).
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"
#include "maint/merge_internal.h"

void vhdx_reparent_options_init(struct vhdx_reparent_options *opts)
{
	memset(opts, 0, sizeof *opts);
	opts->struct_size = sizeof *opts;
}

int vhdx_reparent_ex(const char *child, const char *new_parent, const struct vhdx_reparent_options *opts_in)
{
	struct vhdx_reparent_options o;
	int ret;

	ret = vhdx_options_in(&o, sizeof o, opts_in, offsetof(struct vhdx_reparent_options, faults) + sizeof o.faults,
			      "vhdx_reparent_ex");
	if (ret < 0)
		return ret;
	return vhdx_reparent_faults(child, new_parent, o.flags, o.faults);
}

int vhdx_merge_pending(const char *child, char **ancestor)
{
	char path[PATH_MAX];
	int ret;

	if (!child || !ancestor)
		return vhdx_err(EINVAL, "vhdx_merge_pending: child and ancestor must not be NULL");
	*ancestor = NULL;
	ret = vhdx_merge_record_ancestor(child, path);
	if (ret != 1)
		return ret;
	*ancestor = strdup(path);
	return *ancestor ? 1 : vhdx_err(ENOMEM, "out of memory");
}
