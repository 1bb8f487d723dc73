/*
 * cycle_rules.c - the fault rules of `vhdx cycle mount`, carried from cycle
 * to cycle.
 *
 * Each cycle runs a new vhdxfs, and each vhdxfs has a new fault engine whose
 * rules count their matching calls from zero.  A backup agent's disk does
 * not start afresh at every mount, and rules like `op=open nth=5` (the fifth
 * mount fails) or `op=close every=50` only mean something over the whole
 * run.  So before each cycle the rules are rewritten from how many calls
 * each one matched (M) and acted on (H) in the cycles before, as reported in
 * the fault log vhdxfs writes at exit:
 *
 *   once, H > 0           left out (it acted already)
 *   nth=N                 nth=N-M; left out once M >= N, or when the rule's
 *                         after=/every= can never let call N fire
 *   after=A               after=A-M while M < A, then dropped
 *   every=E [after=A]     the next firing call is the k-th of this cycle with
 *                         k = E - ((M - A) mod E) (or A - M + E while M < A);
 *                         every=E when k = E, after=A-M every=E while M < A,
 *                         otherwise two rules: nth=k and after=k every=E
 *                         (with `once` only the first)
 *   prob=P, flip=N        seed=S' with S' drawn from the rule's seed (or
 *                         --seed) and the cycle number: the random draws are
 *                         reproducible per cycle, not one stream over the run
 *
 * Every other word is passed on as written.  cycle_rules_origin() maps the
 * rule numbers of the rewritten set back to the lines of the rules file, so
 * events and reports name the user's rules.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/grow.h"
#include "common/rule_num.h"
#include "common/splitmix.h"
#include "cycle.h"

struct crule {
	char *text;        /* the line without comment, trimmed */
	char **words;      /* the words other than nth/after/every/once/seed */
	size_t nwords;
	bool once, has_prob, has_flip, has_seed;
	uint64_t nth, after, every, seed;
	uint64_t matched, hits; /* over the run so far */
};

struct cycle_rules {
	struct crule *r;
	size_t n;
	uint64_t run_seed;
	/* the last emitted set: rule id (1-based) -> rule index + 1, and whether it counts matches */
	unsigned *origin;
	bool *primary;
	size_t n_emitted, cap_emitted;
	bool accounted;    /* the counts of the last emitted set were added */
};

static void crule_free(struct crule *c)
{
	for (size_t i = 0; i < c->nwords; i++)
		free(c->words[i]);
	free(c->words);
	free(c->text);
}

/* Splits LINE (comment already cut) into C; 0 for a rule, 1 for a blank line, -1 on ENOMEM/bad number. */
static int crule_parse(char *line, struct crule *c)
{
	char *save = NULL, *w;
	size_t cap = 0;

	memset(c, 0, sizeof *c);
	for (w = strtok_r(line, " \t\r", &save); w; w = strtok_r(NULL, " \t\r", &save)) {
		uint64_t *num = NULL;

		if (!strncmp(w, "nth=", 4))
			num = &c->nth;
		else if (!strncmp(w, "after=", 6))
			num = &c->after;
		else if (!strncmp(w, "every=", 6))
			num = &c->every;
		else if (!strncmp(w, "seed=", 5)) {
			num = &c->seed;
			c->has_seed = true;
		} else if (!strcmp(w, "once")) {
			c->once = true;
			continue;
		}
		if (num) {
			const char *v = strchr(w, '=') + 1;

			/* the engine's reading: nth=010 is ten */
			if (rule_parse_u64(v, strlen(v), num) < 0)
				return -1;
			continue;
		}
		if (!strncmp(w, "prob=", 5))
			c->has_prob = true;
		if (!strncmp(w, "flip=", 5))
			c->has_flip = true;
		if (grow(&c->words, &cap, c->nwords + 1, sizeof *c->words, 8) < 0)
			return -1;
		c->words[c->nwords] = strdup(w);
		if (!c->words[c->nwords])
			return -1;
		c->nwords++;
	}
	return c->nwords || c->nth || c->after || c->every || c->once ? 0 : 1;
}

