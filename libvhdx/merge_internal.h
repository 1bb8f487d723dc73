/*
 * merge_internal.h - what merge.c needs of reparent.c beyond the public
 * vhdx_reparent(): the same operation with a fault engine.
 */
#ifndef VHDX_MERGE_INTERNAL_H
#define VHDX_MERGE_INTERNAL_H

#include "libvhdx.h"

/** vhdx_reparent() opening both files through FAULTS (NULL: none). */
int vhdx_reparent_faults(const char *child, const char *new_parent, unsigned flags, struct vhdx_faults *faults);

#endif
