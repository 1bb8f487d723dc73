/*
 * report.c - one tree of facts printed as indented text or as JSON: the
 * writer behind `vhdx info`, `vhdx check` and the other reports, and
 * behind vhdx_info_json() (libvhdx.h), so that the tool and the bindings
 * print the same document.
 */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "common/report.h"
#include "libvhdx.h"

void json_write_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

static void (*json_begun)(struct report *r);
static void (*json_done)(struct report *r);

void report_set_json_hooks(void (*begun)(struct report *r), void (*done)(struct report *r))
{
	json_begun = begun;
	json_done = done;
}

void report_init(struct report *r, FILE *f, bool json)
{
	memset(r, 0, sizeof *r);
	r->f = f;
	r->json = json;
	r->first[0] = true;
	if (json && json_begun)
		json_begun(r);
}

void report_resume(struct report *r, int depth)
{
	r->depth = depth;
	for (int d = 0; d <= depth && d < 64; d++)
		r->first[d] = false;
}

static void indent(struct report *r)
{
	for (int i = 0; i < r->depth; i++)
		fputs("  ", r->f);
}

/* Starts a member: comma and key in JSON, indentation and "key:" in text. */
static void member(struct report *r, const char *key, bool container)
{
	if (r->json) {
		if (!r->first[r->depth])
			fputc(',', r->f);
		r->first[r->depth] = false;
		if (key && !r->in_array[r->depth]) {
			json_write_string(r->f, key);
			fputc(':', r->f);
		}
		return;
	}
	if (r->depth == 0 && !key)
		return;
	if (r->in_array[r->depth] && !key) {
		indent(r);
		fputs(container ? "-\n" : "- ", r->f);
		return;
	}
	indent(r);
	fprintf(r->f, "%s:%s", key ? key : "-", container ? "\n" : " ");
}

static void open_container(struct report *r, const char *key, bool array)
{
	member(r, key, true);
	if (r->json)
		fputc(array ? '[' : '{', r->f);
	if (r->depth < 63)
		r->depth++;
	r->first[r->depth] = true;
	r->in_array[r->depth] = array;
}

static void close_container(struct report *r, bool array)
{
	if (r->depth > 0)
		r->depth--;
	if (r->json)
		fputc(array ? ']' : '}', r->f);
}

void report_begin(struct report *r, const char *key)
{
	open_container(r, key, false);
}
void report_end(struct report *r)
{
	close_container(r, false);
}
void report_begin_list(struct report *r, const char *key)
{
	open_container(r, key, true);
}
void report_end_list(struct report *r)
{
	close_container(r, true);
}

void report_str(struct report *r, const char *key, const char *val)
{
	member(r, key, false);
	if (r->json)
		json_write_string(r->f, val);
	else
		fprintf(r->f, "%s\n", val ? val : "");
}

void report_str_or_null(struct report *r, const char *key, const char *val)
{
	if (val) {
		report_str(r, key, val);
		return;
	}
	member(r, key, false);
	fputs(r->json ? "null" : "no\n", r->f);
}

void report_u64(struct report *r, const char *key, uint64_t val)
{
	member(r, key, false);
	fprintf(r->f, r->json ? "%" PRIu64 : "%" PRIu64 "\n", val);
}

void report_hex(struct report *r, const char *key, uint64_t val)
{
	member(r, key, false);
	fprintf(r->f, r->json ? "%" PRIu64 : "0x%" PRIx64 "\n", val);
}

void report_bool(struct report *r, const char *key, bool val)
{
	member(r, key, false);
	fprintf(r->f, r->json ? "%s" : "%s\n", val ? (r->json ? "true" : "yes") : (r->json ? "false" : "no"));
}

void report_guid(struct report *r, const char *key, const uint8_t g[16])
{
	char s[VHDX_GUID_TEXT_SIZE];

	vhdx_guid_text(g, s);
	report_str(r, key, s);
}

void report_size(struct report *r, const char *key, uint64_t bytes)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB" };
	unsigned u = 0;
	double v = (double)bytes;

	member(r, key, false);
	if (r->json) {
		fprintf(r->f, "%" PRIu64, bytes);
		return;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		fprintf(r->f, "%" PRIu64 " bytes\n", bytes);
	else
		fprintf(r->f, "%.4g %s (%" PRIu64 " bytes)\n", v, units[u], bytes);
}

void report_f64(struct report *r, const char *key, double val, int decimals)
{
	member(r, key, false);
	/* "%.*f" of a finite number is a JSON number; NaN and infinities are not */
	if (val != val || val > 1e300 || val < -1e300)
		val = 0;
	fprintf(r->f, r->json ? "%.*f" : "%.*f\n", decimals, val);
}

void report_finish(struct report *r)
{
	if (r->json) {
		fputc('\n', r->f);
		if (json_done)
			json_done(r);
	}
	fflush(r->f);
}
