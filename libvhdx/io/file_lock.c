/*
 * file_lock.c - locks on image files for the POSIX file backend (issue
 * #14): one writer or many readers, taken without waiting.
 *
 * Linux: open file description locks (fcntl F_OFD_SETLK) on the whole
 * file.  They belong to the open file, not to the process, so two opens of
 * one image conflict even inside one process (two vhdx_open() calls would
 * each cache their own BAT), every thread using one open shares its lock,
 * and the kernel drops them when the last descriptor of the open goes,
 * also when the process is killed: no lock files, nothing stale.  Where
 * F_OFD_SETLK does not exist (or the kernel refuses it with EINVAL) the
 * backend falls back to flock(), which has the same open-file semantics.
 * LIBVHDX_LOCK=flock in the environment forces the fallback (tests).
 * The two kinds do not see each other, so one system uses one of them.
 *
 * The ranges leave qemu's own locks alone (it locks bytes 100-299 and
 * refuses to open a file where another lock covers its "unshare" bytes):
 * a writer locks the whole file, so qemu cannot open what we write and we
 * cannot write what qemu has open; a reader locks from SHARED_START on,
 * which still conflicts with our writers' whole-file lock but lets qemu
 * read beside it.  Tests for other locks look at the readers' range, which
 * every lock of ours covers.
 *
 * A conflict names the holder where the system can tell: /proc/locks gives
 * the PID of a flock() lock; an OFD lock shows PID -1 there, so the holder
 * is found by the "lock:" lines of /proc/PID/fdinfo of the descriptors
 * that open the same file (processes of other users stay unknown).
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"
#include "io/io.h"
#include "io/file_lock.h"

static bool use_flock(void)
{
#ifdef F_OFD_SETLK
	static int forced = -1;

	if (forced < 0) {
		const char *e = getenv("LIBVHDX_LOCK");
		forced = e && !strcmp(e, "flock");
	}
	return forced;
#else
	return true;
#endif
}

/* The command name of PID into H->cmd. */
static void holder_cmd(struct vhdx_lock_holder *h)
{
	char p[64];
	FILE *f;

	snprintf(p, sizeof p, "/proc/%ld/comm", h->pid);
	f = fopen(p, "re");
	if (!f)
		return;
	if (fgets(h->cmd, sizeof h->cmd, f))
		h->cmd[strcspn(h->cmd, "\n")] = '\0';
	fclose(f);
}

/* Whether a /proc/locks-style line LINE is a lock on ST's file; fills mode and pid. */
static bool parse_lock_line(const char *line, const struct stat *st, struct vhdx_lock_holder *h)
{
	char kind[16], adv[16], rw[16];
	unsigned maj, min;
	unsigned long long ino;
	long pid;
	const char *p = strchr(line, ':');

	if (!p || strstr(line, "->"))
		return false; /* a waiter, not a holder */
	if (sscanf(p + 1, "%15s %15s %15s %ld %x:%x:%llu", kind, adv, rw, &pid, &maj, &min, &ino) != 7)
		return false;
	if (maj != major(st->st_dev) || min != minor(st->st_dev) || ino != (unsigned long long)st->st_ino)
		return false;
	h->mode = !strcmp(rw, "WRITE") ? VHDX_LOCK_EXCLUSIVE : VHDX_LOCK_SHARED;
	h->pid = pid > 0 ? pid : 0;
	return true;
}

/* The holder of an OFD lock: a descriptor of some process on ST's file whose fdinfo lists a lock. */
static void find_ofd_holder(int self_fd, const struct stat *st, struct vhdx_lock_holder *h)
{
	DIR *proc = opendir("/proc");
	struct dirent *pe;
	long self = (long)getpid();

	if (!proc)
		return;
	while ((pe = readdir(proc)) && !h->pid) {
		char dir[64];
		DIR *fds;
		struct dirent *fe;
		long pid;

		if (!isdigit((unsigned char)pe->d_name[0]))
			continue;
		pid = strtol(pe->d_name, NULL, 10);
		snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
		fds = opendir(dir);
		if (!fds)
			continue;
		while ((fe = readdir(fds)) && !h->pid) {
			char path[320], line[256];
			struct stat fst;
			FILE *f;

			if (!isdigit((unsigned char)fe->d_name[0]))
				continue;
			if (pid == self && atoi(fe->d_name) == self_fd)
				continue;
			snprintf(path, sizeof path, "/proc/%ld/fd/%s", pid, fe->d_name);
			if (stat(path, &fst) < 0 || fst.st_dev != st->st_dev || fst.st_ino != st->st_ino)
				continue;
			snprintf(path, sizeof path, "/proc/%ld/fdinfo/%s", pid, fe->d_name);
			f = fopen(path, "re");
			if (!f)
				continue;
			while (fgets(line, sizeof line, f)) {
				struct vhdx_lock_holder one = { 0 };
				if (!strncmp(line, "lock:", 5) && parse_lock_line(line + 5, st, &one)) {
					if (h->mode == VHDX_LOCK_NONE)
						h->mode = one.mode;
					h->pid = pid;
					break;
				}
			}
			fclose(f);
		}
		closedir(fds);
	}
	closedir(proc);
}

