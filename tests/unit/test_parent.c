/*
 * test_parent.c - parent resolution over real files made by the test-image
 * generator: a locator with only relative_path (libvhdi reads it wrong),
 * relative paths with ".\" and "..\", absolute paths followed only through a
 * path map and never out of its folder, a FIFO, a device or a non-image
 * reached through a locator (refused, the last not described), a locator
 * whose offsets lie outside the item, and the warning
 * for a parent of another virtual size.  Reads are compared with the
 * generator's own model of the chain.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/unit.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_locator.h"
#include <sys/stat.h>
#include "lib/unit_files.h"
#include "lib/vhdx_gen.h"

static char dir[256];

static int setup(void **st)
{
	snprintf(dir, sizeof dir, "/tmp/libvhdx-parent.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **st)
{
	return unit_tmpdir_remove(dir);
}

static struct vhdx_gen_image *make_base(uint64_t vsize)
{
	static const struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 2, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 3, .state = VHDX_BAT_ZERO },
	};
	struct vhdx_gen_opts o = { 0 };
	struct vhdx_gen_image *img;

	o.type = VHDX_GEN_DYNAMIC;
	o.virtual_size = vsize;
	o.seed = 11;
	o.blocks = blocks;
	o.n_blocks = 3;
	assert_int_equal(vhdx_gen_build(&o, &img), 0);
	return img;
}

/* A child over BASE whose locator holds exactly KEYS/VALUES (N pairs). */
static struct vhdx_gen_image *make_child(const struct vhdx_gen_image *base, const char *const *keys,
					 const char *const *values, size_t n)
{
	static const struct vhdx_gen_run runs[] = { { 8, 16 }, { 1000, 3 } };
	const struct vhdx_gen_block blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = runs, .n_runs = 2 },
		{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 2, .state = VHDX_BAT_ZERO },
	};
	struct vhdx_gen_opts o = { 0 };
	struct vhdx_gen_image *img;

	o.type = VHDX_GEN_DIFFERENCING;
	o.virtual_size = base->virtual_size;
	o.seed = 22;
	memcpy(o.parent_linkage, base->file + VHDX_HEADER2_OFF + 32, 16); /* header 2 (seq 2) DataWriteGuid */
	o.locator_keys = keys;
	o.locator_values = values;
	o.locator_n = n;
	o.blocks = blocks;
	o.n_blocks = 3;
	assert_int_equal(vhdx_gen_build(&o, &img), 0);
	return img;
}

static void linkage_text(const struct vhdx_gen_image *base, char out[40])
{
	char g[VHDX_GUID_STRLEN];

	vhdx_guid_format(base->file + VHDX_HEADER2_OFF + 32, g);
	snprintf(out, 40, "{%s}", g);
}

static void check_chain_reads(const char *child_path, const struct vhdx_gen_image *child,
			      const struct vhdx_gen_image *base, const struct vhdx_open_options *opts)
{
	const struct vhdx_gen_image *layers[2] = { child, base };
	struct vhdx_image *img;
	int ret = vhdx_open(child_path, opts, &img);

	if (ret < 0)
		fail_msg("open %s: %s", child_path, vhdx_errmsg());
	unit_assert_image_reads_chain(img, layers, 2, base->virtual_size);
	vhdx_close(img);
}

