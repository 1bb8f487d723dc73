/*
 * cmd_cycle_none.c - `vhdx cycle` where it cannot run (Windows builds):
 * the cycle mounts images through vhdxfs (FUSE) and forks workloads, so
 * this build only says so.  Built instead of tools/cycle/cmd_cycle.c and
 * tools/cycle/cycle_*.c (see the [port] lines of Makefile.am).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tool.h"

int cmd_cycle(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: vhdx cycle ...\n\n"
		       "Not available in this build: vhdx cycle mounts images through vhdxfs (FUSE, Linux).\n");
		return 0;
	}
	tool_error("cycle", "not available in this build (it mounts images through vhdxfs, FUSE on Linux)");
	return 1;
}
