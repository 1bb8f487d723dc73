/*
 * merge_internal.h - what merge.c needs of reparent.c beyond the public
 * vhdx_reparent(): the same operation with a fault engine.
 */
#ifndef VHDX_MERGE_INTERNAL_H
#define VHDX_MERGE_INTERNAL_H

#include "libvhdx.h"

/** vhdx_reparent() opening both files through FAULTS (NULL: none). */
int vhdx_reparent_faults(const char *child, const char *new_parent, unsigned flags, struct vhdx_faults *faults);

/**
 * When CHILD.merging records an unfinished merge of CHILD, copies the
 * ancestor's real path into ANCESTOR (PATH_MAX bytes) and returns 1; 0 when
 * there is no record; -errno (with message) for an unreadable one.
 */
int vhdx_merge_record_ancestor(const char *child, char *ancestor);

struct vhdx_chain;
/**
 * merge_scope.c: 0 when the merge of CHILD into layer K of its chain C may
 * write into that ancestor (and, with VHDX_MERGE_DELETE, delete layers
 * 1..K-1): each lies in CHILD's folder or below, or in one of
 * O->parent_dirs, or is the file O names (parent for layer 1, into for
 * layer K).  Else -EPERM with a message naming the resolved file.
 */
int vhdx_merge_scope_check(const struct vhdx_chain *c, unsigned k, const char *child,
			   const struct vhdx_merge_options *o);
/**
 * merge_scope.c: 0 when W, layer K of C opened again for writing by its
 * path, is still that image (same identity) and, unless O names it, a
 * regular file (fstat on W's descriptor); else -EPERM with a message.
 */
struct vhdx_layer;
int vhdx_merge_scope_reopened(const struct vhdx_chain *c, unsigned k, const struct vhdx_layer *w,
			      const struct vhdx_merge_options *o);

#endif
