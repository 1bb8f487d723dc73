/*
 * vhdx_filter.c - nbdkit filter decoding a VHDX, AVHDX or VHD image that
 * the plugin below provides (a file, an HTTPS URL through the curl plugin,
 * ssh, memory, ...), through libvhdx's public API only:
 *
 *   nbdkit PLUGIN ... --filter=vhdx [writable=true] [parent=FILE|URI]
 *               [parent-dir=DIR|URI]... [path-map=P=DIR]... [ignore-id-mismatch=true]
 *
 * The plugin's bytes are read through vhdx_open_io(): each callback is a
 * request to the plugin below.  That happens through a backend context
 * of our own, opened "shared" (nbdkit_next_context_open), not the
 * connection's: one struct vhdx_image per export serves every connection,
 * for the reasons the plugin gives (vhdx_plugin.c): libvhdx's reads take no
 * image lock, writes are serialised inside it, and two writable opens of
 * one leaf would overwrite each other's allocations.  So can_multi_conn is
 * true.  The images stay open until nbdkit cleans up (.cleanup), where
 * a writable one is flushed and closed.
 *
 * Read-only by default: a dirty VHDX log is replayed in memory and the
 * plugin below is never written.  With writable=true, a connection that
 * may write and a plugin below that can write, the leaf is opened
 * writable; an export has a fixed size, so a write that needs a new block
 * beyond its end fails with ENOSPC.  Parents are files or NBD URIs given by
 * parent=, parent-dir= and path-map= (as for the plugin).
 *
 * Threads: PARALLEL.  If nbdkit runs a stricter model (a plugin or filter
 * that asks for one), the callbacks are serialised (VHDX_IO_SERIALIZE),
 * since requests of different connections reach the shared context.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "libvhdx.h"
#include "vhdx_serve.h"

#define MAX_REQUEST (32u << 20) /* longest request sent to the plugin below */

static struct vhdx_serve_parents cfg_parents;
static bool cfg_writable;
static bool serialize_calls; /* nbdkit's thread model is not PARALLEL */

/* One image per export name, shared by every connection to that export. */
struct shared {
	struct shared *link;
	char *export;
	nbdkit_next *next;        /* our shared context of the plugin below (closed by the image's close callback) */
	uint64_t plugin_size;
	char name[300];           /* the source's name in messages */
	struct vhdx_image *img;
	bool writable;
	bool native_discard;
	uint64_t size;            /* of the virtual disk */
};

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER; /* the list, and opening */
static struct shared *shared_list;

struct handle {
	char *export;
	nbdkit_backend *backend;
	struct shared *sh;        /* set by .prepare */
	bool writable;
};

/* ---------------------------------------------------------------- configuration */

static void filter_unload(void)
{
	vhdx_serve_parents_free(&cfg_parents);
}

static int filter_config(nbdkit_next_config *next, nbdkit_backend *nxdata, const char *key, const char *value)
{
	int r = vhdx_serve_parent_config(&cfg_parents, key, value);

	if (r != 0)
		return r < 0 ? -1 : 0;
	if (!strcmp(key, "writable")) {
		r = nbdkit_parse_bool(value);
		if (r < 0)
			return -1;
		cfg_writable = r;
		return 0;
	}
	return next(nxdata, key, value);
}

#define filter_config_help \
	"writable=true               Open the leaf writable (when the plugin below can write).\n" \
	"parent=<FILE|URI>           The immediate parent: a file or an NBD URI.\n" \
	"parent-dir=<DIR|URI>        Look for parents in DIR (repeatable).\n" \
	"path-map=<WINPREFIX>=<DIR>  Follow absolute parent paths under WINPREFIX in DIR (repeatable).\n" \
	"ignore-id-mismatch=true     Accept a parent whose identity differs from the child's link."

static int filter_get_ready(int thread_model)
{
	serialize_calls = thread_model != NBDKIT_THREAD_MODEL_PARALLEL;
	return 0;
}

static int filter_thread_model(void)
{
	return NBDKIT_THREAD_MODEL_PARALLEL;
}

/* ---------------------------------------------------------------- the plugin below as a libvhdx source */

