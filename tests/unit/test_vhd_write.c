/*
 * test_vhd_write.c - VHD creation (format/vhd_create.c) and the VHD write
 * path (format/vhd_write.c) on the mem backend:
 *   - the layouts vhdx_create_vhd() writes (fixed, dynamic, differencing),
 *     every footer and dynamic-header field decoded, the BAT, the parent
 *     locators, and refusals of bad parameters;
 *   - a write into an unallocated block: the block lands where the trailing
 *     footer was, the footer moves behind it, both footer copies stay
 *     byte-identical (unique id unchanged), the BAT entry names the block;
 *   - sector bitmaps hold exactly the written sectors' bits, MSB-first;
 *   - zeros over an unallocated dynamic block store nothing; fixed writes
 *     land in place;
 *   - a differencing child's partially written block reads the parent's
 *     sectors where it holds none;
 *   - flush budget: at most two flushes per flush call however many blocks
 *     were appended, one BAT write for adjacent entries;
 *   - a failed payload write into a new block (torn or short, issue #15
 *     item 1): its bytes never show up in a block allocated later, while
 *     the image stays open or after a reopen;
 *   - crash safety the SQLite way (tests/lib/crash_io.c): a power cut after
 *     every I/O event, in every mode, leaves an image that opens, with every
 *     acknowledged write intact and every other sector old or in flight.
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/unit.h"
#include "chain/chain.h"
#include "codec/endian.h"
#include "codec/guid.h"
#include "codec/vhd_codec.h"
#include "format/format.h"
#include "format/vhd_create.h"
#include "format/vhd_format.h"
#include "format/vhd_reparent.h"
#include "format/vhd_write.h"
#include "io/fault.h"
#include "io/io.h"
#include "lib/crash_check.h"
#include "lib/crash_io.h"
#include "lib/gen_bytes.h"

#define M (1ull << 20)
#define CHILD_PATH "/tmp/libvhdx-unit-child.vhd"
/* The parent's path only feeds the locators and the parent time stamp: an
 * empty file beside the (never written) child path, with a known mtime. */
static char parent_file[] = "/tmp/libvhdx-unit-parent-XXXXXX";
#define PARENT_PATH parent_file
#define PARENT_MTIME 1600000000 /* 2020-09-13T12:26:40Z */

/* ---- MSB-first bits, read independently of the library (fields: gen_bytes.h) ---- */
static bool bit(const uint8_t *bm, uint64_t sector)
{
	return (bm[sector / 8] & (0x80u >> (sector % 8))) != 0;
}

/* Payload byte at virtual offset VOFF for pattern SEED. */
static uint8_t pat(unsigned seed, uint64_t voff)
{
	return (uint8_t)(voff * 131 + (voff >> 9) * 7 + seed * 29 + 1);
}
static void fill(uint8_t *buf, unsigned seed, uint64_t voff, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pat(seed, voff + i);
}

static struct vhdx_create_params params(enum vhdx_disk_type type, uint64_t vsize, uint32_t bs)
{
	struct vhdx_create_params p;

	memset(&p, 0, sizeof p);
	p.type = type;
	p.virtual_size = vsize;
	p.block_size = bs;
	p.logical_sector_size = 512;
	p.physical_sector_size = 512;
	return p;
}

/* Creates an image into a new mem io; PARENT (a VHD layer) makes it a child. */
static struct vhdx_io *create(enum vhdx_disk_type type, uint64_t vsize, uint32_t bs, const struct vhdx_layer *parent)
{
	struct vhdx_create_params p = params(type, vsize, bs);
	struct vhdx_io *io;

	if (parent)
		p.parent = PARENT_PATH;
	assert_int_equal(vhdx_io_mem_new(NULL, 0, "new.vhd", &io), 0);
	assert_ok(vhdx_create_vhd(io, CHILD_PATH, &p, parent));
	return io;
}

static struct vhdx_layer *open_io(struct vhdx_io *io, bool writable)
{
	struct vhdx_layer *l;

	assert_ok(vhdx_layer_open_io(io, "t.vhd", writable ? VHDX_LAYER_WRITABLE : 0, &l));
	return l;
}

/* A new disk without a parent, open for writing. */
static struct vhdx_layer *create_writable(enum vhdx_disk_type type, uint64_t vsize, uint32_t bs)
{
	return open_io(create(type, vsize, bs, NULL), true);
}

/* A copy of the bytes of a mem-backed layer (or io). */
static uint8_t *snapshot(struct vhdx_io *io, size_t *len)
{
	const uint8_t *d = vhdx_io_mem_data(io, len);
	uint8_t *c = malloc(*len ? *len : 1);

	assert_non_null(c);
	memcpy(c, d, *len);
	return c;
}

static struct vhdx_layer *reopen(struct vhdx_layer *l, bool writable)
{
	struct vhdx_io *io;
	size_t len;
	uint8_t *b = snapshot(l->io, &len);

	assert_int_equal(vhdx_io_mem_new(b, len, "re.vhd", &io), 0);
	free(b);
	return open_io(io, writable);
}

static uint64_t flushes(struct vhdx_layer *l)
{
	return atomic_load(&l->io->cnt.ops[VHDX_IO_FLUSH]);
}

static void read_chain(struct vhdx_layer *top, struct vhdx_layer *base, void *buf, size_t len, uint64_t voff)
{
	struct vhdx_layer *layers[2] = { top, base };
	struct vhdx_chain c = { .n = base ? 2 : 1, .layers = layers, .virtual_size = top->virtual_size };

	assert_ok(vhdx_chain_read(&c, 0, buf, len, voff));
}

