/*
 * report.h - the report writer: one tree printed as indented text or as
 * JSON (report.c).  Internal to the library and the bundled tools.
 */
#ifndef VHDX_REPORT_H
#define VHDX_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct report {
	FILE *f;
	bool json;
	int depth;
	bool first[64];   /* JSON: no comma needed before the next member at this depth */
	bool in_array[64];
};
void report_init(struct report *r, FILE *f, bool json);
/* Continues a document another writer printed to r->f: DEPTH containers are open and hold members. */
void report_resume(struct report *r, int depth);
void report_begin(struct report *r, const char *key);       /* object (key NULL in arrays / at top) */
void report_end(struct report *r);
void report_begin_list(struct report *r, const char *key);  /* array */
void report_end_list(struct report *r);
void report_str(struct report *r, const char *key, const char *val);
void report_str_or_null(struct report *r, const char *key, const char *val); /* NULL: JSON null, text "no" */
void report_u64(struct report *r, const char *key, uint64_t val);
void report_hex(struct report *r, const char *key, uint64_t val); /* JSON number, text 0x... */
void report_bool(struct report *r, const char *key, bool val);
void report_guid(struct report *r, const char *key, const uint8_t g[16]);
void report_size(struct report *r, const char *key, uint64_t bytes); /* JSON number, text "10 MiB (10485760)" */
void report_f64(struct report *r, const char *key, double val, int decimals); /* JSON number, DECIMALS digits after the point */
void report_finish(struct report *r);
/*
 * Observers of every JSON report, NULL by default: the vhdx tool sets them
 * (tools/json_error.c) so that an error after a report began still leaves
 * one JSON document on standard output.
 */
void report_set_json_hooks(void (*begun)(struct report *r), void (*done)(struct report *r));
/** Writes S as a JSON string literal. */
void json_write_string(FILE *f, const char *s);

#endif
