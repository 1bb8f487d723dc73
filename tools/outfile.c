/*
 * outfile.c - a new output file that appears under its name only when it
 * is complete (issue #15 item 2: a `vhdx convert` killed with SIGKILL left
 * an all-zero image at the destination that passed `vhdx check`).  The
 * command writes a temporary file beside the destination (same folder, so
 * the same file system) under the same name in a new hidden folder
 * ".NAME.tmp-PID" (so fault rules and messages naming the file still
 * apply), makes it durable, and renames it over the destination; the
 * folder is flushed after the rename.  A killed command leaves only that
 * hidden folder, never a plausible NAME.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _WIN32
#include <windows.h>
#endif

#include "tool.h"

/*
 * An existing destination is locked as a writer would lock it, from now
 * until it is replaced: a rename over a file another process writes (a
 * vhdxfs -o rw mount) would lose that process's acknowledged writes.
 * Anything but "in use" (no such file, a device, no permission) is left
 * to the rename to judge.
 */
static int outfile_lock_dst(struct tool_outfile *of, const char *cmd)
{
	int ret = vhdx_lock_file(of->dst, &of->dst_lock);

	if (ret == -EBUSY)
		return tool_lib_error(cmd, ret);
	of->dst_lock = ret < 0 ? NULL : of->dst_lock;
	return EXIT_OK;
}

int tool_outfile_begin(struct tool_outfile *of, const char *cmd, const char *dst)
{
	const char *base, *slash;
	char *real = NULL;
	size_t dlen;

	memset(of, 0, sizeof *of);
#ifndef _WIN32
	struct stat st;
	/* a symbolic link keeps pointing where it did: the file it names is replaced */
	if (lstat(dst, &st) == 0 && S_ISLNK(st.st_mode)) {
		real = realpath(dst, NULL);
		if (!real) {
			tool_error(cmd, "%s: %s", dst, strerror(errno));
			return EXIT_ERR;
		}
	}
#endif
	of->dst = real ? real : strdup(dst);
	if (!of->dst)
		goto nomem;
	if (outfile_lock_dst(of, cmd) != EXIT_OK) {
		tool_outfile_abort(of);
		return EXIT_ERR;
	}
	slash = strrchr(of->dst, '/');
#ifdef _WIN32
	{
		const char *bs = strrchr(of->dst, '\\');
		if (bs && (!slash || bs > slash))
			slash = bs;
	}
#endif
	base = slash ? slash + 1 : of->dst;
	dlen = (size_t)(base - of->dst);
	for (unsigned k = 0; k < 100; k++) {
		size_t n = dlen + strlen(base) + 48;
		free(of->tmpdir);
		of->tmpdir = malloc(n);
		if (!of->tmpdir)
			goto nomem;
		if (k)
			snprintf(of->tmpdir, n, "%.*s.%s.tmp-%ld-%u", (int)dlen, of->dst, base, (long)getpid(), k);
		else
			snprintf(of->tmpdir, n, "%.*s.%s.tmp-%ld", (int)dlen, of->dst, base, (long)getpid());
#ifdef _WIN32
		if (mkdir(of->tmpdir) == 0)
#else
		if (mkdir(of->tmpdir, 0700) == 0)
#endif
		{
			/* the same last component: fault rules (file=NAME) and messages still name it */
			n = strlen(of->tmpdir) + strlen(base) + 2;
			of->tmp = malloc(n);
			if (!of->tmp)
				goto nomem;
			snprintf(of->tmp, n, "%s/%s", of->tmpdir, base);
			return EXIT_OK;
		}
		if (errno != EEXIST) {
			tool_error(cmd, "%s: cannot make a temporary folder beside it (%s): %s", dst, of->tmpdir,
				   strerror(errno));
			free(of->tmpdir);
			of->tmpdir = NULL;
			tool_outfile_abort(of);
			return EXIT_ERR;
		}
	}
	tool_error(cmd, "%s: cannot find a free temporary name beside it", dst);
	free(of->tmpdir);
	of->tmpdir = NULL;
	tool_outfile_abort(of);
	return EXIT_ERR;
nomem:
	tool_error(cmd, "out of memory");
	tool_outfile_abort(of);
	return EXIT_ERR;
}

