/*
 * test_lock.c - image file locks (io/lock.c, issue #14): conflicts between
 * two opens of one mem file, the same through the fault engine (op=lock
 * err=EBUSY), the messages, lock sets, and OFD locks between two opens of
 * one real file inside one process.
 */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "io/fault.h"
#include "io/io.h"

static void test_mem_conflicts(void **state)
{
	struct vhdx_io *a, *b, *c;
	struct vhdx_lock_holder h;

	(void)state;
	assert_ok(vhdx_io_mem_new("0123", 4, "web01.vhdx", &a));
	assert_ok(vhdx_io_mem_reopen(a, "web01.vhdx", &b));
	assert_ok(vhdx_io_mem_reopen(a, "web01.vhdx", &c));
	/* readers share */
	assert_ok(vhdx_io_lock(a, VHDX_LOCK_SHARED));
	assert_ok(vhdx_io_lock(b, VHDX_LOCK_SHARED));
	assert_ok(vhdx_io_lock_test(c, &h));
	assert_int_equal(h.mode, VHDX_LOCK_SHARED);
	/* a writer is refused while they read, with the exact message */
	assert_int_equal(vhdx_io_lock(c, VHDX_LOCK_EXCLUSIVE), -EBUSY);
	assert_string_equal(vhdx_errmsg(),
			    "web01.vhdx: in use for reading by another process; cannot open it for writing");
	/* the reader's own lock does not count for itself */
	assert_ok(vhdx_io_lock(b, VHDX_LOCK_NONE));
	assert_ok(vhdx_io_lock_test(a, &h));
	assert_int_equal(h.mode, VHDX_LOCK_NONE);
	/* closing an open drops its lock, like close(2) */
	vhdx_io_close(a);
	assert_ok(vhdx_io_lock(c, VHDX_LOCK_EXCLUSIVE));
	assert_fails(vhdx_io_lock(b, VHDX_LOCK_SHARED), -EBUSY,
		     "web01.vhdx: in use for writing by another process; cannot open it for reading");
	assert_fails(vhdx_io_lock(b, VHDX_LOCK_EXCLUSIVE), -EBUSY,
		     "web01.vhdx: in use for writing by another process; cannot open it for writing");
	assert_ok(vhdx_io_lock_test(b, &h));
	assert_int_equal(h.mode, VHDX_LOCK_EXCLUSIVE);
	/* the writer may step down to reading, then a second reader fits */
	assert_ok(vhdx_io_lock(c, VHDX_LOCK_SHARED));
	assert_ok(vhdx_io_lock(b, VHDX_LOCK_SHARED));
	/* the bytes are one file */
	{
		size_t len;
		assert_ok(vhdx_io_pwrite(c, "X", 1, 0, VHDX_TAG_OTHER));
		assert_memory_equal(vhdx_io_mem_data(b, &len), "X123", 4);
	}
	vhdx_io_close(b);
	vhdx_io_close(c);
}

static void test_fault_lock(void **state)
{
	struct vhdx_faults *f;
	struct vhdx_faults_stats st = { .struct_size = sizeof st };
	struct vhdx_io *mem, *other, *io;
	char *ev = NULL;

	(void)state;
	assert_ok(vhdx_faults_new(&f));
	assert_ok(vhdx_io_mem_new(NULL, 0, "/imgs/disk.vhdx", &mem));
	assert_ok(vhdx_io_mem_reopen(mem, "/imgs/disk.vhdx", &other));
	assert_ok(vhdx_io_fault_new(f, mem, &io));
	/* op=any does not include lock: rules written before locks keep their counts */
	assert_int_equal(vhdx_faults_add(f, "err=EIO"), 1);
	assert_ok(vhdx_io_lock(io, VHDX_LOCK_SHARED));
	vhdx_faults_clear(f);
	/* an injected conflict: EBUSY, the rule named, nothing else changed */
	assert_int_equal(vhdx_faults_add(f, "op=lock file=disk.vhdx err=EBUSY once"), 1);
	assert_int_equal(vhdx_io_lock(io, VHDX_LOCK_EXCLUSIVE), -EBUSY);
	assert_string_equal(vhdx_errmsg(), "/imgs/disk.vhdx: in use by another process (injected EBUSY, fault rule 2); "
					   "cannot open it for writing");
	assert_ok(vhdx_faults_get_stats(f, &st));
	assert_int_equal(st.events, 1);
	assert_ok(vhdx_faults_format_events(f, 0, &ev, NULL));
	assert_non_null(strstr(ev, "op=lock"));
	free(ev);
	/* once: the next attempt reaches the mem file, whose real state decides */
	assert_ok(vhdx_io_lock(io, VHDX_LOCK_EXCLUSIVE));
	assert_fails(vhdx_io_lock(other, VHDX_LOCK_SHARED), -EBUSY, "in use for writing");
	/* another errno is an ordinary injected failure */
	assert_int_equal(vhdx_faults_add(f, "op=lock err=EIO"), 1);
	assert_fails(vhdx_io_lock(io, VHDX_LOCK_SHARED), -EIO, "injected EIO (fault rule 3)");
	/* dropping a lock is never refused */
	assert_ok(vhdx_io_lock(io, VHDX_LOCK_NONE));
	assert_ok(vhdx_io_lock(other, VHDX_LOCK_EXCLUSIVE));
	vhdx_io_close(io);
	vhdx_io_close(other);
	vhdx_faults_free(f);
}

