/*
 * unit_files.c - files on disk for the unit tests (see unit_files.h).
 */
#include "config.h"

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "lib/unit_files.h"
#include "libvhdx.h"

#define MiB (1024ull * 1024)

const struct vhdx_gen_block unit_base_blocks[3] = {
	{ .blk = 0, .state = VHDX_BAT_FULLY_PRESENT },
	{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT },
	{ .blk = 3, .state = VHDX_BAT_FULLY_PRESENT },
};

void unit_chain_make(struct unit_chain *c, const char *what, uint32_t seed)
{
	static const struct vhdx_gen_run some[] = { { 8, 24 }, { 1000, 48 } };
	static const struct vhdx_gen_block child_blocks[] = {
		{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 2, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = some, .n_runs = 2 },
		{ .blk = 3, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = some, .n_runs = 2 },
		{ .blk = 0, .state = VHDX_BAT_ZERO },
	};
	struct vhdx_gen_opts bo = { .type = VHDX_GEN_DYNAMIC, .virtual_size = 4 * MiB, .seed = seed,
				    .blocks = unit_base_blocks, .n_blocks = VHDX_ARRAY_LEN(unit_base_blocks) };
	struct vhdx_gen_opts co = { .type = VHDX_GEN_DIFFERENCING, .virtual_size = 4 * MiB, .seed = seed + 1,
				    .parent_path = "base.vhdx",
				    .blocks = child_blocks, .n_blocks = VHDX_ARRAY_LEN(child_blocks) };

	memset(c, 0, sizeof *c);
	snprintf(c->dir, sizeof c->dir, "/tmp/libvhdx-%s-XXXXXX", what);
	assert_non_null(mkdtemp(c->dir));
	snprintf(c->base_path, sizeof c->base_path, "%s/base.vhdx", c->dir);
	snprintf(c->child_path, sizeof c->child_path, "%s/child.vhdx", c->dir);
	assert_ok(vhdx_gen_build(&bo, &c->base));
	/* the child links to the base's current DataWriteGuid */
	memcpy(co.parent_linkage, c->base->headers[1].data_write_guid, 16);
	assert_ok(vhdx_gen_build(&co, &c->child));
	assert_ok(vhdx_gen_write_file(c->base, c->base_path));
	assert_ok(vhdx_gen_write_file(c->child, c->child_path));
}

void unit_chain_free(struct unit_chain *c)
{
	DIR *d = opendir(c->dir);
	struct dirent *e;
	char p[sizeof c->dir + 1 + sizeof e->d_name];

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof p, "%s/%s", c->dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(c->dir);
	vhdx_gen_free(c->base);
	vhdx_gen_free(c->child);
}

uint8_t *unit_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	if (!f)
		fail_msg("%s: cannot open", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	b = malloc((size_t)n);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

void unit_spill(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

uint8_t *unit_read_disk(const char *path, uint64_t *size)
{
	struct vhdx_image *img;
	uint8_t *buf;
	ssize_t n;
	struct vhdx_info info = { .struct_size = sizeof info };

	if (vhdx_open(path, NULL, &img) < 0)
		fail_msg("%s: cannot open: %s", path, vhdx_errmsg());
	assert_ok(vhdx_get_info(img, &info));
	*size = info.virtual_size;
	buf = malloc(*size);
	assert_non_null(buf);
	n = vhdx_pread(img, buf, *size, 0);
	if (n < 0 || (uint64_t)n != *size)
		fail_msg("%s: read %zd of %llu bytes: %s", path, n, (unsigned long long)*size, vhdx_errmsg());
	assert_ok(vhdx_close(img));
	return buf;
}

uint8_t *unit_chain_expected(const struct vhdx_gen_image *leaf, const struct vhdx_gen_image *parent)
{
	const struct vhdx_gen_image *layers[2] = { leaf, parent };
	uint8_t *want = malloc(leaf->virtual_size);

	assert_non_null(want);
	vhdx_gen_chain_expected(layers, 2, 0, leaf->virtual_size, want);
	return want;
}

void unit_assert_disk_reads(const char *path, const uint8_t *want, uint64_t size)
{
	uint64_t got_size;
	uint8_t *got = unit_read_disk(path, &got_size);

	assert_int_equal(got_size, size);
	assert_memory_equal(got, want, size);
	free(got);
}

void unit_assert_image_reads_chain(struct vhdx_image *img, const struct vhdx_gen_image *const *layers, size_t n,
				   uint64_t size)
{
	uint8_t *got = malloc(size), *want = malloc(size);

	assert_non_null(got);
	assert_non_null(want);
	assert_int_equal(vhdx_pread(img, got, size, 0), (ssize_t)size);
	vhdx_gen_chain_expected(layers, n, 0, size, want);
	assert_memory_equal(got, want, size);
	free(got);
	free(want);
}

void unit_current_header(const char *path, struct vhdx_header *h)
{
	struct vhdx_header slot[2];
	size_t len;
	uint8_t *b = unit_slurp(path, &len);
	bool ok0, ok1;

	ok0 = vhdx_header_decode(b + VHDX_HEADER1_OFF, VHDX_HEADER_SIZE, &slot[0]) == 0;
	ok1 = vhdx_header_decode(b + VHDX_HEADER2_OFF, VHDX_HEADER_SIZE, &slot[1]) == 0;
	assert_true(ok0 || ok1);
	*h = slot[ok1 && (!ok0 || slot[1].seq > slot[0].seq)];
	free(b);
}
