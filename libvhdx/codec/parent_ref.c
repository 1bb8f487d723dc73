/*
 * parent_ref.c - freeing a struct vhdx_parent_ref (codec/parent_ref.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "codec/parent_ref.h"

void vhdx_parent_ref_free(struct vhdx_parent_ref *r)
{
	for (size_t i = 0; r->paths && i < r->n_paths; i++) {
		free(r->paths[i].key);
		free(r->paths[i].value);
	}
	free(r->paths);
	memset(r, 0, sizeof *r);
}
