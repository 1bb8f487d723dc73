/*
 * test_cycle.c - the parts of `vhdx cycle mount` that need no mount:
 *  - the rules carried across cycles (tools/cycle/cycle_rules.c) fire on exactly
 *    the calls one engine would fire on over the whole run, for nth, after,
 *    every, once and their combinations, whatever the number of calls per
 *    cycle (checked against the library's own engine on a mem file);
 *  - the exact text emitted for known counts, and per-cycle seeds;
 *  - the model of acknowledged sectors (tools/cycle/cycle_model.c): reads while
 *    mounted, and the verification of a real image (lost, torn, adopted);
 *  - the parser of event lines and the classification of faults and cycles
 *    (tools/cycle/cycle_report.c).
 */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "lib/unit.h"
#include "io/fault.h"
#include "cycle.h"

/* util.c (tool_open_init) refers to the global engine of `vhdx --faults`. */
struct vhdx_faults *tool_faults;

static char tmpdir[] = "/tmp/test_cycle.XXXXXX";

static int group_setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return unit_tmpdir_remove(tmpdir);
}

/* Writes TEXT to a file in tmpdir and loads it as the rules of a run. */
static struct cycle_rules *load(const char *text, uint64_t seed)
{
	char path[128];
	struct cycle_rules *r = NULL;
	FILE *f;

	snprintf(path, sizeof path, "%s/rules", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(cycle_rules_load(path, seed, &r), 0);
	return r;
}

/* The rules of cycle CYCLE as text (malloc'd). */
static char *emit(struct cycle_rules *r, unsigned cycle)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_true(cycle_rules_emit(r, cycle, f) >= 0);
	fclose(f);
	return text;
}

/* Makes CALLS flush calls on a fault io of engine F; sets fired[k] for the calls that failed. */
static void flushes(struct vhdx_faults *f, unsigned calls, bool *fired)
{
	static const uint8_t data[512];
	struct vhdx_io *mem, *io;

	assert_int_equal(vhdx_io_mem_new(data, sizeof data, "/x/disk.vhdx", &mem), 0);
	assert_int_equal(vhdx_io_fault_new(f, mem, &io), 0);
	for (unsigned k = 0; k < calls; k++)
		fired[k] = vhdx_io_flush(io) < 0;
	vhdx_io_close(io);
}

/*
 * RULE over 40 cycles of a varying number of calls: the carried rules must
 * fire on the same global calls as one engine that sees them all.
 */
static void check_carry(const char *rule)
{
	static const unsigned counts[] = { 0, 3, 1, 7, 2, 13, 0, 5, 9, 1, 4, 17, 2, 6, 3, 11, 0, 8, 2, 5,
					   1, 1, 19, 3, 7, 4, 0, 2, 9, 6, 3, 12, 5, 1, 8, 2, 4, 10, 3, 7 };
	enum { NC = sizeof counts / sizeof counts[0] };
	unsigned total = 0, pos = 0;
	struct vhdx_faults *truth;
	struct cycle_rules *r;
	bool *want, *got;
	uint64_t hits = 0;

	for (unsigned c = 0; c < NC; c++)
		total += counts[c];
	want = calloc(total, 1);
	got = calloc(total, 1);
	assert_int_equal(vhdx_faults_new(&truth), 0);
	assert_int_equal(vhdx_faults_add(truth, rule), 1);
	flushes(truth, total, want);
	vhdx_faults_free(truth);

	r = load(rule, 1);
	for (unsigned c = 0; c < NC; c++) {
		struct vhdx_faults *f;
		char *text = emit(r, c + 1), *listing = NULL;

		assert_int_equal(vhdx_faults_new(&f), 0);
		if (vhdx_faults_add(f, text) < 0)
			fail_msg("cycle %u: the emitted rules do not parse: '%s': %s", c + 1, text, vhdx_errmsg());
		flushes(f, counts[c], got + pos);
		assert_int_equal(vhdx_faults_format_rules(f, &listing), 0);
		cycle_rules_account(r, listing);
		free(listing);
		free(text);
		vhdx_faults_free(f);
		pos += counts[c];
	}
	for (unsigned k = 0; k < total; k++) {
		if (want[k] != got[k])
			fail_msg("'%s': call %u %s in one engine but %s with the carried rules", rule, k + 1,
				 want[k] ? "fires" : "does not fire", got[k] ? "fires" : "does not");
		hits += want[k];
	}
	assert_int_equal(cycle_rules_hits(r, 1), hits);
	cycle_rules_free(r);
	free(want);
	free(got);
}

