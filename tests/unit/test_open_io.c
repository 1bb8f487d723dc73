/*
 * test_open_io.c - vhdx_open_io(), the public open over caller-supplied
 * I/O (libvhdx.h, io/callbacks.c, chain/parent_io.c), through the public
 * API only.  The "container" is a table of generated images in memory; a
 * 3-layer chain resolves through the open_parent callback by the locator's
 * relative_path; a source whose reads fail surfaces EIO with the message
 * the callback recorded; short reads, read-only sources, identity checks,
 * VHDX_IO_SERIALIZE and the close-exactly-once contract.  Expected bytes
 * come from the generator's model of the chain.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "lib/unit.h"
#include "lib/unit_files.h"
#include "lib/vhdx_gen.h"

#define MiB (1024ull * 1024)

/* One member of the container. */
struct member {
	const char *name;
	struct vhdx_gen_image *img;
	int closes;          /* times its close callback ran */
	uint64_t fail_from;  /* reads at or past this offset fail with EIO (UINT64_MAX: never) */
	size_t max_chunk;    /* pread returns at most this many bytes (0: all) */
	atomic_int inflight, max_inflight;
	int parent_calls;
	unsigned last_depth;
	char last_entries[512];
	uint8_t last_linkage[16];
};

struct container {
	struct member m[3];
	size_t n;
	int no_parent; /* open_parent answers ENOENT */
};

static struct container box;

static ssize_t m_pread(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct member *m = opaque;
	int now = atomic_fetch_add(&m->inflight, 1) + 1;
	int seen = atomic_load(&m->max_inflight);
	ssize_t n;

	while (now > seen && !atomic_compare_exchange_weak(&m->max_inflight, &seen, now))
		;
	if (off + len > m->fail_from) {
		atomic_fetch_sub(&m->inflight, 1);
		return vhdx_set_errmsg(EIO, "segment %llu of the evidence file: CRC error",
				       (unsigned long long)(off / 65536));
	}
	if (off >= m->img->file_len) {
		n = 0;
	} else {
		n = (ssize_t)(len < m->img->file_len - off ? len : m->img->file_len - off);
		if (m->max_chunk && (size_t)n > m->max_chunk)
			n = (ssize_t)m->max_chunk;
		memcpy(buf, m->img->file + off, (size_t)n);
	}
	atomic_fetch_sub(&m->inflight, 1);
	return n;
}

static int m_get_size(void *opaque, uint64_t *size)
{
	struct member *m = opaque;

	*size = m->img->file_len;
	return 0;
}

static void m_close(void *opaque)
{
	struct member *m = opaque;

	m->closes++;
}

static int m_open_parent(void *opaque, const struct vhdx_parent_request *req, const struct vhdx_io_callbacks **cb,
			 void **parent_opaque);

static const struct vhdx_io_callbacks member_cb = {
	.struct_size = sizeof(struct vhdx_io_callbacks),
	.pread = m_pread,
	.get_size = m_get_size,
	.close = m_close,
	.open_parent = m_open_parent,
};

/* Finds the member named by the relative_path entry (the base name after the last '\'). */
static int m_open_parent(void *opaque, const struct vhdx_parent_request *req, const struct vhdx_io_callbacks **cb,
			 void **parent_opaque)
{
	struct member *child = opaque;
	static struct vhdx_io_callbacks named[3];

	child->parent_calls++;
	child->last_depth = req->depth;
	memcpy(child->last_linkage, req->linkage, 16);
	child->last_entries[0] = '\0';
	for (size_t i = 0; i < req->n_entries; i++) {
		size_t l = strlen(child->last_entries);
		snprintf(child->last_entries + l, sizeof child->last_entries - l, "%s=%s;", req->entries[i].key,
			 req->entries[i].value);
	}
	if (box.no_parent)
		return vhdx_set_errmsg(ENOENT, "no member of the archive is called that");
	for (size_t i = 0; i < req->n_entries; i++) {
		const char *v = req->entries[i].value, *b = strrchr(v, '\\');
		if (strcmp(req->entries[i].key, "relative_path"))
			continue;
		b = b ? b + 1 : v;
		for (size_t k = 0; k < box.n; k++) {
			if (!strcmp(box.m[k].name, b)) {
				named[k] = member_cb;
				named[k].name = box.m[k].name;
				*cb = &named[k];
				*parent_opaque = &box.m[k];
				return 0;
			}
		}
	}
	return vhdx_set_errmsg(ENOENT, "no relative_path entry names a member");
}

