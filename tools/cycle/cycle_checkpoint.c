/*
 * cycle_checkpoint.c - `vhdx cycle checkpoint`: a backup product's Hyper-V
 * incremental with recovery checkpoints (issue #7), repeated N times with
 * fault injection, in this process.
 *
 * Backup Exec (and others) back up a running Hyper-V VM like this: create a
 * recovery checkpoint (a new AVHDX over the current leaf; the VM goes on
 * writing there), read the layer below, which no longer changes, and merge
 * the previous checkpoint down.  When a merge fails and leaves a checkpoint
 * behind, the next job fails with 0xA000971E ("another recovery checkpoint
 * exists"); when a checkpoint cannot be made, with 0xA0009723.  Each round:
 *
 *   1. detect leftovers: the chain of the current leaf must be base + leaf;
 *      more layers (a failed or crashed merge of an earlier round) are the
 *      0xA000971E case: reported, then resolved by merging them into the
 *      base (an interrupted merge, CHILD.merging, is resumed first)
 *   2. create checkpoint N over the leaf (vhdx_create with a parent); a
 *      failure is the 0xA0009723 case: the VM goes on writing into the old
 *      leaf and the round ends after the verification
 *   3. the VM writes its workload into the new checkpoint (deterministic from
 *      --seed and the round; these writes see no faults: they are Hyper-V's)
 *   4. the backup reads the layer below (the previous checkpoint with its
 *      chain) and compares every sector with the model of what the VM had
 *      written when the checkpoint was taken
 *   5. merge the previous checkpoint into the base (vhdx_merge, re-linking
 *      the new checkpoint, deleting the merged file); then the base alone
 *      must read as that model
 *   6. verify, without faults: the new leaf's chain reads as everything the
 *      VM wrote
 *
 * The fault rules apply to steps 1, 2, 4 and 5 (creation, the backup's
 * reads, the merges), each through a fault engine of its own whose rules
 * continue the counts of the steps before (cycle_rules.c), so a crash rule
 * ends one step and not the run.  Events, steps and classification are those
 * of `vhdx cycle mount` (cycle.h).  After the last round, leftovers are
 * merged without faults and the chain must be base + leaf.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/splitmix.h"
#include "cycle.h"

#define CODE_EXISTS 0xA000971Eu     /* another recovery checkpoint exists */
#define CODE_CANNOT_CREATE 0xA0009723u /* cannot create a recovery checkpoint */
#define MAX_LAYERS 64

struct ck_run {
	const char *base;
	const char *faults;
	uint64_t seed;
	unsigned count, ops;
	uint64_t size, block_size;
	enum vhdx_format format;    /* of the base, and so of every checkpoint */
	bool json, verbose, quiet;
	struct cycle_rules *rules;
	unsigned engine_seq;        /* numbers the fault engines (seeds of random rules) */
	char *leaf;                 /* the current leaf (the base before the first checkpoint) */
	bool leftover_expected;     /* a merge failed earlier: extra layers are no surprise */
	char *pending[MAX_LAYERS];  /* children of merges that failed (their files may remain) */
	unsigned n_pending;
	struct cycle_model *m;      /* what the VM wrote */
	/* totals */
	struct cycle_totals tot;    /* rounds and faults per class */
	uint64_t create_failed, extra_detected, extra_resolved, merge_failed, merge_crashed, merge_resumed,
		backup_failed, backup_bad, merges_ok, unexpected_extra, leftover_deleted;
};

/* What one round did, beside the shared struct cycle_result. */
struct ck_round {
	unsigned depth_found;       /* images of the leaf's chain at the start, the base included */
	bool extra_detected, extra_resolved, resumed;
	bool create_failed, merge_failed, merge_crashed, backup_failed, leftover_deleted;
	char checkpoint[PATH_MAX];
	uint64_t backup_sectors, backup_bad;
	struct cycle_check merge_ck; /* the base after the merge against the checkpoint's model */
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vhdx cycle checkpoint --base FILE --count N [--faults RULES] [--seed S] [--json]\n"
		   "Try 'vhdx cycle checkpoint --help' for more information.\n");
}

static void help(void)
{
	printf(
"Usage: vhdx cycle checkpoint --base FILE --count N [--faults RULES] [--seed S] [--json]\n"
"                             [--ops N] [--size N] [--block-size N] [-v|-q]\n"
"\n"
"Emulates a backup product's Hyper-V incremental with recovery checkpoints, N\n"
"rounds, in this process.  Each round: detect extra checkpoints left by an\n"
"earlier round (reported as 0xA000971E, 'another recovery checkpoint exists',\n"
"then merged into the base; an interrupted merge is resumed), create a new\n"
"AVHDX over the current leaf (a failure is 0xA0009723, 'cannot create a\n"
"recovery checkpoint'), let the VM write a workload into it (a function of\n"
"--seed and the round), read the layer below as the backup does and compare\n"
"each sector with what the VM had written, merge the previous checkpoint into\n"
"the base (re-linking the new one, deleting the merged file) and check that\n"
"the base reads as the backup read.  Checkpoints are FILE's folder's\n"
"STEM-ckpt-NNNN.avhdx (.avhd over a VHD).  After the last round, leftovers\n"
"are merged without faults: the chain must end as base + one checkpoint.\n"
"\n"
"The fault rules (the language of libvhdx(3), 'Fault injection') apply to the\n"
"checkpoint creation, the backup's reads and the merges, each through an\n"
"engine of its own whose rules continue the counts of the steps before (a\n"
"crash ends that step only; the next round resumes the merge).  The VM's\n"
"writes and the verifications see no faults.  Rounds and faults are classified\n"
"as by 'vhdx cycle mount':\n"
"\n");
	cycle_print_classes(2);
	printf(
"\n"
"Options:\n"
"  --base FILE       the base disk (created when missing: VHD if its name ends\n"
"                    in .vhd, else VHDX); its contents are the initial model\n"
"  --count N         rounds\n"
"  --faults RULES    fault rules file (default: none)\n"
"  --seed S          seed of the workload and of random rules (default 1)\n"
"  --ops N           VM writes per round (default 16)\n"
"  --size N          virtual size of a new base (default 32M)\n"
"  --block-size N    block size of a new base (default 1M)\n"
"  --json            the report as JSON: every round and the totals\n"
"  -v, --verbose     every fault and error of every round that was not clean\n"
"  -q, --quiet       only the summary\n"
"  -h, --help        this text\n"
"\n"
"Exit status: 0 no silent fault, no unexpected error, no damage or lost data\n"
"and the chain ends at depth 2 (the base and one checkpoint; depth counts the\n"
"images of a chain, as 'vhdx info' and 'vhdx checkpoints' do); 1 an error of the command; 2 usage; 3 otherwise.\n");
}

