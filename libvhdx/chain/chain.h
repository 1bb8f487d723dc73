/*
 * chain.h - L3, the layer stack: layer 0 is the file the user opened (the
 * leaf), each next layer its parent.  Reads resolve runs, not sectors:
 * every layer's map() returns the longest run of one kind, and only the
 * "ask the parent" runs go one layer down.
 */
#ifndef VHDX_CHAIN_H
#define VHDX_CHAIN_H

#include "format/format.h"
#include "port/compat.h"

#define VHDX_DEFAULT_MAX_DEPTH 1000 /* see man/libvhdx.3, max_depth */

struct vhdx_chain {
	unsigned n;                  /* layers opened */
	struct vhdx_layer **layers;  /* [0] leaf ... [n-1] base */
	uint64_t virtual_size;       /* of the leaf */
	char *warnings;              /* newline-separated notes about the chain (owned), or NULL */
};

/** Appends a line to C's warnings (best effort: dropped when out of memory). */
void vhdx_chain_warn(struct vhdx_chain *c, const char *fmt, ...) __attribute__((format(VHDX_PRINTF_ARCHETYPE, 2, 3)));

/**
 * Opens PATH and its parents as OPTS say.  On success *C holds n >= 1
 * layers.  0 or -errno (ENOENT naming every path tried, ELOOP, ...).
 */
int vhdx_chain_open(const char *path, const struct vhdx_open_options *opts, struct vhdx_chain *c);
/**
 * Opens the image behind IO (a caller-I/O backend of io/callbacks.c, owned
 * from here on, even on failure) and its parents: through its open_parent
 * callback when it has one, else by the file search of vhdx_parent_open.
 */
int vhdx_chain_open_io(struct vhdx_io *io, const struct vhdx_open_options *opts, struct vhdx_chain *c);
/** Closes every layer; returns the first close error. */
int vhdx_chain_close(struct vhdx_chain *c);

/** Reads LEN bytes at VOFF (inside the disk) as seen from layer FROM downwards. 0 or -errno. */
int vhdx_chain_read(const struct vhdx_chain *c, unsigned from, void *buf, size_t len, uint64_t voff);

/** The public vhdx_map() over the chain (see libvhdx.h). */
int vhdx_chain_map(const struct vhdx_chain *c, uint64_t voff, uint64_t len, struct vhdx_extent *ext);

/**
 * Finds and opens the parent of CHILD (layer DEPTH of the chain being
 * built) following the locator, OPTS' overrides and search folders, and
 * checks its identity against the child's linkage.  *OUT is read-only.
 * 0 or -errno: ENOENT naming every path tried, EBADMSG for a mismatch.
 */
int vhdx_parent_open(const struct vhdx_layer *child, const struct vhdx_open_options *opts, unsigned depth,
		     struct vhdx_layer **out);

/**
 * chain/ancestry.c: 1 when PATH is the file of START or of one of the
 * parents a chain open would find for it (any identity accepted), with
 * *DEPTH its layer in START's chain (0: START itself); 0 when not, or when
 * the walk ends at a parent it cannot find; -ELOOP when START's chain is a
 * cycle already; -EIO/-ENOMEM from the disk.  START stays open.
 */
int vhdx_chain_find_ancestor(struct vhdx_layer *start, const char *path, struct vhdx_faults *faults,
			     unsigned *depth);

/**
 * The parent of CHILD, whose bytes come from the caller-I/O backend SRC:
 * asks SRC's open_parent callback with CHILD's locator entries and checks
 * the identity and sector size like vhdx_parent_open, which it falls back
 * to when SRC has no callback.  *OUT_SRC gets the parent's backend (NULL
 * after the fallback).  0 or -errno (ENOENT with the callback's message).
 */
int vhdx_parent_open_io(const struct vhdx_layer *child, struct vhdx_io *src, const struct vhdx_open_options *opts,
			unsigned depth, struct vhdx_layer **out, struct vhdx_io **out_src);

#endif
