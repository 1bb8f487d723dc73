/*
 * image.c - the inputs of the image targets (fuzz_vhdx_open, fuzz_vhd_open):
 * either a raw image file (any input without the magic below), opened
 * through the library's in-memory backend (io/mem.c), or a compact "sparse"
 * image, so that a 10 GiB VHDX whose structures fill a few KiB is a few-KiB
 * input that libFuzzer can mutate quickly:
 *
 *    0  4  magic "VXFZ"
 *    4  1  flags  FUZZ_FIX_*: recompute checksums after mutation (below)
 *    5  1  a byte each target may use for its own choices (fuzz.h)
 *    6  2  reserved
 *    8  8  file size in bytes (LE)
 *   16     records to the end: offset (8, LE), length (4, LE), data;
 *          a later record overwrites an earlier one; everything else reads
 *          as zeros; a record cut short by the end of the input is used as
 *          far as it goes.
 *
 * The sparse file is a read-only struct vhdx_io of its own (no copy of the
 * whole file per run); writes go to an overlay (io/overlay.c) over it.
 *
 * Checksums: a mutated header, region table or log entry almost never keeps
 * its CRC-32C, so most inputs would stop at the first check.  With the FIX
 * flags set, the structures found at their places get valid checksums
 * before the library sees the file (log entries first, since their location
 * comes from the headers); without them the check itself is fuzzed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "codec/endian.h"
#include "codec/vhd_codec.h"
#include "codec/vhdx_codec.h"
#include "codec/vhdx_log_codec.h"
#include "fuzz.h"
#include "lib/gen_bytes.h"

#define MAX_RECORDS 1024

/*
 * The expansion and the checksum fixes are the harness, not the code under
 * test: no coverage instrumentation (it would count as progress and costs
 * much of the time), and checksums of their own (the test-image
 * generator's library-free ones, tests/lib/gen_bytes.h).
 */
#define NO_COV GEN_NO_COV
#define MAX_FIX_ENTRIES 64

struct sparse_rec {
	uint64_t off;
	size_t len;
	const uint8_t *data;
};

struct sparse_io {
	struct vhdx_io io;
	uint64_t size;
	size_t n;
	struct sparse_rec rec[MAX_RECORDS];
	uint8_t *owned[MAX_RECORDS]; /* buffers of the records made by the fixes */
	size_t n_owned;
};

NO_COV static int sparse_pread(struct vhdx_io *io, void *buf, size_t len, uint64_t off)
{
	struct sparse_io *s = (struct sparse_io *)io;
	uint8_t *out = buf;

	if (!vhdx_range_ok(off, len, s->size))
		return -ENODATA;
	memset(buf, 0, len);
	for (size_t i = 0; i < s->n; i++) {
		const struct sparse_rec *r = &s->rec[i];
		uint64_t lo = VHDX_MAX(off, r->off);
		uint64_t hi = VHDX_MIN(off + len, r->off + r->len);

		if (lo < hi)
			memcpy(out + (lo - off), r->data + (lo - r->off), (size_t)(hi - lo));
	}
	return 0;
}

static int sparse_pwrite(struct vhdx_io *io, const void *buf, size_t len, uint64_t off)
{
	return -EROFS; /* read-only io: the wrappers refuse first */
}

static int sparse_flush(struct vhdx_io *io)
{
	return 0;
}

static int sparse_get_size(struct vhdx_io *io, uint64_t *size)
{
	*size = ((struct sparse_io *)io)->size;
	return 0;
}

static int sparse_set_size(struct vhdx_io *io, uint64_t size)
{
	return -EROFS;
}

static void sparse_close(struct vhdx_io *io)
{
	struct sparse_io *s = (struct sparse_io *)io;

	for (size_t i = 0; i < s->n_owned; i++)
		free(s->owned[i]);
	vhdx_io_fini(io);
	free(s);
}

