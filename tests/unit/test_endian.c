/*
 * test_endian.c - codec/endian.h: little- and big-endian field access
 * built from shifts must give the documented byte order at every
 * alignment, independent of the host's byte order.
 */
#include "config.h"

#include "lib/unit.h"
#include "codec/endian.h"

static const uint8_t seq8[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

/* One byte order's readers and what each must give for the bytes of seq8. */
struct get_case {
	uint16_t (*get16)(const uint8_t *p);
	uint32_t (*get32)(const uint8_t *p);
	uint64_t (*get64)(const uint8_t *p);
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;
};

/* the same 8 bytes at every offset 0..7 of a buffer: alignment must not matter */
static void check_get(const struct get_case *c)
{
	uint8_t buf[32];

	for (size_t off = 0; off < 8; off++) {
		memset(buf, 0xee, sizeof buf);
		memcpy(buf + off, seq8, 8);
		assert_int_equal(c->get16(buf + off), c->v16);
		assert_int_equal(c->get32(buf + off), c->v32);
		assert_true(c->get64(buf + off) == c->v64);
	}
}

static void test_get_le(void **state)
{
	static const struct get_case le = { vhdx_get_le16, vhdx_get_le32, vhdx_get_le64,
					    0x2301, 0x67452301u, 0xefcdab8967452301ull };
	check_get(&le);
}

static void test_get_be(void **state)
{
	static const struct get_case be = { vhdx_get_be16, vhdx_get_be32, vhdx_get_be64,
					    0x0123, 0x01234567u, 0x0123456789abcdefull };
	check_get(&be);
}

/* One byte order's writers and the bytes each must store for 0x1234, 0x12345678, 0x123456789abcdef0. */
struct put_case {
	void (*put16)(uint8_t *p, uint16_t v);
	void (*put32)(uint8_t *p, uint32_t v);
	void (*put64)(uint8_t *p, uint64_t v);
	uint8_t b16[2], b32[4], b64[8];
};

static const struct put_case put_le = {
	vhdx_put_le16, vhdx_put_le32, vhdx_put_le64,
	{ 0x34, 0x12 }, { 0x78, 0x56, 0x34, 0x12 }, { 0xf0, 0xde, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12 },
};
static const struct put_case put_be = {
	vhdx_put_be16, vhdx_put_be32, vhdx_put_be64,
	{ 0x12, 0x34 }, { 0x12, 0x34, 0x56, 0x78 }, { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0 },
};

/* the three fields back to back at every offset 0..7, and nothing written outside them */
static void check_put(const struct put_case *c)
{
	uint8_t buf[32], guard[32];

	for (size_t off = 0; off < 8; off++) {
		memset(buf, 0xee, sizeof buf);
		memset(guard, 0xee, sizeof guard);
		c->put16(buf + off, 0x1234);
		assert_memory_equal(buf + off, c->b16, 2);
		c->put32(buf + off + 2, 0x12345678u);
		assert_memory_equal(buf + off + 2, c->b32, 4);
		c->put64(buf + off + 6, 0x123456789abcdef0ull);
		assert_memory_equal(buf + off + 6, c->b64, 8);
		assert_memory_equal(buf, guard, off);
		assert_memory_equal(buf + off + 14, guard, sizeof buf - off - 14);
	}
}

static void test_put_le(void **state)
{
	check_put(&put_le);
}

static void test_put_be(void **state)
{
	check_put(&put_be);
}

/* put then get gives the value back, for values with the top bit set too */
static void test_round_trip(void **state)
{
	static const uint64_t vals[] = { 0, 1, 0x80, 0xff, 0x8000, 0xffff, 0x80000000u, 0xffffffffu,
					 0x8000000000000000ull, 0xffffffffffffffffull, 0x0123456789abcdefull };
	uint8_t buf[24];

	for (size_t i = 0; i < VHDX_ARRAY_LEN(vals); i++) {
		for (size_t off = 0; off < 8; off++) {
			uint64_t v = vals[i];
			vhdx_put_le16(buf + off, (uint16_t)v);
			assert_int_equal(vhdx_get_le16(buf + off), (uint16_t)v);
			vhdx_put_be16(buf + off, (uint16_t)v);
			assert_int_equal(vhdx_get_be16(buf + off), (uint16_t)v);
			vhdx_put_le32(buf + off, (uint32_t)v);
			assert_int_equal(vhdx_get_le32(buf + off), (uint32_t)v);
			vhdx_put_be32(buf + off, (uint32_t)v);
			assert_int_equal(vhdx_get_be32(buf + off), (uint32_t)v);
			vhdx_put_le64(buf + off, v);
			assert_true(vhdx_get_le64(buf + off) == v);
			vhdx_put_be64(buf + off, v);
			assert_true(vhdx_get_be64(buf + off) == v);
		}
	}
	/* LE and BE of the same value are byte-reversed */
	vhdx_put_le64(buf, 0x0102030405060708ull);
	vhdx_put_be64(buf + 8, 0x0102030405060708ull);
	for (int i = 0; i < 8; i++)
		assert_int_equal(buf[i], buf[15 - i]);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_get_le),  cmocka_unit_test(test_get_be),
	  cmocka_unit_test(test_put_le),  cmocka_unit_test(test_put_be),
	  cmocka_unit_test(test_round_trip))
