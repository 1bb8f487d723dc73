/*
 * cmd_mount.c - `vhdx mount IMAGE DIR` and `vhdx umount DIR`: the volumes
 * of a disk image in one step, and back (issue #16).
 *
 * mount: reads the partition table (vhdx_partitions), mounts the chain with
 * vhdxfs at DIR/.disk (so DIR/.disk/p1... are the partitions' bytes), then
 * mounts each partition holding a file system it knows at DIR/pN: NTFS with
 * the kernel's ntfs3 where it exists (else ntfs-3g on the partition file);
 * ext2/3/4, XFS, FAT, exFAT and Btrfs with the kernel's driver on a loop
 * device over the partition file.  Read-only unless --rw, and a read-only
 * mount never replays a file-system journal into the image (ext: noload,
 * XFS: norecovery, Btrfs: rescue=nologreplay; the loop device and
 * vhdxfs are read-only too).  Everything else is skipped with one line
 * naming the partition file and the tool that opens it.
 *
 * umount: finds what lies under DIR in the kernel's tables (mounts, loop
 * devices over the files in DIR/.disk, the vhdxfs daemon) so that it also cleans up
 * after a killed `vhdx mount` or a killed vhdxfs; refuses, changing
 * nothing, while a process holds anything under DIR (and names it); else
 * unmounts the file systems newest first, detaches the loop devices,
 * unmounts vhdxfs and waits for it to close the image.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cycle/cycle.h"
#include "mount.h"
#include "parts.h"

/* What was done with one volume. */
struct vol {
	unsigned number;      /* 0: the whole disk */
	char file[PATH_MAX + 32];   /* DIR/.disk/pN */
	char target[PATH_MAX + 32]; /* DIR/pN */
	char fs[16], label[96];
	const char *driver;   /* "ntfs-3g", "ext4", ... or NULL when not mounted */
	char loop[32];        /* the loop device, "" if none */
	char *why;            /* not mounted: the reason and what to do (malloc'd) */
	bool failed;          /* a mount was tried and failed */
};

/* The kernel's file-system type and read-only options for what the probe found. */
static const struct {
	const char *fs, *type, *ro_opts;
} kernel_fs[] = {
	{ "ext2", "ext4", "ro,noload" },      { "ext3", "ext4", "ro,noload" },
	{ "ext4", "ext4", "ro,noload" },      { "xfs", "xfs", "ro,norecovery" },
	{ "fat12", "vfat", "ro" },            { "fat16", "vfat", "ro" },
	{ "fat32", "vfat", "ro" },            { "exfat", "exfat", "ro" },
	{ "btrfs", "btrfs", "ro,rescue=nologreplay" }, { "ntfs", "ntfs3", "ro" },
};

static bool kernel_has(const char *type)
{
	FILE *f = fopen("/proc/filesystems", "r");
	char line[128];
	bool yes = false;

	if (!f)
		return false;
	while (!yes && fgets(line, sizeof line, f)) {
		char *t = strrchr(line, '\t');

		t = t ? t + 1 : line;
		t[strcspn(t, "\n")] = '\0';
		yes = strcmp(t, type) == 0;
	}
	fclose(f);
	return yes;
}

static bool in_path(const char *prog)
{
	char *argv[] = { (char *)"sh", (char *)"-c", NULL, NULL }, cmd[256];

	snprintf(cmd, sizeof cmd, "command -v %s", prog);
	argv[2] = cmd;
	return mnt_run(argv, NULL) == 0;
}

/* True when PROG, as PATH finds it, runs as root whoever starts it (the set-user-ID bit of a root-owned file). */
static bool setuid_root(const char *prog)
{
	const char *path = getenv("PATH");
	char file[PATH_MAX];
	struct stat st;

	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(file, sizeof file, "%.*s/%s", (int)n, p, prog);
		if (n && access(file, X_OK) == 0 && stat(file, &st) == 0)
			return (st.st_mode & S_ISUID) && st.st_uid == 0;
		p += n + (p[n] == ':');
	}
	return false;
}

/* True when /etc/fuse.conf lets users mount with allow_other or allow_root. */
static bool fuse_user_allow_other(void)
{
	FILE *f = fopen("/etc/fuse.conf", "r");
	char line[256];
	bool yes = false;

	while (f && !yes && fgets(line, sizeof line, f)) {
		char *w = line + strspn(line, " \t");

		w[strcspn(w, " \t\r\n#")] = '\0';
		yes = strcmp(w, "user_allow_other") == 0;
	}
	if (f)
		fclose(f);
	return yes;
}

/*
 * Not root, with NTFS to mount: Debian's ntfs-3g is set-user-ID root, and a
 * FUSE mount lets no other user in, root included, so ntfs-3g could not open
 * the partition file of the user's vhdxfs.  vhdxfs lets root in (allow_root)
 * when /etc/fuse.conf allows it; else NTFS is skipped with what to do.
 * True when vhdxfs must be mounted with allow_root.
 */