static const struct vhdx_io_methods sparse_methods = {
	.version = VHDX_IO_METHODS_VERSION,
	.pread = sparse_pread,
	.pwrite = sparse_pwrite,
	.flush = sparse_flush,
	.get_size = sparse_get_size,
	.set_size = sparse_set_size,
	.close = sparse_close,
	.get_fd = NULL,
};

/* Reads LEN bytes at OFF of the sparse file into a new buffer, or NULL. */
NO_COV static uint8_t *fix_read(struct sparse_io *s, uint64_t off, size_t len)
{
	uint8_t *b;

	if (!vhdx_range_ok(off, len, s->size) || s->n >= MAX_RECORDS || s->n_owned >= MAX_RECORDS)
		return NULL;
	b = malloc(len);
	if (b && sparse_pread(&s->io, b, len, off) < 0) {
		free(b);
		b = NULL;
	}
	return b;
}

/* Appends B (LEN bytes at OFF, from fix_read) as the newest record. */
NO_COV static void fix_put(struct sparse_io *s, uint64_t off, uint8_t *b, size_t len)
{
	s->owned[s->n_owned++] = b;
	s->rec[s->n++] = (struct sparse_rec){ .off = off, .len = len, .data = b };
}

/* Gives the structure of LEN bytes at OFF that starts with SIG a valid CRC-32C at byte 4. */
NO_COV static void fix_crc(struct sparse_io *s, uint64_t off, size_t len, uint32_t sig)
{
	uint8_t *b = fix_read(s, off, len);

	if (!b)
		return;
	if (vhdx_get_le32(b) != sig) {
		free(b);
		return;
	}
	gen_fix_crc32c(b, len);
	fix_put(s, off, b, len);
}

NO_COV static void fix_log(struct sparse_io *s, uint64_t hdr_off)
{
	uint8_t h[VHDX_HEADER_SIZE];
	uint64_t log_off;
	uint32_t log_len;
	unsigned fixed = 0;

	if (sparse_pread(&s->io, h, sizeof h, hdr_off) < 0 || vhdx_get_le32(h) != VHDX_HEADER_SIG)
		return;
	log_len = vhdx_get_le32(h + 68);
	log_off = vhdx_get_le64(h + 72);
	if (log_len > 64 * VHDX_MiB || !vhdx_range_ok(log_off, log_len, s->size))
		return;
	for (uint32_t k = 0; k + VHDX_LOG_SECTOR <= log_len && fixed < MAX_FIX_ENTRIES; k += VHDX_LOG_SECTOR) {
		uint8_t eh[VHDX_LOG_ENTRY_HEADER_LEN];
		uint32_t elen;

		if (sparse_pread(&s->io, eh, sizeof eh, log_off + k) < 0 || vhdx_get_le32(eh) != VHDX_LOG_ENTRY_SIG)
			continue;
		elen = vhdx_get_le32(eh + 8);
		if (elen < VHDX_LOG_SECTOR || elen % VHDX_LOG_SECTOR || elen > log_len - k)
			continue;
		fix_crc(s, log_off + k, elen, VHDX_LOG_ENTRY_SIG);
		fixed++;
	}
}

/* The one's-complement checksum of the VHD structure of LEN bytes at OFF (if it has COOKIE), at SUM_OFF. */
NO_COV static void fix_vhd(struct sparse_io *s, uint64_t off, size_t len, const char *cookie, size_t sum_off)
{
	uint8_t *b = fix_read(s, off, len);

	if (!b)
		return;
	if (memcmp(b, cookie, 8) != 0) {
		free(b);
		return;
	}
	gen_put_be32(b + sum_off, gen_vhd_checksum(b, len, sum_off));
	fix_put(s, off, b, len);
}

