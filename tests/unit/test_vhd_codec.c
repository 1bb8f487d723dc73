/*
 * test_vhd_codec.c - codec/vhd_codec.h: the VHD footer and dynamic header
 * (decode with each field broken in turn, encode round trips), the
 * one's-complement checksum against values written by Windows, the CHS
 * rule of the spec's appendix against geometries found in real images,
 * parent locator bounds and paths, the UTF-16BE parent name, the MSB-first
 * bitmap runs and the UUID byte order.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhd_codec.h"

/* The first 85 bytes of the footer of win11-fixed-6M.vhd (Windows 11); the rest is zero. */
static const uint8_t win11_footer_head[85] = {
	0x63, 0x6f, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x78, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x31, 0x60, 0x3b, 0x4e, 0x77, 0x69, 0x6e, 0x20,
	0x00, 0x0a, 0x00, 0x00, 0x57, 0x69, 0x32, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0xb4, 0x04, 0x11, 0x00, 0x00, 0x00, 0x02,
	0xff, 0xff, 0xe6, 0x52, 0xf3, 0xcd, 0x4b, 0x11, 0x9c, 0xd9, 0x74, 0x43, 0x80, 0x2c, 0xde, 0xf9,
	0xa3, 0x4c, 0xe8, 0x39, 0x00,
};

static void win11_footer(uint8_t buf[VHD_FOOTER_SIZE])
{
	memset(buf, 0, VHD_FOOTER_SIZE);
	memcpy(buf, win11_footer_head, sizeof win11_footer_head);
}

static int decode_footer(const uint8_t *buf, size_t len, unsigned flags)
{
	struct vhdx_vhd_footer f;

	return vhdx_vhd_footer_decode(buf, len, flags, &f);
}

static int decode_dynhdr(const uint8_t *buf, size_t len, unsigned flags)
{
	struct vhdx_vhd_dynhdr h;

	return vhdx_vhd_dynhdr_decode(buf, len, flags, &h);
}

/* What a damage table needs of a checksummed structure. */
struct vhd_struct {
	void (*fill)(uint8_t *buf); /* the pristine bytes */
	size_t size;
	unsigned checksum_off;
	int (*decode)(const uint8_t *buf, size_t len, unsigned flags);
};

static void diskpart_dynhdr(uint8_t buf[VHD_DYNHDR_SIZE]);

static const struct vhd_struct FOOTER = { win11_footer, VHD_FOOTER_SIZE, VHD_FOOTER_CHECKSUM_OFF, decode_footer };
static const struct vhd_struct DYNHDR = { diskpart_dynhdr, VHD_DYNHDR_SIZE, VHD_DYNHDR_CHECKSUM_OFF, decode_dynhdr };

/* Re-seals a structure after a field was changed, so that only that field is wrong. */
static void reseal(const struct vhd_struct *k, uint8_t *buf)
{
	vhdx_put_be32(buf + k->checksum_off, vhdx_vhd_checksum(buf, k->size, k->checksum_off));
}

/* A field of WIDTH bytes (1, 4 or 8; big-endian like the format) at OFF set to VALUE; width 0: none. */
struct vhd_field {
	unsigned off, width;
	uint64_t value;
};

enum salvage_check { SALVAGE_UNTRIED, SALVAGE_SAME /* refused the same way with VHDX_VHD_DECODE_SALVAGE */ };

/*
 * A damaged copy of the pristine bytes: the fields SET changed and the
 * checksum resealed (unless UNSEALED); decoding it returns ERR (0:
 * success) with MSG (NULL: any) in the message.
 */
struct vhd_damage {
	struct vhd_field set[2];
	bool unsealed;
	int err;
	const char *msg;
	enum salvage_check salvage;
};

static void put_field(uint8_t *buf, const struct vhd_field *f)
{
	if (f->width == 1)
		buf[f->off] = (uint8_t)f->value;
	else if (f->width == 4)
		vhdx_put_be32(buf + f->off, (uint32_t)f->value);
	else if (f->width == 8)
		vhdx_put_be64(buf + f->off, f->value);
}

static void expect_decode(const struct vhd_struct *k, const uint8_t *buf, size_t i, const struct vhd_damage *c,
			  unsigned flags)
{
	int r;

	vhdx_err_clear();
	r = k->decode(buf, k->size, flags);
	if (r != c->err)
		fail_msg("damage case %zu (flags %u) returned %d, expected %d; message: \"%s\"", i, flags, r, c->err,
			 vhdx_errmsg());
	if (c->msg != NULL)
		assert_errmsg_contains(c->msg);
}

