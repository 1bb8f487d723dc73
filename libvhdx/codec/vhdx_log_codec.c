/*
 * vhdx_log_codec.c - L1 codec of VHDX log entries (MS-VHDX 2.3.1, FORMAT.md
 * 1.5): decoding with every rule of the spec checked (plus openvmm's extra
 * rules: exact EntryLength, no descriptor below 192 KiB or into the log),
 * rebuilding the 4 KiB page of a data descriptor, and the encoder the log
 * writer uses.  Pure functions: no I/O; the ring, the sequence search and
 * the replay are in format/vhdx_log.c.
 *
 * Why the page is split (2.3.1.3/2.3.1.4): a data sector carries the high
 * and low halves of the sequence number in its first and last four bytes,
 * so a torn sector write is detectable; the page bytes displaced by those
 * stamps (0..7 and 4092..4095) travel in the descriptor instead.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "codec/crc32c.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhdx_codec.h"
#include "codec/vhdx_log_codec.h"

/* Field offsets of the entry header (2.3.1.1). */
#define H_SIG 0
#define H_CRC 4
#define H_LEN 8
#define H_TAIL 12
#define H_SEQ 16
#define H_COUNT 24
#define H_GUID 32
#define H_FLUSHED 48
#define H_LAST 56

/* Descriptor fields (2.3.1.2 zero, 2.3.1.3 data). */
#define D_SIG 0
#define D_TRAILING 4   /* data: TrailingBytes; zero: reserved */
#define D_LEADING 8    /* data: LeadingBytes; zero: ZeroLength */
#define D_FOFF 16
#define D_SEQ 24

/* Data sector fields (2.3.1.4). */
#define S_SIG 0
#define S_SEQ_HIGH 4
#define S_DATA 8
#define S_DATA_LEN 4084
#define S_SEQ_LOW 4092

#define PAGE_LEADING 8
#define PAGE_TRAILING_OFF 4092

/* Bytes of header plus COUNT descriptors, rounded up to whole 4 KiB sectors. */
static uint64_t desc_area_len(uint64_t count)
{
	return vhdx_round_up(VHDX_LOG_ENTRY_HEADER_LEN + VHDX_LOG_DESC_LEN * count, VHDX_LOG_SECTOR);
}

size_t vhdx_log_entry_size(const struct vhdx_log_page *pages, size_t n)
{
	size_t ndata = 0;

	for (size_t i = 0; i < n; i++)
		if (pages[i].data)
			ndata++;
	return (size_t)desc_area_len(n) + ndata * VHDX_LOG_SECTOR;
}

void vhdx_log_entry_encode(const struct vhdx_log_entry_info *info, const struct vhdx_log_page *pages, size_t n,
			   uint8_t *buf)
{
	size_t size = vhdx_log_entry_size(pages, n);
	size_t data_off = (size_t)desc_area_len(n);
	uint8_t *d;

	memset(buf, 0, size);
	vhdx_put_le32(buf + H_SIG, VHDX_LOG_ENTRY_SIG);
	vhdx_put_le32(buf + H_LEN, (uint32_t)size);
	vhdx_put_le32(buf + H_TAIL, info->tail);
	vhdx_put_le64(buf + H_SEQ, info->seq);
	vhdx_put_le32(buf + H_COUNT, (uint32_t)n);
	memcpy(buf + H_GUID, info->log_guid, 16);
	vhdx_put_le64(buf + H_FLUSHED, info->flushed_file_offset);
	vhdx_put_le64(buf + H_LAST, info->last_file_offset);

	for (size_t i = 0; i < n; i++) {
		d = buf + VHDX_LOG_ENTRY_HEADER_LEN + VHDX_LOG_DESC_LEN * i;
		vhdx_put_le64(d + D_FOFF, pages[i].file_offset);
		vhdx_put_le64(d + D_SEQ, info->seq);
		if (!pages[i].data) {
			vhdx_put_le32(d + D_SIG, VHDX_LOG_ZERO_SIG);
			vhdx_put_le64(d + D_LEADING, pages[i].zero_length);
			continue;
		}
		vhdx_put_le32(d + D_SIG, VHDX_LOG_DESC_SIG);
		/* the displaced page bytes are copied as they are, not reinterpreted */
		memcpy(d + D_TRAILING, pages[i].data + PAGE_TRAILING_OFF, 4);
		memcpy(d + D_LEADING, pages[i].data, PAGE_LEADING);

		uint8_t *sec = buf + data_off;
		vhdx_put_le32(sec + S_SIG, VHDX_LOG_DATA_SIG);
		vhdx_put_le32(sec + S_SEQ_HIGH, (uint32_t)(info->seq >> 32));
		memcpy(sec + S_DATA, pages[i].data + PAGE_LEADING, S_DATA_LEN);
		vhdx_put_le32(sec + S_SEQ_LOW, (uint32_t)info->seq);
		data_off += VHDX_LOG_SECTOR;
	}
	vhdx_put_le32(buf + H_CRC, vhdx_crc32c_struct(buf, size));
}

