/*
 * libvhdx.h - public API of libvhdx: read (and, where stated, write) VHDX,
 * AVHDX differencing chains and legacy VHD images.
 *
 * Conventions of every function here:
 *  - returns 0 (or a byte count where stated) on success, -errno on failure;
 *  - on failure, vhdx_errmsg() returns a message for the calling thread that
 *    names the structure and file offset at fault;
 *  - errno meanings: EBADMSG corrupt structure or checksum, ENOTSUP unknown
 *    required feature, ENOENT parent not found, ELOOP chain cycle or too deep,
 *    EROFS write to a read-only image, EINVAL bad arguments; EIO and ENOSPC
 *    come from the underlying file.
 *  - structs passed in or out begin with their own size (struct_size) so they
 *    can grow without breaking the ABI; set it to sizeof(struct ...) or use
 *    the matching *_init() function.
 *  - one struct vhdx_image may be used from several threads at once for
 *    reads; the library uses pread()/pwrite() and never a shared file offset.
 */
#ifndef LIBVHDX_H
#define LIBVHDX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(_WIN32)
#define VHDX_API __attribute__((visibility("default")))
#else
#define VHDX_API
#endif

/** Opaque handle on one opened image (and its parent chain). */
struct vhdx_image;

/* Flags of struct vhdx_open_options.flags */
#define VHDX_OPEN_RDWR               0x0001u /* open the leaf writable (parents stay read-only) */
#define VHDX_OPEN_NO_PARENT          0x0002u /* do not open parents: read what the leaf holds, zeros elsewhere */
#define VHDX_OPEN_IGNORE_ID_MISMATCH 0x0004u /* accept a parent whose identity differs from the child's link */
#define VHDX_OPEN_SALVAGE            0x0008u /* read through bad VHD checksums and similar recoverable damage */
#define VHDX_OPEN_NO_REPLAY          0x0010u /* read-only open of a dirty VHDX: refuse instead of replaying in memory */
#define VHDX_OPEN_ALLOW_INCOMPLETE   0x0020u /* open a VHDX that still carries Windows' incomplete-file marker */

struct vhdx_open_options {
	size_t struct_size;             /* sizeof(struct vhdx_open_options) */
	unsigned flags;                 /* VHDX_OPEN_* */
	const char *parent;             /* explicit path of the immediate parent, or NULL */
	const char *const *parent_dirs; /* NULL-terminated folders searched for parents, or NULL */
	const char *const *path_maps;   /* NULL-terminated "WINPREFIX=DIR" maps for locator paths, or NULL */
	unsigned max_depth;             /* longest chain accepted; 0 = default (64) */
};

/** Fills *opts with the defaults (read-only, parents resolved, depth 64). */
VHDX_API void vhdx_open_options_init(struct vhdx_open_options *opts);

/**
 * Opens PATH (VHDX, AVHDX or VHD, detected from its contents) and, unless
 * VHDX_OPEN_NO_PARENT, its whole parent chain.  OPTS may be NULL for the
 * defaults.  On success *OUT owns the image; release it with vhdx_close().
 * A read-only open never writes to any file.
 */
VHDX_API int vhdx_open(const char *path, const struct vhdx_open_options *opts,
		       struct vhdx_image **out);

/** Flushes (if writable) and closes IMG; returns the flush error if any. NULL is a no-op. */
VHDX_API int vhdx_close(struct vhdx_image *img);

/**
 * Reads LEN bytes of the virtual disk at byte offset OFF into BUF.  Any offset
 * and length are accepted.  Returns the number of bytes read, which is less
 * than LEN only when the range crosses the end of the disk (0 at or past it),
 * or -errno.  Thread-safe.
 */
VHDX_API ssize_t vhdx_pread(struct vhdx_image *img, void *buf, size_t len, uint64_t off);

/**
 * Writes LEN bytes of BUF at virtual offset OFF of the leaf (any offset and
 * length; partial sectors are read-modified-written).  The write is durable
 * only after vhdx_flush().  Returns the number of bytes written (less than
 * LEN only when the range crosses the end of the disk) or -errno: EROFS when
 * the image was not opened with VHDX_OPEN_RDWR, ENOTSUP when the leaf's
 * format cannot be written yet.  Serialised internally against other writes.
 */
VHDX_API ssize_t vhdx_pwrite(struct vhdx_image *img, const void *buf, size_t len, uint64_t off);

/**
 * Makes [OFF, OFF+LEN) of the leaf read as zeros.  Whole blocks are released
 * (state ZERO: no data stored); the partial blocks at the ends get zeros
 * written.  Durable after vhdx_flush().  0 or -errno (EROFS, ENOTSUP).
 */
VHDX_API int vhdx_discard(struct vhdx_image *img, uint64_t off, uint64_t len);

/** Makes every completed vhdx_pwrite() durable (at most two flushes of the file). */
VHDX_API int vhdx_flush(struct vhdx_image *img);

