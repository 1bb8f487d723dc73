/*
 * lock.c - locking image files (issue #14; MISSION.md "safe sharing"): one
 * writer or many readers per file, refused at once with EBUSY otherwise.
 *
 * The locks themselves are a method of the I/O stack (io.h: lock and
 * lock_test): the file backends take OFD locks / flock() (io/file_lock.c)
 * or LockFileEx (io/file_win32.c), the mem backend keeps a lock per open of
 * its in-memory file, and the fault backend can inject a conflict
 * (op=lock err=EBUSY).  This file holds what sits above the backends: the
 * wrapper and its message, and lock sets, which let one maintenance
 * operation open a file several times (a merge reads the chain and writes
 * the ancestor through another open) without conflicting with itself.  The
 * open-and-lock step every image file goes through is io/stack.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/grow.h"
#include "internal.h"
#include "io/io.h"
#include "io/stack.h"

static _Thread_local struct vhdx_lockset *cur_set;

const char *vhdx_lock_access(enum vhdx_lock_mode mode)
{
	switch (mode) {
	case VHDX_LOCK_SHARED: return "reading";
	case VHDX_LOCK_EXCLUSIVE: return "writing";
	default: return "use";
	}
}

/* "NAME: in use for writing by another process (pid 12, vhdxfs); cannot open it for reading" */
static int busy(const char *name, enum vhdx_lock_mode asked, const struct vhdx_lock_holder *h)
{
	char who[160] = "another process";
	char extra[200] = "";

	if (h->pid) {
#ifndef _WIN32
		if (h->pid == (long)getpid())
			snprintf(who, sizeof who, "another open in this process");
#endif
		snprintf(extra, sizeof extra, " (pid %ld%s%s)", h->pid, h->cmd[0] ? ", " : "", h->cmd);
	} else if (h->note[0]) {
		snprintf(extra, sizeof extra, " (%s)", h->note);
	}
	if (h->mode == VHDX_LOCK_NONE)
		return vhdx_err(EBUSY, "%s: in use by %s%s; cannot open it for %s", name, who, extra,
				vhdx_lock_access(asked));
	return vhdx_err(EBUSY, "%s: in use for %s by %s%s; cannot open it for %s", name, vhdx_lock_access(h->mode),
			who, extra, vhdx_lock_access(asked));
}

int vhdx_io_lock(struct vhdx_io *io, enum vhdx_lock_mode mode)
{
	struct vhdx_lock_holder h;
	int ret;

	if (io->m->version < 2 || !io->m->lock)
		return 0; /* a backend that cannot lock */
	memset(&h, 0, sizeof h);
	ret = io->m->lock(io, mode, &h);
	if (ret == -EBUSY)
		return busy(io->name, mode, &h);
	if (ret < 0)
		return vhdx_err_prefix(ret, "%s: locking it for %s", io->name, vhdx_lock_access(mode));
	return 0;
}

int vhdx_io_lock_test(struct vhdx_io *io, struct vhdx_lock_holder *held)
{
	int ret;

	memset(held, 0, sizeof *held);
	if (io->m->version < 2 || !io->m->lock_test)
		return vhdx_err(ENOTSUP, "%s: cannot tell whether another process uses it", io->name);
	ret = io->m->lock_test(io, held);
	if (ret < 0)
		return vhdx_err_prefix(ret, "%s", io->name);
	return 0;
}

int vhdx_io_pass_lock(struct vhdx_io *lower, enum vhdx_lock_mode mode, struct vhdx_lock_holder *held)
{
	return lower->m->lock ? lower->m->lock(lower, mode, held) : 0;
}

int vhdx_io_pass_lock_test(struct vhdx_io *lower, struct vhdx_lock_holder *held)
{
	return lower->m->lock_test ? lower->m->lock_test(lower, held) : -ENOTSUP;
}

bool vhdx_lockset_covers(const char *path, enum vhdx_lock_mode mode)
{
	for (struct vhdx_lockset *s = cur_set; s; s = s->outer)
		for (size_t i = 0; i < s->n; i++)
			if (s->ent[i].mode >= mode && vhdx_same_file(s->ent[i].path, path))
				return true;
	return false;
}

void vhdx_lockset_begin(struct vhdx_lockset *s)
{
	memset(s, 0, sizeof *s);
	s->outer = cur_set;
	cur_set = s;
}

int vhdx_lockset_add(struct vhdx_lockset *s, const char *path, enum vhdx_lock_mode mode, struct vhdx_faults *faults)
{
	struct vhdx_lockset_entry *e;
	int ret;

	if (grow(&s->ent, &s->cap, s->n + 1, sizeof *s->ent, 8) < 0)
		return vhdx_err(ENOMEM, "out of memory");
	e = &s->ent[s->n];
	memset(e, 0, sizeof *e);
	e->path = strdup(path);
	if (!e->path)
		return vhdx_err(ENOMEM, "out of memory");
	e->mode = mode;
	if (!vhdx_lockset_covers(path, mode)) {
		/* the lock's own open: no op=open rule counts it, op=lock rules apply */
		struct vhdx_io_stack_opts o = { .writable = mode == VHDX_LOCK_EXCLUSIVE, .faults = faults,
						.open_uncounted = true };

		ret = vhdx_io_stack_open(path, &o, &e->io);
		if ((ret == -EACCES || ret == -EROFS || ret == -EPERM) && mode == VHDX_LOCK_EXCLUSIVE) {
			/* a file we may delete but not write: keep the writers out at least */
			e->mode = mode = VHDX_LOCK_SHARED;
			o.writable = false;
			ret = vhdx_io_stack_open(path, &o, &e->io);
		}
		if (ret == 0)
			ret = vhdx_io_lock(e->io, mode);
		if (ret < 0) {
			vhdx_io_close(e->io);
			free(e->path);
			return ret;
		}
	}
	s->n++;
	return 0;
}

void vhdx_lockset_end(struct vhdx_lockset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		vhdx_io_close(s->ent[i].io); /* closing the open drops its lock */
		free(s->ent[i].path);
	}
	free(s->ent);
	s->ent = NULL;
	s->n = s->cap = 0;
	if (cur_set == s)
		cur_set = s->outer;
}
