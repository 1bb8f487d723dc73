/*
 * vhdxfs.c - `vhdxfs [options] IMAGE MOUNTPOINT`: mounts a VHDX, AVHDX chain
 * or VHD so that MOUNTPOINT/disk is the whole virtual disk as one raw file.
 *
 * Order of work, and why: the command line is parsed (our options through
 * fuse_opt, then libfuse's own), the image is opened BEFORE anything is
 * mounted (so a bad image exits 1 with the library's message and leaves no
 * dead mount behind), then the session is created, mounted, daemonised
 * unless -f, and served by the multi-threaded loop.  Unmounting ends the
 * loop; the session's destroy callback closes the image, which flushes a
 * writable leaf and leaves its log clean.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vhdxfs.h"

#define EXIT_USAGE 2

/* What our fuse_opt table collects. */
struct cfg {
	char *image;
	char *mountpoint; /* as given (fuse_parse_cmdline takes it too) */
	char *parent;
	char *faults;    /* -o faults=FILE: fault rules loaded at mount */
	char *fault_log; /* -o fault-log=FILE: rules and events written at exit */
	char *close_status; /* -o close-status=FILE: how closing the image went, written at exit */
	int rw;
	int ignore_id;
	int no_parent;
	int salvage;
	int force_share; /* -o force-share / -U: read-only, no lock (issue #14) */
	int over_mount;  /* -o over-mount: mount even on a mount point */
	int nopartitions; /* -o nopartitions: no p1, p2, ... files */
	unsigned max_depth;
	unsigned max_read; /* -o max_read, also kept for libfuse's mount options */
	int direct_io;     /* -o direct_io: the disk bypasses the kernel's page cache */
	int allow_others;  /* -o allow_other or allow_root was given */
	int default_perms; /* -o default_permissions was given */
	unsigned readahead_kb; /* -o readahead=KB, READAHEAD_UNSET if not given */
	int show_help;
	int show_version;
	int n_nonopt;
	int bad;
	const char *parent_dirs[65];
	unsigned n_parent_dirs;
	const char *path_maps[65];
	unsigned n_path_maps;
};

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_PARENT_DIR,
	KEY_PATH_MAP,
	KEY_MAX_DEPTH,
	KEY_MAX_READ,
	KEY_READAHEAD,
	KEY_ALLOW_OTHERS,
	KEY_DEFAULT_PERMS,
};

/*
 * Readahead window set on the mount when -o readahead is not given (KiB).
 * The kernel starts a FUSE mount at 128 KiB, which caps buffered sequential
 * reads at 128 KiB requests; 1 MiB lets it keep two 512 KiB requests in
 * flight, served by two threads, and halved our CPU time per GiB read.
 */
#define READAHEAD_DEFAULT_KB 1024u
#define READAHEAD_UNSET UINT_MAX

#define CFG_OPT(t, field, v) { t, offsetof(struct cfg, field), v }
static const struct fuse_opt cfg_opts[] = {
	CFG_OPT("rw", rw, 1),
	CFG_OPT("ro", rw, 0),
	CFG_OPT("parent=%s", parent, 0),
	CFG_OPT("faults=%s", faults, 0),
	CFG_OPT("fault-log=%s", fault_log, 0),
	CFG_OPT("close-status=%s", close_status, 0),
	CFG_OPT("ignore-id-mismatch", ignore_id, 1),
	CFG_OPT("no-parent", no_parent, 1),
	CFG_OPT("salvage", salvage, 1),
	CFG_OPT("force-share", force_share, 1),
	CFG_OPT("-U", force_share, 1),
	CFG_OPT("over-mount", over_mount, 1),
	CFG_OPT("nopartitions", nopartitions, 1),
	FUSE_OPT_KEY("parent-dir=", KEY_PARENT_DIR),
	FUSE_OPT_KEY("path-map=", KEY_PATH_MAP),
	FUSE_OPT_KEY("max-depth=", KEY_MAX_DEPTH),
	FUSE_OPT_KEY("max_read=", KEY_MAX_READ),
	FUSE_OPT_KEY("readahead=", KEY_READAHEAD),
	CFG_OPT("direct_io", direct_io, 1),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHERS),
	FUSE_OPT_KEY("allow_root", KEY_ALLOW_OTHERS),
	FUSE_OPT_KEY("default_permissions", KEY_DEFAULT_PERMS),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vhdxfs [options] IMAGE MOUNTPOINT\n"
		   "Try 'vhdxfs --help' for more information.\n");
}

