/*
 * test_error.c - error.c: the per-thread message behind vhdx_errmsg(),
 * vhdx_err() returning -errno, vhdx_err_prefix() adding context, and
 * vhdx_calloc() refusing an overflowing size.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>

#include "lib/unit.h"

static void test_err_returns_negative(void **state)
{
	assert_int_equal(vhdx_err(EBADMSG, "BAT entry %d at 0x%x: bad", 17, 0x300008), -EBADMSG);
	assert_string_equal(vhdx_errmsg(), "BAT entry 17 at 0x300008: bad");
	assert_int_equal(vhdx_err(ENOTSUP, "x"), -ENOTSUP);
	assert_string_equal(vhdx_errmsg(), "x");
}

static void test_prefix(void **state)
{
	vhdx_err(EBADMSG, "header: CRC-32C mismatch");
	assert_int_equal(vhdx_err_prefix(-EBADMSG, "%s", "a.vhdx"), -EBADMSG);
	assert_int_equal(vhdx_err_prefix(-EBADMSG, "layer %u", 2), -EBADMSG);
	assert_string_equal(vhdx_errmsg(), "layer 2: a.vhdx: header: CRC-32C mismatch");
	/* without a message the prefix is followed by strerror */
	vhdx_err_clear();
	assert_string_equal(vhdx_errmsg(), "");
	vhdx_err_prefix(-ENOENT, "p");
	assert_string_equal(vhdx_errmsg(), "p: No such file or directory");
}

static void test_truncation(void **state)
{
	char big[10000];

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	vhdx_err(EIO, "%s", big);
	assert_true(strlen(vhdx_errmsg()) < sizeof big - 1);
	vhdx_err_prefix(-EIO, "prefix");
	assert_true(strncmp(vhdx_errmsg(), "prefix: xxx", 11) == 0);
	assert_true(strlen(vhdx_errmsg()) < sizeof big - 1);
}

static void test_dup(void **state)
{
	char *d;

	vhdx_err_clear();
	assert_null(vhdx_err_dup());
	vhdx_err(EBADMSG, "abc");
	d = vhdx_err_dup();
	assert_non_null(d);
	assert_string_equal(d, "abc");
	vhdx_err(EBADMSG, "def");
	assert_string_equal(d, "abc");
	free(d);
}

static void *other_thread(void *arg)
{
	/* a fresh thread starts with no message, and its messages stay its own */
	strcpy(arg, vhdx_errmsg());
	vhdx_err(EIO, "from the other thread");
	return NULL;
}

static void test_thread_local(void **state)
{
	char seen[64] = "unset";
	pthread_t t;

	vhdx_err(EBADMSG, "main thread");
	assert_int_equal(pthread_create(&t, NULL, other_thread, seen), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(seen, "");
	assert_string_equal(vhdx_errmsg(), "main thread");
}

static void test_vhdx_calloc(void **state)
{
	void *p = vhdx_calloc(SIZE_MAX / 2, 4);

	assert_null(p);
	p = vhdx_calloc(0, 8); /* non-NULL even for zero elements */
	assert_non_null(p);
	free(p);
	p = vhdx_calloc(16, 8);
	assert_non_null(p);
	for (int i = 0; i < 128; i++)
		assert_int_equal(((unsigned char *)p)[i], 0);
	free(p);
}

static void test_overflow_helpers(void **state)
{
	uint64_t r;

	assert_false(vhdx_add_ovf(1, 2, &r));
	assert_true(r == 3);
	assert_true(vhdx_add_ovf(UINT64_MAX, 1, &r));
	assert_true(vhdx_mul_ovf(1ull << 32, 1ull << 32, &r));
	assert_true(vhdx_range_ok(0, 10, 10));
	assert_false(vhdx_range_ok(1, 10, 10));
	assert_false(vhdx_range_ok(UINT64_MAX - 1, 4, UINT64_MAX));
	assert_true(vhdx_ranges_overlap(0, 10, 9, 1));
	assert_false(vhdx_ranges_overlap(0, 10, 10, 1));
	assert_false(vhdx_ranges_overlap(0, 0, 0, 1));
	assert_true(vhdx_is_pow2(1u << 20));
	assert_false(vhdx_is_pow2(0));
	assert_false(vhdx_is_pow2(3u << 20));
	assert_true(vhdx_div_round_up(1, 512) == 1);
	assert_true(vhdx_round_up(513, 512) == 1024);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_err_returns_negative), cmocka_unit_test(test_prefix),
	  cmocka_unit_test(test_truncation),           cmocka_unit_test(test_dup),
	  cmocka_unit_test(test_thread_local),         cmocka_unit_test(test_vhdx_calloc),
	  cmocka_unit_test(test_overflow_helpers))
