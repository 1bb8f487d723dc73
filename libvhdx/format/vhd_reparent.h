/*
 * vhd_reparent.h - re-pointing a differencing VHD at another parent
 * (ops->reparent of the VHD format, called by maint/reparent.c for
 * vhdx_reparent() and merge's re-linking).
 */
#ifndef VHDX_FORMAT_VHD_REPARENT_H
#define VHDX_FORMAT_VHD_REPARENT_H

#include <stdbool.h>

#include "format/format.h"

/**
 * Points the differencing VHD L (opened writable) at NEW_PARENT, opened as
 * PARENT: the Parent Unicode Name becomes REL (the Windows relative path of
 * vhdx_create_parent_paths()) in the form vhdx_vhd_parent_name_encode()
 * gives, and the W2ku (ABS_WIN) and W2ru (REL) locators that exist are
 * rewritten in their areas; a child without them (vhd-lib's) keeps none.
 * With RELINK also the parent unique id (PARENT's footer id) and time stamp
 * (NEW_PARENT's modification time).  Locator data first, flushed, then the
 * header's changed 512-byte sectors in one write, flushed (see the top of
 * vhd_reparent.c).  0 or -errno with a message naming L's file and the
 * structure (ENOSPC when a path does not fit its locator area).
 */
int vhdx_vhd_reparent(struct vhdx_layer *l, const struct vhdx_layer *parent, const char *new_parent, bool relink,
		      const char *rel, const char *abs_win);

#endif
