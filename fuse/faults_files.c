/*
 * faults_files.c - fault injection in a vhdxfs mount (issue #6): the fault
 * engine every mount carries, `-o faults=FILE` and `-o fault-log=FILE`, the
 * control files .vhdxfs/faults (list, add, clear rules while mounted) and
 * .vhdxfs/events (one line per injected fault), and the fault counters of
 * .vhdxfs/stats.
 *
 * Why every mount has an engine, even without -o faults: the library wraps
 * each layer file in the fault backend only at open time, so rules written
 * to .vhdxfs/faults later need the engine to be there from the start.  An
 * engine without rules costs one atomic load per I/O and still hands out
 * the image file's descriptor, so reads stay zero-copy until a rule is
 * added (then they are copied through the rules).
 *
 * The rule language is the library's (libvhdx(3), "Fault injection").
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdxfs.h"

struct vhdxfs_faults {
	struct vhdx_faults *engine;
	char *log_path;              /* -o fault-log=FILE, or NULL */
	pthread_mutex_t lock;        /* last_error */
	char last_error[512];        /* why the last write to .vhdxfs/faults was refused */
	bool refused;                /* that refusal is newer than any accepted write: faults shows it first */
};

int vhdxfs_faults_setup(struct vhdxfs *fs, const char *rules_path, const char *log_path)
{
	struct vhdxfs_faults *vf;
	int ret;

	vf = calloc(1, sizeof *vf);
	if (!vf) {
		fprintf(stderr, "vhdxfs: out of memory\n");
		return -ENOMEM;
	}
	pthread_mutex_init(&vf->lock, NULL);
	ret = vhdx_faults_new(&vf->engine);
	if (ret < 0) {
		fprintf(stderr, "vhdxfs: %s\n", vhdx_errmsg());
		goto fail;
	}
	if (log_path) {
		/* Absolute: without -f the daemon's working folder becomes / before the log is written. */
		char cwd[4096];

		if (log_path[0] != '/' && getcwd(cwd, sizeof cwd)) {
			if (asprintf(&vf->log_path, "%s/%s", cwd, log_path) < 0)
				vf->log_path = NULL;
		} else {
			vf->log_path = strdup(log_path);
		}
		if (!vf->log_path) {
			fprintf(stderr, "vhdxfs: out of memory\n");
			ret = -ENOMEM;
			goto fail;
		}
	}
	if (rules_path) {
		/* The library's message names the file and the line: "rules.txt line 3: ..." */
		ret = vhdx_faults_load_file(vf->engine, rules_path);
		if (ret < 0) {
			fprintf(stderr, "vhdxfs: -o faults: %s\n", vhdx_errmsg());
			goto fail;
		}
	}
	fs->faults = vf;
	return 0;
fail:
	vhdx_faults_free(vf->engine);
	free(vf->log_path);
	pthread_mutex_destroy(&vf->lock);
	free(vf);
	return ret;
}

struct vhdx_faults *vhdxfs_faults_engine(struct vhdxfs *fs)
{
	return fs->faults ? fs->faults->engine : NULL;
}

int vhdxfs_faults_finish(struct vhdxfs *fs)
{
	struct vhdxfs_faults *vf = fs->faults;
	char *rules = NULL, *events = NULL;
	int ret = 0;
	FILE *f;

	if (!vf)
		return 0;
	if (vf->log_path) {
		/*
		 * Written after the image is closed, so the log also holds the
		 * faults injected while unmounting (the flush and the op=close
		 * rules of vhdx_close) and the final hit counts of every rule.
		 */
		f = fopen(vf->log_path, "w");
		if (!f) {
			fprintf(stderr, "vhdxfs: -o fault-log=%s: %s\n", vf->log_path, strerror(errno));
			ret = -1;
		} else {
			if (vhdx_faults_format_rules(vf->engine, &rules) == 0 &&
			    vhdx_faults_format_events(vf->engine, 0, &events, NULL) == 0)
				fprintf(f, "# rules\n%s# events\n%s", rules, events);
			else
				ret = -1;
			if (fclose(f) != 0 || ret < 0) {
				fprintf(stderr, "vhdxfs: -o fault-log=%s: cannot write the log\n", vf->log_path);
				ret = -1;
			}
		}
		free(rules);
		free(events);
	}
	vhdx_faults_free(vf->engine);
	free(vf->log_path);
	pthread_mutex_destroy(&vf->lock);
	free(vf);
	fs->faults = NULL;
	return ret;
}