int vhdx_log_entry_header_decode(const uint8_t *buf, size_t len, uint32_t log_length, const uint8_t log_guid[16],
				 struct vhdx_log_entry *e)
{
	char got[VHDX_GUID_STRLEN], want[VHDX_GUID_STRLEN];

	memset(e, 0, sizeof *e);
	if (len < VHDX_LOG_ENTRY_HEADER_LEN)
		return vhdx_err(EBADMSG, "log entry: %zu bytes is too short for a header", len);
	if (vhdx_get_le32(buf + H_SIG) != VHDX_LOG_ENTRY_SIG)
		return vhdx_err(EBADMSG, "log entry: signature is not \"loge\"");
	e->checksum = vhdx_get_le32(buf + H_CRC);
	e->entry_length = vhdx_get_le32(buf + H_LEN);
	e->tail = vhdx_get_le32(buf + H_TAIL);
	e->seq = vhdx_get_le64(buf + H_SEQ);
	e->desc_count = vhdx_get_le32(buf + H_COUNT);
	memcpy(e->log_guid, buf + H_GUID, 16);
	e->flushed_file_offset = vhdx_get_le64(buf + H_FLUSHED);
	e->last_file_offset = vhdx_get_le64(buf + H_LAST);

	if (e->entry_length % VHDX_LOG_SECTOR)
		return vhdx_err(EBADMSG, "log entry: EntryLength 0x%x is not a multiple of 4 KiB", e->entry_length);
	if (e->entry_length < VHDX_LOG_SECTOR)
		return vhdx_err(EBADMSG, "log entry: EntryLength 0x%x is less than 4 KiB", e->entry_length);
	if (e->entry_length >= log_length)
		return vhdx_err(EBADMSG, "log entry: EntryLength 0x%x is not less than the log length 0x%x",
				e->entry_length, log_length);
	if (e->tail % VHDX_LOG_SECTOR)
		return vhdx_err(EBADMSG, "log entry: Tail 0x%x is not 4 KiB aligned", e->tail);
	if (e->tail >= log_length)
		return vhdx_err(EBADMSG, "log entry: Tail 0x%x is not less than the log length 0x%x", e->tail,
				log_length);
	if (e->seq == 0)
		return vhdx_err(EBADMSG, "log entry: SequenceNumber is zero");
	if (memcmp(e->log_guid, log_guid, 16) != 0) {
		vhdx_guid_format(e->log_guid, got);
		vhdx_guid_format(log_guid, want);
		return vhdx_err(EBADMSG, "log entry: LogGuid %s differs from the header's LogGuid %s", got, want);
	}
	if (e->flushed_file_offset % VHDX_ALIGN)
		return vhdx_err(EBADMSG, "log entry: FlushedFileOffset 0x%llx is not a multiple of 1 MiB",
				(unsigned long long)e->flushed_file_offset);
	if (e->last_file_offset % VHDX_ALIGN)
		return vhdx_err(EBADMSG, "log entry: LastFileOffset 0x%llx is not a multiple of 1 MiB",
				(unsigned long long)e->last_file_offset);
	/* the descriptor area must fit before anything can be read from it */
	if (desc_area_len(e->desc_count) > e->entry_length)
		return vhdx_err(EBADMSG, "log entry: DescriptorCount %u needs 0x%llx bytes of descriptors, more than EntryLength 0x%x",
				e->desc_count, (unsigned long long)desc_area_len(e->desc_count), e->entry_length);
	return 0;
}

