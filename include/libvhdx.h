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
 *  - every image file is locked while it is open (see "Locking" below):
 *    EBUSY means another open holds the file ("NAME: in use for writing by
 *    another process (pid 123, vhdxfs); cannot open it for reading").
 */
#ifndef LIBVHDX_H
#define LIBVHDX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(VHDX_BUILDING_DLL)
/* the DLL exports exactly these (libvhdx.sym is for ELF only) */
#define VHDX_API __declspec(dllexport)
#elif defined(__GNUC__) && !defined(_WIN32)
#define VHDX_API __attribute__((visibility("default")))
#else
#define VHDX_API
#endif

/** Opaque handle on one opened image (and its parent chain). */
struct vhdx_image;
/** Opaque fault-injection engine (see "Fault injection" at the end). */
struct vhdx_faults;

/* Flags of struct vhdx_open_options.flags */
#define VHDX_OPEN_RDWR               0x0001u /* open the leaf writable (parents stay read-only) */
#define VHDX_OPEN_NO_PARENT          0x0002u /* do not open parents: read what the leaf holds, zeros elsewhere */
#define VHDX_OPEN_IGNORE_ID_MISMATCH 0x0004u /* accept a parent whose identity differs from the child's link */
#define VHDX_OPEN_SALVAGE            0x0008u /* read through bad VHD checksums and similar recoverable damage */
#define VHDX_OPEN_NO_REPLAY          0x0010u /* read-only open of a dirty VHDX: refuse instead of replaying in memory */
#define VHDX_OPEN_ALLOW_INCOMPLETE   0x0020u /* open a VHDX that still carries Windows' incomplete-file marker */
#define VHDX_OPEN_FORCE_SHARE        0x0040u /* read-only: take no lock and ignore other processes' locks
						(what is read may be inconsistent while another process writes) */

struct vhdx_open_options {
	size_t struct_size;             /* sizeof(struct vhdx_open_options) */
	unsigned flags;                 /* VHDX_OPEN_* */
	const char *parent;             /* explicit path of the immediate parent, or NULL */
	const char *const *parent_dirs; /* NULL-terminated folders searched for parents, or NULL */
	const char *const *path_maps;   /* NULL-terminated "WINPREFIX=DIR" maps for locator paths, or NULL */
	unsigned max_depth;             /* longest chain accepted; 0 = default (1000) */
	struct vhdx_faults *faults;     /* fault engine for every layer file of the chain, or NULL
					   (vhdx_faults_new; must outlive the image or be freed after it) */
};

/** Fills *opts with the defaults (read-only, parents resolved, depth 1000). */
VHDX_API void vhdx_open_options_init(struct vhdx_open_options *opts);

/**
 * Opens PATH (VHDX, AVHDX or VHD, detected from its contents) and, unless
 * VHDX_OPEN_NO_PARENT, its whole parent chain.  OPTS may be NULL for the
 * defaults.  On success *OUT owns the image; release it with vhdx_close().
 * A read-only open never writes to any file.
 *
 * Locking: each file is locked until vhdx_close(): the leaf of a
 * VHDX_OPEN_RDWR open exclusively, every other file (a read-only leaf,
 * every parent) shared.  Linux: open file description locks (flock()
 * where they do not exist); Windows: LockFileEx.  The locks belong to the
 * open, not to the process: a second vhdx_open() of a file conflicts like
 * another process would, while every thread using one image shares its
 * locks (share one image between threads instead of opening it twice).
 * The system drops them when the process dies.  A conflict fails at once
 * with -EBUSY before anything is read, and the message names the file, the
 * access asked for and the access held (and the holder's PID and command
 * where the system can tell).  VHDX_OPEN_FORCE_SHARE (read-only opens
 * only; EINVAL with VHDX_OPEN_RDWR) takes no lock and ignores the others.
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

#define VHDX_IN_USE_NONE  0 /* no other open holds the file */
#define VHDX_IN_USE_READ  1 /* another open reads it (a shared lock) */
#define VHDX_IN_USE_WRITE 2 /* another open writes it (an exclusive lock) */

/**
 * Whether another open (another process, or another vhdx_open() in this
 * one) holds layer LAYER's file: VHDX_IN_USE_NONE, _READ or _WRITE.  This
 * image's own lock does not count.  -ENOTSUP when the system cannot tell
 * (Windows), -EINVAL for a bad LAYER.
 */
VHDX_API int vhdx_layer_in_use(struct vhdx_image *img, unsigned layer);

/** A lock held on a file by vhdx_lock_file(). */
struct vhdx_file_lock;

/**
 * Takes the exclusive lock that a writable vhdx_open() of PATH would take,
 * without reading PATH, for a caller about to replace or remove the file
 * (renaming a new image over it): while the lock is held no other open of
 * the library can use the file, and -EBUSY (with the holder named, as
 * vhdx_open says it) means another open uses it now.  The file is opened
 * for writing but never written.  Release with vhdx_unlock_file() after
 * the replacement.  0 or -errno (ENOENT when PATH does not exist).
 */
VHDX_API int vhdx_lock_file(const char *path, struct vhdx_file_lock **out);
/** Drops LOCK (NULL is a no-op). */
VHDX_API void vhdx_unlock_file(struct vhdx_file_lock *lock);

/** Path of layer LAYER (0 = the leaf that was opened, then each parent), or NULL. */
VHDX_API const char *vhdx_layer_path(struct vhdx_image *img, unsigned layer);

#define VHDX_INFO_LOG 0x0001u /* vhdx_info_json: also every entry of each VHDX log's active sequence */

/**
 * The document `vhdx info --json` prints for IMG, as a NUL-terminated JSON
 * text in *JSON (malloc'd; free() it): format, type, sizes, disk id, the
 * chain and, per layer, its headers, region table, metadata, log state,
 * BAT state counts and parent locator.  FLAGS: VHDX_INFO_*.  0 or -errno.
 */
VHDX_API int vhdx_info_json(struct vhdx_image *img, unsigned flags, char **json);

#define VHDX_INFO_TEXT 0x0002u /* vhdx_info_doc: the indented text of `vhdx info` instead of JSON */
#define VHDX_INFO_OPEN 0x0004u /* vhdx_info_doc, JSON: leave the top object open (no closing brace and
				  newline) so the caller can append members and close it itself */