/* help's sections: name, synopsis and description; options; performance, exit status and examples */
static void help_description(void)
{
	printf(
"NAME\n"
"    vhdxfs - mount a VHDX, AVHDX chain or VHD image as one raw disk file\n"
"\n"
"SYNOPSIS\n"
"    vhdxfs [-f] [-d] [-s] [-o OPTION[,OPTION...]] IMAGE MOUNTPOINT\n"
"    vhdxfs --help | --version\n"
"    fusermount3 -u MOUNTPOINT\n"
"\n"
"DESCRIPTION\n"
"    vhdxfs opens IMAGE (VHDX, AVHDX or VHD, recognised by its contents; a\n"
"    file or an NBD URI such as nbd+unix:///disk.avhdx?socket=/tmp/s, whose\n"
"    relative parents are exports of the same server) together with its\n"
"    chain of parent disks, and mounts it with FUSE so that\n"
"\n"
"        MOUNTPOINT/disk             the whole virtual disk, one raw file whose\n"
"                                    size is the virtual size; mode 0444, or\n"
"                                    0644 with -o rw; owned by the mounting user\n"
"        MOUNTPOINT/p1, p2, ...      one file per partition (MBR or GPT), numbered\n"
"                                    as Linux numbers them (GPT entry index + 1;\n"
"                                    MBR 1-4 primary, 5 and up logical; none for\n"
"                                    an extended partition): exactly the\n"
"                                    partition's bytes of disk, writable only\n"
"                                    with -o rw.  The table is read at mount and,\n"
"                                    on a rw mount, again when disk is flushed\n"
"                                    (fsync, or close after writes) after a\n"
"                                    write to disk, as partitioning tools do\n"
"        MOUNTPOINT/.vhdxfs/stats    counters of this mount, \"key=value\" lines:\n"
"                                    direct_io, read_ahead_kb (0: unknown),\n"
"                                    reads, read_bytes, zero_copy_reads,\n"
"                                    copied_reads, writes, write_bytes, flushes,\n"
"                                    errors and errors_EIO... by errno,\n"
"                                    last_error, and per layer N of the chain\n"
"                                    layerN_path, layerN_reads, layerN_read_bytes,\n"
"                                    and faults_injected, faults_failed... and\n"
"                                    fault_ruleN_hits per active fault rule, and\n"
"                                    faults_last_error (why the last write to\n"
"                                    faults was refused)\n"
"        MOUNTPOINT/.vhdxfs/faults   the active fault rules, with their hit\n"
"                                    counts; write a rule line to add it (several\n"
"                                    lines at once are added all or none; a bad\n"
"                                    line fails the write with EINVAL, and the\n"
"                                    next reads of faults start with the reason:\n"
"                                    '# last write refused ...: REASON', until a\n"
"                                    write is accepted), 'clear'\n"
"                                    to remove every rule, 'remove N' rule N;\n"
"                                    every change drops the kernel's cached\n"
"                                    pages of disk, so the next reads meet the\n"
"                                    rules (with -s: a moment after the write)\n"
"        MOUNTPOINT/.vhdxfs/events   one line per injected fault: seq, time,\n"
"                                    rule, operation, layer file, file offset,\n"
"                                    length, virtual offset, structure, action\n"
"\n"
"    The image is opened before anything is mounted: when it cannot be opened\n"
"    (corrupt, unsupported, parent missing, in use) vhdxfs prints the reason and\n"
"    exits with status 1, leaving nothing mounted.\n"
"\n"
"    Every file of the chain stays locked while mounted: with -o rw the leaf\n"
"    for writing (no other process may open it), every other file for reading\n"
"    (no other process may write it).  An image another process has open for\n"
"    writing (another mount, vhdx write, a merge) is refused: \"IMAGE: in use\n"
"    for writing by another process (pid 123, vhdxfs); cannot open it for\n"
"    reading\".  A mount point that already has a mount is refused too.\n"
"    fusermount3 -u returns before vhdxfs has flushed and closed the image:\n"
"    wait for the vhdxfs process to exit before another command writes it.\n"
"\n"
"    The mount is read-only unless -o rw is given; a read-only mount never\n"
"    writes to any file, and a dirty VHDX log is replayed in memory.  With\n"
"    -o rw only the leaf (IMAGE itself) is written, never a parent; fsync()\n"
"    and close() after writes make the data durable, and unmounting closes\n"
"    the image cleanly.  The disk has a fixed size: it cannot be truncated or\n"
"    extended (use dd with conv=notrunc).\n"
"\n"
"    Requests are served by several threads.  Where a read maps to data\n"
"    stored contiguously in an image file, the bytes are spliced from that\n"
"    file to the kernel without a copy through vhdxfs.  SEEK_DATA/SEEK_HOLE\n"
"    follow the allocation map, so `cp --sparse=always` skips empty space.\n"
"\n");
}

