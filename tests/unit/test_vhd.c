/*
 * test_vhd.c - format/vhd.c through the format ops table, on
 * VHD images built here in memory (fixed, dynamic, differencing): probing,
 * the choice between the trailing and leading footer, salvage, every read
 * path (fixed, unallocated, allocated, the MSB-first bitmap of a
 * differencing block), the parent reference, concurrent reads through the
 * bitmap cache, and damage: bad checksums, truncation at every sector,
 * BAT entries past the end or overlapping, huge max table entries, bad
 * locators, and random byte damage (open must fail cleanly or read).
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "lib/unit.h"
#include "chain/chain.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhd_codec.h"
#include "format/format.h"
#include "format/vhd_format.h"
#include "io/io.h"

#define MAX_BLOCKS 64

/* An image and what the test knows about its layout. */
struct vimg {
	uint8_t *buf;
	size_t len;
	uint32_t type;
	uint64_t vsize;
	uint32_t bs, n, bmsize;
	uint64_t bat_off, bat_len, loc_off, trail_off;
	int64_t blk_foff[MAX_BLOCKS]; /* file offset of each block's bitmap, or -1 */
};

/* Payload byte at virtual offset VOFF of every test image (never long zero runs). */
static uint8_t pat(uint64_t voff)
{
	return (uint8_t)(voff * 31 + (voff >> 9) * 7 + 0x5a);
}

/* Byte J of the sector bitmap of block BLK in a differencing image: a mix of runs. */
static uint8_t diff_bm_byte(unsigned blk, size_t j)
{
	static const uint8_t mix[] = { 0xff, 0xff, 0x00, 0xa5, 0x0f, 0x00, 0x00, 0x80, 0x01, 0xff, 0xf0, 0x3c };
	return mix[(j + blk * 5) % sizeof mix];
}

/* Independent MSB-first bit accessor: sector I of a block is byte I/8, bit 7 - I%8. */
static bool bit_msb(const uint8_t *bm, uint64_t i)
{
	return (bm[i / 8] & (0x80 >> (i % 8))) != 0;
}

static const uint8_t parent_uuid[16] = { 0x5f, 0xa2, 0x1a, 0x55, 0xf3, 0x94, 0xaa, 0x4d,
					 0x99, 0x58, 0x19, 0x51, 0xa6, 0x7d, 0x55, 0x40 };

static void put_footer(struct vimg *v, uint64_t off)
{
	struct vhdx_vhd_footer f = {
		.features = VHD_FEATURE_RESERVED,
		.version = VHD_VERSION_1,
		.data_offset = v->type == VHD_TYPE_FIXED ? UINT64_MAX : 512,
		.timestamp = 0x12345678,
		.creator_app = { 't', 'e', 's', 't' },
		.creator_version = 0x00010000,
		.creator_os = VHD_OS_WINDOWS,
		.original_size = v->vsize,
		.current_size = v->vsize,
		.disk_type = v->type,
	};
	struct vhdx_vhd_chs chs;

	vhdx_vhd_chs_calc(v->vsize, &chs);
	f.cylinders = chs.cylinders;
	f.heads = chs.heads;
	f.sectors_per_track = chs.sectors_per_track;
	for (int i = 0; i < 16; i++)
		f.unique_id[i] = (uint8_t)(0x10 + i);
	vhdx_vhd_footer_encode(&f, v->buf + off);
}

static void put_utf16le(uint8_t *p, const char *s)
{
	for (size_t i = 0; s[i]; i++)
		vhdx_put_le16(p + 2 * i, (uint8_t)s[i]);
}

/*
 * Builds an image of TYPE, VSIZE bytes, BS-byte blocks; blocks ORDER[0..NA)
 * are allocated in that file order.  Dynamic bitmaps are all zero (the
 * reader must ignore them); differencing bitmaps follow diff_bm_byte().
 */
