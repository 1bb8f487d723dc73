/*
 * format.h - L2, one table of format operations per on-disk format (the
 * libarchive idea: detection by bidding on the first bytes, then a small
 * vtable).  A struct vhdx_layer is one opened file of a chain; the format
 * turns a virtual range of that one file into extents: bytes stored in the
 * file, zeros, or "ask the parent".  Chains (L3) stack layers.
 */
#ifndef VHDX_FORMAT_H
#define VHDX_FORMAT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "libvhdx.h"
#include "codec/parent_ref.h"
#include "io/io.h"

struct vhdx_layer;
struct vhdx_checker;
struct vhdx_maint_progress;
struct vhdx_create_params;

enum vhdx_lext_kind {
	VHDX_LEXT_DATA = 1,   /* stored in this layer's file at foff */
	VHDX_LEXT_ZERO = 2,   /* reads as zeros, does not fall through */
	VHDX_LEXT_PARENT = 3, /* transparent: read from the parent (zeros when there is none) */
};

struct vhdx_layer_extent {
	enum vhdx_lext_kind kind;
	uint64_t len;  /* bytes from the requested voff */
	uint64_t foff; /* DATA only */
};

/* Flags passed to ops->open */
#define VHDX_LAYER_WRITABLE 0x1u  /* open for writing (leaf only) */
#define VHDX_LAYER_SALVAGE 0x2u   /* accept recoverable damage (bad VHD checksums) */
#define VHDX_LAYER_NO_REPLAY 0x4u /* refuse a dirty log on a read-only open */
#define VHDX_LAYER_ALLOW_INCOMPLETE 0x8u
/* found through a locator, not named by the user: a regular file only, and a
 * file that is no image is refused without describing it (chain/parent.c) */
#define VHDX_LAYER_LOCATED 0x10u
#define VHDX_LAYER_NO_LOCK 0x20u  /* take no lock and ignore others' (VHDX_OPEN_FORCE_SHARE; read-only) */

#define VHDX_BID_CERTAIN 100 /* a signature no other format can have */

struct vhdx_format_ops {
	const char *name; /* "vhdx", "vhd" */
	enum vhdx_format id;
	/*
	 * Bids on IO: HEAD holds the first HEADLEN bytes (up to 64 KiB),
	 * FILE_SIZE the size.  Returns > 0 (higher is surer; VHDX_BID_CERTAIN
	 * ends the probing, no later format reads anything), 0, or -errno when
	 * a read it needed failed (an I/O error, never "not this format").
	 */
	int (*probe)(struct vhdx_io *io, const uint8_t *head, size_t headlen, uint64_t file_size);
	/*
	 * Parses the file behind L->io (already set, with L->path) and fills
	 * the common fields of *L and L->priv.  May replace L->io (for example
	 * with an overlay holding a replayed log).  0 or -errno with message.
	 */
	int (*open)(struct vhdx_layer *l, unsigned flags);
	/*
	 * Describes the run starting at VOFF (< virtual_size) of at most
	 * MAXLEN bytes (>0) that has one kind and contiguous file offsets.
	 * Thread-safe against concurrent map/read; 0 or -errno.
	 */
	int (*map)(struct vhdx_layer *l, uint64_t voff, uint64_t maxlen, struct vhdx_layer_extent *ext);
	/* Writes BUF at VOFF (leaf only); NULL when the format is read-only here. */
	int (*pwrite)(struct vhdx_layer *l, const void *buf, size_t len, uint64_t voff);
	/* Makes every completed write durable; NULL = nothing to do. */
	int (*flush)(struct vhdx_layer *l);
	/*
	 * Makes the whole blocks inside [VOFF, VOFF+LEN) read as zeros without
	 * storing data (the range is block aligned; the caller zero-writes the
	 * partial ends).  NULL: the caller writes zeros instead.
	 */
	int (*discard)(struct vhdx_layer *l, uint64_t voff, uint64_t len);
	/* Frees L->priv (after a final flush for writable layers); returns the flush error. */
	int (*close)(struct vhdx_layer *l);

