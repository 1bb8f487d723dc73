/*
 * vhdx_plugin.c - nbdkit plugin serving a VHDX, an AVHDX differencing chain
 * or a VHD over NBD, through libvhdx's public API (libvhdx.h) only.
 *
 *   nbdkit vhdx file=IMAGE [parent=FILE] [parent-dir=DIR]... [path-map=P=DIR]...
 *               [ignore-id-mismatch=true] [readonly=true]
 *
 * One struct vhdx_image serves every connection of the server.  That is
 * what makes the plugin correct under the PARALLEL thread model and with
 * several connections at once:
 *   - reads never take an image lock in libvhdx (pread() at computed file
 *     offsets), so requests of all connections run side by side;
 *   - writes, discards and flushes of the leaf are serialised inside
 *     libvhdx by the image's write lock, and the writers publish new BAT
 *     entries and sector-bitmap bits under the layer's rwlock only after
 *     the payload they describe is in the file (vhdx_write.c,
 *     vhd_write.c), so a read racing a write sees the old or the new
 *     bytes, never a block that is not written yet;
 *   - opening the leaf twice for writing would give two BAT caches that
 *     overwrite each other's allocations, so a per-connection open is not
 *     an option for a writable image anyway; libvhdx's file locks (issue
 *     #14) refuse it, and they let every connection share the one open's
 *     lock: one process, one lock, while another process that opens the
 *     image meets EBUSY.
 * With one image, a flush on any connection makes every completed write of
 * every connection durable, and every connection reads the same in-memory
 * metadata: that is the NBD multi-conn contract, so can_multi_conn is true
 * both read-only and writable.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "libvhdx.h"
#include "vhdx_serve.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static char *cfg_file;                      /* absolute path of the leaf, or an NBD URI */
static struct vhdx_serve_parents cfg_parents; /* parent=, parent-dir=, path-map=, ignore-id-mismatch= */
static bool cfg_readonly;

/* ---------------------------------------------------------------- the shared image */

/*
 * The image is opened read-only in .get_ready (so a missing file or parent
 * is reported at start-up, on the terminal), closed before nbdkit forks,
 * and opened again by the first connection: writable when that one may
 * write, else read-only and reopened writable by a later first connection
 * that may write.  img_lock guards img, img_writable,
 * rw_refused and connections; requests use the handle's copy of img
 * without the lock, which is safe because img only changes while no
 * connection is open.
 */
static pthread_mutex_t img_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vhdx_image *img;
static bool img_writable;
static bool rw_refused;       /* the file cannot be opened for writing: serve read-only */
static unsigned connections;  /* open connections (handles) */

struct handle {
	struct vhdx_image *img;
	bool writable;
	bool native_discard; /* a VHDX leaf: whole blocks are released without writing zeros */
	uint64_t size;
};

/* Logs libvhdx's message for the failed call WHAT and returns -1 with nbdkit's errno set. */
#define fail(neg_errno, ...) (nbdkit_set_error(vhdx_serve_fail((neg_errno), __VA_ARGS__)), -1)

/* nbdkit_set_error(E) and -1 when E (an errno from vhdx_serve_*) is set, else 0. */
static int plugin_result(int e)
{
	if (!e)
		return 0;
	nbdkit_set_error(e);
	return -1;
}

static void free_config(void)
{
	free(cfg_file);
	cfg_file = NULL;
	vhdx_serve_parents_free(&cfg_parents);
}

static void plugin_unload(void)
{
	/* vhdx_close flushes a writable leaf: a clean nbdkit exit leaves a consistent image */
	if (img && vhdx_close(img) < 0)
		nbdkit_error("closing %s: %s", cfg_file, vhdx_errmsg());
	img = NULL;
	free_config();
}

/*
 * Paths are made absolute now (NBD URIs stay as they are): nbdkit changes to / when it forks into the
 * background, and libvhdx resolves relative parent locators against the
 * child's folder, which must not depend on the working directory.
 */
static int plugin_config(const char *key, const char *value)
{
	int r;

	if (!strcmp(key, "file")) {
		free(cfg_file);
		cfg_file = vhdx_serve_abs_or_uri(value);
		return cfg_file ? 0 : -1;
	}
	r = vhdx_serve_parent_config(&cfg_parents, key, value);
	if (r == 0)
		r = vhdx_serve_bool_config("readonly", &cfg_readonly, key, value);
	if (r != 0)
		return r < 0 ? -1 : 0;
	nbdkit_error("unknown parameter '%s' (see nbdkit vhdx --help)", key);
	return -1;
}

static int plugin_config_complete(void)
{
	if (!cfg_file) {
		nbdkit_error("the file parameter is required (nbdkit vhdx file=IMAGE)");
		return -1;
	}
	return 0;
}

