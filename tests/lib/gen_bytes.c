/*
 * gen_bytes.c - the library-free half of the test-image generator
 * (gen_bytes.h): nothing here includes a header of libvhdx, so the tools
 * built on it check the library against a second implementation.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/gen_bytes.h"

#define PAGE 4096u

uint16_t gen_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

GEN_NO_COV uint32_t gen_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t gen_get_le64(const uint8_t *p)
{
	return (uint64_t)gen_get_le32(p) | (uint64_t)gen_get_le32(p + 4) << 32;
}

uint32_t gen_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

uint64_t gen_get_be64(const uint8_t *p)
{
	return (uint64_t)gen_get_be32(p) << 32 | gen_get_be32(p + 4);
}

void gen_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

GEN_NO_COV void gen_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void gen_put_le64(uint8_t *p, uint64_t v)
{
	gen_put_le32(p, (uint32_t)v);
	gen_put_le32(p + 4, (uint32_t)(v >> 32));
}

GEN_NO_COV void gen_put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

void gen_put_be64(uint8_t *p, uint64_t v)
{
	gen_put_be32(p, (uint32_t)(v >> 32));
	gen_put_be32(p + 4, (uint32_t)v);
}

void gen_guid_parse(const char *s, uint8_t g[16])
{
	uint8_t be[16] = { 0 };
	int n = 0;

	for (const char *p = s; *p && n < 32; p++) {
		int v;
		if (*p == '-')
			continue;
		v = *p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10;
		if (n % 2 == 0)
			be[n / 2] = (uint8_t)(v << 4);
		else
			be[n / 2] |= (uint8_t)v;
		n++;
	}
	g[0] = be[3], g[1] = be[2], g[2] = be[1], g[3] = be[0];
	g[4] = be[5], g[5] = be[4], g[6] = be[7], g[7] = be[6];
	memcpy(g + 8, be + 8, 8);
}

/* Puts one UTF-16 code unit at OUT[*AT] if it fits. */
static void put_unit(uint8_t *out, size_t cap, size_t *at, uint32_t u, int le)
{
	if (*at + 2 > cap)
		return;
	out[*at + !le] = (uint8_t)u;
	out[*at + le] = (uint8_t)(u >> 8);
	*at += 2;
}

size_t gen_utf16(const char *s, int le, uint8_t *out, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t at = 0;

	while (*p) {
		uint32_t c = *p++;
		int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;

		c &= more ? 0x3Fu >> more : 0x7Fu;
		while (more-- && (*p & 0xC0) == 0x80)
			c = c << 6 | (*p++ & 0x3Fu);
		if (c > 0xFFFF) {
			put_unit(out, cap, &at, 0xD800 + ((c - 0x10000) >> 10), le);
			put_unit(out, cap, &at, 0xDC00 + ((c - 0x10000) & 0x3FF), le);
		} else {
			put_unit(out, cap, &at, c, le);
		}
	}
	return at;
}

/* CRC-32C (Castagnoli, reflected 0x82F63B78), our own: the tests must not trust the library's */
GEN_NO_COV uint32_t gen_crc32c_struct(const uint8_t *p, size_t len)
{
	static uint32_t table[256];
	uint32_t crc = 0xFFFFFFFFu;

	if (!table[1])
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
			table[i] = c;
		}
	for (size_t i = 0; i < len; i++)
		crc = table[(crc ^ (i >= 4 && i < 8 ? 0 : p[i])) & 0xFF] ^ (crc >> 8);
	return ~crc;
}

GEN_NO_COV void gen_fix_crc32c(uint8_t *p, size_t len)
{
	gen_put_le32(p + 4, gen_crc32c_struct(p, len));
}

GEN_NO_COV uint32_t gen_vhd_checksum(const uint8_t *p, size_t len, size_t sum_off)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < sum_off || i >= sum_off + 4)
			sum += p[i];
	return ~sum;
}

size_t gen_vhdx_locator(const struct gen_kv *pairs, size_t n, uint8_t *out, size_t cap)
{
	uint8_t head[20], text[2048];
	size_t at = sizeof head + 12 * n;

	/* the locator type of VHDX parents, then reserved 0 and the key/value count */
	gen_guid_parse("B04AEFB7-D19E-4A81-B789-25B8E9445913", head);
	gen_put_le16(head + 16, 0);
	gen_put_le16(head + 18, (uint16_t)n);
	if (cap >= sizeof head)
		memcpy(out, head, sizeof head);
	for (size_t i = 0; i < n; i++) {
		size_t kl = gen_utf16(pairs[i].key, 1, text, sizeof text);
		size_t vl = gen_utf16(pairs[i].value, 1, text + kl, sizeof text - kl);
		uint8_t e[12];

		gen_put_le32(e, (uint32_t)at);
		gen_put_le32(e + 4, (uint32_t)(at + kl));
		gen_put_le16(e + 8, (uint16_t)kl);
		gen_put_le16(e + 10, (uint16_t)vl);
		if (sizeof head + 12 * (i + 1) <= cap)
			memcpy(out + sizeof head + 12 * i, e, sizeof e);
		if (at + kl + vl <= cap)
			memcpy(out + at, text, kl + vl);
		at += kl + vl;
	}
	return at;
}

