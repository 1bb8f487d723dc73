/*
 * image.c - L4, the public API: an opaque handle over a chain of layers.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include <limits.h>
#include <pthread.h>

#include "chain/chain.h"
#include "image_internal.h"
#include "io/io.h"

struct vhdx_image {
	struct vhdx_chain chain;
	unsigned flags;
	pthread_mutex_t write_lock; /* one writer at a time; reads take no image lock */
};

void vhdx_open_options_init(struct vhdx_open_options *o)
{
	memset(o, 0, sizeof *o);
	o->struct_size = sizeof *o;
	o->max_depth = VHDX_DEFAULT_MAX_DEPTH;
}

/* Copies the caller's options (of any struct_size) over the defaults. 0 or -EINVAL. */
static int open_options(const struct vhdx_open_options *in, struct vhdx_open_options *opts, const char *fn)
{
	int ret;

	vhdx_open_options_init(opts);
	ret = vhdx_struct_copy_in(opts, sizeof *opts, in, offsetof(struct vhdx_open_options, flags) + sizeof(unsigned), fn,
				  "options");
	if (ret < 0)
		return ret;
	if ((opts->flags & VHDX_OPEN_FORCE_SHARE) && (opts->flags & VHDX_OPEN_RDWR))
		return vhdx_err(EINVAL, "%s: VHDX_OPEN_FORCE_SHARE (--force-share) is for read-only opens only", fn);
	return 0;
}

/* A new image over the chain that OPEN_CHAIN builds (from PATH or from IO). */
static int image_new(const char *path, struct vhdx_io *io, const struct vhdx_open_options *opts,
		     struct vhdx_image **out)
{
	struct vhdx_image *img = calloc(1, sizeof *img);
	int ret;

	if (!img) {
		vhdx_io_close(io);
		return vhdx_err(ENOMEM, "out of memory");
	}
	img->flags = opts->flags;
	pthread_mutex_init(&img->write_lock, NULL);
	ret = io ? vhdx_chain_open_io(io, opts, &img->chain) : vhdx_chain_open(path, opts, &img->chain);
	if (ret < 0) {
		pthread_mutex_destroy(&img->write_lock);
		free(img);
		return ret;
	}
	*out = img;
	return 0;
}

int vhdx_open(const char *path, const struct vhdx_open_options *opts_in, struct vhdx_image **out)
{
	struct vhdx_open_options opts;
	int ret;

	vhdx_err_clear();
	if (!path || !out)
		return vhdx_err(EINVAL, "vhdx_open: path and out must not be NULL");
	ret = open_options(opts_in, &opts, "vhdx_open");
	if (ret < 0)
		return ret;
	return image_new(path, NULL, &opts, out);
}

int vhdx_open_io(const struct vhdx_io_callbacks *cb, void *opaque, const struct vhdx_open_options *opts_in,
		 struct vhdx_image **out)
{
	struct vhdx_open_options opts;
	struct vhdx_io *io;
	int ret;

	vhdx_err_clear();
	if (!out)
		ret = vhdx_err(EINVAL, "vhdx_open_io: out must not be NULL");
	else
		ret = open_options(opts_in, &opts, "vhdx_open_io");
	if (ret < 0) {
		/* the source is ours from the call on (libvhdx.h, "Ownership") */
		vhdx_io_callbacks_release(cb, opaque);
		return ret;
	}
	ret = vhdx_io_callbacks_new(cb, opaque, opts.flags & VHDX_OPEN_RDWR, &io); /* closes the source on failure */
	if (ret < 0)
		return ret;
	return image_new(NULL, io, &opts, out);
}

int vhdx_close(struct vhdx_image *img)
{
	int ret;

	if (!img)
		return 0;
	ret = vhdx_chain_close(&img->chain);
	pthread_mutex_destroy(&img->write_lock);
	free(img);
	return ret;
}

/* The part of LEN bytes at OFF that lies on a disk of SIZE bytes, and fits the ssize_t the call returns. */
static size_t clamp_to_disk(uint64_t size, uint64_t off, size_t len)
{
	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	return len > SSIZE_MAX ? SSIZE_MAX : len;
}

ssize_t vhdx_pread(struct vhdx_image *img, void *buf, size_t len, uint64_t off)
{
	uint64_t size = img->chain.virtual_size;
	int ret;

	len = clamp_to_disk(size, off, len);
	if (len == 0)
		return 0;
	ret = vhdx_chain_read(&img->chain, 0, buf, len, off);
	return ret < 0 ? ret : (ssize_t)len;
}

