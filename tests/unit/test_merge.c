/*
 * test_merge.c - vhdx_merge() (libvhdx/maint/merge.c, with merge_scope.c) on a
 * two-layer chain written from the generator (tests/lib/unit_files.h): a
 * dynamic base and a differencing child with a full block, partial blocks
 * over the base's data and over nothing, and a ZERO block over data.
 *
 * After the merge the base ALONE must read byte for byte what the chain
 * read before (and what the generator's chain oracle says), carry a new
 * DataWriteGuid, and the merge record must be gone; refusals leave every
 * file as it was, with exact messages.
 */
#include "config.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/unit.h"
#include "lib/unit_files.h"
#include "libvhdx.h"

/* What merged_layer was told. */
struct merged_log {
	char path[192];
	int deleted;
	unsigned calls;
};

static void on_merged(const char *path, int deleted, void *arg)
{
	struct merged_log *m = arg;

	snprintf(m->path, sizeof m->path, "%s", path);
	m->deleted = deleted;
	m->calls++;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* Merges with FLAGS and checks the base alone against the chain read before. */
static void run_merge(unsigned flags)
{
	struct unit_chain c;
	struct vhdx_merge_options o;
	struct merged_log m = { .calls = 0 };
	struct vhdx_header before, after;
	uint8_t *want, *merged;
	uint64_t size;
	char rec[128];

	unit_chain_make(&c, "test-merge", 51);
	want = unit_chain_expected(c.child, c.base);
	unit_assert_disk_reads(c.child_path, want, c.child->virtual_size);
	/* the chain is not trivially the base: the merge has something to do */
	merged = unit_read_disk(c.base_path, &size);
	assert_memory_not_equal(merged, want, size);
	free(merged);
	unit_current_header(c.base_path, &before);

	vhdx_merge_options_init(&o);
	o.flags = flags;
	o.merged_layer = on_merged;
	o.progress_arg = &m; /* merged_layer's argument too */
	assert_ok(vhdx_merge(c.child_path, &o));

	unit_assert_disk_reads(c.base_path, want, c.base->virtual_size);
	unit_current_header(c.base_path, &after);
	assert_memory_not_equal(after.data_write_guid, before.data_write_guid, 16);
	snprintf(rec, sizeof rec, "%s.merging", c.child_path);
	assert_false(exists(rec));
	assert_int_equal(m.calls, 1);
	assert_string_equal(m.path, c.child_path);
	assert_int_equal(m.deleted, (flags & VHDX_MERGE_DELETE) != 0);
	assert_int_equal(exists(c.child_path), !(flags & VHDX_MERGE_DELETE));
	free(want);
	unit_chain_free(&c);
}

static void test_merge_into_parent(void **state)
{
	run_merge(0);
}

static void test_merge_delete(void **state)
{
	run_merge(VHDX_MERGE_DELETE);
}

/* A disk without a parent has nothing to merge into: refused, no file changed. */
static void test_merge_refusals(void **state)
{
	struct unit_chain c;
	struct vhdx_merge_options o;
	uint8_t *base0, *child0, *b;
	size_t blen, clen, len;
	char msg[512];

	unit_chain_make(&c, "test-merge", 61);
	base0 = unit_slurp(c.base_path, &blen);
	child0 = unit_slurp(c.child_path, &clen);
	vhdx_merge_options_init(&o);

	assert_fails(vhdx_merge(c.base_path, &o), -EINVAL, "has no parent");
	snprintf(msg, sizeof msg, "%s has no parent: nothing to merge into", c.base_path);
	assert_string_equal(vhdx_errmsg(), msg);

	/* INTO must be an ancestor of the child */
	o.into = c.child_path;
	assert_fails(vhdx_merge(c.child_path, &o), -EINVAL, "is not an ancestor of");

	o.into = NULL;
	o.struct_size = 8;
	assert_fails(vhdx_merge(c.child_path, &o), -EINVAL, "vhdx_merge: options struct_size 8 is too small");

	b = unit_slurp(c.base_path, &len);
	assert_int_equal(len, blen);
	assert_memory_equal(b, base0, len);
	free(b);
	b = unit_slurp(c.child_path, &len);
	assert_int_equal(len, clen);
	assert_memory_equal(b, child0, len);
	free(b);
	free(base0);
	free(child0);
	unit_chain_free(&c);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_merge_into_parent),
	  cmocka_unit_test(test_merge_delete),
	  cmocka_unit_test(test_merge_refusals))
