/*
 * vhdx_log.c - VHDX log replay (MS-VHDX 2.3).  Replay is not implemented
 * yet: a dirty image is refused rather than read with stale metadata.
 */
#include "config.h"

#include "internal.h"
#include "format/vhdx_log.h"

int vhdx_log_open_dirty(struct vhdx_layer *l, struct vhdx_state *s, unsigned flags)
{
	return vhdx_err(ENOTSUP, "the log is dirty (LogGuid is set) and log replay is not implemented yet; "
				 "reading it now could return stale data");
}