/* Checks the footer at BYTES+OFF field by field against what creation promises. */
static void check_footer(const uint8_t *f, uint32_t type, uint64_t vsize)
{
	struct vhdx_vhd_footer d;
	struct vhdx_vhd_chs chs;
	time_t now = time(NULL);
	uint32_t ts;

	assert_memory_equal(f, "conectix", 8);
	assert_int_equal(gen_get_be32(f + 8), 2);             /* features: reserved bit */
	assert_int_equal(gen_get_be32(f + 12), 0x00010000);   /* version 1.0 */
	assert_true(gen_get_be64(f + 16) == (type == VHD_TYPE_FIXED ? UINT64_MAX : 512));
	ts = gen_get_be32(f + 24);
	assert_true(ts + 946684800ull <= (uint64_t)now && ts + 946684800ull + 60 >= (uint64_t)now);
	assert_memory_equal(f + 28, "vhdx", 4);
	assert_int_equal(gen_get_be32(f + 32), 0x00000001);   /* our version 0.1 */
	assert_memory_equal(f + 36, "Wi2k", 4);
	assert_true(gen_get_be64(f + 40) == vsize && gen_get_be64(f + 48) == vsize);
	vhdx_vhd_chs_calc(vsize, &chs);
	if (type != VHD_TYPE_DIFFERENCING) {
		assert_int_equal((f[56] << 8) | f[57], chs.cylinders);
		assert_int_equal(f[58], chs.heads);
		assert_int_equal(f[59], chs.sectors_per_track);
	}
	assert_int_equal(gen_get_be32(f + 60), type);
	assert_int_equal(gen_get_be32(f + 64), gen_vhd_checksum(f, 512, 64));
	/* a random RFC 4122 version-4 id in big-endian field order */
	assert_int_equal(f[74] >> 4, 4);
	assert_int_equal(f[76] & 0xc0, 0x80);
	assert_int_equal(f[84], 0);                   /* no saved state */
	for (int i = 85; i < 512; i++)
		assert_int_equal(f[i], 0);
	assert_ok(vhdx_vhd_footer_decode(f, 512, 0, &d));
	assert_true(d.checksum_valid && !d.reserved_nonzero);
}

static void test_create_fixed(void **st)
{
	uint64_t vsize = 20 * M + 512;
	struct vhdx_io *io = create(VHDX_TYPE_FIXED, vsize, 0, NULL);
	struct vhdx_layer *l;
	const uint8_t *b;
	uint8_t *buf = malloc(vsize);
	size_t len;

	b = vhdx_io_mem_data(io, &len);
	assert_int_equal(len, vsize + 512);
	check_footer(b + vsize, VHD_TYPE_FIXED, vsize);
	/* no leading copy on a fixed disk: its first sector is disk data */
	for (int i = 0; i < 512; i++)
		assert_int_equal(b[i], 0);
	l = open_io(io, false);
	assert_int_equal(l->type, VHDX_TYPE_FIXED);
	assert_true(l->virtual_size == vsize);
	read_chain(l, NULL, buf, vsize, 0);
	for (uint64_t i = 0; i < vsize; i++)
		if (buf[i])
			fail_msg("fixed disk byte %llu is not zero", (unsigned long long)i);
	assert_int_equal(vhdx_layer_close(l), 0);
	free(buf);
}

static void test_create_dynamic(void **st)
{
	uint64_t vsize = 100 * M + 512;
	uint32_t bs = 2u << 20, n = (uint32_t)((vsize + bs - 1) / bs); /* 51 entries */
	uint64_t bat_len = (4ull * n + 511) / 512 * 512;
	struct vhdx_io *io = create(VHDX_TYPE_DYNAMIC, vsize, bs, NULL);
	struct vhdx_vhd_dynhdr h;
	struct vhdx_vhd_state *s;
	struct vhdx_layer *l;
	const uint8_t *b;
	size_t len;

	b = vhdx_io_mem_data(io, &len);
	assert_int_equal(len, 1536 + bat_len + 512);
	check_footer(b, VHD_TYPE_DYNAMIC, vsize);
	assert_memory_equal(b, b + len - 512, 512); /* the leading copy is the trailing footer, byte for byte */
	/* dynamic header at 512 */
	assert_memory_equal(b + 512, "cxsparse", 8);
	assert_true(gen_get_be64(b + 512 + 8) == UINT64_MAX);
	assert_true(gen_get_be64(b + 512 + 16) == 1536);
	assert_int_equal(gen_get_be32(b + 512 + 24), 0x00010000);
	assert_int_equal(gen_get_be32(b + 512 + 28), n);
	assert_int_equal(gen_get_be32(b + 512 + 32), bs);
	assert_int_equal(gen_get_be32(b + 512 + 36), gen_vhd_checksum(b + 512, 1024, 36));
	for (int i = 40; i < 1024; i++) /* no parent, no locators, reserved zero */
		assert_int_equal(b[512 + i], 0);
	assert_ok(vhdx_vhd_dynhdr_decode(b + 512, 1024, 0, &h));
	/* the BAT and its padding: every entry unallocated */
	for (uint64_t i = 0; i < bat_len; i++)
		assert_int_equal(b[1536 + i], 0xff);

	l = open_io(io, false);
	s = vhdx_vhd_state_of(l);
	assert_int_equal(l->type, VHDX_TYPE_DYNAMIC);
	assert_true(l->virtual_size == vsize);
	assert_int_equal(l->block_size, bs);
	assert_false(s->footers_differ);
	assert_int_equal(s->allocated_blocks, 0);
	assert_int_equal(s->blocks_needed, n);
	/* identity: the footer's unique id in the reader's GUID order */
	{
		uint8_t g[16];
		vhdx_vhd_uuid_to_guid(b + 68, g);
		assert_memory_equal(l->identity, g, 16);
	}
	assert_int_equal(vhdx_layer_close(l), 0);

	/* a non-default block size */
	io = create(VHDX_TYPE_DYNAMIC, 20 * M, 512 * 1024, NULL);
	l = open_io(io, false);
	assert_int_equal(l->block_size, 512 * 1024);
	assert_int_equal(vhdx_vhd_state_of(l)->dyn.max_table_entries, 40);
	assert_int_equal(vhdx_layer_close(l), 0);
}

