/*
 * vhdxfs.h - shared state of the vhdxfs FUSE driver: the mounted image, the
 * fixed inode layout (/, /disk, /.vhdxfs and its control files), the I/O
 * statistics, and the table of control files under .vhdxfs.
 *
 * The driver uses only the public API of libvhdx (libvhdx.h).  It is split
 * into vhdxfs.c (command line, session, main loop), vhdxfs_ops.c (the
 * low-level operations) and stats.c (counters and .vhdxfs/stats).
 */
#ifndef VHDXFS_H
#define VHDXFS_H

/*
 * libfuse 3.12 replaced the public loop configuration struct by an opaque
 * one with setters; libfuse_config.h first shipped in 3.13, so its presence
 * selects the newer API and older libraries (>= 3.10) keep the 3.5 API.
 */
#ifndef FUSE_USE_VERSION
#if defined(__has_include)
#if __has_include(<libfuse_config.h>)
#define FUSE_USE_VERSION 312
#endif
#endif
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 35
#endif
#endif

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "libvhdx.h"

/* Fixed inode numbers.  Control files are VHDXFS_INO_CTL + index. */
#define VHDXFS_INO_ROOT 1u  /* FUSE_ROOT_ID */
#define VHDXFS_INO_DISK 2u
#define VHDXFS_INO_CTLDIR 3u
#define VHDXFS_INO_CTL 16u

/* Partition N's file ("pN", fuse/parts.c) is inode VHDXFS_INO_PART + N. */
#define VHDXFS_INO_PART 0x10000u
#define VHDXFS_MAX_PART 32768u

#define VHDXFS_DISK_NAME "disk"
#define VHDXFS_CTLDIR_NAME ".vhdxfs"

/*
 * Largest read or write request we ask the kernel for.  Not 1 MiB: libfuse
 * splices a reply through a pipe that must hold the whole reply plus a page
 * per segment, and an unprivileged process (also root without
 * CAP_SYS_RESOURCE, as in containers) cannot grow a pipe past
 * /proc/sys/fs/pipe-max-size, 1 MiB by default; 1 MiB replies then fall back
 * to a copy through a freshly allocated buffer and ran 3-4 times slower than
 * 512 KiB replies in our measurements.
 */
#define VHDXFS_MAX_IO (512u << 10)

/* errno values counted one by one in the statistics (the rest go to errors_other). */
#define VHDXFS_N_ERRNOS 10

struct vhdxfs_layer_stats {
	_Atomic uint64_t reads;      /* read requests that touched data of this layer */
	_Atomic uint64_t read_bytes; /* bytes of those requests stored in this layer */
};

struct vhdxfs_stats {
	_Atomic uint64_t reads;           /* read requests on /disk */
	_Atomic uint64_t read_bytes;      /* bytes returned by them */
	_Atomic uint64_t zero_copy_reads; /* answered with file-descriptor segments (splice) */
	_Atomic uint64_t copied_reads;    /* answered from a buffer filled by vhdx_pread() */
	_Atomic uint64_t zero_reads;      /* answered entirely with zeros (no file access) */
	_Atomic uint64_t writes;          /* write requests on /disk */
	_Atomic uint64_t write_bytes;     /* bytes accepted by them */
	_Atomic uint64_t flushes;         /* vhdx_flush() calls (fsync, close after writes) */
	_Atomic uint64_t errors;          /* every error reply for /disk */
	_Atomic uint64_t errors_by_errno[VHDXFS_N_ERRNOS + 1]; /* last slot: any other errno */
	pthread_mutex_t last_error_lock;
	char last_error[512];             /* message of the most recent error, "" if none */
	struct vhdxfs_layer_stats *layer; /* one per layer of the chain */
	unsigned n_layers;
};