/* ------------------------------------------------------------ .vhdxfs/faults */

int vhdxfs_faults_render(struct vhdxfs *fs, char **out, size_t *len)
{
	char *text = NULL;
	int ret;

	if (!fs->faults)
		return -ENOENT;
	ret = vhdx_faults_format_rules(fs->faults->engine, &text);
	if (ret < 0)
		return ret;
	/* a write refused since the last accepted one: its reason first, as a comment line */
	pthread_mutex_lock(&fs->faults->lock);
	if (fs->faults->refused) {
		char *both = NULL;

		if (asprintf(&both, "# last write refused (EINVAL, nothing changed): %s\n%s", fs->faults->last_error,
			     text) < 0)
			both = NULL;
		free(text);
		text = both;
	}
	pthread_mutex_unlock(&fs->faults->lock);
	if (!text)
		return -ENOMEM;
	*out = text;
	*len = strlen(text);
	return 0;
}

static void ctl_refuse(struct vhdxfs_faults *vf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ctl_refuse(struct vhdxfs_faults *vf, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&vf->lock);
	va_start(ap, fmt);
	vsnprintf(vf->last_error, sizeof vf->last_error, fmt, ap);
	va_end(ap);
	for (char *c = vf->last_error; *c; c++)
		if (*c == '\n')
			*c = ' '; /* one comment line in the listing */
	vf->refused = true;
	fuse_log(FUSE_LOG_ERR, "vhdxfs: .vhdxfs/faults: %s\n", vf->last_error);
	pthread_mutex_unlock(&vf->lock);
}

/* True when TEXT is WORD alone on its line, with blanks around it. */
static bool is_command(const char *text, const char *word, const char **arg)
{
	size_t n = strlen(word);

	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	if (strncmp(text, word, n) != 0)
		return false;
	text += n;
	if (arg) {
		if (*text != ' ' && *text != '\t')
			return false;
		while (*text == ' ' || *text == '\t')
			text++;
		*arg = text;
		return true;
	}
	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	return *text == '\0';
}

/*
 * A write to .vhdxfs/faults: "clear" removes every rule, "remove N" rule N,
 * anything else is one or more rule lines added after the existing rules,
 * all or none.  Each write() must hold whole lines (echo, printf and cat of
 * a rules file do); the offset is ignored, so appending works too.  A
 * refused write fails with EINVAL (ENOENT for an unknown rule number) and
 * changes nothing; the reason goes to the log, to stats' faults_last_error
 * and to the first line of the next reads of .vhdxfs/faults (until a write
 * is accepted).
 */
ssize_t vhdxfs_faults_write(struct vhdxfs *fs, const char *buf, size_t len, uint64_t off)
{
	struct vhdxfs_faults *vf = fs->faults;
	const char *arg;
	char *text, *end;
	unsigned long id;
	int ret;

	(void)off;
	if (!vf)
		return -ENOENT;
	if (memchr(buf, '\0', len)) {
		ctl_refuse(vf, "a NUL byte in the rule text");
		return -EINVAL;
	}
	text = malloc(len + 1);
	if (!text)
		return -ENOMEM;
	memcpy(text, buf, len);
	text[len] = '\0';
	if (is_command(text, "clear", NULL)) {
		vhdx_faults_clear(vf->engine);
		ret = 0;
	} else if (is_command(text, "remove", &arg)) {
		errno = 0;
		id = strtoul(arg, &end, 10);
		while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
			end++;
		if (errno || end == arg || *end || id == 0 || id > UINT32_MAX) {
			ctl_refuse(vf, "remove takes one rule number, got '%.40s'", arg);
			ret = -EINVAL;
		} else {
			ret = vhdx_faults_remove(vf->engine, (unsigned)id);
			if (ret < 0)
				ctl_refuse(vf, "remove %lu: no such rule", id);
		}
	} else {
		/* "faults line N: unknown key 'opp'": nothing was added */
		ret = vhdx_faults_add(vf->engine, text);
		if (ret < 0)
			ctl_refuse(vf, "%s", vhdx_errmsg());
	}
	free(text);
	if (ret < 0)
		return ret == -ENOMEM || ret == -ENOENT ? ret : -EINVAL;
	pthread_mutex_lock(&vf->lock);
	vf->refused = false;
	pthread_mutex_unlock(&vf->lock);
	/*
	 * Pages the kernel cached before this change would be served without
	 * asking us: a new read rule would never fire on them, and pages a flip
	 * rule corrupted would stay corrupted after the rule is gone.
	 */
	vhdxfs_disk_cache_drop(fs);
	return (ssize_t)len;
}

