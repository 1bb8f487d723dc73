/*
 * cycle_fs.c - `vhdx cycle mount --fs ext4|ntfs`: the backup agent's
 * scratch-disk cycle at the volume level (issue #16).  Each cycle mounts
 * the disk and its volume as the agent does (`vhdx mount --rw`, with the
 * fault rules in vhdxfs), runs a catalogue of file operations on it
 * (create, append, rename, delete, each followed by fsync of the file and
 * of the folder), unmounts both (`vhdx umount`), then mounts the image
 * again without faults, as the agent's next mount would (writable, so that
 * the file system's journal is replayed), and checks every file against
 * what the workload was told is durable.
 *
 * A file is acknowledged when its write and fsync (and the folder's fsync
 * for a create, rename or delete) succeeded; after a failure its name is
 * uncertain and is not checked until it is written again.  Classes, worst
 * last: clean (no fault, no error), unexpected (an error without a fault),
 * reported (faults, and errors surfaced to the workload or the mount),
 * absorbed (nothing surfaced, and every fault was a failed read whose bytes
 * were later read again without error: the kernel's readahead, or a file
 * system's best-effort read, failed and the reader read what it needed
 * again, so the fault changed nothing), silent (faults injected, nothing
 * surfaced, and at least one of them was not a failed read read again: it
 * may have changed nothing, or hidden damage), damaged (the volume does
 * not mount again), lost (an acknowledged file is missing or wrong).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/grow.h"
#include "common/splitmix.h"
#include "cycle.h"
#include "mount.h"

/* One file of the catalogue. */
struct fs_file {
	char name[32];
	uint64_t seed;     /* content: bytes from seed, LEN of them */
	uint64_t len;
	bool acked;        /* the content is durable */
	bool uncertain;    /* a failed operation: unknown state */
	bool live;         /* the name exists (as far as the workload knows) */
};

struct fs_run {
	const char *image, *fs, *faults, *vhdx;
	char work[PATH_MAX], dir[PATH_MAX + 8], vol[PATH_MAX + 16], rules_path[PATH_MAX + 16], log_path[PATH_MAX + 16];
	struct cycle_rules *rules; /* --faults: carried from cycle to cycle (cycle_rules.c) */
	unsigned count, ops;
	uint64_t seed;
	bool json;
	struct fs_file *files;
	unsigned n_files;
	size_t cap_files;
	unsigned classes[CFC__N];
	char first_error[512];     /* of the current cycle: what failed first, "" if nothing */
};

/* Remembers WHAT as the cycle's first error (if it is the first). */
static void note_error(struct fs_run *r, const char *what, const char *name, const char *detail)
{
	if (!r->first_error[0])
		snprintf(r->first_error, sizeof r->first_error, "%s%s%s: %s", what, name ? " " : "", name ? name : "",
			 detail && *detail ? detail : "failed");
}

/* Deterministic content: LEN bytes of a file with SEED from byte AT (byte P is byte P % 8 of word P / 8). */
static void fill(uint8_t *buf, size_t len, uint64_t seed, uint64_t at)
{
	uint64_t word = UINT64_MAX, v = 0;

	for (size_t i = 0; i < len; i++) {
		uint64_t p = at + i;

		if (p / 8 != word) {
			word = p / 8;
			v = splitmix64_mix(seed ^ word);
		}
		buf[i] = (uint8_t)(v >> (8 * (p % 8)));
	}
}

/* Runs `vhdx ARGS...` (this program); its exit status, its output in *OUT. */
static int vhdx_cmd(struct fs_run *r, char **out, const char *a1, const char *a2, const char *a3, const char *a4,
		    const char *a5, const char *a6)
{
	char *argv[] = { (char *)r->vhdx, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5, (char *)a6, NULL };

	return mnt_run(argv, out);
}

/* fsync of a path (a file or the volume's folder); 0 or errno. */
static int sync_path(const char *path)
{
	int fd = open(path, O_RDONLY), e = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) < 0)
		e = errno;
	close(fd);
	return e;
}

