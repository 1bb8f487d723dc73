/*
 * api_chain.h - a two-layer chain made through the public API alone, for
 * the unit tests of the public doors (api_chain.c): a temporary folder
 * holding base.vhdx (8 MiB dynamic, 1 MiB blocks) and child.avhdx over it.
 */
#ifndef VHDX_TESTS_API_CHAIN_H
#define VHDX_TESTS_API_CHAIN_H

struct api_chain {
	char dir[256];
	char base[300];
	char child[300];
};

/** Makes the folder (named after WHO) and both images. 0, or -1 when any step fails. */
int api_chain_make(struct api_chain *c, const char *who);
/** Removes the folder and everything in it. 0 or -1. */
int api_chain_remove(struct api_chain *c);

#endif
