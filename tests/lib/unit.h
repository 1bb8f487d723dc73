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

/*
 * Runs the N test functions FNS as one cmocka group named "tests", each
 * under its name from NAMES (the functions' names, comma-separated, as
 * UNIT_MAIN_TESTS writes them) and between SETUP and TEARDOWN (NULL: none).
 */
static inline int unit_run_tests(const char *names, const CMUnitTestFunction *fns, size_t n, CMFixtureFunction setup,
				 CMFixtureFunction teardown, CMFixtureFunction group_setup,
				 CMFixtureFunction group_teardown)
{
	struct CMUnitTest *tests = calloc(n, sizeof *tests);
	char *words = strdup(names), *p = words;
	int rc;

	if (tests == NULL || words == NULL) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		p += strspn(p, ", \t\n");
		tests[i].name = p;
		tests[i].test_func = fns[i];
		tests[i].setup_func = setup;
		tests[i].teardown_func = teardown;
		p += strcspn(p, ", \t\n");
		if (*p)
			*p++ = '\0';
	}
	rc = _cmocka_run_group_tests("tests", tests, n, group_setup, group_teardown);
	free(words);
	free(tests);
	return rc;
}

#define UNIT_MAIN_RUN_(setup, teardown, group_setup, group_teardown, ...)                                  \
	int main(void)                                                                                    \
	{                                                                                                 \
		const CMUnitTestFunction fns[] = { __VA_ARGS__ };                                         \
		return unit_run_tests(#__VA_ARGS__, fns, sizeof fns / sizeof fns[0], setup, teardown,     \
				      group_setup, group_teardown);                                       \
	}

/* UNIT_MAIN for a group of plain test functions, listed by their names alone. */
#define UNIT_MAIN_TESTS(group_setup, group_teardown, ...) UNIT_MAIN_RUN_(NULL, NULL, group_setup, group_teardown, __VA_ARGS__)

/* The same, each test run between SETUP and TEARDOWN (its fixture in *state). */
#define UNIT_MAIN_EACH(setup, teardown, ...) UNIT_MAIN_RUN_(setup, teardown, NULL, NULL, __VA_ARGS__)

#endif /* VHDX_TESTS_UNIT_H */