/* ------------------------------------------------------------ fault engines per step */

/* A new engine holding the rules for the next step (counts carried), or NULL without rules. */
static struct vhdx_faults *engine_begin(struct ck_run *run)
{
	struct vhdx_faults *f = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *mf;

	if (!cycle_rules_count(run->rules))
		return NULL;
	mf = open_memstream(&text, &len);
	if (!mf)
		return NULL;
	cycle_rules_emit(run->rules, ++run->engine_seq, mf);
	if (fclose(mf) != 0 || !text) {
		free(text);
		return NULL;
	}
	if (vhdx_faults_new(&f) == 0 && vhdx_faults_add(f, text) < 0) {
		vhdx_faults_free(f);
		f = NULL;
	}
	free(text);
	return f;
}

/* Adds the engine's events to RES (attributed to STEP), carries the counts, frees it. */
static void engine_end(struct ck_run *run, struct vhdx_faults *f, struct cycle_result *res, int step)
{
	char *text = NULL, *listing = NULL;
	uint64_t seen = 0;

	if (!f)
		return;
	if (vhdx_faults_format_events(f, 0, &text, NULL) == 0 && text)
		cycle_result_events(res, run->rules, text, &seen, step);
	/* the library's messages number the rules of this engine's set: say the rules file's numbers */
	if (step >= 0 && (size_t)step < res->n_steps)
		cycle_rules_renumber(run->rules, &res->steps[step].msg);
	if (vhdx_faults_format_rules(f, &listing) == 0 && listing)
		cycle_rules_account(run->rules, listing);
	free(text);
	free(listing);
	vhdx_faults_free(f);
}

/* Whether an event of RES attributed to STEP was a crash. */
static bool step_crashed(const struct cycle_result *res, int step)
{
	for (size_t i = 0; i < res->n_events; i++)
		if (res->events[i].step == step && !strcmp(res->events[i].action, "crash"))
			return true;
	return false;
}

/* ------------------------------------------------------------ the chain */

/*
 * The layer paths of the leaf's chain (leaf first), opened without faults
 * and accepting mismatched links (an interrupted merge leaves one).  Returns
 * the number of layers or -errno.
 */
