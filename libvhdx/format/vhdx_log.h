/*
 * vhdx_log.h - the VHDX metadata log (MS-VHDX 2.3): finding the active
 * sequence and replaying it, in place on a writable open or into an
 * in-memory overlay on a read-only one.
 */
#ifndef VHDX_FORMAT_LOG_H
#define VHDX_FORMAT_LOG_H

#include "format/vhdx_format.h"

/**
 * Called by the VHDX open when the current header's LogGuid is non-zero.
 * Makes L->io show the replayed state: replays in place when the layer is
 * opened writable, otherwise wraps L->io in an overlay and replays into it
 * (refusing instead with VHDX_LAYER_NO_REPLAY).  Sets l->log_replayed and
 * s->log_report.  0 or -errno with the log offset and rule in the message.
 */
int vhdx_log_open_dirty(struct vhdx_layer *l, struct vhdx_state *s, unsigned flags);

#endif