static ssize_t src_pread(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct shared *sh = opaque;
	uint32_t n;
	int err = 0;

	if (off >= sh->plugin_size)
		return 0;
	if (len > sh->plugin_size - off)
		len = (size_t)(sh->plugin_size - off);
	n = len < MAX_REQUEST ? (uint32_t)len : MAX_REQUEST;
	if (sh->next->pread(sh->next, buf, n, off, 0, &err) == -1)
		return vhdx_set_errmsg(err ? err : EIO, "the plugin below failed a read of %" PRIu32 " bytes: %s", n,
				       strerror(err ? err : EIO));
	return n;
}

static ssize_t src_pwrite(void *opaque, const void *buf, size_t len, uint64_t off)
{
	struct shared *sh = opaque;
	uint32_t n;
	int err = 0;

	if (off > sh->plugin_size || len > sh->plugin_size - off)
		return vhdx_set_errmsg(ENOSPC, "the plugin below has a fixed size (%" PRIu64 " bytes): cannot write %zu bytes at %" PRIu64,
				       sh->plugin_size, len, off);
	n = len < MAX_REQUEST ? (uint32_t)len : MAX_REQUEST;
	if (sh->next->pwrite(sh->next, buf, n, off, 0, &err) == -1)
		return vhdx_set_errmsg(err ? err : EIO, "the plugin below failed a write of %" PRIu32 " bytes: %s", n,
				       strerror(err ? err : EIO));
	return n;
}

static int src_flush(void *opaque)
{
	struct shared *sh = opaque;
	int err = 0;

	if (sh->next->can_flush(sh->next) != 1)
		return 0;
	if (sh->next->flush(sh->next, 0, &err) == -1)
		return vhdx_set_errmsg(err ? err : EIO, "the plugin below failed a flush: %s", strerror(err ? err : EIO));
	return 0;
}

static int src_get_size(void *opaque, uint64_t *size)
{
	*size = ((struct shared *)opaque)->plugin_size;
	return 0;
}

/* Called once by vhdx_close() (or a failed open): our context of the plugin below goes with it. */
static void src_close(void *opaque)
{
	struct shared *sh = opaque;

	if (sh->next) {
		sh->next->finalize(sh->next);
		nbdkit_next_context_close(sh->next);
		sh->next = NULL;
	}
}

/*
 * Opens the image of EXPORT through a shared context of the plugin below,
 * writable when WANT_WRITE and the plugin can write.  Caller holds
 * shared_lock.  NULL with the error logged.
 */
static struct shared *shared_open(nbdkit_backend *backend, const char *export, bool want_write)
{
	struct shared *sh = calloc(1, sizeof *sh);
	struct vhdx_io_callbacks cb;
	struct vhdx_open_options o;
	struct vhdx_info info;
	int64_t size;
	int r;

	if (!sh || !(sh->export = strdup(export))) {
		nbdkit_error("out of memory");
		free(sh);
		return NULL;
	}
	sh->next = nbdkit_next_context_open(backend, !want_write, export, 1);
	if (!sh->next)
		goto fail; /* nbdkit said why */
	if (sh->next->prepare(sh->next) == -1) {
		nbdkit_next_context_close(sh->next);
		sh->next = NULL;
		goto fail;
	}
	size = sh->next->get_size(sh->next);
	if (size < 0) {
		src_close(sh);
		goto fail;
	}
	sh->plugin_size = (uint64_t)size;
	if (want_write && sh->next->can_write(sh->next) != 1) {
		nbdkit_debug("vhdx filter: the plugin below cannot write: serving export '%s' read-only", export);
		want_write = false;
	}
	if (*export)
		snprintf(sh->name, sizeof sh->name, "export '%s' of the plugin below the vhdx filter", export);
	else
		snprintf(sh->name, sizeof sh->name, "the plugin below the vhdx filter");