static void build(struct vimg *v, uint32_t type, uint64_t vsize, uint32_t bs, const int *order, int na)
{
	memset(v, 0, sizeof *v);
	v->type = type;
	v->vsize = vsize;
	for (int i = 0; i < MAX_BLOCKS; i++)
		v->blk_foff[i] = -1;
	if (type == VHD_TYPE_FIXED) {
		v->len = vsize + VHD_FOOTER_SIZE;
		v->buf = calloc(1, v->len);
		assert_non_null(v->buf);
		for (uint64_t i = 0; i < vsize; i++)
			v->buf[i] = pat(i);
		v->trail_off = vsize;
		put_footer(v, v->trail_off);
		return;
	}
	v->bs = bs;
	v->n = (uint32_t)((vsize + bs - 1) / bs);
	assert_true(v->n <= MAX_BLOCKS);
	v->bmsize = vhdx_vhd_bitmap_size(bs);
	v->bat_off = 1536;
	v->bat_len = (4ull * v->n + 511) / 512 * 512;
	v->loc_off = v->bat_off + v->bat_len;
	{
		uint64_t blocks = v->loc_off + (type == VHD_TYPE_DIFFERENCING ? 3 * 512 : 0);
		v->trail_off = blocks + (uint64_t)na * (v->bmsize + bs);
		v->len = v->trail_off + VHD_FOOTER_SIZE;
		v->buf = calloc(1, v->len);
		assert_non_null(v->buf);
		memset(v->buf + v->bat_off, 0xff, v->bat_len);
		for (int k = 0; k < na; k++) {
			unsigned b = (unsigned)order[k];
			uint64_t foff = blocks + (uint64_t)k * (v->bmsize + bs);
			v->blk_foff[b] = (int64_t)foff;
			vhdx_put_be32(v->buf + v->bat_off + 4 * b, (uint32_t)(foff / 512));
			for (size_t j = 0; j < v->bmsize; j++)
				v->buf[foff + j] = type == VHD_TYPE_DIFFERENCING ? diff_bm_byte(b, j) : 0;
			for (uint64_t i = 0; i < bs; i++)
				v->buf[foff + v->bmsize + i] = pat((uint64_t)b * bs + i);
		}
	}
	{
		struct vhdx_vhd_dynhdr h = {
			.data_offset = UINT64_MAX,
			.table_offset = v->bat_off,
			.version = VHD_VERSION_1,
			.max_table_entries = v->n,
			.block_size = bs,
			.parent_timestamp = 77,
		};
		if (type == VHD_TYPE_DIFFERENCING) {
			const char *name = "C:\\base\\parent.vhd";
			memcpy(h.parent_unique_id, parent_uuid, 16);
			for (size_t i = 0; name[i]; i++)
				vhdx_put_be16(h.parent_name + 2 * i, (uint8_t)name[i]);
			/* slots in an order different from the resolution order */
			h.locators[2] = (struct vhdx_vhd_locator){ VHD_PLAT_W2KU, 512, 2 * 21, 0, v->loc_off };
			put_utf16le(v->buf + v->loc_off, "C:\\images\\parent.vhd");
			h.locators[4] = (struct vhdx_vhd_locator){ VHD_PLAT_WI2K, 1, 20, 0, v->loc_off + 512 };
			memcpy(v->buf + v->loc_off + 512, "C:\\old\\parent.vhd", 17);
			h.locators[6] = (struct vhdx_vhd_locator){ VHD_PLAT_W2RU, 512, 2 * 12, 0, v->loc_off + 1024 };
			put_utf16le(v->buf + v->loc_off + 1024, ".\\parent.vhd");
		}
		vhdx_vhd_dynhdr_encode(&h, v->buf + 512);
	}
	put_footer(v, 0);
	put_footer(v, v->trail_off);
}

static void vimg_free(struct vimg *v)
{
	free(v->buf);
	v->buf = NULL;
}

/* Expected byte at VOFF when the layer is read alone (the parent reads as zeros). */
static uint8_t expected(const struct vimg *v, uint64_t voff)
{
	uint64_t blk, in;

	if (v->type == VHD_TYPE_FIXED)
		return pat(voff);
	blk = voff / v->bs;
	in = voff % v->bs;
	if (v->blk_foff[blk] < 0)
		return 0;
	if (v->type == VHD_TYPE_DIFFERENCING && !bit_msb(v->buf + v->blk_foff[blk], in / 512))
		return 0;
	return v->buf[v->blk_foff[blk] + v->bmsize + in];
}

static int open_buf(const uint8_t *buf, size_t len, unsigned flags, struct vhdx_layer **l)
{
	struct vhdx_io *io;

	assert_int_equal(vhdx_io_mem_new(buf, len, "t.vhd", &io), 0);
	vhdx_err_clear();
	return vhdx_layer_open_io(io, "t.vhd", flags, l);
}

static int open_img(const struct vimg *v, unsigned flags, struct vhdx_layer **l)
{
	return open_buf(v->buf, v->len, flags, l);
}

static int read_layer(struct vhdx_layer *l, void *buf, size_t len, uint64_t voff)
{
	struct vhdx_layer *layers[1] = { l };
	struct vhdx_chain c = { .n = 1, .layers = layers, .virtual_size = l->virtual_size };

	return vhdx_chain_read(&c, 0, buf, len, voff);
}

/* Reads the whole disk in odd-sized pieces and compares it with expected(). */
static void check_contents(const struct vimg *v, struct vhdx_layer *l)
{
	uint8_t *buf = malloc(v->vsize);
	uint64_t at = 0, step = 3 * 512 + 17;

	assert_non_null(buf);
	while (at < v->vsize) {
		uint64_t n = VHDX_MIN(step, v->vsize - at);
		assert_ok(read_layer(l, buf + at, n, at));
		at += n;
		step = step * 3 % 70001 + 1;
	}
	for (uint64_t i = 0; i < v->vsize; i++)
		if (buf[i] != expected(v, i))
			fail_msg("byte %llu: read 0x%02x, expected 0x%02x", (unsigned long long)i, buf[i], expected(v, i));
	free(buf);
}

