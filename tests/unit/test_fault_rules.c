/*
 * test_fault_rules.c - the fault rule language (io/fault_rules.c) and the
 * engine's rule set (io/fault_engine.c): every key and action parsed into
 * the fields it sets, every parse error with its exact message and line,
 * all-or-none loading, matching by op, file glob, off, voff and struct, the
 * firing counters (nth, after, every, once, prob with a seed), flip
 * positions, and the engine's choice when several rules fire on one call.
 */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>

#include "common/rule_num.h"
#include "lib/unit.h"
#include "io/fault.h"

/* Parses LINE as line 1 and returns the rule (the test fails on an error). */
static struct vhdx_fault_rule *parse_ok(const char *line)
{
	struct vhdx_fault_rule *r = NULL;
	int ret;

	vhdx_err_clear();
	ret = vhdx_fault_rule_parse(line, "t", 1, &r);
	if (ret != 1 || !r)
		fail_msg("'%s' did not parse: %d \"%s\"", line, ret, vhdx_errmsg());
	return r;
}

/* LINE must fail with exactly MSG (the whole message). */
static void parse_fails(const char *line, const char *source, unsigned lineno, const char *msg)
{
	struct vhdx_fault_rule *r = (struct vhdx_fault_rule *)1;
	int ret;

	vhdx_err_clear();
	ret = vhdx_fault_rule_parse(line, source, lineno, &r);
	if (ret != -EINVAL)
		fail_msg("'%s' returned %d, expected -EINVAL", line, ret);
	assert_null(r);
	if (strcmp(vhdx_errmsg(), msg) != 0)
		fail_msg("'%s': message \"%s\", expected \"%s\"", line, vhdx_errmsg(), msg);
}

/* A field of a parsed rule: its name, offset and size; size 0 for a string (char *). */
#define RULE_NUM(f) #f, offsetof(struct vhdx_fault_rule, f), sizeof(((struct vhdx_fault_rule *)0)->f)
#define RULE_TEXT(f) #f, offsetof(struct vhdx_fault_rule, f), 0

/* What parsing LINE (as line 1) must set one field of the rule to. */
struct field_case {
	const char *line;
	const char *field;
	size_t off, size;
	uint64_t num;     /* a number or a flag (false 0, true 1) */
	const char *text; /* a string; NULL: the field must be NULL */
};

static uint64_t rule_number(const unsigned char *at, size_t size)
{
	uint8_t u8;
	uint32_t u32;
	uint64_t u64;

	switch (size) {
	case sizeof u8:
		memcpy(&u8, at, size);
		return u8;
	case sizeof u32:
		memcpy(&u32, at, size);
		return u32;
	case sizeof u64:
		memcpy(&u64, at, size);
		return u64;
	}
	fail_msg("a field of %zu bytes", size);
	return 0;
}

static void check_fields(const struct field_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct field_case *c = &cases[i];
		struct vhdx_fault_rule *r = parse_ok(c->line);
		const unsigned char *at = (const unsigned char *)r + c->off;
		const char *text = c->size ? NULL : *(char *const *)at;

		if (c->size && rule_number(at, c->size) != c->num)
			fail_msg("'%s': %s is %llu, expected %llu", c->line, c->field,
				 (unsigned long long)rule_number(at, c->size), (unsigned long long)c->num);
		if (!c->size && (c->text ? !text || strcmp(text, c->text) : text != NULL))
			fail_msg("'%s': %s is \"%s\", expected \"%s\"", c->line, c->field, text ? text : "(null)",
				 c->text ? c->text : "(null)");
		vhdx_fault_rule_free(r);
	}
}

