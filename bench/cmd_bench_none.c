/*
 * cmd_bench_none.c - `vhdx bench` where it cannot be built (Windows): it
 * needs POSIX facilities the Windows C runtime lacks (fork/wait, getrusage, FUSE),
 * so this build only says so.  Built instead of the real command (see the
 * [port] lines of Makefile.am).
 */
#include "config.h"

#include "tool.h"

int cmd_bench(int argc, char **argv)
{
	return tool_not_built("bench", argc, argv, "Not available in this build (Windows).",
			      "not available in this build (Windows)");
}