/* Writes LEN bytes of content (SEED, from AT) at AT of PATH (created or appended) and fsyncs it; 0 or errno. */
static int write_file(const char *path, bool create, uint64_t seed, uint64_t at, uint64_t len)
{
	uint8_t buf[65536];
	int fd = open(path, create ? O_WRONLY | O_CREAT | O_TRUNC : O_WRONLY | O_APPEND, 0644), e = 0;

	if (fd < 0)
		return errno;
	for (uint64_t done = 0; done < len && !e;) {
		size_t n = len - done < sizeof buf ? (size_t)(len - done) : sizeof buf;
		ssize_t w;

		fill(buf, n, seed, at + done);
		w = write(fd, buf, n);
		if (w < 0)
			e = errno;
		else if (w == 0)
			e = EIO;
		else
			done += (uint64_t)w;
	}
	if (!e && fsync(fd) < 0)
		e = errno;
	if (close(fd) < 0 && !e)
		e = errno;
	return e;
}

/* Checks F under the read-only mount: 0 equal, 1 wrong or missing. */
static int check_file(struct fs_run *r, const struct fs_file *f)
{
	char path[PATH_MAX + 64];
	uint8_t buf[65536], want[65536];
	uint64_t at = 0;
	int fd, bad = 0;

	snprintf(path, sizeof path, "%s/%s", r->vol, f->name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return f->live ? 1 : 0;
	if (!f->live) {
		close(fd);
		return 1; /* deleted, and the delete was acknowledged */
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);

		if (n < 0) {
			bad = 1;
			break;
		}
		if (n == 0)
			break;
		fill(want, (size_t)n, f->seed, at);
		if (at + (uint64_t)n > f->len || memcmp(buf, want, (size_t)n) != 0) {
			bad = 1;
			break;
		}
		at += (uint64_t)n;
	}
	close(fd);
	return bad || at != f->len;
}

static struct fs_file *new_file(struct fs_run *r)
{
	if (grow(&r->files, &r->cap_files, (size_t)r->n_files + 1, sizeof *r->files, 64) < 0)
		return NULL;
	memset(&r->files[r->n_files], 0, sizeof r->files[0]);
	return &r->files[r->n_files++];
}

/* The workload of cycle C on the mounted volume; the number of errors the calls returned. */
static unsigned workload(struct fs_run *r, unsigned c, uint64_t *rng)
{
	char path[PATH_MAX + 64], path2[PATH_MAX + 64];
	unsigned errors = 0;

	for (unsigned op = 0; op < r->ops; op++) {
		uint64_t x = splitmix64_mix((*rng)++);
		unsigned pick = r->n_files ? (unsigned)(x >> 32) % r->n_files : 0;
		struct fs_file *f = r->n_files ? &r->files[pick] : NULL;
		unsigned action = (unsigned)(x % 10);
		int e;

		/* a file in an unknown state (a failed call) is left alone: calls on it would fail by themselves */
		if (!f || !f->live || f->uncertain || action < 4) {
			/* create */
			f = new_file(r);
			if (!f)
				return errors + 1;
			snprintf(f->name, sizeof f->name, "c%u-%u.bin", c, op);
			f->seed = x;
			f->len = 1 + (x >> 8) % (192 * 1024);
			snprintf(path, sizeof path, "%s/%s", r->vol, f->name);
			e = write_file(path, true, f->seed, 0, f->len);
			if (!e)
				e = sync_path(r->vol);
			f->live = true;
			f->acked = !e;
			f->uncertain = e != 0;
			if (e)
				note_error(r, "create", f->name, strerror(e));
		} else if (action < 7) {
			/* append to a live file */
			uint64_t add = 1 + (x >> 12) % (64 * 1024);

			snprintf(path, sizeof path, "%s/%s", r->vol, f->name);
			e = write_file(path, false, f->seed, f->len, add);
			f->len += add;
			f->acked = !e && !f->uncertain;
			f->uncertain |= e != 0;
			if (e)
				note_error(r, "append to", f->name, strerror(e));
		} else if (action < 9) {
			/* rename */
			snprintf(path, sizeof path, "%s/%s", r->vol, f->name);
			snprintf(path2, sizeof path2, "%s/r%u-%u.bin", r->vol, c, op);
			e = rename(path, path2) < 0 ? errno : 0;
			if (!e) {
				snprintf(f->name, sizeof f->name, "r%u-%u.bin", c, op);
				e = sync_path(r->vol);
			}
			f->uncertain |= e != 0;
			f->acked = !f->uncertain;
			if (e)
				note_error(r, "rename", f->name, strerror(e));
		} else {
			/* delete */
			snprintf(path, sizeof path, "%s/%s", r->vol, f->name);
			e = unlink(path) < 0 ? errno : 0;
			if (!e)
				e = sync_path(r->vol);
			f->live = false;
			f->uncertain |= e != 0;
			f->acked = !f->uncertain;
			if (e)
				note_error(r, "delete", f->name, strerror(e));
		}
		errors += e != 0;
	}
	return errors;
}

