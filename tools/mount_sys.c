/*
 * mount_sys.c - what `vhdx mount` and `vhdx umount` ask of the system
 * (mount.h): running mount, umount, losetup, ntfs-3g and vhdxfs as child
 * processes with their output captured; the mounts and loop devices that
 * lie under a folder, found in /proc/self/mountinfo and /sys/block; and the
 * processes holding files there, found in /proc (what fuser -vm shows).
 *
 * Nothing is remembered in a state file: `vhdx umount DIR` finds all it
 * must undo from the kernel's own tables, so a killed `vhdx mount` or a
 * killed vhdxfs leaves nothing it cannot find.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
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

#include "common/grow.h"
#include "mount.h"

extern char **environ;

void mnt_sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

char *mnt_read_all(const char *path, size_t *len_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 0;
	char *buf = NULL;

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t n;

		if (grow(&buf, &cap, len + 4097, 1, 8192) < 0) {
			free(buf);
			close(fd);
			errno = ENOMEM;
			return NULL;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (len_out)
		*len_out = len;
	return buf;
}

int mnt_run(char *const *argv, char **out)
{
	char tmpl[] = "/tmp/vhdx-mount.XXXXXX";
	posix_spawn_file_actions_t fa;
	int fd = mkstemp(tmpl), ret, st = 0;
	pid_t pid;

	if (out)
		*out = NULL;
	if (fd < 0)
		return -errno;
	unlink(tmpl);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	ret = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (ret != 0) {
		close(fd);
		if (out && asprintf(out, "cannot run %s: %s", argv[0], strerror(ret)) < 0)
			*out = NULL;
		return -ret;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (out) {
		char buf[4096];
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		size_t len = n > 0 ? (size_t)n : 0;

		/* the first paragraph: what went wrong, not a usage text after it */
		for (size_t i = 0; i + 1 < len; i++)
			if (buf[i] == '\n' && buf[i + 1] == '\n')
				len = i;
		while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
			len--;
		buf[len] = '\0';
		for (size_t i = 0; i < len; i++)
			if (buf[i] == '\n')
				buf[i] = ';';
		*out = strdup(buf);
	}
	close(fd);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* Decodes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_octal(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

void mnt_list_free(struct mnt_entry *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].target);
		free(m[i].fstype);
		free(m[i].source);
	}
	free(m);
}

int mnt_list(const char *dir, struct mnt_entry **out, size_t *n_out)
{
	char *info = mnt_read_all("/proc/self/mountinfo", NULL), *line, *save = NULL;
	size_t dlen = strlen(dir), n = 0, cap = 0;
	struct mnt_entry *m = NULL;

	*out = NULL;
	*n_out = 0;
	if (!info)
		return -errno;
	for (line = strtok_r(info, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS" */
		char *f[5], *save2 = NULL, *dash = strstr(line, " - "), *fstype, *source;
		int i;

		if (!dash)
			continue;
		*dash = '\0';
		fstype = strtok_r(dash + 3, " ", &save2);
		source = strtok_r(NULL, " ", &save2);
		save2 = NULL;
		f[0] = strtok_r(line, " ", &save2);
		for (i = 1; i < 5 && f[i - 1]; i++)
			f[i] = strtok_r(NULL, " ", &save2);
		if (i < 5 || !f[4] || !fstype)
			continue;
		unescape_octal(f[4]);
		/* DIR's own children only: DIR/NAME, no deeper */
		if (strncmp(f[4], dir, dlen) != 0 || f[4][dlen] != '/' || strchr(f[4] + dlen + 1, '/'))
			continue;
		if (grow(&m, &cap, n + 1, sizeof *m, 16) < 0)
			break;
		m[n].id = atoi(f[0]);
		m[n].target = strdup(f[4]);
		m[n].fstype = strdup(fstype);
		if (source)
			unescape_octal(source);
		m[n].source = strdup(source ? source : "");
		n++;
	}
	free(info);
	*out = m;
	*n_out = n;
	return 0;
}

bool mnt_is_mounted(const char *target)
{
	char *copy = strdup(target), *slash;
	struct mnt_entry *m;
	size_t n;
	bool found = false;

	if (!copy)
		return false;
	slash = strrchr(copy, '/');
	if (slash && slash != copy) {
		*slash = '\0';
		if (mnt_list(copy, &m, &n) == 0) {
			for (size_t i = 0; i < n; i++)
				found |= strcmp(m[i].target, target) == 0;
			mnt_list_free(m, n);
		}
	}
	free(copy);
	return found;
}

int mnt_loops(const char *prefix, char ***devs, char ***files, size_t *n_out)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	size_t plen = strlen(prefix), n = 0, cap_dv = 0, cap_fl = 0;
	char **dv = NULL, **fl = NULL;

	*devs = NULL;
	*files = NULL;
	*n_out = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX], *back;
		size_t len;

		if (strncmp(e->d_name, "loop", 4) != 0 || !isdigit((unsigned char)e->d_name[4]))
			continue;
		snprintf(path, sizeof path, "/sys/block/%s/loop/backing_file", e->d_name);
		back = mnt_read_all(path, &len);
		if (!back)
			continue;
		while (len && back[len - 1] == '\n')
			back[--len] = '\0';
		if (strncmp(back, prefix, plen) == 0) {
			if (grow(&dv, &cap_dv, n + 1, sizeof *dv, 8) < 0 || grow(&fl, &cap_fl, n + 1, sizeof *fl, 8) < 0) {
				free(back);
				break;
			}
			if (asprintf(&dv[n], "/dev/%s", e->d_name) < 0) {
				free(back);
				break;
			}
			fl[n++] = back;
			continue;
		}
		free(back);
	}
	closedir(d);
	*devs = dv;
	*files = fl;
	*n_out = n;
	return 0;
}