	memset(&cb, 0, sizeof cb);
	cb.struct_size = sizeof cb;
	cb.flags = serialize_calls ? VHDX_IO_SERIALIZE : 0;
	cb.name = sh->name;
	cb.pread = src_pread;
	cb.get_size = src_get_size;
	cb.pwrite = want_write ? src_pwrite : NULL;
	cb.flush = want_write ? src_flush : NULL;
	cb.close = src_close;
	vhdx_open_options_init(&o);
	if (want_write)
		o.flags |= VHDX_OPEN_RDWR;
	vhdx_serve_parents_apply(&cfg_parents, &o);
	r = vhdx_open_io(&cb, sh, &o, &sh->img); /* owns the context now, even on failure */
	if (r < 0) {
		vhdx_serve_fail(r, "vhdx filter: opening the image");
		goto fail;
	}
	memset(&info, 0, sizeof info);
	info.struct_size = sizeof info;
	r = vhdx_get_info(sh->img, &info);
	if (r < 0) {
		vhdx_serve_fail(r, "vhdx filter: %s", sh->name);
		vhdx_close(sh->img);
		goto fail;
	}
	{
		const char *warn = vhdx_warnings(sh->img);
		if (warn && *warn)
			nbdkit_debug("vhdx filter: %s: %s", sh->name, warn);
	}
	sh->writable = want_write;
	sh->native_discard = info.format == VHDX_FORMAT_VHDX;
	sh->size = info.virtual_size;
	return sh;
fail:
	free(sh->export);
	free(sh);
	return NULL;
}

/* Flushes and closes every image (nbdkit is done with every connection). */
static void filter_cleanup(nbdkit_backend *backend)
{
	pthread_mutex_lock(&shared_lock);
	while (shared_list) {
		struct shared *sh = shared_list;
		shared_list = sh->link;
		/* vhdx_close flushes a writable leaf, then our close callback releases the context */
		if (vhdx_close(sh->img) < 0)
			nbdkit_error("vhdx filter: closing %s: %s", sh->name, vhdx_errmsg());
		free(sh->export);
		free(sh);
	}
	pthread_mutex_unlock(&shared_lock);
}

/* ---------------------------------------------------------------- connections */

static void *filter_open(nbdkit_next_open *next, nbdkit_context *nxdata, int readonly, const char *exportname,
			 int is_tls)
{
	struct handle *h;

	/* the connection's own context of the plugin (unused for data: see the top of the file) */
	if (next(nxdata, readonly, exportname) == -1)
		return NULL;
	h = calloc(1, sizeof *h);
	if (!h || !(h->export = strdup(exportname))) {
		nbdkit_error("out of memory");
		free(h);
		return NULL;
	}
	h->backend = nbdkit_context_get_backend(nxdata);
	h->writable = cfg_writable && !readonly;
	return h;
}

static int filter_prepare(nbdkit_next *next, void *handle, int readonly)
{
	struct handle *h = handle;
	struct shared *sh;

	pthread_mutex_lock(&shared_lock);
	for (sh = shared_list; sh && strcmp(sh->export, h->export); sh = sh->link)
		;
	if (!sh) {
		/* the first connection decides: writable when asked, the connection may write, and the plugin can */
		sh = shared_open(h->backend, h->export, h->writable);
		if (sh) {
			sh->link = shared_list;
			shared_list = sh;
		}
	}
	pthread_mutex_unlock(&shared_lock);
	if (!sh)
		return -1;
	h->sh = sh;
	h->writable = h->writable && sh->writable;
	return 0;
}

/* A leaving writer flushes, so the image is consistent whenever no client is connected (as the plugin). */
static int filter_finalize(nbdkit_next *next, void *handle)
{
	struct handle *h = handle;
	int e;

	if (!h->sh || !h->writable)
		return 0;
	e = vhdx_serve_flush(h->sh->img);
	if (e) {
		nbdkit_error("vhdx filter: flushing %s at disconnect failed", h->sh->name);
		return -1;
	}
	return 0;
}

static void filter_close(void *handle)
{
	struct handle *h = handle;

	free(h->export);
	free(h);
}

/* ---------------------------------------------------------------- what the connection may do */

static int64_t filter_get_size(nbdkit_next *next, void *handle)
{
	return (int64_t)((struct handle *)handle)->sh->size;
}

static int filter_can_write(nbdkit_next *next, void *handle)
{
	return ((struct handle *)handle)->writable;
}

static int filter_can_flush(nbdkit_next *next, void *handle)
{
	return ((struct handle *)handle)->writable;
}