/*
 * The check mount found a volume its driver refuses (ntfs-3g: "$MFTMirr
 * does not match $MFT" after a write error it reported): repair it as the
 * agent's next attach would (Windows runs chkdsk; here the file system's
 * own tool on the partition file, ntfsfix or e2fsck -p, while vhdx mount
 * holds the disk), then mount again.  True when the tool ran and said it
 * repaired (the caller then checks every file as usual).
 */
static bool repair_volume(struct fs_run *r, unsigned cyc)
{
	char part[PATH_MAX + 64], *out = NULL;
	char *argv_n[] = { (char *)"ntfsfix", part, NULL };
	char *argv_e[] = { (char *)"e2fsck", (char *)"-p", part, NULL };
	bool ntfs = strcmp(r->fs, "ntfs") == 0;
	int ret;

	snprintf(part, sizeof part, "%s/%s/p1", r->dir, MNT_DISK_DIR);
	if (access(part, F_OK) != 0)
		return false;
	ret = mnt_run(ntfs ? argv_n : argv_e, &out);
	/* e2fsck -p: 1 means errors were corrected */
	if (ret != 0 && !(!ntfs && ret == 1)) {
		fprintf(stderr, "vhdx cycle: cycle %u: the volume did not mount, and %s could not repair it: %s\n", cyc,
			ntfs ? "ntfsfix" : "e2fsck -p", out ? out : "");
		free(out);
		return false;
	}
	fprintf(stderr, "vhdx cycle: cycle %u: the volume did not mount; %s repaired it\n", cyc, ntfs ? "ntfsfix" : "e2fsck -p");
	free(out);
	out = NULL;
	vhdx_cmd(r, &out, "umount", r->dir, NULL, NULL, NULL, NULL);
	free(out);
	out = NULL;
	vhdx_cmd(r, &out, "mount", "--rw", r->image, r->dir, NULL, NULL);
	free(out);
	return true;
}

static void help(FILE *f)
{
	fprintf(f, "Usage: vhdx cycle mount --fs ext4|ntfs --image FILE --count N [--faults RULES] [--seed S]\n"
		   "                        [--ops N] [--json]\n\n"
		   "The scratch-disk cycle at the volume level (root): each cycle mounts IMAGE and\n"
		   "its first partition's file system read-write with 'vhdx mount --rw' (RULES in\n"
		   "vhdxfs), creates, appends to, renames and deletes files with fsync, unmounts\n"
		   "('vhdx umount'), then mounts again without faults (writable, so that the\n"
		   "journal is replayed, as the next mount would) and checks every file the\n"
		   "workload was told is durable.  A missing IMAGE is made: a GPT disk of 256 MiB\n"
		   "with one partition formatted by mkfs.ext4 or mkntfs.\n\n"
		   "Classes: clean, unexpected (an error without a fault), reported (errors\n"
		   "surfaced), absorbed (nothing surfaced, and every fault was a failed read whose\n"
		   "bytes a later read fetched without error, as when the kernel's readahead\n"
		   "fails and the page is read again: the fault changed nothing; the fault log\n"
		   "marks such reads reread=yes), repaired (errors surfaced, and the volume\n"
		   "mounted again only after its own repair tool, ntfsfix or e2fsck -p, as\n"
		   "Windows runs chkdsk; every acknowledged file is then checked), silent (faults\n"
		   "injected, nothing surfaced, not all absorbed, or a repair nobody was told of),\n"
		   "damaged (the volume does not mount again, even after the repair), lost (an\n"
		   "acknowledged file is missing or wrong).\n"
		   "Exit status 3 when a cycle is damaged or lost data.\n");
}