static void test_carry_counters(void **state)
{
	static const char *const rules[] = {
		"op=flush err=EIO",
		"op=flush every=3 err=EIO",
		"op=flush every=17 err=EIO",
		"op=flush every=7 after=5 err=EIO",
		"op=flush every=4 after=30 err=EIO",
		"op=flush nth=10 err=EIO",
		"op=flush nth=1 err=EIO",
		"op=flush nth=150 err=EIO",
		"op=flush after=4 err=EIO",
		"op=flush after=60 err=EIO",
		"op=flush once err=EIO",
		"op=flush every=4 once err=EIO",
		"op=flush every=5 after=2 once err=EIO",
		"op=flush after=25 once err=EIO",
		"op=flush nth=12 every=4 err=EIO",  /* 12 is a 4th call: fires */
		"op=flush nth=13 every=4 err=EIO",  /* never */
		"op=flush nth=9 after=9 err=EIO",   /* never */
		"op=flush nth=20 after=8 every=6 err=EIO", /* (20-8) % 6 == 0: fires */
		"op=flush every=0x10 err=EIO",
		"op=flush nth=010 err=EIO",      /* decimal in both: the 10th */
		"op=flush after=010 every=010 err=EIO",
	};
	(void)state;
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		check_carry(rules[i]);
}

static void test_emit_text(void **state)
{
	struct cycle_rules *r;
	char *t;

	(void)state;
	r = load("# scratch disk\nop=open nth=5 err=EIO   # the fifth mount\n\nop=flush every=17 err=EIO\n"
		 "op=write once err=ENOSPC\n", 1);
	assert_int_equal(cycle_rules_count(r), 3);
	assert_string_equal(cycle_rules_text(r, 1), "op=open nth=5 err=EIO");
	assert_string_equal(cycle_rules_text(r, 2), "op=flush every=17 err=EIO");
	t = emit(r, 1);
	assert_string_equal(t, "op=open err=EIO nth=5\nop=flush err=EIO every=17\nop=write err=ENOSPC once\n");
	free(t);
	/* cycle 1 saw 4 opens, 9 flushes, 3 writes; no hits */
	cycle_rules_account(r, "x  # rule 1: hits=0 matched=4\nx  # rule 2: hits=0 matched=9\nx  # rule 3: hits=0 matched=3\n");
	t = emit(r, 2);
	/* the 8th flush of this cycle is the 17th of the run; then every 17th after it */
	assert_string_equal(t, "op=open err=EIO nth=1\nop=flush err=EIO nth=8\nop=flush err=EIO after=8 every=17\n"
			       "op=write err=ENOSPC once\n");
	free(t);
	assert_int_equal(cycle_rules_origin(r, 1), 1);
	assert_int_equal(cycle_rules_origin(r, 2), 2);
	assert_int_equal(cycle_rules_origin(r, 3), 2);
	assert_int_equal(cycle_rules_origin(r, 4), 3);
	assert_int_equal(cycle_rules_origin(r, 5), 0);
	cycle_rules_account(r, "x  # rule 1: hits=1 matched=1\nx  # rule 2: hits=1 matched=8\nx  # rule 3: hits=0 matched=0\n"
			       "x  # rule 4: hits=1 matched=2\n");
	/* a second account of the same cycle (the listing after the log) adds nothing */
	cycle_rules_account(r, "x  # rule 1: hits=1 matched=1\n");
	assert_int_equal(cycle_rules_hits(r, 1), 1);
	assert_int_equal(cycle_rules_hits(r, 2), 1);
	assert_int_equal(cycle_rules_matched(r, 2), 17);
	assert_int_equal(cycle_rules_hits(r, 3), 1);
	t = emit(r, 3);
	/* the open and the once rule are spent; 17 flushes so far: every=17 again */
	assert_string_equal(t, "op=flush err=EIO every=17\n");
	free(t);
	cycle_rules_free(r);
}