static void test_parse_match_keys(void **state)
{
	static const struct field_case cases[] = {
		{ "op=read err=EIO", RULE_NUM(op_mask), 1u << VHDX_FOP_READ },
		{ "op=read err=EIO", RULE_NUM(actions), VHDX_FACT_ERR },
		{ "op=read err=EIO", RULE_NUM(err), EIO },
		{ "op=read err=EIO", RULE_TEXT(text), .text = "op=read err=EIO" },
		{ "op=read err=EIO", RULE_TEXT(file_glob), .text = NULL },
		{ "op=read err=EIO", RULE_NUM(has_off), false },
		{ "op=read err=EIO", RULE_NUM(has_voff), false },
		{ "op=read err=EIO", RULE_NUM(tag_mask), 0 },
		{ "err=EIO", RULE_NUM(op_mask), VHDX_FOP_ALL }, /* default: any */
		{ "op=any err=EIO", RULE_NUM(op_mask), VHDX_FOP_ALL },
		{ "op=write err=EIO", RULE_NUM(op_mask), 1u << VHDX_FOP_WRITE },
		{ "op=flush err=EIO", RULE_NUM(op_mask), 1u << VHDX_FOP_FLUSH },
		{ "op=truncate err=EIO", RULE_NUM(op_mask), 1u << VHDX_FOP_TRUNCATE },
		{ "op=open err=EIO", RULE_NUM(op_mask), 1u << VHDX_FOP_OPEN },
		{ "op=close err=EIO", RULE_NUM(op_mask), 1u << VHDX_FOP_CLOSE },
		{ "  file=*.avhdx   err=ENOSPC  ", RULE_TEXT(file_glob), .text = "*.avhdx" },
		{ "  file=*.avhdx   err=ENOSPC  ", RULE_NUM(err), ENOSPC },
		{ "  file=*.avhdx   err=ENOSPC  ", RULE_TEXT(text), .text = "file=*.avhdx   err=ENOSPC" },
		{ "off=0x300000-0x300fff err=EIO", RULE_NUM(has_off), true },
		{ "off=0x300000-0x300fff err=EIO", RULE_NUM(off_first), 0x300000 },
		{ "off=0x300000-0x300fff err=EIO", RULE_NUM(off_last), 0x300fff },
		{ "off=1M+4K err=EIO", RULE_NUM(off_first), 1048576 },
		{ "off=1M+4K err=EIO", RULE_NUM(off_last), 1048576 + 4095 },
		{ "off=4096 err=EIO", RULE_NUM(off_first), 4096 },
		{ "off=4096 err=EIO", RULE_NUM(off_last), 4096 },
		{ "off=1K-2KiB err=EIO", RULE_NUM(off_first), 1024 },
		{ "off=1K-2KiB err=EIO", RULE_NUM(off_last), 2048 },
		{ "op=read voff=1048576-1114111 err=EIO", RULE_NUM(has_voff), true },
		{ "op=read voff=1048576-1114111 err=EIO", RULE_NUM(voff_first), 1048576 },
		{ "op=read voff=1048576-1114111 err=EIO", RULE_NUM(voff_last), 1114111 },
		{ "struct=bat err=EIO", RULE_NUM(tag_mask), 1u << VHDX_TAG_BAT },
		{ "struct=header,region,metadata,log,bitmap,payload,footer,dynhdr,fileid,other err=EIO", RULE_NUM(tag_mask),
		  (1u << VHDX_TAG__COUNT) - 1 - (1u << VHDX_TAG_BAT) },
		{ "nth=3 err=EIO", RULE_NUM(nth), 3 },
		{ "nth=010 err=EIO", RULE_NUM(nth), 10 }, /* decimal, as vhdx cycle reads it: not octal 8 */
		{ "after=2 every=4 once err=EIO", RULE_NUM(after), 2 },
		{ "after=2 every=4 once err=EIO", RULE_NUM(every), 4 },
		{ "after=2 every=4 once err=EIO", RULE_NUM(once), true },
		{ "prob=0.25 seed=0x10 err=EIO", RULE_NUM(has_prob), true },
		{ "prob=0.25 seed=0x10 err=EIO", RULE_NUM(seed), 16 },
	};
	static const char *const ops[] = { "read", "write", "flush", "truncate", "open", "close" };
	struct vhdx_fault_rule *r;
	(void)state;

	check_fields(cases, VHDX_ARRAY_LEN(cases));
	for (unsigned i = 0; i < 6; i++)
		assert_string_equal(vhdx_fault_op_name((enum vhdx_fault_op)i), ops[i]);
	r = parse_ok("prob=0.25 seed=0x10 err=EIO");
	assert_true(r->prob == 0.25);
	vhdx_fault_rule_free(r);
	r = parse_ok("prob=40% err=EIO");
	assert_true(r->prob > 0.3999 && r->prob < 0.4001);
	vhdx_fault_rule_free(r);
}

