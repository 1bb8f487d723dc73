/*
 * vhdxfs_ops.c - the FUSE low-level operations of vhdxfs.
 *
 * The tree is fixed: / holds `disk` (the whole virtual disk as one raw file)
 * and `.vhdxfs/`, whose control files come from vhdxfs_ctl_files[].  Inode
 * numbers never change, so lookups need no table and forget is a no-op.
 *
 * Reads of `disk` walk the allocation map (vhdx_map) of the requested range.
 * When every data extent lives in a layer whose file descriptor is exposed
 * (vhdx_layer_fd), the reply is a fuse_bufvec of file-descriptor segments
 * (FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK) mixed with zero segments, and libfuse
 * splices the bytes from the image file to /dev/fuse without copying them
 * through this process.  Otherwise (no descriptor, too many fragments) the
 * request is served by vhdx_pread into a buffer.  Writes go to vhdx_pwrite;
 * fsync, and close after writes, call vhdx_flush.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "vhdxfs.h"

/* The disk's size and contents change only through this process: cache for long. */
#define DISK_TIMEOUT 86400.0
/* Control files are rendered at open; their attributes never change either. */
#define CTL_TIMEOUT 86400.0
/*
 * Most file-descriptor/zero segments in one read reply before falling back to
 * a copy; libfuse sizes its splice pipe as the reply plus a page per segment,
 * and VHDXFS_MAX_IO + (MAX_SEGMENTS + 2) pages stays within a 1 MiB pipe.
 */
#define MAX_SEGMENTS 64

const struct vhdxfs_ctl_file vhdxfs_ctl_files[] = {
	{ "stats", 0444, vhdxfs_stats_render, NULL },
	/* [ctl files] fault injection (faults_files.c) */
	{ "faults", 0644, vhdxfs_faults_render, vhdxfs_faults_write },
	{ "events", 0444, vhdxfs_events_render, NULL },
};
const unsigned vhdxfs_n_ctl_files = sizeof vhdxfs_ctl_files / sizeof vhdxfs_ctl_files[0];

/* Zeros for the ZERO extents of a read reply; never written. */
static char zero_buf[VHDXFS_MAX_IO];

/* An open control file: its rendered snapshot. */
struct ctl_handle {
	const struct vhdxfs_ctl_file *cf;
	char *buf;
	size_t len;
	struct ctl_handle *next;
};

/*
 * Live control-file handles.  An interrupted read (a reader killed or
 * stopping early) can still be in our queue when the kernel sends RELEASE
 * for its handle, on another thread; so handlers never trust fi->fh alone:
 * they look the handle up here and use it under the lock, and RELEASE
 * unlinks it under the same lock before freeing.
 */
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ctl_handle *ctl_live;

static void ctl_register(struct ctl_handle *h)
{
	pthread_mutex_lock(&ctl_lock);
	h->next = ctl_live;
	ctl_live = h;
	pthread_mutex_unlock(&ctl_lock);
}

/* Returns FH's handle with ctl_lock held, or NULL (lock released) when it is gone. */
static struct ctl_handle *ctl_get(uint64_t fh)
{
	pthread_mutex_lock(&ctl_lock);
	for (struct ctl_handle *h = ctl_live; h; h = h->next)
		if ((uint64_t)(uintptr_t)h == fh)
			return h;
	pthread_mutex_unlock(&ctl_lock);
	return NULL;
}

static void ctl_put(void)
{
	pthread_mutex_unlock(&ctl_lock);
}

/* Unlinks and frees FH's handle, if it is still live. */
static void ctl_release(uint64_t fh)
{
	struct ctl_handle **pp, *h = NULL;

	pthread_mutex_lock(&ctl_lock);
	for (pp = &ctl_live; *pp; pp = &(*pp)->next) {
		if ((uint64_t)(uintptr_t)*pp == fh) {
			h = *pp;
			*pp = h->next;
			break;
		}
	}
	pthread_mutex_unlock(&ctl_lock);
	if (h) {
		free(h->buf);
		free(h);
	}
}

static struct vhdxfs *ops_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/*
 * The bytes of /disk a data file (/disk or a partition file) shows: [*BASE,
 * *BASE + *LIMIT).  0, or ENOENT for any other inode (or a partition gone).
 */
