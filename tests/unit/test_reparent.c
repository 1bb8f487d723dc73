/*
 * test_reparent.c - vhdx_reparent() (libvhdx/maint/reparent.c and format/vhdx_reparent.c, the VHDX half)
 * on a two-layer chain written from the generator (tests/lib/unit_files.h).
 *
 * A reparent rewrites only the parent locator (through the log) and the
 * headers: the test compares the locator's keys, both GUIDs of the header,
 * every other byte of the child, and what the chain reads through the new
 * parent with the generator's oracle.  Refusals (identity mismatch, the
 * child its own parent, a cycle, a disk without parent) leave the child's
 * bytes as they were, with exact messages.
 */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "lib/unit_files.h"
#include "codec/guid.h"
#include "codec/vhdx_locator.h"
#include "format/vhdx_format.h"
#include "libvhdx.h"

#define MiB (1024ull * 1024)

/* The value of KEY in the parent locator of the VHDX file at PATH, newly allocated ("" when absent). */
static char *locator_value(const char *path, const char *key)
{
	struct vhdx_layer *l;
	struct vhdx_state *s;
	struct vhdx_locator_kv *kv;
	size_t n;
	char *v = NULL;

	assert_ok(vhdx_layer_open_faults(path, 0, NULL, &l));
	s = vhdx_state_of(l);
	assert_ok(vhdx_locator_list(s->locator_raw, s->locator_len, &kv, &n));
	for (size_t i = 0; i < n && !v; i++)
		if (!strcmp(kv[i].key, key))
			v = strdup(kv[i].value);
	vhdx_locator_kv_free(kv, n);
	vhdx_layer_close(l);
	return v ? v : strdup("");
}

/* "{guid}" as the locator writes a linkage. */
static void linkage_text(const uint8_t guid[16], char *out, size_t len)
{
	char g[VHDX_GUID_STRLEN];

	vhdx_guid_format(guid, g);
	snprintf(out, len, "{%s}", g);
}

/* Fails unless the file at PATH holds OLD[0..LEN) again. */
static void assert_unchanged(const char *path, const uint8_t *old, size_t len)
{
	size_t now_len;
	uint8_t *now = unit_slurp(path, &now_len);

	assert_int_equal(now_len, len);
	assert_memory_equal(now, old, len);
	free(now);
}

/* The parent moved (same identity): only the paths change, and only the locator, log and headers are written. */
static void test_reparent_moved_parent(void **state)
{
	struct unit_chain c;
	struct vhdx_header before, after;
	char base2[128], link[64], *v;
	uint8_t *child0, *child1, *want;
	size_t len0, len1;

	unit_chain_make(&c, "test-reparent", 71);
	snprintf(base2, sizeof base2, "%s/base2.vhdx", c.dir);
	unit_spill(base2, c.base->file, c.base->file_len);
	child0 = unit_slurp(c.child_path, &len0);
	unit_current_header(c.child_path, &before);

	assert_ok(vhdx_reparent(c.child_path, base2, 0));
	v = locator_value(c.child_path, "relative_path");
	assert_string_equal(v, ".\\base2.vhdx");
	free(v);
	/* the absolute path with Windows separators */
	for (char *q = base2; *q; q++)
		*q = *q == '/' ? '\\' : *q;
	v = locator_value(c.child_path, "absolute_win32_path");
	assert_string_equal(v, base2);
	free(v);
	/* the link stays the base's DataWriteGuid */
	v = locator_value(c.child_path, "parent_linkage");
	linkage_text(c.base->headers[1].data_write_guid, link, sizeof link);
	assert_string_equal(v, link);
	free(v);
	unit_current_header(c.child_path, &after);
	assert_memory_equal(after.data_write_guid, before.data_write_guid, 16);
	assert_memory_not_equal(after.file_write_guid, before.file_write_guid, 16);
	/* region tables and everything from the BAT on are untouched */
	child1 = unit_slurp(c.child_path, &len1);
	assert_int_equal(len1, len0);
	assert_memory_equal(child1 + VHDX_REGION1_OFF, child0 + VHDX_REGION1_OFF, 2 * VHDX_REGION_SIZE);
	assert_memory_equal(child1 + c.child->bat_offset, child0 + c.child->bat_offset, len0 - c.child->bat_offset);
	free(child1);

	/* the old parent gone, the chain reads the same through the new one */
	assert_int_equal(unlink(c.base_path), 0);
	want = unit_chain_expected(c.child, c.base);
	unit_assert_disk_reads(c.child_path, want, c.child->virtual_size);
	free(want);
	free(child0);
	unit_chain_free(&c);
}