struct vhdx_info_doc_options {
	size_t struct_size;     /* sizeof(struct vhdx_info_doc_options) */
	unsigned flags;         /* VHDX_INFO_* */
	/* IMG holds the leaf alone (VHDX_OPEN_NO_PARENT) because its chain could not be
	 * opened: why, shown as chain_error (the partitions are then left out); or NULL */
	const char *chain_error;
};

/** Fills *OPTS with the defaults: JSON, no log entries, no chain error. */
VHDX_API void vhdx_info_doc_options_init(struct vhdx_info_doc_options *opts);

/**
 * The document `vhdx info` prints for IMG (vhdx_info_json()'s, in JSON or,
 * with VHDX_INFO_TEXT, as indented text) in *DOC, NUL-terminated and
 * malloc'd (free() it).  OPTS may be NULL (the defaults).  The document
 * holds, per layer, what inspecting an image shows: headers, region
 * table, metadata items, log state (and with VHDX_INFO_LOG each log
 * entry), BAT block state counts, parent locator.  0 or -errno (EINVAL,
 * ENOMEM).
 */
VHDX_API int vhdx_info_doc(struct vhdx_image *img, const struct vhdx_info_doc_options *opts, char **doc);

/** What one layer of an opened image is (vhdx_get_layer_info()). */
struct vhdx_layer_info {
	size_t struct_size;            /* sizeof(struct vhdx_layer_info) */
	const char *path;              /* as opened; valid until vhdx_close() */
	enum vhdx_format format;
	enum vhdx_disk_type type;
	uint64_t virtual_size;
	uint32_t block_size;           /* 0 for fixed VHD */
	uint32_t logical_sector_size;
	uint32_t physical_sector_size;
	uint8_t disk_id[16];           /* VHDX virtual disk id / VHD unique id, on-disk bytes */
	uint8_t identity[16];          /* what a child links to: VHDX DataWriteGuid, VHD unique id */
	int has_parent;                /* differencing: the link fields below are set */
	uint8_t parent_linkage[16];    /* the parent identity this layer links to */
	int has_parent_linkage2;
	uint8_t parent_linkage2[16];   /* VHDX parent_linkage2 (a second accepted identity) */
	uint32_t parent_timestamp;     /* VHD: the parent's time stamp the child was made with */
	const char *parent_locator;    /* the first locator entry as stored (".\\web01.vhdx"), or NULL;
					  valid until vhdx_close() */
	int log_was_dirty;             /* VHDX: the log held entries to replay when the layer was opened */
	int log_replayed;              /* those entries were replayed (into the file when writable) */
	const char *log_report;        /* VHDX: what the replay did, or NULL; valid until vhdx_close() */
	uint64_t bat_foff;             /* VHDX: file offset of the BAT region (0 for VHD) */
	uint64_t bat_entries;          /* VHDX: entries of the BAT, payload and sector bitmap (0 for VHD) */
	uint64_t chunk_ratio;          /* VHDX: payload blocks per sector bitmap block (0 for VHD) */
};

/**
 * Fills *INFO (set info->struct_size first) for layer LAYER of IMG (0 =
 * the leaf, then each parent; vhdx_get_info() gives their number).
 * 0, -EINVAL (bad struct_size) or -ENOENT (no such layer).
 */
VHDX_API int vhdx_get_layer_info(struct vhdx_image *img, unsigned layer, struct vhdx_layer_info *info);

/** The name of disk type T: "fixed", "dynamic", "differencing" (or "unknown"), as `vhdx info` shows it. */
VHDX_API const char *vhdx_type_name(enum vhdx_disk_type t);

/**
 * Whether PATH is an image: 1 when a format (VHDX or VHD) recognises its
 * first bytes, 0 when none does, -errno (with a message) when it cannot be
 * read.  The file is read without a lock and nothing else is checked.
 */
VHDX_API int vhdx_probe_file(const char *path);

/**
 * Opens the parent of CHILD's leaf alone (as with VHDX_OPEN_NO_PARENT,
 * read-only) the way vhdx_open() finds it: the locator entries, then
 * OPTS' path_maps, parent_dirs and parent (OPTS may be NULL), checking its
 * identity against the leaf's link unless VHDX_OPEN_IGNORE_ID_MISMATCH;
 * VHDX_OPEN_FORCE_SHARE opens it without a lock.  On success *OUT owns it
 * (vhdx_close()).  0 or -errno: EINVAL (the leaf is not differencing),
 * ENOENT naming every path tried, EBADMSG for an identity mismatch.
 */
VHDX_API int vhdx_open_parent(struct vhdx_image *child, const struct vhdx_open_options *opts,
			      struct vhdx_image **out);

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