size_t gen_vhd_dynhdr(const struct gen_vhd_loc *locs, size_t n, const char *parent_name, uint8_t *out, size_t cap)
{
	/* parent unique id 12345678-1234-5678-9abc-def012345678 as VHD stores it (big-endian) */
	static const uint8_t parent_id[16] = { 0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78,
					       0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78 };
	uint8_t h[1024] = { 0 };
	size_t at = sizeof h;

	memcpy(h, "cxsparse", 8);
	memset(h + 8, 0xff, 8);             /* data offset: none */
	gen_put_be64(h + 16, 1536 + 4096);  /* table offset */
	gen_put_be32(h + 24, 0x00010000);   /* header version */
	gen_put_be32(h + 28, 4);            /* max table entries */
	gen_put_be32(h + 32, 2u << 20);     /* block size */
	memcpy(h + 40, parent_id, 16);
	gen_put_be32(h + 56, 0x2a000000);   /* parent time stamp */
	gen_utf16(parent_name, 0, h + 64, 512);
	for (size_t i = 0; i < n && i < 8; i++) {
		uint8_t *e = h + 576 + 24 * i;
		size_t padded = (locs[i].len + 511) / 512 * 512;

		gen_put_be32(e, locs[i].code);
		gen_put_be32(e + 4, 512);   /* data space */
		gen_put_be32(e + 8, (uint32_t)locs[i].len);
		gen_put_be64(e + 16, at);
		if (at + padded <= cap) {
			memcpy(out + at, locs[i].data, locs[i].len);
			memset(out + at + locs[i].len, 0, padded - locs[i].len);
		}
		at += padded;
	}
	gen_put_be32(h + 36, gen_vhd_checksum(h, sizeof h, 36));
	if (cap >= sizeof h)
		memcpy(out, h, sizeof h);
	return at;
}

static int page_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

int gen_write_sparse(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < len; off += PAGE) {
		size_t n = len - off < PAGE ? len - off : PAGE;
		if (page_zero(buf + off, n))
			continue;
		for (size_t done = 0; done < n;) {
			ssize_t w = pwrite(fd, buf + off + done, n - done, (off_t)(off + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				int err = w < 0 ? errno : EIO;
				close(fd);
				return -err;
			}
			done += (size_t)w;
		}
	}
	if (ftruncate(fd, (off_t)len) < 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	return close(fd) < 0 ? -errno : 0;
}

/* Makes room for LEN more bytes of SEED. */
static int seed_room(struct gen_seed *seed, size_t len)
{
	if (seed->len + len > seed->cap) {
		size_t cap = seed->cap ? seed->cap : 65536;
		uint8_t *p;
		while (cap < seed->len + len)
			cap *= 2;
		p = realloc(seed->data, cap);
		if (!p)
			return -ENOMEM;
		seed->data = p;
		seed->cap = cap;
	}
	return 0;
}

int gen_seed_begin(struct gen_seed *seed, uint8_t flags, uint8_t choice, uint64_t file_size)
{
	*seed = (struct gen_seed){ 0 };
	if (seed_room(seed, 16) < 0)
		return -ENOMEM;
	memcpy(seed->data, "VXFZ", 4);
	seed->data[4] = flags;
	seed->data[5] = choice;
	seed->data[6] = seed->data[7] = 0;
	gen_put_le64(seed->data + 8, file_size);
	seed->len = 16;
	return 0;
}

int gen_seed_add(struct gen_seed *seed, uint64_t off, const uint8_t *data, size_t len)
{
	uint8_t *last;

	if (seed_room(seed, 12 + len) < 0)
		return -ENOMEM;
	last = seed->data + seed->last;
	if (seed->last && gen_get_le64(last) + gen_get_le32(last + 8) == off) {
		gen_put_le32(last + 8, (uint32_t)(gen_get_le32(last + 8) + len));
	} else {
		seed->last = seed->len;
		gen_put_le64(seed->data + seed->len, off);
		gen_put_le32(seed->data + seed->len + 8, (uint32_t)len);
		seed->len += 12;
	}
	memcpy(seed->data + seed->len, data, len);
	seed->len += len;
	return 0;
}

void gen_seed_free(struct gen_seed *seed)
{
	free(seed->data);
	*seed = (struct gen_seed){ 0 };
}