/* box: [0] leaf.avhdx -> [1] mid.avhdx -> [2] base.vhdx, 4 MiB, 1 MiB blocks. */
static void box_build(void)
{
	static const struct vhdx_gen_run runs[] = { { 8, 16 }, { 1000, 3 } };
	static const struct vhdx_gen_block mid_blocks[] = {
		{ .blk = 0, .state = VHDX_BAT_PARTIALLY_PRESENT, .runs = runs, .n_runs = 2 },
		{ .blk = 2, .state = VHDX_BAT_FULLY_PRESENT },
	};
	static const struct vhdx_gen_block leaf_blocks[] = {
		{ .blk = 1, .state = VHDX_BAT_FULLY_PRESENT },
		{ .blk = 3, .state = VHDX_BAT_ZERO },
	};
	static const char *const names[3] = { "leaf.avhdx", "mid.avhdx", "base.vhdx" };
	static const char *const rel[3] = { ".\\mid.avhdx", ".\\base.vhdx", NULL };
	struct vhdx_gen_opts o;

	memset(&box, 0, sizeof box);
	box.n = 3;
	for (int i = 2; i >= 0; i--) {
		memset(&o, 0, sizeof o);
		o.virtual_size = 4 * MiB;
		o.seed = 100 + (uint32_t)i;
		if (i == 2) {
			o.type = VHDX_GEN_DYNAMIC;
			o.blocks = unit_base_blocks;
			o.n_blocks = VHDX_ARRAY_LEN(unit_base_blocks);
		} else {
			o.type = VHDX_GEN_DIFFERENCING;
			o.parent_path = rel[i];
			/* the parent's DataWriteGuid, in header 2 (the current one) */
			memcpy(o.parent_linkage, box.m[i + 1].img->file + VHDX_HEADER2_OFF + 32, 16);
			o.blocks = i ? mid_blocks : leaf_blocks;
			o.n_blocks = 2;
		}
		assert_int_equal(vhdx_gen_build(&o, &box.m[i].img), 0);
		box.m[i].name = names[i];
		box.m[i].fail_from = UINT64_MAX;
	}
}

static void box_free(void)
{
	for (size_t i = 0; i < box.n; i++)
		vhdx_gen_free(box.m[i].img);
	memset(&box, 0, sizeof box);
}

static int open_member(size_t i, unsigned flags, unsigned cb_flags, struct vhdx_image **img)
{
	struct vhdx_io_callbacks cb = member_cb;
	struct vhdx_open_options o;

	cb.name = box.m[i].name;
	cb.flags = cb_flags;
	vhdx_open_options_init(&o);
	o.flags = flags;
	vhdx_err_clear();
	return vhdx_open_io(&cb, &box.m[i], &o, img);
}

static void check_whole_disk(struct vhdx_image *img, size_t from)
{
	const struct vhdx_gen_image *layers[3];

	for (size_t i = from; i < box.n; i++)
		layers[i - from] = box.m[i].img;
	unit_assert_image_reads_chain(img, layers, box.n - from, box.m[from].img->virtual_size);
}