static void test_seed_per_cycle(void **state)
{
	struct cycle_rules *a, *b;
	char *a1, *a2, *b1;

	(void)state;
	a = load("op=write prob=0.5 seed=7 err=EIO\n", 1);
	b = load("op=write prob=0.5 seed=7 err=EIO\n", 99);
	a1 = emit(a, 1);
	a2 = emit(a, 2);
	b1 = emit(b, 1);
	/* the rule's own seed decides, not --seed; each cycle draws anew */
	assert_string_equal(a1, b1);
	assert_string_not_equal(a1, a2);
	assert_non_null(strstr(a1, "op=write prob=0.5 err=EIO seed="));
	assert_null(strstr(a1, "seed=7 "));
	free(a1);
	free(a2);
	free(b1);
	cycle_rules_free(a);
	cycle_rules_free(b);
	/* without seed=, --seed decides */
	a = load("op=read flip=1\n", 1);
	b = load("op=read flip=1\n", 2);
	a1 = emit(a, 1);
	b1 = emit(b, 1);
	assert_string_not_equal(a1, b1);
	free(a1);
	free(b1);
	cycle_rules_free(a);
	cycle_rules_free(b);
}

/* The rule numbers read as the engine reads them: 010 is ten, suffixes K..T with optional iB. */
static void test_rule_numbers(void **state)
{
	struct cycle_rules *r;
	char *t;

	(void)state;
	r = load("op=open nth=010 err=EIO\nop=flush after=0x10 every=1KiB err=EIO\n", 1);
	t = emit(r, 1);
	assert_string_equal(t, "op=open err=EIO nth=10\nop=flush err=EIO after=16 every=1024\n");
	free(t);
	cycle_rules_free(r);
}

static void test_bad_rules(void **state)
{
	char path[128];
	struct cycle_rules *r = NULL;
	FILE *f;

	(void)state;
	snprintf(path, sizeof path, "%s/bad", tmpdir);
	f = fopen(path, "w");
	fputs("op=write err=EIO\nop=wirte err=EIO\n", f);
	fclose(f);
	assert_int_equal(cycle_rules_load(path, 1, &r), -EINVAL);
	assert_non_null(strstr(vhdx_errmsg(), "line 2"));
	cycle_rules_free(r);
}

/* ------------------------------------------------------------ model */

/* Fills the sector BUF with FILL; returns its hash as the model keeps it. */
static uint64_t sector(uint8_t *buf, uint8_t fill)
{
	memset(buf, fill, CYCLE_SECTOR);
	return cycle_sector_hash(buf);
}