static void help_options(void)
{
	printf(
"OPTIONS\n"
"    -o ro                 mount read-only (the default)\n"
"    -o rw                 allow writing to MOUNTPOINT/disk (the leaf only)\n"
"    -o parent=FILE        use FILE as the immediate parent of IMAGE,\n"
"                          overriding its parent locator\n"
"    -o parent-dir=DIR     also search DIR for parent disks (repeatable)\n"
"    -o path-map=WIN=DIR   read a Windows path prefix WIN of a parent locator\n"
"                          as the folder DIR (repeatable).  '/' matches '\\'\n"
"                          and case is ignored, so D:\\VMs\\ is written\n"
"                          path-map=D:/VMs=/mnt/vms; inside -o a backslash or\n"
"                          a comma must be escaped as \\\\ or \\,\n"
"    -o ignore-id-mismatch accept a parent whose identity differs from the\n"
"                          child's link to it\n"
"    -o no-parent          do not open parents: the leaf alone, zeros where it\n"
"                          holds nothing\n"
"    -o salvage            read through bad VHD checksums and similar\n"
"                          recoverable damage\n"
"    -o max-depth=N        refuse chains longer than N layers (default 1000)\n"
"    -o force-share, -U    (read-only mounts) take no lock and ignore those of\n"
"                          other processes, to peek at an image another process\n"
"                          writes; a warning says so, and what is read may be\n"
"                          inconsistent\n"
"    -o over-mount         mount even when MOUNTPOINT is already a mount point\n"
"                          (the new mount hides the old one until unmounted)\n"
"    -o nopartitions       no partition files p1, p2, ... (disk only)\n"
"    -o faults=FILE        inject the I/O faults of the rules in FILE (one rule\n"
"                          a line, e.g. 'op=read voff=1M+64K err=EIO'; the rule\n"
"                          language is in libvhdx(3), 'Fault injection').  A bad\n"
"                          rule exits with status 2 naming the file and line\n"
"    -o fault-log=FILE     at exit (after the image is closed) write the rules\n"
"                          with their hit counts and every injected fault to FILE\n"
"    -o close-status=FILE  at exit write how closing the image went to FILE:\n"
"                          'ok', or 'failed: ' and the reason (a daemon's exit\n"
"                          status reaches nobody; vhdx umount reads this)\n"
"    -o readahead=KB       the kernel's readahead window on the disk, in KiB\n"
"                          (default 1024; 0 keeps the kernel's 128).  Set\n"
"                          through /sys/class/bdi, so only when run as root\n"
"    -o direct_io          bypass the kernel's page cache for the disk: large\n"
"                          reads (dd bs=1M) go up to 3-4 times faster when the\n"
"                          image is in the page cache, small ones (bs=4K) ten\n"
"                          times slower, nothing is cached between reads, and\n"
"                          a shared mmap() of the disk fails (ENODEV)\n"
"\n"
"    Common FUSE options:\n"
"    -f                    stay in the foreground\n"
"    -d, -o debug          print every request (implies -f)\n"
"    -s                    serve requests with a single thread\n"
"    -o allow_other        let other users access the mount (needs\n"
"                          user_allow_other in /etc/fuse.conf unless root);\n"
"                          implies default_permissions, so they may read the\n"
"                          disk but neither write it nor change the faults\n"
"    -o default_permissions  let the kernel check the file modes (owner: the\n"
"                          user who mounted; without allow_other nobody else\n"
"                          gets in at all)\n"
"    -o max_read=BYTES     limit the size of read requests\n"
"    -o clone_fd           one /dev/fuse descriptor per thread\n"
"    -o max_idle_threads=N, -o max_threads=N   size of the thread pool\n"
"    -h, --help            this text, then libfuse's own options\n"
"    -V, --version         versions of vhdxfs, libvhdx and libfuse\n"
"\n");
}

