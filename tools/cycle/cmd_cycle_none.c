/*
 * cmd_cycle_none.c - `vhdx cycle` where it cannot run (Windows builds):
 * the cycle mounts images through vhdxfs (FUSE) and forks workloads, so
 * this build only says so.  Built instead of tools/cycle/cmd_cycle.c and
 * tools/cycle/cycle_*.c (see the [port] lines of Makefile.am).
 */
#include "config.h"

#include "tool.h"

int cmd_cycle(int argc, char **argv)
{
	return tool_not_built("cycle", argc, argv,
			      "Not available in this build: vhdx cycle mounts images through vhdxfs (FUSE, Linux).",
			      "not available in this build (it mounts images through vhdxfs, FUSE on Linux)");
}
