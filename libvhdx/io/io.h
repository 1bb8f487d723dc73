/*
 * io.h - L0, the I/O stack.  Every byte the library reads or writes goes
 * through a struct vhdx_io: a small table of methods (the SQLite VFS idea)
 * so that tests and the fault engine can wrap the real file with one that
 * fails, delays, tears or "crashes".
 *
 * Backends embed struct vhdx_io as their first member:
 *   file     pread/pwrite on a descriptor, never a shared offset  (io/file.c)
 *   mem      a growable in-memory file, for tests and fuzzing      (io/mem.c)
 *   overlay  4 KiB pages kept in memory over a read-only lower io  (io/overlay.c)
 *   nbd      an export of an NBD server named by its URI, via libnbd (io/nbd.c)
 *
 * Callers use the vhdx_io_*() wrappers, never the methods directly: the
 * wrappers count operations and bytes per structure tag, turn short reads
 * into precise errors, and publish the tag and virtual offset of the
 * request in a thread-local context that the fault backend reads.
 */
#ifndef VHDX_IO_H
#define VHDX_IO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvhdx.h"

/* Which on-disk structure an I/O touches (for statistics and fault rules). */
enum vhdx_tag {
	VHDX_TAG_OTHER = 0,
	VHDX_TAG_FILEID,
	VHDX_TAG_HEADER,
	VHDX_TAG_REGION,
	VHDX_TAG_METADATA,
	VHDX_TAG_LOG,
	VHDX_TAG_BAT,
	VHDX_TAG_BITMAP,
	VHDX_TAG_PAYLOAD,
	VHDX_TAG_FOOTER,  /* VHD footer */
	VHDX_TAG_DYNHDR,  /* VHD dynamic header (and its parent locators) */
	VHDX_TAG__COUNT
};

/** Lower-case name of a tag ("header", "bat", ...). */
const char *vhdx_tag_name(enum vhdx_tag tag);

#define VHDX_NO_VOFF UINT64_MAX

enum vhdx_io_op { VHDX_IO_READ, VHDX_IO_WRITE, VHDX_IO_FLUSH, VHDX_IO_TRUNCATE, VHDX_IO__OPS };

struct vhdx_io;

#define VHDX_IO_METHODS_VERSION 1

struct vhdx_io_methods {
	unsigned version;
	/* Read exactly LEN bytes at OFF.  Past the end of the file: -ENODATA. */
	int (*pread)(struct vhdx_io *io, void *buf, size_t len, uint64_t off);
	/* Write exactly LEN bytes at OFF, extending the file if needed. */
	int (*pwrite)(struct vhdx_io *io, const void *buf, size_t len, uint64_t off);
	/* Make every completed write durable. */
	int (*flush)(struct vhdx_io *io);
	int (*get_size)(struct vhdx_io *io, uint64_t *size);
	int (*set_size)(struct vhdx_io *io, uint64_t size);
	/* Release the backend (and, for wrappers, the io it wraps). */
	void (*close)(struct vhdx_io *io);
	/* A descriptor holding the same bytes at the same offsets, or -1. */
	int (*get_fd)(struct vhdx_io *io);
};

struct vhdx_io_counters {
	atomic_uint_fast64_t ops[VHDX_IO__OPS];
	atomic_uint_fast64_t bytes[VHDX_IO__OPS];
	atomic_uint_fast64_t errors[VHDX_IO__OPS];
	atomic_uint_fast64_t tag_ops[VHDX_TAG__COUNT];
};

struct vhdx_io {
	const struct vhdx_io_methods *m;
	char *name;      /* path or label, for messages and fault rules (owned) */
	bool readonly;   /* pwrite/set_size refused with EROFS by the wrappers */
	struct vhdx_io_counters cnt;
};

/* Thread-local description of the request in flight (read by io/fault.c). */
struct vhdx_io_ctx {
	enum vhdx_tag tag;
	uint64_t voff;   /* virtual-disk offset of a payload request, or VHDX_NO_VOFF */
};
const struct vhdx_io_ctx *vhdx_io_current(void);

/** Initialises the common part of a backend; NAME is copied. 0 or -ENOMEM. */
int vhdx_io_init(struct vhdx_io *io, const struct vhdx_io_methods *m, const char *name, bool readonly);
/** Frees the common part (called by backends' close). */
void vhdx_io_fini(struct vhdx_io *io);

/* Wrappers.  Each returns 0 or -errno with a message naming the file, the
 * structure (TAG) and the offset. */