#define plugin_config_help \
	"file=<IMAGE>     (required) The VHDX, AVHDX or VHD image to serve (leaf of a chain),\n" \
	"                            a file or an NBD URI (nbd://, nbds://, nbd+unix://).\n" \
	"parent=<FILE>               Path of the immediate parent (instead of its locator).\n" \
	"parent-dir=<DIR>            Also look for parents in DIR (repeatable).\n" \
	"path-map=<WINPREFIX>=<DIR>  Follow absolute parent paths under WINPREFIX in DIR (repeatable).\n" \
	"ignore-id-mismatch=true     Accept a parent whose identity differs from the child's link.\n" \
	"readonly=true               Open the image read-only (also implied by nbdkit -r)."

static void plugin_dump(void)
{
	printf("vhdx_library_version=%s\n", vhdx_version());
}

/* Opens the configured chain; the leaf writable when WRITABLE.  0 or -errno. */
static int open_image(bool writable, struct vhdx_image **out)
{
	struct vhdx_open_options o;

	vhdx_open_options_init(&o);
	if (writable)
		o.flags |= VHDX_OPEN_RDWR;
	vhdx_serve_parents_apply(&cfg_parents, &o);
	return vhdx_open(cfg_file, &o, out);
}

static int plugin_get_ready(void)
{
	const char *warn;
	int r;

	/* read-only: checks the whole chain now without writing (a dirty log is replayed in memory) */
	r = open_image(false, &img);
	if (r < 0)
		return fail(r, "opening %s", cfg_file);
	warn = vhdx_warnings(img);
	if (warn && *warn)
		nbdkit_debug("%s: %s", cfg_file, warn);
	/*
	 * Closed again: nbdkit forks after this (into the background, or a
	 * --run command), and a process that inherits the open would keep its
	 * lock on the files (libvhdx.h, "Locking") until it exits, refusing
	 * our own writable open.  The first connection opens the image.
	 */
	if (vhdx_close(img) < 0)
		nbdkit_debug("closing %s: %s", cfg_file, vhdx_errmsg());
	img = NULL;
	return 0;
}

/*
 * Reopens the image writable for the first connection that may write.
 * Done only while no connection is open, so no request holds the old
 * handle.  The read-only handle is closed first: its shared lock on the
 * leaf would refuse our own exclusive one (locks belong to an open, see
 * libvhdx.h).  When the writable open fails, the read-only one is made
 * again, so the server goes on serving read-only.  A file we may not
 * write (EACCES, EPERM, EROFS) is then served read-only for good, as
 * nbdkit's file plugin does; other failures (EBUSY: another process has
 * the file open; a log that cannot be replayed, ...) fail this connection
 * and are tried again by the next.
 */
static int upgrade_to_writable(void)
{
	struct vhdx_image *rw;
	char *msg;
	int r, r2;

	if (img && vhdx_close(img) < 0)
		nbdkit_debug("closing the read-only handle of %s: %s", cfg_file, vhdx_errmsg());
	img = NULL;
	r = open_image(true, &rw);
	if (r == 0) {
		img = rw;
		img_writable = true;
		return 0;
	}
	msg = strdup(vhdx_errmsg());
	r2 = open_image(false, &img);
	if (r2 < 0) {
		img = NULL;
		free(msg);
		return fail(r2, "reopening %s read-only", cfg_file);
	}
	if (r == -EACCES || r == -EPERM || r == -EROFS) {
		nbdkit_debug("%s cannot be opened for writing (%s): serving it read-only", cfg_file, msg ? msg : "");
		rw_refused = true;
		free(msg);
		return 0;
	}
	nbdkit_error("opening %s for writing: %s", cfg_file, msg ? msg : strerror(-r));
	nbdkit_set_error(-r);
	free(msg);
	return -1;
}

static void *plugin_open(int readonly)
{
	struct handle *h;
	struct vhdx_info info;
	int r = 0;

	h = calloc(1, sizeof *h);
	if (!h) {
		nbdkit_error("out of memory");
		return NULL;
	}
	pthread_mutex_lock(&img_lock);
	if (!readonly && !cfg_readonly && !img_writable && !rw_refused && connections == 0)
		r = upgrade_to_writable();
	else if (!img && connections == 0 && (r = open_image(false, &img)) < 0) /* lost by a failed upgrade */
		r = fail(r, "opening %s", cfg_file);
	if (r == 0) {
		memset(&info, 0, sizeof info);
		info.struct_size = sizeof info;
		r = vhdx_get_info(img, &info);
		if (r < 0)
			r = fail(r, "%s", cfg_file);
	}
	if (r < 0) {
		pthread_mutex_unlock(&img_lock);
		free(h);
		return NULL;
	}
	h->img = img;
	h->writable = img_writable && !readonly;
	h->native_discard = info.format == VHDX_FORMAT_VHDX;
	h->size = info.virtual_size;
	connections++;
	pthread_mutex_unlock(&img_lock);
	return h;
}

