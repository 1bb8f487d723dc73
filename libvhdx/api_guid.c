/*
 * api_guid.c - the public text form of a GUID (libvhdx.h), for callers that
 * print the identities and links the inspect API returns as on-disk bytes.
 */
#include "config.h"

#include "internal.h"
#include "codec/guid.h"

void vhdx_guid_text(const uint8_t guid[16], char out[VHDX_GUID_TEXT_SIZE])
{
	_Static_assert(VHDX_GUID_TEXT_SIZE == VHDX_GUID_STRLEN, "one size of a GUID's text");
	vhdx_guid_format(guid, out);
}