/* Checks descriptor I at D (bytes into the entry: DOFF) against the entry and the log placement. */
static int desc_decode(const uint8_t *d, uint32_t i, size_t doff, const struct vhdx_log_entry *e,
		       uint64_t log_offset, uint32_t log_length, struct vhdx_log_desc *out)
{
	uint32_t sig = vhdx_get_le32(d + D_SIG);
	uint64_t seq = vhdx_get_le64(d + D_SEQ), len, end;

	memset(out, 0, sizeof *out);
	if (sig != VHDX_LOG_ZERO_SIG && sig != VHDX_LOG_DESC_SIG)
		return vhdx_err(EBADMSG, "log entry: descriptor %u (entry offset 0x%zx): signature 0x%08x is neither \"zero\" nor \"desc\"",
				i, doff, sig);
	out->is_zero = sig == VHDX_LOG_ZERO_SIG;
	out->file_offset = vhdx_get_le64(d + D_FOFF);
	if (out->is_zero) {
		out->zero_length = vhdx_get_le64(d + D_LEADING);
	} else {
		out->trailing = vhdx_get_le32(d + D_TRAILING);
		out->leading = vhdx_get_le64(d + D_LEADING);
	}
	if (seq != e->seq)
		return vhdx_err(EBADMSG, "log entry: descriptor %u (entry offset 0x%zx): SequenceNumber %llu differs from the entry's %llu",
				i, doff, (unsigned long long)seq, (unsigned long long)e->seq);
	if (out->file_offset % VHDX_LOG_SECTOR)
		return vhdx_err(EBADMSG, "log entry: descriptor %u (entry offset 0x%zx): FileOffset 0x%llx is not 4 KiB aligned",
				i, doff, (unsigned long long)out->file_offset);
	if (out->is_zero && out->zero_length % VHDX_LOG_SECTOR)
		return vhdx_err(EBADMSG, "log entry: descriptor %u (entry offset 0x%zx): ZeroLength 0x%llx is not a multiple of 4 KiB",
				i, doff, (unsigned long long)out->zero_length);
	/* the file identifier and the headers are never journaled (the log is found through them) */
	if (out->file_offset < VHDX_LOGGABLE_OFF)
		return vhdx_err(EBADMSG, "log entry: descriptor %u (entry offset 0x%zx): targets 0x%llx, below 192 KiB",
				i, doff, (unsigned long long)out->file_offset);
	len = out->is_zero ? out->zero_length : VHDX_LOG_SECTOR;
	if (vhdx_add_ovf(out->file_offset, len, &end))
		return vhdx_err(EBADMSG, "log entry: descriptor %u (entry offset 0x%zx): target 0x%llx + 0x%llx overflows",
				i, doff, (unsigned long long)out->file_offset, (unsigned long long)len);
	if (vhdx_ranges_overlap(out->file_offset, len, log_offset, log_length))
		return vhdx_err(EBADMSG, "log entry: descriptor %u (entry offset 0x%zx): target 0x%llx (+0x%llx) lies inside the log at 0x%llx (+0x%x)",
				i, doff, (unsigned long long)out->file_offset, (unsigned long long)len,
				(unsigned long long)log_offset, log_length);
	return 0;
}