static void help_notes(void)
{
	printf(
"PERFORMANCE\n"
"    Buffered reads pass through the kernel's page cache twice (the image\n"
"    file's, then the disk's) in requests of at most the readahead window;\n"
"    vhdxfs raises the window to 1 MiB when it runs as root (-o readahead).\n"
"    Reads with O_DIRECT (dd iflag=direct), or every read with -o direct_io,\n"
"    skip the disk's cache and reach several GB/s on an image that is in\n"
"    the page cache.  Parallel readers are served by parallel threads.\n"
"    -o clone_fd may help on machines with many cores.  The counters in\n"
"    .vhdxfs/stats show how reads were served (zero_copy_reads spliced from\n"
"    the image file, copied_reads through a buffer, zero_reads unallocated).\n"
"\n"
"EXIT STATUS\n"
"    0 after a clean unmount; 1 when the image cannot be opened (also when it\n"
"    is in use), the mount fails, or closing the image fails; 2 for a usage\n"
"    error.\n"
"\n"
"EXAMPLES\n"
"    Mount a Hyper-V disk read-only and copy it out as a sparse raw file:\n"
"        vhdxfs vm.vhdx /mnt/vhd\n"
"        cp --sparse=always /mnt/vhd/disk vm.raw\n"
"\n"
"    Mount the file systems of its partitions in one step (vhdx mount uses\n"
"    vhdxfs and the partition files):\n"
"        vhdx mount vm.vhdx /mnt/vm; ls /mnt/vm/p2; vhdx umount /mnt/vm\n"
"\n"
"    Loop-mount one partition by hand (read-only), then clean up:\n"
"        vhdxfs vm.vhdx /mnt/vhd\n"
"        mount -o ro,loop /mnt/vhd/p2 /mnt/part\n"
"        ...\n"
"        umount /mnt/part; fusermount3 -u /mnt/vhd\n"
"\n"
"    Or the whole disk on a loop device with partitions (kernels with MBR/GPT\n"
"    support only):\n"
"        dev=$(losetup -r -P --show -f /mnt/vhd/disk)\n"
"        mount -o ro ${dev}p1 /mnt/part\n"
"        ...\n"
"        umount /mnt/part; losetup -d $dev; fusermount3 -u /mnt/vhd\n"
"\n"
"    Mount a checkpoint whose parents were moved to another folder:\n"
"        vhdxfs -o parent-dir=/backup/vms vm_1234.avhdx /mnt/vhd\n"
"\n"
"    Write to a disk and unmount cleanly:\n"
"        vhdxfs -o rw scratch.vhdx /mnt/vhd\n"
"        dd if=data.bin of=/mnt/vhd/disk bs=1M seek=16 conv=notrunc,fsync\n"
"        fusermount3 -u /mnt/vhd\n"
"\n"
"    Watch the counters of a mount:\n"
"        cat /mnt/vhd/.vhdxfs/stats\n"
"\n"
"SEE ALSO\n"
"    vhdx(1), fusermount3(1), losetup(8), mount.fuse3(8)\n"
"\n");
}

static void help(void)
{
	help_description();
	help_options();
	help_notes();
	printf("FUSE OPTIONS (from libfuse)\n");
	fflush(stdout);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* Parses TEXT as a whole decimal number from MIN to MAX into *OUT; else says what the option TAKES and marks C bad. */
static bool opt_number(struct cfg *c, const char *text, unsigned long min, unsigned long max, const char *takes,
		       unsigned *out)
{
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(text, &end, 10);
	if (errno || end == text || *end || n < min || n > max) {
		fprintf(stderr, "vhdxfs: %s, got '%s'\n", takes, text);
		c->bad = 1;
		return false;
	}
	*out = (unsigned)n;
	return true;
}

/* Appends a copy of TEXT to LIST (64 entries at most, counted in *N); past that, C is marked bad. */
static void opt_list_add(struct cfg *c, const char **list, unsigned *n, const char *name, const char *text)
{
	if (*n >= 64) {
		fprintf(stderr, "vhdxfs: too many %s options (64 at most)\n", name);
		c->bad = 1;
		return;
	}
	list[(*n)++] = strdup(text);
}

static int cfg_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct cfg *c = data;
	const char *val = strchr(arg, '=');

	switch (key) {
	case KEY_HELP:
		c->show_help = 1;
		return 0;
	case KEY_VERSION:
		c->show_version = 1;
		return 0;
	case KEY_ALLOW_OTHERS: /* noted, and kept for libfuse */
		c->allow_others = 1;
		return 1;
	case KEY_DEFAULT_PERMS:
		c->default_perms = 1;
		return 1;
	case KEY_PARENT_DIR:
		opt_list_add(c, c->parent_dirs, &c->n_parent_dirs, "parent-dir", val + 1);
		return 0;
	case KEY_PATH_MAP:
		if (!strchr(val + 1, '=')) {
			fprintf(stderr, "vhdxfs: path-map takes WINDOWS_PREFIX=FOLDER, got '%s'\n", val + 1);
			c->bad = 1;
			return 0;
		}
		opt_list_add(c, c->path_maps, &c->n_path_maps, "path-map", val + 1);
		return 0;
	case KEY_MAX_DEPTH:
		opt_number(c, val + 1, 1, 4096, "max-depth takes a number from 1 to 4096", &c->max_depth);
		return 0;
	case KEY_MAX_READ:
		/* libfuse wants init() to repeat the mount option's value: remember it, keep it. */
		return opt_number(c, val + 1, 0, UINT_MAX, "max_read takes a byte count", &c->max_read) ? 1 : 0;
	case KEY_READAHEAD:
		opt_number(c, val + 1, 0, 1048576, "readahead takes a size in KiB from 0 to 1048576", &c->readahead_kb);
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		c->n_nonopt++;
		if (c->n_nonopt == 1) {
			c->image = strdup(arg);
			return 0;
		}
		if (c->n_nonopt == 2) {
			free(c->mountpoint);
			c->mountpoint = strdup(arg);
			return 1; /* the mount point: fuse_parse_cmdline takes it */
		}
		fprintf(stderr, "vhdxfs: unexpected argument '%s'\n", arg);
		c->bad = 1;
		return 0;
	default:
		return 1;
	}
}