static bool ntfs_needs_allow_root(const struct vhdx_partition_table *t, const struct vhdx_partition *parts)
{
	bool ntfs = t->scheme == VHDX_SCHEME_NONE && !strcmp(t->fs, "ntfs");

	for (unsigned i = 0; parts && i < t->count; i++)
		ntfs |= !strcmp(parts[i].fs, "ntfs");
	return ntfs && geteuid() != 0 && setuid_root("ntfs-3g") && fuse_user_allow_other();
}

/* Sets V->why to the formatted text. */
static void vol_skip(struct vol *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vol_skip(struct vol *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&v->why, fmt, ap) < 0)
		v->why = NULL;
	va_end(ap);
}

/*
 * Mounts V with DRIVER, a FUSE program that reads the file itself (no loop
 * device, so no root needed): true when mounted, else v->why says why.
 */
static bool vol_fuse_driver(struct vol *v, const char *driver, const char *opts)
{
	char *argv[] = { (char *)driver, (char *)"-o", (char *)opts, v->file, v->target, NULL };
	char *out = NULL;
	bool mounted = mnt_run(argv, &out) == 0;

	if (mounted)
		v->driver = driver;
	else if (asprintf(&v->why, "%s %s failed (%s)", driver, v->file, out && *out ? out : "no message") < 0)
		v->why = NULL;
	free(out);
	return mounted;
}

/* Mounts V (fs known) read-only or RW; on failure fills v->why and v->failed. */
static void vol_mount(struct vol *v, bool rw, bool root, bool root_may_open)
{
	const char *type = NULL, *ro_opts = NULL;
	char *out = NULL;
	int ret;

	for (size_t i = 0; i < sizeof kernel_fs / sizeof kernel_fs[0]; i++)
		if (!strcmp(kernel_fs[i].fs, v->fs)) {
			type = kernel_fs[i].type;
			ro_opts = kernel_fs[i].ro_opts;
		}
	if (!type) {
		vol_skip(v, "%s", "no driver known");
		return;
	}
	if (mkdir(v->target, 0755) < 0 && errno != EEXIST) {
		if (asprintf(&v->why, "cannot create %s: %s", v->target, strerror(errno)) < 0)
			v->why = NULL;
		v->failed = true;
		return;
	}
	/* NTFS: the kernel's ntfs3 when it has one (and we may mount), else ntfs-3g on the file itself */
	if (!strcmp(v->fs, "ntfs") && !root && !root_may_open && setuid_root("ntfs-3g")) {
		vol_skip(v, "NTFS without root: ntfs-3g runs as root here and FUSE lets root into your vhdxfs mount only "
			 "with user_allow_other in /etc/fuse.conf; add it (vhdx mount then mounts vhdxfs with allow_root), "
			 "or run vhdx mount as root; %s holds its bytes", v->file);
		rmdir(v->target);
		return;
	}
	if (!strcmp(v->fs, "ntfs") && !(root && kernel_has("ntfs3"))) {
		if (vol_fuse_driver(v, "ntfs-3g", rw ? "rw" : "ro"))
			return;
		goto failed;
	}
	if (!root) {
		if (!strncmp(v->fs, "ext", 3) && in_path("fuse2fs")) {
			if (vol_fuse_driver(v, "fuse2fs", rw ? "rw" : "ro,norecovery"))
				return;
			goto failed;
		}
		if (asprintf(&v->why, "%s needs a loop device: run vhdx mount as root", v->fs) < 0)
			v->why = NULL;
		rmdir(v->target);
		return;
	}
	{
		char *argv[] = { (char *)"losetup", (char *)"-f", (char *)"--show", (char *)"-r", v->file, NULL };

		if (rw) {
			argv[3] = v->file; /* no -r */
			argv[4] = NULL;
		}
		ret = mnt_run(argv, &out);
		if (ret != 0 || !out || strncmp(out, "/dev/loop", 9) != 0) {
			if (asprintf(&v->why, "losetup %s failed (%s)", v->file, out && *out ? out : "no message") < 0)
				v->why = NULL;
			goto failed;
		}
		snprintf(v->loop, sizeof v->loop, "%s", out);
		free(out);
		out = NULL;
	}
	{
		char *argv[] = { (char *)"mount", (char *)"-t", (char *)type, (char *)"-o", (char *)(rw ? "rw" : ro_opts),
				 v->loop, v->target, NULL };

		ret = mnt_run(argv, &out);
		if (ret == 0) {
			v->driver = type;
			free(out);
			return;
		}
		if (asprintf(&v->why, "mount -t %s -o %s %s (%s) failed (%s)", type, rw ? "rw" : ro_opts, v->loop, v->file,
			     out && *out ? out : "no message") < 0)
			v->why = NULL;
	}
	{
		char *argv[] = { (char *)"losetup", (char *)"-d", v->loop, NULL };

		mnt_run(argv, NULL);
		v->loop[0] = '\0';
	}
failed:
	free(out);
	rmdir(v->target);
	v->failed = true;
}