static void test_probe(void **state)
{
	struct vimg v;
	uint8_t head[512];
	struct vhdx_io *io;

	build(&v, VHD_TYPE_FIXED, 64 * 1024, 0, NULL, 0);
	assert_int_equal(vhdx_io_mem_new(v.buf, v.len, "t.vhd", &io), 0);
	memcpy(head, v.buf, sizeof head);
	/* a trailing footer: a bid below VHDX's 100, so a "vhdxfile" signature at 0 still wins */
	assert_int_equal(vhdx_format_vhd.probe(io, head, sizeof head, v.len), 80);
	vhdx_io_close(io);
	/* only a leading copy */
	{
		struct vimg d;
		int order[] = { 0 };
		build(&d, VHD_TYPE_DYNAMIC, 64 * 1024, 4096, order, 1);
		assert_int_equal(vhdx_io_mem_new(d.buf, d.trail_off, "t.vhd", &io), 0);
		assert_int_equal(vhdx_format_vhd.probe(io, d.buf, 4096, d.trail_off), 70);
		vhdx_io_close(io);
		vimg_free(&d);
	}
	/* nothing */
	memset(head, 0, sizeof head);
	assert_int_equal(vhdx_io_mem_new(head, sizeof head, "z", &io), 0);
	assert_int_equal(vhdx_format_vhd.probe(io, head, sizeof head, sizeof head), 0);
	vhdx_io_close(io);
	vimg_free(&v);
}

static void test_fixed(void **state)
{
	struct vimg v;
	struct vhdx_layer *l;
	struct vhdx_layer_extent e;
	char s[VHDX_GUID_STRLEN];

	build(&v, VHD_TYPE_FIXED, 3 * 65536 + 512, 0, NULL, 0);
	assert_ok(open_img(&v, 0, &l));
	assert_int_equal(l->format, VHDX_FORMAT_VHD);
	assert_int_equal(l->type, VHDX_TYPE_FIXED);
	assert_true(l->virtual_size == v.vsize);
	assert_int_equal(l->block_size, 0);
	assert_int_equal(l->logical_sector_size, 512);
	assert_int_equal(l->physical_sector_size, 512);
	assert_false(l->has_parent);
	vhdx_guid_format(l->disk_id, s);
	assert_string_equal(s, "10111213-1415-1617-1819-1a1b1c1d1e1f");
	assert_memory_equal(l->identity, l->disk_id, 16);
	/* one extent, file offset = virtual offset */
	assert_ok(l->ops->map(l, 1000, UINT64_MAX, &e));
	assert_int_equal(e.kind, VHDX_LEXT_DATA);
	assert_true(e.foff == 1000);
	assert_true(e.len == v.vsize - 1000);
	assert_ok(l->ops->map(l, 7, 5, &e));
	assert_true(e.len == 5 && e.foff == 7);
	check_contents(&v, l);
	{
		struct vhdx_vhd_state *st = vhdx_vhd_state_of(l);
		assert_int_equal(st->used, VHDX_VHD_TRAILING);
		assert_false(st->leading_read); /* a fixed disk's first sector is data */
	}
	vhdx_layer_close(l);

	/* the footer claims more data than the file holds */
	vhdx_put_be64(v.buf + v.trail_off + 48, v.vsize + 512);
	vhdx_put_be32(v.buf + v.trail_off + 64,
		      vhdx_vhd_checksum(v.buf + v.trail_off, 512, VHD_FOOTER_CHECKSUM_OFF));
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "fixed disk: current size 197632");
	vimg_free(&v);
}

static void test_fixed_old_footer(void **state)
{
	struct vimg v;
	struct vhdx_layer *l;

	/* a pre-2004 511-byte footer: the last byte of the 512-byte form is missing */
	build(&v, VHD_TYPE_FIXED, 8192, 0, NULL, 0);
	assert_int_equal(v.buf[v.len - 1], 0);
	assert_ok(open_buf(v.buf, v.len - 1, 0, &l));
	assert_true(l->virtual_size == 8192);
	assert_true(vhdx_vhd_state_of(l)->copies[VHDX_VHD_TRAILING].old_size);
	check_contents(&v, l);
	vhdx_layer_close(l);
	vimg_free(&v);
}

