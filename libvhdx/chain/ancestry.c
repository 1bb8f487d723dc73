/*
 * ancestry.c - is a file among the parents of a layer?  Before a reparent
 * writes anything it must know that the new parent does not lead back to
 * the child (a file its own parent, or a->c->a): the chain would then be a
 * cycle that every later open refuses with ELOOP.  The walk resolves
 * parents like a chain open (chain/parent.c), but accepts any identity: a
 * cycle through a mismatched link is still a cycle to a user who passes
 * --ignore-id-mismatch.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "chain/chain.h"

int vhdx_chain_find_ancestor(struct vhdx_layer *start, const char *path, struct vhdx_faults *faults,
			     unsigned *depth)
{
	struct vhdx_open_options o;
	struct vhdx_layer *seen[VHDX_DEFAULT_MAX_DEPTH];
	unsigned n = 0;
	int ret = 0;

	vhdx_open_options_init(&o);
	o.flags = VHDX_OPEN_IGNORE_ID_MISMATCH;
	o.faults = faults;
	*depth = 0;
	if (vhdx_same_file(start->path, path))
		return 1;
	seen[n++] = start;
	while (seen[n - 1]->has_parent) {
		struct vhdx_layer *p;
		if (n == VHDX_DEFAULT_MAX_DEPTH)
			break; /* deeper than any chain we open: nothing more to learn */
		ret = vhdx_parent_open(seen[n - 1], &o, n, &p);
		if (ret == -EIO || ret == -ENOMEM)
			goto out;
		if (ret < 0) {
			ret = 0; /* the walk ends where the chain cannot be followed: no cycle through here */
			break;
		}
		if (vhdx_same_file(p->path, path)) {
			*depth = n;
			vhdx_layer_close(p);
			ret = 1;
			goto out;
		}
		for (unsigned i = 0; i < n; i++) {
			if (vhdx_same_file(seen[i]->path, p->path)) {
				ret = vhdx_err(ELOOP, "%s: its parent chain is a cycle already (%s is the parent of %s)",
					       start->path, p->path, seen[n - 1]->path);
				vhdx_layer_close(p);
				goto out;
			}
		}
		seen[n++] = p;
	}
out:
	for (unsigned i = 1; i < n; i++)
		vhdx_layer_close(seen[i]);
	return ret;
}