/* Decodes each damaged copy of CASES; the pristine bytes one byte short are refused first. */
static void check_damage(const struct vhd_struct *k, const struct vhd_damage *cases, size_t n)
{
	uint8_t buf[VHD_DYNHDR_SIZE]; /* the larger of the two */

	k->fill(buf);
	assert_fails(k->decode(buf, k->size - 1, 0), -EBADMSG, "too short");
	for (size_t i = 0; i < n; i++) {
		k->fill(buf);
		for (size_t j = 0; j < VHDX_ARRAY_LEN(cases[i].set); j++)
			put_field(buf, &cases[i].set[j]);
		if (!cases[i].unsealed)
			reseal(k, buf);
		expect_decode(k, buf, i, &cases[i], 0);
		if (cases[i].salvage == SALVAGE_SAME)
			expect_decode(k, buf, i, &cases[i], VHDX_VHD_DECODE_SALVAGE);
	}
}

static void test_footer_windows(void **state)
{
	uint8_t buf[VHD_FOOTER_SIZE];
	struct vhdx_vhd_footer f;

	win11_footer(buf);
	/* the checksum Windows stored */
	assert_int_equal(vhdx_vhd_checksum(buf, VHD_FOOTER_SIZE, VHD_FOOTER_CHECKSUM_OFF), 0xffffe652u);
	assert_ok(vhdx_vhd_footer_decode(buf, sizeof buf, 0, &f));
	assert_true(f.checksum_valid);
	assert_int_equal(f.checksum, 0xffffe652u);
	assert_int_equal(f.features, VHD_FEATURE_RESERVED);
	assert_int_equal(f.version, VHD_VERSION_1);
	assert_true(f.data_offset == UINT64_MAX);
	assert_int_equal(f.timestamp, 0x31603b4eu);
	assert_memory_equal(f.creator_app, "win ", 4);
	assert_int_equal(f.creator_version, 0x000a0000u);
	assert_int_equal(f.creator_os, VHD_OS_WINDOWS);
	assert_true(f.original_size == 6291456);
	assert_true(f.current_size == 6291456);
	assert_int_equal(f.cylinders, 180);
	assert_int_equal(f.heads, 4);
	assert_int_equal(f.sectors_per_track, 17);
	assert_int_equal(f.disk_type, VHD_TYPE_FIXED);
	assert_memory_equal(f.unique_id, win11_footer_head + 68, 16);
	assert_int_equal(f.saved_state, 0);
	assert_false(f.reserved_nonzero);

	/* re-encoding gives the same bytes */
	{
		uint8_t again[VHD_FOOTER_SIZE];
		vhdx_vhd_footer_encode(&f, again);
		assert_memory_equal(again, buf, VHD_FOOTER_SIZE);
	}
}