static void test_create_differencing(void **st)
{
	struct vhdx_io *pio = create(VHDX_TYPE_DYNAMIC, 20 * M, 2u << 20, NULL);
	struct vhdx_layer *parent = open_io(pio, false), *l;
	const struct vhdx_vhd_state *ps = vhdx_vhd_state_of(parent);
	struct vhdx_vhd_state *s;
	struct vhdx_io *io;
	const uint8_t *b, *d;
	size_t len;
	char *path, rel[64], abs_[PATH_MAX + 1];

	/* what Windows would write for this parent: ".\name" and the absolute path with backslashes */
	snprintf(rel, sizeof rel, ".\\%s", strrchr(parent_file, '/') + 1);
	assert_non_null(realpath(parent_file, abs_));
	for (char *c = abs_; *c; c++)
		if (*c == '/')
			*c = '\\';

	io = create(VHDX_TYPE_DIFFERENCING, 20 * M, 2u << 20, parent);
	b = vhdx_io_mem_data(io, &len);
	d = b + 512;
	check_footer(b, VHD_TYPE_DIFFERENCING, 20 * M);
	assert_memory_equal(b, b + len - 512, 512);
	/* the child presents the parent's geometry */
	assert_memory_equal(b + 56, ps->copies[ps->used].raw + 56, 4);
	/* linkage: the parent's footer unique id, byte for byte */
	assert_memory_equal(d + 40, ps->copies[ps->used].raw + 68, 16);
	assert_memory_not_equal(b + 68, ps->copies[ps->used].raw + 68, 16);
	/* parent time stamp: the parent file's modification time in VHD seconds */
	assert_int_equal(gen_get_be32(d + 56), PARENT_MTIME - 946684800);
	/* parent Unicode name: the path relative to the child with '/', here the file name alone
	 * (vhd-lib resolves it against the child's folder), UTF-16BE, NUL padded */
	for (size_t i = 0; i < 256; i++) {
		uint16_t want = i < strlen(rel + 2) ? (uint8_t)rel[2 + i] : 0;
		assert_int_equal((d[64 + 2 * i] << 8) | d[65 + 2 * i], want);
	}
	/* locators: slot 0 W2ku, slot 1 W2ru, data UTF-16LE after the BAT in 512-aligned areas */
	{
		const uint8_t *e0 = d + 576, *e1 = d + 600;
		uint64_t o0 = gen_get_be64(e0 + 16), o1 = gen_get_be64(e1 + 16);
		assert_memory_equal(e0, "W2ku", 4);
		assert_memory_equal(e1, "W2ru", 4);
		assert_int_equal(gen_get_be32(e0 + 8), 2 * strlen(abs_));
		assert_int_equal(gen_get_be32(e1 + 8), 2 * strlen(rel));
		assert_int_equal(gen_get_be32(e0 + 4), 4096); /* space reserved, bytes */
		assert_int_equal(gen_get_be32(e1 + 4), 4096);
		assert_true(o0 == 1536 + 512 && o1 == o0 + 4096);
		for (size_t i = 0; i < strlen(abs_); i++)
			assert_true(b[o0 + 2 * i] == (uint8_t)abs_[i] && b[o0 + 2 * i + 1] == 0);
		for (size_t i = 0; i < strlen(rel); i++)
			assert_true(b[o1 + 2 * i] == (uint8_t)rel[i] && b[o1 + 2 * i + 1] == 0);
		for (int k = 2; k < 8; k++)
			assert_int_equal(gen_get_be32(d + 576 + 24 * k), 0);
		/* the first block will go after the locator areas: the trailing footer is there */
		assert_int_equal(len, o1 + 4096 + 512);
	}

	l = open_io(io, false);
	s = vhdx_vhd_state_of(l);
	assert_int_equal(l->type, VHDX_TYPE_DIFFERENCING);
	assert_true(l->has_parent);
	/* the chain's linkage check compares exactly these */
	assert_memory_equal(l->parent.linkage, parent->identity, 16);
	assert_int_equal(l->parent.n_paths, 3);
	assert_string_equal(l->parent.paths[0].key, "W2ru");
	assert_string_equal(l->parent.paths[0].value, rel);
	assert_string_equal(l->parent.paths[1].key, "W2ku");
	assert_string_equal(l->parent.paths[1].value, abs_);
	assert_string_equal(l->parent.paths[2].key, "parent_name");
	assert_ok(vhdx_vhd_parent_name(&s->dyn, &path));
	assert_string_equal(path, rel + 2);
	free(path);
	assert_int_equal(vhdx_layer_close(l), 0);
	assert_int_equal(vhdx_layer_close(parent), 0);
}

/* The Parent Unicode Name for each layout, and the file name alone when the path is too long. */
static void test_parent_name_encode(void **st)
{
	static const struct {
		const char *rel, *want;
		size_t units; /* UTF-16 units of WANT */
	} cases[] = {
		{ ".\\base.vhd", "base.vhd", 8 },
		{ "..\\other\\base.vhd", "../other/base.vhd", 17 },
		{ ".\\sub\\base.vhd", "sub/base.vhd", 12 },
		{ "sub\\deeper\\b\xc3\xa4se.vhd", "sub/deeper/b\xc3\xa4se.vhd", 19 },
	};
	uint8_t name[VHD_PARENT_NAME_LEN];
	char long_rel[700], *got;
	struct vhdx_vhd_dynhdr h;

	(void)st;
	memset(&h, 0, sizeof h);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(name, 0xee, sizeof name);
		assert_ok(vhdx_vhd_parent_name_encode(cases[i].rel, name));
		memcpy(h.parent_name, name, sizeof name);
		assert_ok(vhdx_vhd_parent_name(&h, &got));
		assert_string_equal(got, cases[i].want);
		free(got);
		for (size_t k = 2 * cases[i].units; k < sizeof name; k++)
			assert_int_equal(name[k], 0); /* NUL padded after the name */
	}
	/* 300 units: too long for the field, the file name alone */
	memset(long_rel, 'd', sizeof long_rel);
	memcpy(long_rel, "..\\", 3);
	strcpy(long_rel + 290, "\\base.vhd");
	assert_ok(vhdx_vhd_parent_name_encode(long_rel, name));
	memcpy(h.parent_name, name, sizeof name);
	assert_ok(vhdx_vhd_parent_name(&h, &got));
	assert_string_equal(got, "base.vhd");
	free(got);
	/* a file name that alone is too long: refused, saying so */
	memset(long_rel, 'n', 600);
	long_rel[600] = 0;
	assert_int_equal(vhdx_vhd_parent_name_encode(long_rel, name), -EINVAL);
	assert_non_null(strstr(vhdx_errmsg(), "longer than the 256 UTF-16 units of a VHD parent name"));
}

