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
 * since requests of different connections reach the shared context;
 * under SERIALIZE_REQUESTS a read-only image reads through a pool of
 * contexts instead (readers=N), one call at a time each.
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
#include "readahead.h"
#include "vhdx_serve.h"

#define MAX_REQUEST (32u << 20) /* longest request sent to the plugin below */
#define MAX_READERS 16
#define RA_CHUNK (2u << 20) /* readahead.h: what one request to a remote plugin fetches when reads stream */
#define RA_SLOTS 8

static struct vhdx_serve_parents cfg_parents;
static bool cfg_writable;
static unsigned cfg_readers = 4;
static bool cfg_readahead = true;
static int thread_model;     /* nbdkit's, for the whole stack */

/* One image per export name, shared by every connection to that export. */
struct shared {
	struct shared *link;
	char *export;
	nbdkit_next *next;        /* our shared context of the plugin below (closed by the image's close callback) */
	/*
	 * A read-only image over a plugin that serves one request at a time
	 * per context (curl, ssh: SERIALIZE_REQUESTS) reads through a pool of
	 * contexts, so that the requests of several client connections reach
	 * the plugin in parallel instead of queueing on one HTTP connection.
	 * readers[0] is NEXT; n_readers 1 means no pool.
	 */
	nbdkit_next *readers[MAX_READERS];
	bool reader_busy[MAX_READERS];
	unsigned n_readers;
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_free;
	struct ra_cache *ra;      /* with the pool: streamed reads fetch whole chunks (readahead.h), else NULL */
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

	if (r == 0)
		r = vhdx_serve_bool_config("writable", &cfg_writable, key, value);
	if (r == 0)
		r = vhdx_serve_bool_config("readahead", &cfg_readahead, key, value);
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (!strcmp(key, "readers")) {
		if (nbdkit_parse_unsigned("readers", value, &cfg_readers) == -1)
			return -1;
		if (cfg_readers < 1 || cfg_readers > MAX_READERS) {
			nbdkit_error("readers=%s: from 1 to %d", value, MAX_READERS);
			return -1;
		}
		return 0;
	}
	return next(nxdata, key, value);
}

#define filter_config_help \
	"writable=true               Open the leaf writable (when the plugin below can write).\n" \
	"parent=<FILE|URI>           The immediate parent: a file or an NBD URI.\n" \
	"parent-dir=<DIR|URI>        Look for parents in DIR (repeatable).\n" \
	"path-map=<WINPREFIX>=<DIR>  Follow absolute parent paths under WINPREFIX in DIR (repeatable).\n" \
	"ignore-id-mismatch=true     Accept a parent whose identity differs from the child's link.\n" \
	"readers=<N>                 Contexts of the plugin below that read in parallel (default 4).\n" \
	"readahead=false             Do not fetch whole 2 MiB chunks for streamed reads."

static int filter_get_ready(int model)
{
	thread_model = model;
	return 0;
}

static int filter_thread_model(void)
{
	return NBDKIT_THREAD_MODEL_PARALLEL;
}

/* ---------------------------------------------------------------- the plugin below as a libvhdx source */

/* A context of the pool nobody reads through now (waiting for one), marked busy. */
static unsigned reader_take(struct shared *sh)
{
	unsigned i;

	pthread_mutex_lock(&sh->pool_lock);
	for (;;) {
		for (i = 0; i < sh->n_readers && sh->reader_busy[i]; i++)
			;
		if (i < sh->n_readers)
			break;
		pthread_cond_wait(&sh->pool_free, &sh->pool_lock);
	}
	sh->reader_busy[i] = true;
	pthread_mutex_unlock(&sh->pool_lock);
	return i;
}

static void reader_give_back(struct shared *sh, unsigned i)
{
	pthread_mutex_lock(&sh->pool_lock);
	sh->reader_busy[i] = false;
	pthread_cond_signal(&sh->pool_free);
	pthread_mutex_unlock(&sh->pool_lock);
}