static void test_footer_broken_fields(void **state)
{
	static const struct vhd_damage cases[] = {
		/* 'e' of "conectix" in upper case; salvage does not excuse a wrong cookie */
		{ { { 3, 1, 'E' } }, .err = -EBADMSG, .msg = "cookie", .salvage = SALVAGE_SAME },
		/* the checksum field itself */
		{ { { 64, 4, 0xffffe653u } }, .unsealed = true, .err = -EBADMSG, .msg = "checksum" },
		/* disk types 0, 1, 5, 6 and unknown are refused with ENOTSUP naming the type, salvage or not */
		{ { { 60, 4, 0 } }, .err = -ENOTSUP, .msg = "disk type 0", .salvage = SALVAGE_SAME },
		{ { { 60, 4, 1 } }, .err = -ENOTSUP, .msg = "disk type 1", .salvage = SALVAGE_SAME },
		{ { { 60, 4, 5 } }, .err = -ENOTSUP, .msg = "disk type 5", .salvage = SALVAGE_SAME },
		{ { { 60, 4, 6 } }, .err = -ENOTSUP, .msg = "disk type 6", .salvage = SALVAGE_SAME },
		{ { { 60, 4, 7 } }, .err = -ENOTSUP, .msg = "disk type 7", .salvage = SALVAGE_SAME },
		{ { { 60, 4, 0x12345678 } }, .err = -ENOTSUP, .msg = "disk type 305419896", .salvage = SALVAGE_SAME },
		/* format version with another major number; a minor version change is accepted */
		{ { { 12, 4, 0x00020000u } }, .err = -ENOTSUP, .msg = "version 0x00020000" },
		{ { { 12, 4, 0x00010003u } } },
		/* current size not a multiple of 512 */
		{ { { 48, 8, 6291456 + 100 } }, .err = -EBADMSG, .msg = "current size 6291556" },
		/* a dynamic disk needs an aligned data offset (all-FF is only for fixed disks) */
		{ { { 60, 4, VHD_TYPE_DYNAMIC } }, .err = -EBADMSG, .msg = "data offset 0xffffffffffffffff" },
		{ { { 60, 4, VHD_TYPE_DYNAMIC }, { 16, 8, 0x201 } }, .err = -EBADMSG, .msg = "data offset 0x201" },
	};
	uint8_t buf[VHD_FOOTER_SIZE];
	struct vhdx_vhd_footer f;

	check_damage(&FOOTER, cases, VHDX_ARRAY_LEN(cases));

	/* checksum: one flipped byte anywhere (here the saved-state byte) */
	win11_footer(buf);
	buf[84] = 1;
	assert_fails(vhdx_vhd_footer_decode(buf, sizeof buf, 0, &f), -EBADMSG,
		     "checksum mismatch (stored 0xffffe652, computed 0xffffe651)");
	assert_false(f.checksum_valid);
	/* salvage reads it, and says so */
	assert_ok(vhdx_vhd_footer_decode(buf, sizeof buf, VHDX_VHD_DECODE_SALVAGE, &f));
	assert_false(f.checksum_valid);
	assert_int_equal(f.checksum_computed, 0xffffe651u);
	assert_int_equal(f.saved_state, 1);

	/* a dynamic disk with an aligned data offset */
	win11_footer(buf);
	vhdx_put_be32(buf + 60, VHD_TYPE_DYNAMIC);
	vhdx_put_be64(buf + 16, 0x200);
	reseal(&FOOTER, buf);
	assert_ok(vhdx_vhd_footer_decode(buf, sizeof buf, 0, &f));
	assert_int_equal(f.disk_type, VHD_TYPE_DYNAMIC);
	assert_true(f.data_offset == 0x200);

	/* non-zero reserved bytes are noted, not refused */
	win11_footer(buf);
	buf[300] = 7;
	reseal(&FOOTER, buf);
	assert_ok(vhdx_vhd_footer_decode(buf, sizeof buf, 0, &f));
	assert_true(f.reserved_nonzero);
}

static void test_footer_encode_roundtrip(void **state)
{
	struct vhdx_vhd_footer f = {
		.features = VHD_FEATURE_RESERVED | VHD_FEATURE_TEMPORARY,
		.version = VHD_VERSION_1,
		.data_offset = 512,
		.timestamp = 123456789,
		.creator_app = { 'q', 'e', 'm', '2' },
		.creator_version = 0x00050003,
		.creator_os = VHD_OS_MAC,
		.original_size = 1ull << 40,
		.current_size = (1ull << 40) + 512,
		.cylinders = 65535,
		.heads = 16,
		.sectors_per_track = 255,
		.disk_type = VHD_TYPE_DIFFERENCING,
		.saved_state = 1,
	}, g;
	uint8_t buf[VHD_FOOTER_SIZE];

	for (int i = 0; i < 16; i++)
		f.unique_id[i] = (uint8_t)(0xa0 + i);
	vhdx_vhd_footer_encode(&f, buf);
	assert_memory_equal(buf, "conectix", 8);
	/* big-endian on disk */
	/* current size 2^40 + 512 = 00 00 01 00 00 00 02 00 at offset 48 */
	assert_int_equal(buf[49], 0x00);
	assert_int_equal(buf[50], 0x01);
	assert_int_equal(buf[54], 0x02);
	assert_int_equal(buf[55], 0x00);
	assert_int_equal(buf[42], 0x01); /* original size 2^40 at offset 40 */
	assert_int_equal(buf[59], 255);
	assert_ok(vhdx_vhd_footer_decode(buf, sizeof buf, 0, &g));
	assert_true(g.checksum_valid);
	f.checksum = g.checksum;
	f.checksum_computed = g.checksum;
	f.checksum_valid = true;
	assert_memory_equal(&f.unique_id, &g.unique_id, 16);
	assert_true(f.current_size == g.current_size && f.original_size == g.original_size);
	assert_int_equal(f.features, g.features);
	assert_int_equal(f.timestamp, g.timestamp);
	assert_int_equal(f.creator_os, g.creator_os);
	assert_int_equal(f.creator_version, g.creator_version);
	assert_int_equal(g.cylinders, 65535);
	assert_int_equal(g.saved_state, 1);
}

static void test_checksum(void **state)
{
	uint8_t buf[16] = { 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 5 };

	/* sum 1+2+3+4+5 = 15 with bytes 4..7 skipped */
	assert_int_equal(vhdx_vhd_checksum(buf, sizeof buf, 4), ~15u);
	/* not skipped: 15 + 4 * 255 */
	assert_int_equal(vhdx_vhd_checksum(buf, sizeof buf, 12), ~(15u + 1020u));
	memset(buf, 0, sizeof buf);
	assert_int_equal(vhdx_vhd_checksum(buf, sizeof buf, 0), 0xffffffffu);
}

