/*
 * stats.c - I/O counters of a vhdxfs mount and the text of .vhdxfs/stats.
 *
 * The counters are relaxed atomics bumped by the request threads; the stats
 * file is a snapshot rendered when it is opened, one "key=value" per line,
 * so that shell tests can read it with grep/cut.  Per-layer counts come from
 * the vhdx_map() extents each read resolved, so they cost nothing extra and
 * are exact for reads served by extent, approximate (per request) otherwise.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/textbuf.h"
#include "vhdxfs.h"

/* The errnos counted one by one; index i counts errors_by_errno[i]. */
static const struct {
	int err;
	const char *name;
} stats_errnos[VHDXFS_N_ERRNOS] = {
	{ EIO, "EIO" },         { EBADMSG, "EBADMSG" }, { ENOTSUP, "ENOTSUP" }, { ENOENT, "ENOENT" },
	{ ELOOP, "ELOOP" },     { EROFS, "EROFS" },     { EINVAL, "EINVAL" },   { ENOSPC, "ENOSPC" },
	{ ENOMEM, "ENOMEM" },   { EPERM, "EPERM" },
};

const char *vhdxfs_errno_name(int err)
{
	for (unsigned i = 0; i < VHDXFS_N_ERRNOS; i++)
		if (stats_errnos[i].err == err)
			return stats_errnos[i].name;
	return NULL;
}

int vhdxfs_stats_init(struct vhdxfs *fs, unsigned n_layers)
{
	struct vhdxfs_stats *s = &fs->stats;

	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->last_error_lock, NULL);
	s->layer = calloc(n_layers ? n_layers : 1, sizeof *s->layer);
	if (!s->layer)
		return -ENOMEM;
	s->n_layers = n_layers;
	return 0;
}

void vhdxfs_stats_free(struct vhdxfs *fs)
{
	free(fs->stats.layer);
	fs->stats.layer = NULL;
	pthread_mutex_destroy(&fs->stats.last_error_lock);
}

void vhdxfs_stats_error(struct vhdxfs *fs, int err, const char *msg)
{
	struct vhdxfs_stats *s = &fs->stats;
	unsigned i;

	for (i = 0; i < VHDXFS_N_ERRNOS; i++)
		if (stats_errnos[i].err == err)
			break;
	vhdxfs_count(&s->errors, 1);
	vhdxfs_count(&s->errors_by_errno[i], 1);
	pthread_mutex_lock(&s->last_error_lock);
	snprintf(s->last_error, sizeof s->last_error, "%s: %s", vhdxfs_errno_name(err) ? vhdxfs_errno_name(err) : "errno",
		 msg && *msg ? msg : strerror(err));
	pthread_mutex_unlock(&s->last_error_lock);
}

/* A value on one line: newlines and backslashes escaped so every line stays key=value. */
static void text_value(struct vhdx_textbuf *t, const char *key, const char *val)
{
	vhdx_textbuf_printf(t, "%s=", key);
	for (const char *c = val ? val : ""; *c; c++) {
		if (*c == '\n')
			vhdx_textbuf_printf(t, "\\n");
		else if (*c == '\\')
			vhdx_textbuf_printf(t, "\\\\");
		else
			vhdx_textbuf_printf(t, "%c", *c);
	}
	vhdx_textbuf_printf(t, "\n");
}

static uint64_t load(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

int vhdxfs_stats_render(struct vhdxfs *fs, char **out, size_t *len)
{
	struct vhdxfs_stats *s = &fs->stats;
	struct vhdx_textbuf t = { 0 };
	char key[64];
	char last[sizeof s->last_error];
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	text_value(&t, "image", fs->image_path);
	vhdx_textbuf_printf(&t, "format=%s\n", fs->info.format == VHDX_FORMAT_VHD ? "vhd" : "vhdx");
	vhdx_textbuf_printf(&t, "type=%s\n", fs->info.type == VHDX_TYPE_FIXED ? "fixed"
				     : fs->info.type == VHDX_TYPE_DYNAMIC ? "dynamic" : "differencing");
	vhdx_textbuf_printf(&t, "virtual_size=%" PRIu64 "\n", fs->info.virtual_size);
	vhdx_textbuf_printf(&t, "writable=%d\n", fs->rw ? 1 : 0);
	vhdx_textbuf_printf(&t, "log_replayed=%d\n", fs->info.log_replayed ? 1 : 0);
	vhdx_textbuf_printf(&t, "direct_io=%d\n", fs->direct_io ? 1 : 0);
	vhdx_textbuf_printf(&t, "read_ahead_kb=%u\n", atomic_load(&fs->readahead_kb));
	vhdx_textbuf_printf(&t, "uptime_sec=%lld\n", (long long)(now.tv_sec - fs->mount_time.tv_sec));
	vhdx_textbuf_printf(&t, "reads=%" PRIu64 "\n", load(&s->reads));
	vhdx_textbuf_printf(&t, "read_bytes=%" PRIu64 "\n", load(&s->read_bytes));
	vhdx_textbuf_printf(&t, "zero_copy_reads=%" PRIu64 "\n", load(&s->zero_copy_reads));
	vhdx_textbuf_printf(&t, "copied_reads=%" PRIu64 "\n", load(&s->copied_reads));
	vhdx_textbuf_printf(&t, "zero_reads=%" PRIu64 "\n", load(&s->zero_reads));
	vhdx_textbuf_printf(&t, "writes=%" PRIu64 "\n", load(&s->writes));
	vhdx_textbuf_printf(&t, "write_bytes=%" PRIu64 "\n", load(&s->write_bytes));
	vhdx_textbuf_printf(&t, "flushes=%" PRIu64 "\n", load(&s->flushes));
	vhdx_textbuf_printf(&t, "errors=%" PRIu64 "\n", load(&s->errors));
	for (unsigned i = 0; i < VHDXFS_N_ERRNOS; i++)
		vhdx_textbuf_printf(&t, "errors_%s=%" PRIu64 "\n", stats_errnos[i].name, load(&s->errors_by_errno[i]));
	vhdx_textbuf_printf(&t, "errors_other=%" PRIu64 "\n", load(&s->errors_by_errno[VHDXFS_N_ERRNOS]));
	pthread_mutex_lock(&s->last_error_lock);
	memcpy(last, s->last_error, sizeof last);
	pthread_mutex_unlock(&s->last_error_lock);
	text_value(&t, "last_error", last);
	vhdx_textbuf_printf(&t, "layers=%u\n", s->n_layers);
	for (unsigned l = 0; l < s->n_layers; l++) {
		snprintf(key, sizeof key, "layer%u_path", l);
		text_value(&t, key, vhdx_layer_path(fs->img, l));
		vhdx_textbuf_printf(&t, "layer%u_reads=%" PRIu64 "\n", l, load(&s->layer[l].reads));
		vhdx_textbuf_printf(&t, "layer%u_read_bytes=%" PRIu64 "\n", l, load(&s->layer[l].read_bytes));
	}
	/* fault injection: faults_injected=, per rule fault_ruleN_hits= (faults_files.c) */
	char *fault_text = NULL;
	if (vhdxfs_faults_stats(fs, &fault_text) < 0)
		t.failed = true;
	else if (fault_text)
		vhdx_textbuf_printf(&t, "%s", fault_text);
	free(fault_text);
	if (t.failed) {
		free(t.p);
		return -ENOMEM;
	}
	*out = t.p;
	*len = t.len;
	return 0;
}
