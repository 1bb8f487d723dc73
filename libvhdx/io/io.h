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
 * io/stack.h builds the stack of an image file (file or nbd, fault, lock)
 * and closes it again; the layers above open files through it.
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
struct vhdx_faults;

#define VHDX_IO_METHODS_VERSION 2

/* Locks on image files (io/lock.c; issue #14): one writer or many readers. */
enum vhdx_lock_mode {
	VHDX_LOCK_NONE = 0,      /* no lock (as a holder: unknown or nobody) */
	VHDX_LOCK_SHARED = 1,    /* opened for reading */
	VHDX_LOCK_EXCLUSIVE = 2, /* opened for writing (or to delete) */
};

/* Who holds a conflicting lock, as far as the system can tell. */
struct vhdx_lock_holder {
	enum vhdx_lock_mode mode; /* VHDX_LOCK_NONE when unknown */
	long pid;                 /* 0 when unknown */
	char cmd[64];             /* the holder's command name, or "" */
	char note[96];            /* set by the fault engine: "injected EBUSY (fault rule 2)", or "" */
};

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
	/*
	 * Version 2.  Takes (SHARED, EXCLUSIVE) or drops (NONE) this open
	 * file's lock without waiting.  A conflict with another open of the
	 * same file (also in this process) fails with -EBUSY and *HELD filled
	 * in as far as known.  NULL: the backend cannot lock (always granted).
	 */
	int (*lock)(struct vhdx_io *io, enum vhdx_lock_mode mode, struct vhdx_lock_holder *held);
	/*
	 * What other opens of the file hold, not counting this one's own
	 * lock: *HELD->mode NONE, SHARED or EXCLUSIVE.  0, or -ENOTSUP when
	 * the system cannot tell.  NULL: -ENOTSUP.
	 */
	int (*lock_test)(struct vhdx_io *io, struct vhdx_lock_holder *held);
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
/**
 * Allocates the file's space for [OFF, OFF+LEN) without changing its bytes
 * (posix_fallocate; the size grows when the range ends past it), so that
 * later writes there cannot fail for want of space.  0, also where there
 * is nothing to do it with (no descriptor: mem, fault; no
 * posix_fallocate; a file system that cannot, EOPNOTSUPP); -ENOSPC (or
 * another -errno) with a message naming the file, TAG and the range.
 */
int vhdx_io_allocate(struct vhdx_io *io, uint64_t off, uint64_t len, enum vhdx_tag tag);
/*
 * As vhdx_io_allocate, but the file's size stays as it is (fallocate
 * KEEP_SIZE): for a format whose last bytes must stay its footer (VHD) until
 * the footer itself moves.  A reservation that fails is given back.
 */
int vhdx_io_reserve(struct vhdx_io *io, uint64_t off, uint64_t len, enum vhdx_tag tag);
int vhdx_io_flush(struct vhdx_io *io);
int vhdx_io_get_size(struct vhdx_io *io, uint64_t *size);
int vhdx_io_set_size(struct vhdx_io *io, uint64_t size);
int vhdx_io_get_fd(struct vhdx_io *io);
/** Closes IO (NULL is a no-op). */
void vhdx_io_close(struct vhdx_io *io);

/*
 * Locking (io/lock.c).  vhdx_io_lock() takes or drops IO's lock; a conflict
 * is -EBUSY with the message "NAME: in use for writing by another process
 * (pid 123, vhdxfs); cannot open it for reading".  vhdx_io_lock_test()
 * says what other opens hold (-ENOTSUP when the system cannot tell).
 */
int vhdx_io_lock(struct vhdx_io *io, enum vhdx_lock_mode mode);
int vhdx_io_lock_test(struct vhdx_io *io, struct vhdx_lock_holder *held);
/*
 * For a backend layered over LOWER (fault, overlay): pass a lock call on to
 * the file below as it is, without a message (the caller's vhdx_io_lock
 * writes it).  No lock method below: granted / -ENOTSUP.
 */
