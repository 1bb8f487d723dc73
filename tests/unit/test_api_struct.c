/*
 * test_api_struct.c - the versioned option structs of the public API
 * (api_struct.c, vhdx_struct_copy_in): each call accepts exactly the
 * oldest struct_size it always accepted and refuses one byte less with
 * EINVAL naming the call, before it touches any file.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "libvhdx.h"

#define MISSING "/nonexistent-libvhdx-unit/disk.vhdx"

/* Fails unless the last call's message does not speak of struct_size (the size was accepted). */
static void assert_size_accepted(int ret)
{
	if (strstr(vhdx_errmsg(), "struct_size"))
		fail_msg("returned %d: \"%s\"", ret, vhdx_errmsg());
}

/* Each call with its options at SIZE bytes, on a missing file. */
static int open_at(size_t size)
{
	struct vhdx_open_options o;
	struct vhdx_image *img = NULL;

	vhdx_open_options_init(&o);
	o.struct_size = size;
	return vhdx_open(MISSING, &o, &img);
}

static int merge_at(size_t size)
{
	struct vhdx_merge_options o;

	vhdx_merge_options_init(&o);
	o.struct_size = size;
	return vhdx_merge(MISSING, &o);
}

static int compact_at(size_t size)
{
	struct vhdx_compact_options o;

	vhdx_compact_options_init(&o);
	o.struct_size = size;
	return vhdx_compact(MISSING, &o, NULL);
}

static int resize_at(size_t size)
{
	struct vhdx_resize_options o;

	vhdx_resize_options_init(&o);
	o.struct_size = size;
	return vhdx_resize(MISSING, 1ull << 20, &o, NULL);
}

/* The oldest struct_size each call accepts: one byte less is EINVAL. */
static void test_minimum_sizes(void **state)
{
	static const struct {
		const char *fn;
		int (*call)(size_t size);
		size_t min;
	} calls[] = {
		{ "vhdx_open", open_at, offsetof(struct vhdx_open_options, flags) + sizeof(unsigned) },
		{ "vhdx_merge", merge_at, offsetof(struct vhdx_merge_options, flags) + sizeof(unsigned) },
		{ "vhdx_compact", compact_at, sizeof(size_t) },
		{ "vhdx_resize", resize_at, sizeof(size_t) },
	};
	char msg[80];

	(void)state;
	for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
		snprintf(msg, sizeof msg, "%s: options struct_size %zu is too small", calls[i].fn, calls[i].min - 1);
		assert_fails(calls[i].call(calls[i].min - 1), -EINVAL, msg);
		vhdx_err_clear();
		assert_size_accepted(calls[i].call(calls[i].min));
	}
}

static void test_create(void **state)
{
	struct vhdx_create_options o;
	size_t min = offsetof(struct vhdx_create_options, flags);
	char path[] = "/tmp/libvhdx-unit-api-XXXXXX", file[64], msg[80];

	(void)state;
	assert_non_null(mkdtemp(path));
	snprintf(file, sizeof file, "%s/new.vhdx", path);
	vhdx_create_options_init(&o);
	o.virtual_size = 8ull << 20;
	o.block_size = 1u << 20;
	o.struct_size = min - 1;
	snprintf(msg, sizeof msg, "vhdx_create: options struct_size %zu is too small", min - 1);
	assert_fails(vhdx_create(file, &o), -EINVAL, msg);
	assert_int_equal(access(file, F_OK), -1);
	o.struct_size = min;
	assert_ok(vhdx_create(file, &o));
	assert_int_equal(unlink(file), 0);
	assert_int_equal(rmdir(path), 0);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_minimum_sizes),
	  cmocka_unit_test(test_create))