/*
 * -o close-status=FILE: "ok" or "failed: MSG".  A daemon's exit status
 * reaches nobody, so without it a final flush that failed at unmount (the
 * image's last writes, its log made clean) was reported nowhere.
 */
static void write_close_status(const char *file, const char *failed)
{
	FILE *f;

	if (!file)
		return;
	f = fopen(file, "w");
	if (!f) {
		fprintf(stderr, "vhdxfs: %s: %s\n", file, strerror(errno));
		return;
	}
	if (failed)
		fprintf(f, "failed: %s\n", failed);
	else
		fprintf(f, "ok\n");
	if (fclose(f) != 0)
		fprintf(stderr, "vhdxfs: %s: %s\n", file, strerror(errno));
}

static void cfg_free(struct cfg *c)
{
	free(c->image);
	free(c->mountpoint);
	free(c->parent);
	free(c->faults);
	free(c->fault_log);
	free(c->close_status);
	for (unsigned i = 0; i < c->n_parent_dirs; i++)
		free((char *)c->parent_dirs[i]);
	for (unsigned i = 0; i < c->n_path_maps; i++)
		free((char *)c->path_maps[i]);
}

/* Adds "-o NAME=VALUE" with VALUE escaped for libfuse's option parser. */
static int add_escaped_opt(struct fuse_args *args, const char *name, const char *value)
{
	char *kv, *opt = NULL;
	int ret;

	if (asprintf(&kv, "%s=%s", name, value) < 0)
		return -1;
	ret = fuse_opt_add_opt_escaped(&opt, kv);
	free(kv);
	if (ret == 0) {
		ret = fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, opt) ? -1 : 0;
	}
	free(opt);
	return ret;
}

/*
 * Finds the device number "MAJOR:MINOR" of the newest mount at MOUNTPOINT
 * (absolute, as fuse_parse_cmdline made it; FUSE_ONLY: a FUSE mount) in
 * /proc/self/mountinfo into DEV.  Not stat(MOUNTPOINT): that would wait for
 * a GETATTR which the loop, not yet running (or a dead mount), cannot
 * answer.  0 or -1.
 */
static int mount_find(const char *mountpoint, bool fuse_only, char *dev, size_t dev_len)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char *line = NULL;
	size_t cap = 0;
	int found = -1;

	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE ..." */
		char *save, *fields[5], *dash, *p, *q;
		unsigned i;

		dash = strstr(line, " - ");
		if (!dash || (fuse_only && strncmp(dash + 3, "fuse", 4) != 0))
			continue;
		for (i = 0, p = line; i < 5; i++, p = NULL)
			if (!(fields[i] = strtok_r(p, " ", &save)))
				break;
		if (i < 5)
			continue;
		/* The kernel writes space, tab, newline and backslash as \ooo. */
		for (p = q = fields[4]; *p; q++) {
			if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
			    p[3] <= '7') {
				*q = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
				p += 4;
			} else {
				*q = *p++;
			}
		}
		*q = '\0';
		if (strcmp(fields[4], mountpoint) == 0 && strlen(fields[2]) < dev_len) {
			strcpy(dev, fields[2]); /* the last match is the newest mount */
			found = 0;
		}
	}
	free(line);
	fclose(f);
	return found;
}

/*
 * Remembers where the readahead window of the new mount lives (the
 * /sys/class/bdi entry of its device number) and the window to set, for
 * vhdxfs_readahead_apply().  It cannot be set now: the kernel offers its
 * current window in INIT and lowers the window to the answer when INIT is
 * answered, after this point.  KB: READAHEAD_UNSET for the default, 0 to
 * leave the kernel's window.
 */