static void test_dynamic(void **state)
{
	/* 10 blocks of 4 KiB; the last one is half inside the disk; allocated out of order */
	int order[] = { 9, 2, 0, 3 };
	struct vimg v;
	struct vhdx_layer *l;
	struct vhdx_layer_extent e;
	struct vhdx_vhd_state *s;

	build(&v, VHD_TYPE_DYNAMIC, 9 * 4096 + 2048, 4096, order, 4);
	assert_ok(open_img(&v, 0, &l));
	assert_int_equal(l->type, VHDX_TYPE_DYNAMIC);
	assert_int_equal(l->block_size, 4096);
	assert_true(l->virtual_size == 9 * 4096 + 2048);
	assert_false(l->has_parent);
	s = vhdx_vhd_state_of(l);
	assert_int_equal(s->allocated_blocks, 4);
	assert_int_equal(s->blocks_needed, 10);
	assert_int_equal(s->bitmap_size, 512);
	assert_false(s->footers_differ);

	/* block 0: data although its bitmap is all zero */
	assert_ok(l->ops->map(l, 100, UINT64_MAX, &e));
	assert_int_equal(e.kind, VHDX_LEXT_DATA);
	assert_true(e.foff == (uint64_t)v.blk_foff[0] + 512 + 100);
	assert_true(e.len == 4096 - 100);
	/* block 1 alone is unallocated */
	assert_ok(l->ops->map(l, 4096 + 1, UINT64_MAX, &e));
	assert_int_equal(e.kind, VHDX_LEXT_ZERO);
	assert_true(e.len == 4095);
	/* blocks 4..8: one zero extent over the whole run, clipped by maxlen */
	assert_ok(l->ops->map(l, 4 * 4096, UINT64_MAX, &e));
	assert_int_equal(e.kind, VHDX_LEXT_ZERO);
	assert_true(e.len == 5 * 4096);
	assert_ok(l->ops->map(l, 4 * 4096 + 10, 3 * 4096, &e));
	assert_true(e.len == 3 * 4096);
	/* the last, partial block */
	assert_ok(l->ops->map(l, 9 * 4096, UINT64_MAX, &e));
	assert_int_equal(e.kind, VHDX_LEXT_DATA);
	assert_true(e.len == 2048);
	assert_true(e.foff == (uint64_t)v.blk_foff[9] + 512);
	check_contents(&v, l);
	vhdx_layer_close(l);
	vimg_free(&v);
}

static void test_differencing(void **state)
{
	int order[] = { 1, 0, 3 };
	struct vimg v;
	struct vhdx_layer *l;
	struct vhdx_layer_extent e;
	char s[VHDX_GUID_STRLEN];

	/* 64 KiB blocks: 128 sectors, 16 bitmap bytes of mixed runs */
	build(&v, VHD_TYPE_DIFFERENCING, 4 * 65536, 65536, order, 3);
	assert_ok(open_img(&v, 0, &l));
	assert_int_equal(l->type, VHDX_TYPE_DIFFERENCING);
	assert_true(l->has_parent);
	vhdx_guid_format(l->parent.linkage, s);
	assert_string_equal(s, "5fa21a55-f394-aa4d-9958-1951a67d5540");
	assert_false(l->parent.has_linkage2);
	assert_int_equal(l->parent.timestamp, 77);
	/* resolution order: W2ru, W2ku, the deprecated Wi2k, then the parent name */
	assert_int_equal(l->parent.n_paths, 4);
	assert_string_equal(l->parent.paths[0].key, "W2ru");
	assert_string_equal(l->parent.paths[0].value, ".\\parent.vhd");
	assert_string_equal(l->parent.paths[1].key, "W2ku");
	assert_string_equal(l->parent.paths[1].value, "C:\\images\\parent.vhd");
	assert_string_equal(l->parent.paths[2].key, "Wi2k");
	assert_string_equal(l->parent.paths[2].value, "C:\\old\\parent.vhd");
	assert_string_equal(l->parent.paths[3].key, "parent_name");
	assert_string_equal(l->parent.paths[3].value, "C:\\base\\parent.vhd");

	/* block 2 unallocated: the parent */
	assert_ok(l->ops->map(l, 2 * 65536 + 3, UINT64_MAX, &e));
	assert_int_equal(e.kind, VHDX_LEXT_PARENT);
	assert_true(e.len == 65536 - 3);
	/* block 0: bitmap bytes mix[0..] = ff ff 00 a5 0f ...: sectors 0-15 here, 16-23 parent */
	assert_ok(l->ops->map(l, 0, UINT64_MAX, &e));
	assert_int_equal(e.kind, VHDX_LEXT_DATA);
	assert_true(e.len == 16 * 512);
	assert_true(e.foff == (uint64_t)v.blk_foff[0] + 512);
	assert_ok(l->ops->map(l, 5 * 512 + 7, UINT64_MAX, &e)); /* mid-sector start */
	assert_int_equal(e.kind, VHDX_LEXT_DATA);
	assert_true(e.len == 11 * 512 - 7);
	assert_ok(l->ops->map(l, 16 * 512, UINT64_MAX, &e));
	assert_int_equal(e.kind, VHDX_LEXT_PARENT);
	assert_true(e.len == 8 * 512);
	/* 0xa5 = 1010 0101: sector 24 here, 25 parent */
	assert_ok(l->ops->map(l, 24 * 512, UINT64_MAX, &e));
	assert_int_equal(e.kind, VHDX_LEXT_DATA);
	assert_true(e.len == 512);
	assert_ok(l->ops->map(l, 25 * 512, UINT64_MAX, &e));
	assert_int_equal(e.kind, VHDX_LEXT_PARENT);
	assert_true(e.len == 512);
	/* maxlen clips a run */
	assert_ok(l->ops->map(l, 0, 1000, &e));
	assert_true(e.len == 1000);
	check_contents(&v, l);
	vhdx_layer_close(l);
	vimg_free(&v);
}