int tool_outfile_commit(struct tool_outfile *of, const char *cmd, bool replace)
{
	int e = 0;

#ifdef _WIN32
	/* Windows cannot replace a file while our lock's handle keeps it open */
	vhdx_unlock_file(of->dst_lock);
	of->dst_lock = NULL;
	if (!MoveFileExA(of->tmp, of->dst, MOVEFILE_WRITE_THROUGH | (replace ? MOVEFILE_REPLACE_EXISTING : 0)))
		e = GetLastError() == ERROR_ALREADY_EXISTS || GetLastError() == ERROR_FILE_EXISTS ? EEXIST : EIO;
#else
	if (replace) {
		if (rename(of->tmp, of->dst) < 0)
			e = errno;
	} else if (link(of->tmp, of->dst) == 0) {
		/* link() never replaces: a file that appeared meanwhile is kept */
		unlink(of->tmp);
	} else if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP || errno == EMLINK) {
		/* a file system without hard links: check, then rename */
		struct stat st;
		if (lstat(of->dst, &st) == 0)
			e = EEXIST;
		else if (rename(of->tmp, of->dst) < 0)
			e = errno;
	} else {
		e = errno;
	}
	if (!e) {
		/* the new name is durable: the folder holding both names (tmpdir's parent) */
		char *slash = strrchr(of->tmpdir, '/');
		if (!slash)
			(void)vhdx_sync_dir(".");
		else if (slash == of->tmpdir)
			(void)vhdx_sync_dir("/");
		else {
			*slash = '\0';
			(void)vhdx_sync_dir(of->tmpdir);
			*slash = '/';
		}
	}
#endif
	if (e) {
		tool_error(cmd, "%s: cannot move the finished output %s there: %s", of->dst, of->tmp, strerror(e));
		tool_outfile_abort(of);
		return EXIT_ERR;
	}
	vhdx_unlock_file(of->dst_lock); /* the old file is gone from DST: nobody can open it there now */
	rmdir(of->tmpdir);
	free(of->tmp);
	free(of->tmpdir);
	free(of->dst);
	memset(of, 0, sizeof *of);
	return EXIT_OK;
}

void tool_outfile_abort(struct tool_outfile *of)
{
	if (of->tmp)
		unlink(of->tmp);
	if (of->tmpdir)
		rmdir(of->tmpdir);
	vhdx_unlock_file(of->dst_lock);
	free(of->tmp);
	free(of->tmpdir);
	free(of->dst);
	memset(of, 0, sizeof *of);
}

int tool_outfile_lib_error_hint(const struct tool_outfile *of, const char *cmd, int ret, const char *hint)
{
	const char *msg = vhdx_errmsg(), *hit;
	size_t tl = of && of->tmp ? strlen(of->tmp) : 0;

	if (!msg || !*msg)
		msg = strerror(-ret);
	tool_json_set_errno(ret < 0 ? -ret : ret);
	if (tl && (hit = strstr(msg, of->tmp)))
		/* the user named DST: say DST, not the temporary name (first mention; enough for our messages) */
		tool_error(cmd, "%.*s%s%s%s%s", (int)(hit - msg), msg, of->dst, hit + tl, hint ? " " : "",
			   hint ? hint : "");
	else
		tool_error(cmd, "%s%s%s", msg, hint ? " " : "", hint ? hint : "");
	tool_json_set_errno(0);
	return EXIT_ERR;
}

int tool_outfile_lib_error(const struct tool_outfile *of, const char *cmd, int ret)
{
	return tool_outfile_lib_error_hint(of, cmd, ret, NULL);
}
