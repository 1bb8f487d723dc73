/*
 * test_bitmap_pages.c - a read-only VHDX layer loads its sector bitmap
 * blocks a 4 KiB page at a time (format/vhdx.c get_bitmap): reads through
 * a differencing disk opened read-only must see exactly the sectors it
 * holds, whichever pages earlier reads loaded, where a block's bits span
 * two pages (32 MiB blocks: 8 KiB of bits each), and with several threads
 * loading pages at once.  The disks are made through the public API in a
 * temporary folder; the expected bytes come from the patterns written.
 * A page used before it is loaded holds whatever malloc() returned (often
 * a freed copy of the same bitmap): the threads test and valgrind's
 * uninitialised-value check (run-tests' valgrind stage) catch that.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "libvhdx.h"

#define MiB (1024ull * 1024)
#define KiB 1024ull

static char dir[256], base_path[300], child_path[300];

/* What the base and the child hold: a different non-constant byte at every offset. */
static uint8_t base_byte(uint64_t v)
{
	return (uint8_t)((((v >> 3) * 2654435761u) >> 24) | 1);
}

static uint8_t child_byte(uint64_t v)
{
	return base_byte(v) ^ 0xa5;
}

struct range {
	uint64_t off, len;
};

/* the base's data: around the page boundaries of the child's bitmap bits */
static const struct range base_ranges[] = {
	{ 14 * MiB, 4 * MiB },  /* block 0: its bits' page boundary is at 16 MiB */
	{ 46 * MiB, 4 * MiB },  /* block 1: at 48 MiB */
	{ 62 * MiB, 4 * MiB },  /* the end of block 1, the start of block 2 */
	{ 80 * MiB, 2 * MiB },  /* block 2: at 80 MiB */
};
/* the child's sectors: across a page boundary, at the first bit of a page, the last bit of a block */
static const struct range child_ranges[] = {
	{ 16 * MiB - 3 * KiB, 8 * KiB },
	{ 48 * MiB, 512 },
	{ 64 * MiB - 512, 512 },
	{ 64 * MiB + 4 * KiB, 4 * KiB },
};

#define N_RANGES(a) (sizeof(a) / sizeof((a)[0]))

static bool in(const struct range *r, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++)
		if (v >= r[i].off && v < r[i].off + r[i].len)
			return true;
	return false;
}

static uint8_t expected_byte(uint64_t v)
{
	if (in(child_ranges, N_RANGES(child_ranges), v))
		return child_byte(v);
	if (in(base_ranges, N_RANGES(base_ranges), v))
		return base_byte(v);
	return 0;
}

static void write_ranges(const char *path, const struct range *r, size_t n, uint8_t (*byte)(uint64_t))
{
	struct vhdx_open_options oo;
	struct vhdx_image *img;

	vhdx_open_options_init(&oo);
	oo.flags = VHDX_OPEN_RDWR;
	assert_ok(vhdx_open(path, &oo, &img));
	for (size_t i = 0; i < n; i++) {
		uint8_t *buf = malloc(r[i].len);
		assert_non_null(buf);
		for (uint64_t j = 0; j < r[i].len; j++)
			buf[j] = byte(r[i].off + j);
		assert_int_equal(vhdx_pwrite(img, buf, r[i].len, r[i].off), (ssize_t)r[i].len);
		free(buf);
	}
	assert_ok(vhdx_close(img));
}

static int setup(void **state)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct vhdx_create_options co;

	(void)state;
	snprintf(dir, sizeof dir, "%s/test_bitmap_pages.XXXXXX", tmp);
	if (!mkdtemp(dir))
		return -1;
	snprintf(base_path, sizeof base_path, "%s/base.vhdx", dir);
	snprintf(child_path, sizeof child_path, "%s/child.avhdx", dir);
	vhdx_create_options_init(&co);
	co.virtual_size = 96 * MiB;
	co.block_size = 32 * MiB;
	if (vhdx_create(base_path, &co) < 0)
		return -1;
	write_ranges(base_path, base_ranges, N_RANGES(base_ranges), base_byte);
	vhdx_create_options_init(&co);
	co.parent = base_path;
	co.block_size = 32 * MiB;
	if (vhdx_create(child_path, &co) < 0)
		return -1;
	write_ranges(child_path, child_ranges, N_RANGES(child_ranges), child_byte);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(child_path);
	unlink(base_path);
	rmdir(dir);
	return 0;
}

static struct vhdx_image *open_ro(void)
{
	struct vhdx_image *img;

	assert_ok(vhdx_open(child_path, NULL, &img));
	return img;
}

/* Reads [off, off+len) and compares every byte with the patterns. */
static void check_read(struct vhdx_image *img, uint64_t off, uint64_t len)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(vhdx_pread(img, buf, len, off), (ssize_t)len);
	for (uint64_t j = 0; j < len; j++)
		if (buf[j] != expected_byte(off + j))
			fail_msg("byte at %llu (read of %llu at %llu) is 0x%02x, expected 0x%02x",
				 (unsigned long long)(off + j), (unsigned long long)len, (unsigned long long)off,
				 buf[j], expected_byte(off + j));
	free(buf);
}