/* The chain leaf -> mid -> base resolves inside the container through open_parent. */
static void test_chain_through_parent_callback(void **st)
{
	struct vhdx_image *img;
	struct vhdx_info info = { .struct_size = sizeof info };

	box_build();
	if (open_member(0, 0, 0, &img) < 0)
		fail_msg("vhdx_open_io: %s", vhdx_errmsg());
	assert_int_equal(vhdx_get_info(img, &info), 0);
	assert_int_equal(info.layers, 3);
	assert_int_equal(info.type, VHDX_TYPE_DIFFERENCING);
	assert_string_equal(vhdx_layer_path(img, 0), "leaf.avhdx");
	assert_string_equal(vhdx_layer_path(img, 1), "mid.avhdx");
	assert_string_equal(vhdx_layer_path(img, 2), "base.vhdx");
	/* each child was asked once, with its depth and its locator entries as stored */
	assert_int_equal(box.m[0].parent_calls, 1);
	assert_int_equal(box.m[1].parent_calls, 1);
	assert_int_equal(box.m[2].parent_calls, 0);
	assert_int_equal(box.m[0].last_depth, 1);
	assert_int_equal(box.m[1].last_depth, 2);
	assert_string_equal(box.m[0].last_entries, "relative_path=.\\mid.avhdx;");
	assert_string_equal(box.m[1].last_entries, "relative_path=.\\base.vhdx;");
	assert_memory_equal(box.m[0].last_linkage, box.m[1].img->file + VHDX_HEADER2_OFF + 32, 16);
	assert_int_equal(vhdx_layer_fd(img, 0), -1);
	check_whole_disk(img, 0);
	/* no source is closed before the image, each exactly once with it */
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(box.m[i].closes, 0);
	assert_int_equal(vhdx_close(img), 0);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(box.m[i].closes, 1);
	box_free();
}

/* Sources that return a few bytes per call read the same. */
static void test_short_reads(void **st)
{
	struct vhdx_image *img;

	box_build();
	for (size_t i = 0; i < 3; i++)
		box.m[i].max_chunk = 1000;
	if (open_member(0, 0, 0, &img) < 0)
		fail_msg("vhdx_open_io: %s", vhdx_errmsg());
	check_whole_disk(img, 0);
	vhdx_close(img);
	box_free();
}

/* A read that fails in the source surfaces as EIO carrying the source's own message. */
static void test_failing_reads_surface_eio(void **st)
{
	struct vhdx_image *img;
	uint8_t buf[4096];

	box_build();
	/* payload of the base (blocks 0 and 1 hold data) fails; structures at the front do not */
	box.m[2].fail_from = box.m[2].img->block_foff[0];
	if (open_member(0, 0, 0, &img) < 0)
		fail_msg("vhdx_open_io: %s", vhdx_errmsg());
	vhdx_err_clear();
	/* block 0 of the leaf falls through mid's unset sectors to the base */
	assert_int_equal(vhdx_pread(img, buf, sizeof buf, 0), -EIO);
	assert_errmsg_contains("base.vhdx: reading payload at offset 0x");
	assert_errmsg_contains(": segment ");
	assert_errmsg_contains(" of the evidence file: CRC error");
	vhdx_close(img);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(box.m[i].closes, 1);

	/* failing while opening: EIO with the message, and the sources already given are closed */
	box.m[2].fail_from = 0;
	box.m[0].closes = box.m[1].closes = box.m[2].closes = 0;
	assert_int_equal(open_member(0, 0, 0, &img), -EIO);
	assert_errmsg_contains("base.vhdx: reading ");
	assert_errmsg_contains("segment 0 of the evidence file: CRC error");
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(box.m[i].closes, 1);
	box_free();
}

/* Without pwrite: a read-only open works, a writable one is refused (and the source closed). */
static void test_no_pwrite_is_read_only(void **st)
{
	struct vhdx_image *img;
	uint8_t buf[512] = { 1 };

	box_build();
	assert_int_equal(open_member(2, VHDX_OPEN_RDWR, 0, &img), -EROFS);
	assert_errmsg_contains("base.vhdx: cannot open writable: the source has no pwrite callback");
	assert_int_equal(box.m[2].closes, 1);
	assert_int_equal(open_member(2, 0, 0, &img), 0);
	assert_int_equal(vhdx_pwrite(img, buf, sizeof buf, 0), -EROFS);
	vhdx_close(img);
	assert_int_equal(box.m[2].closes, 2);
	box_free();
}