/* Everything one mount owns; fuse_req_userdata() returns it. */
struct vhdxfs {
	struct vhdx_image *img;
	struct vhdx_info info;
	const char *image_path; /* as given on the command line */
	bool rw;                /* -o rw: /disk is writable */
	unsigned max_read;      /* -o max_read, 0 if not given */
	bool direct_io;         /* -o direct_io: /disk is opened with FOPEN_DIRECT_IO */
	/* -o readahead: see vhdxfs_readahead_apply() */
	char bdi_ra_path[96];   /* /sys/class/bdi/MAJ:MIN/read_ahead_kb of the mount, "" if unknown */
	unsigned readahead_want; /* KiB to set, 0 to leave the kernel's window */
	bool readahead_explicit; /* given with -o: failing to set it is worth a warning */
	_Atomic bool readahead_applied;
	_Atomic unsigned readahead_kb; /* the window in effect (KiB), 0 if unknown */
	uid_t uid;              /* owner of every file: the mounting user */
	gid_t gid;
	_Atomic int64_t mtime_ns; /* of /disk: the image file's at mount, then the last write */
	struct timespec mount_time;
	_Atomic bool dirty;     /* a write since the last vhdx_flush() */
	int close_ret;          /* result of vhdx_close() in destroy */
	char *close_msg;        /* its message when it failed (malloc'd), for -o close-status */
	struct vhdxfs_stats stats;
	struct vhdxfs_faults *faults; /* the fault engine of this mount (faults_files.c) */
	struct fuse_session *se; /* for cache invalidation notices to the kernel */
	bool singlethread;       /* -s: one thread serves every request */
	_Atomic unsigned cache_drops; /* helper threads of vhdxfs_disk_cache_drop still running */
	struct vhdxfs_parts *parts; /* the partition files (parts.c); NULL with -o nopartitions */
};

/*
 * One file under .vhdxfs.  The contents are rendered once when the file is
 * opened (a consistent snapshot); reads are served from that snapshot, so a
 * file's size is reported as 0 and it is opened with direct_io, like /proc.
 * To add a file, write its render (and, if writable, write) function and add
 * one row to vhdxfs_ctl_files[] in vhdxfs_ops.c.
 */
struct vhdxfs_ctl_file {
	const char *name;
	mode_t perm; /* 0444 read-only, 0644 writable */
	/* Renders the contents into a malloc'd buffer *OUT of *LEN bytes; 0 or -errno. */
	int (*render)(struct vhdxfs *fs, char **out, size_t *len);
	/* Handles LEN bytes written at OFF; returns bytes consumed or -errno.  NULL: read-only. */
	ssize_t (*write)(struct vhdxfs *fs, const char *buf, size_t len, uint64_t off);
};

extern const struct vhdxfs_ctl_file vhdxfs_ctl_files[];
extern const unsigned vhdxfs_n_ctl_files;

/** The low-level operations table of the driver (vhdxfs_ops.c). */
extern const struct fuse_lowlevel_ops vhdxfs_ops;

/* ---- vhdxfs.c ---- */

/**
 * Drops the kernel's page cache of /disk, so that the next reads come to
 * this process (and through the fault rules) again.  Waits for the kernel
 * unless the loop is single-threaded: the kernel may be waiting for us to
 * answer a read of a page it must drop, so there a helper thread does it.
 */
void vhdxfs_disk_cache_drop(struct vhdxfs *fs);

/**
 * Sets the readahead window of the mount (-o readahead, default 1 MiB) the
 * first time it is called, and records the window in effect for the stats.
 * Called by the operations that precede any open of /disk (lookup, getattr,
 * open): every request but INIT reaches us after the kernel has processed
 * the INIT answer, which lowers the window to what INIT agreed on; and a
 * file takes the window of its mount when it is opened.  Thread-safe.
 */
void vhdxfs_readahead_apply(struct vhdxfs *fs);

/* ---- stats.c ---- */

/** Initialises FS->stats for N_LAYERS layers; 0 or -ENOMEM. */
int vhdxfs_stats_init(struct vhdxfs *fs, unsigned n_layers);
/** Frees what vhdxfs_stats_init() allocated. */
void vhdxfs_stats_free(struct vhdxfs *fs);
/**
 * Counts one failed operation with error ERR (positive errno) and remembers
 * MSG (may be NULL) as the last error.  Thread-safe.
 */
