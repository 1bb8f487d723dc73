/*
 * vhdx_header.c - the file type identifier (MS-VHDX 2.2.1) and the two
 * headers (2.2.2): decoding with every rule checked, and encoding with the
 * CRC-32C filled in.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "codec/crc32c.h"
#include "codec/endian.h"
#include "codec/utf16.h"
#include "codec/vhdx_codec.h"

int vhdx_fileid_decode(const uint8_t *buf, size_t len, struct vhdx_fileid *out)
{
	memset(out, 0, sizeof *out);
	if (len < VHDX_FILEID_CREATOR_OFF + VHDX_FILEID_CREATOR_LEN)
		return vhdx_err(EBADMSG, "file identifier: %zu bytes is too short", len);
	if (memcmp(buf, VHDX_FILEID_SIG, 8) != 0)
		return vhdx_err(EBADMSG, "file identifier: signature is not \"vhdxfile\"");
	/* The creator is informational: an undecodable one is not an error. */
	if (vhdx_utf16_to_utf8(buf + VHDX_FILEID_CREATOR_OFF, VHDX_FILEID_CREATOR_LEN, false, true, &out->creator) < 0)
		out->creator = NULL;
	return 0;
}

void vhdx_fileid_encode(const char *creator, uint8_t buf[VHDX_FILEID_SIZE])
{
	uint8_t *u16 = NULL;
	size_t u16len = 0;

	memset(buf, 0, VHDX_FILEID_SIZE);
	memcpy(buf, VHDX_FILEID_SIG, 8);
	if (creator && vhdx_utf8_to_utf16(creator, false, &u16, &u16len) == 0) {
		memcpy(buf + VHDX_FILEID_CREATOR_OFF, u16, VHDX_MIN(u16len, VHDX_FILEID_CREATOR_LEN - 2));
		free(u16);
	}
}

void vhdx_fileid_free(struct vhdx_fileid *f)
{
	free(f->creator);
	f->creator = NULL;
}

int vhdx_checked_struct_open(const uint8_t *buf, size_t len, size_t size, uint32_t sig, const char *sig_text,
			     const char *what, uint32_t *checksum)
{
	uint32_t crc;

	if (len < size)
		return vhdx_err(EBADMSG, "%s: %zu bytes is too short", what, len);
	if (vhdx_get_le32(buf) != sig)
		return vhdx_err(EBADMSG, "%s: signature is not \"%s\"", what, sig_text);
	*checksum = vhdx_get_le32(buf + 4);
	crc = vhdx_crc32c_struct(buf, size);
	if (crc != *checksum)
		return vhdx_err(EBADMSG, "%s: CRC-32C mismatch (stored 0x%08x, computed 0x%08x)", what, *checksum,
				crc);
	return 0;
}

int vhdx_header_decode(const uint8_t *buf, size_t len, struct vhdx_header *h)
{
	int ret;

	memset(h, 0, sizeof *h);
	ret = vhdx_checked_struct_open(buf, len, VHDX_HEADER_SIZE, VHDX_HEADER_SIG, "head", "header", &h->checksum);
	if (ret < 0)
		return ret;
	h->seq = vhdx_get_le64(buf + 8);
	memcpy(h->file_write_guid, buf + 16, 16);
	memcpy(h->data_write_guid, buf + 32, 16);
	memcpy(h->log_guid, buf + 48, 16);
	h->log_version = vhdx_get_le16(buf + 64);
	h->version = vhdx_get_le16(buf + 66);
	h->log_length = vhdx_get_le32(buf + 68);
	h->log_offset = vhdx_get_le64(buf + 72);
	if (h->version != 1)
		return vhdx_err(ENOTSUP, "header: version %u is not supported (expected 1)", h->version);
	if (h->log_version != 0)
		return vhdx_err(ENOTSUP, "header: log version %u is not supported (expected 0)", h->log_version);
	if (h->log_length % VHDX_ALIGN)
		return vhdx_err(EBADMSG, "header: log length 0x%x is not a multiple of 1 MiB", h->log_length);
	if (h->log_offset % VHDX_ALIGN || (h->log_length && h->log_offset < VHDX_ALIGN))
		return vhdx_err(EBADMSG, "header: log offset 0x%llx is not a 1 MiB multiple of at least 1 MiB",
				(unsigned long long)h->log_offset);
	if (h->log_length && h->log_offset > UINT64_MAX - h->log_length)
		return vhdx_err(EBADMSG, "header: log offset 0x%llx + length overflows",
				(unsigned long long)h->log_offset);
	return 0;
}

void vhdx_header_encode(const struct vhdx_header *h, uint8_t buf[VHDX_HEADER_SIZE])
{
	memset(buf, 0, VHDX_HEADER_SIZE);
	vhdx_put_le32(buf, VHDX_HEADER_SIG);
	vhdx_put_le64(buf + 8, h->seq);
	memcpy(buf + 16, h->file_write_guid, 16);
	memcpy(buf + 32, h->data_write_guid, 16);
	memcpy(buf + 48, h->log_guid, 16);
	vhdx_put_le16(buf + 64, h->log_version);
	vhdx_put_le16(buf + 66, h->version);
	vhdx_put_le32(buf + 68, h->log_length);
	vhdx_put_le64(buf + 72, h->log_offset);
	vhdx_put_le32(buf + 4, vhdx_crc32c_struct(buf, VHDX_HEADER_SIZE));
}