static void test_model_reads(void **state)
{
	struct cycle_model *m = cycle_model_new(8 * CYCLE_SECTOR);
	struct cycle_check ck = { 0 };
	uint8_t a[CYCLE_SECTOR], b[CYCLE_SECTOR], z[CYCLE_SECTOR], c[CYCLE_SECTOR];
	uint64_t ha, hb, hc;

	(void)state;
	assert_non_null(m);
	assert_null(cycle_model_new(1000)); /* not whole sectors */
	ha = sector(a, 0xaa);
	hb = sector(b, 0xbb);
	hc = sector(c, 0xcc);
	sector(z, 0);
	/* new disk: zeros */
	assert_int_equal(cycle_model_check_read(m, 0, z, CYCLE_SECTOR, &ck), 0);
	assert_int_equal(cycle_model_check_read(m, 0, a, CYCLE_SECTOR, &ck), 1);
	/* a write that returned OK must read back, before and after fsync */
	cycle_model_write_ok(m, CYCLE_SECTOR, CYCLE_SECTOR, &ha, 1, 1);
	assert_int_equal(cycle_model_check_read(m, CYCLE_SECTOR, a, CYCLE_SECTOR, &ck), 0);
	assert_int_equal(cycle_model_check_read(m, CYCLE_SECTOR, z, CYCLE_SECTOR, &ck), 1);
	cycle_model_fsync(m, true);
	assert_int_equal(cycle_model_check_read(m, CYCLE_SECTOR, a, CYCLE_SECTOR, &ck), 0);
	/* a failed write: old or new; anything else is torn (issue #15 item 9: the class the
	 * reopen gives the same sector), counted apart from damage */
	cycle_model_write_failed(m, CYCLE_SECTOR, CYCLE_SECTOR, &hb);
	assert_int_equal(cycle_model_check_read(m, CYCLE_SECTOR, a, CYCLE_SECTOR, &ck), 0);
	assert_int_equal(cycle_model_check_read(m, CYCLE_SECTOR, b, CYCLE_SECTOR, &ck), 0);
	assert_int_equal(ck.torn, 0);
	assert_int_equal(cycle_model_check_read(m, CYCLE_SECTOR, c, CYCLE_SECTOR, &ck), 0);
	assert_int_equal(ck.torn, 1);
	/* a later write and fsync make it certain again */
	cycle_model_write_ok(m, CYCLE_SECTOR, CYCLE_SECTOR, &hc, 1, 3);
	cycle_model_fsync(m, true);
	assert_int_equal(cycle_model_check_read(m, CYCLE_SECTOR, b, CYCLE_SECTOR, &ck), 1);
	assert_int_equal(cycle_model_check_read(m, CYCLE_SECTOR, c, CYCLE_SECTOR, &ck), 0);
	/* a write whose fsync failed: still read back as written while mounted */
	cycle_model_write_ok(m, 2 * CYCLE_SECTOR, CYCLE_SECTOR, &hb, 1, 4);
	cycle_model_fsync(m, false);
	assert_int_equal(cycle_model_check_read(m, 2 * CYCLE_SECTOR, b, CYCLE_SECTOR, &ck), 0);
	assert_int_equal(cycle_model_check_read(m, 2 * CYCLE_SECTOR, z, CYCLE_SECTOR, &ck), 0);
	assert_int_equal(cycle_model_check_read(m, 2 * CYCLE_SECTOR, a, CYCLE_SECTOR, &ck), 0); /* torn */
	assert_int_equal(ck.torn, 2);
	/* a failed fsync does not make acknowledged sectors uncertain */
	assert_int_equal(cycle_model_check_read(m, CYCLE_SECTOR, b, CYCLE_SECTOR, &ck), 1);
	assert_int_equal(ck.lost, 0); /* reads while mounted never count as lost */
	assert_int_equal(ck.damaged, 4);
	assert_int_equal(ck.torn, 2);
	cycle_model_free(m);
}

/* Writes the sector BUF at VOFF of the image at PATH (opened read-write for it alone). */
static void write_sector(const char *path, const uint8_t *buf, uint64_t voff)
{
	struct vhdx_open_options oo;
	struct vhdx_image *img;

	vhdx_open_options_init(&oo);
	oo.flags = VHDX_OPEN_RDWR;
	assert_ok(vhdx_open(path, &oo, &img));
	assert_int_equal(vhdx_pwrite(img, buf, CYCLE_SECTOR, voff), CYCLE_SECTOR);
	assert_ok(vhdx_close(img));
}

/* Checks the image at PATH against the model M, into a cleared CK. */
static void verify_disk(struct cycle_model *m, const char *path, struct cycle_check *ck)
{
	struct vhdx_image *img;

	memset(ck, 0, sizeof *ck);
	assert_ok(vhdx_open(path, NULL, &img));
	assert_ok(cycle_model_verify(m, img, false, ck));
	vhdx_close(img);
}