/* Makes IMAGE: 256 MiB, GPT, one partition with the file system FS. 0 or -1 (message printed). */
static int make_image(struct fs_run *r)
{
	char mnt[PATH_MAX + 16], disk[PATH_MAX + 32], p1[PATH_MAX + 32], *out = NULL, *vhdxfs = cycle_find_vhdxfs(NULL);
	int ret = -1;

	snprintf(mnt, sizeof mnt, "%s/setup", r->work);
	snprintf(disk, sizeof disk, "%s/disk", mnt);
	snprintf(p1, sizeof p1, "%s/p1", mnt);
	if (!vhdxfs || vhdx_cmd(r, &out, "create", "--size", "256M", r->image, NULL, NULL) != 0) {
		tool_error("cycle", "cannot create %s: %s", r->image, vhdxfs ? out : "vhdxfs not found");
		goto out;
	}
	mkdir(mnt, 0700);
	{
		char *argv[] = { vhdxfs, (char *)"-o", (char *)"rw", (char *)r->image, mnt, NULL };
		char *argv_s[] = { (char *)"sgdisk", (char *)"-n", (char *)"1:0:0", (char *)"-t",
				   (char *)(strcmp(r->fs, "ntfs") ? "1:8300" : "1:0700"), disk, NULL };
		char *argv_e[] = { (char *)"mkfs.ext4", (char *)"-q", (char *)"-F", p1, NULL };
		char *argv_n[] = { (char *)"mkntfs", (char *)"-Q", (char *)"-F", p1, NULL };

		free(out);
		if (mnt_run(argv, &out) != 0) {
			tool_error("cycle", "vhdxfs %s: %s", r->image, out);
			goto out;
		}
		free(out);
		if (mnt_run(argv_s, &out) != 0) {
			tool_error("cycle", "sgdisk: %s", out);
		} else {
			for (int i = 0; i < 40 && access(p1, F_OK) != 0; i++)
				mnt_sleep_ms(100); /* the table is read again after sgdisk's flush */
			free(out);
			if (mnt_run(strcmp(r->fs, "ntfs") ? argv_e : argv_n, &out) != 0)
				tool_error("cycle", "formatting %s: %s", p1, out);
			else
				ret = 0;
		}
		{
			/* the first cycle's mount must not find the image still locked by this vhdxfs */
			pid_t pid = mnt_daemon_pid("vhdxfs", mnt);

			if (mnt_fuse_unmount(mnt, NULL) != 0 || !mnt_wait_exit(pid)) {
				tool_error("cycle", "cannot unmount %s", mnt);
				ret = -1;
			}
		}
		rmdir(mnt);
	}
out:
	free(out);
	free(vhdxfs);
	return ret;
}

static void help_stdout(void)
{
	help(stdout);
}

/* The options of `vhdx cycle mount --fs`, in getopt's order (cycle_setup.c parses them). */
static const struct cycle_opt fs_opts[] = {
	{ .name = "fs", .kind = CYCLE_OPT_STR, .field = offsetof(struct fs_run, fs) },
	{ .name = "image", .kind = CYCLE_OPT_STR, .field = offsetof(struct fs_run, image) },
	{ .name = "count", .kind = CYCLE_OPT_UINT, .field = offsetof(struct fs_run, count), .min = 1, .max = 100000 },
	{ .name = "faults", .kind = CYCLE_OPT_STR, .field = offsetof(struct fs_run, faults) },
	{ .name = "seed", .kind = CYCLE_OPT_U64, .field = offsetof(struct fs_run, seed), .max = UINT64_MAX },
	{ .name = "ops", .kind = CYCLE_OPT_UINT, .field = offsetof(struct fs_run, ops), .min = 1, .max = 10000 },
	{ .name = "json", .kind = CYCLE_OPT_FLAG, .field = offsetof(struct fs_run, json) },
	{ .name = "help", .short_name = 'h', .kind = CYCLE_OPT_HELP },
	{ .name = NULL },
};

static const struct cycle_cli fs_cli = {
	.name = "mount", .image_opt = "image", .opts = fs_opts, .help = help_stdout, .usage = help,
};

/*
 * The run's set-up: this program (for `vhdx mount` and `vhdx umount`) into
 * EXE, the work folder and its paths, the rules of --faults, and the image
 * made when missing.  EXIT_OK, else the exit status after the message, the
 * work folder removed.
 */
static int set_up(struct fs_run *r, char *exe, size_t n_exe)
{
	ssize_t n = tool_self_exe(exe, n_exe);

	if (n <= 0) {
		tool_error("cycle", "cannot find this program (/proc/self/exe)");
		return EXIT_ERR;
	}
	exe[n] = '\0';
	r->vhdx = exe;
	snprintf(r->work, sizeof r->work, "/tmp/vhdx-cycle-fs.XXXXXX");
	if (!mkdtemp(r->work)) {
		tool_error("cycle", "mkdtemp: %s", strerror(errno));
		return EXIT_ERR;
	}
	snprintf(r->dir, sizeof r->dir, "%s/vol", r->work);
	snprintf(r->vol, sizeof r->vol, "%s/p1", r->dir);
	snprintf(r->rules_path, sizeof r->rules_path, "%s/rules", r->work);
	snprintf(r->log_path, sizeof r->log_path, "%s/fault.log", r->work);
	if (r->faults && cycle_rules_load(r->faults, r->seed, &r->rules) < 0) {
		rmdir(r->work);
		return EXIT_USAGE;
	}
	if (access(r->image, F_OK) != 0 && make_image(r) < 0) {
		cycle_rules_free(r->rules);
		r->rules = NULL;
		rmdir(r->work);
		return EXIT_ERR;
	}
	return EXIT_OK;
}