int cycle_rules_load(const char *path, uint64_t seed, struct cycle_rules **out)
{
	struct vhdx_faults *f = NULL;
	struct cycle_rules *r;
	char *text, *line, *save = NULL;
	size_t cap = 0;
	int ret;

	r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->run_seed = seed;
	*out = r;
	if (!path)
		return 0;
	/* The library's parser is the judge: "PATH line N: ..." */
	ret = vhdx_faults_new(&f);
	if (ret == 0)
		ret = vhdx_faults_load_file(f, path);
	vhdx_faults_free(f);
	if (ret < 0) {
		tool_error("cycle", "--faults: %s", vhdx_errmsg());
		return ret;
	}
	text = cycle_read_file(path);
	if (!text) {
		tool_error("cycle", "--faults %s: %s", path, strerror(errno));
		return -EIO;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct crule c;
		char *hash, *p;
		int pr;

		/* a comment starts with # at the start of a word */
		for (hash = line; (hash = strchr(hash, '#')); hash++)
			if (hash == line || hash[-1] == ' ' || hash[-1] == '\t') {
				*hash = '\0';
				break;
			}
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		char *copy = strdup(p);
		if (!copy) {
			free(text);
			return -ENOMEM;
		}
		for (size_t n = strlen(copy); n && (copy[n - 1] == ' ' || copy[n - 1] == '\t' || copy[n - 1] == '\r');)
			copy[--n] = '\0';
		pr = crule_parse(p, &c);
		if (pr != 0) {
			crule_free(&c);
			free(copy);
			if (pr < 0) {
				free(text);
				tool_error("cycle", "--faults %s: cannot read the rule '%s'", path, line);
				return -EINVAL;
			}
			continue;
		}
		c.text = copy;
		if (grow(&r->r, &cap, r->n + 1, sizeof *r->r, 8) < 0) {
			crule_free(&c);
			free(text);
			return -ENOMEM;
		}
		r->r[r->n++] = c;
	}
	free(text);
	return 0;
}

void cycle_rules_free(struct cycle_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		crule_free(&r->r[i]);
	free(r->r);
	free(r->origin);
	free(r->primary);
	free(r);
}

unsigned cycle_rules_count(const struct cycle_rules *r)
{
	return r ? (unsigned)r->n : 0;
}

const char *cycle_rules_text(const struct cycle_rules *r, unsigned n)
{
	return r && n >= 1 && n <= r->n ? r->r[n - 1].text : "";
}

uint64_t cycle_rules_hits(const struct cycle_rules *r, unsigned n)
{
	return r && n >= 1 && n <= r->n ? r->r[n - 1].hits : 0;
}

uint64_t cycle_rules_matched(const struct cycle_rules *r, unsigned n)
{
	return r && n >= 1 && n <= r->n ? r->r[n - 1].matched : 0;
}

/* Records that the next emitted rule comes from rule index I. */
static int note(struct cycle_rules *r, size_t i, bool primary)
{
	size_t cap = r->cap_emitted; /* the two arrays grow together */

	if (grow(&r->origin, &cap, r->n_emitted + 1, sizeof *r->origin, 16) < 0 ||
	    grow(&r->primary, &r->cap_emitted, r->n_emitted + 1, sizeof *r->primary, 16) < 0)
		return -1;
	r->origin[r->n_emitted] = (unsigned)i + 1;
	r->primary[r->n_emitted] = primary;
	r->n_emitted++;
	return 0;
}

/* Writes rule C's words and then the counter words given. */
static void emit(FILE *out, const struct crule *c, uint64_t seed, bool with_seed, const char *counters)
{
	for (size_t i = 0; i < c->nwords; i++)
		fprintf(out, "%s%s", i ? " " : "", c->words[i]);
	if (with_seed)
		fprintf(out, " seed=%" PRIu64, seed);
	if (counters && *counters)
		fprintf(out, " %s", counters);
	if (c->once)
		fprintf(out, " once");
	fputc('\n', out);
}

