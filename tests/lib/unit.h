/*
 * unit.h - what every cmocka unit test (tests/unit/test_*.c) includes:
 * cmocka with the headers it needs first, and assertions on the
 * -errno + vhdx_errmsg() convention of the library (DESIGN.md
 * "Conventions"): a failing call must return the exact code and leave a
 * message that names the structure, field or offset at fault.
 */
#ifndef VHDX_TESTS_UNIT_H
#define VHDX_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

/* Fails the test unless vhdx_errmsg() contains SUB (and prints it otherwise). */
#define assert_errmsg_contains(sub)                                                                       \
	do {                                                                                              \
		const char *m_ = vhdx_errmsg();                                                           \
		if (!strstr(m_, (sub)))                                                                   \
			fail_msg("error message \"%s\" does not mention \"%s\"", m_, (sub));              \
	} while (0)

/*
 * Evaluates CALL after clearing the message; fails unless it returns
 * exactly EXPECTED (a negative errno) and the message contains SUB
 * (NULL: no message check).
 */
#define assert_fails(call, expected, sub)                                                                 \
	do {                                                                                              \
		int r_;                                                                                   \
		vhdx_err_clear();                                                                         \
		r_ = (call);                                                                              \
		if (r_ != (expected))                                                                     \
			fail_msg("%s returned %d (%s), expected %d; message: \"%s\"", #call, r_,          \
				 r_ < 0 ? strerror(-r_) : "success", (int)(expected), vhdx_errmsg());     \
		if ((sub) != NULL)                                                                        \
			assert_errmsg_contains((const char *)(sub));                                      \
	} while (0)

/* Fails unless CALL returns 0 (printing the message otherwise). */
#define assert_ok(call)                                                                                   \
	do {                                                                                              \
		int r_;                                                                                   \
		vhdx_err_clear();                                                                         \
		r_ = (call);                                                                              \
		if (r_ != 0)                                                                              \
			fail_msg("%s returned %d (%s): \"%s\"", #call, r_, r_ < 0 ? strerror(-r_) : "?",  \
				 vhdx_errmsg());                                                          \
	} while (0)

/* Removes the scratch folder DIR and all in it (a test's tear-down); 0 on success, else -1. */
static inline int unit_tmpdir_remove(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * A case of a table of tests that are the same steps on other inputs: one
 * test function FN, listed as NAME, finds ARG in *state.
 */
#define unit_test_case(name, fn, arg) { (name), (fn), NULL, NULL, (void *)(arg) }

/*
 * The whole main() of a unit test that needs nothing around its group:
 * runs the tests listed (cmocka_unit_test(...) and its variants) as one
 * cmocka group with GROUP_SETUP and GROUP_TEARDOWN (NULL for none).
 */
#define UNIT_MAIN(group_setup, group_teardown, ...)                                                        \
	int main(void)                                                                                    \
	{                                                                                                 \
		const struct CMUnitTest tests[] = { __VA_ARGS__ };                                        \
		return cmocka_run_group_tests(tests, group_setup, group_teardown);                        \
	}

#endif /* VHDX_TESTS_UNIT_H */
