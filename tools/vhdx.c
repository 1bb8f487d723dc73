/*
 * vhdx.c - entry point of the `vhdx` command: global options, then one
 * subcommand from the table below.
 */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tool.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "info", cmd_info, "show the format, geometry, headers, regions, metadata, log and chain of an image" },
	{ "map", cmd_map, "list the extents of the virtual disk: data (which layer, file offset) or zero" },
	{ "convert", cmd_convert, "convert between raw, VHDX and VHD; flatten a chain into one image" },
	{ "replay", cmd_replay, "replay a dirty VHDX log into the file and clear it (opens read-write)" },
	{ "create", cmd_create, "create a fixed, dynamic or differencing image" },
	{ "write", cmd_write, "write standard input into the virtual disk at an offset" },
	{ "hash", cmd_hash, "XXH3 digests of every block and of the whole disk (a manifest)" },
	{ "verify", cmd_verify, "check an image against a manifest made by 'vhdx hash'" },
	{ "diff", cmd_diff, "list the ranges where two images (or two layers) differ" },
	{ "cycle", cmd_cycle, "repeat a backup agent's cycle with faults (cycle mount: scratch disk; cycle checkpoint)" },
	{ "merge", cmd_merge, "write a child layer (and those between) into an ancestor, crash-safe" },
	{ "reparent", cmd_reparent, "point a differencing image at a moved or renamed parent" },
	{ "compact", cmd_compact, "stop storing all-zero blocks, move blocks down, shrink the file (Optimize-VHD)" },
	{ "resize", cmd_resize, "change the virtual size of an image in place, crash-safe" },
	{ "check", cmd_check, "check every structure of an image (--repair: fix what can be fixed, crash-safe)" },
	{ "bench", cmd_bench, "measure speed figures against the raw file, qemu-img, vhdimount, xxhsum" },
	{ "mount", cmd_mount, "mount the file systems of a disk's partitions under DIR in one step (vhdxfs + loop/ntfs-3g)" },
	{ "umount", cmd_umount, "undo 'vhdx mount': unmount in reverse order, detach, end vhdxfs (also after a crash)" },
	{ "checkpoints", cmd_checkpoints, "report the chains of a folder: depths, forks, broken links, leftovers; cleanup commands" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vhdx [--version] [--help] [--faults RULES [--fault-log FILE]] COMMAND [OPTIONS] IMAGE...\n\n"
		   "Read, check and convert VHDX, AVHDX and VHD virtual disk images.  An IMAGE (or a\n"
		   "parent) may be a file or an NBD URI: nbd://HOST/EXPORT, nbds://..., or\n"
		   "nbd+unix:///EXPORT?socket=PATH (its relative parents are exports of the same server).\n\n"
		   "Global options (before COMMAND):\n"
		   "  --faults RULES     inject the I/O faults of the rules file RULES into every image the\n"
		   "                     command opens (rule language: see libvhdx(3), 'Fault injection')\n"
		   "  --fault-log FILE   at the end, write the rules with their hit counts and every\n"
		   "                     injected fault to FILE ('-': standard error)\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'vhdx COMMAND --help' for the options of a command.\n"
		   "Exit status: 0 success, 1 error (message on stderr), 2 usage error, 3 problems found.\n");
}

int main(int argc, char **argv)
{
	int first = tool_global_options(argc, argv); /* --faults RULES ... (faults_opt.c) */

	if (first < 0)
		return tool_faults_finish(-first);
	argc -= first - 1; /* from here on argv[1] is the command */
	argv += first - 1;
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("vhdx (libvhdx) %s\n", vhdx_version());
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name)) {
			/* --json: one JSON document on stdout, an error object when the command fails (json_error.c) */
			for (int a = 2; a < argc && strcmp(argv[a], "--"); a++)
				if (!strcmp(argv[a], "--json"))
					tool_json_mode(true);
			return tool_faults_finish(tool_json_finish(commands[i].fn(argc - 1, argv + 1)));
		}
	tool_error(NULL, "unknown command '%s'", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
