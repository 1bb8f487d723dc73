/*
 * vhdx_serve.h - what the nbdkit plugin (vhdx_plugin.c) and the nbdkit
 * filter (vhdx_filter.c) both do: the parent options (parent=,
 * parent-dir=, path-map=, ignore-id-mismatch=) and the data requests of
 * one connection over an opened struct vhdx_image (read, write, flush,
 * trim, zero, block status), through libvhdx's public API only.
 *
 * The data functions log a message with nbdkit_error() and return 0 or a
 * positive errno, which the plugin passes to nbdkit_set_error() and the
 * filter stores in *err.
 */
#ifndef VHDX_SERVE_H
#define VHDX_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "libvhdx.h"

struct nbdkit_extents;

#define VHDX_SERVE_MAX_LIST 64 /* longest list of parent-dir= or path-map= (as the vhdx tool) */

struct vhdx_serve_parents {
	char *parent;                                /* immediate parent (absolute path or URI), or NULL */
	char *parent_dirs[VHDX_SERVE_MAX_LIST + 1];  /* NULL-terminated */
	unsigned n_parent_dirs;
	char *path_maps[VHDX_SERVE_MAX_LIST + 1];    /* "WINPREFIX=/abs/dir", NULL-terminated */
	unsigned n_path_maps;
	bool ignore_id;
};

/**
 * Takes KEY=VALUE if it is one of the parent options: 1 taken, 0 not ours,
 * -1 bad value (message logged).  Paths are made absolute (nbdkit changes
 * to / when it forks into the background); NBD URIs are kept as they are.
 */
int vhdx_serve_parent_config(struct vhdx_serve_parents *p, const char *key, const char *value);
/** Takes KEY=VALUE if KEY is NAME, a boolean, into *OUT: 1 taken, 0 another key, -1 bad value (message logged). */
int vhdx_serve_bool_config(const char *name, bool *out, const char *key, const char *value);
/** Frees what vhdx_serve_parent_config() kept. */
void vhdx_serve_parents_free(struct vhdx_serve_parents *p);
/** Puts P's parent options into O (pointers into P). */
void vhdx_serve_parents_apply(const struct vhdx_serve_parents *p, struct vhdx_open_options *o);
/** VALUE made absolute (nbdkit_realpath), or an NBD URI as it is; NULL with a message logged. */
char *vhdx_serve_abs_or_uri(const char *value);

/** Logs "WHAT: libvhdx's message" and returns the errno of NEG_ERRNO (EIO if not negative). */
int vhdx_serve_fail(int neg_errno, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One request each; FLAGS are nbdkit's (FUA, MAY_TRIM, FAST_ZERO, REQ_ONE).  0 or an errno. */
int vhdx_serve_pread(struct vhdx_image *img, void *buf, uint32_t count, uint64_t offset);
int vhdx_serve_pwrite(struct vhdx_image *img, const void *buf, uint32_t count, uint64_t offset, uint32_t flags);
int vhdx_serve_flush(struct vhdx_image *img);
int vhdx_serve_trim(struct vhdx_image *img, uint32_t count, uint64_t offset, uint32_t flags);
/* NATIVE_DISCARD: whole blocks can be released (a VHDX leaf), so a fast zero is possible. */
int vhdx_serve_zero(struct vhdx_image *img, bool native_discard, uint32_t count, uint64_t offset, uint32_t flags);
int vhdx_serve_extents(struct vhdx_image *img, uint32_t count, uint64_t offset, uint32_t flags,
		       struct nbdkit_extents *extents);

#endif
