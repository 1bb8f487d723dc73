/*
 * fuzz_fault_rules.c - libFuzzer target for the fault-rule language
 * (io/fault_rules.c, the grammar in io/fault.h) and the engine that
 * evaluates rules (io/fault_engine.c).  The input is rule text, as a
 * --faults file or .vhdxfs/faults would hold it:
 *
 *   - every line alone through vhdx_fault_rule_parse(); a rule that parses
 *     must parse again from its own stored text (rule->text) to the same
 *     match and action fields (an oracle for the trimming and comments);
 *   - the whole text into an engine (vhdx_faults_add, all or nothing), the
 *     listing (vhdx_faults_format_rules), and a fixed set of requests of
 *     every kind through vhdx_fault_eval, a few rounds so that nth=, after=,
 *     every=, prob= and flip= advance their state.  The engine only decides;
 *     nothing sleeps or fails here.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "libvhdx.h"
#include "io/fault.h"
#include "fuzz.h"

static void same_rule(const struct vhdx_fault_rule *a, const struct vhdx_fault_rule *b)
{
	if (strcmp(a->text, b->text) != 0 || a->op_mask != b->op_mask || a->has_off != b->has_off ||
	    a->off_first != b->off_first || a->off_last != b->off_last || a->has_voff != b->has_voff ||
	    a->voff_first != b->voff_first || a->voff_last != b->voff_last || a->tag_mask != b->tag_mask ||
	    a->nth != b->nth || a->after != b->after || a->every != b->every || a->once != b->once ||
	    a->has_prob != b->has_prob || a->seed != b->seed || a->actions != b->actions || a->err != b->err ||
	    a->delay_ms != b->delay_ms || a->short_bytes != b->short_bytes ||
	    a->torn_sectors != b->torn_sectors || a->flip_bits != b->flip_bits ||
	    (a->file_glob == NULL) != (b->file_glob == NULL) ||
	    (a->file_glob && strcmp(a->file_glob, b->file_glob) != 0))
		FUZZ_FAIL("rule '%s' parses differently from its own text", a->text);
}

static void each_line(const char *text)
{
	unsigned lineno = 1;

	for (const char *line = text; *line; lineno++) {
		struct vhdx_fault_rule *r = NULL, *again = NULL;
		const char *nl = strchr(line, '\n');

		if (vhdx_fault_rule_parse(line, "fuzz", lineno, &r) == 1) {
			if (!r)
				FUZZ_FAIL("vhdx_fault_rule_parse returned 1 without a rule");
			if (vhdx_fault_rule_parse(r->text, "fuzz", lineno, &again) != 1)
				FUZZ_FAIL("rule '%s' does not parse from its own text: %s", r->text, vhdx_errmsg());
			same_rule(r, again);
			if (r->actions & VHDX_FACT_FLIP) {
				uint64_t bits[VHDX_FAULT_MAX_FLIP];
				unsigned n = vhdx_fault_rule_flip_positions(r, 3, bits);

				if (n > VHDX_FAULT_MAX_FLIP || n > 24)
					FUZZ_FAIL("%u flip positions for 3 bytes", n);
				for (unsigned i = 0; i < n; i++)
					if (bits[i] >= 24)
						FUZZ_FAIL("flip position %llu outside 3 bytes", (unsigned long long)bits[i]);
			}
		}
		vhdx_fault_rule_free(r);
		vhdx_fault_rule_free(again);
		if (!nl)
			break;
		line = nl + 1;
	}
}

static void evaluate(struct vhdx_faults *f)
{
	static const struct vhdx_fault_req reqs[] = {
		{ .op = VHDX_FOP_READ, .path = "/d/a.vhdx", .base = "a.vhdx", .has_foff = true, .foff = 0,
		  .len = 4096, .has_tag = true, .tag = VHDX_TAG_HEADER, .voff = VHDX_NO_VOFF },
		{ .op = VHDX_FOP_WRITE, .path = "/d/a.vhdx", .base = "a.vhdx", .has_foff = true,
		  .foff = 3 << 20, .len = 65536, .has_tag = true, .tag = VHDX_TAG_PAYLOAD, .voff = 1 << 20 },
		{ .op = VHDX_FOP_READ, .path = "b.vhd", .base = "b.vhd", .has_foff = true,
		  .foff = UINT64_MAX - 10, .len = 512, .has_tag = true, .tag = VHDX_TAG_FOOTER,
		  .voff = VHDX_NO_VOFF },
		{ .op = VHDX_FOP_TRUNCATE, .path = "/d/a.vhdx", .base = "a.vhdx", .has_foff = true,
		  .foff = 8 << 20, .len = 0, .voff = VHDX_NO_VOFF },
		{ .op = VHDX_FOP_FLUSH, .path = "/d/a.vhdx", .base = "a.vhdx", .voff = VHDX_NO_VOFF },
		{ .op = VHDX_FOP_OPEN, .path = "/d/a.vhdx", .base = "a.vhdx", .voff = VHDX_NO_VOFF },
		{ .op = VHDX_FOP_CLOSE, .path = "/d/a.vhdx", .base = "a.vhdx", .voff = VHDX_NO_VOFF },
		{ .op = VHDX_FOP_WRITE, .path = "/d/a.vhdx", .base = "a.vhdx", .has_foff = true, .foff = 4096,
		  .len = 4096, .has_tag = true, .tag = VHDX_TAG_LOG, .voff = VHDX_NO_VOFF,
		  .crash_unavailable = true },
	};
	struct vhdx_fault_decision d;

	for (int round = 0; round < 4; round++)
		for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
			vhdx_fault_eval(f, &reqs[i], &d);
			if (d.nflip > VHDX_FAULT_MAX_FLIP)
				FUZZ_FAIL("decision with %u flips", d.nflip);
			for (unsigned k = 0; k < d.nflip; k++)
				if (d.flip[k] >= reqs[i].len * 8)
					FUZZ_FAIL("flip bit %llu outside a %llu-byte request",
						  (unsigned long long)d.flip[k], (unsigned long long)reqs[i].len);
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vhdx_faults *f = NULL;
	char *text = malloc(size + 1);
	char *listing = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	each_line(text);
	if (vhdx_faults_new(&f) == 0) {
		if (vhdx_faults_add(f, text) > 0) {
			if (vhdx_faults_format_rules(f, &listing) == 0)
				free(listing);
			evaluate(f);
		}
		vhdx_faults_free(f);
	}
	free(text);
	return 0;
}