	/* ---- maintenance: the drivers in libvhdx/maint/ call these; NULL where the format has none ---- */
	/* `vhdx check` of a file of this format, damaged or not (format/check.h) */
	const struct vhdx_checker *check;
	/* Compacts the writable layer L in place (format/vhdx_maint.h); fills *RES.  0 or -errno. */
	int (*compact)(struct vhdx_layer *l, const struct vhdx_maint_progress *prog, struct vhdx_compact_result *res);
	/* Changes the virtual size of the writable layer L (format/vhdx_maint.h).  0 or -errno. */
	int (*resize)(struct vhdx_layer *l, uint64_t new_size, struct vhdx_resize_result *res);
	/*
	 * Points the writable differencing layer L at NEW_PARENT, opened as
	 * PARENT: the locators get REL and ABS_WIN (vhdx_create_parent_paths);
	 * with RELINK also PARENT's identity.  0 or -errno with a message.
	 */
	int (*reparent)(struct vhdx_layer *l, const struct vhdx_layer *parent, const char *new_parent, bool relink,
			const char *rel, const char *abs_win);
	/* Checks P before any file is touched (PARENT: a differencing child's opened parent, or NULL).  0 or -EINVAL. */
	int (*create_check)(const struct vhdx_create_params *p, const struct vhdx_layer *parent);
	/* Writes a new image into the empty IO, at PATH (format/vhdx_create.h).  0 or -errno. */
	int (*create)(struct vhdx_io *io, const char *path, const struct vhdx_create_params *p,
		      const struct vhdx_layer *parent);
};

struct vhdx_layer {
	const struct vhdx_format_ops *ops;
	struct vhdx_io *io;     /* this layer's I/O stack (owned) */
	char *path;             /* as opened (owned) */
	enum vhdx_format format;
	enum vhdx_disk_type type;
	uint64_t virtual_size;
	uint32_t block_size;    /* 0 for fixed VHD */
	uint32_t logical_sector_size;
	uint32_t physical_sector_size;
	uint8_t disk_id[16];    /* VHDX virtual disk id; VHD unique id */
	uint8_t identity[16];   /* what a child links to: VHDX DataWriteGuid, VHD unique id */
	bool writable;
	bool log_replayed;
	bool has_parent;
	struct vhdx_parent_ref parent; /* valid when has_parent */
	void *priv;             /* format state */
	struct vhdx_io *stack;  /* what vhdx_io_stack_open built, which io may wrap (not owned); NULL: io was the caller's */
};

extern const struct vhdx_format_ops vhdx_format_vhdx;
extern const struct vhdx_format_ops vhdx_format_vhd;

/** The format table, in probing order: format I, or NULL past the last one. */
const struct vhdx_format_ops *vhdx_format_nth(size_t i);
/** The table entry of format ID, or NULL for an unknown one. */
const struct vhdx_format_ops *vhdx_format_by_id(enum vhdx_format id);

/**
 * Opens PATH as one layer: opens the file (read-only unless
 * VHDX_LAYER_WRITABLE), lets every format bid, and opens with the winner.
 * On success *OUT is owned by the caller (vhdx_layer_close).
 */
int vhdx_layer_open(const char *path, unsigned flags, struct vhdx_layer **out);
/**
 * vhdx_layer_open() with fault injection: when FAULTS is not NULL its
 * op=open rules run first and the file io is wrapped in the fault backend
 * (io/fault.h) before the format parses it.
 */
int vhdx_layer_open_faults(const char *path, unsigned flags, struct vhdx_faults *faults, struct vhdx_layer **out);
/** Same over an existing io (takes ownership of IO, even on failure). */
int vhdx_layer_open_io(struct vhdx_io *io, const char *path, unsigned flags, struct vhdx_layer **out);
/** Closes and frees; returns the format's close error. NULL is a no-op. */
int vhdx_layer_close(struct vhdx_layer *l);

/** Name of a disk type ("fixed", "dynamic", "differencing"). */
const char *vhdx_disk_type_name(enum vhdx_disk_type t);

/*
 * Writes LEN bytes of BUF at VOFF a block of BLOCK_SIZE bytes at a time, as
 * both formats store a disk: WRITE_IN_BLOCK gets each piece that lies
 * inside one block, in order, and its first error ends the write.
 */
int vhdx_layer_write_by_block(struct vhdx_layer *l, uint64_t block_size, const void *buf, size_t len, uint64_t voff,
			      int (*write_in_block)(struct vhdx_layer *l, const uint8_t *p, uint64_t n, uint64_t voff));

#endif /* VHDX_FORMAT_H */