/* Makes the folder REL below the test's folder. */
static void mkdir_in(const char *rel)
{
	char p[512];

	snprintf(p, sizeof p, "%s/%s", dir, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

/* The locator of a child over a base: its linkage and one path entry, as make_child() takes them. */
struct locator {
	char linkage[40];
	const char *keys[2];
	const char *values[2];
};

/* LOC names BASE's linkage and KEY: PATH (PATH is not copied). */
static void locator_of(struct locator *loc, const struct vhdx_gen_image *base, const char *key, const char *path)
{
	linkage_text(base, loc->linkage);
	loc->keys[0] = "parent_linkage";
	loc->keys[1] = key;
	loc->values[0] = loc->linkage;
	loc->values[1] = path;
}

/* A child over BASE whose locator gives its linkage and KEY: PATH. */
static struct vhdx_gen_image *child_with_path(const struct vhdx_gen_image *base, const char *key, const char *path)
{
	struct locator loc;

	locator_of(&loc, base, key, path);
	return make_child(base, loc.keys, loc.values, 2);
}

/* Writes BASE to BASE_PATH and CHILD to CHILD_PATH, checks the chain reads right, frees both. */
static void check_written_chain(struct vhdx_gen_image *base, const char *base_path, struct vhdx_gen_image *child,
				const char *child_path)
{
	assert_int_equal(vhdx_gen_write_file(base, base_path), 0);
	assert_int_equal(vhdx_gen_write_file(child, child_path), 0);
	check_chain_reads(child_path, child, base, NULL);
	vhdx_gen_free(child);
	vhdx_gen_free(base);
}

static void test_only_relative_path(void **st)
{
	struct vhdx_gen_image *base = make_base(4u << 20), *child;
	char p[512], c[512];

	child = child_with_path(base, "relative_path", "sub\\base.vhdx");
	mkdir_in("sub");
	snprintf(p, sizeof p, "%s/sub/base.vhdx", dir);
	snprintf(c, sizeof c, "%s/child.avhdx", dir);
	check_written_chain(base, p, child, c);
}

static void test_dot_and_dotdot(void **st)
{
	struct vhdx_gen_image *base = make_base(4u << 20), *child;
	char p[512], c[512];

	child = child_with_path(base, "relative_path", ".\\..\\up.vhdx");
	snprintf(p, sizeof p, "%s/up.vhdx", dir);
	mkdir_in("down");
	snprintf(c, sizeof c, "%s/down/child.avhdx", dir);
	check_written_chain(base, p, child, c);
}

static void test_absolute_only_through_path_map(void **st)
{
	struct vhdx_gen_image *base = make_base(4u << 20), *child;
	char p[512], c[512], map[600];
	const char *maps[] = { map, NULL };
	struct vhdx_open_options o;
	struct vhdx_image *img;

	child = child_with_path(base, "absolute_win32_path", "C:\\Hyper-V\\Disks\\abs.vhdx");
	mkdir_in("mapped");
	snprintf(p, sizeof p, "%s/mapped/abs.vhdx", dir);
	snprintf(c, sizeof c, "%s/abs-child.avhdx", dir);
	assert_int_equal(vhdx_gen_write_file(base, p), 0);
	assert_int_equal(vhdx_gen_write_file(child, c), 0);
	/* without a map: not followed, and the message says why */
	assert_int_equal(vhdx_open(c, NULL, &img), -ENOENT);
	assert_non_null(strstr(vhdx_errmsg(), "C:\\Hyper-V\\Disks\\abs.vhdx (absolute path from the image: followed only through a path map)"));
	/* with one (case-insensitive prefix) */
	vhdx_open_options_init(&o);
	o.path_maps = maps;
	snprintf(map, sizeof map, "c:\\hyper-v\\disks\\=%s/mapped", dir);
	check_chain_reads(c, child, base, &o);
	vhdx_gen_free(child);
	vhdx_gen_free(base);
}

/* A mapped path that climbs out of its folder with ".." is not followed; one that stays inside is. */
static void test_path_map_is_a_fence(void **st)
{
	struct vhdx_gen_image *base = make_base(4u << 20), *out_child, *in_child;
	char p[512], c[512], c2[512], map[600];
	const char *maps[] = { map, NULL };
	struct vhdx_open_options o;
	struct vhdx_image *img;

	out_child = child_with_path(base, "absolute_win32_path", "C:\\..\\secret\\fence.vhdx");
	in_child = child_with_path(base, "absolute_win32_path", "C:\\x\\..\\in\\fence.vhdx");
	mkdir_in("fence");
	mkdir_in("fence/map");
	mkdir_in("fence/map/in");
	mkdir_in("fence/secret");
	/* the file the hostile path wants: right identity, outside the mapped folder */
	snprintf(p, sizeof p, "%s/fence/secret/fence.vhdx", dir);
	assert_int_equal(vhdx_gen_write_file(base, p), 0);
	snprintf(p, sizeof p, "%s/fence/map/in/fence.vhdx", dir);
	assert_int_equal(vhdx_gen_write_file(base, p), 0);
	snprintf(c, sizeof c, "%s/fence-out.avhdx", dir);
	snprintf(c2, sizeof c2, "%s/fence-in.avhdx", dir);
	assert_int_equal(vhdx_gen_write_file(out_child, c), 0);
	assert_int_equal(vhdx_gen_write_file(in_child, c2), 0);
	vhdx_open_options_init(&o);
	o.path_maps = maps;
	snprintf(map, sizeof map, "C:\\=%s/fence/map/", dir);
	assert_int_equal(vhdx_open(c, &o, &img), -ENOENT);
	assert_non_null(strstr(vhdx_errmsg(), "C:\\..\\secret\\fence.vhdx (climbs out of the folder its path map names: not followed)"));
	check_chain_reads(c2, in_child, base, &o);
	vhdx_gen_free(out_child);
	vhdx_gen_free(in_child);
	vhdx_gen_free(base);
}

/*
 * Writes to CHILD_PATH a child over BASE whose locator holds KEYS/VALUES (2
 * pairs): opening it must fail with -ENOENT and a message that contains WHY.
 */
static void expect_parent_missing(const struct vhdx_gen_image *base, const char *const *keys,
				  const char *const *values, const char *child_path, const char *why)
{
	struct vhdx_gen_image *child = make_child(base, keys, values, 2);
	struct vhdx_image *img;

	assert_int_equal(vhdx_gen_write_file(child, child_path), 0);
	vhdx_gen_free(child);
	assert_int_equal(vhdx_open(child_path, NULL, &img), -ENOENT);
	assert_non_null(strstr(vhdx_errmsg(), why));
}

/* Through a locator: a FIFO and a character device are refused at once (no hang), a non-image is not described. */
static void test_located_parent_kinds(void **st)
{
	struct vhdx_gen_image *base = make_base(4u << 20);
	char p[512], c[512], rel[600];
	struct locator loc;
	FILE *f;
	size_t climb = 0;

	for (const char *q = dir; *q; q++)
		climb += *q == '/';
	locator_of(&loc, base, "relative_path", rel);
	mkdir_in("kinds");
	snprintf(c, sizeof c, "%s/kinds/child.avhdx", dir);

	snprintf(p, sizeof p, "%s/kinds/pipe.vhdx", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	snprintf(rel, sizeof rel, "pipe.vhdx");
	expect_parent_missing(base, loc.keys, loc.values, c, "/kinds/pipe.vhdx (a FIFO: a parent found through a locator must be a regular file (name a device as the explicit parent))");

	/* "..\" up to the root, then dev\null */
	rel[0] = '\0';
	for (size_t i = 0; i < climb + 3; i++)
		strcat(rel, "..\\");
	strcat(rel, "dev\\null");
	expect_parent_missing(base, loc.keys, loc.values, c, "/dev/null (a character device: a parent found through a locator must be a regular file (name a device as the explicit parent))");

	snprintf(p, sizeof p, "%s/kinds/notes.vhdx", dir);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("not an image, and private\n", f);
	fclose(f);
	snprintf(rel, sizeof rel, "notes.vhdx");
	expect_parent_missing(base, loc.keys, loc.values, c, "/kinds/notes.vhdx (not a VHDX or VHD image)");
	assert_null(strstr(vhdx_errmsg(), "bytes"));
	vhdx_gen_free(base);
}

static void test_locator_offsets_outside(void **st)
{
	struct vhdx_gen_image *base = make_base(4u << 20), *child;
	char c[512];
	struct locator loc;
	struct vhdx_image *img;
	uint8_t *item;
	size_t item_len;

	locator_of(&loc, base, "relative_path", "base.vhdx");
	assert_int_equal(vhdx_locator_encode(loc.keys, loc.values, 2, &item, &item_len), 0);
	vhdx_put_le32(item + 20 + 12 + 4, (uint32_t)item_len + 100); /* entry 1's value past the item */
	{
		struct vhdx_gen_opts o = { 0 };
		o.type = VHDX_GEN_DIFFERENCING;
		o.virtual_size = 4u << 20;
		o.locator_raw = item;
		o.locator_raw_len = item_len;
		assert_int_equal(vhdx_gen_build(&o, &child), 0);
	}
	snprintf(c, sizeof c, "%s/bad-locator.avhdx", dir);
	assert_int_equal(vhdx_gen_write_file(child, c), 0);
	assert_int_equal(vhdx_open(c, NULL, &img), -EBADMSG);
	assert_non_null(strstr(vhdx_errmsg(), "parent locator: entry 1: value at offset"));
	assert_non_null(strstr(vhdx_errmsg(), "lies outside the"));
	free(item);
	vhdx_gen_free(child);
	vhdx_gen_free(base);
}

static void test_size_mismatch_warns(void **st)
{
	struct vhdx_gen_image *base = make_base(8u << 20), *child;
	char p[512], c[512];
	struct locator loc;
	struct vhdx_gen_opts o = { 0 };
	struct vhdx_image *img;

	locator_of(&loc, base, "relative_path", "big.vhdx");
	o.type = VHDX_GEN_DIFFERENCING;
	o.virtual_size = 4u << 20;
	memcpy(o.parent_linkage, base->file + VHDX_HEADER2_OFF + 32, 16);
	o.locator_keys = loc.keys;
	o.locator_values = loc.values;
	o.locator_n = 2;
	assert_int_equal(vhdx_gen_build(&o, &child), 0);
	snprintf(p, sizeof p, "%s/big.vhdx", dir);
	snprintf(c, sizeof c, "%s/small-child.avhdx", dir);
	assert_int_equal(vhdx_gen_write_file(base, p), 0);
	assert_int_equal(vhdx_gen_write_file(child, c), 0);
	assert_int_equal(vhdx_open(c, NULL, &img), 0);
	assert_non_null(strstr(vhdx_warnings(img), "is 4194304 bytes, its parent"));
	assert_non_null(strstr(vhdx_warnings(img), "is 8388608 bytes"));
	vhdx_close(img);
	vhdx_gen_free(child);
	vhdx_gen_free(base);
}

UNIT_MAIN(setup, teardown,
	  cmocka_unit_test(test_only_relative_path),
	  cmocka_unit_test(test_dot_and_dotdot),
	  cmocka_unit_test(test_absolute_only_through_path_map),
	  cmocka_unit_test(test_path_map_is_a_fence),
	  cmocka_unit_test(test_located_parent_kinds),
	  cmocka_unit_test(test_locator_offsets_outside),
	  cmocka_unit_test(test_size_mismatch_warns))