int vhdx_log_entry_decode(const uint8_t *buf, size_t len, uint64_t log_offset, uint32_t log_length,
			  const uint8_t log_guid[16], struct vhdx_log_entry *e)
{
	uint64_t need;
	uint32_t crc;
	int ret;

	ret = vhdx_log_entry_header_decode(buf, len, log_length, log_guid, e);
	if (ret < 0)
		return ret;
	if (len < e->entry_length)
		return vhdx_err(EBADMSG, "log entry: only 0x%zx bytes for an EntryLength of 0x%x", len, e->entry_length);
	e->descs = vhdx_calloc(e->desc_count ? e->desc_count : 1, sizeof *e->descs);
	if (!e->descs)
		return vhdx_err(ENOMEM, "out of memory for %u log descriptors", e->desc_count);

	/* descriptors first: their count of data descriptors says where the data sectors are */
	for (uint32_t i = 0; i < e->desc_count; i++) {
		size_t doff = VHDX_LOG_ENTRY_HEADER_LEN + (size_t)VHDX_LOG_DESC_LEN * i;
		ret = desc_decode(buf + doff, i, doff, e, log_offset, log_length, &e->descs[i]);
		if (ret < 0)
			goto fail;
		if (!e->descs[i].is_zero)
			e->descs[i].data_index = e->data_count++;
	}
	need = desc_area_len(e->desc_count) + (uint64_t)e->data_count * VHDX_LOG_SECTOR;
	if (need != e->entry_length) {
		ret = vhdx_err(EBADMSG, "log entry: EntryLength 0x%x differs from the 0x%llx that %u descriptors (%u with data) need",
			       e->entry_length, (unsigned long long)need, e->desc_count, e->data_count);
		goto fail;
	}
	for (uint32_t k = 0; k < e->data_count; k++) {
		size_t soff = (size_t)desc_area_len(e->desc_count) + (size_t)k * VHDX_LOG_SECTOR;
		const uint8_t *sec = buf + soff;
		uint32_t hi = vhdx_get_le32(sec + S_SEQ_HIGH), lo = vhdx_get_le32(sec + S_SEQ_LOW);

		if (vhdx_get_le32(sec + S_SIG) != VHDX_LOG_DATA_SIG) {
			ret = vhdx_err(EBADMSG, "log entry: data sector %u (entry offset 0x%zx): signature is not \"data\"",
				       k, soff);
			goto fail;
		}
		/* a torn data sector shows up here: its two halves were written at different times */
		if (hi != (uint32_t)(e->seq >> 32) || lo != (uint32_t)e->seq) {
			ret = vhdx_err(EBADMSG, "log entry: data sector %u (entry offset 0x%zx): SequenceHigh 0x%08x / SequenceLow 0x%08x do not match the entry's SequenceNumber 0x%016llx",
				       k, soff, hi, lo, (unsigned long long)e->seq);
			goto fail;
		}
	}
	crc = vhdx_crc32c_struct(buf, e->entry_length);
	if (crc != e->checksum) {
		ret = vhdx_err(EBADMSG, "log entry: CRC-32C mismatch (stored 0x%08x, computed 0x%08x over 0x%x bytes)",
			       e->checksum, crc, e->entry_length);
		goto fail;
	}
	return 0;
fail:
	vhdx_log_entry_free(e);
	return ret;
}

void vhdx_log_entry_page(const uint8_t *buf, const struct vhdx_log_entry *e, const struct vhdx_log_desc *d,
			 uint8_t page[VHDX_LOG_SECTOR])
{
	const uint8_t *sec = buf + desc_area_len(e->desc_count) + (size_t)d->data_index * VHDX_LOG_SECTOR;

	vhdx_put_le64(page, d->leading);
	memcpy(page + PAGE_LEADING, sec + S_DATA, S_DATA_LEN);
	vhdx_put_le32(page + PAGE_TRAILING_OFF, d->trailing);
}

void vhdx_log_entry_free(struct vhdx_log_entry *e)
{
	free(e->descs);
	e->descs = NULL;
}

bool vhdx_log_entry_matches(const uint8_t *buf, const uint8_t log_guid[16])
{
	return vhdx_get_le32(buf + H_SIG) == VHDX_LOG_ENTRY_SIG && memcmp(buf + H_GUID, log_guid, 16) == 0;
}