static void test_model_verify(void **state)
{
	struct vhdx_create_options co;
	struct cycle_model *m;
	struct cycle_check ck;
	uint8_t a[CYCLE_SECTOR], b[CYCLE_SECTOR], c[CYCLE_SECTOR], d[CYCLE_SECTOR];
	uint64_t ha, hb, hc;
	char path[128];

	(void)state;
	snprintf(path, sizeof path, "%s/v.vhdx", tmpdir);
	vhdx_create_options_init(&co);
	co.virtual_size = 4u << 20;
	co.block_size = 1u << 20;
	assert_ok(vhdx_create(path, &co));
	ha = sector(a, 1);
	hb = sector(b, 2);
	hc = sector(c, 3);
	sector(d, 4);
	m = cycle_model_new(4u << 20);
	/* sector 2048 acknowledged as A (cycle 1, op 2), and on disk */
	write_sector(path, a, 2048 * CYCLE_SECTOR);
	cycle_model_write_ok(m, 2048 * CYCLE_SECTOR, CYCLE_SECTOR, &ha, 1, 2);
	cycle_model_fsync(m, true);
	verify_disk(m, path, &ck);
	assert_int_equal(ck.sectors, 8192);
	assert_int_equal(ck.lost, 0);
	assert_int_equal(ck.damaged, 0);
	/* the disk changes behind the model's back: lost, naming the acknowledged write */
	write_sector(path, b, 2048 * CYCLE_SECTOR);
	verify_disk(m, path, &ck);
	assert_int_equal(ck.lost, 1);
	assert_int_equal(ck.n_lost_r, 1);
	assert_int_equal(ck.lost_r[0].voff, 2048 * CYCLE_SECTOR);
	assert_int_equal(ck.lost_r[0].len, CYCLE_SECTOR);
	assert_int_equal(ck.lost_r[0].ack_cycle, 1);
	assert_int_equal(ck.lost_r[0].ack_op, 2);
	/* reported once: the model took what the disk holds */
	verify_disk(m, path, &ck);
	assert_int_equal(ck.lost, 0);
	/* failed writes: old (B) or attempted (C) are fine, anything else is torn */
	cycle_model_write_failed(m, 2048 * CYCLE_SECTOR, CYCLE_SECTOR, &hc);
	cycle_model_write_failed(m, 100 * CYCLE_SECTOR, CYCLE_SECTOR, &hc);
	cycle_model_write_failed(m, 101 * CYCLE_SECTOR, CYCLE_SECTOR, &hc);
	write_sector(path, c, 100 * CYCLE_SECTOR);
	write_sector(path, d, 101 * CYCLE_SECTOR);
	verify_disk(m, path, &ck);
	assert_int_equal(ck.lost, 0);
	assert_int_equal(ck.damaged, 1);
	assert_int_equal(ck.damaged_r[0].voff, 101 * CYCLE_SECTOR);
	assert_int_equal(ck.uncertain, 3);
	(void)hb;
	cycle_model_free(m);
}

/* ------------------------------------------------------------ events and classes */

static void test_event_parse(void **state)
{
	struct cycle_event ev;

	(void)state;
	assert_int_equal(cycle_event_parse("seq=3 t=0.004211 rule=2 op=read file=/a dir/disk.vhdx off=0x300000 len=4096 "
					   "voff=0x100000 struct=payload action=flip bits=5,811",
					   &ev),
			 0);
	assert_int_equal(ev.seq, 3);
	assert_string_equal(ev.t, "0.004211");
	assert_int_equal(ev.rule, 2);
	assert_string_equal(ev.op, "read");
	assert_string_equal(ev.file, "/a dir/disk.vhdx");
	assert_int_equal(ev.foff, 0x300000);
	assert_int_equal(ev.len, 4096);
	assert_int_equal(ev.voff, 0x100000);
	assert_string_equal(ev.structure, "payload");
	assert_string_equal(ev.action, "flip");
	assert_string_equal(ev.detail, "bits=5,811");
	assert_int_equal(ev.err, 0);
	free(ev.file);
	assert_int_equal(cycle_event_parse("seq=9 t=1.5 rule=1 op=flush file=d.vhd off=- len=0 voff=- struct=- action=err "
					   "errno=ENOSPC",
					   &ev),
			 0);
	assert_int_equal(ev.foff, CYCLE_NONE);
	assert_int_equal(ev.voff, CYCLE_NONE);
	assert_int_equal(ev.err, ENOSPC);
	assert_string_equal(ev.detail, "");
	free(ev.file);
	assert_int_equal(cycle_event_parse("# events", &ev), -1);
}

/*
 * vhdx cycle mount --fs (issue #16): a cycle whose faults surfaced nowhere
 * is absorbed only when every fault was a failed read whose bytes a later
 * read fetched again (reread=yes in vhdxfs's fault log); a failed read
 * never read again, or any other fault, leaves it silent.  Before, every
 * such cycle was silent.
 */