static void readahead_prepare(struct vhdxfs *fs, const char *mountpoint, unsigned kb)
{
	char dev[32];

	fs->readahead_want = kb == READAHEAD_UNSET ? READAHEAD_DEFAULT_KB : kb;
	fs->readahead_explicit = kb != READAHEAD_UNSET;
	if (mount_find(mountpoint, true, dev, sizeof dev) == 0)
		snprintf(fs->bdi_ra_path, sizeof fs->bdi_ra_path, "/sys/class/bdi/%s/read_ahead_kb", dev);
}

void vhdxfs_readahead_apply(struct vhdxfs *fs)
{
	unsigned cur = 0;
	FILE *f;

	if (atomic_exchange(&fs->readahead_applied, true) || !fs->bdi_ra_path[0])
		return;
	/* Only root may write there; elsewhere the kernel's window stays (a tuning hint). */
	if (fs->readahead_want) {
		f = fopen(fs->bdi_ra_path, "w");
		if (f) {
			fprintf(f, "%u\n", fs->readahead_want);
			if (fclose(f) != 0 && fs->readahead_explicit)
				fuse_log(FUSE_LOG_WARNING, "vhdxfs: cannot set readahead=%u in %s: %s\n",
					 fs->readahead_want, fs->bdi_ra_path, strerror(errno));
		} else if (fs->readahead_explicit) {
			fuse_log(FUSE_LOG_WARNING, "vhdxfs: -o readahead ignored: %s: %s\n", fs->bdi_ra_path,
				 strerror(errno));
		}
	}
	f = fopen(fs->bdi_ra_path, "r");
	if (f) {
		if (fscanf(f, "%u", &cur) != 1)
			cur = 0;
		fclose(f);
	}
	atomic_store(&fs->readahead_kb, cur);
}

static void *cache_drop_thread(void *arg)
{
	struct vhdxfs *fs = arg;
	int ret = fuse_lowlevel_notify_inval_inode(fs->se, VHDXFS_INO_DISK, 0, 0);

	/* -ENOENT: the kernel has no inode for /disk yet, so nothing is cached */
	if (ret < 0 && ret != -ENOENT)
		fuse_log(FUSE_LOG_ERR, "vhdxfs: dropping the page cache of /disk: %s\n", strerror(-ret));
	return NULL;
}

static void *cache_drop_detached(void *arg)
{
	struct vhdxfs *fs = arg;

	cache_drop_thread(fs);
	atomic_fetch_sub(&fs->cache_drops, 1);
	return NULL;
}

void vhdxfs_disk_cache_drop(struct vhdxfs *fs)
{
	pthread_t th;

	if (!fs->se)
		return;
	if (!fs->singlethread) {
		cache_drop_thread(fs);
		return;
	}
	atomic_fetch_add(&fs->cache_drops, 1);
	if (pthread_create(&th, NULL, cache_drop_detached, fs) == 0) {
		pthread_detach(th);
	} else {
		atomic_fetch_sub(&fs->cache_drops, 1);
		fuse_log(FUSE_LOG_ERR, "vhdxfs: cannot start a thread to drop the page cache of /disk\n");
	}
}

