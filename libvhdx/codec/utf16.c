/*
 * utf16.c - UTF-16 <-> UTF-8 for locator strings.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "codec/endian.h"
#include "codec/utf16.h"

int vhdx_utf16_to_utf8(const uint8_t *buf, size_t len, bool big_endian, bool stop_at_nul, char **out)
{
	size_t n = len / 2, o = 0;
	char *s;

	if (len % 2)
		return -EINVAL;
	s = malloc(n * 3 + 1);
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = big_endian ? vhdx_get_be16(buf + 2 * i) : vhdx_get_le16(buf + 2 * i);
		if (c == 0) {
			if (stop_at_nul)
				break;
			goto bad;
		}
		if (c >= 0xD800 && c <= 0xDBFF) {
			uint32_t c2;
			if (i + 1 >= n)
				goto bad;
			c2 = big_endian ? vhdx_get_be16(buf + 2 * (i + 1)) : vhdx_get_le16(buf + 2 * (i + 1));
			if (c2 < 0xDC00 || c2 > 0xDFFF)
				goto bad;
			c = 0x10000 + ((c - 0xD800) << 10) + (c2 - 0xDC00);
			i++;
		} else if (c >= 0xDC00 && c <= 0xDFFF) {
			goto bad;
		}
		if (c < 0x80) {
			s[o++] = (char)c;
		} else if (c < 0x800) {
			s[o++] = (char)(0xC0 | (c >> 6));
			s[o++] = (char)(0x80 | (c & 0x3F));
		} else if (c < 0x10000) {
			s[o++] = (char)(0xE0 | (c >> 12));
			s[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			s[o++] = (char)(0x80 | (c & 0x3F));
		} else {
			/* 4-byte sequences take two code units of input, so 3 bytes per unit still bound it */
			s[o++] = (char)(0xF0 | (c >> 18));
			s[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
			s[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			s[o++] = (char)(0x80 | (c & 0x3F));
		}
	}
	s[o] = '\0';
	*out = s;
	return 0;
bad:
	free(s);
	return -EINVAL;
}

int vhdx_utf8_to_utf16(const char *s, bool big_endian, uint8_t **out, size_t *outlen)
{
	size_t slen = strlen(s), o = 0;
	const uint8_t *p = (const uint8_t *)s;
	uint8_t *b = malloc(slen * 4 + 2);

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < slen;) {
		uint32_t c;
		size_t extra;
		if (p[i] < 0x80) {
			c = p[i];
			extra = 0;
		} else if ((p[i] & 0xE0) == 0xC0) {
			c = p[i] & 0x1F;
			extra = 1;
		} else if ((p[i] & 0xF0) == 0xE0) {
			c = p[i] & 0x0F;
			extra = 2;
		} else if ((p[i] & 0xF8) == 0xF0) {
			c = p[i] & 0x07;
			extra = 3;
		} else {
			goto bad;
		}
		if (extra && i + extra >= slen)
			goto bad;
		for (size_t k = 1; k <= extra; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				goto bad;
			c = c << 6 | (p[i + k] & 0x3F);
		}
		i += extra + 1;
		/* overlong forms would smuggle NUL or '/' into a path */
		if ((extra == 1 && c < 0x80) || (extra == 2 && c < 0x800) || (extra == 3 && c < 0x10000))
			goto bad;
		if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			goto bad;
		if (c >= 0x10000) {
			uint16_t hi = (uint16_t)(0xD800 + ((c - 0x10000) >> 10));
			uint16_t lo = (uint16_t)(0xDC00 + ((c - 0x10000) & 0x3FF));
			if (big_endian) {
				vhdx_put_be16(b + o, hi);
				vhdx_put_be16(b + o + 2, lo);
			} else {
				vhdx_put_le16(b + o, hi);
				vhdx_put_le16(b + o + 2, lo);
			}
			o += 4;
		} else {
			if (big_endian)
				vhdx_put_be16(b + o, (uint16_t)c);
			else
				vhdx_put_le16(b + o, (uint16_t)c);
			o += 2;
		}
	}
	*out = b;
	*outlen = o;
	return 0;
bad:
	free(b);
	return -EINVAL;
}