/* What to do with partition P (or the whole disk when P is NULL): mount it or say why not. */
static void vol_plan(struct vol *v, const struct vhdx_partition *p, const char *dir, bool rw, bool root,
		     bool root_may_open)
{
	const char *kind = p ? p->kind : "";

	if (p && (p->flags & VHDX_PARTITION_UNREADABLE)) {
		vol_skip(v, "its first bytes could not be read (see the partition table note): %s", "not mounted");
		v->failed = true;
	} else if (!strcmp(kind, "ldm"))
		vol_skip(v, "Windows dynamic disk (LDM): not mounted; ldmtool reads %s", "its volumes from .disk/disk");
	else if (!strcmp(kind, "storage-spaces"))
		vol_skip(v, "%s", "Storage Spaces: not mounted (no Linux driver)");
	else if (!strcmp(kind, "msr"))
		vol_skip(v, "%s", "Microsoft reserved partition: nothing to mount");
	else if (!strcmp(v->fs, "bitlocker"))
		vol_skip(v, "BitLocker: not mounted; unlock %s with dislocker", v->file);
	else if (!strcmp(v->fs, "luks"))
		vol_skip(v, "LUKS: not mounted; open %s with cryptsetup open", v->file);
	else if (!strcmp(v->fs, "lvm2"))
		vol_skip(v, "LVM physical volume: not mounted; attach %s with losetup, then vgchange -ay", v->file);
	else if (!strcmp(v->fs, "swap"))
		vol_skip(v, "%s", "swap: nothing to mount");
	else if (!strcmp(v->fs, "refs"))
		vol_skip(v, "ReFS: not mounted (no Linux driver); %s holds its bytes", v->file);
	else if (!v->fs[0])
		vol_skip(v, "unknown contents: not mounted; %s holds its bytes", v->file);
	else
		vol_mount(v, rw, root, root_may_open);
	(void)dir;
}

/* The command line of vhdxfs: its words, and the ones made for it (freed by argv_free). */
struct vargv {
	char *w[16 + 4 * 65];
	int n;
	char *made[4 * 65 + 8];
	int n_made;
};

/* Appends "-o NAME=VALUE" (VALUE escaped for libfuse; no "=VALUE" when NULL) to A. */
static void add_opt(struct vargv *a, const char *name, const char *value)
{
	size_t len = strlen(name) + 2 * (value ? strlen(value) : 0) + 2;
	char *s = malloc(len), *o;

	if (!s)
		return;
	o = s + sprintf(s, "%s%s", name, value ? "=" : "");
	for (; value && *value; value++) {
		if (*value == ',' || *value == '\\')
			*o++ = '\\';
		*o++ = *value;
	}
	*o = '\0';
	a->made[a->n_made++] = s;
	a->w[a->n++] = (char *)"-o";
	a->w[a->n++] = s;
}

static void argv_free(struct vargv *a)
{
	for (int i = 0; i < a->n_made; i++)
		free(a->made[i]);
	a->n_made = 0;
}

static void mount_help(FILE *f)
{
	fprintf(f, "Usage: vhdx mount [--rw] [--json] [--faults FILE [--fault-log FILE]] [CHAIN OPTIONS] IMAGE DIR\n\n"
		   "Mounts every file system of the disk IMAGE (its partitions, or a volume on the\n"
		   "whole disk) under DIR in one step:\n"
		   "  DIR/.disk       vhdxfs: .disk/disk is the whole disk, .disk/p1... each partition\n"
		   "  DIR/p1, p2...   the file system of partition 1, 2... (numbered as Linux does:\n"
		   "                  GPT entry index; MBR 1-4 primary, 5 and up logical)\n"
		   "  DIR/disk        a file system on the whole disk (no partition table)\n"
		   "NTFS: the kernel's ntfs3 where it has one, else ntfs-3g on the partition file.\n"
		   "ext2/3/4, XFS, FAT, exFAT, Btrfs: the kernel's driver on a loop device over the\n"
		   "partition file (root; ext without root: fuse2fs).  BitLocker, LUKS, LVM, LDM,\n"
		   "Storage Spaces, ReFS, swap and unknown contents are skipped with one line each\n"
		   "naming the partition file and the tool that opens it.  DIR is created when\n"
		   "missing and must be empty.  Undo with 'vhdx umount DIR'.\n\n"
		   "Read-only by default: nothing is written to any file, and no file-system\n"
		   "journal is replayed (ext: noload, XFS: norecovery, Btrfs: nologreplay).\n\n"
		   "  --rw            mount the file systems writable; only the chain's leaf is written\n"
		   "  --json          report what was mounted where as JSON\n"
		   "  --faults FILE   inject the I/O faults of FILE into vhdxfs (-o faults=FILE)\n"
		   "  --fault-log FILE  vhdxfs writes the rules' hit counts and every injected fault\n"
		   "                  to FILE when it ends (-o fault-log=FILE)\n"
		   "  --vhdxfs PATH   the vhdxfs program (default: beside vhdx, then $VHDXFS, then PATH)\n"
		   "  -h, --help      this text\n\n"
		   "Exit status: 0 every file system found was mounted (or skipped as above),\n"
		   "1 nothing was mounted (the message says why), 2 usage error, 3 some mount\n"
		   "failed (the others stay mounted; the report names it).\n\n" TOOL_OPEN_HELP);
}

