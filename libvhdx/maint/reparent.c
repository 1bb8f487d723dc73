/*
 * reparent.c - vhdx_reparent(): points a differencing layer at another
 * parent file, like Set-VHD -ParentPath.
 *
 * This driver checks that the new parent may be linked (no cycle, the
 * same format and sector size, the identity the child links to unless
 * relinking) before anything is written, then hands the writable child to
 * the format's ops->reparent: format/vhdx_reparent.c (the parent locator
 * through the log), format/vhd_reparent.c (the header's parent name and
 * id, and the W2ku/W2ru locators where the child has them).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "chain/chain.h"
#include "codec/guid.h"
#include "format/format.h"
#include "format/vhdx_create.h"
#include "maint/merge_internal.h"

/* -ELOOP (before anything is written) when NEW_PARENT P is CHILD or leads back to it. */
static int reparent_loop_check(const char *child, struct vhdx_layer *p, struct vhdx_faults *faults)
{
	unsigned depth;
	int r = vhdx_chain_find_ancestor(p, child, faults, &depth);

	if (r < 0)
		return vhdx_err_prefix(r, "reparenting %s to %s", child, p->path);
	if (r == 1 && depth == 0)
		return vhdx_err(ELOOP, "%s cannot be its own parent: nothing was changed", child);
	if (r == 1)
		return vhdx_err(ELOOP, "reparenting %s to %s would make a cycle: %s is layer %u of the chain of %s; "
				       "nothing was changed", child, p->path, child, depth, p->path);
	return 0;
}

int vhdx_reparent_faults(const char *child, const char *new_parent, unsigned flags, struct vhdx_faults *faults)
{
	struct vhdx_layer *c = NULL, *p = NULL;
	struct vhdx_lockset locks;
	char *rel = NULL, *abs_win = NULL;
	bool relink = flags & VHDX_REPARENT_RELINK;
	int ret;

	vhdx_err_clear();
	if (!child || !new_parent)
		return vhdx_err(EINVAL, "vhdx_reparent: child and new_parent must not be NULL");
	/* issue #14: CHILD is locked exclusively from the first read of it to the last write */
	vhdx_lockset_begin(&locks);
	ret = vhdx_lockset_add(&locks, child, VHDX_LOCK_EXCLUSIVE, faults);
	if (ret < 0) {
		vhdx_lockset_end(&locks);
		return ret;
	}
	ret = vhdx_layer_open_faults(new_parent, 0, faults, &p);
	if (ret < 0) {
		vhdx_lockset_end(&locks);
		return vhdx_err_prefix(ret, "new parent");
	}
	/* read-only first: nothing is written unless every check passes */
	ret = vhdx_layer_open_faults(child, 0, faults, &c);
	if (ret < 0)
		goto out;
	if (!c->has_parent) {
		ret = vhdx_err(EINVAL, "%s is not a differencing disk: it has no parent to change", child);
		goto out;
	}
	/* a file its own parent, or a->c->a: every later open would refuse the chain */
	ret = reparent_loop_check(child, p, faults);
	if (ret < 0)
		goto out;
	if (c->format != p->format) {
		ret = vhdx_err(ENOTSUP, "%s is a %s, the new parent %s a %s: a child and its parent share a format here",
			       child, c->ops->name, new_parent, p->ops->name);
		goto out;
	}
	if (c->logical_sector_size != p->logical_sector_size) {
		ret = vhdx_err(EINVAL, "%s has %u-byte logical sectors, the new parent %s %u-byte ones", child,
			       c->logical_sector_size, new_parent, p->logical_sector_size);
		goto out;
	}
	if (!relink && memcmp(p->identity, c->parent.linkage, 16) &&
	    !(c->parent.has_linkage2 && !memcmp(p->identity, c->parent.linkage2, 16))) {
		char want[VHDX_GUID_STRLEN], got[VHDX_GUID_STRLEN];
		vhdx_guid_format(c->parent.linkage, want);
		vhdx_guid_format(p->identity, got);
		ret = vhdx_err(EBADMSG, "%s links to a parent with identity {%s}, %s is {%s} (use ignore-id-mismatch "
					"to link to it anyway)", child, want, new_parent, got);
		goto out;
	}
	ret = vhdx_create_parent_paths(child, new_parent, &rel, &abs_win);
	if (ret < 0)
		goto out;
	vhdx_layer_close(c);
	c = NULL;
	ret = vhdx_layer_open_faults(child, VHDX_LAYER_WRITABLE, faults, &c);
	if (ret < 0)
		goto out;
	ret = c->ops->reparent ? c->ops->reparent(c, p, new_parent, relink, rel, abs_win)
			       : vhdx_err(ENOTSUP, "%s: a %s cannot be reparented here", child, c->ops->name);
	if (ret < 0)
		ret = vhdx_err_prefix(ret, "reparenting %s", child);
out:
	if (c) {
		int r2 = vhdx_layer_close(c);
		if (ret == 0 && r2 < 0)
			ret = r2;
	}
	vhdx_layer_close(p);
	vhdx_lockset_end(&locks);
	free(rel);
	free(abs_win);
	return ret;
}

int vhdx_reparent(const char *child, const char *new_parent, unsigned flags)
{
	return vhdx_reparent_faults(child, new_parent, flags, NULL);
}