static void test_create_refusals(void **st)
{
	struct vhdx_create_params p;
	struct vhdx_io *io, *pio;
	struct vhdx_layer *parent;

	assert_int_equal(vhdx_io_mem_new(NULL, 0, "r.vhd", &io), 0);
	p = params(VHDX_TYPE_DYNAMIC, 20 * M + 100, 2u << 20);
	assert_fails(vhdx_create_vhd(io, CHILD_PATH, &p, NULL), -EINVAL, "non-zero multiple of 512 bytes, not 20971620");
	p = params(VHDX_TYPE_FIXED, 0, 0);
	assert_fails(vhdx_create_vhd(io, CHILD_PATH, &p, NULL), -EINVAL, "multiple of 512");
	p = params(VHDX_TYPE_DYNAMIC, (2040ull << 30) + 512, 2u << 20);
	assert_fails(vhdx_create_vhd(io, CHILD_PATH, &p, NULL), -EINVAL, "at most 2040 GiB");
	p = params(VHDX_TYPE_DYNAMIC, 20 * M, 3u << 20);
	assert_fails(vhdx_create_vhd(io, CHILD_PATH, &p, NULL), -EINVAL, "block size 3145728 is not a power of two");
	p = params(VHDX_TYPE_DYNAMIC, 20 * M, 2048);
	assert_fails(vhdx_create_vhd(io, CHILD_PATH, &p, NULL), -EINVAL, "block size 2048");
	p = params(VHDX_TYPE_DYNAMIC, 20 * M, 512u << 20);
	assert_fails(vhdx_create_vhd(io, CHILD_PATH, &p, NULL), -EINVAL, "block size");
	p = params(VHDX_TYPE_DYNAMIC, 20 * M, 2u << 20);
	p.logical_sector_size = 4096;
	assert_fails(vhdx_create_vhd(io, CHILD_PATH, &p, NULL), -EINVAL, "512-byte sectors");
	/* nothing was written by the refusals */
	{
		size_t len;
		vhdx_io_mem_data(io, &len);
		assert_int_equal(len, 0);
	}
	/* the largest dynamic disk is accepted (only its 4 MiB BAT is written) */
	p = params(VHDX_TYPE_DYNAMIC, 2040ull << 30, 2u << 20);
	assert_ok(vhdx_create_vhd(io, CHILD_PATH, &p, NULL));
	vhdx_io_close(io);

	/* a child of the wrong size */
	pio = create(VHDX_TYPE_DYNAMIC, 20 * M, 2u << 20, NULL);
	parent = open_io(pio, false);
	assert_int_equal(vhdx_io_mem_new(NULL, 0, "r.vhd", &io), 0);
	p = params(VHDX_TYPE_DIFFERENCING, 40 * M, 2u << 20);
	p.parent = PARENT_PATH;
	assert_fails(vhdx_create_vhd(io, CHILD_PATH, &p, parent), -EINVAL, "parent's size (20971520 bytes)");
	p.virtual_size = 20 * M;
	p.parent = "/nonexistent/parent.vhd";
	assert_fails(vhdx_create_vhd(io, CHILD_PATH, &p, parent), -ENOENT, "/nonexistent/parent.vhd");
	vhdx_io_close(io);
	assert_int_equal(vhdx_layer_close(parent), 0);
}

/*
 * The allocation layout: block 1 written (sectors 3..12, bits across a byte
 * boundary) lands where the trailing footer was, the footer moves behind
 * it, the BAT entry reaches the file at flush, both copies stay identical.
 * Then block 0 lands where the moved footer was.
 */
static void test_allocation_layout(void **st)
{
	uint32_t bs = 2u << 20;
	struct vhdx_layer *l = create_writable(VHDX_TYPE_DYNAMIC, 16 * M, bs);
	struct vhdx_vhd_write_stats ws;
	uint8_t footer[512], buf[8192], rd[8192];
	size_t len0, len;
	uint64_t old_end, blk1, blk0;
	const uint8_t *b;

	b = vhdx_io_mem_data(l->io, &len0);
	memcpy(footer, b + len0 - 512, 512);
	old_end = len0 - 512; /* the trailing footer's offset */

	fill(buf, 1, bs + 1536, 5120);
	assert_ok(l->ops->pwrite(l, buf, 5120, bs + 1536));
	b = vhdx_io_mem_data(l->io, &len);
	blk1 = old_end;
	assert_int_equal(len, blk1 + 512 + bs + 512);          /* footer moved behind the block */
	assert_memory_equal(b + len - 512, footer, 512);
	assert_memory_equal(b + blk1 + 512 + 1536, buf, 5120); /* data in the block's data area */
	/* before the flush nothing on disk names the block (a crash only leaks it) */
	assert_int_equal(gen_get_be32(b + 1536 + 4), VHD_BAT_UNUSED);
	/* but reads see it at once */
	read_chain(l, NULL, rd, 5120, bs + 1536);
	assert_memory_equal(rd, buf, 5120);

	assert_ok(l->ops->flush(l));
	b = vhdx_io_mem_data(l->io, &len);
	assert_int_equal(gen_get_be32(b + 1536 + 4), blk1 / 512);
	assert_int_equal(gen_get_be32(b + 1536), VHD_BAT_UNUSED);
	/* the bitmap: exactly sectors 3..12, MSB-first: 0x1f 0xf8 then zeros */
	assert_int_equal(b[blk1], 0x1f);
	assert_int_equal(b[blk1 + 1], 0xf8);
	for (int i = 2; i < 512; i++)
		assert_int_equal(b[blk1 + i], 0);
	for (uint64_t s = 0; s < bs / 512; s++)
		assert_int_equal(bit(b + blk1, s), s >= 3 && s <= 12);
	/* the rest of the new block reads zeros in the file */
	for (uint64_t i = 0; i < bs; i++)
		if ((i < 1536 || i >= 1536 + 5120) && b[blk1 + 512 + i])
			fail_msg("byte %llu of the new block is not zero", (unsigned long long)i);
	/* leading copy identical to the trailing one, unique id unchanged */
	assert_memory_equal(b, footer, 512);
	assert_memory_equal(b + len - 512, footer, 512);

	/* block 0, one whole sector at its end: placed where the footer is now */
	blk0 = len - 512;
	fill(buf, 2, bs - 512, 512);
	assert_ok(l->ops->pwrite(l, buf, 512, bs - 512));
	/* and more sectors of block 1: bits 0..1 and 4095 join */
	fill(buf, 3, bs, 1024);
	assert_ok(l->ops->pwrite(l, buf, 1024, bs));
	fill(buf, 4, 2 * bs - 512, 512);
	assert_ok(l->ops->pwrite(l, buf, 512, 2 * bs - 512));
	assert_ok(l->ops->flush(l));
	b = vhdx_io_mem_data(l->io, &len);
	assert_int_equal(len, blk0 + 512 + bs + 512);
	assert_int_equal(gen_get_be32(b + 1536), blk0 / 512);
	assert_int_equal(gen_get_be32(b + 1536 + 4), blk1 / 512);
	for (uint64_t s = 0; s < bs / 512; s++) {
		assert_int_equal(bit(b + blk0, s), s == bs / 512 - 1);
		assert_int_equal(bit(b + blk1, s), s <= 1 || (s >= 3 && s <= 12) || s == bs / 512 - 1);
	}
	assert_memory_equal(b + len - 512, footer, 512);
	assert_memory_equal(b, footer, 512);
	vhdx_vhd_write_get_stats(l, &ws);
	assert_int_equal(ws.blocks_allocated, 2);
	assert_int_equal(ws.footer_writes, 2);

	/* the reopened file checks out (the open validates every block) and reads the same */
	{
		struct vhdx_layer *r = reopen(l, false);
		struct vhdx_vhd_state *s = vhdx_vhd_state_of(r);
		assert_int_equal(s->allocated_blocks, 2);
		assert_false(s->footers_differ);
		assert_int_equal(s->used, VHDX_VHD_TRAILING);
		assert_true(s->copies[VHDX_VHD_TRAILING].offset == len - 512);
		read_chain(r, NULL, rd, 512, bs - 512);
		fill(buf, 2, bs - 512, 512);
		assert_memory_equal(rd, buf, 512);
		assert_int_equal(vhdx_layer_close(r), 0);
	}
	assert_int_equal(vhdx_layer_close(l), 0);
}