struct reader_arg {
	const struct vimg *v;
	struct vhdx_layer *l;
	unsigned seed;
	int bad;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	uint8_t buf[20000];
	uint32_t x = a->seed;

	for (int k = 0; k < 300 && !a->bad; k++) {
		uint64_t off, len;
		x = x * 1664525 + 1013904223;
		off = (x >> 4) % a->v->vsize;
		x = x * 1664525 + 1013904223;
		len = VHDX_MIN((uint64_t)(x >> 8) % sizeof buf + 1, a->v->vsize - off);
		if (read_layer(a->l, buf, len, off) < 0) {
			a->bad = 1;
			break;
		}
		for (uint64_t i = 0; i < len; i++)
			if (buf[i] != expected(a->v, off + i)) {
				a->bad = 2;
				break;
			}
	}
	return NULL;
}

static void test_concurrent_bitmaps(void **state)
{
	int order[16];
	struct vimg v;
	struct vhdx_layer *l;
	pthread_t t[4];
	struct reader_arg a[4];

	for (int i = 0; i < 16; i++)
		order[i] = (i * 7) % 16;
	build(&v, VHD_TYPE_DIFFERENCING, 16 * 8192, 8192, order, 16);
	assert_ok(open_img(&v, 0, &l));
	for (int i = 0; i < 4; i++) {
		a[i] = (struct reader_arg){ .v = &v, .l = l, .seed = 1000u + (unsigned)i };
		assert_int_equal(pthread_create(&t[i], NULL, reader, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		if (a[i].bad)
			fail_msg("reader %d: %s", i, a[i].bad == 1 ? "read failed" : "wrong data");
	}
	{
		struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
		for (int i = 0; i < 16; i++)
			assert_non_null(s->bitmaps[i]); /* every block was read, each bitmap loaded once */
	}
	vhdx_layer_close(l);
	vimg_free(&v);
}

/* Rewrites the checksum of the footer at OFF. */
static void reseal_footer_at(struct vimg *v, uint64_t off)
{
	vhdx_put_be32(v->buf + off + 64, vhdx_vhd_checksum(v->buf + off, 512, VHD_FOOTER_CHECKSUM_OFF));
}

static void test_footer_copies(void **state)
{
	int order[] = { 0 };
	struct vimg v;
	struct vhdx_layer *l;
	struct vhdx_vhd_state *s;

	/* both copies with a bad checksum: refused, message names checksum and offset */
	build(&v, VHD_TYPE_DYNAMIC, 16384, 4096, order, 1);
	v.buf[84] ^= 1;
	v.buf[v.trail_off + 84] ^= 1;
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "checksum mismatch");
	assert_errmsg_contains("trailing footer at 0x");
	assert_errmsg_contains("leading footer copy at 0x0");
	/* salvage reads it */
	assert_ok(open_img(&v, VHDX_LAYER_SALVAGE, &l));
	s = vhdx_vhd_state_of(l);
	assert_false(s->footer->checksum_valid);
	assert_int_equal(s->used, VHDX_VHD_TRAILING);
	check_contents(&v, l);
	vhdx_layer_close(l);

	/* salvage prefers a copy whose checksum is good */
	v.buf[84] ^= 1;
	assert_ok(open_img(&v, VHDX_LAYER_SALVAGE, &l));
	s = vhdx_vhd_state_of(l);
	assert_int_equal(s->used, VHDX_VHD_LEADING);
	assert_true(s->footer->checksum_valid);
	vhdx_layer_close(l);

	/* trailing bad, leading good: the leading copy is used without salvage */
	assert_ok(open_img(&v, 0, &l));
	s = vhdx_vhd_state_of(l);
	assert_int_equal(s->used, VHDX_VHD_LEADING);
	assert_non_null(s->copies[VHDX_VHD_TRAILING].error);
	assert_non_null(strstr(s->copies[VHDX_VHD_TRAILING].error, "checksum"));
	check_contents(&v, l);
	vhdx_layer_close(l);

	/* both valid but different: the trailing copy wins and the mismatch is noted */
	v.buf[v.trail_off + 84] ^= 1;
	vhdx_put_be32(v.buf + 24, 0x11111111); /* leading time stamp */
	reseal_footer_at(&v, 0);
	assert_ok(open_img(&v, 0, &l));
	s = vhdx_vhd_state_of(l);
	assert_int_equal(s->used, VHDX_VHD_TRAILING);
	assert_true(s->footers_differ);
	assert_int_equal(s->footer->timestamp, 0x12345678);
	vhdx_layer_close(l);

	/* the trailing footer missing entirely (file cut before it): the leading copy */
	assert_ok(open_buf(v.buf, v.trail_off, 0, &l));
	s = vhdx_vhd_state_of(l);
	assert_int_equal(s->used, VHDX_VHD_LEADING);
	assert_false(s->copies[VHDX_VHD_TRAILING].present);
	check_contents(&v, l);
	vhdx_layer_close(l);

	/* the leading copy claims a fixed disk: not a usable copy */
	vimg_free(&v);
	build(&v, VHD_TYPE_DYNAMIC, 16384, 4096, order, 1);
	vhdx_put_be32(v.buf + 60, VHD_TYPE_FIXED);
	reseal_footer_at(&v, 0);
	assert_fails(open_buf(v.buf, v.trail_off, 0, &l), -EBADMSG, "a fixed disk has no leading copy");
	vimg_free(&v);
}

static void test_unsupported_type(void **state)
{
	struct vimg v;
	struct vhdx_layer *l;

	build(&v, VHD_TYPE_FIXED, 8192, 0, NULL, 0);
	vhdx_put_be32(v.buf + v.trail_off + 60, 5);
	reseal_footer_at(&v, v.trail_off);
	assert_fails(open_img(&v, 0, &l), -ENOTSUP, "disk type 5 (reserved, deprecated) is not supported");
	assert_errmsg_contains("trailing footer at 0x2000");
	vimg_free(&v);
}

static void test_dynhdr_damage(void **state)
{
	int order[] = { 0, 1 };
	struct vimg v;
	struct vhdx_layer *l;

	/* bad dynamic header checksum: refused, salvage reads */
	build(&v, VHD_TYPE_DYNAMIC, 8192, 4096, order, 2);
	v.buf[512 + 700] ^= 0x40;
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "dynamic header at 0x200: dynamic header: checksum mismatch");
	assert_ok(open_img(&v, VHDX_LAYER_SALVAGE, &l));
	assert_false(vhdx_vhd_state_of(l)->dyn.checksum_valid);
	check_contents(&v, l);
	vhdx_layer_close(l);
	vimg_free(&v);

	/* data offset past the end of the file */
	build(&v, VHD_TYPE_DYNAMIC, 8192, 4096, order, 2);
	vhdx_put_be64(v.buf + v.trail_off + 16, 0x100000);
	reseal_footer_at(&v, v.trail_off);
	memcpy(v.buf, v.buf + v.trail_off, 512);
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "data offset 0x100000");
	vimg_free(&v);
}