/* Another identity: refused without RELINK (the child unchanged), linked to it with RELINK. */
static void test_reparent_other_identity(void **state)
{
	struct vhdx_gen_opts oo = { .type = VHDX_GEN_FIXED, .virtual_size = 4 * MiB, .seed = 99 };
	struct vhdx_gen_image *other;
	struct unit_chain c;
	struct vhdx_header before, after;
	char other_path[128], link[64], msg[512], want_id[VHDX_GUID_STRLEN], got_id[VHDX_GUID_STRLEN], *v;
	uint8_t *child0, *want;
	size_t len0;

	unit_chain_make(&c, "test-reparent", 81);
	assert_ok(vhdx_gen_build(&oo, &other));
	snprintf(other_path, sizeof other_path, "%s/other.vhdx", c.dir);
	assert_ok(vhdx_gen_write_file(other, other_path));
	child0 = unit_slurp(c.child_path, &len0);
	unit_current_header(c.child_path, &before);

	assert_fails(vhdx_reparent(c.child_path, other_path, 0), -EBADMSG, "links to a parent with identity");
	vhdx_guid_format(c.base->headers[1].data_write_guid, want_id);
	vhdx_guid_format(other->headers[1].data_write_guid, got_id);
	snprintf(msg, sizeof msg,
		 "%s links to a parent with identity {%s}, %s is {%s} (use ignore-id-mismatch to link to it anyway)",
		 c.child_path, want_id, other_path, got_id);
	assert_string_equal(vhdx_errmsg(), msg);
	assert_unchanged(c.child_path, child0, len0);

	assert_ok(vhdx_reparent(c.child_path, other_path, VHDX_REPARENT_RELINK));
	v = locator_value(c.child_path, "parent_linkage");
	linkage_text(other->headers[1].data_write_guid, link, sizeof link);
	assert_string_equal(v, link);
	free(v);
	unit_current_header(c.child_path, &after);
	assert_memory_equal(after.data_write_guid, before.data_write_guid, 16);
	/* the child's own blocks over the other parent's data */
	want = unit_chain_expected(c.child, other);
	unit_assert_disk_reads(c.child_path, want, c.child->virtual_size);
	free(want);
	free(child0);
	vhdx_gen_free(other);
	unit_chain_free(&c);
}

/* The child its own parent, a cycle through a grandchild, a disk without parent: refused, nothing written. */
static void test_reparent_refusals(void **state)
{
	struct vhdx_gen_opts go = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 4 * MiB, .seed = 93,
				    .parent_path = "child.vhdx" };
	struct vhdx_gen_image *grand;
	struct unit_chain c;
	char grand_path[128], msg[768];
	uint8_t *child0, *base0;
	size_t clen, blen;

	unit_chain_make(&c, "test-reparent", 91);
	memcpy(go.parent_linkage, c.child->headers[1].data_write_guid, 16);
	assert_ok(vhdx_gen_build(&go, &grand));
	snprintf(grand_path, sizeof grand_path, "%s/grandchild.vhdx", c.dir);
	assert_ok(vhdx_gen_write_file(grand, grand_path));
	child0 = unit_slurp(c.child_path, &clen);
	base0 = unit_slurp(c.base_path, &blen);

	assert_fails(vhdx_reparent(c.child_path, c.child_path, VHDX_REPARENT_RELINK), -ELOOP, "");
	snprintf(msg, sizeof msg, "%s cannot be its own parent: nothing was changed", c.child_path);
	assert_string_equal(vhdx_errmsg(), msg);
	assert_fails(vhdx_reparent(c.child_path, grand_path, VHDX_REPARENT_RELINK), -ELOOP, "");
	snprintf(msg, sizeof msg,
		 "reparenting %s to %s would make a cycle: %s is layer 1 of the chain of %s; nothing was changed",
		 c.child_path, grand_path, c.child_path, grand_path);
	assert_string_equal(vhdx_errmsg(), msg);
	assert_fails(vhdx_reparent(c.base_path, c.child_path, VHDX_REPARENT_RELINK), -EINVAL, "");
	snprintf(msg, sizeof msg, "%s is not a differencing disk: it has no parent to change", c.base_path);
	assert_string_equal(vhdx_errmsg(), msg);
	assert_fails(vhdx_reparent(NULL, c.base_path, 0), -EINVAL, "vhdx_reparent: child and new_parent must not be NULL");
	assert_unchanged(c.child_path, child0, clen);
	assert_unchanged(c.base_path, base0, blen);
	free(child0);
	free(base0);
	vhdx_gen_free(grand);
	unit_chain_free(&c);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_reparent_moved_parent),
	  cmocka_unit_test(test_reparent_other_identity),
	  cmocka_unit_test(test_reparent_refusals))