/* Zeros over an unallocated dynamic block store nothing; over an allocated one they are written. */
static void test_zero_writes(void **st)
{
	uint32_t bs = 1u << 20;
	struct vhdx_layer *l = create_writable(VHDX_TYPE_DYNAMIC, 8 * M, bs);
	struct vhdx_vhd_write_stats ws;
	uint8_t *zeros = calloc(1, 3 * bs), *buf = malloc(4096), rd[4096];
	size_t len0, len;
	uint64_t f0 = flushes(l);

	vhdx_io_mem_data(l->io, &len0);
	assert_ok(l->ops->pwrite(l, zeros, 3 * bs, 0));
	assert_ok(l->ops->flush(l));
	vhdx_io_mem_data(l->io, &len);
	assert_int_equal(len, len0);
	assert_int_equal(flushes(l), f0); /* nothing written, nothing flushed */
	vhdx_vhd_write_get_stats(l, &ws);
	assert_int_equal(ws.blocks_allocated, 0);
	assert_int_equal(ws.zero_writes_skipped, 3);
	assert_int_equal(vhdx_vhd_state_of(l)->allocated_blocks, 0);

	/* data, then zeros over part of it: stored, and they read back */
	fill(buf, 5, 5 * bs, 4096);
	assert_ok(l->ops->pwrite(l, buf, 4096, 5 * bs));
	assert_ok(l->ops->pwrite(l, zeros, 1024, 5 * bs + 1024));
	read_chain(l, NULL, rd, 4096, 5 * bs);
	memset(buf + 1024, 0, 1024);
	assert_memory_equal(rd, buf, 4096);
	vhdx_vhd_write_get_stats(l, &ws);
	assert_int_equal(ws.blocks_allocated, 1);
	assert_int_equal(vhdx_layer_close(l), 0);
	free(zeros);
	free(buf);
}

/* A fixed disk: payload in place, the footer untouched, the file size unchanged. */
static void test_fixed_in_place(void **st)
{
	uint64_t vsize = 4 * M;
	struct vhdx_layer *l = create_writable(VHDX_TYPE_FIXED, vsize, 0);
	uint8_t footer[512], buf[3072];
	const uint8_t *b;
	size_t len;
	uint64_t f0;

	b = vhdx_io_mem_data(l->io, &len);
	memcpy(footer, b + vsize, 512);
	fill(buf, 6, 1000 * 512, sizeof buf);
	assert_ok(l->ops->pwrite(l, buf, sizeof buf, 1000 * 512));
	fill(buf, 7, vsize - 512, 512);
	assert_ok(l->ops->pwrite(l, buf, 512, vsize - 512));
	f0 = flushes(l);
	assert_ok(l->ops->flush(l));
	assert_int_equal(flushes(l) - f0, 1);
	b = vhdx_io_mem_data(l->io, &len);
	assert_int_equal(len, vsize + 512);
	assert_memory_equal(b + vsize, footer, 512);
	assert_memory_equal(b + vsize - 512, buf, 512);
	fill(buf, 6, 1000 * 512, sizeof buf);
	assert_memory_equal(b + 1000 * 512, buf, sizeof buf);
	/* past the end: refused */
	assert_fails(l->ops->pwrite(l, buf, 1024, vsize - 512), -EINVAL, "outside the disk");
	assert_int_equal(vhdx_layer_close(l), 0);
}

/*
 * A differencing child over a parent full of data: a partial write into an
 * unallocated child block reads the parent's sectors where it wrote none;
 * the bitmap holds exactly the written sectors; a later write into the
 * allocated block adds its bits (written after the data flush).
 */
static void test_differencing_partial(void **st)
{
	uint32_t bs = 1u << 20;
	uint64_t vsize = 4 * M;
	struct vhdx_io *pio = create(VHDX_TYPE_DYNAMIC, vsize, bs, NULL);
	struct vhdx_layer *parent = open_io(pio, true), *child;
	uint8_t *want = malloc(vsize), *got = malloc(vsize), buf[4096];
	const uint8_t *b;
	uint64_t blk_foff;
	size_t len;

	fill(want, 9, 0, vsize);
	assert_ok(parent->ops->pwrite(parent, want, vsize, 0));
	assert_ok(parent->ops->flush(parent));

	child = open_io(create(VHDX_TYPE_DIFFERENCING, vsize, bs, parent), true);
	/* sectors 5..6 of block 2, and a zero sector (zeros must not fall through to the parent) */
	fill(buf, 10, 2 * bs + 2560, 1024);
	assert_ok(child->ops->pwrite(child, buf, 1024, 2 * bs + 2560));
	memcpy(want + 2 * bs + 2560, buf, 1024);
	memset(buf, 0, 512);
	assert_ok(child->ops->pwrite(child, buf, 512, 3 * bs + 512 * 100));
	memset(want + 3 * bs + 512 * 100, 0, 512);
	read_chain(child, parent, got, vsize, 0);
	assert_memory_equal(got, want, vsize);
	assert_ok(child->ops->flush(child));

	b = vhdx_io_mem_data(child->io, &len);
	blk_foff = (uint64_t)gen_get_be32(b + 1536 + 8) * 512;
	assert_true(blk_foff > 0 && blk_foff + 512 + bs <= len - 512);
	for (uint64_t s = 0; s < bs / 512; s++)
		assert_int_equal(bit(b + blk_foff, s), s == 5 || s == 6);
	/* the child holds zeros where the parent shows through */
	for (uint64_t i = 0; i < 2560; i++)
		assert_int_equal(b[blk_foff + 512 + i], 0);
	assert_int_not_equal(gen_get_be32(b + 1536 + 12), VHD_BAT_UNUSED); /* block 3 holds the zero sector */

	/* into the allocated block: sector 0 and the last one */
	fill(buf, 11, 2 * bs, 512);
	assert_ok(child->ops->pwrite(child, buf, 512, 2 * bs));
	memcpy(want + 2 * bs, buf, 512);
	fill(buf, 12, 3 * bs - 512, 512);
	assert_ok(child->ops->pwrite(child, buf, 512, 3 * bs - 512));
	memcpy(want + 3 * bs - 512, buf, 512);
	assert_ok(child->ops->flush(child));
	b = vhdx_io_mem_data(child->io, &len);
	for (uint64_t s = 0; s < bs / 512; s++)
		assert_int_equal(bit(b + blk_foff, s), s == 0 || s == 5 || s == 6 || s == bs / 512 - 1);

	/* the reopened child reads the same through its parent */
	{
		struct vhdx_layer *r = reopen(child, false);
		memset(got, 0, vsize);
		read_chain(r, parent, got, vsize, 0);
		assert_memory_equal(got, want, vsize);
		assert_int_equal(vhdx_layer_close(r), 0);
	}
	assert_int_equal(vhdx_layer_close(child), 0);
	assert_int_equal(vhdx_layer_close(parent), 0);
	free(want);
	free(got);
}

