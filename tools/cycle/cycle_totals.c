/*
 * cycle_totals.c - the totals of a run of `vhdx cycle` that both drivers
 * (mount in cmd_cycle.c, checkpoint in cycle_checkpoint.c) count and print
 * the same way: cycles (rounds) per class, injected faults per class, and
 * the calls that failed after a simulated crash, counted apart.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "cycle.h"

void cycle_totals_add(struct cycle_totals *t, const struct cycle_result *res)
{
	t->by_class[res->cls]++;
	t->run++;
	for (size_t i = 0; i < res->n_events; i++) {
		/* a call failed by an earlier crash is no fault of a rule (issue #17 item 5) */
		if (!strcmp(res->events[i].action, "after-crash")) {
			t->after_crash++;
			continue;
		}
		t->faults_by_class[res->events[i].cls]++;
		t->faults_total++;
	}
}

bool cycle_totals_bad(const struct cycle_totals *t)
{
	for (int c = CC_UNEXPECTED; c < CC__COUNT; c++)
		if (t->by_class[c])
			return true;
	return false;
}

void cycle_totals_text(const struct cycle_totals *t, const char *unit, unsigned count, double secs)
{
	printf("\nSummary: %u of %u %s in %.1f s, %" PRIu64 " faults injected, %" PRIu64
	       " calls failed after a simulated crash\n", t->run, count, unit, secs, t->faults_total, t->after_crash);
	printf("  %-11s %8s %8s\n", "class", unit, "faults");
	for (int c = 0; c < CC__COUNT; c++)
		printf("  %-11s %8" PRIu64 " %8" PRIu64 "\n", cycle_class_name((enum cycle_class)c), t->by_class[c],
		       t->faults_by_class[c]);
}

void cycle_totals_json(struct report *r, const struct cycle_totals *t, const char *unit, double secs)
{
	char key[32];

	snprintf(key, sizeof key, "%s_run", unit);
	report_u64(r, key, t->run);
	report_f64(r, "seconds", secs, 3);
	report_u64(r, "faults", t->faults_total);
	report_u64(r, "after_crash_events", t->after_crash);
	snprintf(key, sizeof key, "%s_by_class", unit);
	report_begin(r, key);
	for (int c = 0; c < CC__COUNT; c++)
		report_u64(r, cycle_class_name((enum cycle_class)c), t->by_class[c]);
	report_end(r);
	report_begin(r, "faults_by_class");
	for (int c = 0; c < CC__COUNT; c++)
		report_u64(r, cycle_class_name((enum cycle_class)c), t->faults_by_class[c]);
	report_end(r);
}