/* The dynamic header of diskpart-fat-differencing-orphan.vhd (Windows), written field by field. */
static void diskpart_dynhdr(uint8_t buf[VHD_DYNHDR_SIZE])
{
	static const uint8_t parent_uid[16] = { 0x5f, 0xa2, 0x1a, 0x55, 0xf3, 0x94, 0xaa, 0x4d,
						0x99, 0x58, 0x19, 0x51, 0xa6, 0x7d, 0x55, 0x40 };
	const char *name = "C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd";

	memset(buf, 0, VHD_DYNHDR_SIZE);
	memcpy(buf, "cxsparse", 8);
	vhdx_put_be64(buf + 8, UINT64_MAX);
	vhdx_put_be64(buf + 16, 0x2000);
	vhdx_put_be32(buf + 24, 0x00010000);
	vhdx_put_be32(buf + 28, 2);
	vhdx_put_be32(buf + 32, 0x00200000);
	vhdx_put_be32(buf + 36, 0xffffd951u); /* as Windows stored it */
	memcpy(buf + 40, parent_uid, 16);
	for (size_t i = 0; name[i]; i++)
		vhdx_put_be16(buf + 64 + 2 * i, (uint16_t)name[i]);
	memcpy(buf + 576, "W2ku", 4);
	vhdx_put_be32(buf + 576 + 4, 4096);
	vhdx_put_be32(buf + 576 + 8, 84);
	vhdx_put_be64(buf + 576 + 16, 0x1000);
	memcpy(buf + 600, "W2ru", 4);
	vhdx_put_be32(buf + 600 + 4, 65536);
	vhdx_put_be32(buf + 600 + 8, 32);
	vhdx_put_be64(buf + 600 + 16, 0x3000);
}

static void test_dynhdr_windows(void **state)
{
	uint8_t buf[VHD_DYNHDR_SIZE], again[VHD_DYNHDR_SIZE];
	struct vhdx_vhd_dynhdr h;
	char *name = NULL;

	diskpart_dynhdr(buf);
	assert_int_equal(vhdx_vhd_checksum(buf, VHD_DYNHDR_SIZE, VHD_DYNHDR_CHECKSUM_OFF), 0xffffd951u);
	assert_ok(vhdx_vhd_dynhdr_decode(buf, sizeof buf, 0, &h));
	assert_true(h.checksum_valid);
	assert_true(h.data_offset == UINT64_MAX);
	assert_true(h.table_offset == 0x2000);
	assert_int_equal(h.version, VHD_VERSION_1);
	assert_int_equal(h.max_table_entries, 2);
	assert_int_equal(h.block_size, 2 << 20);
	assert_int_equal(h.parent_timestamp, 0);
	assert_int_equal(h.locators[0].code, VHD_PLAT_W2KU);
	assert_int_equal(h.locators[0].data_space, 4096);
	assert_int_equal(h.locators[0].data_length, 84);
	assert_true(h.locators[0].data_offset == 0x1000);
	assert_int_equal(h.locators[1].code, VHD_PLAT_W2RU);
	assert_int_equal(h.locators[1].data_length, 32);
	assert_true(h.locators[1].data_offset == 0x3000);
	for (int i = 2; i < VHD_N_LOCATORS; i++)
		assert_int_equal(h.locators[i].code, VHD_PLAT_NONE);
	assert_ok(vhdx_vhd_parent_name(&h, &name));
	assert_string_equal(name, "C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd");
	free(name);
	assert_ok(vhdx_vhd_dynhdr_check_size(&h, 4194304));

	vhdx_vhd_dynhdr_encode(&h, again);
	assert_memory_equal(again, buf, VHD_DYNHDR_SIZE);
}