/* ---------------------------------------------------------------- caller-supplied I/O
 *
 * vhdx_open_io() reads an image whose bytes are not a local file (a file
 * inside an E01 or a zip, a Python file object, a remote source) through a
 * table of callbacks.  OPAQUE is passed to each of them.
 *
 * Callbacks return -errno on failure and may record the message that the
 * library's own message will end with by calling vhdx_set_errmsg() first
 * (else strerror() is used): a failed read then reports
 * "NAME: reading STRUCTURE at offset 0x...: THEIR MESSAGE".
 *
 * Threading: without VHDX_IO_SERIALIZE the library may call pread and
 * get_size of one source from several threads at once (every thread that
 * reads the image), and pwrite and flush while reads are running (writes
 * themselves come one at a time); the callbacks must be safe for that,
 * e.g. use positional reads, never a shared seek offset.  With
 * VHDX_IO_SERIALIZE the library holds a mutex of its own around every
 * call, so at most one callback of that source runs at a time (sources of
 * different layers have separate mutexes).  Callbacks run only on threads
 * inside a libvhdx call on the image; open_parent only inside
 * vhdx_open_io().  They must not call vhdx_close() on the image.
 *
 * Ownership: the source belongs to the library from the call of
 * vhdx_open_io() (or from open_parent's successful return) on; its close
 * callback is called exactly once: by vhdx_close(), or before the open
 * returns an error.  The table is copied; NAME too.
 */
#define VHDX_IO_SERIALIZE 0x0001u /* call this source's callbacks one at a time */

/** One parent-locator entry, in the order the format resolves them. */
struct vhdx_parent_locator_entry {
	const char *key;   /* "relative_path", "volume_path", "absolute_win32_path" (VHDX; the linkage
			      is in vhdx_parent_request.linkage), "W2ru", "W2ku", "parent_name" (VHD) */
	const char *value; /* as stored in the image (Windows form, UTF-8) */
};

/** What open_parent is asked for (valid during the call only). */
struct vhdx_parent_request {
	size_t struct_size;        /* sizeof(struct vhdx_parent_request) of the library */
	const char *child_name;    /* name of the child's source */
	unsigned depth;            /* layer number the parent will have (1 = the leaf's parent) */
	enum vhdx_format format;   /* of the child */
	uint8_t linkage[16];       /* identity the parent must have (VHDX DataWriteGuid, VHD unique id) */
	size_t n_entries;
	const struct vhdx_parent_locator_entry *entries;
};

struct vhdx_io_callbacks {
	size_t struct_size;        /* sizeof(struct vhdx_io_callbacks) */
	unsigned flags;            /* VHDX_IO_* */
	const char *name;          /* label in messages and vhdx_layer_path(), or NULL: "(caller I/O)" */
	/* Required.  Reads up to LEN bytes at OFF; returns the count (fewer only at the end of the
	   source: the library asks again for the rest; 0 at or past the end) or -errno. */
	ssize_t (*pread)(void *opaque, void *buf, size_t len, uint64_t off);
	/* Required.  The size of the source in bytes; 0 or -errno. */
	int (*get_size)(void *opaque, uint64_t *size);
	/* Optional (NULL: the source can only be opened read-only).  Writes up to LEN bytes
	   at OFF, growing the source when OFF+LEN is past its end; returns the count or -errno. */
	ssize_t (*pwrite)(void *opaque, const void *buf, size_t len, uint64_t off);
	/* Optional.  Makes every completed pwrite durable; 0 or -errno. */
	int (*flush)(void *opaque);
	/* Optional.  Releases the source (called once, see Ownership). */
	void (*close)(void *opaque);
	/*
	 * Optional.  Opens the parent that REQ describes: on success sets *CB (a table
	 * valid during the call; copied) and *PARENT_OPAQUE and returns 0; the parent's
	 * own parent is then asked through *CB's open_parent.  -ENOENT (with a message)
	 * when it has none to give.  The library checks the parent's identity against
	 * REQ->linkage (VHDX_OPEN_IGNORE_ID_MISMATCH accepts a mismatch) before using it.
	 * NULL: parents are searched as files, as vhdx_open() does (relative to NAME's
	 * folder, then vhdx_open_options.parent / parent_dirs / path_maps).
	 */
	int (*open_parent)(void *opaque, const struct vhdx_parent_request *req, const struct vhdx_io_callbacks **cb,
			   void **parent_opaque);
};

/**
 * Opens the image whose bytes CB reads (VHDX, AVHDX or VHD, detected) and,
 * unless VHDX_OPEN_NO_PARENT, its parents (see open_parent).  OPTS as for
 * vhdx_open() (may be NULL); VHDX_OPEN_RDWR needs a pwrite callback (EROFS
 * otherwise).  A read-only open never calls pwrite: a dirty log is
 * replayed in memory.  0 or -errno; on success release *OUT with
 * vhdx_close().
 */
VHDX_API int vhdx_open_io(const struct vhdx_io_callbacks *cb, void *opaque, const struct vhdx_open_options *opts,
			  struct vhdx_image **out);

/**
 * Records MESSAGE (printf FMT) as the calling thread's libvhdx error
 * message and returns -ERR: for callbacks of struct vhdx_io_callbacks, as
 * `return vhdx_set_errmsg(EIO, "segment %u: CRC error", n);`.
 */
