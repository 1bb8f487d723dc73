/*
 * vhdx_header_update.c - rewriting the two VHDX headers safely (MS-VHDX
 * 2.2.2.1).  Headers are never journaled (the log is found through them),
 * so safety comes from the two slots: only the non-current slot is ever
 * overwritten, and a flush separates the two writes, so at every instant
 * at least one slot holds a valid header with the newest durable state.
 */
#include "config.h"

#include <string.h>

#include "libvhdx.h"
#include "base/base.h"
#include "codec/guid.h"
#include "format/vhdx_format.h"

static int write_slot(struct vhdx_layer *l, struct vhdx_state *s, const struct vhdx_header *h)
{
	static const uint64_t offs[2] = { VHDX_HEADER1_OFF, VHDX_HEADER2_OFF };
	uint8_t buf[VHDX_HEADER_SIZE];
	int slot = 1 - s->current;
	int ret;

	vhdx_header_encode(h, buf);
	ret = vhdx_io_pwrite(l->io, buf, sizeof buf, offs[slot], VHDX_TAG_HEADER);
	if (ret < 0)
		return ret;
	/* the new header must be durable before the old slot may be overwritten */
	ret = vhdx_io_flush(l->io);
	if (ret < 0)
		return ret;
	s->headers[slot] = *h;
	s->headers[slot].checksum = 0;
	s->header_valid[slot] = true;
	s->current = slot;
	return 0;
}

int vhdx_header_update(struct vhdx_layer *l, struct vhdx_state *s, const uint8_t *log_guid, unsigned flags)
{
	struct vhdx_header h = s->headers[s->current];
	int ret;

	if (flags & VHDX_HDR_NEW_FILE_GUID) {
		ret = vhdx_guid_generate(h.file_write_guid);
		if (ret < 0)
			return ret;
	}
	if (flags & VHDX_HDR_NEW_DATA_GUID) {
		ret = vhdx_guid_generate(h.data_write_guid);
		if (ret < 0)
			return ret;
	}
	if (log_guid)
		memcpy(h.log_guid, log_guid, 16);
	for (int i = 0; i < 2; i++) {
		h.seq = s->headers[s->current].seq + 1;
		ret = write_slot(l, s, &h);
		if (ret < 0)
			return ret;
	}
	memcpy(l->identity, h.data_write_guid, 16);
	return 0;
}