static void test_dynhdr_broken_fields(void **state)
{
	static const struct vhd_damage cases[] = {
		/* header version */
		{ { { 24, 4, 0x00020000 } }, .err = -ENOTSUP, .msg = "header version 0x00020000" },
		/* a wrong cookie, salvage or not */
		{ { { 0, 1, 'C' } }, .err = -EBADMSG, .msg = "cookie", .salvage = SALVAGE_SAME },
		/* block sizes: zero, not a power of two, too small, too large; the bounds themselves are fine */
		{ { { 32, 4, 0 } }, .err = -EBADMSG, .msg = "block size 0" },
		{ { { 32, 4, 3 << 20 } }, .err = -EBADMSG, .msg = "block size 3145728" },
		{ { { 32, 4, 2048 } }, .err = -EBADMSG, .msg = "block size 2048" },
		{ { { 32, 4, 512u << 20 } }, .err = -EBADMSG, .msg = "block size 536870912" },
		{ { { 32, 4, 0x80000000u } }, .err = -EBADMSG, .msg = "block size 2147483648" },
		{ { { 32, 4, VHD_MIN_BLOCK_SIZE } } },
		{ { { 32, 4, VHD_MAX_BLOCK_SIZE } } },
		/* table offset not sector aligned */
		{ { { 16, 8, 0x2004 } }, .err = -EBADMSG, .msg = "table offset 0x2004" },
	};
	uint8_t buf[VHD_DYNHDR_SIZE];
	struct vhdx_vhd_dynhdr h;

	check_damage(&DYNHDR, cases, VHDX_ARRAY_LEN(cases));

	/* checksum: a changed parent name byte; salvage reads it and says so */
	diskpart_dynhdr(buf);
	buf[65] = 'D';
	assert_fails(vhdx_vhd_dynhdr_decode(buf, sizeof buf, 0, &h), -EBADMSG,
		     "dynamic header: checksum mismatch (stored 0xffffd951, computed 0xffffd950)");
	assert_ok(vhdx_vhd_dynhdr_decode(buf, sizeof buf, VHDX_VHD_DECODE_SALVAGE, &h));
	assert_false(h.checksum_valid);
}

static void test_dynhdr_size_coverage(void **state)
{
	struct vhdx_vhd_dynhdr h = { .block_size = 2 << 20, .max_table_entries = 2 };

	assert_ok(vhdx_vhd_dynhdr_check_size(&h, 0));
	assert_ok(vhdx_vhd_dynhdr_check_size(&h, 4 << 20));
	assert_ok(vhdx_vhd_dynhdr_check_size(&h, 3 << 20));
	assert_fails(vhdx_vhd_dynhdr_check_size(&h, (4 << 20) + 512), -EBADMSG, "3 entries needed");
	/* the 127 GiB images: 65024 entries of 2 MiB cover 136365211648 bytes exactly */
	h.max_table_entries = 65024;
	assert_ok(vhdx_vhd_dynhdr_check_size(&h, 136365211648ull));
	assert_fails(vhdx_vhd_dynhdr_check_size(&h, 136365211648ull + 512), -EBADMSG, "max table entries 65024");
	/* the largest sizes: 2^32 - 1 entries of 256 MiB, no overflow in the arithmetic */
	h.max_table_entries = UINT32_MAX;
	h.block_size = VHD_MAX_BLOCK_SIZE;
	assert_ok(vhdx_vhd_dynhdr_check_size(&h, (1ull << 60) - (1ull << 28)));
	assert_fails(vhdx_vhd_dynhdr_check_size(&h, (1ull << 60) - (1ull << 28) + 512), -EBADMSG, "4294967296 entries needed");
	assert_fails(vhdx_vhd_dynhdr_check_size(&h, UINT64_MAX - 511), -EBADMSG, "max table entries 4294967295");
}

static void test_parent_name_utf16be(void **state)
{
	struct vhdx_vhd_dynhdr h;
	char *s = NULL;

	memset(&h, 0, sizeof h);
	assert_ok(vhdx_vhd_parent_name(&h, &s));
	assert_string_equal(s, "");
	free(s);

	/* "é" U+00E9, "€" U+20AC and U+1F600 as a surrogate pair, big-endian, then NUL padding */
	{
		static const uint8_t be[] = { 0x00, 'a', 0x00, 0xe9, 0x20, 0xac, 0xd8, 0x3d, 0xde, 0x00, 0x00, 'z' };
		memcpy(h.parent_name, be, sizeof be);
		assert_ok(vhdx_vhd_parent_name(&h, &s));
		assert_string_equal(s, "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z");
		free(s);
	}
	/* the same bytes read little-endian would be different text: the order matters */
	memset(h.parent_name, 0, sizeof h.parent_name);
	h.parent_name[0] = 'x'; /* BE 0x7800 = U+7800, a CJK ideograph, not "x" */
	assert_ok(vhdx_vhd_parent_name(&h, &s));
	assert_string_equal(s, "\xe7\xa0\x80");
	free(s);
	/* a lone low surrogate is refused */
	memset(h.parent_name, 0, sizeof h.parent_name);
	h.parent_name[0] = 0xdc;
	h.parent_name[1] = 0x00;
	assert_fails(vhdx_vhd_parent_name(&h, &s), -EBADMSG, "parent Unicode name");
	/* a full 512-byte name without a NUL is accepted (256 units) */
	for (int i = 0; i < 256; i++)
		vhdx_put_be16(h.parent_name + 2 * i, 'A');
	assert_ok(vhdx_vhd_parent_name(&h, &s));
	assert_int_equal(strlen(s), 256);
	free(s);
}