static int chain_paths(const char *leaf, char paths[][PATH_MAX], unsigned max)
{
	struct vhdx_image *img;
	struct vhdx_info info = { .struct_size = sizeof info };
	int ret;

	ret = tool_open_flags(leaf, VHDX_OPEN_IGNORE_ID_MISMATCH, NULL, &img);
	if (ret < 0)
		return ret;
	ret = vhdx_get_info(img, &info);
	if (ret == 0) {
		for (unsigned i = 0; i < info.layers && i < max; i++)
			snprintf(paths[i], PATH_MAX, "%s", vhdx_layer_path(img, i));
		ret = (int)(info.layers < max ? info.layers : max);
	}
	vhdx_close(img);
	return ret;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void pending_add(struct ck_run *run, const char *child)
{
	for (unsigned i = 0; i < run->n_pending; i++)
		if (!strcmp(run->pending[i], child))
			return;
	if (run->n_pending < MAX_LAYERS && (run->pending[run->n_pending] = strdup(child)))
		run->n_pending++;
}

static void pending_drop(struct ck_run *run, unsigned i)
{
	free(run->pending[i]);
	run->pending[i] = run->pending[--run->n_pending];
}

/*
 * A merge that failed after re-pointing the layer above (closing that
 * layer failed, say) leaves the merged file, and its CHILD.merging, outside
 * the chain: the layer above already builds on the base.  Merging it again
 * would write old data over newer merges, so it is deleted instead: the
 * "failed delete" leftover of a backup job.  PATHS: the current chain.
 */
static void drop_merged_leftovers(struct ck_run *run, struct ck_round *rd, char paths[][PATH_MAX], int n)
{
	for (unsigned i = 0; i < run->n_pending;) {
		char rec[PATH_MAX + 16];
		bool in_chain = false;

		for (int k = 0; k < n && !in_chain; k++)
			in_chain = !strcmp(paths[k], run->pending[i]);
		if (in_chain) {
			i++;
			continue;
		}
		snprintf(rec, sizeof rec, "%s.merging", run->pending[i]);
		if (exists(run->pending[i])) {
			unlink(run->pending[i]);
			run->leftover_deleted++;
			rd->leftover_deleted = true;
		}
		unlink(rec);
		pending_drop(run, i);
	}
}

/*
 * One merge step: merges the layers between the leaf and the base into the
 * base (an interrupted merge first: the deepest layer with a CHILD.merging
 * record), re-linking the layer above, deleting the merged ones.  Records
 * step WHAT in RES.  0 when the chain is base + leaf (or less) afterwards,
 * 1 when a merge failed, -1 on an error of the command.
 */
static int merge_down(struct ck_run *run, struct cycle_result *res, struct ck_round *rd, const char *what,
		      bool with_faults)
{
	for (int iter = 0; iter < 4; iter++) {
		static char paths[MAX_LAYERS][PATH_MAX];
		char rec[PATH_MAX + 16];
		const char *relink[2] = { NULL, NULL };
		struct vhdx_merge_options mo;
		struct vhdx_faults *f;
		int n = chain_paths(run->leaf, paths, MAX_LAYERS), child = 1, step, ret;
		bool resuming = false;

		if (n < 0) {
			cycle_result_step(res, what, CYCLE_NONE, CYCLE_NONE, -n, vhdx_errmsg());
			return 1;
		}
		drop_merged_leftovers(run, rd, paths, n);
		if (n <= 2)
			return 0;
		for (int i = n - 2; i >= 1; i--) {
			snprintf(rec, sizeof rec, "%s.merging", paths[i]);
			if (exists(rec)) {
				child = i;
				resuming = true;
				break;
			}
		}
		relink[0] = paths[child - 1];
		vhdx_merge_options_init(&mo);
		mo.into = paths[n - 1];
		mo.flags = VHDX_MERGE_DELETE;
		mo.relink = relink;
		f = with_faults ? engine_begin(run) : NULL;
		mo.faults = f;
		ret = vhdx_merge(paths[child], &mo);
		step = cycle_result_step(res, what, CYCLE_NONE, CYCLE_NONE, ret < 0 ? -ret : 0,
					 ret < 0 ? vhdx_errmsg() : NULL);
		engine_end(run, f, res, step);
		if (ret < 0) {
			pending_add(run, paths[child]);
			rd->merge_failed = true;
			run->merge_failed++;
			if (step >= 0 && step_crashed(res, step)) {
				rd->merge_crashed = true;
				run->merge_crashed++;
			}
			run->leftover_expected = true;
			return 1;
		}
		run->merges_ok++;
		for (unsigned i = 0; i < run->n_pending; i++)
			if (!strcmp(run->pending[i], paths[child])) {
				pending_drop(run, i);
				break;
			}
		if (resuming) {
			rd->resumed = true;
			run->merge_resumed++;
		}
	}
	return 1;
}

/* ------------------------------------------------------------ the VM */

/* Deterministic bytes of write OP of round ROUND at VOFF, unique per sector (the model names versions by hash). */
static void fill(uint8_t *buf, uint64_t len, uint64_t seed, unsigned round, unsigned op, uint64_t voff)
{
	for (uint64_t s = 0; s < len / CYCLE_SECTOR; s++) {
		uint64_t x = splitmix64_mix(seed ^ splitmix64_mix(((uint64_t)round << 32) | op) ^ splitmix64_mix(voff + s * CYCLE_SECTOR));
		for (unsigned i = 0; i < CYCLE_SECTOR; i += 8) {
			x = splitmix64_mix(x);
			memcpy(buf + s * CYCLE_SECTOR + i, &x, 8);
		}
	}
}

/* The VM's writes of round ROUND into LEAF (no faults: they are the hypervisor's). 0 or -errno. */
static int vm_write(struct ck_run *run, const char *leaf, unsigned round)
{
	struct vhdx_image *img;
	uint64_t rng = splitmix64_mix(run->seed * 0x100000001b3ull + round), nsec = run->size / CYCLE_SECTOR;
	uint8_t *buf = malloc(256u << 10);
	uint64_t *hashes = malloc((256u << 10) / CYCLE_SECTOR * sizeof *hashes);
	int ret;

	if (!buf || !hashes) {
		free(buf);
		free(hashes);
		return -ENOMEM;
	}
	/* parents may wait for a resumed merge */
	ret = tool_open_flags(leaf, VHDX_OPEN_RDWR | VHDX_OPEN_IGNORE_ID_MISMATCH, NULL, &img);
	for (unsigned op = 1; ret == 0 && op <= run->ops; op++) {
		uint64_t nsz, voff, len;
		ssize_t w;

		rng = splitmix64_mix(rng);
		/* small writes (4-32 KiB) mostly, some large (64-256 KiB), some across block ends */
		nsz = (rng & 3) == 0 ? 128 + (rng >> 8) % 385 : 8 + (rng >> 8) % 57;
		len = nsz * CYCLE_SECTOR;
		if (len > nsec * CYCLE_SECTOR)
			len = nsec * CYCLE_SECTOR;
		rng = splitmix64_mix(rng);
		voff = (rng % (nsec - len / CYCLE_SECTOR + 1)) * CYCLE_SECTOR;
		if (op % 5 == 0 && run->block_size < run->size) {
			/* straddle a block boundary: partial blocks in two checkpoints */
			uint64_t b = ((rng >> 20) % (run->size / run->block_size - 1) + 1) * run->block_size;
			voff = b >= len / 2 ? b - len / 2 : 0;
			voff -= voff % CYCLE_SECTOR;
		}
		fill(buf, len, run->seed, round, op, voff);
		w = vhdx_pwrite(img, buf, (size_t)len, voff);
		if (w < 0 || (uint64_t)w != len) {
			ret = w < 0 ? (int)w : -EIO;
			break;
		}
		for (uint64_t s = 0; s < len / CYCLE_SECTOR; s++)
			hashes[s] = cycle_sector_hash(buf + s * CYCLE_SECTOR);
		cycle_model_write_ok(run->m, voff, len, hashes, round, op);
	}
	if (ret == 0)
		ret = vhdx_flush(img);
	if (ret == 0)
		cycle_model_fsync(run->m, true);
	{
		int r2 = vhdx_close(img);
		if (ret == 0 && r2 < 0)
			ret = r2;
	}
	free(buf);
	free(hashes);
	return ret;
}

/* Compares the chain of PATH (no faults unless F) with model M into *CK. 0 or -errno. */
static int verify_chain(const char *path, struct cycle_model *m, unsigned flags, struct vhdx_faults *f,
			struct cycle_check *ck)
{
	struct vhdx_image *img;
	int ret;

	ret = tool_open_flags(path, flags, f, &img);
	if (ret < 0)
		return ret;
	ret = cycle_model_verify(m, img, false, ck);
	vhdx_close(img);
	return ret;
}

static void add_check(struct cycle_check *dst, const struct cycle_check *src)
{
	dst->sectors += src->sectors;
	dst->lost += src->lost;
	dst->damaged += src->damaged;
	dst->uncertain += src->uncertain;
	for (unsigned i = 0; i < src->n_lost_r && dst->n_lost_r < CYCLE_MAX_MISMATCH; i++)
		dst->lost_r[dst->n_lost_r++] = src->lost_r[i];
	for (unsigned i = 0; i < src->n_damaged_r && dst->n_damaged_r < CYCLE_MAX_MISMATCH; i++)
		dst->damaged_r[dst->n_damaged_r++] = src->damaged_r[i];
}

/* ------------------------------------------------------------ one round */

static void checkpoint_name(const struct ck_run *run, unsigned round, char *out, size_t n)
{
	const char *slash = strrchr(run->base, '/'), *name = slash ? slash + 1 : run->base;
	const char *dot = strrchr(name, '.');
	int stem = dot && dot != name ? (int)(dot - name) : (int)strlen(name);

	/* Hyper-V's names: .avhdx over a VHDX, .avhd over a VHD */
	snprintf(out, n, "%.*s%.*s-ckpt-%04u.%s", slash ? (int)(slash - run->base + 1) : 0, run->base, stem, name,
		 round, run->format == VHDX_FORMAT_VHD ? "avhd" : "avhdx");
}

/* Step 1 of a round: the leaf's chain must be base + leaf; more layers are 0xA000971E, then merged down.  0 or -1. */
static int detect_leftovers(struct ck_run *run, struct cycle_result *res, struct ck_round *rd)
{
	static char paths[MAX_LAYERS][PATH_MAX];
	int n;

	n = chain_paths(run->leaf, paths, MAX_LAYERS);
	rd->depth_found = n > 0 ? (unsigned)n : 0;
	if (n > 2) {
		char msg[256];

		rd->extra_detected = true;
		run->extra_detected++;
		snprintf(msg, sizeof msg, "0x%08X another recovery checkpoint exists: %d checkpoints over %s", CODE_EXISTS,
			 n - 1, paths[n - 1]);
		/* expected after a failed merge (it was reported then); otherwise a merge lied */
		cycle_result_step(res, "detect", CYCLE_NONE, CYCLE_NONE, run->leftover_expected ? 0 : EEXIST, msg);
		if (!run->leftover_expected)
			run->unexpected_extra++;
		if (merge_down(run, res, rd, "resolve", true) < 0)
			return -1;
		n = chain_paths(run->leaf, paths, MAX_LAYERS);
		if (n >= 0 && n <= 2) {
			rd->extra_resolved = true;
			run->extra_resolved++;
			run->leftover_expected = false;
		}
	} else if (n < 0) {
		cycle_result_step(res, "detect", CYCLE_NONE, CYCLE_NONE, -n, vhdx_errmsg());
	}
	return 0;
}

/* Step 4 of a round: the backup reads PREV's chain (with faults) and compares it with SNAP, the model when the checkpoint was taken. */
static void backup_read(struct ck_run *run, struct cycle_result *res, struct ck_round *rd, const char *prev,
			struct cycle_model *snap)
{
	struct cycle_check bk = { 0 };
	struct vhdx_faults *f = engine_begin(run);
	int ret, step;

	ret = verify_chain(prev, snap, run->leftover_expected ? VHDX_OPEN_IGNORE_ID_MISMATCH : 0, f, &bk);
	step = cycle_result_step(res, "backup-read", CYCLE_NONE, CYCLE_NONE, ret < 0 ? -ret : 0,
				 ret < 0 ? vhdx_errmsg() : NULL);
	engine_end(run, f, res, step);
	if (ret < 0) {
		rd->backup_failed = true;
		run->backup_failed++;
	} else {
		rd->backup_sectors = bk.sectors;
		/* wrong bytes without an error: the backup would store them */
		rd->backup_bad = bk.lost + bk.damaged;
		res->rb.damaged += rd->backup_bad;
		for (unsigned i = 0; i < bk.n_lost_r && res->rb.n_damaged_r < CYCLE_MAX_MISMATCH; i++)
			res->rb.damaged_r[res->rb.n_damaged_r++] = bk.lost_r[i];
		if (rd->backup_bad)
			run->backup_bad++;
	}
}

/* Step 6 of a round: the leaf's chain holds everything the VM wrote (read without faults). */
static void verify_leaf(struct ck_run *run, struct cycle_result *res)
{
	struct cycle_check ck = { 0 };
	int ret;

	ret = verify_chain(run->leaf, run->m, run->leftover_expected ? VHDX_OPEN_IGNORE_ID_MISMATCH : 0, NULL, &ck);
	if (ret < 0) {
		res->reopen_failed = true;
		free(res->reopen_msg);
		res->reopen_msg = strdup(vhdx_errmsg());
	}
	add_check(&res->ck, &ck);
}

/* Runs round RES->cycle. 0, or -1 on an error of the command (message printed). */
static int run_round(struct ck_run *run, struct cycle_result *res, struct ck_round *rd)
{
	struct vhdx_create_options co;
	struct vhdx_faults *f;
	struct cycle_model *snap_backup = NULL, *snap_merge = NULL;
	char prev[PATH_MAX];
	int step, ret;
	bool prev_is_ckpt;

	/* 1. leftovers of earlier rounds: 0xA000971E, then merged */
	if (detect_leftovers(run, res, rd) < 0)
		return -1;

	/* 2. the new recovery checkpoint over the leaf */
	checkpoint_name(run, res->cycle, rd->checkpoint, sizeof rd->checkpoint);
	vhdx_create_options_init(&co);
	co.parent = run->leaf;
	co.format = run->format;
	f = engine_begin(run);
	co.faults = f;
	ret = vhdx_create(rd->checkpoint, &co);
	if (ret < 0) {
		char msg[1024];

		snprintf(msg, sizeof msg, "0x%08X cannot create a recovery checkpoint: %s", CODE_CANNOT_CREATE,
			 vhdx_errmsg());
		step = cycle_result_step(res, "create", CYCLE_NONE, CYCLE_NONE, -ret, msg);
		engine_end(run, f, res, step);
		rd->create_failed = true;
		run->create_failed++;
		unlink(rd->checkpoint); /* whatever a failed creation left */
		/* the VM goes on in the old leaf */
		ret = vm_write(run, run->leaf, res->cycle);
		if (ret < 0) {
			tool_error("cycle", "the VM's writes into %s failed: %s", run->leaf, vhdx_errmsg());
			return -1;
		}
		goto verify;
	}
	step = cycle_result_step(res, "create", CYCLE_NONE, CYCLE_NONE, 0, NULL);
	engine_end(run, f, res, step);
	snprintf(prev, sizeof prev, "%s", run->leaf);
	prev_is_ckpt = strcmp(prev, run->base) != 0;
	free(run->leaf);
	run->leaf = strdup(rd->checkpoint);
	if (!run->leaf) {
		tool_error("cycle", "out of memory");
		return -1;
	}

	/* the checkpoint's contents: what the VM wrote until now */
	snap_backup = cycle_model_copy(run->m);
	snap_merge = cycle_model_copy(run->m);
	if (!snap_backup || !snap_merge) {
		cycle_model_free(snap_backup);
		cycle_model_free(snap_merge);
		tool_error("cycle", "out of memory for the model");
		return -1;
	}

	/* 3. the VM writes into the new checkpoint */
	ret = vm_write(run, run->leaf, res->cycle);
	if (ret < 0) {
		tool_error("cycle", "the VM's writes into %s failed: %s", run->leaf, vhdx_errmsg());
		cycle_model_free(snap_backup);
		cycle_model_free(snap_merge);
		return -1;
	}

	/* 4. the backup reads the layer below (the previous leaf and its chain) */
	backup_read(run, res, rd, prev, snap_backup);

	/* 5. merge the previous checkpoint down; the base must then read as the checkpoint did */
	if (prev_is_ckpt) {
		int r = merge_down(run, res, rd, "merge", true);

		if (r < 0) {
			cycle_model_free(snap_backup);
			cycle_model_free(snap_merge);
			return -1;
		}
		if (r == 0) {
			ret = verify_chain(run->base, snap_merge, 0, NULL, &rd->merge_ck);
			if (ret < 0) {
				res->reopen_failed = true;
				free(res->reopen_msg);
				res->reopen_msg = strdup(vhdx_errmsg());
			}
			add_check(&res->ck, &rd->merge_ck);
		}
	}
	cycle_model_free(snap_backup);
	cycle_model_free(snap_merge);

verify:
	/* 6. the leaf's chain holds everything the VM wrote (no faults) */
	verify_leaf(run, res);
	cycle_classify(res);
	/* a backup job that met 0xA000971E (or whose merge had to be resumed) failed that round: reported */
	if ((rd->extra_detected || rd->resumed) && res->cls < CC_REPORTED)
		res->cls = CC_REPORTED;
	return 0;
}

/* ------------------------------------------------------------ output */

static const char *first_error(const struct cycle_result *res, char *buf, size_t n)
{
	char nb[24];

	for (size_t s = 0; s < res->n_steps; s++)
		if (res->steps[s].err) {
			snprintf(buf, n, "%s failed: %s: %s", res->steps[s].what,
				 cycle_errno_name(res->steps[s].err, nb, sizeof nb),
				 res->steps[s].msg ? res->steps[s].msg : "");
			return buf;
		}
	return NULL;
}

static void print_round_text(const struct ck_run *run, const struct cycle_result *res, const struct ck_round *rd)
{
	char eb[2048];
	const char *e;

	if (run->quiet || (res->cls == CC_CLEAN && !rd->extra_detected && !rd->leftover_deleted))
		return;
	printf("round %u: %s", res->cycle, cycle_class_name(res->cls));
	if (rd->extra_detected)
		printf("; 0x%08X another recovery checkpoint exists (depth %u: %u checkpoints), %s", CODE_EXISTS,
		       rd->depth_found, rd->depth_found - 1,
		       rd->extra_resolved ? (rd->resumed ? "resumed the interrupted merge, resolved" : "merged, resolved")
					  : "not resolved");
	if (rd->create_failed)
		printf("; 0x%08X cannot create a recovery checkpoint", CODE_CANNOT_CREATE);
	if (rd->backup_failed)
		printf("; the backup's read failed");
	if (rd->merge_failed)
		printf("; the merge %s: a checkpoint is left behind", rd->merge_crashed ? "crashed" : "failed");
	if (!rd->extra_detected && rd->resumed)
		printf("; resumed an interrupted merge");
	if (rd->leftover_deleted)
		printf("; deleted a merged checkpoint left behind by a failed merge");
	if (res->rb.damaged)
		printf("; the backup read %" PRIu64 " wrong sectors without an error", res->rb.damaged);
	if (res->ck.lost)
		printf("; %" PRIu64 " sectors the VM wrote are lost, first at 0x%" PRIx64, res->ck.lost,
		       res->ck.lost_r[0].voff);
	if (res->reopen_failed)
		printf("; verification could not read the chain: %s", res->reopen_msg ? res->reopen_msg : "");
	e = first_error(res, eb, sizeof eb);
	if (e)
		printf("; first error: %s", e);
	printf("\n");
	if (!run->verbose)
		return;
	for (size_t s = 0; s < res->n_steps; s++)
		if (res->steps[s].err || res->steps[s].msg) {
			char nb[24];
			printf("    step %s: %s%s%s\n", res->steps[s].what,
			       res->steps[s].err ? cycle_errno_name(res->steps[s].err, nb, sizeof nb) : "ok",
			       res->steps[s].msg ? ": " : "", res->steps[s].msg ? res->steps[s].msg : "");
		}
	for (size_t i = 0; i < res->n_events; i++) {
		const struct cycle_event *ev = &res->events[i];
		printf("    fault: rule %u (%s) %s %s struct=%s action=%s during %s: %s\n", ev->rule,
		       cycle_rules_text(run->rules, ev->rule), ev->op, ev->file, ev->structure[0] ? ev->structure : "-",
		       ev->action, ev->step >= 0 && (size_t)ev->step < res->n_steps ? res->steps[ev->step].what : "?",
		       cycle_class_name(ev->cls));
	}
}

static void json_round(struct report *r, const struct cycle_result *res, const struct ck_round *rd)
{
	char nb[24];

	report_begin(r, NULL);
	report_u64(r, "round", res->cycle);
	report_str(r, "class", cycle_class_name(res->cls));
	report_str(r, "checkpoint", rd->create_failed ? "" : rd->checkpoint);
	report_u64(r, "depth_found", rd->depth_found);
	report_u64(r, "checkpoints_found", rd->depth_found ? rd->depth_found - 1 : 0);
	report_bool(r, "extra_checkpoint_detected", rd->extra_detected);
	report_bool(r, "extra_checkpoint_resolved", rd->extra_resolved);
	report_bool(r, "merge_resumed", rd->resumed);
	report_bool(r, "merged_leftover_deleted", rd->leftover_deleted);
	report_bool(r, "create_failed", rd->create_failed);
	report_bool(r, "backup_failed", rd->backup_failed);
	report_bool(r, "merge_failed", rd->merge_failed);
	report_bool(r, "merge_crashed", rd->merge_crashed);
	report_u64(r, "backup_sectors", rd->backup_sectors);
	report_u64(r, "backup_wrong_sectors", res->rb.damaged);
	report_u64(r, "lost_sectors", res->ck.lost);
	report_bool(r, "verified", !res->reopen_failed);
	if (res->reopen_msg)
		report_str(r, "verify_message", res->reopen_msg);
	report_f64(r, "seconds", res->seconds, 3);
	report_begin_list(r, "steps");
	for (size_t s = 0; s < res->n_steps; s++) {
		report_begin(r, NULL);
		report_str(r, "step", res->steps[s].what);
		report_str(r, "errno", res->steps[s].err ? cycle_errno_name(res->steps[s].err, nb, sizeof nb) : "");
		/* what Windows would have reported (0x80070020 for a file in use), as vhdx cycle mount does */
		snprintf(nb, sizeof nb, "0x%08X", (unsigned)cycle_win_code(res->steps[s].err));
		report_str(r, "windows", res->steps[s].err && cycle_win_code(res->steps[s].err) ? nb : "");
		report_str(r, "message", res->steps[s].msg ? res->steps[s].msg : "");
		report_end(r);
	}
	report_end_list(r);
	cycle_json_faults(r, res, false);
	report_end(r);
}

/* ------------------------------------------------------------ the command */

/* The options of `vhdx cycle checkpoint`, in getopt's order (cycle_setup.c parses them). */
static const struct cycle_opt checkpoint_opts[] = {
	{ .name = "base", .kind = CYCLE_OPT_STR, .field = offsetof(struct ck_run, base) },
	{ .name = "count", .kind = CYCLE_OPT_UINT, .field = offsetof(struct ck_run, count), .min = 1, .max = 1000000 },
	{ .name = "faults", .kind = CYCLE_OPT_STR, .field = offsetof(struct ck_run, faults) },
	{ .name = "seed", .kind = CYCLE_OPT_U64, .field = offsetof(struct ck_run, seed), .max = UINT64_MAX },
	{ .name = "ops", .kind = CYCLE_OPT_UINT, .field = offsetof(struct ck_run, ops), .min = 1, .max = 10000 },
	{ .name = "size", .kind = CYCLE_OPT_SIZE, .field = offsetof(struct ck_run, size), .min = 1u << 20,
	  .max = UINT64_MAX, .multiple = CYCLE_SECTOR,
	  .bad = "--size takes a multiple of 512 bytes of at least 1M, got " },
	{ .name = "block-size", .kind = CYCLE_OPT_SIZE, .field = offsetof(struct ck_run, block_size), .min = 1,
	  .max = UINT32_MAX, .multiple = 1, .bad = "--block-size: bad size " },
	CYCLE_OPTS_REPORT(struct ck_run),
};

static const struct cycle_cli checkpoint_cli = {
	.name = "checkpoint", .image_opt = "base", .opts = checkpoint_opts, .help = help, .usage = usage,
};

/* Creates the base when missing, checks that it is a base, and makes the model from its contents. EXIT_*. */
static int open_base(struct ck_run *run, struct vhdx_info *info)
{
	int ret, rc;

	if (!exists(run->base)) {
		struct vhdx_create_options co;

		vhdx_create_options_init(&co);
		co.format = cycle_format_of_name(run->base);
		co.type = VHDX_TYPE_DYNAMIC;
		co.virtual_size = run->size;
		co.block_size = (uint32_t)run->block_size;
		ret = vhdx_create(run->base, &co);
		if (ret < 0)
			return tool_lib_error("cycle", ret);
	}
	/* the base's contents now are the model's start; the base must be a base */
	rc = cycle_setup_model(&checkpoint_cli, run->base, true, info, &run->m);
	if (rc != EXIT_OK)
		return rc;
	run->size = info->virtual_size - info->virtual_size % CYCLE_SECTOR;
	run->format = info->format;
	if (info->block_size)
		run->block_size = info->block_size;
	run->leaf = strdup(run->base);
	return run->leaf ? EXIT_OK : EXIT_ERR;
}

/* The last round's cleanup: leftovers merged without faults; base + leaf must remain. EXIT_OK or EXIT_ERR. */
static int final_cleanup(struct ck_run *run, unsigned *final_depth, char *final_msg, size_t n_msg)
{
	struct cycle_result res = { .cycle = run->count + 1 };
	struct ck_round rd;
	static char paths[MAX_LAYERS][PATH_MAX];
	struct cycle_check ck = { 0 };
	int n, rc = EXIT_OK;

	memset(&rd, 0, sizeof rd);
	if (merge_down(run, &res, &rd, "final-merge", false) < 0)
		rc = EXIT_ERR;
	n = chain_paths(run->leaf, paths, MAX_LAYERS);
	*final_depth = n > 0 ? (unsigned)n : 0;
	if (n < 0)
		snprintf(final_msg, n_msg, "the chain of %s does not open: %s", run->leaf, vhdx_errmsg());
	else if (*final_depth != 2)
		snprintf(final_msg, n_msg,
			 "the chain of %s has depth %u after the cleanup (expected 2: the base and one checkpoint)",
			 run->leaf, *final_depth);
	else if (verify_chain(run->leaf, run->m, 0, NULL, &ck) < 0)
		snprintf(final_msg, n_msg, "%s: %s", run->leaf, vhdx_errmsg());
	else if (ck.lost)
		snprintf(final_msg, n_msg, "%" PRIu64 " sectors the VM wrote are lost at the end", ck.lost);
	if (rd.resumed)
		run->merge_resumed++;
	cycle_result_free(&res);
	return rc;
}

static void summary_json(struct report *rep, const struct ck_run *run, double seconds, unsigned final_depth,
			 const char *final_msg, bool bad)
{
	report_end_list(rep);
	report_begin(rep, "summary");
	cycle_totals_json(rep, &run->tot, "rounds", seconds);
	report_u64(rep, "create_failed_0xA0009723", run->create_failed);
	report_u64(rep, "extra_checkpoint_0xA000971E", run->extra_detected);
	report_u64(rep, "extra_checkpoint_resolved", run->extra_resolved);
	report_u64(rep, "extra_checkpoint_unexpected", run->unexpected_extra);
	report_u64(rep, "merges_ok", run->merges_ok);
	report_u64(rep, "merge_failed", run->merge_failed);
	report_u64(rep, "merge_crashed", run->merge_crashed);
	report_u64(rep, "merge_resumed", run->merge_resumed);
	report_u64(rep, "merged_leftover_deleted", run->leftover_deleted);
	report_u64(rep, "backup_read_failed", run->backup_failed);
	report_u64(rep, "backup_read_wrong", run->backup_bad);
	report_begin_list(rep, "rules");
	for (unsigned i = 1; i <= cycle_rules_count(run->rules); i++) {
		report_begin(rep, NULL);
		report_u64(rep, "rule", i);
		report_str(rep, "text", cycle_rules_text(run->rules, i));
		report_u64(rep, "hits", cycle_rules_hits(run->rules, i));
		report_end(rep);
	}
	report_end_list(rep);
	report_str(rep, "final_leaf", run->leaf ? run->leaf : "");
	report_u64(rep, "final_depth", final_depth);
	report_str(rep, "final_problem", final_msg);
	report_str(rep, "verdict", bad ? "problems" : "ok");
	report_end(rep);
	report_end(rep);
	report_finish(rep);
}

static void summary_text(const struct ck_run *run, double seconds, unsigned final_depth, const char *final_msg,
			 bool bad)
{
	cycle_totals_text(&run->tot, "rounds", run->count, seconds);
	printf("  checkpoint creation failed (0x%08X): %" PRIu64 "\n", CODE_CANNOT_CREATE, run->create_failed);
	printf("  extra checkpoint found (0x%08X): %" PRIu64 ", resolved %" PRIu64 ", unexpected %" PRIu64 "\n",
	       CODE_EXISTS, run->extra_detected, run->extra_resolved, run->unexpected_extra);
	printf("  merges: %" PRIu64 " ok, %" PRIu64 " failed (%" PRIu64 " crashed), %" PRIu64
	       " resumed, %" PRIu64 " merged leftovers deleted\n",
	       run->merges_ok, run->merge_failed, run->merge_crashed, run->merge_resumed, run->leftover_deleted);
	printf("  backup reads: %" PRIu64 " failed, %" PRIu64 " returned wrong bytes\n", run->backup_failed,
	       run->backup_bad);
	for (unsigned i = 1; i <= cycle_rules_count(run->rules); i++)
		printf("  rule %u: %s: %" PRIu64 " hits\n", i, cycle_rules_text(run->rules, i),
		       cycle_rules_hits(run->rules, i));
	printf("  final chain: %s, depth %u\n", run->leaf ? run->leaf : "?", final_depth);
	if (final_msg[0])
		printf("  final problem: %s\n", final_msg);
	if (bad)
		printf("Verdict: PROBLEMS: %" PRIu64 " silent, %" PRIu64 " unexpected, %" PRIu64 " damaged, %" PRIu64
		       " lost rounds%s\n",
		       run->tot.by_class[CC_SILENT], run->tot.by_class[CC_UNEXPECTED], run->tot.by_class[CC_DAMAGED],
		       run->tot.by_class[CC_LOST],
		       final_msg[0] ? "; the final chain is wrong" : "");
	else
		printf("Verdict: ok: every fault was reported and recovered; no data lost; the chain ends at depth 2 "
		       "(the base and one checkpoint)\n");
}

int cycle_checkpoint_main(int argc, char **argv)
{
	struct ck_run run = { .seed = 1, .ops = 16, .size = 32u << 20, .block_size = 1u << 20 };
	struct report rep;
	struct vhdx_info info = { .struct_size = sizeof info };
	bool bad = false;
	char final_msg[512] = "";
	unsigned final_depth = 0;
	double t0;
	int rc = EXIT_OK;

	if (cycle_cli_parse(&checkpoint_cli, &run, argc, argv, &rc) < 0)
		return rc;
	if (cycle_cli_check(&checkpoint_cli, run.base, run.count, argc, argv) < 0)
		return EXIT_USAGE;
	rc = cycle_setup_rules(run.faults, run.seed, &run.rules);
	if (rc != EXIT_OK)
		return rc;
	rc = open_base(&run, &info);
	if (rc != EXIT_OK)
		goto out;
	if (run.json) {
		report_init(&rep, stdout, true);
		report_begin(&rep, NULL);
		report_str(&rep, "base", run.base);
		report_str(&rep, "format", info.format == VHDX_FORMAT_VHD ? "vhd" : "vhdx");
		report_u64(&rep, "virtual_size", run.size);
		report_u64(&rep, "count", run.count);
		report_u64(&rep, "seed", run.seed);
		report_str(&rep, "faults", run.faults ? run.faults : "");
		report_begin_list(&rep, "rounds");
	} else if (!run.quiet) {
		printf("vhdx cycle checkpoint: %s (%s, %" PRIu64 " bytes), %u rounds, seed %" PRIu64 ", %u rules%s%s\n",
		       run.base, info.format == VHDX_FORMAT_VHD ? "vhd" : "vhdx", run.size, run.count, run.seed,
		       cycle_rules_count(run.rules), run.faults ? " from " : "", run.faults ? run.faults : "");
		fflush(stdout);
	}
	t0 = tool_now();
	for (unsigned r = 1; r <= run.count; r++) {
		struct cycle_result res = { .cycle = r };
		struct ck_round rd;
		double tr = tool_now();

		memset(&rd, 0, sizeof rd);
		if (run_round(&run, &res, &rd) < 0) {
			cycle_result_free(&res);
			rc = EXIT_ERR;
			break;
		}
		res.seconds = tool_now() - tr;
		cycle_totals_add(&run.tot, &res);
		if (run.json)
			json_round(&rep, &res, &rd);
		else
			print_round_text(&run, &res, &rd);
		fflush(stdout);
		cycle_result_free(&res);
	}
	if (rc == EXIT_OK)
		rc = final_cleanup(&run, &final_depth, final_msg, sizeof final_msg);
	bad = cycle_totals_bad(&run.tot) || final_msg[0] || run.unexpected_extra;
	if (run.json)
		summary_json(&rep, &run, tool_now() - t0, final_depth, final_msg, bad);
	else
		summary_text(&run, tool_now() - t0, final_depth, final_msg, bad);
	if (rc == EXIT_OK && bad)
		rc = EXIT_PROBLEMS;
out:
	while (run.n_pending)
		pending_drop(&run, 0);
	free(run.leaf);
	cycle_model_free(run.m);
	cycle_rules_free(run.rules);
	return rc;
}