static int file_range(struct vhdxfs *fs, fuse_ino_t ino, uint64_t *base, uint64_t *limit)
{
	if (ino == VHDXFS_INO_DISK) {
		*base = 0;
		*limit = fs->info.virtual_size;
		return 0;
	}
	return vhdxfs_part_range(fs, ino, base, limit);
}

/* Attribute and entry timeout of INO: partition files change with the table on a rw mount. */
static double ino_timeout(struct vhdxfs *fs, fuse_ino_t ino)
{
	return vhdxfs_is_part_ino(ino) && fs->rw ? 1.0 : ino == VHDXFS_INO_DISK ? DISK_TIMEOUT : CTL_TIMEOUT;
}

static const struct vhdxfs_ctl_file *ctl_by_ino(fuse_ino_t ino)
{
	if (ino < VHDXFS_INO_CTL || ino >= VHDXFS_INO_CTL + vhdxfs_n_ctl_files)
		return NULL;
	return &vhdxfs_ctl_files[ino - VHDXFS_INO_CTL];
}

/* Fills *ST for inode INO; 0 or ENOENT. */
static int ops_stat(struct vhdxfs *fs, fuse_ino_t ino, struct stat *st)
{
	const struct vhdxfs_ctl_file *cf;
	uint64_t base, size;
	int64_t ns;

	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_atim = fs->mount_time;
	st->st_mtim = fs->mount_time;
	st->st_ctim = fs->mount_time;
	st->st_blksize = 4096;
	switch (ino) {
	case VHDXFS_INO_ROOT:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 3;
		return 0;
	case VHDXFS_INO_CTLDIR:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	case VHDXFS_INO_DISK:
	data_file:
		if (file_range(fs, ino, &base, &size) != 0)
			return ENOENT;
		st->st_mode = S_IFREG | (fs->rw ? 0644 : 0444);
		st->st_nlink = 1;
		st->st_size = (off_t)size;
		st->st_blocks = (blkcnt_t)(size / 512);
		/* A large hint makes cp/cat move the disk in big requests. */
		st->st_blksize = VHDXFS_MAX_IO;
		ns = atomic_load_explicit(&fs->mtime_ns, memory_order_relaxed);
		st->st_mtim.tv_sec = (time_t)(ns / 1000000000);
		st->st_mtim.tv_nsec = (long)(ns % 1000000000);
		st->st_ctim = st->st_mtim;
		st->st_atim = st->st_mtim;
		return 0;
	default:
		if (vhdxfs_is_part_ino(ino))
			goto data_file;
		cf = ctl_by_ino(ino);
		if (!cf)
			return ENOENT;
		st->st_mode = S_IFREG | cf->perm;
		st->st_nlink = 1;
		st->st_size = 0; /* rendered at open; read with direct_io */
		return 0;
	}
}

/* Replies ERR to REQ; disk errors are counted in the stats with MSG. */
static void reply_disk_err(fuse_req_t req, int err, const char *msg)
{
	vhdxfs_stats_error(ops_fs(req), err, msg);
	fuse_reply_err(req, err);
}

/* ------------------------------------------------------------ session */

static void ops_init(void *userdata, struct fuse_conn_info *conn)
{
	struct vhdxfs *fs = userdata;

	/* Replies made of image-file segments are spliced when the kernel allows. */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* Write data must land in memory for vhdx_pwrite anyway: no splice in. */
	conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
	/*
	 * Requests of up to VHDXFS_MAX_IO (libfuse derives max_pages from
	 * max_write, which also bounds reads); readahead can only be lowered
	 * from the kernel's offer, so cap it at the same size.
	 */
	conn->max_write = VHDXFS_MAX_IO;
	if (conn->max_readahead > VHDXFS_MAX_IO)
		conn->max_readahead = VHDXFS_MAX_IO;
	/* libfuse refuses a session whose init() disagrees with -o max_read. */
	conn->max_read = fs->max_read;
}

/*
 * Unmount (or session end): close the image, which flushes a writable leaf
 * and leaves its log clean.  The result is kept for main()'s exit status.
 */