static void plugin_close(void *handle)
{
	struct handle *h = handle;

	/*
	 * VHDX metadata (BAT, sector bitmaps) reaches the file only at a flush:
	 * flushing when a writer leaves keeps the file consistent whenever no
	 * client is connected, also for a client that never sent a flush.
	 * (Cheap when nothing was written since the last flush.)
	 */
	if (h->writable && vhdx_flush(h->img) < 0)
		nbdkit_error("flushing %s at disconnect: %s", cfg_file, vhdx_errmsg());
	pthread_mutex_lock(&img_lock);
	connections--;
	pthread_mutex_unlock(&img_lock);
	free(h);
}

/* ---------------------------------------------------------------- what the connection may do */

static int64_t plugin_get_size(void *handle)
{
	struct handle *h = handle;

	return (int64_t)h->size;
}

static int plugin_can_write(void *handle)
{
	struct handle *h = handle;

	return h->writable;
}

/* Flush and zero are there exactly when writes are. */
static int plugin_can_flush(void *handle)
{
	return plugin_can_write(handle);
}

/* Trim only where it releases blocks: VHD has no discard, and writing zeros for an advisory trim would allocate. */
static int plugin_can_trim(void *handle)
{
	struct handle *h = handle;

	return h->writable && h->native_discard;
}

static int plugin_can_zero(void *handle)
{
	return plugin_can_write(handle);
}

/* Fast zero is possible only through block release (see plugin_zero); the rest fails fast with ENOTSUP. */
static int plugin_can_fast_zero(void *handle)
{
	return plugin_can_write(handle);
}

/* FUA is handled by a vhdx_flush() after the request (libvhdx has no per-write durability). */
static int plugin_can_fua(void *handle)
{
	struct handle *h = handle;

	return h->writable ? NBDKIT_FUA_NATIVE : NBDKIT_FUA_NONE;
}

/* One shared image: see the comment at the top of the file. */
static int plugin_can_multi_conn(void *handle)
{
	return 1;
}

static int plugin_can_extents(void *handle)
{
	return 1;
}

/* nbdkit prefetches by reading and dropping the bytes: warms the page cache and libvhdx's bitmap cache. */
static int plugin_can_cache(void *handle)
{
	return NBDKIT_CACHE_EMULATE;
}

/* ---------------------------------------------------------------- data */

static int plugin_pread(void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	return plugin_result(vhdx_serve_pread(((struct handle *)handle)->img, buf, count, offset));
}

static int plugin_pwrite(void *handle, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	return plugin_result(vhdx_serve_pwrite(((struct handle *)handle)->img, buf, count, offset, flags));
}

static int plugin_flush(void *handle, uint32_t flags)
{
	return plugin_result(vhdx_serve_flush(((struct handle *)handle)->img));
}

static int plugin_trim(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	return plugin_result(vhdx_serve_trim(((struct handle *)handle)->img, count, offset, flags));
}

/* See vhdx_serve_zero: MAY_TRIM releases blocks, otherwise zeros are written; FAST_ZERO only by release. */
static int plugin_zero(void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct handle *h = handle;

	return plugin_result(vhdx_serve_zero(h->img, h->native_discard, count, offset, flags));
}

/* Block status from vhdx_map (vhdx_serve_extents). */
static int plugin_extents(void *handle, uint32_t count, uint64_t offset, uint32_t flags,
			   struct nbdkit_extents *extents)
{
	return plugin_result(vhdx_serve_extents(((struct handle *)handle)->img, count, offset, flags, extents));
}

static struct nbdkit_plugin plugin = {
	.name = "vhdx",
	.longname = "nbdkit VHDX/AVHDX/VHD plugin (libvhdx)",
	.version = PACKAGE_VERSION,
	.description = "Serves a VHDX, an AVHDX differencing chain or a VHD image.",
	.unload = plugin_unload,
	.config = plugin_config,
	.config_complete = plugin_config_complete,
	.config_help = plugin_config_help,
	.magic_config_key = "file",
	.dump_plugin = plugin_dump,
	.get_ready = plugin_get_ready,
	.open = plugin_open,
	.close = plugin_close,
	.get_size = plugin_get_size,
	.can_write = plugin_can_write,
	.can_flush = plugin_can_flush,
	.can_trim = plugin_can_trim,
	.can_zero = plugin_can_zero,
	.can_fast_zero = plugin_can_fast_zero,
	.can_fua = plugin_can_fua,
	.can_multi_conn = plugin_can_multi_conn,
	.can_extents = plugin_can_extents,
	.can_cache = plugin_can_cache,
	.pread = plugin_pread,
	.pwrite = plugin_pwrite,
	.flush = plugin_flush,
	.trim = plugin_trim,
	.zero = plugin_zero,
	.extents = plugin_extents,
	.errno_is_preserved = 0,
};

/* nbdkit's entry point, defined by the macro below; declared for -Wmissing-prototypes (clang) */
struct nbdkit_plugin *plugin_init(void);
NBDKIT_REGISTER_PLUGIN(plugin)