NO_COV static void fix_vhd_all(struct sparse_io *s)
{
	uint8_t f[VHD_FOOTER_SIZE];

	if (s->size < VHD_FOOTER_SIZE)
		return;
	fix_vhd(s, s->size - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE, VHD_FOOTER_COOKIE, VHD_FOOTER_CHECKSUM_OFF);
	fix_vhd(s, 0, VHD_FOOTER_SIZE, VHD_FOOTER_COOKIE, VHD_FOOTER_CHECKSUM_OFF);
	/* the dynamic header the (fixed) footer points to */
	if (sparse_pread(&s->io, f, sizeof f, s->size - VHD_FOOTER_SIZE) == 0 && memcmp(f, VHD_FOOTER_COOKIE, 8) == 0)
		fix_vhd(s, vhdx_get_be64(f + 16), VHD_DYNHDR_SIZE, VHD_DYNHDR_COOKIE, 36);
}

NO_COV int fuzz_image_io(const uint8_t *data, size_t size, struct vhdx_io **out, uint8_t *choice)
{
	struct sparse_io *s;
	size_t pos = 16;
	uint8_t flags;
	int ret;

	*choice = 0;
	if (size < 16 || memcmp(data, FUZZ_SPARSE_MAGIC, 4) != 0)
		return vhdx_io_mem_new(data, size, "fuzz.img", out);
	flags = data[4];
	*choice = data[5];
	s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	ret = vhdx_io_init(&s->io, &sparse_methods, "fuzz.img", true);
	if (ret < 0) {
		free(s);
		return ret;
	}
	s->size = vhdx_get_le64(data + 8);
	if (s->size > FUZZ_SPARSE_MAX_SIZE)
		s->size = FUZZ_SPARSE_MAX_SIZE;
	while (pos + 12 <= size && s->n < MAX_RECORDS / 2) {
		uint64_t off = vhdx_get_le64(data + pos);
		size_t len = vhdx_get_le32(data + pos + 8);

		pos += 12;
		if (len > size - pos)
			len = size - pos;
		if (off < s->size)
			s->rec[s->n++] = (struct sparse_rec){ .off = off, .len = (size_t)VHDX_MIN((uint64_t)len, s->size - off),
							      .data = data + pos };
		pos += len;
	}
	if (flags & FUZZ_FIX_LOG) {
		fix_log(s, VHDX_HEADER1_OFF);
		fix_log(s, VHDX_HEADER2_OFF);
	}
	if (flags & FUZZ_FIX_VHDX) {
		fix_crc(s, VHDX_HEADER1_OFF, VHDX_HEADER_SIZE, VHDX_HEADER_SIG);
		fix_crc(s, VHDX_HEADER2_OFF, VHDX_HEADER_SIZE, VHDX_HEADER_SIG);
		fix_crc(s, VHDX_REGION1_OFF, VHDX_REGION_SIZE, VHDX_REGION_SIG);
		fix_crc(s, VHDX_REGION2_OFF, VHDX_REGION_SIZE, VHDX_REGION_SIG);
	}
	if (flags & FUZZ_FIX_VHD)
		fix_vhd_all(s);
	*out = &s->io;
	return 0;
}

/* Checks one extent the format returned for [VOFF, VOFF+MAXLEN). */
static void check_extent(const struct vhdx_layer *l, uint64_t voff, uint64_t maxlen, const struct vhdx_layer_extent *e)
{
	if (e->len == 0 || e->len > maxlen)
		FUZZ_FAIL("map at 0x%llx (max %llu) returned %llu bytes", (unsigned long long)voff,
			  (unsigned long long)maxlen, (unsigned long long)e->len);
	if (e->kind != VHDX_LEXT_DATA && e->kind != VHDX_LEXT_ZERO && e->kind != VHDX_LEXT_PARENT)
		FUZZ_FAIL("map at 0x%llx returned kind %d", (unsigned long long)voff, (int)e->kind);
}