VHDX_API int vhdx_set_errmsg(int err, const char *fmt, ...)
#if defined(__GNUC__) && !defined(_WIN32)
	__attribute__((format(printf, 2, 3)))
#endif
	;

#define VHDX_CREATE_OVERWRITE 0x0001u /* replace an existing file instead of failing with EEXIST */

struct vhdx_create_options {
	size_t struct_size;            /* sizeof(struct vhdx_create_options) */
	enum vhdx_format format;       /* VHDX_FORMAT_VHDX (default) or VHDX_FORMAT_VHD */
	enum vhdx_disk_type type;      /* FIXED or DYNAMIC (default); a parent makes it DIFFERENCING */
	uint64_t virtual_size;         /* bytes, a multiple of the logical sector size; 0 = the parent's */
	uint32_t block_size;           /* 0 = 32 MiB, or 2 MiB for a differencing disk (Hyper-V's defaults); VHD: 2 MiB */
	uint32_t logical_sector_size;  /* 0 = 512 (or the parent's) */
	uint32_t physical_sector_size; /* 0 = 4096 (or the parent's) */
	uint32_t log_size;             /* VHDX log bytes, 1 MiB multiple; 0 = 1 MiB */
	const char *parent;            /* path of the parent for a differencing disk, or NULL */
	const char *creator;           /* creator string; NULL = "libvhdx VERSION" */
	unsigned flags;                /* VHDX_CREATE_* */
	struct vhdx_faults *faults;    /* inject these faults into the new file and the parent (or NULL) */
};

/** Fills *OPTS with the defaults: VHDX, dynamic, Hyper-V's sizes. */
VHDX_API void vhdx_create_options_init(struct vhdx_create_options *opts);

/**
 * Creates a new image at PATH.  Fails with EEXIST when PATH exists unless
 * VHDX_CREATE_OVERWRITE.  A differencing child (opts->parent set) takes its
 * virtual size and sector sizes from the parent and links to the parent's
 * current identity; the parent is only read.  Every parameter is checked
 * before PATH is created or truncated: EINVAL (the message says the allowed
 * range) leaves an existing file as it was, even with VHDX_CREATE_OVERWRITE.
 * Every byte of the new file
 * is allocated on the file system where it can be (posix_fallocate: a fixed
 * disk's data area, the other structures), so a file system without room
 * fails here with -ENOSPC (the file removed) rather than a later write.
 * 0 or -errno.
 */
VHDX_API int vhdx_create(const char *path, const struct vhdx_create_options *opts);

/* ---------------------------------------------------------------- merge and reparent */

#define VHDX_MERGE_DELETE 0x0001u /* delete the merged layers after a successful merge */

struct vhdx_merge_options {
	size_t struct_size;             /* sizeof(struct vhdx_merge_options) */
	const char *into;               /* the ancestor to merge into, or NULL: the immediate parent */
	unsigned flags;                 /* VHDX_MERGE_* */
	unsigned open_flags;            /* VHDX_OPEN_IGNORE_ID_MISMATCH is honoured; others are ignored */
	const char *parent;             /* chain options, as in struct vhdx_open_options */
	const char *const *parent_dirs;
	const char *const *path_maps;
	unsigned max_depth;
	struct vhdx_faults *faults;     /* fault engine for every file the merge opens, or NULL */
	const char *const *relink;      /* NULL-terminated children of CHILD to re-point to the ancestor */
	/* called now and then with bytes of the virtual disk done; a non-zero return cancels (ECANCELED) */
	int (*progress)(uint64_t done, uint64_t total, void *arg);
	void *progress_arg;
	/* called for each layer merged (CHILD and those between), after the merge: DELETED says whether it was removed */
	void (*merged_layer)(const char *path, int deleted, void *arg);
};

/** Fills *OPTS with the defaults (immediate parent, keep the merged layers). */
VHDX_API void vhdx_merge_options_init(struct vhdx_merge_options *opts);

/**
 * Writes the data of CHILD and of every layer between CHILD and the ancestor
 * into the ancestor, through its log: afterwards the ancestor alone reads as
 * CHILD read before.  Nothing is modified when the chain cannot be opened.
 * A crash leaves the ancestor consistent, and running the same merge again
 * completes it (CHILD.merging records the merge until it is complete).  The
 * ancestor gets a new DataWriteGuid (VHDX), so the merged layers no longer
 * link to it; the children named in opts->relink are re-pointed to the
 * ancestor.  The ancestor (and with VHDX_MERGE_DELETE each layer to delete)
 * must lie in CHILD's folder or below, or in opts->parent_dirs, or be the
 * file opts->into (or opts->parent) names: else EPERM before any write.
 * 0 or -errno.
 */
VHDX_API int vhdx_merge(const char *child, const struct vhdx_merge_options *opts);

#define VHDX_REPARENT_RELINK 0x0001u /* also set the linkage to NEW_PARENT's identity (else it must match) */

/**
 * Points the parent locator of CHILD at NEW_PARENT (relative and absolute
 * paths; VHD: W2ru and W2ku where CHILD has them, and the parent's Unicode
 * name, relative with '/' as vhd-lib reads it: a child without locators is
 * re-pointed through its header alone).  Without
 * VHDX_REPARENT_RELINK, NEW_PARENT's identity must be the one CHILD links
 * to (EBADMSG otherwise); with it, the link is rewritten.  VHDX: written
 * through the log, and only FileWriteGuid changes (CHILD's data does not).
 * ELOOP, before any write, when NEW_PARENT is CHILD or its parents lead back
 * to CHILD.  0 or -errno.
 */