/* Sets BAT entry I of V to SECTOR. */
static void set_bat(struct vimg *v, unsigned i, uint32_t sector)
{
	vhdx_put_be32(v->buf + v->bat_off + 4 * i, sector);
}

static void set_max_entries(struct vimg *v, uint32_t n)
{
	vhdx_put_be32(v->buf + 512 + 28, n);
	vhdx_put_be32(v->buf + 512 + 36, vhdx_vhd_checksum(v->buf + 512, 1024, VHD_DYNHDR_CHECKSUM_OFF));
}

static void test_bat_damage(void **state)
{
	int order[] = { 0, 1, 2 };
	struct vimg v;
	struct vhdx_layer *l;

	/* an entry past the end of the file */
	build(&v, VHD_TYPE_DYNAMIC, 4 * 4096, 4096, order, 3);
	set_bat(&v, 1, 0x00100000);
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "BAT entry 1 at 0x604: block at file offset 0x20000000");
	assert_errmsg_contains("past the end");
	/* one ending inside the trailing footer */
	set_bat(&v, 1, (uint32_t)((v.trail_off - 4096) / 512));
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "BAT entry 1 at 0x604");
	assert_errmsg_contains("trailing footer");
	vimg_free(&v);

	/* two entries naming the same block, and blocks overlapping partly */
	build(&v, VHD_TYPE_DYNAMIC, 4 * 4096, 4096, order, 3);
	set_bat(&v, 2, (uint32_t)(v.blk_foff[0] / 512));
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "overlaps the block of BAT entry");
	set_bat(&v, 2, (uint32_t)(v.blk_foff[1] / 512 + 1));
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "BAT entry 2 at 0x608: block at file offset");
	vimg_free(&v);

	/* blocks over the leading footer, the dynamic header, the BAT */
	build(&v, VHD_TYPE_DYNAMIC, 4 * 4096, 4096, order, 3);
	set_bat(&v, 0, 0);
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "BAT entry 0 at 0x600: block at file offset 0x0 (+0x1200) overlaps the leading footer");
	set_bat(&v, 0, 2);
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "overlaps the dynamic header");
	set_bat(&v, 0, 3);
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "overlaps the BAT");
	vimg_free(&v);

	/* max table entries: too few for the size, and huge */
	build(&v, VHD_TYPE_DYNAMIC, 4 * 4096, 4096, order, 3);
	set_max_entries(&v, 3);
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "max table entries 3 cannot cover the current size 16384");
	set_max_entries(&v, 0xfffffff0u);
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "BAT at 0x600 with 4294967280 entries");
	set_max_entries(&v, UINT32_MAX);
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "extends past the end");
	vimg_free(&v);

	/* BAT entries beyond the disk are allowed (Windows: 65024 entries for 127 GiB), even allocated */
	{
		int order2[] = { 0, 1, 3 };
		build(&v, VHD_TYPE_DYNAMIC, 4 * 4096, 4096, order2, 3);
	}
	v.vsize = 2 * 4096;
	vhdx_put_be64(v.buf + 48, v.vsize);
	reseal_footer_at(&v, 0);
	memcpy(v.buf + v.trail_off, v.buf, 512);
	assert_ok(open_img(&v, 0, &l));
	assert_true(l->virtual_size == 8192);
	/* only the disk's entries are loaded (memory bounded by the disk, not the table): 2 of the 3 */
	assert_int_equal(vhdx_vhd_state_of(l)->allocated_blocks, 2);
	assert_int_equal(vhdx_vhd_state_of(l)->blocks_needed, 2);
	check_contents(&v, l);
	vhdx_layer_close(l);
	/* an entry past the disk's end is never data: even one naming the leading footer is ignored */
	set_bat(&v, 3, 0);
	assert_ok(open_img(&v, 0, &l));
	assert_int_equal(vhdx_vhd_state_of(l)->allocated_blocks, 2);
	check_contents(&v, l);
	vhdx_layer_close(l);
	vimg_free(&v);
}