static void test_fs_classify_reread(void **state)
{
	const char *read_again = "# rules\nop=read err=EIO  # rule 1: hits=1 matched=9\n# events\n"
				 "seq=1 t=0.01 rule=1 op=read file=/d.vhdx off=0x2549800 len=8192 voff=0x149800 "
				 "struct=payload action=err errno=EIO reread=yes\n";
	const char *never = "# events\n"
			    "seq=1 t=0.01 rule=1 op=read file=/d.vhdx off=0x2549800 len=8192 voff=0x149800 "
			    "struct=payload action=err errno=EIO reread=yes\n"
			    "seq=2 t=0.02 rule=1 op=read file=/d.vhdx off=0x2600000 len=4096 voff=0x200000 "
			    "struct=payload action=err errno=EIO reread=no\n";
	const char *write = "seq=1 t=0.01 rule=1 op=read file=/d.vhdx off=0x1000 len=512 voff=- struct=bat action=err "
			    "errno=EIO reread=yes\nseq=2 t=0.5 rule=2 op=write file=/d.vhdx off=0x1000 len=512 voff=- "
			    "struct=bat action=err errno=EIO";
	unsigned n, reread;

	n = cycle_log_faults(read_again, &reread);
	assert_int_equal(n, 1);
	assert_int_equal(reread, 1);
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(false, false, 0, 0, n, reread)), "absorbed");
	n = cycle_log_faults(never, &reread);
	assert_int_equal(n, 2);
	assert_int_equal(reread, 1);
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(false, false, 0, 0, n, reread)), "silent");
	n = cycle_log_faults(write, &reread);
	assert_int_equal(n, 2);
	assert_int_equal(reread, 1);
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(false, false, 0, 0, n, reread)), "silent");
	/* the rest as before: errors make it reported, damage and loss stay worst */
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(false, false, 0, 1, 1, 1)), "reported");
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(false, false, 2, 0, 1, 1)), "lost");
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(true, false, 0, 0, 1, 1)), "damaged");
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(false, false, 0, 1, 0, 0)), "unexpected");
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(false, false, 0, 0, 0, 0)), "clean");
	/* a volume that mounted only after a repair: fine where an error was reported, else not */
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(false, true, 0, 1, 1, 0)), "repaired");
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(false, true, 0, 0, 1, 0)), "silent");
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(false, true, 0, 0, 0, 0)), "unexpected");
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(false, true, 1, 1, 1, 0)), "lost");
	assert_string_equal(cycle_fs_class_name(cycle_fs_classify(true, true, 0, 1, 1, 0)), "damaged");
	assert_int_equal(cycle_log_faults(NULL, &reread), 0);
	assert_int_equal(reread, 0);
	(void)state;
}

static void add_event(struct cycle_result *res, int step, const char *action, int err)
{
	struct cycle_event *ev;

	res->events = realloc(res->events, (res->n_events + 1) * sizeof *res->events);
	ev = &res->events[res->n_events++];
	memset(ev, 0, sizeof *ev);
	ev->file = strdup("d.vhdx");
	snprintf(ev->action, sizeof ev->action, "%s", action);
	ev->err = err;
	ev->step = step;
}