VHDX_API int vhdx_reparent(const char *child, const char *new_parent, unsigned flags);

struct vhdx_reparent_options {
	size_t struct_size;             /* sizeof(struct vhdx_reparent_options) */
	unsigned flags;                 /* VHDX_REPARENT_* */
	struct vhdx_faults *faults;     /* fault engine for both files, or NULL */
};

/** Fills *OPTS with the defaults (identities must match, no faults). */
VHDX_API void vhdx_reparent_options_init(struct vhdx_reparent_options *opts);

/** vhdx_reparent() with options (OPTS NULL: the defaults).  0 or -errno. */
VHDX_API int vhdx_reparent_ex(const char *child, const char *new_parent, const struct vhdx_reparent_options *opts);

/**
 * Whether CHILD.merging records an unfinished vhdx_merge() of CHILD: 1 and
 * the ancestor's path in *ANCESTOR (malloc'd; free() it), 0 when there is
 * no record (*ANCESTOR NULL), -errno (with a message) when it cannot be read.
 */
VHDX_API int vhdx_merge_pending(const char *child, char **ancestor);

/* ---------------------------------------------------------------- check and repair */

#define VHDX_CHECK_NO_OFF UINT64_MAX /* a problem without a file offset */

enum vhdx_check_severity {
	VHDX_CHECK_ERROR = 0,   /* the format's rules are broken */
	VHDX_CHECK_WARNING = 1, /* legal or harmless, but not what a clean writer leaves (leaked space, ...) */
};

/** One problem found.  The strings are valid during the callback only. */
struct vhdx_check_problem {
	enum vhdx_check_severity severity;
	const char *structure;  /* fixed vocabulary: "header 1", "region table 2", "BAT entry", "footer", ... */
	uint64_t foff;          /* file offset of the structure, or VHDX_CHECK_NO_OFF */
	const char *message;
};

/** One repair done, or one virtual range whose data a repair gave up (lost). */
struct vhdx_check_event {
	const char *structure;
	uint64_t foff;          /* or VHDX_CHECK_NO_OFF */
	const char *message;
	uint64_t lost_voff, lost_len; /* lost ranges only (len 0 otherwise) */
};

#define VHDX_CHECK_REPAIR 0x0001u /* repair what can be repaired (opens the file read-write), then check again */
#define VHDX_CHECK_CHAIN  0x0002u /* also open the parent chain of a differencing disk whose structures are sound */

struct vhdx_check_options {
	size_t struct_size;                          /* sizeof(struct vhdx_check_options) */
	unsigned flags;                              /* VHDX_CHECK_* */
	struct vhdx_faults *faults;                  /* fault engine around the file, or NULL */
	const struct vhdx_open_options *chain_opts;  /* options of the chain's open (may be NULL) */
	void *ctx;                                   /* passed to the callbacks */
	/* each problem of the first pass (AFTER 0) and, with VHDX_CHECK_REPAIR, of the pass after it (AFTER 1) */
	void (*problem)(void *ctx, int after, const struct vhdx_check_problem *p);
	void (*repaired)(void *ctx, const struct vhdx_check_event *e); /* each repair done */
	void (*lost)(void *ctx, const struct vhdx_check_event *e);     /* each range given up */
};

/** The counts of a check (vhdx_check()). */
struct vhdx_check_counts {
	size_t struct_size;        /* sizeof(struct vhdx_check_counts) */
	const char *format;        /* "vhdx", "vhd", or NULL when the file is neither (static storage) */
	unsigned errors, warnings; /* first pass */
	unsigned repairs;          /* repair actions done */
	unsigned errors_after, warnings_after; /* after the repair (VHDX_CHECK_REPAIR only) */
};

/** Fills *OPTS with the defaults: check only, this file alone, no callbacks. */
VHDX_API void vhdx_check_options_init(struct vhdx_check_options *opts);

/**
 * Checks every structure of the VHDX or VHD file PATH (`vhdx check`) and
 * calls opts->problem for each problem, with its severity, structure and
 * file offset.  With VHDX_CHECK_REPAIR, repairs what it can, each step
 * crash-safe (replays a dirty log, restores a header, region table or VHD
 * footer copy from the good one, clears BAT entries that cannot be right,
 * reporting their ranges lost, frees leaked space at the end), then checks
 * again.  *COUNTS (set counts->struct_size first; may be NULL) is filled
 * even on failure.  0 when the checks could run, whatever they found;
 * -errno when the file could not be checked at all or a repair step
 * failed (events already reported stand).
 */
VHDX_API int vhdx_check(const char *path, const struct vhdx_check_options *opts, struct vhdx_check_counts *counts);

/* ---------------------------------------------------------------- compact and resize */

struct vhdx_compact_options {
	size_t struct_size;             /* sizeof(struct vhdx_compact_options) */
	struct vhdx_faults *faults;     /* fault engine for the file, or NULL */
	/* called now and then with bytes done (scanned, then moved); a non-zero return cancels (ECANCELED) */
	int (*progress)(uint64_t done, uint64_t total, void *arg);
	void *progress_arg;
};

struct vhdx_compact_result {
	size_t struct_size;             /* sizeof(struct vhdx_compact_result) */
	uint64_t blocks_examined;       /* payload blocks stored in the file before */
	uint64_t blocks_zeroed;         /* all-zero blocks no longer stored */
	uint64_t blocks_dropped;        /* differencing: partially present blocks with no sector of their own */
	uint64_t bitmaps_freed;         /* sector-bitmap blocks no longer needed */
	uint64_t blocks_moved;          /* blocks (payload and bitmap) moved down in the file */
	uint64_t bytes_moved;
	uint64_t old_file_size, new_file_size;
};