static void test_parse_actions(void **state)
{
	static const struct field_case cases[] = {
		{ "err=28", RULE_NUM(err), ENOSPC },
		{ "err=etimedout", RULE_NUM(err), ETIMEDOUT },
		{ "err=EROFS", RULE_NUM(err), EROFS },
		{ "err=EBADMSG", RULE_NUM(err), EBADMSG },
		{ "err=EACCES", RULE_NUM(err), EACCES },
		{ "err=ENOMEM", RULE_NUM(err), ENOMEM },
		{ "delay=50", RULE_NUM(actions), VHDX_FACT_DELAY },
		{ "delay=50", RULE_NUM(delay_ms), 50 },
		{ "op=read short=100", RULE_NUM(actions), VHDX_FACT_SHORT },
		{ "op=read short=100", RULE_NUM(short_bytes), 100 },
		{ "op=read short=100", RULE_NUM(err), EIO }, /* the error after the short transfer */
		{ "short=1K err=ENOSPC", RULE_NUM(short_bytes), 1024 },
		{ "short=1K err=ENOSPC", RULE_NUM(err), ENOSPC },
		{ "short=1K err=ENOSPC", RULE_NUM(op_mask), (1u << VHDX_FOP_READ) | (1u << VHDX_FOP_WRITE) }, /* any: narrowed */
		{ "torn=2", RULE_NUM(actions), VHDX_FACT_TORN },
		{ "torn=2", RULE_NUM(torn_sectors), 2 },
		{ "torn=2", RULE_NUM(op_mask), 1u << VHDX_FOP_WRITE },
		{ "op=read flip=3 seed=9", RULE_NUM(actions), VHDX_FACT_FLIP },
		{ "op=read flip=3 seed=9", RULE_NUM(flip_bits), 3 },
		{ "op=flush crash", RULE_NUM(actions), VHDX_FACT_CRASH },
		{ "op=flush crash", RULE_NUM(err), EIO },
		{ "op=write torn=1 crash delay=5", RULE_NUM(actions), VHDX_FACT_TORN | VHDX_FACT_CRASH | VHDX_FACT_DELAY },
		/* comments: a '#' that starts a word */
		{ "op=read err=EIO   # the BAT", RULE_TEXT(text), .text = "op=read err=EIO" },
		{ "file=a#b err=EIO", RULE_TEXT(file_glob), .text = "a#b" },
	};
	static const struct { const char *name; int err; } names[] = {
		{ "EROFS", EROFS }, { "EBADMSG", EBADMSG }, { "EACCES", EACCES }, { "ENOMEM", ENOMEM },
	};
	struct vhdx_fault_rule *r;
	(void)state;

	check_fields(cases, VHDX_ARRAY_LEN(cases));
	for (size_t i = 0; i < VHDX_ARRAY_LEN(names); i++) {
		char buf[24];
		assert_string_equal(vhdx_fault_errno_name(names[i].err, buf, sizeof buf), names[i].name);
	}

	/* blank lines and comments alone */
	r = (struct vhdx_fault_rule *)1;
	assert_int_equal(vhdx_fault_rule_parse("   # nothing", "t", 1, &r), 0);
	assert_null(r);
	assert_int_equal(vhdx_fault_rule_parse("", "t", 1, &r), 0);
	assert_int_equal(vhdx_fault_rule_parse(" \t ", "t", 1, &r), 0);
	assert_int_equal(vhdx_fault_rule_parse("#x\nop=read err=EIO", "t", 1, &r), 0); /* one line only */
}