static void test_locator_damage(void **state)
{
	int order[] = { 0 };
	struct vimg v;
	struct vhdx_layer *l;
	uint8_t *h;

	build(&v, VHD_TYPE_DIFFERENCING, 8192, 4096, order, 1);
	h = v.buf + 512;
	/* W2ku (slot 2) data past the end of the file */
	vhdx_put_be64(h + 576 + 2 * 24 + 16, v.len + 4096);
	vhdx_put_be32(h + 36, vhdx_vhd_checksum(h, 1024, VHD_DYNHDR_CHECKSUM_OFF));
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "parent locator entry 2 (W2ku)");
	assert_errmsg_contains("dynamic header at 0x200");
	/* a huge length */
	vhdx_put_be64(h + 576 + 2 * 24 + 16, v.loc_off);
	vhdx_put_be32(h + 576 + 2 * 24 + 8, 0x7fffffff);
	vhdx_put_be32(h + 36, vhdx_vhd_checksum(h, 1024, VHD_DYNHDR_CHECKSUM_OFF));
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "data length 2147483647");
	/* data over the BAT */
	vhdx_put_be32(h + 576 + 2 * 24 + 8, 42);
	vhdx_put_be64(h + 576 + 2 * 24 + 16, v.bat_off);
	vhdx_put_be32(h + 36, vhdx_vhd_checksum(h, 1024, VHD_DYNHDR_CHECKSUM_OFF));
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "overlaps the dynamic header or the BAT");
	/* a block over the locator data */
	vhdx_put_be64(h + 576 + 2 * 24 + 16, v.loc_off);
	vhdx_put_be32(h + 36, vhdx_vhd_checksum(h, 1024, VHD_DYNHDR_CHECKSUM_OFF));
	assert_ok(open_img(&v, 0, &l));
	vhdx_layer_close(l);
	set_bat(&v, 0, (uint32_t)(v.loc_off / 512));
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "overlaps the data of parent locator entry 2");
	set_bat(&v, 0, (uint32_t)(v.blk_foff[0] / 512));
	/* W2ru data that is not UTF-16 */
	vhdx_put_le16(v.buf + v.loc_off + 1024, 0xdc00);
	assert_fails(open_img(&v, 0, &l), -EBADMSG, "parent locator entry 6 (W2ru): data at");
	assert_errmsg_contains("UTF-16LE");
	vimg_free(&v);

	/* on a dynamic disk the locators are unused: damage there is reported, not fatal */
	build(&v, VHD_TYPE_DYNAMIC, 8192, 4096, order, 1);
	h = v.buf + 512;
	vhdx_put_be32(h + 576, VHD_PLAT_W2RU);
	vhdx_put_be32(h + 576 + 8, 100);
	vhdx_put_be64(h + 576 + 16, 1ull << 40);
	vhdx_put_be32(h + 36, vhdx_vhd_checksum(h, 1024, VHD_DYNHDR_CHECKSUM_OFF));
	assert_ok(open_img(&v, 0, &l));
	assert_non_null(vhdx_vhd_state_of(l)->locators[0].error);
	assert_non_null(strstr(vhdx_vhd_state_of(l)->locators[0].error, "parent locator entry 0"));
	check_contents(&v, l);
	vhdx_layer_close(l);
	vimg_free(&v);
}

