/*
 * parts.c - the partition files of vhdxfs: MOUNTPOINT/p1, p2, ... one per
 * partition of the virtual disk, numbered as Linux numbers them (GPT entry
 * index + 1; MBR slots 1-4, logicals from 5; an extended partition, a
 * mere container, gets no file).  Each file is exactly the partition's
 * bytes of /disk, served by the same code (zero-copy where the data is
 * contiguous in an image file).
 *
 * The table is read with vhdx_partitions() at mount, and again on a rw
 * mount when /disk is flushed (fsync, or close after writes) after a write
 * to /disk: what partitioning tools do after changing a table.  Writes to
 * a partition file cannot change the table (every table structure lies
 * outside the partitions), so they do not cause a re-read.  A re-read that
 * fails with an I/O error keeps the files as they were (and is tried
 * again at the next flush); a table that is gone or damaged removes them.
 *
 * Page caches: on a read-only mount nothing changes, and partition files
 * keep their cache like /disk.  On a rw mount the same bytes are visible
 * through two files, so partition files are opened with direct_io (no
 * cache of their own to go stale) and a write through one of them drops
 * the written range from /disk's cache.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/info_partitions.h"
#include "vhdxfs.h"

struct part_file {
	unsigned number;
	uint64_t start, size;
};

struct vhdxfs_parts {
	pthread_rwlock_t lock;
	struct part_file *files;
	unsigned n;
	_Atomic bool stale; /* /disk was written since the table was read */
};

/* Reads the table into a new array; the number of files or -errno (message logged). */
static int parts_read(struct vhdxfs *fs, struct part_file **out)
{
	struct vhdx_partition_table t;
	struct vhdx_partition *p;
	struct part_file *files;
	unsigned n = 0;
	int count;

	*out = NULL;
	count = vhdx_report_partitions_read(fs->img, &t, &p);
	if (count < 0) {
		fuse_log(FUSE_LOG_WARNING, "vhdxfs: %s: no partition files: %s\n", fs->image_path, vhdx_errmsg());
		return count;
	}
	count = (int)t.count;
	if (t.note[0])
		fuse_log(FUSE_LOG_WARNING, "vhdxfs: %s: partition table: %s\n", fs->image_path, t.note);
	files = calloc(count ? (size_t)count : 1, sizeof *files);
	if (!files) {
		free(p);
		return -ENOMEM;
	}
	for (int i = 0; i < count; i++) {
		if (p[i].flags & VHDX_PARTITION_EXTENDED || p[i].number > VHDXFS_MAX_PART)
			continue;
		files[n].number = p[i].number;
		files[n].start = p[i].offset;
		files[n].size = p[i].size;
		n++;
	}
	free(p);
	*out = files;
	return (int)n;
}

int vhdxfs_parts_init(struct vhdxfs *fs)
{
	struct vhdxfs_parts *ps = calloc(1, sizeof *ps);
	int n;

	if (!ps)
		return -ENOMEM;
	pthread_rwlock_init(&ps->lock, NULL);
	n = parts_read(fs, &ps->files);
	if (n == -ENOMEM) {
		pthread_rwlock_destroy(&ps->lock);
		free(ps);
		return n;
	}
	ps->n = n < 0 ? 0 : (unsigned)n;
	fs->parts = ps;
	return 0;
}

void vhdxfs_parts_free(struct vhdxfs *fs)
{
	if (!fs->parts)
		return;
	pthread_rwlock_destroy(&fs->parts->lock);
	free(fs->parts->files);
	free(fs->parts);
	fs->parts = NULL;
}

void vhdxfs_parts_disk_written(struct vhdxfs *fs)
{
	if (fs->parts)
		atomic_store(&fs->parts->stale, true);
}

void vhdxfs_parts_reload(struct vhdxfs *fs)
{
	struct vhdxfs_parts *ps = fs->parts;
	struct part_file *files, *old;
	int n;

	if (!ps || !atomic_exchange(&ps->stale, false))
		return;
	n = parts_read(fs, &files);
	if (n == -EIO || n == -ENOMEM) {
		/*
		 * The disk failed, not the table: keep the partition files as
		 * they are (a file system mounted on one must not lose it to
		 * a read error) and read again at the next flush.
		 */
		atomic_store(&ps->stale, true);
		return;
	}
	if (n < 0)
		files = NULL;
	pthread_rwlock_wrlock(&ps->lock);
	old = ps->files;
	ps->files = files;
	ps->n = n < 0 ? 0 : (unsigned)n;
	pthread_rwlock_unlock(&ps->lock);
	free(old);
	/* the kernel asks again for the root's entries and the files' sizes */
	if (fs->se)
		fuse_lowlevel_notify_inval_inode(fs->se, VHDXFS_INO_ROOT, 0, 0);
}

int vhdxfs_part_range(struct vhdxfs *fs, fuse_ino_t ino, uint64_t *start, uint64_t *size)
{
	struct vhdxfs_parts *ps = fs->parts;
	int ret = ENOENT;

	if (!ps || ino <= VHDXFS_INO_PART || ino > VHDXFS_INO_PART + VHDXFS_MAX_PART)
		return ENOENT;
	pthread_rwlock_rdlock(&ps->lock);
	for (unsigned i = 0; i < ps->n; i++) {
		if (VHDXFS_INO_PART + ps->files[i].number == ino) {
			*start = ps->files[i].start;
			*size = ps->files[i].size;
			ret = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&ps->lock);
	return ret;
}

fuse_ino_t vhdxfs_part_lookup(struct vhdxfs *fs, const char *name)
{
	uint64_t start, size;
	unsigned long n;
	char *end;

	if (!fs->parts || name[0] != 'p' || name[1] < '1' || name[1] > '9')
		return 0;
	n = strtoul(name + 1, &end, 10);
	if (*end || n > VHDXFS_MAX_PART)
		return 0;
	return vhdxfs_part_range(fs, VHDXFS_INO_PART + n, &start, &size) == 0 ? VHDXFS_INO_PART + n : 0;
}

unsigned vhdxfs_parts_list(struct vhdxfs *fs, fuse_ino_t *inos, unsigned max)
{
	struct vhdxfs_parts *ps = fs->parts;
	unsigned n = 0;

	if (!ps)
		return 0;
	pthread_rwlock_rdlock(&ps->lock);
	if (!inos)
		n = ps->n;
	for (unsigned i = 0; inos && i < ps->n && n < max; i++)
		inos[n++] = VHDXFS_INO_PART + ps->files[i].number;
	pthread_rwlock_unlock(&ps->lock);
	return n;
}

void vhdxfs_parts_disk_inval(struct vhdxfs *fs, uint64_t off, uint64_t len)
{
	int ret;

	if (!fs->se)
		return;
	/* -s: the kernel may be waiting for this very thread; drop the whole cache from a helper thread */
	if (fs->singlethread) {
		vhdxfs_disk_cache_drop(fs);
		return;
	}
	ret = fuse_lowlevel_notify_inval_inode(fs->se, VHDXFS_INO_DISK, (off_t)off, (off_t)len);
	if (ret < 0 && ret != -ENOENT)
		fuse_log(FUSE_LOG_ERR, "vhdxfs: dropping cached pages of /disk: %s\n", strerror(-ret));
}