/*
 * Cycle CYC's mount as the agent does it, with this cycle's rules in
 * vhdxfs (FAULTS, their file; counts go on from the cycles before).  1
 * when the mount failed (noted as the cycle's first error), 0 when it
 * mounted, -1 when the rules cannot be written (message printed).
 */
static int mount_cycle(struct fs_run *r, unsigned cyc, char *faults, char **out)
{
	int ret;

	if (r->rules) {
		FILE *f = fopen(r->rules_path, "w");

		if (!f || cycle_rules_emit(r->rules, cyc, f) < 0 || fclose(f) != 0) {
			tool_error("cycle", "%s: cannot write the rules", r->rules_path);
			return -1;
		}
	}
	unlink(r->log_path);
	if (faults) {
		char *argv_m[] = { (char *)r->vhdx, (char *)"mount", (char *)"--rw", (char *)"--faults", faults,
				   (char *)"--fault-log", r->log_path, (char *)r->image, r->dir, NULL };

		ret = mnt_run(argv_m, out);
	} else {
		ret = vhdx_cmd(r, out, "mount", "--rw", r->image, r->dir, NULL, NULL);
	}
	r->first_error[0] = '\0';
	if (ret != 0)
		note_error(r, "vhdx mount", NULL, *out);
	return ret != 0;
}

/*
 * Cycle CYC's unmount (vhdx umount); a failure is reported to the agent and
 * tried again once.  The errors it counts (0 or 1), or -1 when the second
 * try left something mounted (message printed).
 */
static int umount_cycle(struct fs_run *r, unsigned cyc, char **out)
{
	if (vhdx_cmd(r, out, "umount", r->dir, NULL, NULL, NULL, NULL) == 0)
		return 0;
	note_error(r, "vhdx umount", NULL, *out);
	mnt_sleep_ms(500);
	free(*out);
	*out = NULL;
	if (vhdx_cmd(r, out, "umount", r->dir, NULL, NULL, NULL, NULL) != 0 &&
	    strstr(*out ? *out : "", "nothing of 'vhdx mount' is there") == NULL) {
		tool_error("cycle", "cycle %u: vhdx umount %s failed: %s", cyc, r->dir, *out ? *out : "");
		return -1;
	}
	return 1;
}