/* Fills *H with what /proc says about the lock on FD's file that another open holds. */
static void find_holder(int fd, struct vhdx_lock_holder *h)
{
	struct stat st;
	char line[256];
	FILE *f;

	if (fstat(fd, &st) < 0)
		return;
	f = fopen("/proc/locks", "re");
	if (f) {
		while (fgets(line, sizeof line, f)) {
			struct vhdx_lock_holder one = { 0 };
			if (!parse_lock_line(line, &st, &one))
				continue;
			if (one.pid == (long)getpid() && use_flock())
				continue; /* ours (flock: the fallback lists our own lock too) */
			if (h->mode == VHDX_LOCK_NONE)
				h->mode = one.mode;
			h->pid = one.pid;
			if (h->pid)
				break;
		}
		fclose(f);
	}
	if (!h->pid && !use_flock())
		find_ofd_holder(fd, &st, h);
	if (h->pid)
		holder_cmd(h);
}

/* A file system that keeps no locks at all (some FUSE and network ones): the open goes on unlocked. */
static bool no_locks_here(int e)
{
#if EOPNOTSUPP != ENOTSUP
	if (e == EOPNOTSUPP)
		return true;
#endif
	return e == ENOLCK || e == ENOTSUP || e == ENOSYS;
}

static int flock_lock(int fd, enum vhdx_lock_mode mode, struct vhdx_lock_holder *held)
{
	int op = mode == VHDX_LOCK_EXCLUSIVE ? LOCK_EX : mode == VHDX_LOCK_SHARED ? LOCK_SH : LOCK_UN;

	while (flock(fd, op | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			held->mode = mode == VHDX_LOCK_SHARED ? VHDX_LOCK_EXCLUSIVE : VHDX_LOCK_NONE;
			find_holder(fd, held);
			return -EBUSY;
		}
		if (no_locks_here(errno))
			return 0;
		return vhdx_err(errno, "flock: %s", strerror(errno));
	}
	return 0;
}

/* first byte of a reader's lock (past qemu's bytes 100-299); a writer's starts at 0 */
#define SHARED_START 512

int vhdx_file_lock(int fd, enum vhdx_lock_mode mode, struct vhdx_lock_holder *held)
{
#ifdef F_OFD_SETLK
	if (!use_flock()) {
		struct flock fl;

		memset(&fl, 0, sizeof fl);
		fl.l_type = mode == VHDX_LOCK_EXCLUSIVE ? F_WRLCK : mode == VHDX_LOCK_SHARED ? F_RDLCK : F_UNLCK;
		fl.l_whence = SEEK_SET; /* l_len 0: to the end of the file, however it grows */
		if (mode == VHDX_LOCK_SHARED) {
			/* a reader drops any writer's lock it held on the bytes before SHARED_START */
			struct flock un = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = SHARED_START };
			fl.l_start = SHARED_START;
			if (fcntl(fd, F_OFD_SETLK, &fl) == 0 && fcntl(fd, F_OFD_SETLK, &un) == 0)
				return 0;
		} else if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return 0;
		if (errno == EAGAIN || errno == EACCES) {
			struct flock q;
			memset(&q, 0, sizeof q);
			q.l_type = F_WRLCK;
			q.l_whence = SEEK_SET;
			q.l_start = SHARED_START;
			held->mode = VHDX_LOCK_NONE;
			if (fcntl(fd, F_OFD_GETLK, &q) == 0 && q.l_type != F_UNLCK)
				held->mode = q.l_type == F_WRLCK ? VHDX_LOCK_EXCLUSIVE : VHDX_LOCK_SHARED;
			find_holder(fd, held);
			return -EBUSY;
		}
		if (errno == EBADF && mode == VHDX_LOCK_EXCLUSIVE)
			return vhdx_err(EBADF, "an exclusive lock needs the file opened for writing");
		if (errno != EINVAL && !no_locks_here(errno))
			return vhdx_err(errno, "locking: %s", strerror(errno));
		/* no OFD locks in this kernel or on this file system: flock() */
	}
#endif
	return flock_lock(fd, mode, held);
}

int vhdx_file_lock_test(int fd, enum vhdx_lock_mode own, struct vhdx_lock_holder *held)
{
	struct stat st;
	char line[256];
	bool mine_seen = false;
	FILE *f;

	held->mode = VHDX_LOCK_NONE;
#ifdef F_OFD_SETLK
	if (!use_flock()) {
		struct flock q;

		memset(&q, 0, sizeof q);
		q.l_type = F_WRLCK;
		q.l_whence = SEEK_SET;
		q.l_start = SHARED_START;
		/* our own open's lock never conflicts with itself, so this sees only the others */
		if (fcntl(fd, F_OFD_GETLK, &q) == 0) {
			if (q.l_type != F_UNLCK)
				held->mode = q.l_type == F_WRLCK ? VHDX_LOCK_EXCLUSIVE : VHDX_LOCK_SHARED;
			return 0;
		}
		if (errno != EINVAL)
			return vhdx_err(errno, "testing the lock: %s", strerror(errno));
	}
#endif
	/* flock(): /proc/locks lists every lock on the file, our own among them */
	if (fstat(fd, &st) < 0)
		return vhdx_err(errno, "%s", strerror(errno));
	f = fopen("/proc/locks", "re");
	if (!f)
		return vhdx_err(ENOTSUP, "the system cannot tell who holds a lock (no /proc/locks)");
	while (fgets(line, sizeof line, f)) {
		struct vhdx_lock_holder one = { 0 };
		if (!parse_lock_line(line, &st, &one))
			continue;
		if (own != VHDX_LOCK_NONE && !mine_seen && one.pid == (long)getpid() && one.mode == own) {
			mine_seen = true; /* one of our process's locks of this kind is our own */
			continue;
		}
		if (one.mode > held->mode)
			held->mode = one.mode;
	}
	fclose(f);
	return 0;
}