/** Fills *OPTS with the defaults (no faults, no progress). */
VHDX_API void vhdx_compact_options_init(struct vhdx_compact_options *opts);

/**
 * Compacts the dynamic or differencing image PATH (VHDX or VHD) in place,
 * like Hyper-V's Optimize-VHD: blocks whose data is all zero stop being
 * stored (in a differencing VHDX they become ZERO blocks, so the parent
 * stays hidden; a differencing VHD keeps them, having no such state),
 * blocks with no sector of their own are released, blocks move down into
 * the freed space and the file is truncated.  The virtual disk reads
 * exactly the same before, after, and after a crash at any point; the
 * image keeps its identity (children stay linked).  EINVAL for a fixed
 * image.  RES may be NULL.  0 or -errno.
 */
VHDX_API int vhdx_compact(const char *path, const struct vhdx_compact_options *opts, struct vhdx_compact_result *res);

struct vhdx_resize_options {
	size_t struct_size;             /* sizeof(struct vhdx_resize_options) */
	struct vhdx_faults *faults;     /* fault engine for the file, or NULL */
};

struct vhdx_resize_result {
	size_t struct_size;             /* sizeof(struct vhdx_resize_result) */
	uint64_t old_size, new_size;    /* virtual disk bytes */
	int bat_relocated;              /* VHDX: the BAT region moved to make room for more entries */
	uint64_t old_file_size, new_file_size;
};

/** Fills *OPTS with the defaults. */
VHDX_API void vhdx_resize_options_init(struct vhdx_resize_options *opts);

/**
 * Changes the virtual size of PATH to NEW_SIZE bytes (a multiple of the
 * logical sector size).  VHDX: grows (the BAT region moves when it is too
 * small) and shrinks when no allocated block lies past the new end
 * (EINVAL naming the first one otherwise); through the log, crash-safe.
 * VHD: grows a fixed image, and a dynamic one while its BAT can grow in
 * place (ENOSPC otherwise); shrinking a VHD is refused (ENOTSUP).  A
 * differencing image is refused (EINVAL): its size is its parent's.  The
 * old content stays, the new area reads as zeros.  RES may be NULL.
 * 0 or -errno.
 */
VHDX_API int vhdx_resize(const char *path, uint64_t new_size, const struct vhdx_resize_options *opts,
			 struct vhdx_resize_result *res);

/* ---------------------------------------------------------------- partitions (volumes) */

enum vhdx_partition_scheme {
	VHDX_SCHEME_NONE = 0, /* no partition table (table.fs: maybe a file system on the whole disk) */
	VHDX_SCHEME_MBR = 1,
	VHDX_SCHEME_GPT = 2,
};

#define VHDX_PARTITION_BOOTABLE 0x1u /* MBR status 0x80 */
#define VHDX_PARTITION_LOGICAL 0x2u  /* MBR logical partition (numbers 5 and up) */
#define VHDX_PARTITION_EXTENDED 0x4u /* MBR extended partition: a container of logicals, no file system */
#define VHDX_PARTITION_UNREADABLE 0x8u /* its first bytes could not be read, fs is unknown (table->note says why) */

struct vhdx_partition {
	size_t struct_size;     /* sizeof(struct vhdx_partition): set in parts[0] by the caller */
	unsigned number;        /* as Linux numbers it: GPT entry index + 1; MBR slot 1-4, logicals 5.. */
	unsigned flags;         /* VHDX_PARTITION_* */
	uint64_t offset, size;  /* bytes of the virtual disk */
	uint8_t mbr_type;       /* MBR: the type byte */
	uint8_t type_guid[16];  /* GPT: type GUID, on-disk bytes */
	uint8_t guid[16];       /* GPT: unique GUID, on-disk bytes */
	uint64_t attributes;    /* GPT attribute bits */
	char type_name[48];     /* "Microsoft basic data", "HPFS/NTFS/exFAT", ... ("" when unknown) */
	char kind[16];          /* from the type: "ldm", "storage-spaces", "msr", "extended", "protective", or "" */
	char name[112];         /* GPT name, UTF-8 */
	char fs[16];            /* contents found: ntfs refs fat12 fat16 fat32 exfat ext2 ext3 ext4 xfs
				   btrfs bitlocker luks swap lvm2, or "" */
	char label[96];         /* volume label (NTFS, FAT, ext, XFS, Btrfs), UTF-8, or "" */
};

struct vhdx_partition_table {
	size_t struct_size;     /* sizeof(struct vhdx_partition_table) */
	enum vhdx_partition_scheme scheme;
	uint32_t sector_size;   /* bytes per sector the table was read with */
	uint32_t mbr_signature; /* MBR disk signature */
	uint8_t disk_guid[16];  /* GPT disk GUID, on-disk bytes */
	int from_backup;        /* GPT: the primary header or array was damaged; the backup was read */
	char note[512];         /* what was noticed and worked around, "" if nothing */
	char fs[16], label[96]; /* VHDX_SCHEME_NONE: what the whole disk holds */
	unsigned count;         /* partitions found (also the return value) */
};