static void test_locator_bounds(void **state)
{
	struct vhdx_vhd_dynhdr h;

	memset(&h, 0, sizeof h);
	/* an empty slot is fine whatever it holds */
	h.locators[0].data_offset = UINT64_MAX;
	h.locators[0].data_length = UINT32_MAX;
	assert_ok(vhdx_vhd_locator_check(&h, 0, 4096));

	h.locators[3] = (struct vhdx_vhd_locator){ .code = VHD_PLAT_W2RU, .data_space = 512, .data_length = 32,
						   .data_offset = 0x1000 };
	assert_ok(vhdx_vhd_locator_check(&h, 3, 0x1020));
	assert_fails(vhdx_vhd_locator_check(&h, 3, 0x101f), -EBADMSG, "parent locator entry 3 (W2ru): data at 0x1000 (+32 bytes)");
	/* overflow of offset + length */
	h.locators[3].data_offset = UINT64_MAX - 8;
	assert_fails(vhdx_vhd_locator_check(&h, 3, UINT64_MAX), -EBADMSG, "entry 3");
	/* a huge length */
	h.locators[3].data_offset = 0x1000;
	h.locators[3].data_length = VHD_LOCATOR_MAX_LEN + 1;
	assert_fails(vhdx_vhd_locator_check(&h, 3, UINT64_MAX), -EBADMSG, "data length 65537");
	h.locators[3].data_length = VHD_LOCATOR_MAX_LEN;
	assert_ok(vhdx_vhd_locator_check(&h, 3, 0x1000 + VHD_LOCATOR_MAX_LEN));
	/* a zero length is fine (nothing will be read) */
	h.locators[3].data_length = 0;
	h.locators[3].data_offset = UINT64_MAX;
	assert_ok(vhdx_vhd_locator_check(&h, 3, 0));
	/* unknown codes are bounds-checked too, and named by their characters */
	h.locators[5] = (struct vhdx_vhd_locator){ .code = 0x41424344, .data_length = 10, .data_offset = 100 };
	assert_fails(vhdx_vhd_locator_check(&h, 5, 50), -EBADMSG, "entry 5 (ABCD)");
}

static void test_locator_paths(void **state)
{
	char *s = NULL;

	{
		/* ".\fat-parent.vhd" as stored by diskpart: UTF-16LE, no NUL */
		const char *ascii = ".\\fat-parent.vhd";
		uint8_t le[64];
		size_t n = strlen(ascii);
		for (size_t i = 0; i < n; i++)
			vhdx_put_le16(le + 2 * i, (uint16_t)ascii[i]);
		assert_ok(vhdx_vhd_locator_path(VHD_PLAT_W2RU, le, 2 * n, &s));
		assert_string_equal(s, ".\\fat-parent.vhd");
		free(s);
		/* with NUL padding after it (data length = data space) */
		memset(le + 2 * n, 0, sizeof le - 2 * n);
		assert_ok(vhdx_vhd_locator_path(VHD_PLAT_W2KU, le, sizeof le, &s));
		assert_string_equal(s, ".\\fat-parent.vhd");
		free(s);
		/* an odd length drops the dangling byte */
		assert_ok(vhdx_vhd_locator_path(VHD_PLAT_W2KU, le, 2 * n + 1, &s));
		assert_string_equal(s, ".\\fat-parent.vhd");
		free(s);
	}
	{
		static const uint8_t bad[] = { 0x00, 0xdc, 'a', 0 };
		assert_int_equal(vhdx_vhd_locator_path(VHD_PLAT_W2RU, bad, sizeof bad, &s), -EBADMSG);
	}
	{
		/* deprecated single-byte forms: ASCII, and Latin-1 above 0x7f */
		static const uint8_t wi2k[] = { 'C', ':', '\\', 'd', 0xe9, '.', 'v', 'h', 'd', 0, 0, 0 };
		assert_ok(vhdx_vhd_locator_path(VHD_PLAT_WI2K, wi2k, sizeof wi2k, &s));
		assert_string_equal(s, "C:\\d\xc3\xa9.vhd");
		free(s);
		assert_ok(vhdx_vhd_locator_path(VHD_PLAT_WI2R, (const uint8_t *)"..\\p.vhd", 8, &s));
		assert_string_equal(s, "..\\p.vhd");
		free(s);
	}
	{
		static const uint8_t url[] = "file://localhost/Users/x/p\xc3\xa9.vhd";
		static const uint8_t bad[] = { 'f', 0xc3, 0x28, 0 };
		static const uint8_t cut[] = { 'f', 0xe2, 0x82 };
		assert_ok(vhdx_vhd_locator_path(VHD_PLAT_MACX, url, sizeof url, &s));
		assert_string_equal(s, (const char *)url);
		free(s);
		assert_int_equal(vhdx_vhd_locator_path(VHD_PLAT_MACX, bad, sizeof bad, &s), -EBADMSG);
		assert_int_equal(vhdx_vhd_locator_path(VHD_PLAT_MACX, cut, sizeof cut, &s), -EBADMSG);
	}
	/* a Mac alias blob and unknown codes are not paths */
	assert_int_equal(vhdx_vhd_locator_path(VHD_PLAT_MAC, (const uint8_t *)"abc", 3, &s), -ENOTSUP);
	assert_int_equal(vhdx_vhd_locator_path(0x12345678, (const uint8_t *)"abc", 3, &s), -ENOTSUP);
}

