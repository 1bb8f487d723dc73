/*
 * options.c - the option loop every subcommand runs.  Each command answers
 * -h/--help with its help on standard output, an unknown option with its
 * help on standard error (exit 2), and a wrong number of operands with
 * "expected ..." or its help; most take --json and the chain options.
 * Handling those here keeps their behaviour one and the same in every
 * command.
 */
#include "config.h"

#include <getopt.h>

#include "tool.h"

/* The command returns RC without looking at more options. */
static int stop(struct tool_cmd *tc, int rc)
{
	tc->stopped = true;
	tc->rc = rc;
	return -1;
}

int tool_getopt(struct tool_cmd *tc, int argc, char **argv)
{
	int c;

	if (!tc->started) {
		/* vhdx.c parsed its global options with getopt before: start over */
		optind = 1;
		tc->started = true;
	}
	while ((c = getopt_long(argc, argv, tc->shortopts, tc->longopts, NULL)) != -1) {
		if (tc->open) {
			int h = tool_open_option(tc->open, c, optarg, tc->name);

			if (h < 0)
				return stop(tc, EXIT_USAGE);
			if (h)
				continue;
		}
		if (c == OPT_JSON && tc->json) {
			*tc->json = true;
		} else if (tc->progress && (c == 'p' || c == OPT_NO_PROGRESS)) {
			*tc->progress = c == 'p';
		} else if (c == 'h' || c == '?') {
			/* getopt said what was wrong with an unknown option; the help shows what is right */
			tc->help(c == 'h' ? stdout : stderr);
			return stop(tc, c == 'h' ? EXIT_OK : EXIT_USAGE);
		} else {
			return c;
		}
	}
	return -1;
}

bool tool_operands(struct tool_cmd *tc, int argc, int n, const char *what)
{
	if (tc->stopped)
		return true;
	if (argc - optind == n)
		return false;
	if (what)
		tool_error(tc->name, "expected %s (see 'vhdx %s --help')", what, tc->name);
	else
		tc->help(stderr);
	tc->rc = EXIT_USAGE;
	return true;
}
