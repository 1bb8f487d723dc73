/*
 * cycle_mount.c - vhdxfs as a child process for `vhdx cycle mount`: find the
 * program, mount an image with the cycle's fault rules, read the control
 * files under MOUNTPOINT/.vhdxfs, unmount with fusermount3 -u and collect
 * vhdxfs's exit status.
 *
 * vhdxfs runs in the foreground (-f) as our child, so its exit status (1
 * when closing the image failed, which is where faults of the unmount
 * surface) is ours to wait for, and its standard error (the library's
 * message naming the operation, file, offset and structure) goes to a file
 * in the work folder.  The mount is detected in /proc/self/mountinfo rather
 * than by stat() on the mount point, which would block on a daemon that
 * hangs.  Every exit path leaves nothing mounted and no child running.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cycle.h"
#include "mount.h"

extern char **environ;

char *cycle_read_file(const char *path)
{
	return mnt_read_all(path, NULL);
}

static bool executable(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *cycle_find_vhdxfs(const char *override)
{
	char exe[PATH_MAX], cand[PATH_MAX + 32];
	const char *env = getenv("VHDXFS"), *path;
	ssize_t n;

	if (override)
		return executable(override) ? strdup(override) : NULL;
	if (env && *env && executable(env))
		return strdup(env);
	n = tool_self_exe(exe, sizeof exe);
	if (n > 0) {
		char *slash;

		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			/* installed: beside vhdx; build tree: tools/vhdx and fuse/vhdxfs */
			snprintf(cand, sizeof cand, "%s/vhdxfs", exe);
			if (executable(cand))
				return strdup(cand);
			snprintf(cand, sizeof cand, "%s/../fuse/vhdxfs", exe);
			if (executable(cand))
				return realpath(cand, NULL);
		}
	}
	path = getenv("PATH");
	while (path && *path) {
		const char *colon = strchr(path, ':');
		size_t len = colon ? (size_t)(colon - path) : strlen(path);

		if (len && len < PATH_MAX) {
			snprintf(cand, sizeof cand, "%.*s/vhdxfs", (int)len, path);
			if (executable(cand))
				return strdup(cand);
		}
		path = colon ? colon + 1 : NULL;
	}
	return NULL;
}