/* The report of `vhdx mount`, text or JSON. */
static void mount_report(bool json, const char *image, const char *dir, bool rw, const char *disk_note,
			 const char *table_note, struct vol *vols, unsigned n)
{
	struct report r;

	if (!json) {
		printf("%s: vhdxfs (%s) on %s/%s\n", image, rw ? "read-write" : "read-only", dir, MNT_DISK_DIR);
		if (disk_note)
			printf("  partition table: %s\n", disk_note);
		if (table_note && *table_note)
			printf("  partition table note: %s\n", table_note);
		for (unsigned i = 0; i < n; i++) {
			const struct vol *v = &vols[i];
			const char *name = v->number ? NULL : "disk";
			char num[16];

			snprintf(num, sizeof num, "p%u", v->number);
			if (v->driver)
				printf("  %s: %s%s%s%s mounted on %s (%s%s%s)\n", name ? name : num, v->fs,
				       v->label[0] ? " \"" : "", v->label, v->label[0] ? "\"" : "", v->target, v->driver,
				       v->loop[0] ? " on " : "", v->loop);
			else
				printf("  %s: %s%s\n", name ? name : num, v->failed ? "FAILED: " : "", v->why ? v->why : "");
		}
		fflush(stdout);
		return;
	}
	tool_report_image(&r, true, image);
	report_str(&r, "dir", dir);
	report_bool(&r, "rw", rw);
	report_str(&r, "vhdxfs", MNT_DISK_DIR);
	if (disk_note)
		report_str(&r, "partition_table_error", disk_note);
	report_str(&r, "partition_table_note", table_note ? table_note : "");
	report_begin_list(&r, "volumes");
	for (unsigned i = 0; i < n; i++) {
		const struct vol *v = &vols[i];

		report_begin(&r, NULL);
		report_u64(&r, "number", v->number);
		report_str(&r, "file", v->file);
		report_str(&r, "fs", v->fs);
		report_str(&r, "label", v->label);
		report_bool(&r, "mounted", v->driver != NULL);
		if (v->driver) {
			report_str(&r, "mountpoint", v->target);
			report_str(&r, "driver", v->driver);
			report_str(&r, "loop", v->loop);
		} else {
			report_bool(&r, "failed", v->failed);
			report_str(&r, "reason", v->why ? v->why : "");
		}
		report_end(&r);
	}
	report_end_list(&r);
	report_end(&r);
	report_finish(&r);
}

/* True when DIR holds nothing (and is a directory). */
static bool dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool empty = true;

	if (!d)
		return false;
	while (empty && (e = readdir(d)) != NULL)
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(d);
	return empty;
}

/* DIR_ARG made when missing, as an absolute path (malloc'd); DISK gets DIR/.disk.  NULL after the message when DIR is not empty. */
static char *mount_dir(const char *dir_arg, char *disk, size_t n_disk)
{
	char *dir;

	if (mkdir(dir_arg, 0755) < 0 && errno != EEXIST) {
		tool_error("mount", "cannot create %s: %s", dir_arg, strerror(errno));
		return NULL;
	}
	dir = realpath(dir_arg, NULL);
	if (!dir) {
		tool_error("mount", "%s: %s", dir_arg, strerror(errno));
		return NULL;
	}
	snprintf(disk, n_disk, "%s/%s", dir, MNT_DISK_DIR);
	if (!dir_empty(dir)) {
		tool_error("mount", "%s is not empty%s", dir,
			   access(disk, F_OK) == 0 ? " (a vhdx mount is there: run 'vhdx umount' on it first)" : "");
		free(dir);
		return NULL;
	}
	return dir;
}

