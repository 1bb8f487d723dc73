/*
 * info_vhdx.c - the VHDX part of `vhdx info`: file identifier, both
 * headers, both region tables, metadata items, BAT state counts, the log
 * state and the parent locator entries; with --log, every entry of the
 * log's active sequence (info_vhdx_log).
 */
#include "config.h"

#include <stdlib.h>

#include "report/info.h"
#include "codec/guid.h"
#include "codec/vhdx_locator.h"
#include "format/vhdx_format.h"
#include "format/vhdx_log.h"

void info_vhdx_layer(struct report *r, struct vhdx_layer *l, bool verbose)
{
	struct vhdx_state *s = vhdx_state_of(l);
	const struct vhdx_header *cur = &s->headers[s->current];
	static const unsigned states[] = { VHDX_BAT_NOT_PRESENT, VHDX_BAT_UNDEFINED, VHDX_BAT_ZERO,
					   VHDX_BAT_UNMAPPED, VHDX_BAT_UNMAPPED_V095, VHDX_BAT_FULLY_PRESENT,
					   VHDX_BAT_PARTIALLY_PRESENT };

	report_str(r, "creator", s->fileid.creator ? s->fileid.creator : "");
	report_u64(r, "chunk_ratio", s->geo.chunk_ratio);
	report_u64(r, "current_header", (uint64_t)s->current + 1);
	report_begin_list(r, "headers");
	for (int i = 0; i < 2; i++) {
		const struct vhdx_header *h = &s->headers[i];
		report_begin(r, NULL);
		report_u64(r, "slot", (uint64_t)i + 1);
		report_hex(r, "offset", i ? 0x20000 : 0x10000);
		report_bool(r, "valid", s->header_valid[i]);
		if (!s->header_valid[i]) {
			report_str(r, "error", s->header_error[i] ? s->header_error[i] : "");
		} else {
			report_u64(r, "sequence_number", h->seq);
			report_guid(r, "file_write_guid", h->file_write_guid);
			report_guid(r, "data_write_guid", h->data_write_guid);
			report_guid(r, "log_guid", h->log_guid);
			report_u64(r, "version", h->version);
			report_u64(r, "log_version", h->log_version);
			report_hex(r, "log_offset", h->log_offset);
			report_u64(r, "log_length", h->log_length);
		}
		report_end(r);
	}
	report_end_list(r);

	report_begin(r, "log");
	report_str(r, "state", s->log_was_dirty ? (l->log_replayed ? "dirty, replayed" : "dirty") : "clean");
	report_hex(r, "offset", cur->log_offset);
	report_u64(r, "length", cur->log_length);
	if (s->log_report)
		report_str(r, "replay", s->log_report);
	report_end(r);

	report_begin(r, "region_tables");
	report_u64(r, "used_copy", (uint64_t)s->region_used + 1);
	for (int i = 0; i < 2; i++) {
		if (!s->region_valid[i])
			report_str(r, i ? "copy2_error" : "copy1_error", s->region_error[i] ? s->region_error[i] : "");
	}
	report_bool(r, "copies_differ", s->regions_differ);
	report_begin_list(r, "entries");
	for (uint32_t i = 0; i < s->regions->entry_count; i++) {
		const struct vhdx_region_entry *e = &s->regions->entries[i];
		const char *name = vhdx_known_guid_name(e->guid);
		report_begin(r, NULL);
		report_str(r, "name", name ? name : "unknown");
		report_guid(r, "guid", e->guid);
		report_hex(r, "file_offset", e->file_offset);
		report_u64(r, "length", e->length);
		report_bool(r, "required", e->required);
		report_end(r);
	}
	report_end_list(r);
	report_end(r);

	report_begin_list(r, "metadata");
	for (uint16_t i = 0; i < s->meta->entry_count; i++) {
		const struct vhdx_metadata_entry *e = &s->meta->entries[i];
		const char *name = e->is_user ? NULL : vhdx_known_guid_name(e->item_id);
		report_begin(r, NULL);
		report_str(r, "name", name ? name : e->is_user ? "user item" : "unknown");
		report_guid(r, "item_id", e->item_id);
		report_hex(r, "offset", e->offset);
		report_u64(r, "length", e->length);
		report_bool(r, "is_user", e->is_user);
		report_bool(r, "is_virtual_disk", e->is_virtual_disk);
		report_bool(r, "is_required", e->is_required);
		report_end(r);
	}
	report_end_list(r);

	report_begin(r, "bat");
	report_hex(r, "offset", s->bat_off);
	report_u64(r, "region_length", s->bat_len);
	report_u64(r, "entries", s->geo.bat_entries);
	report_u64(r, "payload_blocks", s->geo.payload_blocks);
	report_begin(r, "payload_states");
	for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
		if (s->bat_counts[states[i]] || states[i] == VHDX_BAT_FULLY_PRESENT ||
		    states[i] == VHDX_BAT_NOT_PRESENT)
			report_u64(r, vhdx_bat_state_name(states[i], false), s->bat_counts[states[i]]);
	report_end(r);
	if (s->geo.has_parent)
		report_u64(r, "sector_bitmap_blocks_present", s->sb_present);
	report_end(r);

	if (s->locator_raw) {
		struct vhdx_locator_kv *kv;
		size_t n;
		report_begin_list(r, "parent_locator");
		if (vhdx_locator_list(s->locator_raw, s->locator_len, &kv, &n) == 0) {
			for (size_t i = 0; i < n; i++) {
				report_begin(r, NULL);
				report_str(r, "key", kv[i].key);
				report_str(r, "value", kv[i].value);
				report_end(r);
			}
			vhdx_locator_kv_free(kv, n);
		}
		report_end_list(r);
	}
	(void)verbose;
}

