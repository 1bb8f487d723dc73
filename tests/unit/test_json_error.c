/*
 * test_json_error.c - tools/json_error.c: with --json a failed command
 * leaves exactly one JSON document on standard output (issue #17 item 11):
 * an error object alone, an open report closed with an "error" member (or
 * a last list element), a complete report left alone; errno names.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "tool.h"

struct vhdx_faults *tool_faults; /* util.c's tool_open_init refers to it (faults_opt.c in the command) */

/* Runs FN with standard output in a temporary file; returns what it printed (malloc'd). */
static char *capture(void (*fn)(void))
{
	char path[] = "/tmp/vhdx-json-XXXXXX";
	int fd = mkstemp(path), saved = dup(1);
	char *buf = calloc(1, 65536);

	assert_true(fd >= 0 && saved >= 0 && buf);
	fflush(stdout);
	dup2(fd, 1);
	fn();
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	assert_true(pread(fd, buf, 65535, 0) >= 0);
	close(fd);
	unlink(path);
	return buf;
}

static int rc_seen;

/* Runs FN: it must print exactly WANT and return WANT_RC (into rc_seen). */
static void expect_output(void (*fn)(void), int want_rc, const char *want)
{
	char *out = capture(fn);

	assert_int_equal(rc_seen, want_rc);
	assert_string_equal(out, want);
	free(out);
}

/* Turns --json on and opens a report on standard output, as the commands do. */
static void json_report_begin(struct report *r)
{
	tool_json_mode(true);
	report_init(r, stdout, true);
	report_begin(r, NULL);
}

static void nothing_printed(void)
{
	tool_json_mode(true);
	tool_json_set_errno(ENOENT);
	tool_error("info", "x.vhdx: cannot open: No such file or directory");
	tool_json_set_errno(0);
	rc_seen = tool_json_finish(EXIT_ERR);
}

static void open_report(void)
{
	struct report r;

	json_report_begin(&r);
	report_u64(&r, "a", 1);
	report_begin_list(&r, "rounds");
	report_begin(&r, NULL);
	report_u64(&r, "round", 1);
	tool_error("cycle", "disk: No space left on device"); /* errno from the message */
	rc_seen = tool_json_finish(EXIT_ERR);
}

static void complete_report(void)
{
	struct report r;

	json_report_begin(&r);
	report_bool(&r, "clean", false);
	report_end(&r);
	report_finish(&r);
	rc_seen = tool_json_finish(EXIT_PROBLEMS);
}

/* What a command does, the exit code it must return and the exact output it must leave. */
struct json_case {
	void (*run)(void);
	int rc;
	const char *output;
};

static const struct json_case error_alone = {
	nothing_printed, EXIT_ERR,
	"{\"error\":{\"errno\":\"ENOENT\",\"message\":\"x.vhdx: cannot open: No such file or directory\"}}\n"
};
static const struct json_case open_report_closed = {
	open_report, EXIT_ERR,
	"{\"a\":1,\"rounds\":[{\"round\":1}],\"error\":{\"errno\":\"ENOSPC\",\"message\":\"disk: No space left on device\"}}\n"
};
static const struct json_case complete_report_alone = { complete_report, EXIT_PROBLEMS, "{\"clean\":false}\n" };

static void test_output(void **state)
{
	const struct json_case *c = *state;

	expect_output(c->run, c->rc, c->output);
}

static void usage_error(void)
{
	tool_json_mode(true);
	rc_seen = tool_json_finish(EXIT_USAGE);
}

static void test_usage_without_message(void **state)
{
	char *out = capture(usage_error);

	(void)state;
	assert_int_equal(rc_seen, EXIT_USAGE);
	assert_non_null(strstr(out, "\"errno\":\"EINVAL\""));
	free(out);
}

static void test_errno_names(void **state)
{
	char nb[24];

	(void)state;
	assert_string_equal(tool_errno_name(ENOENT, nb, sizeof nb), "ENOENT");
	assert_string_equal(tool_errno_name(EBADMSG, nb, sizeof nb), "EBADMSG");
	assert_string_equal(tool_errno_name(EINVAL, nb, sizeof nb), "EINVAL");
}

UNIT_MAIN(NULL, NULL,
	  unit_test_case("test_error_alone", test_output, &error_alone),
	  unit_test_case("test_open_report_closed", test_output, &open_report_closed),
	  unit_test_case("test_complete_report_alone", test_output, &complete_report_alone),
	  cmocka_unit_test(test_usage_without_message),
	  cmocka_unit_test(test_errno_names))
