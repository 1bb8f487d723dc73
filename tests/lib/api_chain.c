/*
 * api_chain.c - the two-layer chain of api_chain.h, written by
 * vhdx_create() into a folder of its own.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "libvhdx.h"
#include "lib/api_chain.h"

int api_chain_make(struct api_chain *c, const char *who)
{
	struct vhdx_create_options co;

	snprintf(c->dir, sizeof c->dir, "/tmp/libvhdx-%s.XXXXXX", who);
	if (!mkdtemp(c->dir))
		return -1;
	snprintf(c->base, sizeof c->base, "%s/base.vhdx", c->dir);
	snprintf(c->child, sizeof c->child, "%s/child.avhdx", c->dir);
	vhdx_create_options_init(&co);
	co.virtual_size = 8u << 20;
	co.block_size = 1u << 20;
	if (vhdx_create(c->base, &co) < 0)
		return -1;
	vhdx_create_options_init(&co);
	co.parent = c->base;
	return vhdx_create(c->child, &co) < 0 ? -1 : 0;
}

int api_chain_remove(struct api_chain *c)
{
	char cmd[300];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
	return system(cmd) == 0 ? 0 : -1;
}
