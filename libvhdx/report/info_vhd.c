/*
 * info_vhd.c - the legacy VHD part of `vhdx info`: the footer in use with
 * every field (timestamps as ISO-8601 UTC from the VHD epoch 2000-01-01,
 * the CHS geometry and the size it implies), both footer copies and
 * whether they match, the dynamic header, the BAT allocation counts and
 * the 8 parent locator entries with their decoded paths.
 */
#include "config.h"

#include <stdio.h>
#include <time.h>

#include "report/info.h"
#include "port/compat.h" /* gmtime_r on Windows */
#include "codec/vhd_codec.h"
#include "format/vhd_format.h"

static void report_time(struct report *r, const char *key, uint32_t ts)
{
	time_t t = (time_t)vhdx_vhd_time_to_unix(ts);
	struct tm tm;
	char buf[32];

	if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, sizeof buf, "%u", ts);
	report_str(r, key, buf);
}

static void report_fourcc(struct report *r, const char *key, uint32_t code)
{
	char cc[5];

	vhdx_vhd_fourcc(code, cc);
	report_str(r, key, cc);
}

static const char *vhd_type_name(uint32_t t)
{
	switch (t) {
	case VHD_TYPE_FIXED: return "fixed";
	case VHD_TYPE_DYNAMIC: return "dynamic";
	case VHD_TYPE_DIFFERENCING: return "differencing";
	default: return "unsupported";
	}
}

static const char *os_name(uint32_t os)
{
	switch (os) {
	case VHD_OS_WINDOWS: return "Windows";
	case VHD_OS_MAC: return "Macintosh";
	default: return "unknown";
	}
}

static void print_footer(struct report *r, const struct vhdx_vhd_footer *f)
{
	char app[5], ver[24];
	struct vhdx_vhd_chs calc;

	for (int i = 0; i < 4; i++) {
		unsigned char c = f->creator_app[i];
		app[i] = c >= 0x20 && c < 0x7f ? (char)c : c == 0 ? ' ' : '?';
	}
	app[4] = '\0';
	snprintf(ver, sizeof ver, "%u.%u", f->creator_version >> 16, f->creator_version & 0xffff);

	report_hex(r, "features", f->features);
	report_bool(r, "temporary", f->features & VHD_FEATURE_TEMPORARY);
	report_bool(r, "reserved_feature_bit_set", f->features & VHD_FEATURE_RESERVED);
	report_hex(r, "format_version", f->version);
	report_hex(r, "data_offset", f->data_offset);
	report_time(r, "timestamp", f->timestamp);
	report_str(r, "creator_application", app);
	report_str(r, "creator_version", ver);
	report_fourcc(r, "creator_host_os", f->creator_os);
	report_str(r, "creator_host_os_name", os_name(f->creator_os));
	report_size(r, "original_size", f->original_size);
	report_size(r, "current_size", f->current_size);
	report_begin(r, "geometry");
	report_u64(r, "cylinders", f->cylinders);
	report_u64(r, "heads", f->heads);
	report_u64(r, "sectors_per_track", f->sectors_per_track);
	report_end(r);
	report_size(r, "chs_size", vhdx_vhd_chs_size(f->cylinders, f->heads, f->sectors_per_track));
	/* what the spec's algorithm gives for the current size, to spot tools that differ */
	vhdx_vhd_chs_calc(f->current_size, &calc);
	report_bool(r, "geometry_matches_spec_calculation", calc.cylinders == f->cylinders && calc.heads == f->heads &&
								    calc.sectors_per_track == f->sectors_per_track);
	report_u64(r, "disk_type", f->disk_type);
	report_str(r, "disk_type_name", vhd_type_name(f->disk_type));
	report_hex(r, "checksum", f->checksum);
	report_bool(r, "checksum_valid", f->checksum_valid);
	{
		uint8_t g[16];
		vhdx_vhd_uuid_to_guid(f->unique_id, g);
		report_guid(r, "unique_id", g);
	}
	report_bool(r, "saved_state", f->saved_state != 0);
	if (f->reserved_nonzero)
		report_bool(r, "reserved_bytes_nonzero", true);
}