/* At most two flushes per flush call however many blocks were appended; adjacent BAT entries in one write. */
static void test_flush_budget(void **st)
{
	uint32_t bs = 64 * 1024;
	struct vhdx_io *io = create(VHDX_TYPE_DYNAMIC, 64 * M, bs, NULL); /* 1024 BAT entries, 8 sectors */
	struct vhdx_layer *l = open_io(io, true);
	struct vhdx_vhd_write_stats ws;
	uint8_t buf[4096];
	uint64_t f0 = flushes(l), w0;

	memset(buf, 0xab, sizeof buf);
	for (uint64_t blk = 0; blk < 300; blk++)
		assert_ok(l->ops->pwrite(l, buf, 4096, blk * bs + 512));
	assert_int_equal(flushes(l), f0); /* writes alone never flush */
	w0 = atomic_load(&l->io->cnt.tag_ops[VHDX_TAG_BAT]);
	assert_ok(l->ops->flush(l));
	assert_int_equal(flushes(l) - f0, 2);
	/* entries 0..299 span BAT sectors 0..2: one write */
	assert_int_equal(atomic_load(&l->io->cnt.tag_ops[VHDX_TAG_BAT]) - w0, 1);
	vhdx_vhd_write_get_stats(l, &ws);
	assert_int_equal(ws.blocks_allocated, 300);
	assert_int_equal(ws.bat_sector_writes, 3);
	assert_int_equal(ws.bitmap_writes, 300);
	assert_int_equal(ws.commits, 1);

	/* scattered entries: one write per run of adjacent sectors */
	w0 = atomic_load(&l->io->cnt.tag_ops[VHDX_TAG_BAT]);
	f0 = flushes(l);
	assert_ok(l->ops->pwrite(l, buf, 4096, 500 * bs));
	assert_ok(l->ops->pwrite(l, buf, 4096, 1000 * bs));
	assert_ok(l->ops->flush(l));
	assert_int_equal(flushes(l) - f0, 2);
	assert_int_equal(atomic_load(&l->io->cnt.tag_ops[VHDX_TAG_BAT]) - w0, 2);

	/* overwriting allocated blocks without new bits: one flush */
	f0 = flushes(l);
	assert_ok(l->ops->pwrite(l, buf, 4096, 7 * bs + 512));
	assert_ok(l->ops->flush(l));
	assert_int_equal(flushes(l) - f0, 1);
	/* new bits in an allocated block: data flush, bitmap, flush */
	f0 = flushes(l);
	assert_ok(l->ops->pwrite(l, buf, 512, 7 * bs + 32768));
	assert_ok(l->ops->flush(l));
	assert_int_equal(flushes(l) - f0, 2);
	/* nothing written: no flush */
	f0 = flushes(l);
	assert_ok(l->ops->flush(l));
	assert_int_equal(flushes(l) - f0, 0);
	assert_int_equal(vhdx_layer_close(l), 0);
}

/* A read-only layer refuses writes; a salvaged one opens read-only only. */
static void test_refusals(void **st)
{
	struct vhdx_io *io = create(VHDX_TYPE_DYNAMIC, 8 * M, 2u << 20, NULL);
	struct vhdx_layer *l = open_io(io, false);
	uint8_t buf[512] = { 1 }, *bytes;
	size_t len;

	assert_fails(l->ops->pwrite(l, buf, 512, 0), -EROFS, "read-only");
	bytes = snapshot(l->io, &len);
	assert_int_equal(vhdx_layer_close(l), 0);
	/* damage the trailing footer's checksum and the leading copy's cookie: only salvage opens it */
	bytes[len - 512 + 64] ^= 0x01;
	bytes[0] = 'X';
	assert_int_equal(vhdx_io_mem_new(bytes, len, "bad.vhd", &io), 0);
	assert_fails(vhdx_layer_open_io(io, "bad.vhd", VHDX_LAYER_WRITABLE | VHDX_LAYER_SALVAGE, &l), -EROFS,
		     "accepted only by salvage");
	assert_int_equal(vhdx_io_mem_new(bytes, len, "bad.vhd", &io), 0);
	assert_ok(vhdx_layer_open_io(io, "bad.vhd", VHDX_LAYER_SALVAGE, &l));
	assert_int_equal(vhdx_layer_close(l), 0);
	free(bytes);
}

/* ---- crash safety ---- */

#define CVSIZE (2u << 20)
#define CBS    (256u << 10)
#define CNSECT (CVSIZE / 512)

struct crash_world {
	struct vhdx_layer *base;  /* NULL for a dynamic disk alone */
	uint32_t base_ids[CNSECT];
	uint32_t acked[CNSECT];
	uint8_t disk[CVSIZE];
};

static void crash_verify(struct crash_world *w, const struct crash_op *ops, size_t nops, size_t after, const uint8_t *bytes,
			 size_t len, bool writable, const char *what)
{
	size_t done = crash_acked(ops, nops, after, w->base_ids, w->acked, CNSECT);
	struct vhdx_io *io;
	struct vhdx_layer *l;
	int64_t bad;

	assert_int_equal(vhdx_io_mem_new(bytes, len, "crashed.vhd", &io), 0);
	if (vhdx_layer_open_io(io, "crashed.vhd", writable ? VHDX_LAYER_WRITABLE : 0, &l) < 0)
		fail_msg("%s: crash after event %zu: the image does not open: %s", what, after, vhdx_errmsg());
	read_chain(l, w->base, w->disk, CVSIZE, 0);
	bad = crash_bad_sector(w->disk, CNSECT, w->acked, ops, nops, done, after);
	if (bad >= 0)
		fail_msg("%s: crash after event %zu: sector %lld holds neither its acknowledged data (write %u) nor an in-flight write",
			 what, after, (long long)bad, w->acked[bad]);
	assert_int_equal(vhdx_layer_close(l), 0);
}