static void test_classify(void **state)
{
	struct cycle_result res;
	int s;

	(void)state;
	/* nothing happened */
	memset(&res, 0, sizeof res);
	cycle_result_step(&res, "mount", CYCLE_NONE, CYCLE_NONE, 0, NULL);
	cycle_classify(&res);
	assert_int_equal(res.cls, CC_CLEAN);
	cycle_result_free(&res);
	/* a fault on a call that failed: reported; a later failure without a fault of its own too */
	memset(&res, 0, sizeof res);
	s = cycle_result_step(&res, "pwrite", 0, 512, EIO, "injected EIO");
	add_event(&res, s, "err", EIO);
	cycle_result_step(&res, "fsync", CYCLE_NONE, CYCLE_NONE, EIO, "refused after the failed write");
	s = cycle_result_step(&res, "pwrite", 512, 512, 0, NULL);
	add_event(&res, s, "delay", 0);
	cycle_classify(&res);
	assert_int_equal(res.cls, CC_REPORTED);
	assert_int_equal(res.events[0].cls, CC_REPORTED);
	assert_int_equal(res.events[1].cls, CC_DELAYED);
	cycle_result_free(&res);
	/* a failure with no fault before it: unexpected */
	memset(&res, 0, sizeof res);
	cycle_result_step(&res, "fsync", CYCLE_NONE, CYCLE_NONE, EIO, "?");
	s = cycle_result_step(&res, "pwrite", 0, 512, EIO, "injected");
	add_event(&res, s, "err", EIO);
	cycle_classify(&res);
	assert_int_equal(res.cls, CC_UNEXPECTED);
	cycle_result_free(&res);
	/* a fault on a call that succeeded, nothing found: silent; found loss: lost */
	memset(&res, 0, sizeof res);
	s = cycle_result_step(&res, "pwrite", 0, 512, 0, NULL);
	add_event(&res, s, "err", EIO);
	cycle_classify(&res);
	assert_int_equal(res.cls, CC_SILENT);
	assert_int_equal(res.events[0].cls, CC_SILENT);
	res.ck.lost = 1;
	cycle_classify(&res);
	assert_int_equal(res.cls, CC_LOST);
	assert_int_equal(res.events[0].cls, CC_LOST);
	cycle_result_free(&res);
	/* only delays */
	memset(&res, 0, sizeof res);
	s = cycle_result_step(&res, "pwrite", 0, 512, 0, NULL);
	add_event(&res, s, "delay", 0);
	cycle_classify(&res);
	assert_int_equal(res.cls, CC_DELAYED);
	/* torn sectors after a reported failure are allowed; a wrong read without an error is damage */
	res.steps[0].err = EIO;
	add_event(&res, 0, "short", EIO);
	res.ck.damaged = 2;
	cycle_classify(&res);
	assert_int_equal(res.cls, CC_TORN);
	res.rb.damaged = 1;
	cycle_classify(&res);
	assert_int_equal(res.cls, CC_DAMAGED);
	cycle_result_free(&res);
	/* a reopen that fails is damage */
	memset(&res, 0, sizeof res);
	res.reopen_failed = true;
	cycle_classify(&res);
	assert_int_equal(res.cls, CC_DAMAGED);
	cycle_result_free(&res);
}

static void test_windows_codes(void **state)
{
	char buf[24];
	int e;

	(void)state;
	assert_int_equal(cycle_win_code(EIO), 0x8007045Du);
	assert_string_equal(cycle_win_name(EIO), "ERROR_IO_DEVICE");
	assert_int_equal(cycle_win_code(ENOSPC), 0x80070070u);
	assert_int_equal(cycle_win_code(EROFS), 0x80070013u);
	assert_int_equal(cycle_win_code(EACCES), 0x80070005u);
	assert_int_equal(cycle_win_code(ETIMEDOUT), 0x800705B4u);
	assert_int_equal(cycle_win_code(ELOOP), 0);
	assert_string_equal(cycle_errno_name(EIO, buf, sizeof buf), "EIO");
	assert_string_equal(cycle_errno_name(4000, buf, sizeof buf), "errno 4000");
	assert_int_equal(cycle_errno_parse("ENOSPC", &e), 0);
	assert_int_equal(e, ENOSPC);
	assert_int_equal(cycle_errno_parse("17", &e), 0);
	assert_int_equal(e, 17);
	assert_int_equal(cycle_errno_parse("EBOGUS", &e), -1);
}

UNIT_MAIN(group_setup, group_teardown,
	  cmocka_unit_test(test_carry_counters),
	  cmocka_unit_test(test_emit_text),
	  cmocka_unit_test(test_seed_per_cycle),
	  cmocka_unit_test(test_rule_numbers),
	  cmocka_unit_test(test_bad_rules),
	  cmocka_unit_test(test_model_reads),
	  cmocka_unit_test(test_model_verify),
	  cmocka_unit_test(test_event_parse),
	  cmocka_unit_test(test_fs_classify_reread),
	  cmocka_unit_test(test_classify),
	  cmocka_unit_test(test_windows_codes))