static void test_parse_errors(void **state)
{
	/* the message begins with where the line came from: a source and line number, or the number alone */
	static const struct {
		const char *line, *source;
		unsigned lineno;
		const char *msg;
	} placed[] = {
		{ "opp=x err=EIO", "faults", 3, "faults line 3: unknown key 'opp'" },
		{ "off=10-5 err=EIO", NULL, 4, "line 4: off=10-5: end before start" },
		{ "op=read", NULL, 2, "line 2: no action (err=, delay=, short=, torn=, flip= or crash)" },
		{ "op=reed err=EIO", "r.txt", 7,
		  "r.txt line 7: op=reed: unknown operation (read, write, flush, truncate, open, close, lock or any)" },
	};
	/* the other lines, read as line 1 of "f": a line and the exact message after "f line 1: " */
	static const struct {
		const char *line, *msg;
	} bad[] = {
		{ "op=read op=write err=EIO", "op given twice" },
		{ "once=1 err=EIO", "once takes no value" },
		{ "crash=yes", "crash takes no value" },
		{ "op err=EIO", "op needs a value (op=...)" },
		{ "file= err=EIO", "file needs a value (file=...)" },
		{ "off=abc err=EIO", "off=abc: not a number or range (START-END, START+LEN)" },
		{ "off=1-x err=EIO", "off=1-x: not a range (START-END, START+LEN)" },
		{ "voff=5+0 err=EIO", "voff=5+0: empty range" },
		{ "off=0xffffffffffffffff+2 err=EIO", "off=0xffffffffffffffff+2: range overflows" },
		{ "struct=bta err=EIO",
		  "struct=bta: unknown structure 'bta' (header, region, metadata, log, bat, bitmap, payload, footer, dynhdr, fileid or other)" },
		{ "nth=0 err=EIO", "nth=0: must be from 1 to 18446744073709551615" },
		{ "every=0 err=EIO", "every=0: must be from 1 to 18446744073709551615" },
		{ "after=x err=EIO", "after=x: not a number" },
		{ "prob=1.5 err=EIO", "prob=1.5: must be between 0 and 1 (or 0% and 100%)" },
		{ "prob=x err=EIO", "prob=x: not a number" },
		{ "seed=3 err=EIO", "seed= needs prob= or flip=" },
		{ "seed=q prob=1 err=EIO", "seed=q: not a number" },
		{ "err=EFOO", "err=EFOO: unknown errno name (EIO, ENOSPC, EROFS, ... or a number 1-4095)" },
		{ "err=0", "err=0: unknown errno name (EIO, ENOSPC, EROFS, ... or a number 1-4095)" },
		{ "err=4096", "err=4096: unknown errno name (EIO, ENOSPC, EROFS, ... or a number 1-4095)" },
		{ "delay=700000", "delay=700000: must be from 0 to 600000" },
		{ "short=abc", "short=abc: not a number of bytes" },
		{ "torn=x", "torn=x: not a number" },
		{ "flip=0", "flip=0: must be from 1 to 64" },
		{ "flip=65", "flip=65: must be from 1 to 64" },
		{ "short=10 torn=1", "short= and torn= cannot be combined" },
		{ "flip=1 err=EIO", "flip= cannot be combined with err=, short=, torn= or crash" },
		{ "flip=1 crash", "flip= cannot be combined with err=, short=, torn= or crash" },
		{ "short=1 crash", "short= cannot be combined with crash (use torn= for a write cut by the crash)" },
		{ "op=read torn=1", "torn= applies to writes only (op=write or op=any)" },
		{ "op=flush short=1", "short= applies to reads and writes only" },
		{ "op=close flip=1", "flip= applies to reads and writes only" },
		{ "op=flush off=0-10 err=EIO", "off= cannot match op=flush (it has no file offset)" },
		{ "op=open struct=bat err=EIO", "struct= cannot match op=open (only reads and writes have one)" },
		{ "op=truncate voff=0-1 err=EIO", "voff= cannot match op=truncate (only reads and writes have one)" },
	};
	char longline[VHDX_FAULT_MAX_LINE + 20], msg[256];
	(void)state;

	for (size_t i = 0; i < VHDX_ARRAY_LEN(placed); i++)
		parse_fails(placed[i].line, placed[i].source, placed[i].lineno, placed[i].msg);
	for (size_t i = 0; i < VHDX_ARRAY_LEN(bad); i++) {
		snprintf(msg, sizeof msg, "f line 1: %s", bad[i].msg);
		parse_fails(bad[i].line, "f", 1, msg);
	}
	memset(longline, 'x', sizeof longline - 1);
	longline[sizeof longline - 1] = '\0';
	memcpy(longline, "file=", 5);
	parse_fails(longline, "f", 9, "f line 9: longer than 4096 characters");
}