static int run_loop(struct fuse_session *se, const struct fuse_cmdline_opts *o)
{
	int ret;

	if (o->singlethread)
		return fuse_session_loop(se);
#if FUSE_USE_VERSION >= 312
	struct fuse_loop_config *lc = fuse_loop_cfg_create();

	if (!lc)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(lc, (unsigned)o->clone_fd);
	/* UINT_MAX means "not given": keep libfuse's default. */
	if (o->max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(lc, o->max_idle_threads);
	fuse_loop_cfg_set_max_threads(lc, o->max_threads);
	ret = fuse_session_loop_mt(se, lc);
	fuse_loop_cfg_destroy(lc);
#else
	struct fuse_loop_config lc = { .clone_fd = o->clone_fd, .max_idle_threads = o->max_idle_threads };

	ret = fuse_session_loop_mt(se, &lc);
#endif
	return ret;
}

/*
 * The command line into C and FO, the mount's name and permission options
 * into ARGS, the image's absolute path into *ABS_IMAGE and FS.  -1 to go on
 * mounting, else the exit status (after --help or --version, or the message
 * of a usage error).
 */
static int parse_cmdline(struct fuse_args *args, struct cfg *c, struct fuse_cmdline_opts *fo, struct vhdxfs *fs,
			 char **abs_image)
{
	struct stat st;

	if (fuse_opt_parse(args, c, cfg_opts, cfg_proc) == -1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (c->show_help) {
		help();
		return 0;
	}
	if (c->show_version) {
		printf("vhdxfs %s\nlibvhdx %s\nFUSE library version %s\n", PACKAGE_VERSION, vhdx_version(),
		       fuse_pkgversion());
		fflush(stdout);
		fuse_lowlevel_version();
		return 0;
	}
	if (c->bad)
		return EXIT_USAGE;
	if (!c->image || c->n_nonopt < 2) {
		fprintf(stderr, "vhdxfs: %s\n", !c->image ? "missing IMAGE and MOUNTPOINT" : "missing MOUNTPOINT");
		usage(stderr);
		return EXIT_USAGE;
	}
	*abs_image = realpath(c->image, NULL);
	fs->image_path = *abs_image ? *abs_image : c->image;

	/* libfuse adds a subtype only when neither is given: name the mount after the image. */
	if (add_escaped_opt(args, "fsname", fs->image_path) || add_escaped_opt(args, "subtype", "vhdxfs")) {
		fprintf(stderr, "vhdxfs: out of memory\n");
		return 1;
	}
	/*
	 * vhdxfs does not check permissions itself.  Without allow_other the
	 * kernel keeps every other user out; with it, the file modes (disk 0444,
	 * or 0644 when rw; control files writable by the owner only) must be
	 * enforced, so the kernel is asked to check them.
	 */
	if (c->allow_others && !c->default_perms && fuse_opt_add_arg(args, "-odefault_permissions")) {
		fprintf(stderr, "vhdxfs: out of memory\n");
		return 1;
	}
	/* a mount point that is no folder: the mount fails (status 1), it is no usage error */
	if (c->mountpoint) {
		int bad = stat(c->mountpoint, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;

		if (bad) {
			fprintf(stderr, "vhdxfs: cannot mount %s on %s: %s (the mount point must be an existing folder)\n",
				c->image, c->mountpoint, strerror(bad));
			return 1;
		}
	}
	if (fuse_parse_cmdline(args, fo) != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!fo->mountpoint) {
		fprintf(stderr, "vhdxfs: missing MOUNTPOINT\n");
		usage(stderr);
		return EXIT_USAGE;
	}

	return -1;
}

/*
 * Opens C's image with its chain into FS (FS->img, FS->info), warning when
 * force-share reads a file another process writes.  0, or -1 after the
 * message (FS->img open or NULL: the caller closes it).
 */
static int open_image(struct vhdxfs *fs, struct cfg *c)
{
	struct vhdx_open_options oo;
	int ret;

	vhdx_open_options_init(&oo);
	oo.faults = vhdxfs_faults_engine(fs);
	oo.flags = (c->rw ? VHDX_OPEN_RDWR : 0) | (c->no_parent ? VHDX_OPEN_NO_PARENT : 0) |
		   (c->ignore_id ? VHDX_OPEN_IGNORE_ID_MISMATCH : 0) | (c->salvage ? VHDX_OPEN_SALVAGE : 0) |
		   (c->force_share ? VHDX_OPEN_FORCE_SHARE : 0);
	oo.parent = c->parent;
	c->parent_dirs[c->n_parent_dirs] = NULL;
	c->path_maps[c->n_path_maps] = NULL;
	oo.parent_dirs = c->n_parent_dirs ? c->parent_dirs : NULL;
	oo.path_maps = c->n_path_maps ? c->path_maps : NULL;
	if (c->max_depth)
		oo.max_depth = c->max_depth;
	ret = vhdx_open(c->image, &oo, &fs->img);
	if (ret < 0) {
		const char *msg = vhdx_errmsg();

		/* The library's message names the file and the structure at fault. */
		if (msg && *msg)
			fprintf(stderr, "vhdxfs: %s\n", msg);
		else
			fprintf(stderr, "vhdxfs: cannot open %s: %s\n", c->image, strerror(-ret));
		fs->img = NULL;
		return -1;
	}
	fs->info.struct_size = sizeof fs->info;
	ret = vhdx_get_info(fs->img, &fs->info);
	for (unsigned i = 0; ret == 0 && c->force_share && i < fs->info.layers; i++) {
		int use = vhdx_layer_in_use(fs->img, i);
		if (use == VHDX_IN_USE_WRITE || use < 0) {
			fprintf(stderr, "vhdxfs: warning: %s is %s; with force-share what is read may be inconsistent\n",
				vhdx_layer_path(fs->img, i), use < 0 ? "perhaps in use for writing (the system cannot tell)"
								   : "in use for writing by another process");
			break;
		}
	}
	if (ret < 0) {
		fprintf(stderr, "vhdxfs: %s: %s\n", c->image, vhdx_errmsg());
		return -1;
	}
	if (fs->info.virtual_size > (uint64_t)INT64_MAX) {
		fprintf(stderr, "vhdxfs: %s: virtual size %llu does not fit in a file size\n", c->image,
			(unsigned long long)fs->info.virtual_size);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts fo;
	struct fuse_session *se = NULL;
	struct vhdxfs fs;
	struct cfg c;
	struct stat st;
	char *abs_image = NULL;
	int ret, status = 1;

	memset(&c, 0, sizeof c);
	c.readahead_kb = READAHEAD_UNSET;
	memset(&fo, 0, sizeof fo);
	memset(&fs, 0, sizeof fs);
	status = parse_cmdline(&args, &c, &fo, &fs, &abs_image);
	if (status >= 0)
		goto out_args;
	status = 1;

	/*
	 * The fault engine before the image: every layer file is wrapped in it
	 * at open.  A bad rules file is a usage error, and nothing is mounted.
	 */
	if (vhdxfs_faults_setup(&fs, c.faults, c.fault_log) < 0) {
		status = EXIT_USAGE;
		goto out_opts;
	}

	/*
	 * A second mount on top of a mount point hides the first one (and its
	 * writes go on behind it): stacked mounts happen by accident, so they
	 * are refused unless asked for.
	 */
	if (!c.over_mount) {
		char dev[32];
		if (mount_find(fo.mountpoint, false, dev, sizeof dev) == 0) {
			fprintf(stderr, "vhdxfs: %s is already a mount point (unmount it first, or use -o over-mount to "
					"mount on top of it)\n", fo.mountpoint);
			goto out_opts;
		}
	}
	if (c.force_share && c.rw) {
		fprintf(stderr, "vhdxfs: -o force-share is for read-only mounts; it cannot be combined with -o rw\n");
		status = EXIT_USAGE;
		goto out_opts;
	}

	/* Open first: a bad image, or one in use (EBUSY), must not leave a mount behind. */
	if (open_image(&fs, &c) < 0)
		goto out_img;
	if (vhdxfs_stats_init(&fs, fs.info.layers) < 0) {
		fprintf(stderr, "vhdxfs: out of memory\n");
		goto out_img;
	}
	/* the partition files (a damaged table: a warning, and disk alone) */
	if (!c.nopartitions && vhdxfs_parts_init(&fs) < 0) {
		fprintf(stderr, "vhdxfs: out of memory\n");
		goto out_stats;
	}
	fs.rw = c.rw != 0;
	fs.max_read = c.max_read;
	fs.direct_io = c.direct_io != 0;
	fs.uid = getuid();
	fs.gid = getgid();
	clock_gettime(CLOCK_REALTIME, &fs.mount_time);
	if (stat(c.image, &st) == 0)
		fs.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	else
		fs.mtime_ns = (int64_t)fs.mount_time.tv_sec * 1000000000 + fs.mount_time.tv_nsec;

	se = fuse_session_new(&args, &vhdxfs_ops, sizeof vhdxfs_ops, &fs);
	if (!se) {
		/* libfuse printed why (usually an unknown -o option). */
		goto out_stats;
	}
	fs.se = se;
	fs.singlethread = fo.singlethread != 0;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, fo.mountpoint) != 0) {
		fprintf(stderr, "vhdxfs: cannot mount %s on %s\n", c.image, fo.mountpoint);
		goto out_signals;
	}
	readahead_prepare(&fs, fo.mountpoint, c.readahead_kb);
	/* Keeps the image's descriptors; only chdir("/") and the standard streams change. */
	fuse_daemonize(fo.foreground);
	ret = run_loop(se, &fo);
	fuse_session_unmount(se);
	/* The session goes away below: let a helper of vhdxfs_disk_cache_drop finish (the kernel answers at once now). */
	for (int i = 0; i < 200 && atomic_load(&fs.cache_drops); i++)
		usleep(10000);
	/* A positive result is the signal (SIGTERM, SIGINT...) that ended a clean loop. */
	status = ret < 0 ? 1 : 0;
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	/* Calls ops_destroy (vhdx_close) when the kernel had initialised the session. */
	fuse_session_destroy(se);
	if (fs.close_ret < 0)
		status = 1;
	write_close_status(c.close_status, fs.close_ret < 0 ? (fs.close_msg ? fs.close_msg : "?") : NULL);
	free(fs.close_msg);
out_stats:
	vhdxfs_parts_free(&fs);
	vhdxfs_stats_free(&fs);
out_img:
	if (fs.img && vhdx_close(fs.img) < 0) {
		fprintf(stderr, "vhdxfs: closing %s: %s\n", c.image, vhdx_errmsg());
		status = 1;
	}
	fs.img = NULL;
out_opts:
	/* After the close: the fault log then holds the faults of the unmount too. */
	if (vhdxfs_faults_finish(&fs) < 0)
		status = 1;
	free(fo.mountpoint);
out_args:
	fuse_opt_free_args(&args);
	cfg_free(&c);
	free(abs_image);
	return status;
}