/* One read of the plugin below, through a free context of the pool when there is one. */
static ssize_t src_fetch(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct shared *sh = opaque;
	nbdkit_next *next = sh->next;
	unsigned slot = 0;
	uint32_t n;
	int err = 0, r;

	if (off >= sh->plugin_size)
		return 0;
	if (len > sh->plugin_size - off)
		len = (size_t)(sh->plugin_size - off);
	n = len < MAX_REQUEST ? (uint32_t)len : MAX_REQUEST;
	if (sh->n_readers > 1) {
		slot = reader_take(sh);
		next = sh->readers[slot];
	}
	r = next->pread(next, buf, n, off, 0, &err);
	if (sh->n_readers > 1)
		reader_give_back(sh, slot);
	if (r == -1)
		return vhdx_set_errmsg(err ? err : EIO, "the plugin below failed a read of %" PRIu32 " bytes: %s", n,
				       strerror(err ? err : EIO));
	return n;
}

static ssize_t src_pread(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct shared *sh = opaque;

	return sh->ra ? ra_read(sh->ra, buf, len, off) : src_fetch(sh, buf, len, off);
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

	for (unsigned i = 1; i < sh->n_readers; i++) {
		sh->readers[i]->finalize(sh->readers[i]);
		nbdkit_next_context_close(sh->readers[i]);
	}
	sh->n_readers = 0;
	if (sh->next) {
		sh->next->finalize(sh->next);
		nbdkit_next_context_close(sh->next);
		sh->next = NULL;
	}
	ra_free(sh->ra);
	sh->ra = NULL;
}

/*
 * The pool of read contexts (see struct shared): only for a read-only image
 * under SERIALIZE_REQUESTS (a writer's reads must see its own writes, which
 * go through NEXT).  PARALLEL needs none (one context takes
 * concurrent calls); the stricter models forbid concurrent calls into the
 * plugin at all, so every read goes through NEXT, one at a time.  A context
 * that cannot be opened only makes the pool smaller.
 */
static void readers_open(struct shared *sh, nbdkit_backend *backend, const char *export, bool writable)
{
	sh->readers[0] = sh->next;
	sh->n_readers = 1;
	if (writable || thread_model != NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS)
		return;
	while (sh->n_readers < cfg_readers) {
		nbdkit_next *c = nbdkit_next_context_open(backend, 1, export, 1);

		if (!c)
			break;
		if (c->prepare(c) == -1) {
			nbdkit_next_context_close(c);
			break;
		}
		/* nbdkit checks every read against the size a context learnt from get_size */
		if (c->get_size(c) != (int64_t)sh->plugin_size) {
			c->finalize(c);
			nbdkit_next_context_close(c);
			break;
		}
		sh->readers[sh->n_readers++] = c;
	}
	if (cfg_readahead)
		sh->ra = ra_new(RA_SLOTS, RA_CHUNK, sh->plugin_size, src_fetch, sh); /* none without memory: reads go through */
	if (sh->n_readers == 1)
		nbdkit_debug("vhdx filter: 1 context of the plugin below reads");
	else
		nbdkit_debug("vhdx filter: %u contexts of the plugin below read in parallel", sh->n_readers);
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
	pthread_mutex_init(&sh->pool_lock, NULL);
	pthread_cond_init(&sh->pool_free, NULL);
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

	readers_open(sh, backend, export, want_write);
	memset(&cb, 0, sizeof cb);
	cb.struct_size = sizeof cb;
	/* a pool hands each call its own context; else, the one context takes one call at a time unless PARALLEL */
	cb.flags = sh->n_readers > 1 || thread_model == NBDKIT_THREAD_MODEL_PARALLEL ? 0 : VHDX_IO_SERIALIZE;
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
		pthread_mutex_destroy(&sh->pool_lock);
		pthread_cond_destroy(&sh->pool_free);
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