/**
 * Reads the partition table of IMG's virtual disk (GPT with its backup,
 * MBR with extended/logical chains) and probes each partition's first
 * bytes for a file system and its label.  Fills *TABLE (set
 * table->struct_size) and up to MAX entries of PARTS (set
 * parts[0].struct_size: it is the stride of the array; every entry filled
 * gets it too), ascending by number.  Returns the number of partitions
 * found, which may exceed MAX (call again with a larger array; PARTS may
 * be NULL when MAX is 0).  A damaged table is -EBADMSG naming the
 * structure and byte offset (table->scheme still says which kind), a GPT
 * read from its backup is not an error (table->from_backup, table->note).
 * Reads only; thread-safe like vhdx_pread.  Count or -errno.
 */
VHDX_API int vhdx_partitions(struct vhdx_image *img, struct vhdx_partition_table *table,
			     struct vhdx_partition *parts, unsigned max);

/** The calling thread's message for the last failure of a libvhdx call. */
VHDX_API const char *vhdx_errmsg(void);

/**
 * Notes about the opened chain that are not errors (for example a parent
 * whose virtual size differs from its child's), one per line; "" when
 * there are none.  Owned by the image.
 */
VHDX_API const char *vhdx_warnings(struct vhdx_image *img);

/** Library version as "MAJOR.MINOR.PATCH". */
VHDX_API const char *vhdx_version(void);

/**
 * 1 when PATH is an NBD URI (nbd://, nbds://, nbd+unix://, nbds+unix://,
 * nbd+vsock://) rather than a file path, else 0.  vhdx_open() takes such
 * a URI as PATH, as the parent option and in parent_dirs: the image is
 * then read from that NBD export through libnbd (written only with
 * VHDX_OPEN_RDWR, inside the export's fixed size), and a relative parent
 * locator names an export of the same server (libvhdx(3), NBD sources).
 * A library built without libnbd fails such an open with ENOTSUP.
 * Programs use this to pass URIs through where they would make a path
 * absolute.
 */
VHDX_API int vhdx_path_is_uri(const char *path);

/* ---------------------------------------------------------------- fault injection
 *
 * A struct vhdx_faults holds rules that make the I/O of layer files fail,
 * slow down, tear or corrupt, the way a failing disk would.  Put it in
 * vhdx_open_options.faults: every layer file of the chain is then opened
 * through it (op=open rules apply before the file is opened, op=close rules
 * make vhdx_close() fail).  Rules can be added, listed and cleared while
 * images using the engine do I/O on other threads; with no rules the cost
 * is one atomic load per I/O.  One engine may serve several images.
 *
 * Rule language: one rule a line, `key=value` words, `#` comments.
 *   match:  op=read|write|flush|truncate|open|close|lock|any (default any; any
 *                                does not include lock: op=lock err=EBUSY makes
 *                                taking a file's lock fail as if another process held it)
 *           file=GLOB            the layer file's path or its base name
 *           off=START-END        file bytes (inclusive; also START+LEN or N)
 *           voff=START-END       virtual-disk bytes of payload I/O
 *           struct=header|region|metadata|log|bat|bitmap|payload|footer|dynhdr|fileid|other
 *                                (a comma list is accepted)
 *           nth=N                only the Nth matching call
 *           after=N              only the calls after the first N matching ones
 *           every=N              every Nth matching call (counted after `after`)
 *           prob=P [seed=S]      with probability P (0..1 or N%), deterministic per seed
 *           once                 act at most once (default: every time it fires)
 *   action: err=EIO              fail with that errno (name or number); also sets
 *                                the errno of short, torn and crash (default EIO)
 *           delay=MS             sleep, then do the I/O (adds to any other action)
 *           short=BYTES          read/write only the first BYTES, then fail
 *           torn=SECTORS         write only the first SECTORS*512 bytes, then fail
 *           flip=N               flip N bits (1..64) of the data read or written,
 *                                positions from seed; the call succeeds
 *           crash                a power cut: every write not yet flushed (on any
 *                                file of the engine) is undone, the call and every
 *                                later call on those files fail with EIO; with
 *                                torn=, the torn part of this write survives
 * Numbers take 0x hex and K/M/G/T suffixes.  Every call is tested against
 * every rule in order (each rule counts its own matching calls); when
 * several fire on one call their delays add up and the first other action
 * decides the outcome (later ones are not applied and do not count a hit).
 *
 * Crash limit: to undo unflushed writes, each file keeps their pre-images
 * while a crash rule is active: at most 256 MiB per file by default
 * (vhdx_faults_set_crash_limit).  Past it the file stops keeping them until
 * its next flush, and a crash rule firing there fails the call with ENOMEM
 * ("cannot simulate the crash") instead of pretending.  Writes made before
 * the first crash rule was added count as flushed.
 *
 * Events: every fault injected is recorded (time, rule, operation, file,
 * offsets, structure, action) in a ring of the last 10000 (configurable),
 * with counters that never wrap around.
 */

/** A new engine without rules.  0 or -ENOMEM.  Release with vhdx_faults_free(). */
VHDX_API int vhdx_faults_new(struct vhdx_faults **out);
/**
 * Drops the caller's reference.  Files opened through F keep their own, so
 * F may be freed before the images that use it are closed.  NULL is a no-op.
 */
VHDX_API void vhdx_faults_free(struct vhdx_faults *f);
/**
 * Adds the rules of TEXT (one or many lines) after the existing ones, all or
 * none: on a parse error nothing is added and the message says
 * "faults line N: ...".  Returns the number of rules added (>= 0) or -errno.
 */