static void ops_destroy(void *userdata)
{
	struct vhdxfs *fs = userdata;

	if (fs->img) {
		fs->close_ret = vhdx_close(fs->img);
		if (fs->close_ret < 0) {
			fuse_log(FUSE_LOG_ERR, "vhdxfs: closing %s: %s\n", fs->image_path, vhdx_errmsg());
			free(fs->close_msg);
			fs->close_msg = strdup(vhdx_errmsg());
		}
		fs->img = NULL;
	}
}

/* ------------------------------------------------------------ names */

static void ops_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct vhdxfs *fs = ops_fs(req);
	struct fuse_entry_param e;
	fuse_ino_t ino = 0;

	vhdxfs_readahead_apply(fs);
	memset(&e, 0, sizeof e);
	if (parent == VHDXFS_INO_ROOT) {
		if (!strcmp(name, VHDXFS_DISK_NAME))
			ino = VHDXFS_INO_DISK;
		else if (!strcmp(name, VHDXFS_CTLDIR_NAME))
			ino = VHDXFS_INO_CTLDIR;
		else
			ino = vhdxfs_part_lookup(fs, name);
	} else if (parent == VHDXFS_INO_CTLDIR) {
		for (unsigned i = 0; i < vhdxfs_n_ctl_files; i++)
			if (!strcmp(name, vhdxfs_ctl_files[i].name))
				ino = VHDXFS_INO_CTL + i;
	} else if (ops_stat(fs, parent, &e.attr) != 0) {
		fuse_reply_err(req, ENOENT);
		return;
	} else {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	if (!ino) {
		/* A negative entry, cached: the tree changes only with the partition table of a rw mount. */
		e.ino = 0;
		e.entry_timeout = fs->rw && fs->parts ? 1.0 : DISK_TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	ops_stat(fs, ino, &e.attr);
	e.ino = ino;
	e.attr_timeout = ino_timeout(fs, ino);
	e.entry_timeout = vhdxfs_is_part_ino(ino) && fs->rw ? 1.0 : DISK_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static void ops_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int err = ops_stat(ops_fs(req), ino, &st);

	vhdxfs_readahead_apply(ops_fs(req));
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, ino_timeout(ops_fs(req), ino));
}

/*
 * The virtual disk has a fixed size and the tree fixed owners and modes, so
 * only no-op changes are accepted: truncating a control file before writing
 * to it, "setting" the disk to its own size, and time updates (ignored).
 */
static void ops_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	struct vhdxfs *fs = ops_fs(req);
	struct stat st;
	int err = ops_stat(fs, ino, &st);

	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (ino == VHDXFS_INO_DISK || vhdxfs_is_part_ino(ino)) {
			if (!fs->rw) {
				reply_disk_err(req, EROFS, "truncate: the disk is mounted read-only");
				return;
			}
			if ((off_t)attr->st_size != st.st_size) {
				reply_disk_err(req, EPERM, "truncate: the virtual disk size is fixed (use dd conv=notrunc)");
				return;
			}
		} else if (!ctl_by_ino(ino) || !ctl_by_ino(ino)->write) {
			fuse_reply_err(req, ino == VHDXFS_INO_ROOT || ino == VHDXFS_INO_CTLDIR ? EISDIR : EACCES);
			return;
		}
	}
	fuse_reply_attr(req, &st, ino_timeout(fs, ino));
}

static void ops_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct vhdxfs *fs = ops_fs(req);
	struct statvfs sv;

	memset(&sv, 0, sizeof sv);
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = (fs->info.virtual_size + 4095) / 4096;
	sv.f_files = 3 + vhdxfs_n_ctl_files;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* ------------------------------------------------------------ directories */

static void ops_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != VHDXFS_INO_ROOT && ino != VHDXFS_INO_CTLDIR) {
		fuse_reply_err(req, ctl_by_ino(ino) || ino == VHDXFS_INO_DISK || vhdxfs_is_part_ino(ino) ? ENOTDIR : ENOENT);
		return;
	}
	/* the root lists the partition files, which change with the table on a rw mount */
	fi->cache_readdir = !(ino == VHDXFS_INO_ROOT && ops_fs(req)->rw && ops_fs(req)->parts);
	fuse_reply_open(req, fi);
}