/* The open options of TO as vhdxfs -o options. */
static void add_open_opts(struct vargv *va, const struct tool_open *to)
{
	if (to->opts.parent)
		add_opt(va, "parent", to->opts.parent);
	for (unsigned i = 0; i < to->n_parent_dirs; i++)
		add_opt(va, "parent-dir", to->parent_dirs[i]);
	for (unsigned i = 0; i < to->n_path_maps; i++)
		add_opt(va, "path-map", to->path_maps[i]);
	if (to->opts.flags & VHDX_OPEN_IGNORE_ID_MISMATCH)
		add_opt(va, "ignore-id-mismatch", NULL);
	if (to->opts.flags & VHDX_OPEN_NO_PARENT)
		add_opt(va, "no-parent", NULL);
	if (to->opts.flags & VHDX_OPEN_SALVAGE)
		add_opt(va, "salvage", NULL);
	if (to->opts.max_depth) {
		char depth[16];

		snprintf(depth, sizeof depth, "%u", to->opts.max_depth);
		add_opt(va, "max-depth", depth);
	}
}

/*
 * Mounts each volume into VOLS: the whole disk's file system when T was
 * READ and holds no table, and each partition of PARTS but an extended
 * one.  The number of volumes.
 */
static unsigned plan_volumes(struct vol *vols, const struct vhdx_partition_table *t, bool read,
			     const struct vhdx_partition *parts, const char *disk, const char *dir, bool rw,
			     bool root_may_open)
{
	bool root = geteuid() == 0;
	unsigned n_vols = 0;

	if (read && t->scheme == VHDX_SCHEME_NONE && t->fs[0]) {
		struct vol *v = &vols[n_vols++];

		snprintf(v->file, sizeof v->file, "%s/disk", disk);
		snprintf(v->target, sizeof v->target, "%s/disk", dir);
		/* cut to the field as snprintf would (said explicitly: GCC cannot see T's lengths here) */
		snprintf(v->fs, sizeof v->fs, "%.*s", (int)sizeof v->fs - 1, t->fs);
		snprintf(v->label, sizeof v->label, "%.*s", (int)sizeof v->label - 1, t->label);
		vol_plan(v, NULL, dir, rw, root, root_may_open);
	}
	for (unsigned i = 0; parts && i < t->count; i++) {
		struct vol *v;

		if (parts[i].flags & VHDX_PARTITION_EXTENDED)
			continue;
		v = &vols[n_vols++];
		v->number = parts[i].number;
		snprintf(v->file, sizeof v->file, "%s/p%u", disk, v->number);
		snprintf(v->target, sizeof v->target, "%s/p%u", dir, v->number);
		snprintf(v->fs, sizeof v->fs, "%s", parts[i].fs);
		snprintf(v->label, sizeof v->label, "%s", parts[i].label);
		vol_plan(v, &parts[i], dir, rw, root, root_may_open);
	}
	return n_vols;
}