void info_vhdx_log(struct report *r, struct vhdx_layer *l)
{
	struct vhdx_state *s = vhdx_state_of(l);
	const struct vhdx_header *h = &s->headers[s->current];
	struct vhdx_log_sequence seq;
	int ret;

	report_begin(r, "log_sequence");
	if (vhdx_guid_is_zero(h->log_guid)) {
		/* with a zero LogGuid no entry can belong to the log: nothing to list */
		report_str(r, "state", "clean");
		report_begin_list(r, "entries");
		report_end_list(r);
		report_end(r);
		return;
	}
	/* the log region is never a replay target, so l->io (even an overlay) shows it as stored */
	ret = vhdx_log_find(l->io, h, &seq);
	if (ret < 0) {
		report_str(r, "error", vhdx_errmsg());
		report_end(r);
		return;
	}
	report_str(r, "state", seq.n ? "active sequence" : "no valid sequence");
	report_u64(r, "valid_entries", seq.valid_entries);
	report_u64(r, "acceptable_sequences", seq.candidates);
	if (!seq.n && seq.diag)
		report_str(r, "diagnostic", seq.diag);
	report_begin_list(r, "entries");
	for (size_t i = 0; i < seq.n; i++) {
		const struct vhdx_log_seq_entry *se = &seq.entries[i];
		report_begin(r, NULL);
		report_hex(r, "log_offset", se->log_off);
		report_u64(r, "sequence_number", se->e.seq);
		report_hex(r, "tail", se->e.tail);
		report_u64(r, "length", se->e.entry_length);
		report_u64(r, "descriptor_count", se->e.desc_count);
		report_hex(r, "flushed_file_offset", se->e.flushed_file_offset);
		report_hex(r, "last_file_offset", se->e.last_file_offset);
		report_begin_list(r, "descriptors");
		for (uint32_t k = 0; k < se->e.desc_count; k++) {
			const struct vhdx_log_desc *d = &se->e.descs[k];
			report_begin(r, NULL);
			report_str(r, "type", d->is_zero ? "zero" : "data");
			report_hex(r, "target", d->file_offset);
			report_u64(r, "length", d->is_zero ? d->zero_length : VHDX_LOG_SECTOR);
			report_end(r);
		}
		report_end_list(r);
		report_end(r);
	}
	report_end_list(r);
	report_end(r);
	vhdx_log_sequence_free(&seq);
}