/* The process's command name (from /proc/PID/comm) into BUF. */
static void proc_comm(const char *pid, char *buf, size_t len)
{
	char path[300], *s;

	snprintf(path, sizeof path, "/proc/%s/comm", pid);
	s = mnt_read_all(path, NULL);
	snprintf(buf, len, "%s", s ? s : "?");
	free(s);
	buf[strcspn(buf, "\n")] = '\0';
}

/* True when PATH is DIR or lies under it. */
static bool under(const char *path, const char *dir, size_t dlen)
{
	return strncmp(path, dir, dlen) == 0 && (path[dlen] == '/' || path[dlen] == '\0');
}

/* True when the process's command line names a path under DIR (a FUSE daemon of ours, a mount helper). */
static bool serves_dir(const char *pid, const char *dir, size_t dlen)
{
	char path[300], *s;
	size_t len = 0;
	bool yes = false;

	snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
	s = mnt_read_all(path, &len);
	for (size_t i = 0; s && i < len; i += strlen(s + i) + 1)
		yes |= under(s + i, dir, dlen);
	free(s);
	return yes;
}

int mnt_holders(const char *dir, char **report)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	size_t dlen = strlen(dir), rlen = 0, rcap = 0;
	char *r = NULL, self[32];
	int n = 0;

	*report = NULL;
	if (!proc)
		return -errno;
	snprintf(self, sizeof self, "%d", (int)getpid());
	while ((e = readdir(proc)) != NULL) {
		char path[PATH_MAX], target[PATH_MAX], comm[64], what[PATH_MAX + 64] = "";
		const char *links[] = { "cwd", "root", "exe" };
		DIR *fds;
		ssize_t k;

		if (!isdigit((unsigned char)e->d_name[0]) || !strcmp(e->d_name, self))
			continue;
		proc_comm(e->d_name, comm, sizeof comm);
		/* the daemons we stop ourselves: vhdxfs, ntfs-3g, fuse2fs serving a path under DIR */
		if ((!strcmp(comm, "vhdxfs") || !strncmp(comm, "ntfs-3g", 7) || !strcmp(comm, "fuse2fs")) &&
		    serves_dir(e->d_name, dir, dlen))
			continue;
		for (unsigned i = 0; i < 3 && !what[0]; i++) {
			snprintf(path, sizeof path, "/proc/%s/%s", e->d_name, links[i]);
			k = readlink(path, target, sizeof target - 1);
			if (k > 0) {
				target[k] = '\0';
				if (under(target, dir, dlen))
					snprintf(what, sizeof what, "%s %s", links[i], target);
			}
		}
		snprintf(path, sizeof path, "/proc/%s/fd", e->d_name);
		fds = what[0] ? NULL : opendir(path);
		while (fds) {
			struct dirent *fe = readdir(fds);

			if (!fe)
				break;
			if (fe->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "/proc/%s/fd/%s", e->d_name, fe->d_name);
			k = readlink(path, target, sizeof target - 1);
			if (k > 0) {
				target[k] = '\0';
				if (under(target, dir, dlen)) {
					snprintf(what, sizeof what, "open %s", target);
					break;
				}
			}
		}
		if (fds)
			closedir(fds);
		if (!what[0]) {
			/* memory maps (a program run from there, a mapped file) */
			char *maps;

			snprintf(path, sizeof path, "/proc/%s/maps", e->d_name);
			maps = mnt_read_all(path, NULL);
			for (char *l = maps ? strtok(maps, "\n") : NULL; l; l = strtok(NULL, "\n")) {
				char *p = strchr(l, '/');

				if (p && under(p, dir, dlen)) {
					snprintf(what, sizeof what, "mmap %s", p);
					break;
				}
			}
			free(maps);
		}
		if (what[0]) {
			size_t need = strlen(what) + strlen(comm) + 64;

			if (grow(&r, &rcap, rlen + need, 1, 1024) < 0)
				continue;
			rlen += (size_t)snprintf(r + rlen, rcap - rlen, "%sPID %s (%s) %s", n ? "; " : "", e->d_name, comm, what);
			n++;
		}
	}
	closedir(proc);
	*report = r;
	return n;
}

pid_t mnt_daemon_pid(const char *name, const char *path)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	if (!proc)
		return 0;
	while ((e = readdir(proc)) != NULL && !found) {
		char comm[64], file[300], *s;
		size_t len = 0;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		proc_comm(e->d_name, comm, sizeof comm);
		if (strcmp(comm, name) != 0)
			continue;
		snprintf(file, sizeof file, "/proc/%s/cmdline", e->d_name);
		s = mnt_read_all(file, &len);
		for (size_t i = 0; s && i < len; i += strlen(s + i) + 1)
			if (!strcmp(s + i, path))
				found = (pid_t)atoi(e->d_name);
		free(s);
	}
	closedir(proc);
	return found;
}

int mnt_fuse_unmount(const char *target, char **out)
{
	char *argv[] = { (char *)"fusermount3", (char *)"-u", (char *)target, NULL };
	char *msg = NULL;
	int ret = mnt_run(argv, &msg);

	for (int k = 0; ret != 0 && k < 20; k++) {
		mnt_sleep_ms(100);
		free(msg);
		msg = NULL;
		ret = mnt_run(argv, &msg);
	}
	if (out)
		*out = msg;
	else
		free(msg);
	return ret != 0 ? -1 : 0;
}

bool mnt_wait_exit(pid_t pid)
{
	for (int k = 0; pid > 0 && k < 600 && kill(pid, 0) == 0; k++)
		mnt_sleep_ms(50);
	return pid <= 0 || kill(pid, 0) != 0;
}