int cycle_rules_emit(struct cycle_rules *r, unsigned cycle, FILE *out)
{
	int lines = 0;

	r->n_emitted = 0;
	r->accounted = false;
	for (size_t i = 0; i < r->n; i++) {
		const struct crule *c = &r->r[i];
		uint64_t m = c->matched, seed;
		bool with_seed = c->has_prob || c->has_flip || c->has_seed;
		char buf[96];

		seed = splitmix64_mix((c->has_seed ? c->seed : r->run_seed) ^ splitmix64_mix(cycle));
		if (c->once && c->hits)
			continue; /* acted already */
		if (c->nth) {
			/* call nth fires only if after= and every= let it */
			if (c->nth <= m || c->nth <= c->after || (c->every && (c->nth - c->after) % c->every))
				continue;
			snprintf(buf, sizeof buf, "nth=%" PRIu64, c->nth - m);
		} else if (c->every) {
			uint64_t k; /* the next firing call, counted from 1 in this cycle */

			if (m < c->after) {
				snprintf(buf, sizeof buf, "after=%" PRIu64 " every=%" PRIu64, c->after - m, c->every);
				k = 0;
			} else {
				k = c->every - (m - c->after) % c->every;
				if (k == c->every)
					snprintf(buf, sizeof buf, "every=%" PRIu64, c->every);
				else
					snprintf(buf, sizeof buf, "nth=%" PRIu64, k);
			}
			if (note(r, i, true) < 0)
				return -ENOMEM;
			emit(out, c, seed, with_seed, buf);
			lines++;
			if (k && k != c->every && !c->once) {
				/* the firings after the k-th: k + E, k + 2E, ... */
				snprintf(buf, sizeof buf, "after=%" PRIu64 " every=%" PRIu64, k, c->every);
				if (note(r, i, false) < 0)
					return -ENOMEM;
				emit(out, c, splitmix64_mix(seed), with_seed, buf);
				lines++;
			}
			continue;
		} else if (c->after) {
			if (m < c->after)
				snprintf(buf, sizeof buf, "after=%" PRIu64, c->after - m);
			else
				buf[0] = '\0';
		} else {
			buf[0] = '\0';
		}
		if (note(r, i, true) < 0)
			return -ENOMEM;
		emit(out, c, seed, with_seed, buf);
		lines++;
	}
	return lines;
}

unsigned cycle_rules_origin(const struct cycle_rules *r, unsigned id)
{
	return r && id >= 1 && id <= r->n_emitted ? r->origin[id - 1] : 0;
}

void cycle_rules_account(struct cycle_rules *r, const char *listing)
{
	const char *p = listing;

	if (!r || !listing || r->accounted)
		return;
	/* once per cycle: the log and the listing read before the unmount must not both count */
	r->accounted = true;
	while ((p = strstr(p, "# rule "))) {
		unsigned id;
		unsigned long long hits, matched;

		if (sscanf(p, "# rule %u: hits=%llu matched=%llu", &id, &hits, &matched) == 3 && id >= 1 &&
		    id <= r->n_emitted) {
			struct crule *c = &r->r[r->origin[id - 1] - 1];

			c->hits += hits;
			if (r->primary[id - 1])
				c->matched += matched;
		}
		p += 7;
	}
}

/*
 * vhdxfs's messages number the rules of the cycle's rewritten set ("fault
 * rule 4"); the user knows the lines of the rules file.  Rewrites every
 * "fault rule N" of MSG to the rules file's number (in place when shorter,
 * else into a new string that replaces *MSG).
 */
void cycle_rules_renumber(const struct cycle_rules *rules, char **msg)
{
	static const char key[] = "fault rule ";
	char *out = NULL, *p;
	size_t len = 0;
	FILE *f;

	if (!*msg || !strstr(*msg, key))
		return;
	f = open_memstream(&out, &len);
	if (!f)
		return;
	for (p = *msg; *p;) {
		char *k = strstr(p, key), *end;
		unsigned long id;

		if (!k) {
			fputs(p, f);
			break;
		}
		fwrite(p, 1, (size_t)(k - p) + sizeof key - 1, f);
		p = k + sizeof key - 1;
		id = strtoul(p, &end, 10);
		if (end == p) {
			continue;
		}
		fprintf(f, "%u", cycle_rules_origin(rules, (unsigned)id) ? cycle_rules_origin(rules, (unsigned)id)
									  : (unsigned)id);
		p = end;
	}
	if (fclose(f) == 0 && out) {
		free(*msg);
		*msg = out;
	} else {
		free(out);
	}
}
