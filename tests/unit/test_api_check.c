/*
 * test_api_check.c - vhdx_check() (libvhdx/api_check.c) through the public
 * header alone: its callbacks and counts on a clean file vhdx_create()
 * writes and on that file with its first header damaged, before and after
 * VHDX_CHECK_REPAIR.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "lib/api_chain.h"

static struct api_chain ch;

static int setup(void **st)
{
	return api_chain_make(&ch, "api-check");
}

static int teardown(void **st)
{
	return api_chain_remove(&ch);
}

struct seen {
	unsigned problems, problems_after, repaired;
};

static void on_problem(void *ctx, int after, const struct vhdx_check_problem *p)
{
	struct seen *s = ctx;

	if (after)
		s->problems_after++;
	else
		s->problems++;
	assert_non_null(p->structure);
	assert_non_null(p->message);
}

static void on_repaired(void *ctx, const struct vhdx_check_event *e)
{
	((struct seen *)ctx)->repaired++;
}

static void check_counts_and_callbacks(void **st)
{
	struct vhdx_check_options o;
	struct vhdx_check_counts c = { .struct_size = sizeof c };
	struct seen s = { 0 };
	uint8_t junk[64];
	FILE *f;

	vhdx_check_options_init(&o);
	o.ctx = &s;
	o.problem = on_problem;
	o.repaired = on_repaired;
	assert_ok(vhdx_check(ch.base, &o, &c));
	assert_string_equal(c.format, "vhdx");
	assert_int_equal(c.errors + c.warnings, 0);
	assert_int_equal(s.problems, 0);
	/* break header 1 (at 64 KiB): its checksum no longer matches */
	memset(junk, 0x5a, sizeof junk);
	f = fopen(ch.base, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 64 * 1024 + 8, SEEK_SET), 0);
	assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
	assert_int_equal(fclose(f), 0);
	assert_ok(vhdx_check(ch.base, &o, &c));
	assert_true(c.errors >= 1);
	assert_int_equal(s.problems, c.errors + c.warnings);
	/* the repair restores it from header 2 and checks again */
	s.problems = 0;
	o.flags = VHDX_CHECK_REPAIR;
	assert_ok(vhdx_check(ch.base, &o, &c));
	assert_true(c.repairs >= 1);
	assert_int_equal(s.repaired, c.repairs);
	assert_int_equal(c.errors_after + c.warnings_after, 0);
	assert_int_equal(s.problems_after, 0);
	memset(&s, 0, sizeof s);
	o.flags = 0;
	assert_ok(vhdx_check(ch.base, &o, &c));
	assert_int_equal(c.errors + c.warnings, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_counts_and_callbacks),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