/* The callback has no parent: ENOENT naming the child, the identity and the callback's reason. */
static void test_parent_not_given(void **st)
{
	struct vhdx_image *img;

	box_build();
	box.no_parent = 1;
	assert_int_equal(open_member(0, 0, 0, &img), -ENOENT);
	assert_errmsg_contains("leaf.avhdx: parent (identity {");
	assert_errmsg_contains("}) not given by the open_parent callback: no member of the archive is called that");
	assert_int_equal(box.m[0].closes, 1);
	/* the leaf alone opens with VHDX_OPEN_NO_PARENT */
	assert_int_equal(open_member(0, VHDX_OPEN_NO_PARENT, 0, &img), 0);
	vhdx_close(img);
	box_free();
}

/* A parent of the wrong identity is refused, or taken with VHDX_OPEN_IGNORE_ID_MISMATCH. */
static void test_parent_identity_checked(void **st)
{
	struct vhdx_image *img;
	const struct vhdx_gen_image *layers[2];

	box_build();
	/* the leaf's relative_path now names the base, which is not what the leaf links to */
	box.m[1].name = "elsewhere.avhdx";
	box.m[2].name = "mid.avhdx";
	assert_int_equal(open_member(0, 0, 0, &img), -EBADMSG);
	assert_errmsg_contains("leaf.avhdx: parent mid.avhdx from the open_parent callback has the wrong identity (the child links to {");
	assert_int_equal(box.m[0].closes, 1);
	assert_int_equal(box.m[2].closes, 1);
	if (open_member(0, VHDX_OPEN_IGNORE_ID_MISMATCH, 0, &img) < 0)
		fail_msg("vhdx_open_io: %s", vhdx_errmsg());
	layers[0] = box.m[0].img;
	layers[1] = box.m[2].img;
	unit_assert_image_reads_chain(img, layers, 2, box.m[0].img->virtual_size);
	vhdx_close(img);
	box_free();
}

static void *reader(void *arg)
{
	struct vhdx_image *img = arg;
	uint8_t buf[8192];

	for (int i = 0; i < 200; i++)
		if (vhdx_pread(img, buf, sizeof buf, (uint64_t)(i * 7919 % 500) * 8192) != (ssize_t)sizeof buf)
			return (void *)1;
	return NULL;
}

/* VHDX_IO_SERIALIZE: four threads reading, never two callbacks of one source at once. */
static void test_serialize_flag(void **st)
{
	struct vhdx_image *img;
	pthread_t t[4];
	void *r;

	box_build();
	assert_int_equal(open_member(2, 0, VHDX_IO_SERIALIZE, &img), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader, img), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_null(r);
	}
	assert_int_equal(atomic_load(&box.m[2].max_inflight), 1);
	check_whole_disk(img, 2);
	vhdx_close(img);
	box_free();
}

/* Bad tables: no pread, or a size too small to hold one; the source is still closed. */
static void test_bad_tables(void **st)
{
	struct vhdx_io_callbacks cb = member_cb;
	struct vhdx_image *img;

	box_build();
	cb.pread = NULL;
	assert_int_equal(vhdx_open_io(&cb, &box.m[2], NULL, &img), -EINVAL);
	assert_errmsg_contains("pread and get_size callbacks are required");
	assert_int_equal(box.m[2].closes, 1);
	cb = member_cb;
	cb.struct_size = sizeof(size_t);
	assert_int_equal(vhdx_open_io(&cb, &box.m[2], NULL, &img), -EINVAL);
	assert_errmsg_contains("struct_size 8 is too small");
	box_free();
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_chain_through_parent_callback),
	  cmocka_unit_test(test_short_reads),
	  cmocka_unit_test(test_failing_reads_surface_eio),
	  cmocka_unit_test(test_no_pwrite_is_read_only),
	  cmocka_unit_test(test_parent_not_given),
	  cmocka_unit_test(test_parent_identity_checked),
	  cmocka_unit_test(test_serialize_flag),
	  cmocka_unit_test(test_bad_tables))
