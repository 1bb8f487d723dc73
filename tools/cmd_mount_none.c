/*
 * cmd_mount_none.c - `vhdx mount` and `vhdx umount` where they cannot run
 * (Windows builds): they drive vhdxfs (FUSE), mount and losetup, so this
 * build only says so.  Built instead of tools/cmd_mount.c and
 * tools/mount_sys.c (see the [port] lines of Makefile.am).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tool.h"

/* The shared body: --help prints a line, anything else is an error. */
static int not_here(const char *cmd, int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("Usage: vhdx %s ...\n\nNot available in this build: it mounts through vhdxfs (FUSE, Linux).\n", cmd);
		return 0;
	}
	tool_error(cmd, "not available in this build (it mounts through vhdxfs, FUSE on Linux)");
	return 1;
}

int cmd_mount(int argc, char **argv)
{
	return not_here("mount", argc, argv);
}

int cmd_umount(int argc, char **argv)
{
	return not_here("umount", argc, argv);
}