static void test_fourcc(void **state)
{
	char cc[5];

	vhdx_vhd_fourcc(VHD_PLAT_W2RU, cc);
	assert_string_equal(cc, "W2ru");
	vhdx_vhd_fourcc(VHD_PLAT_MAC, cc);
	assert_string_equal(cc, "Mac ");
	vhdx_vhd_fourcc(0x64327600, cc); /* Disk2VHD's creator "d2v\0" */
	assert_string_equal(cc, "d2v ");
	vhdx_vhd_fourcc(0x01ff4142, cc);
	assert_string_equal(cc, "??AB");
}

static void test_chs(void **state)
{
	/* geometries stored by the tools that wrote the conformance images */
	static const struct {
		uint64_t size;
		unsigned c, h, s;
	} known[] = {
		{ 6291456, 180, 4, 17 },                 /* win11-fixed-6M.vhd (Windows 11) */
		{ 10485760, 301, 4, 17 },                /* win10-*-10M.vhd (Windows 10) */
		{ 4194304, 120, 4, 17 },                 /* diskpart-fat-differencing-orphan.vhd */
		{ 4212736, 121, 4, 17 },                 /* qemu-ext2.vhd */
		{ 136365211648ull, 65278, 16, 255 },     /* hyperv2012r2 / virtualpc 127G */
	};
	struct vhdx_vhd_chs g;

	for (size_t i = 0; i < VHDX_ARRAY_LEN(known); i++) {
		vhdx_vhd_chs_calc(known[i].size, &g);
		if (g.cylinders != known[i].c || g.heads != known[i].h || g.sectors_per_track != known[i].s)
			fail_msg("size %llu: got %u/%u/%u, expected %u/%u/%u", (unsigned long long)known[i].size,
				 g.cylinders, g.heads, g.sectors_per_track, known[i].c, known[i].h, known[i].s);
		/* the size CHS implies never exceeds the size asked for */
		assert_true(vhdx_vhd_chs_size(g.cylinders, g.heads, g.sectors_per_track) <= known[i].size);
	}
	/* the 127 GiB images: current size 136365211648, CHS size 136363130880 */
	assert_true(vhdx_vhd_chs_size(65278, 16, 255) == 136363130880ull);
	assert_true(vhdx_vhd_chs_size(180, 4, 17) == 6266880);
	/* the cap: anything above 65535/16/255 gets exactly that */
	vhdx_vhd_chs_calc(UINT64_MAX, &g);
	assert_int_equal(g.cylinders, 65535);
	assert_int_equal(g.heads, 16);
	assert_int_equal(g.sectors_per_track, 255);
	vhdx_vhd_chs_calc(2040ull << 30, &g);
	assert_int_equal(g.cylinders, 65535);
	/* tiny and empty disks do not divide by zero */
	vhdx_vhd_chs_calc(0, &g);
	assert_int_equal(g.cylinders, 0);
	assert_int_equal(g.heads, 4);
	assert_int_equal(g.sectors_per_track, 17);
}