static void crash_run(struct crash_world *w, const uint8_t *img, size_t img_len, unsigned seed, const char *what)
{
	static const enum crash_mode modes[] = { CRASH_DROP_ALL, CRASH_KEEP_ALL, CRASH_TORN_512, CRASH_RANDOM };
	struct vhdx_io *cio, *borrowed;
	struct vhdx_layer *l;
	struct crash_op ops[40];
	size_t nops = 0, nev;
	uint8_t *buf = malloc(300 * 512);

	assert_int_equal(crash_io_new(img, img_len, &cio), 0);
	assert_int_equal(crash_io_borrow(cio, &borrowed), 0);
	assert_ok(vhdx_layer_open_io(borrowed, "work.vhd", VHDX_LAYER_WRITABLE, &l));
	for (uint32_t k = 0; k < 30; k++) {
		struct crash_op *o = &ops[nops++];
		o->ev_start = crash_io_events(cio);
		if (k % 5 == 4) {
			o->kind = CRASH_OP_FLUSH;
			assert_ok(l->ops->flush(l));
		} else {
			o->kind = CRASH_OP_WRITE;
			o->id = 100 + k;
			o->len = (uint64_t)(1 + crash_rnd(&seed) % 200) * 512;
			o->voff = (uint64_t)(crash_rnd(&seed) % (CNSECT - o->len / 512)) * 512;
			if (k % 7 == 2) /* straddle a block boundary */
				o->voff = (uint64_t)(1 + crash_rnd(&seed) % 6) * CBS - 1024;
			crash_fill(buf, o->id, o->voff / 512, o->len / 512);
			assert_ok(l->ops->pwrite(l, buf, o->len, o->voff));
		}
		o->ev_end = crash_io_events(cio);
	}
	assert_int_equal(crash_close_as_flush(l, cio, &ops[nops++]), 0);
	nev = crash_io_events(cio);
	print_message("%s: %zu ops, %zu I/O events, %zu crash points x %zu modes\n", what, nops, nev, nev + 1,
		      sizeof modes / sizeof modes[0]);
	for (size_t after = 0; after <= nev; after++)
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
			uint8_t *bytes;
			size_t len;
			assert_int_equal(crash_io_image(cio, after, modes[m], seed + (unsigned)after, &bytes, &len), 0);
			crash_verify(w, ops, nops, after, bytes, len, m == 0, what);
			free(bytes);
		}
	vhdx_io_close(cio);
	free(buf);
}

static void test_crash_dynamic(void **st)
{
	struct crash_world *w = calloc(1, sizeof *w);
	struct vhdx_io *io = create(VHDX_TYPE_DYNAMIC, CVSIZE, CBS, NULL);
	size_t len;
	uint8_t *img = snapshot(io, &len);

	vhdx_io_close(io);
	crash_run(w, img, len, 4242, "dynamic");
	free(img);
	free(w);
}

static void test_crash_differencing(void **st)
{
	struct crash_world *w = calloc(1, sizeof *w);
	struct vhdx_io *io = create(VHDX_TYPE_DYNAMIC, CVSIZE, CBS, NULL);
	uint8_t *img, *buf = malloc(CBS);
	size_t len;

	/* a base whose every other block holds data (id 7): partial child blocks must show it */
	w->base = open_io(io, true);
	for (uint64_t b = 0; b < CVSIZE / CBS; b += 2) {
		crash_fill(buf, 7, b * CBS / 512, CBS / 512);
		assert_ok(w->base->ops->pwrite(w->base, buf, CBS, b * CBS));
		for (uint64_t s = b * CBS / 512; s < (b + 1) * CBS / 512; s++)
			w->base_ids[s] = 7;
	}
	assert_ok(w->base->ops->flush(w->base));
	io = create(VHDX_TYPE_DIFFERENCING, CVSIZE, CBS, w->base);
	img = snapshot(io, &len);
	vhdx_io_close(io);
	crash_run(w, img, len, 99, "differencing");
	assert_int_equal(vhdx_layer_close(w->base), 0);
	free(img);
	free(buf);
	free(w);
}

/*
 * vhdx_vhd_reparent() under a power cut after every write and flush, with
 * every unflushed write lost, kept, the last torn at 512 bytes, or a random
 * subset: the child (with its W2ku/W2ru locators, and without, as vhd-lib
 * writes them) links to the old parent P or to the new one Q, the Parent
 * Unicode Name and unique id always of the same one.  Without locators the
 * header checksum always holds (one sector changes); with them only a
 * 512-byte tear of the 1 KiB header write breaks it, and then the first
 * sector (name, id, checksum) is the new one whole.
 */
static void strip_locators(uint8_t *img)
{
	uint8_t *d = img + 512;

	memset(d + 576, 0, 192);
	memset(d + 36, 0, 4);
	vhdx_put_be32(d + 36, gen_vhd_checksum(d, 1024, 36));
}