int vhdx_io_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off, enum vhdx_tag tag);
int vhdx_io_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off, enum vhdx_tag tag);
/* Payload variants carry the virtual offset for fault rules (voff=). */
int vhdx_io_pread_payload(struct vhdx_io *io, void *buf, size_t len, uint64_t foff, uint64_t voff);
int vhdx_io_pwrite_payload(struct vhdx_io *io, const void *buf, size_t len, uint64_t foff, uint64_t voff);
/** Writes LEN zero bytes at OFF (in bounded chunks). */
int vhdx_io_zero_range(struct vhdx_io *io, uint64_t off, uint64_t len, enum vhdx_tag tag);
int vhdx_io_flush(struct vhdx_io *io);
int vhdx_io_get_size(struct vhdx_io *io, uint64_t *size);
int vhdx_io_set_size(struct vhdx_io *io, uint64_t size);
int vhdx_io_get_fd(struct vhdx_io *io);
/** Closes IO (NULL is a no-op). */
void vhdx_io_close(struct vhdx_io *io);

/* Backends */

/** Opens PATH with pread/pwrite; WRITABLE selects O_RDWR. */
int vhdx_io_file_open(const char *path, bool writable, struct vhdx_io **out);
/** Wraps an already open descriptor (not closed by vhdx_io_close unless OWN). */
int vhdx_io_file_from_fd(int fd, const char *name, bool writable, bool own, struct vhdx_io **out);

/** A new in-memory file holding a copy of DATA[0..LEN) (DATA may be NULL for empty). */
int vhdx_io_mem_new(const void *data, size_t len, const char *name, struct vhdx_io **out);
/** The current contents of a mem backend (valid until the next write or close). */
const uint8_t *vhdx_io_mem_data(struct vhdx_io *io, size_t *len);

/**
 * A backend over the caller's callbacks (libvhdx.h, struct
 * vhdx_io_callbacks; the table is copied).  The source belongs to the
 * backend from this call on: its close callback runs when the backend is
 * closed, or before this returns an error.  EROFS when WRITABLE and the
 * table has no pwrite; EINVAL without pread or get_size.
 */
int vhdx_io_callbacks_new(const struct vhdx_io_callbacks *cb, void *opaque, bool writable, struct vhdx_io **out);
/** Calls CB's close callback (if the table has one) keeping the thread's error message. */
void vhdx_io_callbacks_release(const struct vhdx_io_callbacks *cb, void *opaque);
/** The copied table and opaque of a callbacks backend, or NULL when IO is another backend. */
const struct vhdx_io_callbacks *vhdx_io_callbacks_of(struct vhdx_io *io, void **opaque);

/**
 * An overlay over LOWER: writes are kept in memory in 4 KiB pages and never
 * reach LOWER; reads see the pages over LOWER's bytes; set_size changes only
 * the size seen through the overlay.  Used to replay a dirty VHDX log for a
 * read-only open without touching the file.  The overlay owns LOWER.
 */
int vhdx_io_overlay_new(struct vhdx_io *lower, struct vhdx_io **out);
/** Number of 4 KiB pages held by an overlay. */
size_t vhdx_io_overlay_pages(struct vhdx_io *io);

/* NBD sources (io/nbd.c, io/uri.c) */

/** True when PATH is an NBD URI (nbd://, nbds://, nbd+unix://, ...) rather than a file path. */
bool vhdx_io_is_uri(const char *path);
/**
 * Opens the export URI names through libnbd; WRITABLE fails with EROFS on a
 * read-only export.  Without libnbd: ENOTSUP saying so.  A server that has
 * no such export gives ENOENT, other connection failures EIO, each with
 * libnbd's message.
 */
int vhdx_io_nbd_open(const char *uri, bool writable, struct vhdx_io **out);
/** Opens PATH as an NBD URI or a file (vhdx_io_nbd_open / vhdx_io_file_open). */
int vhdx_io_open_path(const char *path, bool writable, struct vhdx_io **out);
/**
 * The URI of the export REL names relative to URI's export (its folder:
 * the export name up to its last '/', or all of it when URI_IS_FOLDER),
 * on the same server with the same query; '\\' counts as '/'.  A new
 * string (the caller frees it), or NULL when REL is absolute, climbs above
 * the top, URI is not an NBD URI, or memory ran out.
 */
char *vhdx_io_uri_resolve(const char *uri, const char *rel, bool uri_is_folder);

#endif /* VHDX_IO_H */