/* True when MNT is a mount point of this mount namespace. */
static bool is_mounted(const char *mnt)
{
	return mnt_is_mounted(mnt);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "-o NAME=VALUE" with ',' and '\' escaped for libfuse's option parser. */
static char *fuse_opt(const char *name, const char *value)
{
	size_t n = strlen(name) + 2 * strlen(value) + 2;
	char *s = malloc(n), *o;

	if (!s)
		return NULL;
	o = s + sprintf(s, "%s=", name);
	for (; *value; value++) {
		if (*value == ',' || *value == '\\')
			*o++ = '\\';
		*o++ = *value;
	}
	*o = '\0';
	return s;
}

/*
 * Spawns ARGV with stdin /dev/null and stdout+stderr to OUT (truncated), in
 * a process group of its own: a Ctrl-C on the terminal reaches only us, and
 * we unmount in order instead of vhdxfs vanishing mid-cycle.  0 or -errno.
 */
static int spawn(char *const *argv, const char *out, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int ret;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	ret = posix_spawn(pid, argv[0], &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return -ret;
}

/* The child's output file, without trailing newlines, on one line ("" if none). */
static char *child_output(const char *path)
{
	char *s = cycle_read_file(path);
	size_t n;

	if (!s)
		return strdup("");
	n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	for (char *c = s; *c; c++)
		if (*c == '\n')
			*c = ';';
	return s;
}

/* "exited with status 1" / "killed by signal 9" */
static void describe_status(int st, char *buf, size_t n)
{
	if (WIFEXITED(st))
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, n, "ended with wait status 0x%x", (unsigned)st);
}

int cycle_mount_start(struct cycle_mount *cm, const char *image, const char *rules, const char *log, char **msg)
{
	char *o_faults = fuse_opt("faults", rules), *o_log = fuse_opt("fault-log", log);
	char out[PATH_MAX + 32], how[128];
	uint64_t deadline;
	int ret, st;

	*msg = NULL;
	cm->mounted = false;
	cm->pid = 0;
	cm->status = 0;
	snprintf(out, sizeof out, "%s/vhdxfs.out", cm->workdir);
	if (!o_faults || !o_log) {
		free(o_faults);
		free(o_log);
		*msg = strdup("out of memory");
		return -1;
	}
	{
		/*
		 * nopartitions: the agent attaches the disk raw and the workload
		 * uses `disk` alone; vhdxfs's own reads of the partition table
		 * (at the mount, again after a flush) would be I/O no workload
		 * call makes, so a fault injected into them could never be seen.
		 */
		char *argv[] = { (char *)cm->vhdxfs, (char *)"-f", (char *)"-o", (char *)"rw,nopartitions", (char *)"-o",
				 o_faults, (char *)"-o", o_log, (char *)image, cm->mnt, NULL };

		ret = spawn(argv, out, &cm->pid);
	}
	free(o_faults);
	free(o_log);
	if (ret < 0) {
		cm->pid = 0;
		if (asprintf(msg, "cannot start %s: %s", cm->vhdxfs, strerror(-ret)) < 0)
			*msg = NULL;
		return -1;
	}
	deadline = now_ms() + cm->timeout_ms;
	for (unsigned i = 0;; i++) {
		pid_t w = waitpid(cm->pid, &st, WNOHANG);

		if (w == cm->pid) {
			/* vhdxfs ended before mounting: its stderr says why (the open failed) */
			char *o = child_output(out);

			cm->status = st;
			cm->pid = 0;
			describe_status(st, how, sizeof how);
			if (asprintf(msg, "vhdxfs %s before mounting: %s", how, o) < 0)
				*msg = NULL;
			free(o);
			return -1;
		}
		if (is_mounted(cm->mnt)) {
			cm->mounted = true;
			return 0;
		}
		if (now_ms() > deadline)
			break;
		sleep_ms(i < 20 ? 2 : 10);
	}
	if (asprintf(msg, "%s did not appear as a mount within %u ms", cm->mnt, cm->timeout_ms) < 0)
		*msg = NULL;
	kill(cm->pid, SIGKILL);
	waitpid(cm->pid, &cm->status, 0);
	cm->pid = 0;
	return -1;
}

/* Runs fusermount3 with ARG ("-u" or "-uz") on the mount point; 0 or -1 with its output in *OUT. */
static int fusermount(struct cycle_mount *cm, const char *arg, char **out)
{
	char path[PATH_MAX + 32];
	char *argv[] = { (char *)"fusermount3", (char *)arg, cm->mnt, NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int ret, st;

	snprintf(path, sizeof path, "%s/fusermount.out", cm->workdir);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	ret = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (ret != 0) {
		if (asprintf(out, "cannot run fusermount3: %s", strerror(ret)) < 0)
			*out = NULL;
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	*out = child_output(path);
	return -1;
}

int cycle_mount_stop(struct cycle_mount *cm, char **msg)
{
	char *fm = NULL, how[128], out[PATH_MAX + 32];
	bool forced = false;
	uint64_t deadline;
	int st = 0, ret = 0;

	*msg = NULL;
	if (cm->mounted) {
		/* a busy mount may need a moment (a reader still closing): a few tries */
		for (int i = 0; i < 5; i++) {
			free(fm);
			fm = NULL;
			if (fusermount(cm, "-u", &fm) == 0 || !is_mounted(cm->mnt))
				break;
			sleep_ms(100);
		}
		if (is_mounted(cm->mnt)) {
			/* still busy: detach it lazily so that the next cycle can mount, and say so */
			forced = true;
			char *lazy = NULL;
			fusermount(cm, "-uz", &lazy);
			free(lazy);
		}
		cm->mounted = false;
	}
	if (cm->pid) {
		deadline = now_ms() + cm->timeout_ms;
		for (unsigned i = 0;; i++) {
			pid_t w = waitpid(cm->pid, &st, WNOHANG);

			if (w == cm->pid)
				break;
			if (now_ms() > deadline) {
				kill(cm->pid, SIGKILL);
				waitpid(cm->pid, &st, 0);
				forced = true;
				break;
			}
			sleep_ms(i < 20 ? 2 : 10);
		}
		cm->pid = 0;
		cm->status = st;
	}
	if (forced || !WIFEXITED(cm->status) || WEXITSTATUS(cm->status) != 0) {
		char *o;

		snprintf(out, sizeof out, "%s/vhdxfs.out", cm->workdir);
		o = child_output(out);
		describe_status(cm->status, how, sizeof how);
		if (asprintf(msg, "%s%s%svhdxfs %s%s%s", forced ? "unmount failed: " : "", fm ? fm : "", fm ? "; " : "",
			     how, *o ? ": " : "", o) < 0)
			*msg = NULL;
		free(o);
		ret = forced && fm ? -EBUSY : -EIO;
	}
	free(fm);
	return ret;
}

char *cycle_mount_read_ctl(const struct cycle_mount *cm, const char *name)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof path, "%s/.vhdxfs/%s", cm->mnt, name);
	return cycle_read_file(path);
}

char *cycle_mount_stat(const struct cycle_mount *cm, const char *key)
{
	char *s = cycle_mount_read_ctl(cm, "stats"), *line, *save = NULL, *val = NULL;
	size_t n = strlen(key);

	if (!s)
		return NULL;
	for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, key, n) && line[n] == '=') {
			val = strdup(line + n + 1);
			break;
		}
	free(s);
	return val;
}