static void test_bitmap(void **state)
{
	/* MSB-first: sector 0 is bit 7 of byte 0 */
	uint8_t bm[8] = { 0x80, 0x00, 0xff, 0xff, 0x0f, 0x00, 0x00, 0x01 };
	bool v;

	assert_true(vhdx_vhd_bitmap_bit(bm, 0));
	assert_false(vhdx_vhd_bitmap_bit(bm, 7));
	assert_true(vhdx_vhd_bitmap_bit(bm, 16));
	assert_true(vhdx_vhd_bitmap_bit(bm, 63));
	assert_false(vhdx_vhd_bitmap_bit(bm, 62));

	assert_int_equal(vhdx_vhd_bitmap_run(bm, 0, 64, &v), 1);
	assert_true(v);
	assert_int_equal(vhdx_vhd_bitmap_run(bm, 1, 64, &v), 15); /* sectors 1..15 clear */
	assert_false(v);
	assert_int_equal(vhdx_vhd_bitmap_run(bm, 16, 64, &v), 16); /* two 0xff bytes */
	assert_true(v);
	assert_int_equal(vhdx_vhd_bitmap_run(bm, 20, 64, &v), 12);
	assert_int_equal(vhdx_vhd_bitmap_run(bm, 32, 64, &v), 4); /* 0x0f: four clear, four set */
	assert_false(v);
	assert_int_equal(vhdx_vhd_bitmap_run(bm, 36, 64, &v), 4);
	assert_true(v);
	assert_int_equal(vhdx_vhd_bitmap_run(bm, 40, 64, &v), 23); /* up to the last bit */
	assert_false(v);
	assert_int_equal(vhdx_vhd_bitmap_run(bm, 63, 64, &v), 1);
	assert_true(v);
	/* the limit stops a run, inside a byte and inside a skipped byte */
	assert_int_equal(vhdx_vhd_bitmap_run(bm, 1, 5, &v), 4);
	assert_int_equal(vhdx_vhd_bitmap_run(bm, 16, 27, &v), 11);
	assert_int_equal(vhdx_vhd_bitmap_run(bm, 40, 41, &v), 1);

	/* brute force against the bit accessor on a pseudo-random bitmap */
	{
		uint8_t r[64];
		uint32_t x = 12345;
		for (size_t i = 0; i < sizeof r; i++) {
			x = x * 1103515245 + 12345;
			r[i] = (i % 5 == 0) ? 0xff : (i % 7 == 0) ? 0 : (uint8_t)(x >> 16);
		}
		for (uint64_t first = 0; first < 512; first += 3) {
			for (uint64_t limit = first + 1; limit <= 512; limit += 37) {
				uint64_t want = 0;
				bool b = vhdx_vhd_bitmap_bit(r, first);
				while (first + want < limit && vhdx_vhd_bitmap_bit(r, first + want) == b)
					want++;
				assert_int_equal(vhdx_vhd_bitmap_run(r, first, limit, &v), want);
				assert_int_equal(v, b);
			}
		}
	}

	/* bitmap sizes: one bit per sector, rounded up to a sector */
	assert_int_equal(vhdx_vhd_bitmap_size(2 << 20), 512);
	assert_int_equal(vhdx_vhd_bitmap_size(4096), 512);
	assert_int_equal(vhdx_vhd_bitmap_size(4 << 20), 1024);
	assert_int_equal(vhdx_vhd_bitmap_size(256u << 20), 65536);
}

static void test_uuid(void **state)
{
	/* the parent unique id of diskpart-fat-differencing-orphan.vhd, as stored */
	static const uint8_t raw[16] = { 0x5f, 0xa2, 0x1a, 0x55, 0xf3, 0x94, 0xaa, 0x4d,
					 0x99, 0x58, 0x19, 0x51, 0xa6, 0x7d, 0x55, 0x40 };
	uint8_t g[16], back[16];
	char s[VHDX_GUID_STRLEN];

	vhdx_vhd_uuid_to_guid(raw, g);
	vhdx_guid_format(g, s);
	assert_string_equal(s, "5fa21a55-f394-aa4d-9958-1951a67d5540");
	vhdx_vhd_uuid_to_guid(g, back);
	assert_memory_equal(back, raw, 16);
	/* in place */
	memcpy(back, raw, 16);
	vhdx_vhd_uuid_to_guid(back, back);
	assert_memory_equal(back, g, 16);
	/* the VHD epoch */
	assert_true(vhdx_vhd_time_to_unix(0) == 946684800ull);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_footer_windows),
	  cmocka_unit_test(test_footer_broken_fields),
	  cmocka_unit_test(test_footer_encode_roundtrip),
	  cmocka_unit_test(test_checksum),
	  cmocka_unit_test(test_dynhdr_windows),
	  cmocka_unit_test(test_dynhdr_broken_fields),
	  cmocka_unit_test(test_dynhdr_size_coverage),
	  cmocka_unit_test(test_parent_name_utf16be),
	  cmocka_unit_test(test_locator_bounds),
	  cmocka_unit_test(test_locator_paths),
	  cmocka_unit_test(test_fourcc),
	  cmocka_unit_test(test_chs),
	  cmocka_unit_test(test_bitmap),
	  cmocka_unit_test(test_uuid))