void vhdxfs_stats_error(struct vhdxfs *fs, int err, const char *msg);
/** Adds N to counter C (relaxed: the counters are statistics, not synchronisation). */
static inline void vhdxfs_count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}
/** Renders .vhdxfs/stats as "key=value" lines (a vhdxfs_ctl_file render function). */
int vhdxfs_stats_render(struct vhdxfs *fs, char **out, size_t *len);
/** "EIO", "ENOSPC", ... for the errnos the stats count, else NULL. */
const char *vhdxfs_errno_name(int err);

/* ---- faults_files.c: fault injection (-o faults=, .vhdxfs/faults, events) ---- */

/**
 * Makes FS's fault engine (every mount has one, so rules can be added while
 * mounted), loading RULES_PATH (NULL: none) and remembering LOG_PATH (NULL:
 * none) for vhdxfs_faults_finish.  Prints the reason ("vhdxfs: -o faults:
 * FILE line N: ...") and returns -errno on failure.
 */
int vhdxfs_faults_setup(struct vhdxfs *fs, const char *rules_path, const char *log_path);
/** The engine for vhdx_open_options.faults, or NULL before setup. */
struct vhdx_faults *vhdxfs_faults_engine(struct vhdxfs *fs);
/**
 * After the image is closed: writes the fault log (rules with their hit
 * counts, then every event) if one was asked for, and frees the engine.
 * 0, or -1 when the log could not be written (message printed).
 */
int vhdxfs_faults_finish(struct vhdxfs *fs);
/** .vhdxfs/faults: the active rules with their hit counts (render function). */
int vhdxfs_faults_render(struct vhdxfs *fs, char **out, size_t *len);
/** .vhdxfs/faults: adds rule lines, or "clear", or "remove N" (write function). */
ssize_t vhdxfs_faults_write(struct vhdxfs *fs, const char *buf, size_t len, uint64_t off);
/** .vhdxfs/events: one line per injected fault (render function). */
int vhdxfs_events_render(struct vhdxfs *fs, char **out, size_t *len);
/** The fault counters as "key=value" lines for .vhdxfs/stats (*OUT malloc'd, NULL without engine). */
int vhdxfs_faults_stats(struct vhdxfs *fs, char **out);

/* ---- parts.c: the partition files p1, p2, ... ---- */

/** Reads the partition table (a damaged one only logs a warning: no files). 0 or -ENOMEM. */
int vhdxfs_parts_init(struct vhdxfs *fs);
/** Frees what vhdxfs_parts_init made. */
void vhdxfs_parts_free(struct vhdxfs *fs);
/** Notes a write to /disk: the table is read again at the next flush. */
void vhdxfs_parts_disk_written(struct vhdxfs *fs);
/** After a flush of /disk: reads the table again if /disk was written since. */
void vhdxfs_parts_reload(struct vhdxfs *fs);
/** The disk range of partition file INO: 0, or ENOENT when it is none (now). Thread-safe. */
int vhdxfs_part_range(struct vhdxfs *fs, fuse_ino_t ino, uint64_t *start, uint64_t *size);
/** The inode of root entry NAME when it is a partition file ("p3"), else 0. */
fuse_ino_t vhdxfs_part_lookup(struct vhdxfs *fs, const char *name);
/** Up to MAX inodes of the partition files, ascending; their number (INOS NULL: how many there are). */
unsigned vhdxfs_parts_list(struct vhdxfs *fs, fuse_ino_t *inos, unsigned max);
/** Drops [OFF, OFF+LEN) of /disk from the kernel's cache (after a write through a partition file). */
void vhdxfs_parts_disk_inval(struct vhdxfs *fs, uint64_t off, uint64_t len);
/** True for the inode of a partition file (existing or not). */
static inline bool vhdxfs_is_part_ino(fuse_ino_t ino)
{
	return ino > VHDXFS_INO_PART && ino <= VHDXFS_INO_PART + VHDXFS_MAX_PART;
}

#endif /* VHDXFS_H */