/* One read across the page boundary of block 0's bits first: both pages load at once. */
static void test_across_first(void **state)
{
	struct vhdx_image *img = open_ro();
	struct vhdx_extent e;

	(void)state;
	check_read(img, 16 * MiB - 512 * KiB, MiB);
	/* the child's 8 KiB across the boundary are one run of its own data */
	assert_ok(vhdx_map(img, 16 * MiB - 3 * KiB, MiB, &e));
	assert_int_equal(e.kind, VHDX_EXTENT_DATA);
	assert_int_equal(e.layer, 0);
	assert_int_equal(e.len, 8 * KiB);
	assert_ok(vhdx_map(img, 16 * MiB + 5 * KiB, MiB, &e));
	assert_int_equal(e.kind, VHDX_EXTENT_DATA);
	assert_int_equal(e.layer, 1);
	assert_ok(vhdx_close(img));
}

/* The second page alone first, then the first, then reads spanning both. */
static void test_pages_one_by_one(void **state)
{
	struct vhdx_image *img = open_ro();

	(void)state;
	check_read(img, 16 * MiB + 4 * KiB, 4 * KiB); /* page 1 of block 0's bits only */
	check_read(img, 16 * MiB - 4 * KiB, 4 * KiB); /* page 0 */
	for (uint64_t v = 16 * MiB - 8 * KiB; v < 16 * MiB + 8 * KiB; v += 512)
		check_read(img, v, 512);
	check_read(img, 16 * MiB - 7 * KiB, 13 * KiB);
	/* block 1: the first bit of its second page, then its last bit */
	check_read(img, 48 * MiB, 512);
	check_read(img, 48 * MiB - 512, 2 * KiB);
	check_read(img, 64 * MiB - 512, 512);
	check_read(img, 62 * MiB, 4 * MiB); /* the end of block 1 into block 2 */
	check_read(img, 80 * MiB - 4 * KiB, 8 * KiB); /* block 2's second page: all from the parent */
	check_read(img, 46 * MiB, 4 * MiB);
	check_read(img, 14 * MiB, 4 * MiB);
	assert_ok(vhdx_close(img));
}

struct reader {
	struct vhdx_image *img;
	uint64_t seed;
	int bad;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	static const uint64_t windows[] = { 16 * MiB, 48 * MiB, 64 * MiB, 80 * MiB };
	uint8_t *buf = malloc(64 * KiB);

	for (int i = 0; buf && i < 100 && !r->bad; i++) {
		uint64_t x;
		r->seed ^= r->seed << 13;
		r->seed ^= r->seed >> 7;
		r->seed ^= r->seed << 17;
		x = r->seed;
		uint64_t len = 512 * (1 + x % 64);
		uint64_t off = windows[(x >> 8) % 4] - 32 * KiB + 512 * ((x >> 16) % 64);
		if (vhdx_pread(r->img, buf, len, off) != (ssize_t)len) {
			r->bad = 1;
			break;
		}
		for (uint64_t j = 0; j < len; j++)
			if (buf[j] != expected_byte(off + j)) {
				r->bad = 2;
				break;
			}
	}
	free(buf);
	return NULL;
}

/* Four threads load the pages of a fresh open at once; every byte they read must be right. */
static void test_threads(void **state)
{
	struct reader r[4];
	pthread_t t[4];

	(void)state;
	for (int round = 0; round < 6; round++) {
		struct vhdx_image *img = open_ro();
		for (int i = 0; i < 4; i++) {
			r[i].img = img;
			r[i].seed = 88172645463325252ull + (uint64_t)(round * 4 + i) * 7919;
			r[i].bad = 0;
			assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			if (r[i].bad)
				fail_msg("round %d thread %d: %s", round, i, r[i].bad == 1 ? "a read failed" : "wrong bytes");
		}
		assert_ok(vhdx_close(img));
	}
}

/* The writable open (whole bitmap blocks) reads the same bytes. */
static void test_writable_same(void **state)
{
	struct vhdx_open_options oo;
	struct vhdx_image *img;

	(void)state;
	vhdx_open_options_init(&oo);
	oo.flags = VHDX_OPEN_RDWR;
	assert_ok(vhdx_open(child_path, &oo, &img));
	check_read(img, 16 * MiB + 4 * KiB, 4 * KiB);
	check_read(img, 16 * MiB - 512 * KiB, MiB);
	check_read(img, 62 * MiB, 4 * MiB);
	assert_ok(vhdx_close(img));
}

UNIT_MAIN(setup, teardown,
	  cmocka_unit_test(test_across_first),
	  cmocka_unit_test(test_pages_one_by_one),
	  cmocka_unit_test(test_threads),
	  cmocka_unit_test(test_writable_same))