int cycle_fs_main(int argc, char **argv)
{
	struct fs_run r = { .count = 0, .ops = 16, .seed = 1 };
	char exe[PATH_MAX], *image = NULL, *out = NULL, *faults = NULL, *silent_log = NULL;
	struct report rep;
	uint64_t rng;
	int rc = EXIT_OK;

	if (cycle_cli_parse(&fs_cli, &r, argc, argv, &rc) < 0)
		return rc;
	if (!r.fs || (strcmp(r.fs, "ext4") && strcmp(r.fs, "ntfs")) || !r.image || !r.count || optind != argc) {
		tool_error("cycle", "cycle mount --fs takes ext4 or ntfs, --image FILE and --count N (see --help)");
		return EXIT_USAGE;
	}
	rc = set_up(&r, exe, sizeof exe);
	if (rc != EXIT_OK)
		return rc;
	image = realpath(r.image, NULL);
	if (!image) {
		tool_error("cycle", "%s: %s", r.image, strerror(errno));
		rc = EXIT_ERR;
		goto out;
	}
	faults = r.rules ? r.rules_path : NULL;
	r.image = image;
	rng = splitmix64_mix(r.seed);
	if (r.json) {
		report_init(&rep, stdout, true);
		report_begin(&rep, NULL);
		report_str(&rep, "fs", r.fs);
		report_str(&rep, "image", r.image);
		report_begin_list(&rep, "cycles");
	}
	for (unsigned cyc = 1; cyc <= r.count; cyc++) {
		unsigned errors = 0, injected = 0, reread = 0, lost = 0;
		enum cycle_fs_class cls;
		bool repaired;
		int ret;

		free(out);
		out = NULL;
		ret = mount_cycle(&r, cyc, faults, &out);
		if (ret < 0) {
			rc = EXIT_ERR;
			break;
		}
		errors += (unsigned)ret;
		if (access(r.vol, F_OK) == 0 && mnt_is_mounted(r.vol))
			errors += workload(&r, cyc, &rng);

		free(out);
		out = NULL;
		ret = umount_cycle(&r, cyc, &out);
		if (ret < 0) {
			rc = EXIT_ERR;
			break;
		}
		errors += (unsigned)ret;
		/* what was injected, from mount to unmount: the log vhdxfs wrote when it ended */
		if (r.rules) {
			char *log = mnt_read_all(r.log_path, NULL);

			injected = cycle_log_faults(log, &reread);
			cycle_rules_account(r.rules, log);
			/* faults that may end up surfacing nowhere: keep their lines for the verdict below */
			free(silent_log);
			silent_log = injected && !errors ? log : NULL;
			if (!silent_log)
				free(log);
		}
		/*
		 * verify as the agent's next mount sees the volume: without faults, and
		 * writable, so that the file system replays its journal (a read-only
		 * mount skips it, and would call data lost that the journal holds)
		 */
		free(out);
		out = NULL;
		ret = vhdx_cmd(&r, &out, "mount", "--rw", r.image, r.dir, NULL, NULL);
		repaired = false;
		if (ret != 0 || !mnt_is_mounted(r.vol))
			repaired = repair_volume(&r, cyc);
		if (!mnt_is_mounted(r.vol)) {
			cls = cycle_fs_classify(true, repaired, 0, errors, injected, reread);
		} else {
			for (unsigned i = 0; i < r.n_files; i++)
				if (r.files[i].acked && !r.files[i].uncertain && check_file(&r, &r.files[i])) {
					lost++;
					fprintf(stderr, "vhdx cycle: cycle %u: acknowledged file %s (%s, %" PRIu64
						" bytes) is missing or wrong\n", cyc, r.files[i].name,
						r.files[i].live ? "present" : "deleted", r.files[i].len);
				}
			cls = cycle_fs_classify(false, repaired, lost, errors, injected, reread);
		}
		free(out);
		out = NULL;
		if (vhdx_cmd(&r, &out, "umount", r.dir, NULL, NULL, NULL, NULL) != 0 && access(r.dir, F_OK) == 0 &&
		    mnt_is_mounted(r.vol)) {
			tool_error("cycle", "cycle %u: vhdx umount %s failed: %s", cyc, r.dir, out ? out : "");
			rc = EXIT_ERR;
			break;
		}
		if (cls == CFC_SILENT && silent_log)
			fprintf(stderr, "vhdx cycle: cycle %u: silent; the faults vhdxfs injected:\n%s", cyc, silent_log);
		r.classes[cls]++;
		if (cls >= CFC_DAMAGED)
			rc = EXIT_PROBLEMS;
		if (r.json) {
			report_begin(&rep, NULL);
			report_u64(&rep, "cycle", cyc);
			report_str(&rep, "class", cycle_fs_class_name(cls));
			report_u64(&rep, "faults_injected", injected);
			report_u64(&rep, "faults_reread", reread);
			report_u64(&rep, "errors", errors);
			report_u64(&rep, "lost_files", lost);
			report_str(&rep, "first_error", r.first_error);
			report_end(&rep);
		} else {
			printf("cycle %u: %s (faults injected %u, failed reads read again %u, errors %u, lost files %u)%s%s\n",
			       cyc, cycle_fs_class_name(cls), injected, reread, errors, lost, r.first_error[0] ? "; first error: " : "",
			       r.first_error);
		}
	}
	if (r.json) {
		report_end_list(&rep);
		report_begin(&rep, "summary");
		for (int k = 0; k < CFC__N; k++)
			report_u64(&rep, cycle_fs_class_name((enum cycle_fs_class)k), r.classes[k]);
		report_end(&rep);
		report_end(&rep);
		report_finish(&rep);
	} else {
		printf("summary:");
		for (int k = 0; k < CFC__N; k++)
			printf(" %s %u", cycle_fs_class_name((enum cycle_fs_class)k), r.classes[k]);
		printf("\n");
	}
out:
	vhdx_cmd(&r, NULL, "umount", r.dir, NULL, NULL, NULL, NULL);
	rmdir(r.dir);
	unlink(r.rules_path);
	unlink(r.log_path);
	rmdir(r.work);
	cycle_rules_free(r.rules);
	free(out);
	free(image);
	free(r.files);
	free(silent_log);
	return rc;
}
