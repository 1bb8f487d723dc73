/*
 * cmd_mount_none.c - `vhdx mount` and `vhdx umount` where they cannot run
 * (Windows builds): they drive vhdxfs (FUSE), mount and losetup, so this
 * build only says so.  Built instead of tools/cmd_mount.c and
 * tools/mount_sys.c (see the [port] lines of Makefile.am).
 */
#include "config.h"

#include "tool.h"

/* Both commands mount through vhdxfs: one reason for both. */
static int not_here(const char *cmd, int argc, char **argv)
{
	return tool_not_built(cmd, argc, argv, "Not available in this build: it mounts through vhdxfs (FUSE, Linux).",
			      "not available in this build (it mounts through vhdxfs, FUSE on Linux)");
}

int cmd_mount(int argc, char **argv)
{
	return not_here("mount", argc, argv);
}

int cmd_umount(int argc, char **argv)
{
	return not_here("umount", argc, argv);
}
