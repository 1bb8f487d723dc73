/*
 * test_vhdx_locator.c - codec/vhdx_locator.c: the VHDX parent locator
 * item (MS-VHDX 2.6.2.6, FORMAT.md 1.8).  Items are laid out by hand here
 * (ASCII keys and values widened to UTF-16LE), so decode is checked
 * against an independent writer, then every bound is broken in turn.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_codec.h"
#include "codec/vhdx_locator.h"

#define PARENT_GUID "{a1b2c3d4-e5f6-4789-8abc-def012345678}"

struct kv {
	const char *key, *value;
};

static uint8_t item[8192];

/* Widens ASCII S into UTF-16LE at P; returns the byte count. */
static size_t put_ascii16(uint8_t *p, const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++)
		vhdx_put_le16(p + 2 * i, (uint8_t)s[i]);
	return 2 * n;
}

/* Lays out N pairs like Hyper-V: header, entry array, then key/value strings. Returns the item length. */
static size_t build(const struct kv *kv, size_t n)
{
	size_t pos = 20 + 12 * n;

	memset(item, 0, sizeof item);
	memcpy(item, VHDX_GUID_PARENT_LOCATOR_TYPE, 16);
	vhdx_put_le16(item + 18, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = item + 20 + 12 * i;
		size_t kl = put_ascii16(item + pos, kv[i].key);
		vhdx_put_le32(e, (uint32_t)pos);
		vhdx_put_le16(e + 8, (uint16_t)kl);
		pos += kl;
		size_t vl = put_ascii16(item + pos, kv[i].value);
		vhdx_put_le32(e + 4, (uint32_t)pos);
		vhdx_put_le16(e + 10, (uint16_t)vl);
		pos += vl;
	}
	return pos;
}

static const struct kv hyperv[] = {
	{ "parent_linkage", PARENT_GUID },
	{ "parent_linkage2", "{00000000-0000-0000-0000-000000000000}" },
	{ "absolute_win32_path", "\\\\?\\C:\\VMs\\disks\\base.vhdx" },
	{ "volume_path", "\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\VMs\\disks\\base.vhdx" },
	{ "relative_path", "..\\disks\\base.vhdx" },
};

/* Decodes the item built from KV[0..N) into REF: it must decode, with parent_linkage PARENT_GUID. */
static void decode_parent_guid(const struct kv *kv, size_t n, struct vhdx_parent_ref *ref)
{
	size_t len = build(kv, n);
	uint8_t expect[16];

	assert_ok(vhdx_locator_decode(item, len, ref));
	assert_ok(vhdx_guid_parse(PARENT_GUID, expect));
	assert_memory_equal(ref->linkage, expect, 16);
}

static void test_decode_hyperv(void **state)
{
	struct vhdx_parent_ref ref;

	decode_parent_guid(hyperv, VHDX_ARRAY_LEN(hyperv), &ref);
	/* an all-zero parent_linkage2 is no second value */
	assert_false(ref.has_linkage2);
	/* paths in resolution order, whatever the stored order */
	assert_int_equal(ref.n_paths, 3);
	assert_string_equal(ref.paths[0].key, "relative_path");
	assert_string_equal(ref.paths[0].value, "..\\disks\\base.vhdx");
	assert_string_equal(ref.paths[1].key, "volume_path");
	assert_string_equal(ref.paths[1].value,
			    "\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\VMs\\disks\\base.vhdx");
	assert_string_equal(ref.paths[2].key, "absolute_win32_path");
	assert_string_equal(ref.paths[2].value, "\\\\?\\C:\\VMs\\disks\\base.vhdx");
	vhdx_parent_ref_free(&ref);
	assert_null(ref.paths);
}

static void test_linkage2_and_single_path(void **state)
{
	static const struct kv kv[] = {
		{ "relative_path", "base.vhdx" },
		{ "parent_linkage2", "{11111111-2222-3333-4444-555555555555}" },
		{ "parent_linkage", "A1B2C3D4-E5F6-4789-8ABC-DEF012345678" }, /* no braces, upper case */
	};
	struct vhdx_parent_ref ref;
	uint8_t expect[16];

	decode_parent_guid(kv, VHDX_ARRAY_LEN(kv), &ref);
	assert_true(ref.has_linkage2);
	assert_ok(vhdx_guid_parse("11111111-2222-3333-4444-555555555555", expect));
	assert_memory_equal(ref.linkage2, expect, 16);
	assert_int_equal(ref.n_paths, 1);
	assert_string_equal(ref.paths[0].key, "relative_path");
	vhdx_parent_ref_free(&ref);
}

static void test_list(void **state)
{
	size_t len = build(hyperv, VHDX_ARRAY_LEN(hyperv)), n = 0;
	struct vhdx_locator_kv *kv = NULL;

	assert_ok(vhdx_locator_list(item, len, &kv, &n));
	assert_int_equal(n, VHDX_ARRAY_LEN(hyperv));
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(kv[i].key, hyperv[i].key);
		assert_string_equal(kv[i].value, hyperv[i].value);
	}
	vhdx_locator_kv_free(kv, n);
	/* no entries at all lists fine (decode then wants parent_linkage) */
	len = build(NULL, 0);
	assert_ok(vhdx_locator_list(item, len, &kv, &n));
	assert_int_equal(n, 0);
	vhdx_locator_kv_free(kv, n);
}

