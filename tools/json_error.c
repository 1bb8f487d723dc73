/*
 * json_error.c - errors as JSON (issue #17 item 11): with --json, standard
 * output holds exactly one JSON document whatever happens.  One place for
 * every command:
 *
 *   - tool_error() and tool_lib_error() remember the first error (its
 *     message and errno: the library's for a failed library call, EINVAL
 *     for a usage or argument error);
 *   - report_init() / report_finish() in JSON mode tell this file when a
 *     report is open and when it is complete; the commands that print
 *     their JSON by hand call tool_json_printed();
 *   - at the end, vhdx.c calls tool_json_finish(RC): a failed command that
 *     printed nothing prints {"error": {"errno": "ENOENT", "message":
 *     "..."}}; one that failed inside an open report closes it with that
 *     "error" member (as the last element when the report is a list); the
 *     exit status does not change.
 * The messages still go to standard error as without --json.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tool.h"

static bool json_mode;
static bool json_complete;         /* a whole JSON document is on standard output */
static struct report *json_open;   /* a JSON report begun and not finished */
static int first_errno;            /* of the first error, 0 when none */
static char first_msg[2048];
static int pending_errno;          /* set by tool_lib_error for the tool_error it calls */

void tool_json_mode(bool on)
{
	/* a fresh start: no error, no document yet */
	json_mode = on;
	report_set_json_hooks(on ? tool_json_report_begun : NULL, on ? tool_json_report_done : NULL);
	json_complete = false;
	json_open = NULL;
	first_errno = pending_errno = 0;
	first_msg[0] = '\0';
}

/* The errno whose strerror() ends MSG ("...: No such file or directory"), or 0. */
static int errno_of_message(const char *msg)
{
	size_t n = strlen(msg);

	for (int e = 1; e < 200; e++) {
		const char *s = strerror(e);
		size_t k = strlen(s);

		if (k && k < n && !strcmp(msg + n - k, s) && !strncmp(msg + n - k - 2, ": ", 2))
			return e;
	}
	return 0;
}

void tool_json_note_error(const char *msg)
{
	if (!json_mode || first_errno)
		return;
	first_errno = pending_errno ? pending_errno : errno_of_message(msg);
	if (!first_errno)
		first_errno = EINVAL; /* a usage or argument error */
	snprintf(first_msg, sizeof first_msg, "%s", msg);
}

void tool_json_set_errno(int err)
{
	pending_errno = err;
}

void tool_json_report_begun(struct report *r)
{
	json_open = r;
}

void tool_json_report_done(struct report *r)
{
	if (json_open == r)
		json_open = NULL;
	json_complete = true;
}

void tool_json_printed(void)
{
	json_complete = true;
}

const char *tool_errno_name(int err, char *buf, size_t n)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
	const char *name = strerrorname_np(err);

	if (name)
		return name;
#endif
	if (err == EINVAL)
		return "EINVAL";
	snprintf(buf, n, "errno %d", err);
	return buf;
}

/* {"errno": "ENOENT", "message": "..."} as the value of the current member of R's stream. */
static void error_object(FILE *f, int rc)
{
	char nb[24];
	int err = first_errno ? first_errno : rc == EXIT_USAGE ? EINVAL : EIO;

	fputs("{\"errno\":", f);
	json_write_string(f, tool_errno_name(err, nb, sizeof nb));
	fputs(",\"message\":", f);
	json_write_string(f, first_errno ? first_msg
					 : rc == EXIT_USAGE ? "usage error (see the command's --help)" : "failed");
	fputc('}', f);
}

void report_error(struct report *r, int err, const char *msg)
{
	char nb[24];

	if (!r->json)
		return;
	report_begin(r, "error");
	report_str(r, "errno", tool_errno_name(err, nb, sizeof nb));
	report_str(r, "message", msg);
	report_end(r);
}

void tool_json_error_element(FILE *f, bool after_another, int rc)
{
	fputs(after_another ? ",{\"error\":" : "{\"error\":", f);
	error_object(f, rc);
	fputs("}]\n", f);
	fflush(f);
	json_complete = true;
}

int tool_json_finish(int rc)
{
	if (!json_mode || rc == EXIT_OK)
		return rc;
	if (json_open && json_open->depth > 0) {
		/* close what is open, then the error in the outermost container */
		struct report *r = json_open;

		while (r->depth > 1)
			r->in_array[r->depth] ? report_end_list(r) : report_end(r);
		if (r->depth == 1) {
			bool list = r->in_array[1];

			if (!r->first[1])
				fputc(',', r->f);
			fputs(list ? "{\"error\":" : "\"error\":", r->f);
			error_object(r->f, rc);
			fputs(list ? "}]" : "}", r->f);
			r->depth = 0;
		}
		fputc('\n', r->f);
		fflush(r->f);
		json_open = NULL;
		return rc;
	}
	json_open = NULL;
	if (json_complete)
		return rc; /* the report says what went wrong (exit 3: problems found) */
	fputs("{\"error\":", stdout);
	error_object(stdout, rc);
	fputs("}\n", stdout);
	fflush(stdout);
	return rc;
}
