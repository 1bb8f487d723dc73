/*
 * vhdx_reparent.h - re-pointing a differencing VHDX at another parent
 * (ops->reparent of the VHDX format, called by maint/reparent.c).
 */
#ifndef VHDX_FORMAT_VHDX_REPARENT_H
#define VHDX_FORMAT_VHDX_REPARENT_H

#include <stdbool.h>

#include "format/format.h"

/**
 * Points the differencing VHDX L (opened writable) at NEW_PARENT, opened as
 * PARENT: the parent locator gets REL as relative_path and ABS_WIN as
 * absolute_win32_path (volume_path is dropped), parent_linkage stays L's
 * (with RELINK: PARENT's identity, and parent_linkage2 is dropped).  One
 * log entry, FileWriteGuid renewed.  0 or -errno with a message (ENOSPC
 * when the item does not fit the metadata region).
 */
int vhdx_reparent_vhdx(struct vhdx_layer *l, const struct vhdx_layer *parent, const char *new_parent, bool relink,
		       const char *rel, const char *abs_win);

#endif