int vhdx_io_pass_lock(struct vhdx_io *lower, enum vhdx_lock_mode mode, struct vhdx_lock_holder *held);
int vhdx_io_pass_lock_test(struct vhdx_io *lower, struct vhdx_lock_holder *held);
/** "reading", "writing" (or "use" for NONE): the access a lock mode stands for. */
const char *vhdx_lock_access(enum vhdx_lock_mode mode);

/*
 * A lock set: locks that a maintenance operation (merge, reparent, check
 * --repair) takes at its start on the files it will change, for as long as
 * it runs.  While a set is active on a thread, every file that thread
 * opens through vhdx_io_open_locked() and that a set of the thread covers
 * (the same file, a mode at least as strong) takes no lock of its own: the
 * operation's own opens of one file never conflict with each other, while
 * every other open, in this process or another, still does.  Sets nest.
 */
struct vhdx_lockset {
	struct vhdx_lockset *outer; /* the set active before this one */
	size_t n, cap;
	struct vhdx_lockset_entry {
		char *path;
		enum vhdx_lock_mode mode;
		struct vhdx_io *io;  /* the open that holds the lock (NULL: covered by an outer set) */
	} *ent;                      /* malloc'd */
};
/** Makes S (zeroed here) the thread's innermost set. */
void vhdx_lockset_begin(struct vhdx_lockset *s);
/**
 * Locks PATH in MODE for S (opening it through FAULTS, which may be NULL).
 * A file an active set already covers is only recorded.  EXCLUSIVE on a
 * file that cannot be opened for writing falls back to SHARED.  0 or -errno
 * (-EBUSY: in use).
 */
int vhdx_lockset_add(struct vhdx_lockset *s, const char *path, enum vhdx_lock_mode mode, struct vhdx_faults *faults);
/** Drops S's locks and makes its outer set current again. */
void vhdx_lockset_end(struct vhdx_lockset *s);

/**
 * Opens PATH as a file io (WRITABLE: read-write), wrapped in the fault
 * backend when FAULTS is set (op=open rules first), and locks it in MODE
 * unless MODE is NONE or an active lock set covers it.  On a conflict
 * nothing has been read or written.  0 or -errno.  The short form of
 * vhdx_io_stack_open() (io/stack.h, io/stack.c).
 */
int vhdx_io_open_locked(const char *path, bool writable, enum vhdx_lock_mode mode, struct vhdx_faults *faults,
			struct vhdx_io **out);
/** Whether an active lock set of this thread covers PATH in MODE. */
bool vhdx_lockset_covers(const char *path, enum vhdx_lock_mode mode);

/* Backends */

/**
 * Opens PATH with pread/pwrite; WRITABLE selects O_RDWR.  Refuses (EINVAL)
 * a FIFO, socket or folder: none can hold an image, and the open never
 * waits for a FIFO's writer.
 */
int vhdx_io_file_open(const char *path, bool writable, struct vhdx_io **out);
/**
 * vhdx_io_file_open(); with REGULAR_ONLY anything but a regular file
 * (devices too) is refused with EPERM, judged by fstat() on the very
 * descriptor the backend then uses (no gap between check and use).
 */
int vhdx_io_file_open_kind(const char *path, bool writable, bool regular_only, struct vhdx_io **out);
/** Wraps an already open descriptor (not closed by vhdx_io_close unless OWN). */
int vhdx_io_file_from_fd(int fd, const char *name, bool writable, bool own, struct vhdx_io **out);

/** A new in-memory file holding a copy of DATA[0..LEN) (DATA may be NULL for empty). */
int vhdx_io_mem_new(const void *data, size_t len, const char *name, struct vhdx_io **out);
/**
 * A second open of the in-memory file behind mem backend IO (same bytes),
 * named NAME, with a lock of its own: two opens of one mem file conflict
 * like two opens of one real file.  0 or -ENOMEM.
 */
int vhdx_io_mem_reopen(struct vhdx_io *io, const char *name, struct vhdx_io **out);
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