static void test_bad_header(void **state)
{
	size_t len = build(hyperv, VHDX_ARRAY_LEN(hyperv));
	struct vhdx_parent_ref ref;

	assert_fails(vhdx_locator_decode(item, 19, &ref), -EBADMSG, "19 bytes is shorter than its 20-byte header");
	item[0] ^= 1;
	assert_fails(vhdx_locator_decode(item, len, &ref), -ENOTSUP,
		     "locator type b04aefb6-d19e-4a81-b789-25b8e9445913 is not");
	item[0] ^= 1;
	vhdx_put_le16(item + 18, 257);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "257 key/value entries exceed the limit of 256");
	/* the entry array must fit */
	vhdx_put_le16(item + 18, 5);
	assert_fails(vhdx_locator_decode(item, 20 + 12 * 5 - 1, &ref), -EBADMSG,
		     "5 key/value entries do not fit in the 79-byte item");
}

static void test_offsets_outside(void **state)
{
	size_t len = build(hyperv, 1);
	struct vhdx_parent_ref ref;
	uint8_t *e = item + 20;
	uint32_t koff = vhdx_get_le32(e), voff = vhdx_get_le32(e + 4);

	/* value running one byte past the item */
	assert_fails(vhdx_locator_decode(item, len - 1, &ref), -EBADMSG, "entry 0: value at offset");
	assert_errmsg_contains("lies outside the");
	/* key offset past the end */
	vhdx_put_le32(e, (uint32_t)len);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "entry 0: key at offset");
	/* key inside the 20-byte header */
	vhdx_put_le32(e, 4);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "key at offset 4");
	vhdx_put_le32(e, koff);
	/* huge offset: no overflow */
	vhdx_put_le32(e + 4, 0xfffffffeu);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "value at offset 4294967294");
	/* restored, it lists again */
	vhdx_put_le32(e + 4, voff);
	{
		struct vhdx_locator_kv *kv = NULL;
		size_t n = 0;
		assert_ok(vhdx_locator_list(item, len, &kv, &n));
		assert_int_equal(n, 1);
		assert_string_equal(kv[0].value, PARENT_GUID);
		vhdx_locator_kv_free(kv, n);
	}
}

static void test_zero_lengths(void **state)
{
	size_t len = build(hyperv, 2);
	struct vhdx_parent_ref ref;
	uint8_t *e1 = item + 20 + 12;

	vhdx_put_le16(e1 + 8, 0);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "entry 1: key offset");
	assert_errmsg_contains("must be non-zero");
	len = build(hyperv, 2);
	vhdx_put_le16(e1 + 10, 0);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "entry 1: value offset");
	len = build(hyperv, 2);
	vhdx_put_le32(e1 + 4, 0);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "value offset 0");
	/* an odd length is not UTF-16 */
	len = build(hyperv, 2);
	vhdx_put_le16(e1 + 8, 3);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "entry 1: key at offset");
	assert_errmsg_contains("not valid UTF-16");
}

static void test_bad_strings(void **state)
{
	size_t len = build(hyperv, 2);
	struct vhdx_parent_ref ref;
	uint8_t *e0 = item + 20;
	uint32_t voff = vhdx_get_le32(e0 + 4);

	/* an embedded NUL in a value */
	vhdx_put_le16(item + voff + 4, 0);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "entry 0: value at offset");
	assert_errmsg_contains("not valid UTF-16 without NUL");
	/* a lone surrogate in a key */
	len = build(hyperv, 2);
	vhdx_put_le16(item + vhdx_get_le32(e0), 0xd800);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "entry 0: key at offset");
}

static void test_duplicate_keys(void **state)
{
	static const struct kv kv[] = {
		{ "parent_linkage", PARENT_GUID },
		{ "relative_path", "a.vhdx" },
		{ "relative_path", "b.vhdx" },
	};
	size_t len = build(kv, VHDX_ARRAY_LEN(kv));
	struct vhdx_parent_ref ref;

	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "entry 2: key \"relative_path\" appears twice");
	/* keys are case-sensitive: these are different keys */
	{
		static const struct kv kv2[] = {
			{ "parent_linkage", PARENT_GUID },
			{ "relative_path", "a.vhdx" },
			{ "Relative_Path", "b.vhdx" },
		};
		len = build(kv2, VHDX_ARRAY_LEN(kv2));
		assert_ok(vhdx_locator_decode(item, len, &ref));
		assert_int_equal(ref.n_paths, 1);
		assert_string_equal(ref.paths[0].value, "a.vhdx");
		vhdx_parent_ref_free(&ref);
	}
}