VHDX_API int vhdx_faults_add(struct vhdx_faults *f, const char *text);
/** Same from a file; messages say "PATH line N: ...". */
VHDX_API int vhdx_faults_load_file(struct vhdx_faults *f, const char *path);
/** Removes rule ID (the number of vhdx_faults_format_rules()).  0 or -ENOENT. */
VHDX_API int vhdx_faults_remove(struct vhdx_faults *f, unsigned id);
/** Removes every rule (rule numbers keep counting up; events and counters stay). */
VHDX_API void vhdx_faults_clear(struct vhdx_faults *f);
/** Empties the event ring (counters stay). */
VHDX_API void vhdx_faults_clear_events(struct vhdx_faults *f);

/**
 * The active rules, one a line, re-loadable:
 *   "op=read voff=1048576-1114111 err=EIO  # rule 1: hits=3 matched=10\n"
 * *TEXT is malloc'd ("" when there are none).  0 or -ENOMEM.
 */
VHDX_API int vhdx_faults_format_rules(struct vhdx_faults *f, char **text);
/** Matched calls and hits of rule ID.  0 or -ENOENT. */
VHDX_API int vhdx_faults_rule_hits(struct vhdx_faults *f, unsigned id, uint64_t *matched, uint64_t *hits);

#define VHDX_FAULT_NO_OFFSET UINT64_MAX

/** One injected fault. */
struct vhdx_fault_event {
	size_t struct_size;     /* sizeof(struct vhdx_fault_event) of the library */
	uint64_t seq;           /* 1, 2, ...: order of injection */
	uint64_t time_ns;       /* CLOCK_MONOTONIC */
	unsigned rule;          /* rule number */
	const char *rule_text;
	const char *op;         /* "read", "write", "flush", "truncate", "open", "close" */
	const char *file;       /* layer file path */
	uint64_t foff;          /* file offset (truncate: the new size) or VHDX_FAULT_NO_OFFSET */
	uint64_t len;           /* bytes of the request (0 for flush, truncate, open, close) */
	uint64_t voff;          /* virtual offset of payload I/O or VHDX_FAULT_NO_OFFSET */
	const char *structure;  /* "bat", "payload", ... or "" */
	const char *action;     /* "err", "delay", "short", "torn", "flip", "crash", "after-crash",
				   "crash-unavailable" */
	const char *detail;     /* "ms=50", "bytes=100", "sectors=2", "bits=5,811", ... or "" */
	int error;              /* errno the call returns (0: it goes on, as for delay and flip) */
};

/**
 * The recorded events with seq > SINCE, one a line:
 *   "seq=3 t=0.004211 rule=2 op=read file=disk.vhdx off=0x300000 len=4096 voff=-
 *    struct=bat action=err errno=EIO reread=no"
 * (t: seconds since the engine was made).  A failed read (err=, short=)
 * ends with reread=yes once a later successful read of the same file
 * overlapped its range (a retry made it harmless), else reread=no.  *TEXT
 * is malloc'd; *NEXT (may be
 * NULL) gets the last seq printed (SINCE when none), to pass as SINCE next
 * time.  0 or -ENOMEM.
 */
VHDX_API int vhdx_faults_format_events(struct vhdx_faults *f, uint64_t since, char **text, uint64_t *next);

/**
 * Calls FN(EV, ARG) for every event as it is injected (NULL: none), on the
 * thread doing the I/O and with the engine's lock held: FN must be quick and
 * must not call vhdx_faults_* functions.  EV's strings live during the call.
 */
VHDX_API void vhdx_faults_set_callback(struct vhdx_faults *f,
				       void (*fn)(const struct vhdx_fault_event *ev, void *arg), void *arg);

struct vhdx_faults_stats {
	size_t struct_size;       /* sizeof(struct vhdx_faults_stats) */
	unsigned rules;           /* active rules */
	uint64_t calls;           /* I/O calls tested against rules (while any were active) */
	uint64_t events;          /* faults injected (= the last event seq) */
	uint64_t events_kept;     /* of those, still in the ring */
	uint64_t failed;          /* calls made to fail (err, short, torn, crash, after-crash, ...) */
	uint64_t errors, delays, shorts, torns, flips, crashes, after_crash;
	uint64_t by_op[6];        /* events per op: read, write, flush, truncate, open, close */
};

/** Fills *ST (set st->struct_size first). 0 or -EINVAL. */
VHDX_API int vhdx_faults_get_stats(struct vhdx_faults *f, struct vhdx_faults_stats *st);

/** Bytes of unflushed-write pre-images a file may keep for crash rules (default 256 MiB). */
VHDX_API void vhdx_faults_set_crash_limit(struct vhdx_faults *f, uint64_t bytes);
/** Events kept in the ring (default 10000; at least 1); empties the ring. */
VHDX_API void vhdx_faults_set_event_limit(struct vhdx_faults *f, size_t n);

/* ---------------------------------------------------------------- GUIDs */

#define VHDX_GUID_TEXT_SIZE 37 /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" and its NUL */

/**
 * Writes GUID, 16 bytes as stored on disk (Microsoft mixed-endian: the
 * first three fields little-endian), into OUT as lower-case text without
 * braces, the way Hyper-V and `vhdx info` show it.  Never fails.
 */
VHDX_API void vhdx_guid_text(const uint8_t guid[16], char out[VHDX_GUID_TEXT_SIZE]);

#ifdef __cplusplus
}
#endif

#endif /* LIBVHDX_H */