int cmd_mount(int argc, char **argv)
{
	enum { OPT_RW = OPT__NEXT, OPT_FAULTS, OPT_FAULT_LOG, OPT_VHDXFS };
	static const struct option longopts[] = {
		{ "rw", no_argument, NULL, OPT_RW },
		TOOL_JSON_LONGOPT,
		{ "faults", required_argument, NULL, OPT_FAULTS },
		{ "fault-log", required_argument, NULL, OPT_FAULT_LOG },
		{ "vhdxfs", required_argument, NULL, OPT_VHDXFS },
		TOOL_IMAGE_LONGOPTS_END,
	};
	struct tool_open to;
	struct vhdx_image *img = NULL;
	struct vhdx_partition_table t = { 0 };
	struct vhdx_partition *parts = NULL;
	struct vol *vols = NULL;
	char *image = NULL, *dir = NULL, *vhdxfs = NULL, *out = NULL, *table_err = NULL, *faults = NULL;
	char *fault_log = NULL;
	const char *vhdxfs_opt = NULL;
	char disk[PATH_MAX];
	struct vargv va = { .n = 0 };
	bool rw = false, json = false, allow_root = false;
	unsigned n_vols = 0, failed = 0;
	int c, ret, status = EXIT_ERR;
	struct tool_cmd tc = { .name = "mount", .help = mount_help, .shortopts = "h", .longopts = longopts,
			       .open = &to, .json = &json };

	tool_open_init(&to);
	while ((c = tool_getopt(&tc, argc, argv)) != -1) {
		switch (c) {
		case OPT_RW: rw = true; break;
		case OPT_FAULTS: faults = optarg; break;
		case OPT_FAULT_LOG: fault_log = optarg; break;
		case OPT_VHDXFS: vhdxfs_opt = optarg; break;
		}
	}
	if (tool_operands(&tc, argc, 2, "IMAGE and DIR"))
		return tc.rc;
	if (to.opts.flags & VHDX_OPEN_NO_REPLAY) {
		tool_error("mount", "--no-replay is not a mount option (vhdxfs replays a dirty log in memory when read-only)");
		return EXIT_USAGE;
	}
	image = realpath(argv[optind], NULL);
	if (!image) {
		tool_error("mount", "%s: %s", argv[optind], strerror(errno));
		return EXIT_ERR;
	}
	dir = mount_dir(argv[optind + 1], disk, sizeof disk);
	if (!dir)
		goto out;
	vhdxfs = cycle_find_vhdxfs(vhdxfs_opt);
	if (!vhdxfs) {
		tool_error("mount", "vhdxfs not found%s%s (install it, or give --vhdxfs PATH)", vhdxfs_opt ? ": " : "",
			   vhdxfs_opt ? vhdxfs_opt : "");
		goto out;
	}

	/* The table first, read-only (a writer's lock, once vhdxfs holds it, would refuse a second open). */
	ret = vhdx_open(image, &to.opts, &img);
	if (ret < 0) {
		tool_lib_error("mount", ret);
		goto out;
	}
	ret = vhdx_report_partitions_read(img, &t, &parts);
	if (ret < 0)
		table_err = strdup(vhdx_errmsg());
	vhdx_close(img);

	/* vhdxfs at DIR/.disk */
	if (mkdir(disk, 0700) < 0) {
		tool_error("mount", "cannot create %s: %s", disk, strerror(errno));
		goto out;
	}
	va.w[va.n++] = vhdxfs;
	va.w[va.n++] = (char *)"-o";
	va.w[va.n++] = (char *)(rw ? "rw" : "ro");
	add_open_opts(&va, &to);
	if (faults)
		add_opt(&va, "faults", faults);
	if (fault_log)
		add_opt(&va, "fault-log", fault_log);
	{
		char status_file[PATH_MAX + 32];

		snprintf(status_file, sizeof status_file, "%s/%s", dir, MNT_CLOSE_FILE);
		add_opt(&va, "close-status", status_file);
	}
	allow_root = !table_err && ntfs_needs_allow_root(&t, parts);
	if (allow_root) {
		va.w[va.n++] = (char *)"-o";
		va.w[va.n++] = (char *)"allow_root";
	}
	va.w[va.n++] = image;
	va.w[va.n++] = disk;
	va.w[va.n] = NULL;
	ret = mnt_run(va.w, &out);
	if (ret != 0) {
		tool_error("mount", "vhdxfs could not mount %s (exit status %d): %s", image, ret, out ? out : "");
		rmdir(disk);
		goto out;
	}

	/* then each volume */
	vols = calloc(parts && t.count ? t.count : 1, sizeof *vols);
	if (!vols) {
		tool_error("mount", "out of memory");
		status = EXIT_PROBLEMS;
		goto report;
	}
	n_vols = plan_volumes(vols, &t, !table_err, parts, disk, dir, rw, allow_root);
	for (unsigned i = 0; i < n_vols; i++)
		failed += vols[i].failed;
	status = failed || table_err ? EXIT_PROBLEMS : EXIT_OK;
report:
	mount_report(json, image, dir, rw, table_err, t.note, vols, n_vols);
out:
	for (unsigned i = 0; vols && i < n_vols; i++)
		free(vols[i].why);
	argv_free(&va);
	free(vols);
	free(parts);
	free(table_err);
	free(out);
	free(vhdxfs);
	free(dir);
	free(image);
	return status;
}

/* ---------------------------------------------------------------- umount */

static void umount_help(FILE *f)
{
	fprintf(f, "Usage: vhdx umount [--json] DIR\n\n"
		   "Undoes 'vhdx mount IMAGE DIR': unmounts the file systems under DIR (newest\n"
		   "first), detaches their loop devices, unmounts vhdxfs from DIR/.disk and waits\n"
		   "until it has closed the image, then removes the folders it made.  What to\n"
		   "undo is found in the kernel's tables, so this also cleans up after a killed\n"
		   "'vhdx mount' or a killed vhdxfs.  While a process holds anything under DIR\n"
		   "(a shell's current folder, an open file) nothing is changed: the processes\n"
		   "are named (like fuser -vm) and the exit status is 1.  When vhdxfs returned\n"
		   "I/O errors to the file systems while mounted (a file system's unmount\n"
		   "succeeds even when its last writes failed), everything is still unmounted,\n"
		   "the errors are reported and the exit status is 3.\n\n"
		   "  --json          report what was undone as JSON\n"
		   "  -h, --help      this text\n");
}

/* Removes the folders vhdx mount makes (DIR/pN, DIR/disk, DIR/.disk) when empty. */
/*
 * What vhdxfs wrote at its exit about closing the image (DIR/.disk.close,
 * removed here): true, after the message, when the close failed (its last
 * flush: the image's last writes, or its log made clean).  A vhdxfs that
 * wrote nothing (killed, or an older one) says nothing.
 */
static bool close_failed(const char *dir)
{
	char file[PATH_MAX + 32], *text;
	bool failed;

	snprintf(file, sizeof file, "%s/%s", dir, MNT_CLOSE_FILE);
	text = mnt_read_all(file, NULL);
	unlink(file);
	if (!text)
		return false;
	text[strcspn(text, "\n")] = '\0';
	failed = strncmp(text, "failed: ", 8) == 0;
	if (failed)
		tool_error("umount", "%s: vhdxfs could not close the image cleanly: %s; what was written last may be "
			   "missing (a dirty log is replayed at the next open)", dir, text + 8);
	free(text);
	return failed;
}