static char tmp_path[64];

static int make_tmp(void **state)
{
	int fd;

	(void)state;
	snprintf(tmp_path, sizeof tmp_path, "/tmp/vhdx-lock-XXXXXX");
	fd = mkstemp(tmp_path);
	if (fd < 0)
		return -1;
	if (write(fd, "data", 4) != 4) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int rm_tmp(void **state)
{
	(void)state;
	unlink(tmp_path);
	return 0;
}

/* OFD locks: two opens inside one process conflict; each open's threads share its lock. */
static void test_file_two_opens(void **state)
{
	struct vhdx_io *w, *r, *r2;
	struct vhdx_lock_holder h;

	(void)state;
	assert_ok(vhdx_io_open_locked(tmp_path, true, VHDX_LOCK_EXCLUSIVE, NULL, &w));
	assert_fails(vhdx_io_open_locked(tmp_path, false, VHDX_LOCK_SHARED, NULL, &r), -EBUSY,
		     ": in use for writing by another open in this process (pid ");
	assert_errmsg_contains("; cannot open it for reading");
	assert_fails(vhdx_io_open_locked(tmp_path, true, VHDX_LOCK_EXCLUSIVE, NULL, &r), -EBUSY,
		     "in use for writing");
	/* force-share: no lock taken, none respected; it can tell what others hold */
	assert_ok(vhdx_io_open_locked(tmp_path, false, VHDX_LOCK_NONE, NULL, &r));
	assert_ok(vhdx_io_lock_test(r, &h));
	assert_int_equal(h.mode, VHDX_LOCK_EXCLUSIVE);
	vhdx_io_close(w); /* the lock goes with the open */
	assert_ok(vhdx_io_lock_test(r, &h));
	assert_int_equal(h.mode, VHDX_LOCK_NONE);
	assert_ok(vhdx_io_open_locked(tmp_path, false, VHDX_LOCK_SHARED, NULL, &r2));
	assert_ok(vhdx_io_lock_test(r, &h));
	assert_int_equal(h.mode, VHDX_LOCK_SHARED);
	assert_fails(vhdx_io_open_locked(tmp_path, true, VHDX_LOCK_EXCLUSIVE, NULL, &w), -EBUSY,
		     "in use for reading by another open in this process");
	vhdx_io_close(r2);
	vhdx_io_close(r);
}

/* A lock set: the operation's own opens of a file share its lock; other opens still conflict. */
static void test_lockset(void **state)
{
	struct vhdx_lockset s, inner;
	struct vhdx_io *a, *b;

	(void)state;
	vhdx_lockset_begin(&s);
	assert_ok(vhdx_lockset_add(&s, tmp_path, VHDX_LOCK_EXCLUSIVE, NULL));
	assert_true(vhdx_lockset_covers(tmp_path, VHDX_LOCK_EXCLUSIVE));
	assert_ok(vhdx_io_open_locked(tmp_path, true, VHDX_LOCK_EXCLUSIVE, NULL, &a));
	assert_ok(vhdx_io_open_locked(tmp_path, false, VHDX_LOCK_SHARED, NULL, &b));
	/* a nested set covering the same file only records it */
	vhdx_lockset_begin(&inner);
	assert_ok(vhdx_lockset_add(&inner, tmp_path, VHDX_LOCK_EXCLUSIVE, NULL));
	vhdx_lockset_end(&inner);
	assert_true(vhdx_lockset_covers(tmp_path, VHDX_LOCK_EXCLUSIVE));
	vhdx_io_close(a);
	vhdx_io_close(b);
	vhdx_lockset_end(&s);
	assert_false(vhdx_lockset_covers(tmp_path, VHDX_LOCK_SHARED));
	/* after the set: its lock is gone, and opens conflict again */
	assert_ok(vhdx_io_open_locked(tmp_path, true, VHDX_LOCK_EXCLUSIVE, NULL, &a));
	vhdx_lockset_begin(&s);
	assert_fails(vhdx_lockset_add(&s, tmp_path, VHDX_LOCK_SHARED, NULL), -EBUSY, "in use for writing");
	vhdx_lockset_end(&s);
	vhdx_io_close(a);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_mem_conflicts),
	  cmocka_unit_test(test_fault_lock),
	  cmocka_unit_test_setup_teardown(test_file_two_opens, make_tmp, rm_tmp),
	  cmocka_unit_test_setup_teardown(test_lockset, make_tmp, rm_tmp))