static void test_missing_keys(void **state)
{
	static const struct kv no_linkage[] = { { "relative_path", "a.vhdx" }, { "volume_path", "b" } };
	static const struct kv only_linkage2[] = { { "parent_linkage2", PARENT_GUID }, { "relative_path", "a" } };
	static const struct kv no_path[] = { { "parent_linkage", PARENT_GUID }, { "other", "x" } };
	struct vhdx_parent_ref ref;
	size_t len;

	len = build(no_linkage, 2);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "the required parent_linkage key is missing");
	assert_null(ref.paths);
	len = build(only_linkage2, 2);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "parent_linkage key is missing");
	len = build(no_path, 2);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG,
		     "none of relative_path, volume_path, absolute_win32_path is present");
	assert_int_equal(ref.n_paths, 0);
}

static void test_bad_guid_text(void **state)
{
	static const struct kv bad1[] = { { "parent_linkage", "{a1b2c3d4-e5f6-4789-8abc-def01234567}" },
					  { "relative_path", "a" } };
	static const struct kv bad2[] = { { "parent_linkage", PARENT_GUID },
					  { "parent_linkage2", "not-a-guid" },
					  { "relative_path", "a" } };
	struct vhdx_parent_ref ref;
	size_t len;

	len = build(bad1, 2);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG, "entry 0: parent_linkage value");
	assert_errmsg_contains("is not a GUID");
	len = build(bad2, 3);
	assert_fails(vhdx_locator_decode(item, len, &ref), -EBADMSG,
		     "entry 1: parent_linkage2 value \"not-a-guid\" is not a GUID");
}

static void test_count_limit(void **state)
{
	static char keys[257][8];
	const char *k[257], *v[257];
	uint8_t *out = NULL;
	size_t outlen = 0, n = 0;
	struct vhdx_locator_kv *kv = NULL;
	struct vhdx_parent_ref ref;

	for (int i = 0; i < 257; i++) {
		snprintf(keys[i], sizeof keys[i], "k%d", i);
		k[i] = keys[i];
		v[i] = "v";
	}
	k[0] = "parent_linkage";
	v[0] = PARENT_GUID;
	k[1] = "relative_path";
	v[1] = "p.vhdx";
	/* 256 pairs: the limit, accepted */
	assert_ok(vhdx_locator_encode(k, v, 256, &out, &outlen));
	assert_ok(vhdx_locator_list(out, outlen, &kv, &n));
	assert_int_equal(n, 256);
	vhdx_locator_kv_free(kv, n);
	assert_ok(vhdx_locator_decode(out, outlen, &ref));
	vhdx_parent_ref_free(&ref);
	free(out);
	/* 257 pairs: the encoder refuses (a patched count of 257 is refused by test_bad_header) */
	assert_int_equal(vhdx_locator_encode(k, v, 257, &out, &outlen), -EINVAL);
}

static void test_encode_round_trip(void **state)
{
	const char *k[] = { "parent_linkage", "relative_path", "absolute_win32_path" };
	const char *v[] = { PARENT_GUID, "..\\p\xc3\xa4rent \xf0\x9f\x98\x80.vhdx", "\\\\?\\D:\\x.vhdx" };
	uint8_t *out = NULL;
	size_t outlen = 0, hand_len;
	struct vhdx_parent_ref ref;

	assert_ok(vhdx_locator_encode(k, v, 3, &out, &outlen));
	assert_memory_equal(out, VHDX_GUID_PARENT_LOCATOR_TYPE, 16);
	assert_int_equal(vhdx_get_le16(out + 18), 3);
	assert_ok(vhdx_locator_decode(out, outlen, &ref));
	assert_int_equal(ref.n_paths, 2);
	assert_string_equal(ref.paths[0].value, v[1]);
	assert_string_equal(ref.paths[1].value, v[2]);
	vhdx_parent_ref_free(&ref);
	free(out);

	/* for ASCII pairs the encoder's layout is byte-identical to the hand layout */
	{
		const char *k2[] = { "parent_linkage", "relative_path" };
		const char *v2[] = { PARENT_GUID, "base.vhdx" };
		struct kv kv2[] = { { k2[0], v2[0] }, { k2[1], v2[1] } };
		assert_ok(vhdx_locator_encode(k2, v2, 2, &out, &outlen));
		hand_len = build(kv2, 2);
		assert_int_equal(outlen, hand_len);
		assert_memory_equal(out, item, hand_len);
		free(out);
	}
	/* empty keys or values cannot be encoded */
	{
		const char *k3[] = { "" };
		const char *v3[] = { "x" };
		assert_int_equal(vhdx_locator_encode(k3, v3, 1, &out, &outlen), -EINVAL);
		k3[0] = "x";
		v3[0] = "";
		assert_int_equal(vhdx_locator_encode(k3, v3, 1, &out, &outlen), -EINVAL);
	}
}

UNIT_MAIN_TESTS(NULL, NULL,
		test_decode_hyperv, test_linkage2_and_single_path, test_list, test_bad_header, test_offsets_outside,
		test_zero_lengths, test_bad_strings, test_duplicate_keys, test_missing_keys, test_bad_guid_text,
		test_count_limit, test_encode_round_trip)