static void ops_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct vhdxfs *fs = ops_fs(req);
	const char *names[3 + 64];
	fuse_ino_t inos[3 + 64];
	unsigned n = 0, n_parts = 0;
	fuse_ino_t *parts = NULL;
	size_t used = 0;
	char *buf;

	names[n] = ".";
	inos[n++] = ino;
	names[n] = "..";
	inos[n++] = VHDXFS_INO_ROOT;
	if (ino == VHDXFS_INO_ROOT) {
		names[n] = VHDXFS_DISK_NAME;
		inos[n++] = VHDXFS_INO_DISK;
		names[n] = VHDXFS_CTLDIR_NAME;
		inos[n++] = VHDXFS_INO_CTLDIR;
		/* then p1, p2, ...: entries n, n + 1, ... */
		n_parts = vhdxfs_parts_list(fs, NULL, 0);
		parts = n_parts ? calloc(n_parts, sizeof *parts) : NULL;
		n_parts = parts ? vhdxfs_parts_list(fs, parts, n_parts) : 0;
	} else if (ino == VHDXFS_INO_CTLDIR) {
		for (unsigned i = 0; i < vhdxfs_n_ctl_files && n < 3 + 64; i++) {
			names[n] = vhdxfs_ctl_files[i].name;
			inos[n++] = VHDXFS_INO_CTL + i;
		}
	} else {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		free(parts);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Entry k has offset k + 1: the offset of the entry after it. */
	for (off_t k = off < 0 ? 0 : off; k < (off_t)(n + n_parts); k++) {
		fuse_ino_t ino_k = k < (off_t)n ? inos[k] : parts[k - n];
		char pname[16];
		struct stat st;
		size_t need;

		ops_stat(fs, ino_k, &st);
		if (k >= (off_t)n)
			snprintf(pname, sizeof pname, "p%u", (unsigned)(ino_k - VHDXFS_INO_PART));
		need = fuse_add_direntry(req, buf + used, size - used, k < (off_t)n ? names[k] : pname, &st, k + 1);
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
	free(parts);
}

/* ------------------------------------------------------------ open / close */

static void ops_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vhdxfs *fs = ops_fs(req);
	const struct vhdxfs_ctl_file *cf;
	int acc = fi->flags & O_ACCMODE;
	struct ctl_handle *h;
	int ret;

	if (ino == VHDXFS_INO_DISK || vhdxfs_is_part_ino(ino)) {
		uint64_t base, limit;

		vhdxfs_readahead_apply(fs);
		if (file_range(fs, ino, &base, &limit) != 0) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		if (acc != O_RDONLY && !fs->rw) {
			reply_disk_err(req, EROFS, "open for writing: the disk is mounted read-only (mount with -o rw)");
			return;
		}
		if ((fi->flags & O_TRUNC) && acc != O_RDONLY) {
			reply_disk_err(req, EPERM, "open with O_TRUNC: the virtual disk size is fixed (use dd conv=notrunc)");
			return;
		}
		/*
		 * -o direct_io: every read and write comes here in the caller's
		 * request sizes, without the kernel's page cache (two copies less
		 * for large streaming reads; small reads lose readahead).  Else
		 * only this process changes the disk: the page cache stays valid.
		 */
		if (fs->direct_io || (fs->rw && ino != VHDXFS_INO_DISK))
			fi->direct_io = 1; /* rw partition files: no second cache of the same bytes (parts.c) */
		else
			fi->keep_cache = 1;
		fuse_reply_open(req, fi);
		return;
	}
	cf = ctl_by_ino(ino);
	if (!cf) {
		fuse_reply_err(req, ino == VHDXFS_INO_ROOT || ino == VHDXFS_INO_CTLDIR ? EISDIR : ENOENT);
		return;
	}
	if (acc != O_RDONLY && !cf->write) {
		fuse_reply_err(req, EACCES);
		return;
	}
	h = calloc(1, sizeof *h);
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->cf = cf;
	if (acc != O_WRONLY) {
		ret = cf->render(fs, &h->buf, &h->len);
		if (ret < 0) {
			free(h);
			fuse_reply_err(req, -ret);
			return;
		}
	}
	/* Size 0 in stat; direct_io makes the kernel ask us for the real bytes. */
	fi->direct_io = 1;
	fi->fh = (uint64_t)(uintptr_t)h;
	ctl_register(h);
	if (fuse_reply_open(req, fi) != 0) {
		/* The opener went away: no release will come for this handle. */
		ctl_release(fi->fh);
	}
}