static void print_copy(struct report *r, const char *key, const struct vhdx_vhd_footer_copy *c)
{
	report_begin(r, key);
	report_hex(r, "offset", c->offset);
	report_bool(r, "present", c->present);
	if (c->old_size)
		report_bool(r, "old_511_byte_footer", true);
	report_bool(r, "valid", c->valid);
	if (c->present)
		report_bool(r, "checksum_valid", c->f.checksum_valid);
	if (c->error)
		report_str(r, "error", c->error);
	report_end(r);
}

static void print_locators(struct report *r, const struct vhdx_vhd_state *s)
{
	report_begin_list(r, "parent_locators");
	for (unsigned i = 0; i < VHD_N_LOCATORS; i++) {
		const struct vhdx_vhd_locator *e = &s->dyn.locators[i];
		if (e->code == VHD_PLAT_NONE && !e->data_length && !e->data_offset)
			continue;
		report_begin(r, NULL);
		report_u64(r, "entry", i);
		report_fourcc(r, "code", e->code);
		report_hex(r, "code_value", e->code);
		report_u64(r, "data_space", e->data_space);
		report_u64(r, "data_length", e->data_length);
		report_hex(r, "data_offset", e->data_offset);
		if (s->locators[i].path)
			report_str(r, "path", s->locators[i].path);
		if (s->locators[i].error)
			report_str(r, "error", s->locators[i].error);
		report_end(r);
	}
	report_end_list(r);
}

void info_vhd_layer(struct report *r, struct vhdx_layer *l, bool verbose)
{
	struct vhdx_vhd_state *s = vhdx_vhd_state_of(l);
	const struct vhdx_vhd_dynhdr *d = &s->dyn;

	(void)verbose;
	report_begin(r, "footer");
	report_str(r, "copy_used", s->used == VHDX_VHD_TRAILING ? "trailing" : "leading");
	report_hex(r, "offset", s->copies[s->used].offset);
	print_footer(r, s->footer);
	report_end(r);

	report_begin(r, "footer_copies");
	print_copy(r, "trailing", &s->copies[VHDX_VHD_TRAILING]);
	if (s->leading_read) {
		print_copy(r, "leading", &s->copies[VHDX_VHD_LEADING]);
		report_bool(r, "copies_match", s->copies[VHDX_VHD_TRAILING].valid &&
						       s->copies[VHDX_VHD_LEADING].valid && !s->footers_differ);
	}
	report_end(r);

	if (!s->has_dynhdr)
		return;
	report_begin(r, "dynamic_header");
	report_hex(r, "offset", s->dynhdr_off);
	report_hex(r, "data_offset", d->data_offset);
	report_hex(r, "table_offset", d->table_offset);
	report_hex(r, "header_version", d->version);
	report_u64(r, "max_table_entries", d->max_table_entries);
	report_u64(r, "block_size", d->block_size);
	report_hex(r, "checksum", d->checksum);
	report_bool(r, "checksum_valid", d->checksum_valid);
	{
		uint8_t g[16];
		vhdx_vhd_uuid_to_guid(d->parent_unique_id, g);
		report_guid(r, "parent_unique_id", g);
	}
	report_time(r, "parent_timestamp", d->parent_timestamp);
	report_str(r, "parent_name", s->parent_name ? s->parent_name : "");
	report_end(r);

	report_begin(r, "bat");
	report_hex(r, "offset", d->table_offset);
	report_u64(r, "max_entries", d->max_table_entries);
	report_u64(r, "entries_needed", s->blocks_needed);
	report_u64(r, "allocated_blocks", s->allocated_blocks);
	report_u64(r, "bitmap_size", s->bitmap_size);
	report_end(r);

	print_locators(r, s);
}