/* Opens BUF; any failure must be one of the documented codes; a success must read. */
static void open_damaged(const uint8_t *buf, size_t len, const char *what, size_t pos)
{
	struct vhdx_layer *l = NULL;
	int ret = open_buf(buf, len, 0, &l);

	if (ret == 0) {
		uint8_t *out = malloc(l->virtual_size ? l->virtual_size : 1);
		struct vhdx_layer_extent e;
		assert_non_null(out);
		/* every block was validated at open: reads cannot fail on a memory file */
		ret = read_layer(l, out, l->virtual_size, 0);
		if (ret < 0)
			fail_msg("%s %zu: read failed with %d: %s", what, pos, ret, vhdx_errmsg());
		for (uint64_t at = 0; at < l->virtual_size; at += e.len) {
			if (l->ops->map(l, at, l->virtual_size - at, &e) < 0)
				break;
			if (e.len == 0 || e.len > l->virtual_size - at)
				fail_msg("%s %zu: map returned %llu bytes at %llu", what, pos, (unsigned long long)e.len,
					 (unsigned long long)at);
			if (e.kind == VHDX_LEXT_DATA && !vhdx_range_ok(e.foff, e.len, len))
				fail_msg("%s %zu: DATA extent past the end of the file", what, pos);
		}
		free(out);
		vhdx_layer_close(l);
	} else if (ret != -EBADMSG && ret != -ENOTSUP) {
		fail_msg("%s %zu: open failed with %d (%s)", what, pos, ret, vhdx_errmsg());
	} else if (!*vhdx_errmsg()) {
		fail_msg("%s %zu: open failed without a message", what, pos);
	}
}

static void test_truncation_sweep(void **state)
{
	int order[] = { 2, 0, 3 };
	struct vimg v;

	build(&v, VHD_TYPE_DIFFERENCING, 4 * 4096, 4096, order, 3);
	for (size_t len = 0; len <= v.len; len += (len < 4096 ? 1 : 256))
		open_damaged(v.buf, len, "truncated to", len);
	vimg_free(&v);
	build(&v, VHD_TYPE_FIXED, 4096, 0, NULL, 0);
	for (size_t len = 0; len <= v.len; len++)
		open_damaged(v.buf, len, "fixed truncated to", len);
	vimg_free(&v);
}

static void test_random_damage(void **state)
{
	int order[] = { 1, 0, 3 };
	struct vimg v;
	uint8_t *copy;
	uint32_t x = 424242;

	build(&v, VHD_TYPE_DIFFERENCING, 4 * 4096, 4096, order, 3);
	copy = malloc(v.len);
	assert_non_null(copy);
	for (int round = 0; round < 3000; round++) {
		size_t pos;
		memcpy(copy, v.buf, v.len);
		for (int k = 0; k < 1 + round % 4; k++) {
			x = x * 1664525 + 1013904223;
			/* mostly the metadata (footer copy, header, BAT, locators, bitmaps) */
			pos = (x >> 8) % (round % 3 ? v.loc_off + 1536 + 512 : v.len);
			x = x * 1664525 + 1013904223;
			copy[pos] = (uint8_t)(x >> 24);
			if (round % 2) {
				/* keep the checksums right so that deeper checks are reached */
				vhdx_put_be32(copy + 64, vhdx_vhd_checksum(copy, 512, VHD_FOOTER_CHECKSUM_OFF));
				vhdx_put_be32(copy + 512 + 36, vhdx_vhd_checksum(copy + 512, 1024, VHD_DYNHDR_CHECKSUM_OFF));
				memcpy(copy + v.trail_off, copy, 512);
			}
		}
		open_damaged(copy, v.len, "damage round", (size_t)round);
	}
	free(copy);
	vimg_free(&v);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_probe),
	  cmocka_unit_test(test_fixed),
	  cmocka_unit_test(test_fixed_old_footer),
	  cmocka_unit_test(test_dynamic),
	  cmocka_unit_test(test_differencing),
	  cmocka_unit_test(test_concurrent_bitmaps),
	  cmocka_unit_test(test_footer_copies),
	  cmocka_unit_test(test_unsupported_type),
	  cmocka_unit_test(test_dynhdr_damage),
	  cmocka_unit_test(test_bat_damage),
	  cmocka_unit_test(test_locator_damage),
	  cmocka_unit_test(test_truncation_sweep),
	  cmocka_unit_test(test_random_damage))