static void ops_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != VHDXFS_INO_DISK && !vhdxfs_is_part_ino(ino) && fi->fh)
		ctl_release(fi->fh);
	fuse_reply_err(req, 0);
}

/* Makes completed writes durable when some happened since the last flush. */
static int disk_flush(struct vhdxfs *fs)
{
	int ret;

	if (!fs->rw)
		return 0;
	/*
	 * Clear the flag before flushing: a write that completes during the
	 * flush sets it again and the next flush covers it, while every write
	 * completed before this call is covered by this flush.
	 */
	if (!atomic_exchange(&fs->dirty, false))
		return 0;
	vhdxfs_count(&fs->stats.flushes, 1);
	ret = vhdx_flush(fs->img);
	if (ret < 0)
		atomic_store(&fs->dirty, true);
	else
		vhdxfs_parts_reload(fs); /* when /disk was written: maybe a new partition table */
	return ret;
}

static void ops_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vhdxfs *fs = ops_fs(req);
	int ret = 0;

	/* close() after writes: make them durable so that close reports errors. */
	if (ino == VHDXFS_INO_DISK || vhdxfs_is_part_ino(ino))
		ret = disk_flush(fs);
	if (ret < 0)
		reply_disk_err(req, -ret, vhdx_errmsg());
	else
		fuse_reply_err(req, 0);
}

/* fsync and fdatasync ask what flush gives: the disk's writes made durable (VHDX has no data-only flush). */
static void ops_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	ops_flush(req, ino, fi);
}

/* ------------------------------------------------------------ disk reads */

/*
 * One VHDXFS_MAX_IO buffer per request thread for copied reads, kept for the
 * thread's life: allocating it per request costs an mmap/munmap pair and
 * page faults each time.
 */
static pthread_key_t copy_buf_key;
static pthread_once_t copy_buf_once = PTHREAD_ONCE_INIT;
static bool copy_buf_key_ok;

static void copy_buf_key_init(void)
{
	copy_buf_key_ok = pthread_key_create(&copy_buf_key, free) == 0;
}

/* The calling thread's buffer, or NULL (then the caller allocates one). */
static char *copy_buf_get(void)
{
	char *p;

	pthread_once(&copy_buf_once, copy_buf_key_init);
	if (!copy_buf_key_ok)
		return NULL;
	p = pthread_getspecific(copy_buf_key);
	if (!p) {
		p = malloc(VHDXFS_MAX_IO);
		if (p && pthread_setspecific(copy_buf_key, p) != 0) {
			free(p);
			p = NULL;
		}
	}
	return p;
}

/* Serves [OFF, OFF+SIZE) (inside the disk) through vhdx_pread into a buffer. */
static void disk_read_copy(fuse_req_t req, struct vhdxfs *fs, size_t size, uint64_t off)
{
	char *big = NULL, *buf;
	ssize_t n;

	buf = size <= VHDXFS_MAX_IO ? copy_buf_get() : NULL;
	if (!buf)
		buf = big = malloc(size);
	if (!buf) {
		reply_disk_err(req, ENOMEM, "read: out of memory");
		return;
	}
	n = vhdx_pread(fs->img, buf, size, off);
	if (n < 0) {
		reply_disk_err(req, (int)-n, vhdx_errmsg());
	} else {
		vhdxfs_count(&fs->stats.copied_reads, 1);
		vhdxfs_count(&fs->stats.read_bytes, (uint64_t)n);
		fuse_reply_buf(req, buf, (size_t)n);
	}
	free(big);
}

