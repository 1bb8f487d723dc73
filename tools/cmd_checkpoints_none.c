/*
 * cmd_checkpoints_none.c - `vhdx checkpoints` where it cannot be built (Windows): it
 * needs POSIX facilities the Windows C runtime lacks (open_memstream),
 * so this build only says so.  Built instead of the real command (see the
 * [port] lines of Makefile.am).
 */
#include "config.h"

#include "tool.h"

int cmd_checkpoints(int argc, char **argv)
{
	return tool_not_built("checkpoints", argc, argv, "Not available in this build (Windows).",
			      "not available in this build (Windows)");
}
