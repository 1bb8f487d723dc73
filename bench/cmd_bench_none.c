/*
 * cmd_bench_none.c - `vhdx bench` where it cannot be built (Windows): it
 * needs POSIX facilities the Windows C runtime lacks (fork/wait, getrusage, FUSE),
 * so this build only says so.  Built instead of the real command (see the
 * [port] lines of Makefile.am).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tool.h"

int cmd_bench(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: vhdx bench ...\n\nNot available in this build (Windows).\n");
		return 0;
	}
	tool_error("bench", "not available in this build (Windows)");
	return 1;
}
