/*
 * guid.c - text form and generation of GUIDs stored as on-disk bytes.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "codec/endian.h"
#include "codec/guid.h"

void vhdx_guid_format(const uint8_t g[16], char out[VHDX_GUID_STRLEN])
{
	snprintf(out, VHDX_GUID_STRLEN, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", vhdx_get_le32(g),
		 vhdx_get_le16(g + 4), vhdx_get_le16(g + 6), g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

void vhdx_guid_swap_order(const uint8_t in[16], uint8_t out[16])
{
	uint8_t t[16];

	/* Data1 (4 bytes), Data2 and Data3 (2 each) change byte order; Data4 stays. */
	t[0] = in[3];
	t[1] = in[2];
	t[2] = in[1];
	t[3] = in[0];
	t[4] = in[5];
	t[5] = in[4];
	t[6] = in[7];
	t[7] = in[6];
	memcpy(t + 8, in + 8, 8);
	memcpy(out, t, 16);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vhdx_guid_parse_n(const char *s, size_t len, uint8_t g[16])
{
	uint8_t raw[16];
	size_t i, n = 0;

	if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
		s++;
		len -= 2;
	}
	if (len != 36)
		return -EINVAL;
	for (i = 0; i < 36;) {
		int hi, lo;
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		hi = hexval(s[i]);
		lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		raw[n++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	/* raw holds the text order; store Data1..Data3 little-endian */
	vhdx_guid_swap_order(raw, g);
	return 0;
}

int vhdx_guid_parse(const char *s, uint8_t g[16])
{
	return vhdx_guid_parse_n(s, strlen(s), g);
}

bool vhdx_guid_is_zero(const uint8_t g[16])
{
	for (int i = 0; i < 16; i++)
		if (g[i])
			return false;
	return true;
}

int vhdx_guid_generate(uint8_t g[16])
{
	size_t got = 0;

#ifdef VHDX_HAVE_GETRANDOM
	while (got < 16) {
		ssize_t n = getrandom(g + got, 16 - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
#endif
	if (got < 16) {
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return vhdx_err(errno, "cannot read random bytes for a GUID: %s", strerror(errno));
		while (got < 16) {
			ssize_t n = read(fd, g + got, 16 - got);
			if (n <= 0) {
				close(fd);
				return vhdx_err(EIO, "cannot read random bytes for a GUID");
			}
			got += (size_t)n;
		}
		close(fd);
	}
	/* version 4, variant 1; Data3 is little-endian so its high byte is g[7] */
	g[7] = (uint8_t)((g[7] & 0x0f) | 0x40);
	g[8] = (uint8_t)((g[8] & 0x3f) | 0x80);
	return 0;
}