/**
 * A file descriptor holding layer LAYER's bytes at the file offsets that
 * vhdx_map() reports, for zero-copy reads (splice), or -1 when there is
 * none (in-memory backends, fault injection).  Owned by the image.
 */
VHDX_API int vhdx_layer_fd(struct vhdx_image *img, unsigned layer);

enum vhdx_format {
	VHDX_FORMAT_VHDX = 1,
	VHDX_FORMAT_VHD = 2,
};

enum vhdx_disk_type {
	VHDX_TYPE_FIXED = 1,
	VHDX_TYPE_DYNAMIC = 2,
	VHDX_TYPE_DIFFERENCING = 3,
};

struct vhdx_info {
	size_t struct_size;            /* sizeof(struct vhdx_info) */
	enum vhdx_format format;       /* of the leaf */
	enum vhdx_disk_type type;      /* of the leaf */
	uint64_t virtual_size;         /* bytes of the virtual disk */
	uint32_t block_size;           /* payload block size of the leaf (0 for fixed VHD) */
	uint32_t logical_sector_size;  /* 512 or 4096 */
	uint32_t physical_sector_size; /* 512 or 4096 */
	uint8_t disk_id[16];           /* VHDX virtual disk id / VHD unique id, on-disk bytes */
	unsigned layers;               /* 1 + number of parents opened */
	int writable;                  /* opened with VHDX_OPEN_RDWR */
	int log_replayed;              /* a dirty log was replayed (in memory when read-only) */
};

/** Fills *INFO (set info->struct_size first) for the whole image. */
VHDX_API int vhdx_get_info(struct vhdx_image *img, struct vhdx_info *info);

/** Path of layer LAYER (0 = the leaf that was opened, then each parent), or NULL. */
VHDX_API const char *vhdx_layer_path(struct vhdx_image *img, unsigned layer);

enum vhdx_extent_kind {
	VHDX_EXTENT_DATA = 1, /* bytes stored in layer LAYER's file at FOFF */
	VHDX_EXTENT_ZERO = 2, /* reads as zeros (unallocated, ZERO state, or beyond every layer) */
};

struct vhdx_extent {
	uint64_t voff;             /* virtual offset where the extent starts */
	uint64_t len;              /* bytes */
	enum vhdx_extent_kind kind;
	unsigned layer;            /* DATA: which layer's file holds it (0 = leaf) */
	uint64_t foff;             /* DATA: offset in that file */
};

/**
 * Describes the extent that starts at virtual offset VOFF: the longest run
 * (at most LEN bytes, clipped at the end of the disk) with one kind, one
 * layer and, for data, contiguous file offsets.  Call again at
 * voff + ext->len to walk a range.  Returns 0, or -EINVAL when VOFF is at or
 * past the end of the disk.  Thread-safe.
 */
VHDX_API int vhdx_map(struct vhdx_image *img, uint64_t voff, uint64_t len,
		      struct vhdx_extent *ext);

#define VHDX_CREATE_OVERWRITE 0x0001u /* replace an existing file instead of failing with EEXIST */

struct vhdx_create_options {
	size_t struct_size;            /* sizeof(struct vhdx_create_options) */
	enum vhdx_format format;       /* VHDX_FORMAT_VHDX (default) or VHDX_FORMAT_VHD */
	enum vhdx_disk_type type;      /* FIXED or DYNAMIC (default); a parent makes it DIFFERENCING */
	uint64_t virtual_size;         /* bytes, a multiple of the logical sector size; 0 = the parent's */
	uint32_t block_size;           /* 0 = 32 MiB, or 2 MiB for a differencing disk (Hyper-V's defaults) */
	uint32_t logical_sector_size;  /* 0 = 512 (or the parent's) */
	uint32_t physical_sector_size; /* 0 = 4096 (or the parent's) */
	uint32_t log_size;             /* VHDX log bytes, 1 MiB multiple; 0 = 1 MiB */
	const char *parent;            /* path of the parent for a differencing disk, or NULL */
	const char *creator;           /* creator string; NULL = "libvhdx VERSION" */
	unsigned flags;                /* VHDX_CREATE_* */
};

/** Fills *OPTS with the defaults: VHDX, dynamic, Hyper-V's sizes. */
VHDX_API void vhdx_create_options_init(struct vhdx_create_options *opts);

/**
 * Creates a new image at PATH.  Fails with EEXIST when PATH exists unless
 * VHDX_CREATE_OVERWRITE.  A differencing child (opts->parent set) takes its
 * virtual size and sector sizes from the parent and links to the parent's
 * current identity; the parent is only read.  0 or -errno.
 */
VHDX_API int vhdx_create(const char *path, const struct vhdx_create_options *opts);

/** The calling thread's message for the last failure of a libvhdx call. */
VHDX_API const char *vhdx_errmsg(void);

/** Library version as "MAJOR.MINOR.PATCH". */
VHDX_API const char *vhdx_version(void);

#ifdef __cplusplus
}
#endif

#endif /* LIBVHDX_H */