/* Trim only where it releases blocks (VHDX): for VHD it would write zeros and allocate. */
static int filter_can_trim(nbdkit_next *next, void *handle)
{
	struct handle *h = handle;

	return h->writable && h->sh->native_discard;
}

static int filter_can_zero(nbdkit_next *next, void *handle)
{
	return ((struct handle *)handle)->writable ? NBDKIT_ZERO_NATIVE : NBDKIT_ZERO_NONE;
}

static int filter_can_fast_zero(nbdkit_next *next, void *handle)
{
	return ((struct handle *)handle)->writable;
}

static int filter_can_fua(nbdkit_next *next, void *handle)
{
	return ((struct handle *)handle)->writable ? NBDKIT_FUA_NATIVE : NBDKIT_FUA_NONE;
}

static int filter_can_multi_conn(nbdkit_next *next, void *handle)
{
	return 1;
}

static int filter_can_extents(nbdkit_next *next, void *handle)
{
	return 1;
}

static int filter_can_cache(nbdkit_next *next, void *handle)
{
	return NBDKIT_CACHE_EMULATE;
}

/* ---------------------------------------------------------------- data */

/* -1 with *ERR set when E (an errno from vhdx_serve_*) is set, else 0. */
static int result(int e, int *err)
{
	if (!e)
		return 0;
	*err = e;
	return -1;
}

static int filter_pread(nbdkit_next *next, void *handle, void *buf, uint32_t count, uint64_t offset, uint32_t flags,
			int *err)
{
	return result(vhdx_serve_pread(((struct handle *)handle)->sh->img, buf, count, offset), err);
}

static int filter_pwrite(nbdkit_next *next, void *handle, const void *buf, uint32_t count, uint64_t offset,
			 uint32_t flags, int *err)
{
	return result(vhdx_serve_pwrite(((struct handle *)handle)->sh->img, buf, count, offset, flags), err);
}

static int filter_flush(nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
	return result(vhdx_serve_flush(((struct handle *)handle)->sh->img), err);
}

static int filter_trim(nbdkit_next *next, void *handle, uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
	return result(vhdx_serve_trim(((struct handle *)handle)->sh->img, count, offset, flags), err);
}

static int filter_zero(nbdkit_next *next, void *handle, uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
	struct shared *sh = ((struct handle *)handle)->sh;

	return result(vhdx_serve_zero(sh->img, sh->native_discard, count, offset, flags), err);
}

static int filter_extents(nbdkit_next *next, void *handle, uint32_t count, uint64_t offset, uint32_t flags,
			  struct nbdkit_extents *extents, int *err)
{
	return result(vhdx_serve_extents(((struct handle *)handle)->sh->img, count, offset, flags, extents), err);
}

static struct nbdkit_filter filter = {
	.name = "vhdx",
	.longname = "nbdkit VHDX/AVHDX/VHD decoding filter (libvhdx)",
	.description = "Decodes a VHDX, an AVHDX differencing chain or a VHD image served by the plugin below.",
	.unload = filter_unload,
	.config = filter_config,
	.config_help = filter_config_help,
	.thread_model = filter_thread_model,
	.get_ready = filter_get_ready,
	.cleanup = filter_cleanup,
	.open = filter_open,
	.close = filter_close,
	.prepare = filter_prepare,
	.finalize = filter_finalize,
	.get_size = filter_get_size,
	.can_write = filter_can_write,
	.can_flush = filter_can_flush,
	.can_trim = filter_can_trim,
	.can_zero = filter_can_zero,
	.can_fast_zero = filter_can_fast_zero,
	.can_fua = filter_can_fua,
	.can_multi_conn = filter_can_multi_conn,
	.can_extents = filter_can_extents,
	.can_cache = filter_can_cache,
	.pread = filter_pread,
	.pwrite = filter_pwrite,
	.flush = filter_flush,
	.trim = filter_trim,
	.zero = filter_zero,
	.extents = filter_extents,
};

/* nbdkit's entry point, defined by the macro below; declared for -Wmissing-prototypes */
struct nbdkit_filter *filter_init(void);
NBDKIT_REGISTER_FILTER(filter)