/* Checks that the leaf can take writes; 0 or -errno with a message. */
static int check_writable(struct vhdx_layer *leaf)
{
	if (!leaf->writable)
		return vhdx_err(EROFS, "%s: opened read-only", leaf->path);
	if (!leaf->ops->pwrite)
		return vhdx_err(ENOTSUP, "%s: writing %s images is not supported yet", leaf->path, leaf->ops->name);
	return 0;
}

/*
 * Writes [off, off+len) through the leaf in whole logical sectors: a sector
 * only partly covered is read first through the whole chain (its other
 * bytes may live in a parent), merged, and written whole, so the format
 * layer only ever sees sector-aligned writes.  Caller holds write_lock.
 */
static int write_sectors(struct vhdx_image *img, const uint8_t *buf, size_t len, uint64_t off)
{
	struct vhdx_layer *leaf = img->chain.layers[0];
	uint64_t lss = leaf->logical_sector_size;
	uint64_t start = off / lss * lss, end = vhdx_round_up(off + len, lss);
	uint8_t *bounce;
	int ret;

	if (start == off && end == off + len)
		return leaf->ops->pwrite(leaf, buf, len, off);
	/* only the first and last sectors need merging; the middle goes straight through */
	bounce = malloc(lss);
	if (!bounce)
		return vhdx_err(ENOMEM, "out of memory");
	ret = 0;
	while (len && ret == 0) {
		uint64_t sec = off / lss * lss, in = off - sec;
		size_t n;
		if (in == 0 && len >= lss) {
			n = (size_t)(len / lss * lss);
			ret = leaf->ops->pwrite(leaf, buf, n, off);
		} else {
			n = (size_t)VHDX_MIN((uint64_t)len, lss - in);
			ret = vhdx_chain_read(&img->chain, 0, bounce, lss, sec);
			if (ret == 0) {
				memcpy(bounce + in, buf, n);
				ret = leaf->ops->pwrite(leaf, bounce, lss, sec);
			}
		}
		buf += n;
		off += n;
		len -= n;
	}
	free(bounce);
	return ret;
}

ssize_t vhdx_pwrite(struct vhdx_image *img, const void *buf, size_t len, uint64_t off)
{
	struct vhdx_layer *leaf = img->chain.layers[0];
	uint64_t size = img->chain.virtual_size;
	int ret;

	ret = check_writable(leaf);
	if (ret < 0)
		return ret;
	len = clamp_to_disk(size, off, len);
	if (len == 0)
		return 0;
	pthread_mutex_lock(&img->write_lock);
	ret = write_sectors(img, buf, len, off);
	pthread_mutex_unlock(&img->write_lock);
	return ret < 0 ? ret : (ssize_t)len;
}

int vhdx_discard(struct vhdx_image *img, uint64_t off, uint64_t len)
{
	struct vhdx_layer *leaf = img->chain.layers[0];
	uint64_t size = img->chain.virtual_size, bs = leaf->block_size, end;
	uint8_t *zeros = NULL;
	int ret;

	ret = check_writable(leaf);
	if (ret < 0)
		return ret;
	if (off >= size || len == 0)
		return 0;
	end = len > size - off ? size : off + len;
	pthread_mutex_lock(&img->write_lock);
	while (off < end) {
		uint64_t blk_end = bs ? VHDX_MIN((off / bs + 1) * bs, size) : end;
		uint64_t n = VHDX_MIN(end, blk_end) - off;
		if (leaf->ops->discard && bs && off % bs == 0 && off + n == blk_end) {
			/* whole blocks in one call */
			uint64_t whole = (end - off) / bs * bs;
			if (whole == 0 || off + whole > size)
				whole = n;
			ret = leaf->ops->discard(leaf, off, whole);
			n = whole;
		} else {
			/* partial block (or a format without discard): write zeros */
			size_t chunk = (size_t)VHDX_MIN(n, (uint64_t)(1u << 20));
			if (!zeros && !(zeros = calloc(1, 1u << 20))) {
				ret = vhdx_err(ENOMEM, "out of memory");
				break;
			}
			n = chunk;
			ret = write_sectors(img, zeros, chunk, off);
		}
		if (ret < 0)
			break;
		off += n;
	}
	pthread_mutex_unlock(&img->write_lock);
	free(zeros);
	return ret;
}

int vhdx_flush(struct vhdx_image *img)
{
	struct vhdx_layer *leaf = img->chain.layers[0];
	int ret = 0;

	if (!leaf->writable || !leaf->ops->flush)
		return 0;
	pthread_mutex_lock(&img->write_lock);
	ret = leaf->ops->flush(leaf);
	pthread_mutex_unlock(&img->write_lock);
	return ret;
}