/* Maps from VOFF on (at most N extents) and reads up to 64 KiB of each data extent. */
static void walk(struct vhdx_layer *l, uint64_t voff, unsigned n, uint8_t *buf)
{
	while (voff < l->virtual_size && n--) {
		struct vhdx_layer_extent e;
		uint64_t maxlen = l->virtual_size - voff;

		if (l->ops->map(l, voff, maxlen, &e) < 0)
			return;
		check_extent(l, voff, maxlen, &e);
		if (e.kind == VHDX_LEXT_DATA)
			(void)vhdx_io_pread_payload(l->io, buf, (size_t)VHDX_MIN(e.len, 65536), e.foff, voff);
		voff += e.len;
	}
}

/* Writes a 4 KiB pattern (or less at the end) at VOFF and reads it back through map. */
static void write_back(struct vhdx_layer *l, uint64_t voff, uint8_t *buf)
{
	uint8_t pat[4096];
	size_t len = (size_t)VHDX_MIN((uint64_t)sizeof pat, l->virtual_size - voff);
	uint64_t at = voff;

	for (size_t i = 0; i < sizeof pat; i++)
		pat[i] = (uint8_t)(i * 7 + 1);
	if (l->ops->pwrite(l, pat, len, voff) < 0 || (l->ops->flush && l->ops->flush(l) < 0)) {
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "write at 0x%llx: %s\n", (unsigned long long)voff, vhdx_errmsg());
		return;
	}
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "write at 0x%llx: %zu bytes written and flushed\n", (unsigned long long)voff, len);
	/* what was just written must map as this layer's data and read back unchanged */
	while (at < voff + len) {
		struct vhdx_layer_extent e;
		uint64_t maxlen = voff + len - at;

		if (l->ops->map(l, at, maxlen, &e) < 0)
			FUZZ_FAIL("map of just-written 0x%llx failed: %s", (unsigned long long)at, vhdx_errmsg());
		check_extent(l, at, maxlen, &e);
		if (e.kind != VHDX_LEXT_DATA)
			FUZZ_FAIL("just-written 0x%llx maps as kind %d", (unsigned long long)at, (int)e.kind);
		if (vhdx_io_pread_payload(l->io, buf, (size_t)e.len, e.foff, at) < 0)
			FUZZ_FAIL("read of just-written 0x%llx failed: %s", (unsigned long long)at, vhdx_errmsg());
		if (memcmp(buf, pat + (at - voff), (size_t)e.len) != 0)
			FUZZ_FAIL("just-written 0x%llx reads back different bytes", (unsigned long long)at);
		at += e.len;
	}
}

void fuzz_image_run(const uint8_t *data, size_t size)
{
	uint8_t flags = fuzz_image_flags(data, size), choice;
	struct vhdx_io *io, *ov;
	struct vhdx_layer *l = NULL;
	unsigned lflags = 0;
	uint8_t *buf;

	if (fuzz_image_io(data, size, &io, &choice) < 0)
		return;
	if (flags & FUZZ_WRITE) {
		/* the overlay takes the writes (and owns io, also on failure) */
		if (vhdx_io_overlay_new(io, &ov) < 0)
			return;
		io = ov;
		lflags |= VHDX_LAYER_WRITABLE;
	}
	if (choice & 0x80)
		lflags |= VHDX_LAYER_SALVAGE;
	if (choice & 0x40)
		lflags |= VHDX_LAYER_ALLOW_INCOMPLETE;
	if (vhdx_layer_open_io(io, "fuzz.img", lflags, &l) < 0) {
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "open: %s\n", vhdx_errmsg());
		return;
	}
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "open: %s, %llu bytes%s\n", l->ops->name, (unsigned long long)l->virtual_size,
			l->writable ? ", writable" : "");
	buf = malloc(65536);
	if (buf && l->virtual_size) {
		uint64_t pick = l->virtual_size / 64 * (choice & 0x3f);

		walk(l, 0, 16, buf);
		walk(l, pick, 4, buf);
		walk(l, l->virtual_size - 1, 1, buf);
		if ((lflags & VHDX_LAYER_WRITABLE) && l->writable && l->ops->pwrite)
			write_back(l, pick / 4096 * 4096, buf);
	}
	free(buf);
	vhdx_layer_close(l);
}