static void remove_dirs(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		char path[PATH_MAX];

		if (!((n[0] == 'p' && n[1] >= '1' && n[1] <= '9' && strspn(n + 1, "0123456789") == strlen(n + 1)) ||
		      !strcmp(n, "disk") || !strcmp(n, MNT_DISK_DIR)))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, n);
		rmdir(path); /* only an empty folder goes */
	}
	closedir(d);
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * The I/O errors vhdxfs returned to the kernel while mounted (the "errors"
 * and "last_error" lines of DIR/.disk/.vhdxfs/stats): a file system's
 * unmount succeeds even when its last writes failed, so this is where they
 * show.  The count, the last message in *LAST (malloc'd or NULL); 0 when
 * the stats cannot be read (vhdxfs gone).
 */
static unsigned long vhdxfs_errors(const char *disk, char **last)
{
	char path[PATH_MAX + 32], *s, *line, *save = NULL;
	unsigned long n = 0;

	*last = NULL;
	snprintf(path, sizeof path, "%s/.vhdxfs/stats", disk);
	s = mnt_read_all(path, NULL);
	for (line = s ? strtok_r(s, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "errors=", 7))
			n = strtoul(line + 7, NULL, 10);
		else if (!strncmp(line, "last_error=", 11) && line[11])
			*last = strdup(line + 11);
	}
	free(s);
	return n;
}

static int cmp_id_desc(const void *a, const void *b)
{
	const struct mnt_entry *x = a, *y = b;

	return (y->id > x->id) - (y->id < x->id);
}

/*
 * Unmounts the file systems of M (newest first) but vhdxfs at DISK, whose
 * mount sets *DISK_MOUNTED.  0, or -1 after the message (and the end of
 * the JSON report R) when one would not unmount: the rest is as it was.
 */
static int unmount_volumes(const struct mnt_entry *m, size_t n_m, const char *disk, bool json, struct report *r,
			   bool *disk_mounted)
{
	char *out = NULL, *holders = NULL;
	size_t n_done = 0;

	for (size_t i = 0; i < n_m; i++) {
		char *argv_u[] = { (char *)"umount", m[i].target, NULL };
		bool fuse_fs = !strncmp(m[i].fstype, "fuse", 4);
		int ret;

		if (!strcmp(m[i].target, disk)) {
			*disk_mounted = true;
			continue;
		}
		ret = mnt_run(argv_u, &out);
		if (ret != 0) {
			mnt_holders(m[i].target, &holders);
			if (json) {
				report_end_list(r);
				report_end(r);
				report_finish(r);
			}
			tool_error("umount", "umount %s failed (%s)%s%s; %zu file systems were unmounted, the rest is as it was",
				   m[i].target, out ? out : "", holders ? ": held by " : "", holders ? holders : "", n_done);
			free(holders);
			free(out);
			return -1;
		}
		free(out);
		out = NULL;
		n_done++;
		if (fuse_fs) {
			/* an ntfs-3g or fuse2fs daemon holds its partition file until it has ended */
			for (int k = 0; k < 200 && (mnt_daemon_pid("ntfs-3g", m[i].target) ||
						    mnt_daemon_pid("fuse2fs", m[i].target)); k++)
				mnt_sleep_ms(50);
		}
		if (json)
			report_str(r, NULL, m[i].target);
		else
			printf("unmounted %s (%s)\n", m[i].target, m[i].fstype);
	}
	return 0;
}

/*
 * Detaches the loop devices over the files under PREFIX (listed again into
 * *LOOPS and *FILES, *N of them), each time waiting until the kernel has
 * let go.  0, or -1 after the message.
 */
static int detach_loops(const char *prefix, char ***loops, char ***files, size_t *n, bool json)
{
	char *out = NULL;

	free_strv(*loops, *n);
	free_strv(*files, *n);
	*loops = *files = NULL;
	mnt_loops(prefix, loops, files, n);
	for (size_t i = 0; i < *n; i++) {
		char *argv_d[] = { (char *)"losetup", (char *)"-d", (*loops)[i], NULL };
		char **l2, **f2;
		size_t n2;

		if (mnt_run(argv_d, &out) != 0) {
			tool_error("umount", "losetup -d %s (over %s) failed: %s", (*loops)[i], (*files)[i], out ? out : "");
			free(out);
			return -1;
		}
		free(out);
		out = NULL;
		/* the kernel lets go of the file a moment later */
		for (int k = 0; k < 200; k++) {
			bool still = false;

			mnt_loops(prefix, &l2, &f2, &n2);
			for (size_t j = 0; j < n2; j++)
				still |= !strcmp(l2[j], (*loops)[i]);
			free_strv(l2, n2);
			free_strv(f2, n2);
			if (!still)
				break;
			mnt_sleep_ms(50);
		}
		if (!json)
			printf("detached %s (%s)\n", (*loops)[i], (*files)[i]);
	}
	return 0;
}