int vhdx_layer_fd(struct vhdx_image *img, unsigned layer)
{
	if (layer >= img->chain.n)
		return -1;
	return vhdx_io_get_fd(img->chain.layers[layer]->io);
}

int vhdx_layer_in_use(struct vhdx_image *img, unsigned layer)
{
	struct vhdx_lock_holder h;
	int ret;

	vhdx_err_clear();
	if (!img || layer >= img->chain.n)
		return vhdx_err(EINVAL, "vhdx_layer_in_use: no layer %u", layer);
	ret = vhdx_io_lock_test(img->chain.layers[layer]->io, &h);
	if (ret < 0)
		return ret;
	return h.mode == VHDX_LOCK_EXCLUSIVE ? VHDX_IN_USE_WRITE : h.mode == VHDX_LOCK_SHARED ? VHDX_IN_USE_READ
											       : VHDX_IN_USE_NONE;
}

int vhdx_get_info(struct vhdx_image *img, struct vhdx_info *info)
{
	struct vhdx_info i;
	const struct vhdx_layer *l = img->chain.layers[0];

	if (!info || info->struct_size == 0)
		return vhdx_err(EINVAL, "vhdx_get_info: set info->struct_size");
	memset(&i, 0, sizeof i);
	i.struct_size = sizeof i;
	i.format = l->format;
	i.type = l->type;
	i.virtual_size = l->virtual_size;
	i.block_size = l->block_size;
	i.logical_sector_size = l->logical_sector_size;
	i.physical_sector_size = l->physical_sector_size;
	memcpy(i.disk_id, l->disk_id, 16);
	i.layers = img->chain.n;
	i.writable = l->writable;
	for (unsigned k = 0; k < img->chain.n; k++)
		if (img->chain.layers[k]->log_replayed)
			i.log_replayed = 1;
	memcpy(info, &i, VHDX_MIN(info->struct_size, sizeof i));
	info->struct_size = VHDX_MIN(info->struct_size, sizeof i);
	return 0;
}

const char *vhdx_layer_path(struct vhdx_image *img, unsigned layer)
{
	return layer < img->chain.n ? img->chain.layers[layer]->path : NULL;
}

int vhdx_map(struct vhdx_image *img, uint64_t voff, uint64_t len, struct vhdx_extent *ext)
{
	return vhdx_chain_map(&img->chain, voff, len, ext);
}

const char *vhdx_warnings(struct vhdx_image *img)
{
	return img->chain.warnings ? img->chain.warnings : "";
}

const char *vhdx_version(void)
{
	return PACKAGE_VERSION;
}

int vhdx_path_is_uri(const char *path)
{
	return vhdx_io_is_uri(path);
}

/* Internal accessor for the tools (declared in image_internal.h). */
int vhdx_open_parent(struct vhdx_image *child, const struct vhdx_open_options *opts_in, struct vhdx_image **out)
{
	struct vhdx_open_options opts;
	struct vhdx_image *img;
	struct vhdx_layer *p;
	int ret;

	vhdx_err_clear();
	if (!child || !out)
		return vhdx_err(EINVAL, "vhdx_open_parent: child and out must not be NULL");
	if (!child->chain.layers[0]->has_parent)
		return vhdx_err(EINVAL, "%s: not a differencing image", child->chain.layers[0]->path);
	ret = open_options(opts_in, &opts, "vhdx_open_parent");
	if (ret < 0)
		return ret;
	opts.flags &= ~VHDX_OPEN_RDWR;
	img = calloc(1, sizeof *img);
	if (img)
		img->chain.layers = calloc(1, sizeof *img->chain.layers);
	if (!img || !img->chain.layers) {
		free(img);
		return vhdx_err(ENOMEM, "out of memory");
	}
	/* depth 1: the parent is layer 1 of the chain a full open would build */
	ret = vhdx_parent_open(child->chain.layers[0], &opts, 1, &p);
	if (ret < 0) {
		free(img->chain.layers);
		free(img);
		return ret;
	}
	img->chain.layers[0] = p;
	img->chain.n = 1;
	img->chain.virtual_size = p->virtual_size;
	img->flags = opts.flags | VHDX_OPEN_NO_PARENT;
	pthread_mutex_init(&img->write_lock, NULL);
	*out = img;
	return 0;
}

struct vhdx_chain *vhdx_image_chain(struct vhdx_image *img)
{
	return &img->chain;
}