/* Appends a segment to BV (room for MAX_SEGMENTS), merging with the previous one when contiguous. */
static bool bv_add(struct fuse_bufvec *bv, int fd, uint64_t foff, size_t len)
{
	struct fuse_buf *prev = bv->count ? &bv->buf[bv->count - 1] : NULL;

	if (fd < 0) {
		if (prev && !(prev->flags & FUSE_BUF_IS_FD) && prev->size + len <= sizeof zero_buf) {
			prev->size += len;
			return true;
		}
	} else if (prev && (prev->flags & FUSE_BUF_IS_FD) && prev->fd == fd &&
		   (uint64_t)prev->pos + prev->size == foff) {
		prev->size += len;
		return true;
	}
	if (bv->count == MAX_SEGMENTS)
		return false;
	prev = &bv->buf[bv->count++];
	memset(prev, 0, sizeof *prev);
	prev->size = len;
	if (fd < 0) {
		prev->mem = zero_buf;
	} else {
		prev->flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY;
		prev->fd = fd;
		prev->pos = (off_t)foff;
	}
	return true;
}

/* Reads of /disk and of the partition files (INO: bytes [base, base + limit) of the disk). */
static void disk_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off_in)
{
	struct vhdxfs *fs = ops_fs(req);
	uint64_t vsize, base;
	uint64_t off = (uint64_t)off_in, voff, end;
	struct fuse_bufvec *bv;
	bool has_fd = false, copy = false;
	int ret;

	vhdxfs_count(&fs->stats.reads, 1);
	if (file_range(fs, ino, &base, &vsize) != 0) {
		reply_disk_err(req, ENOENT, "read: the partition is no longer in the partition table");
		return;
	}
	if (off_in < 0) {
		reply_disk_err(req, EINVAL, "read: negative offset");
		return;
	}
	if (off >= vsize || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > vsize - off)
		size = (size_t)(vsize - off);
	off += base; /* from here on: offsets of the disk */
	if (size > sizeof zero_buf) {
		/* Larger than any request we negotiated: keep it simple. */
		disk_read_copy(req, fs, size, off);
		return;
	}
	bv = malloc(sizeof *bv + (MAX_SEGMENTS - 1) * sizeof bv->buf[0]);
	if (!bv) {
		reply_disk_err(req, ENOMEM, "read: out of memory");
		return;
	}
	memset(bv, 0, sizeof *bv);
	end = off + size;
	for (voff = off; voff < end;) {
		struct vhdx_extent ext;
		int fd = -1;

		ret = vhdx_map(fs->img, voff, end - voff, &ext);
		if (ret < 0) {
			free(bv);
			reply_disk_err(req, -ret, vhdx_errmsg());
			return;
		}
		if (ext.len == 0 || ext.len > end - voff) {
			/* A map that does not advance would loop: let pread decide. */
			copy = true;
			break;
		}
		if (ext.kind == VHDX_EXTENT_DATA) {
			if (ext.layer < fs->stats.n_layers) {
				vhdxfs_count(&fs->stats.layer[ext.layer].reads, 1);
				vhdxfs_count(&fs->stats.layer[ext.layer].read_bytes, ext.len);
			}
			fd = vhdx_layer_fd(fs->img, ext.layer);
			if (fd < 0)
				copy = true;
			has_fd = true;
		}
		if (!copy && !bv_add(bv, fd, ext.foff, (size_t)ext.len))
			copy = true;
		voff += ext.len;
	}
	if (copy) {
		free(bv);
		disk_read_copy(req, fs, size, off);
		return;
	}
	vhdxfs_count(&fs->stats.read_bytes, size);
	if (!has_fd) {
		/* All zeros: one plain reply, no file access at all. */
		free(bv);
		vhdxfs_count(&fs->stats.zero_reads, 1);
		fuse_reply_buf(req, zero_buf, size);
		return;
	}
	vhdxfs_count(&fs->stats.zero_copy_reads, 1);
	/* libfuse splices fd segments when it can and falls back to pread itself. */
	ret = fuse_reply_data(req, bv, 0);
	if (ret < 0)
		vhdxfs_stats_error(fs, -ret, "read: sending the reply failed");
	free(bv);
}

static void ops_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct ctl_handle *h;

	if (ino == VHDXFS_INO_DISK || vhdxfs_is_part_ino(ino)) {
		disk_read(req, ino, size, off);
		return;
	}
	h = ctl_by_ino(ino) ? ctl_get(fi->fh) : NULL;
	if (!h) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if (off < 0 || (uint64_t)off >= h->len) {
		ctl_put();
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > h->len - (size_t)off)
		size = h->len - (size_t)off;
	/* the reply copies the bytes, so the lock covers their whole use */
	fuse_reply_buf(req, h->buf + off, size);
	ctl_put();
}