int cmd_umount(int argc, char **argv)
{
	static const struct option longopts[] = {
		TOOL_JSON_LONGOPT,
		TOOL_LONGOPTS_END,
	};
	struct mnt_entry *m = NULL;
	char **loops = NULL, **files = NULL, *dir = NULL, *holders = NULL, *out = NULL, *last_error = NULL;
	unsigned long io_errors = 0;
	char disk[PATH_MAX], prefix[PATH_MAX + 2];
	size_t n_m = 0, n_loops = 0;
	bool json = false, disk_mounted = false, disk_existed;
	struct report r;
	pid_t vpid;
	int status = EXIT_ERR, nh;
	struct tool_cmd tc = { .name = "umount", .help = umount_help, .shortopts = "h", .longopts = longopts,
			       .json = &json };

	while (tool_getopt(&tc, argc, argv) != -1)
		; /* --json only */
	if (tool_operands(&tc, argc, 1, "DIR"))
		return tc.rc;
	dir = realpath(argv[optind], NULL);
	if (!dir) {
		tool_error("umount", "%s: %s", argv[optind], strerror(errno));
		return EXIT_ERR;
	}
	snprintf(disk, sizeof disk, "%s/%s", dir, MNT_DISK_DIR);
	snprintf(prefix, sizeof prefix, "%s/", disk);
	disk_existed = access(disk, F_OK) == 0 || errno == ENOTCONN;
	mnt_list(dir, &m, &n_m);
	mnt_loops(prefix, &loops, &files, &n_loops);
	vpid = mnt_daemon_pid("vhdxfs", disk);
	if (!n_m && !n_loops && !disk_existed && !vpid) {
		tool_error("umount", "%s: nothing of 'vhdx mount' is there", dir);
		goto out;
	}
	/* busy: change nothing, name the processes */
	nh = mnt_holders(dir, &holders);
	if (nh > 0) {
		tool_error("umount", "%s is busy, nothing was unmounted: %s (end them or leave the folder, then run 'vhdx umount %s' again)",
			   dir, holders, dir);
		goto out;
	}
	qsort(m, n_m, sizeof *m, cmp_id_desc);
	if (json) {
		report_init(&r, stdout, true);
		report_begin(&r, NULL);
		report_str(&r, "dir", dir);
		report_begin_list(&r, "unmounted");
	}
	/* the file systems, newest first */
	if (unmount_volumes(m, n_m, disk, json, &r, &disk_mounted) < 0)
		goto out;
	/* the loop devices over the partition files (mounting made them; detached after their unmount) */
	if (detach_loops(prefix, &loops, &files, &n_loops, json) < 0)
		goto out_json;
	/* vhdxfs last, and wait for it: the image is closed (and flushed) when we return */
	if (disk_mounted)
		io_errors = vhdxfs_errors(disk, &last_error);
	if (disk_mounted) {
		free(out);
		out = NULL;
		if (mnt_fuse_unmount(disk, &out) != 0) {
			tool_error("umount", "fusermount3 -u %s failed: %s", disk, out ? out : "");
			goto out_json;
		}
		if (!json)
			printf("unmounted %s (vhdxfs)\n", disk);
	}
	if (!mnt_wait_exit(vpid)) {
		tool_error("umount", "vhdxfs (PID %d) did not end within 30 s of its unmount", (int)vpid);
		goto out_json;
	}
	remove_dirs(dir);
	status = EXIT_OK;
	if (io_errors) {
		/* everything is unmounted, but a file system may not hold all it wrote: say so */
		tool_error("umount", "%s: vhdxfs returned %lu I/O error%s to the file systems while mounted (last: %s); "
			   "what they wrote last may be missing",
			   dir, io_errors, io_errors == 1 ? "" : "s", last_error ? last_error : "?");
		status = EXIT_PROBLEMS;
	}
	if (close_failed(dir))
		status = EXIT_PROBLEMS;
out_json:
	if (json) {
		report_end_list(&r);
		report_bool(&r, "vhdxfs_unmounted", disk_mounted && status != EXIT_ERR);
		report_u64(&r, "loops_detached", status != EXIT_ERR ? n_loops : 0);
		report_u64(&r, "io_errors", io_errors);
		report_end(&r);
		report_finish(&r);
	}
out:
	free_strv(loops, n_loops);
	free_strv(files, n_loops);
	mnt_list_free(m, n_m);
	free(holders);
	free(last_error);
	free(out);
	free(dir);
	return status;
}
