/*
 * parent.c - finding a differencing layer's parent.  Not implemented yet:
 * a differencing image is refused unless opened with VHDX_OPEN_NO_PARENT.
 */
#include "config.h"

#include "internal.h"
#include "chain/chain.h"

int vhdx_parent_open(const struct vhdx_layer *child, const struct vhdx_open_options *opts, unsigned depth,
		     struct vhdx_layer **out)
{
	return vhdx_err(ENOTSUP, "%s is a differencing disk; opening its parent is not implemented yet "
				 "(open it with no-parent to read this layer alone)", child->path);
}