static void test_parse_u64(void **state)
{
	uint64_t v;
	(void)state;

	assert_int_equal(rule_parse_u64("4K", 2, &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(rule_parse_u64("1M", 2, &v), 0);
	assert_int_equal(v, 1048576);
	assert_int_equal(rule_parse_u64("2G", 2, &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(rule_parse_u64("1T", 2, &v), 0);
	assert_int_equal(v, 1ull << 40);
	assert_int_equal(rule_parse_u64("0x1F", 4, &v), 0);
	assert_int_equal(v, 31);
	assert_int_equal(rule_parse_u64("010", 3, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(rule_parse_u64("3KiB", 4, &v), 0);
	assert_int_equal(v, 3072);
	assert_int_equal(rule_parse_u64("12345", 3, &v), 0); /* only N characters */
	assert_int_equal(v, 123);
	assert_int_equal(rule_parse_u64("", 0, &v), -1);
	assert_int_equal(rule_parse_u64("1x", 2, &v), -1);
	assert_int_equal(rule_parse_u64("0x", 2, &v), -1);
	assert_int_equal(rule_parse_u64("-1", 2, &v), -1);
	assert_int_equal(rule_parse_u64("18446744073709551616", 20, &v), -1);
	assert_int_equal(rule_parse_u64("18446744073709551615", 20, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(rule_parse_u64("17179869184G", 12, &v), -1); /* 2^64 */
}

/* ---------------------------------------------------------------- matching */

static struct vhdx_fault_req rw_req(enum vhdx_fault_op op, uint64_t foff, uint64_t len, enum vhdx_tag tag,
				    uint64_t voff)
{
	struct vhdx_fault_req q = {
		.op = op, .path = "/images/x/disk.vhdx", .base = "disk.vhdx", .has_foff = true,
		.foff = foff, .len = len, .has_tag = true, .tag = tag, .voff = voff,
	};
	return q;
}

static void test_match_op_file(void **state)
{
	struct vhdx_fault_rule *r;
	struct vhdx_fault_req q = rw_req(VHDX_FOP_READ, 0, 512, VHDX_TAG_HEADER, VHDX_NO_VOFF);
	struct vhdx_fault_req fl = { .op = VHDX_FOP_FLUSH, .path = "/images/x/disk.vhdx", .base = "disk.vhdx",
				     .voff = VHDX_NO_VOFF };
	(void)state;

	r = parse_ok("op=read err=EIO");
	assert_true(vhdx_fault_rule_matches(r, &q));
	q.op = VHDX_FOP_WRITE;
	assert_false(vhdx_fault_rule_matches(r, &q));
	assert_false(vhdx_fault_rule_matches(r, &fl));
	vhdx_fault_rule_free(r);

	r = parse_ok("op=flush err=EIO");
	assert_true(vhdx_fault_rule_matches(r, &fl));
	assert_false(vhdx_fault_rule_matches(r, &q));
	vhdx_fault_rule_free(r);

	r = parse_ok("file=disk.* err=EIO"); /* the base name */
	assert_true(vhdx_fault_rule_matches(r, &q));
	assert_true(vhdx_fault_rule_matches(r, &fl));
	vhdx_fault_rule_free(r);
	r = parse_ok("file=/images/*/disk.vhdx err=EIO"); /* the whole path */
	assert_true(vhdx_fault_rule_matches(r, &q));
	vhdx_fault_rule_free(r);
	r = parse_ok("file=*.avhdx err=EIO");
	assert_false(vhdx_fault_rule_matches(r, &q));
	vhdx_fault_rule_free(r);
	r = parse_ok("file=disk err=EIO");
	assert_false(vhdx_fault_rule_matches(r, &q));
	vhdx_fault_rule_free(r);
}

/* A request's range (its start and length), and whether the rule must meet it. */
struct probe {
	uint64_t at, len;
	bool meets;
};

/* Q moved to each probe's range (its file offset, or its virtual offset when VIRTUAL): does R meet it as expected? */
static void check_probes(const struct vhdx_fault_rule *r, struct vhdx_fault_req q, bool virtual, const struct probe *p,
			 size_t n)
{
	for (size_t i = 0; i < n; i++) {
		*(virtual ? &q.voff : &q.foff) = p[i].at;
		q.len = p[i].len;
		if (vhdx_fault_rule_matches(r, &q) != p[i].meets)
			fail_msg("'%s' %s a request at %s 0x%llx (+0x%llx)", r->text, p[i].meets ? "misses" : "meets",
				 virtual ? "voff" : "off", (unsigned long long)p[i].at, (unsigned long long)p[i].len);
	}
}

static void test_match_ranges(void **state)
{
	static const struct probe off_probes[] = {
		{ 0x2ff000, 0x1000, false }, /* ends at 0x2fffff */
		{ 0x2ff001, 0x1000, true },  /* last byte 0x300000 */
		{ 0x300fff, 1, true },
		{ 0x301000, 1, false },
		{ 0, UINT64_MAX, true }, /* no overflow on the end */
	};
	static const struct probe voff_probes[] = {
		{ 1048575, 1, false },
		{ 1048575, 2, true },
		{ 1114111, 4096, true },
		{ 1114112, 4096, false },
		{ 0, 4u << 20, true }, /* a big read covering the range */
	};
	struct vhdx_fault_rule *r;
	struct vhdx_fault_req q;
	(void)state;

	r = parse_ok("off=0x300000-0x300fff err=EIO");
	check_probes(r, rw_req(VHDX_FOP_READ, 0, 0, VHDX_TAG_BAT, VHDX_NO_VOFF), false, off_probes,
		     VHDX_ARRAY_LEN(off_probes));
	/* truncate: the new size is the offset */
	q = (struct vhdx_fault_req){ .op = VHDX_FOP_TRUNCATE, .path = "d", .base = "d", .has_foff = true,
				     .foff = 0x300800, .voff = VHDX_NO_VOFF };
	assert_true(vhdx_fault_rule_matches(r, &q));
	q.foff = 0x301000;
	assert_false(vhdx_fault_rule_matches(r, &q));
	q.has_foff = false; /* flush: never meets off= */
	q.op = VHDX_FOP_FLUSH;
	assert_false(vhdx_fault_rule_matches(r, &q));
	vhdx_fault_rule_free(r);

	r = parse_ok("op=read voff=1048576-1114111 err=EIO");
	check_probes(r, rw_req(VHDX_FOP_READ, 0x900000, 0, VHDX_TAG_PAYLOAD, 0), true, voff_probes,
		     VHDX_ARRAY_LEN(voff_probes));
	q = rw_req(VHDX_FOP_READ, 0x900000, 4u << 20, VHDX_TAG_PAYLOAD, VHDX_NO_VOFF);
	assert_false(vhdx_fault_rule_matches(r, &q)); /* metadata I/O has no virtual offset */
	vhdx_fault_rule_free(r);

	r = parse_ok("struct=bat,bitmap err=EIO");
	q = rw_req(VHDX_FOP_WRITE, 0, 8, VHDX_TAG_BAT, VHDX_NO_VOFF);
	assert_true(vhdx_fault_rule_matches(r, &q));
	q.tag = VHDX_TAG_BITMAP;
	assert_true(vhdx_fault_rule_matches(r, &q));
	q.tag = VHDX_TAG_PAYLOAD;
	assert_false(vhdx_fault_rule_matches(r, &q));
	q.has_tag = false;
	assert_false(vhdx_fault_rule_matches(r, &q));
	vhdx_fault_rule_free(r);
}

/* Runs CALLS matching calls through R and returns a bitmask of the firing ones (call 1 = bit 0). */
static uint64_t fire_pattern(const char *line, unsigned calls)
{
	struct vhdx_fault_rule *r = parse_ok(line);
	uint64_t mask = 0;

	for (unsigned i = 0; i < calls; i++) {
		if (vhdx_fault_rule_fires(r)) {
			mask |= 1ull << i;
			r->hits++; /* what the engine does when it applies the rule */
		}
	}
	assert_int_equal(r->matched, calls);
	vhdx_fault_rule_free(r);
	return mask;
}

static void test_fires(void **state)
{
	(void)state;

	assert_int_equal(fire_pattern("err=EIO", 5), 0x1f);
	assert_int_equal(fire_pattern("nth=3 err=EIO", 10), 1u << 2);
	assert_int_equal(fire_pattern("after=2 err=EIO", 6), 0x3c);
	assert_int_equal(fire_pattern("every=3 err=EIO", 10), (1u << 2) | (1u << 5) | (1u << 8));
	assert_int_equal(fire_pattern("after=2 every=3 err=EIO", 12), (1u << 4) | (1u << 7) | (1u << 10));
	assert_int_equal(fire_pattern("once err=EIO", 5), 1u);
	assert_int_equal(fire_pattern("after=3 once err=EIO", 8), 1u << 3);
	assert_int_equal(fire_pattern("every=2 once err=EIO", 8), 1u << 1);
	assert_int_equal(fire_pattern("prob=0 err=EIO", 64), 0);
	assert_int_equal(fire_pattern("prob=1 err=EIO", 64), UINT64_MAX);
}

static void test_prob_seed(void **state)
{
	uint64_t a = fire_pattern("prob=0.5 seed=42 err=EIO", 64);
	uint64_t b = fire_pattern("prob=0.5 seed=42 err=EIO", 64);
	uint64_t c = fire_pattern("prob=0.5 seed=43 err=EIO", 64);
	struct vhdx_fault_rule *r;
	unsigned n = 0;
	(void)state;

	assert_true(a == b); /* deterministic from the seed */
	assert_true(a != c);
	r = parse_ok("prob=10% seed=7 err=EIO");
	for (unsigned i = 0; i < 10000; i++)
		n += vhdx_fault_rule_fires(r);
	assert_in_range(n, 850, 1150); /* 10% of 10000, loosely */
	vhdx_fault_rule_free(r);
}

static void test_flip_positions(void **state)
{
	struct vhdx_fault_rule *r1 = parse_ok("flip=5 seed=3"), *r2 = parse_ok("flip=5 seed=3"),
			       *r3 = parse_ok("flip=64");
	uint64_t b1[VHDX_FAULT_MAX_FLIP], b2[VHDX_FAULT_MAX_FLIP];
	unsigned n;
	(void)state;

	n = vhdx_fault_rule_flip_positions(r1, 100, b1);
	assert_int_equal(n, 5);
	assert_int_equal(vhdx_fault_rule_flip_positions(r2, 100, b2), 5);
	for (unsigned i = 0; i < 5; i++) {
		assert_true(b1[i] == b2[i]);
		assert_true(b1[i] < 800);
		for (unsigned j = 0; j < i; j++)
			assert_true(b1[i] != b1[j]);
	}
	/* more bits asked than there are: every bit once */
	n = vhdx_fault_rule_flip_positions(r3, 2, b1);
	assert_int_equal(n, 16);
	uint32_t seen = 0;
	for (unsigned i = 0; i < n; i++)
		seen |= 1u << b1[i];
	assert_int_equal(seen, 0xffff);
	assert_int_equal(vhdx_fault_rule_flip_positions(r3, 0, b1), 0);
	vhdx_fault_rule_free(r1);
	vhdx_fault_rule_free(r2);
	vhdx_fault_rule_free(r3);
}

/* ---------------------------------------------------------------- the engine's rule set */

static void test_engine_add_all_or_none(void **state)
{
	struct vhdx_faults *f;
	char *text;
	uint64_t m, h;
	(void)state;

	assert_ok(vhdx_faults_new(&f));
	assert_fails(vhdx_faults_add(f, "op=read err=EIO\n# comment\nopp=1 err=EIO\n"), -EINVAL,
		     "faults line 3: unknown key 'opp'");
	assert_ok(vhdx_faults_format_rules(f, &text));
	assert_string_equal(text, ""); /* nothing added */
	free(text);

	assert_int_equal(vhdx_faults_add(f, "\n  op=read struct=bat err=EIO  # the BAT\n\nop=write nth=2 once err=ENOSPC"), 2);
	assert_int_equal(vhdx_faults_add(f, "# only a comment\n"), 0);
	assert_ok(vhdx_faults_format_rules(f, &text));
	assert_string_equal(text, "op=read struct=bat err=EIO  # rule 1: hits=0 matched=0\n"
				  "op=write nth=2 once err=ENOSPC  # rule 2: hits=0 matched=0\n");
	free(text);
	assert_ok(vhdx_faults_rule_hits(f, 2, &m, &h));
	assert_int_equal(m, 0);
	assert_fails(vhdx_faults_rule_hits(f, 3, &m, &h), -ENOENT, "no fault rule 3");

	/* ids keep counting after a removal and after clear */
	assert_ok(vhdx_faults_remove(f, 1));
	assert_fails(vhdx_faults_remove(f, 1), -ENOENT, "no fault rule 1");
	assert_int_equal(vhdx_faults_add(f, "op=flush err=EIO"), 1);
	assert_ok(vhdx_faults_format_rules(f, &text));
	assert_string_equal(text, "op=write nth=2 once err=ENOSPC  # rule 2: hits=0 matched=0\n"
				  "op=flush err=EIO  # rule 3: hits=0 matched=0\n");
	free(text);
	vhdx_faults_clear(f);
	assert_int_equal(vhdx_faults_add(f, "delay=1"), 1);
	/* a NULL engine is an argument error, never a crash */
	assert_fails(vhdx_faults_add(NULL, "delay=1"), -EINVAL, "must not be NULL");
	assert_fails(vhdx_faults_add(f, NULL), -EINVAL, "must not be NULL");
	assert_fails(vhdx_faults_format_rules(NULL, &text), -EINVAL, "must not be NULL");
	assert_fails(vhdx_faults_format_events(NULL, 0, &text, NULL), -EINVAL, "must not be NULL");
	assert_fails(vhdx_faults_remove(NULL, 1), -EINVAL, "no engine");
	assert_fails(vhdx_faults_load_file(NULL, "/x"), -EINVAL, "must not be NULL");
	vhdx_faults_clear(NULL);
	vhdx_faults_free(NULL);
	assert_ok(vhdx_faults_format_rules(f, &text));
	assert_string_equal(text, "delay=1  # rule 4: hits=0 matched=0\n");
	free(text);
	vhdx_faults_free(f);
}

static void test_engine_load_file(void **state)
{
	struct vhdx_faults *f;
	char path[] = "/tmp/vhdx-fault-rules-XXXXXX", msg[256];
	int fd;
	FILE *fp;
	(void)state;

	assert_ok(vhdx_faults_new(&f));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	fputs("# rules\nop=read err=EIO\n\nop=write off=10-5 err=EIO\n", fp);
	fclose(fp);
	snprintf(msg, sizeof msg, "%s line 4: off=10-5: end before start", path);
	assert_fails(vhdx_faults_load_file(f, path), -EINVAL, msg);
	assert_string_equal(vhdx_errmsg(), msg);
	fp = fopen(path, "w");
	fputs("op=read err=EIO\nop=write err=EROFS\n", fp);
	fclose(fp);
	assert_int_equal(vhdx_faults_load_file(f, path), 2);
	unlink(path);
	assert_fails(vhdx_faults_load_file(f, path), -ENOENT, "cannot open the fault rules");
	vhdx_faults_free(f);
}

static struct vhdx_fault_req io_req(enum vhdx_fault_op op)
{
	struct vhdx_fault_req q = { .op = op, .path = "/d/a.vhdx", .base = "a.vhdx", .voff = VHDX_NO_VOFF };
	if (op == VHDX_FOP_READ || op == VHDX_FOP_WRITE) {
		q.has_foff = true;
		q.foff = 4096;
		q.len = 512;
		q.has_tag = true;
		q.tag = VHDX_TAG_LOG;
	}
	return q;
}

static void test_engine_eval(void **state)
{
	struct vhdx_faults *f;
	struct vhdx_fault_decision d;
	struct vhdx_fault_req q = io_req(VHDX_FOP_WRITE);
	uint64_t m, h;
	(void)state;

	assert_ok(vhdx_faults_new(&f));
	assert_true(vhdx_fault_idle(f, 0));
	assert_int_equal(vhdx_faults_add(f, "op=write delay=2\nop=write err=ENOSPC\nop=write once err=EROFS\n"
					    "op=write delay=3\nop=read err=EIO"), 5);
	assert_false(vhdx_fault_idle(f, 0));
	vhdx_fault_eval(f, &q, &d);
	/* delays add up; the first deciding rule wins */
	assert_int_equal(d.rule, 2);
	assert_int_equal(d.actions, VHDX_FACT_DELAY | VHDX_FACT_ERR);
	assert_int_equal(d.err, ENOSPC);
	assert_int_equal(d.delay_ms, 5);
	assert_false(d.track);
	/* rule 3 matched but was not applied: its `once` is still armed */
	assert_ok(vhdx_faults_rule_hits(f, 3, &m, &h));
	assert_int_equal(m, 1);
	assert_int_equal(h, 0);
	assert_ok(vhdx_faults_remove(f, 2));
	vhdx_fault_eval(f, &q, &d);
	assert_int_equal(d.rule, 3);
	assert_int_equal(d.err, EROFS);
	vhdx_fault_eval(f, &q, &d);
	assert_int_equal(d.rule, 0); /* once: spent */
	assert_int_equal(d.actions, VHDX_FACT_DELAY);
	assert_ok(vhdx_faults_rule_hits(f, 3, &m, &h));
	assert_int_equal(m, 3);
	assert_int_equal(h, 1);
	assert_ok(vhdx_faults_rule_hits(f, 5, &m, &h));
	assert_int_equal(m, 0); /* a read rule never saw the writes */

	/* a crash rule makes every io keep pre-images and starts a new epoch when it fires */
	assert_int_equal(vhdx_faults_add(f, "op=flush crash"), 1);
	q = io_req(VHDX_FOP_WRITE);
	vhdx_fault_eval(f, &q, &d);
	assert_true(d.track);
	assert_int_equal(vhdx_fault_epoch(f), 0);
	q = io_req(VHDX_FOP_FLUSH);
	vhdx_fault_eval(f, &q, &d);
	assert_int_equal(d.actions, VHDX_FACT_CRASH);
	assert_int_equal(vhdx_fault_epoch(f), 1);
	vhdx_faults_clear(f);
	assert_false(vhdx_fault_idle(f, 0)); /* an io of epoch 0 must notice the crash */
	assert_true(vhdx_fault_idle(f, 1));
	vhdx_faults_free(f);
}

static void test_engine_open(void **state)
{
	struct vhdx_faults *f;
	(void)state;

	assert_ok(vhdx_fault_check_open(NULL, "/x/a.vhdx"));
	assert_ok(vhdx_faults_new(&f));
	assert_ok(vhdx_fault_check_open(f, "/x/a.vhdx"));
	assert_int_equal(vhdx_faults_add(f, "op=open file=*.avhdx err=EACCES"), 1);
	assert_ok(vhdx_fault_check_open(f, "/x/a.vhdx"));
	assert_fails(vhdx_fault_check_open(f, "/x/b.avhdx"), -EACCES, "injected EACCES (fault rule 1)");
	vhdx_faults_free(f);
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_parse_match_keys),
	  cmocka_unit_test(test_parse_actions),
	  cmocka_unit_test(test_parse_errors),
	  cmocka_unit_test(test_parse_u64),
	  cmocka_unit_test(test_match_op_file),
	  cmocka_unit_test(test_match_ranges),
	  cmocka_unit_test(test_fires),
	  cmocka_unit_test(test_prob_seed),
	  cmocka_unit_test(test_flip_positions),
	  cmocka_unit_test(test_engine_add_all_or_none),
	  cmocka_unit_test(test_engine_load_file),
	  cmocka_unit_test(test_engine_eval),
	  cmocka_unit_test(test_engine_open))