/* ------------------------------------------------------------ .vhdxfs/events */

int vhdxfs_events_render(struct vhdxfs *fs, char **out, size_t *len)
{
	char *text = NULL;
	int ret;

	if (!fs->faults)
		return -ENOENT;
	ret = vhdx_faults_format_events(fs->faults->engine, 0, &text, NULL);
	if (ret < 0)
		return ret;
	*out = text;
	*len = strlen(text);
	return 0;
}

/* ------------------------------------------------------------ stats */

/* Appends to a malloc'd string; on failure frees it and leaves NULL. */
static void cat_printf(char **s, size_t *len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cat_printf(char **s, size_t *len, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	if (!*s)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	p = n < 0 ? NULL : realloc(*s, *len + (size_t)n + 1);
	if (!p) {
		free(*s);
		*s = NULL;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(p + *len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	*s = p;
	*len += (size_t)n;
}

int vhdxfs_faults_stats(struct vhdxfs *fs, char **out)
{
	static const char *const op_names[6] = { "read", "write", "flush", "truncate", "open", "close" };
	struct vhdx_faults_stats st;
	char *rules = NULL, *s, *line, *err;
	size_t len = 0;

	*out = NULL;
	if (!fs->faults)
		return 0;
	memset(&st, 0, sizeof st);
	st.struct_size = sizeof st;
	if (vhdx_faults_get_stats(fs->faults->engine, &st) < 0)
		return -EINVAL;
	s = strdup("");
	cat_printf(&s, &len, "faults_rules=%u\n", st.rules);
	cat_printf(&s, &len, "faults_injected=%" PRIu64 "\n", st.events);
	cat_printf(&s, &len, "faults_failed=%" PRIu64 "\n", st.failed);
	cat_printf(&s, &len, "faults_errors=%" PRIu64 "\nfaults_delays=%" PRIu64 "\nfaults_shorts=%" PRIu64 "\n",
		   st.errors, st.delays, st.shorts);
	cat_printf(&s, &len, "faults_torns=%" PRIu64 "\nfaults_flips=%" PRIu64 "\nfaults_crashes=%" PRIu64 "\n",
		   st.torns, st.flips, st.crashes);
	cat_printf(&s, &len, "faults_after_crash=%" PRIu64 "\n", st.after_crash);
	for (unsigned i = 0; i < 6; i++)
		cat_printf(&s, &len, "faults_%s=%" PRIu64 "\n", op_names[i], st.by_op[i]);
	/*
	 * Per active rule, from the listing's "# rule N: hits=H matched=M"
	 * comments: the listing is the one place that knows which numbers
	 * are active.
	 */
	if (vhdx_faults_format_rules(fs->faults->engine, &rules) == 0) {
		for (line = rules; line && *line;) {
			char *nl = strchr(line, '\n');
			const char *c = strstr(line, "# rule ");
			unsigned long long hits, matched;
			unsigned id;

			if (nl)
				*nl = '\0';
			if (c && sscanf(c, "# rule %u: hits=%llu matched=%llu", &id, &hits, &matched) == 3)
				cat_printf(&s, &len, "fault_rule%u_hits=%llu\nfault_rule%u_matched=%llu\n", id, hits, id,
					   matched);
			line = nl ? nl + 1 : NULL;
		}
	}
	free(rules);
	pthread_mutex_lock(&fs->faults->lock);
	err = strdup(fs->faults->last_error);
	pthread_mutex_unlock(&fs->faults->lock);
	if (err)
		for (char *c = err; *c; c++)
			if (*c == '\n')
				*c = ' ';
	cat_printf(&s, &len, "faults_last_error=%s\n", err ? err : "");
	free(err);
	if (!s)
		return -ENOMEM;
	*out = s;
	return 0;
}