/* ------------------------------------------------------------ disk writes */

static void ops_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct vhdxfs *fs = ops_fs(req);
	struct ctl_handle *h;
	struct timespec now;
	uint64_t base, limit;
	ssize_t n;

	if (ino != VHDXFS_INO_DISK && !vhdxfs_is_part_ino(ino)) {
		const struct vhdxfs_ctl_file *cf;
		h = ctl_get(fi->fh);
		cf = h ? h->cf : NULL;
		if (h)
			ctl_put();
		if (!cf || !cf->write) {
			fuse_reply_err(req, EBADF);
			return;
		}
		n = off < 0 ? -EINVAL : cf->write(fs, buf, size, (uint64_t)off);
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_write(req, (size_t)n);
		return;
	}
	vhdxfs_count(&fs->stats.writes, 1);
	if (!fs->rw) {
		reply_disk_err(req, EROFS, "write: the disk is mounted read-only");
		return;
	}
	if (off < 0) {
		reply_disk_err(req, EINVAL, "write: negative offset");
		return;
	}
	if (file_range(fs, ino, &base, &limit) != 0) {
		reply_disk_err(req, ENOENT, "write: the partition is no longer in the partition table");
		return;
	}
	if (size && (uint64_t)off >= limit) {
		/* Like a block device: the disk (or partition) does not grow. */
		reply_disk_err(req, ENOSPC, ino == VHDXFS_INO_DISK ? "write: past the end of the virtual disk"
								 : "write: past the end of the partition");
		return;
	}
	if (size > limit - (uint64_t)off)
		size = (size_t)(limit - (uint64_t)off); /* a short write at the end of a partition */
	n = vhdx_pwrite(fs->img, buf, size, base + (uint64_t)off);
	if (n < 0) {
		reply_disk_err(req, (int)-n, vhdx_errmsg());
		return;
	}
	atomic_store(&fs->dirty, true);
	if (ino == VHDXFS_INO_DISK)
		vhdxfs_parts_disk_written(fs);
	else
		vhdxfs_parts_disk_inval(fs, base + (uint64_t)off, (uint64_t)n);
	clock_gettime(CLOCK_REALTIME, &now);
	atomic_store_explicit(&fs->mtime_ns, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec, memory_order_relaxed);
	vhdxfs_count(&fs->stats.write_bytes, (uint64_t)n);
	fuse_reply_write(req, (size_t)n);
}

/* ------------------------------------------------------------ holes */

/* SEEK_DATA / SEEK_HOLE from the allocation map, so that cp --sparse skips empty space. */
static void ops_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct vhdxfs *fs = ops_fs(req);
	uint64_t vsize, voff, base;

	if (file_range(fs, ino, &base, &vsize) != 0 || (whence != SEEK_DATA && whence != SEEK_HOLE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (off < 0 || (uint64_t)off >= vsize) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	/* offsets of the disk, from the partition's start */
	vsize += base;
	for (voff = base + (uint64_t)off; voff < vsize;) {
		struct vhdx_extent ext;
		int ret = vhdx_map(fs->img, voff, vsize - voff, &ext);

		if (ret < 0) {
			reply_disk_err(req, -ret, vhdx_errmsg());
			return;
		}
		if ((whence == SEEK_DATA) == (ext.kind == VHDX_EXTENT_DATA) || ext.len == 0)
			break;
		voff += ext.len;
	}
	if (voff >= vsize) {
		if (whence == SEEK_DATA) {
			fuse_reply_err(req, ENXIO);
			return;
		}
		voff = vsize; /* the implicit hole at the end */
	}
	fuse_reply_lseek(req, (off_t)(voff - base));
}

const struct fuse_lowlevel_ops vhdxfs_ops = {
	.init = ops_init,
	.destroy = ops_destroy,
	.lookup = ops_lookup,
	.getattr = ops_getattr,
	.setattr = ops_setattr,
	.statfs = ops_statfs,
	.opendir = ops_opendir,
	.readdir = ops_readdir,
	.open = ops_open,
	.release = ops_release,
	.flush = ops_flush,
	.fsync = ops_fsync,
	.read = ops_read,
	.write = ops_write,
	.lseek = ops_lseek,
};