static void reparent_crash_run(bool bare)
{
	static const enum crash_mode modes[] = { CRASH_DROP_ALL, CRASH_KEEP_ALL, CRASH_TORN_512, CRASH_RANDOM };
	struct vhdx_io *pio = create(VHDX_TYPE_DYNAMIC, 8 * M, 2u << 20, NULL);
	struct vhdx_io *qio = create(VHDX_TYPE_DYNAMIC, 8 * M, 2u << 20, NULL);
	struct vhdx_layer *p = open_io(pio, false), *q = open_io(qio, false), *l;
	struct vhdx_io *cio, *io = create(VHDX_TYPE_DIFFERENCING, 8 * M, 2u << 20, p), *borrowed;
	const uint8_t *pid = vhdx_vhd_state_of(p)->footer->unique_id, *qid = vhdx_vhd_state_of(q)->footer->unique_id;
	char *old_name = strrchr(parent_file, '/') + 1;
	size_t len, nev, torn = 0;
	uint8_t *img = snapshot(io, &len);

	vhdx_io_close(io);
	if (bare)
		strip_locators(img);
	assert_int_equal(crash_io_new(img, len, &cio), 0);
	assert_int_equal(crash_io_borrow(cio, &borrowed), 0);
	assert_ok(vhdx_layer_open_io(borrowed, "child.vhd", VHDX_LAYER_WRITABLE, &l));
	assert_ok(vhdx_vhd_reparent(l, q, PARENT_PATH, true, ".\\q.vhd", "\\x\\q.vhd"));
	assert_int_equal(vhdx_layer_close(l), 0);
	nev = crash_io_events(cio);
	assert_int_equal(nev, bare ? 2 : 5); /* [locator, locator, flush,] header, flush */
	for (size_t after = 0; after <= nev; after++)
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
			struct vhdx_vhd_dynhdr h;
			uint8_t *bytes;
			size_t blen;
			char *name;
			bool is_new;
			int ret;

			assert_int_equal(crash_io_image(cio, after, modes[m], 77 + (unsigned)after, &bytes, &blen), 0);
			ret = vhdx_vhd_dynhdr_decode(bytes + 512, 1024, 0, &h);
			if (ret < 0) {
				/* only a torn 1 KiB header write of a child with locators */
				assert_false(bare);
				assert_int_equal(modes[m], CRASH_TORN_512);
				assert_ok(vhdx_vhd_dynhdr_decode(bytes + 512, 1024, VHDX_VHD_DECODE_SALVAGE, &h));
				assert_memory_equal(h.parent_unique_id, qid, 16);
				torn++;
			}
			assert_ok(vhdx_vhd_parent_name(&h, &name));
			is_new = !memcmp(h.parent_unique_id, qid, 16);
			if (is_new) {
				assert_string_equal(name, "q.vhd");
			} else {
				assert_memory_equal(h.parent_unique_id, pid, 16);
				assert_string_equal(name, old_name);
			}
			/* the final state, and before the first event the old one */
			if (after == nev && modes[m] != CRASH_DROP_ALL)
				assert_true(is_new);
			if (after == 0)
				assert_false(is_new);
			free(name);
			free(bytes);
		}
	if (!bare)
		assert_true(torn > 0); /* the torn case was reached */
	print_message("reparent %s: %zu events x %zu modes, %zu torn headers\n", bare ? "without locators" : "with locators",
		      nev, sizeof modes / sizeof modes[0], torn);
	vhdx_io_close(cio);
	free(img);
	vhdx_layer_close(p);
	vhdx_layer_close(q);
}

static void test_reparent_crash(void **st)
{
	(void)st;
	reparent_crash_run(true);
	reparent_crash_run(false);
}

/*
 * Issue #15 item 1: a payload write into a new block of a dynamic disk
 * fails after some of its bytes reached the file (RULE: torn or short);
 * then a write into another block, at a different in-block offset, and a
 * flush.  The second block must read zeros where nothing was written (it
 * used to be placed over the failed write's space, whose bytes a dynamic
 * disk's reader shows), also after a reopen, and the failed write's own
 * range reads zeros or its bytes.
 */
static void test_failed_append(void **st)
{
	const char *rule = *st;
	struct vhdx_io *mem = create(VHDX_TYPE_DYNAMIC, 64 * M, (uint32_t)M, NULL), *fio;
	struct vhdx_faults *f;
	struct vhdx_layer *l, *r = NULL;
	uint8_t *s = malloc(64 * 1024), *t = malloc(4096), *got = malloc(64 * 1024);
	static const uint8_t zeros[64 * 1024];

	assert_non_null(s);
	assert_non_null(t);
	assert_non_null(got);
	memset(s, 'S', 64 * 1024);
	memset(t, 'T', 4096);
	assert_ok(vhdx_faults_new(&f));
	assert_int_equal(vhdx_faults_add(f, rule), 1);
	assert_ok(vhdx_io_fault_new(f, mem, &fio));
	l = open_io(fio, true);
	assert_fails(l->ops->pwrite(l, s, 64 * 1024, 0x1507000), -EIO, "injected");
	assert_ok(l->ops->pwrite(l, t, 4096, 0x2200000));
	assert_ok(l->ops->flush(l));
	for (int pass = 0; pass < 2; pass++) {
		struct vhdx_layer *x = l;
		if (pass) {
			size_t len;
			uint8_t *b = snapshot(mem, &len); /* the file under the fault io */
			struct vhdx_io *io2;
			assert_int_equal(vhdx_io_mem_new(b, len, "re.vhd", &io2), 0);
			free(b);
			x = r = open_io(io2, false);
		}
		read_chain(x, NULL, got, 4096, 0x2200000);
		assert_memory_equal(got, t, 4096);
		read_chain(x, NULL, got, 64 * 1024 - 4096, 0x2201000);
		assert_memory_equal(got, zeros, 64 * 1024 - 4096);
		/* the failed range: never acknowledged, so zeros or 'S' sector by sector */
		read_chain(x, NULL, got, 64 * 1024, 0x1507000);
		for (size_t k = 0; k < 64 * 1024; k += 512)
			assert_true(!memcmp(got + k, zeros, 512) || !memcmp(got + k, s, 512));
	}
	assert_int_equal(vhdx_layer_close(r), 0);
	assert_int_equal(vhdx_layer_close(l), 0);
	vhdx_faults_free(f);
	free(s);
	free(t);
	free(got);
}

int main(void)
{
	struct timeval tv[2] = { { PARENT_MTIME, 0 }, { PARENT_MTIME, 0 } };
	int fd = mkstemp(parent_file), ret;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_fixed),
		cmocka_unit_test(test_create_dynamic),
		cmocka_unit_test(test_create_differencing),
		cmocka_unit_test(test_parent_name_encode),
		cmocka_unit_test(test_reparent_crash),
		cmocka_unit_test(test_create_refusals),
		cmocka_unit_test(test_allocation_layout),
		cmocka_unit_test(test_zero_writes),
		cmocka_unit_test(test_fixed_in_place),
		cmocka_unit_test(test_differencing_partial),
		cmocka_unit_test(test_flush_budget),
		cmocka_unit_test(test_refusals),
		unit_test_case("test_failed_append_torn", test_failed_append,
			       "op=write struct=payload nth=1 torn=2"),
		unit_test_case("test_failed_append_short", test_failed_append,
			       "op=write struct=payload nth=1 short=3000"),
		cmocka_unit_test(test_crash_dynamic),
		cmocka_unit_test(test_crash_differencing),
	};
	if (fd < 0 || utimes(parent_file, tv) < 0) {
		perror(parent_file);
		return 1;
	}
	close(fd);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(parent_file);
	return ret;
}
