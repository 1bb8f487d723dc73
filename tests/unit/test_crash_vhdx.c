/*
 * test_crash_vhdx.c - crash safety of the VHDX write path, proven the
 * SQLite way: a seeded write workload runs once over a recording backend;
 * then for EVERY event (each write and each flush of the file) a power cut
 * is simulated (unflushed writes dropped, all kept, the last one torn at
 * 512 and 4096 bytes, a random subset kept), the image is reopened (which
 * replays the log) and must hold:
 *   - it opens and every BAT entry checks out (the open validates them);
 *   - every write acknowledged by a completed flush reads back exactly;
 *   - every other sector reads either its old contents or the data of one
 *     of the writes that were in flight.
 * Both a dynamic base disk and a differencing child over a base are run.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "chain/chain.h"
#include "format/vhdx_create.h"
#include "format/vhdx_format.h"
#include "codec/guid.h"
#include "lib/crash_check.h"
#include "lib/crash_io.h"
#include "lib/unit_new_vhdx.h"

#define SECTOR 512
#define VSIZE (4u << 20)
#define NSECT (VSIZE / SECTOR)

/* Builds a fresh dynamic VHDX (1 MiB blocks) in memory; returns its bytes. */
static void make_image(uint8_t **bytes, size_t *len, const char *parent_path, const uint8_t *linkage)
{
	struct vhdx_io *io = unit_new_vhdx("new", "/tmp/child.avhdx", VSIZE, 1u << 20, parent_path, linkage);
	const uint8_t *d = vhdx_io_mem_data(io, len);

	*bytes = malloc(*len);
	memcpy(*bytes, d, *len);
	vhdx_io_close(io);
}

struct world {
	struct vhdx_layer *base;     /* read-only base under the child (NULL for a base-only run) */
	uint32_t *base_ids;          /* per sector: id held by the base (0 = zeros) */
};

static int read_through(struct world *w, struct vhdx_layer *top, uint8_t *buf)
{
	struct vhdx_chain c;
	struct vhdx_layer *layers[2] = { top, w->base };

	c.n = w->base ? 2 : 1;
	c.layers = layers;
	c.virtual_size = VSIZE;
	return vhdx_chain_read(&c, 0, buf, VSIZE, 0);
}

/*
 * Verifies the image BYTES (after a power cut at event AFTER) against the
 * op list.  Opens it read-only (replay into an overlay) and, when WRITABLE,
 * also in place.
 */
static uint8_t *disk;   /* VSIZE bytes, reused by every check */
static uint32_t *acked; /* NSECT entries */

static void verify(struct world *w, const struct crash_op *ops, size_t nops, size_t after, const uint8_t *bytes,
		   size_t len, bool writable, const char *what)
{
	struct vhdx_io *io;
	struct vhdx_layer *l;
	size_t done = crash_acked(ops, nops, after, w->base_ids, acked, NSECT);
	int64_t bad;
	int ret;

	assert_int_equal(vhdx_io_mem_new(bytes, len, "crashed", &io), 0);
	ret = vhdx_layer_open_io(io, "crashed", writable ? VHDX_LAYER_WRITABLE : 0, &l);
	if (ret < 0)
		fail_msg("%s: crash after event %zu: reopen failed: %s", what, after, vhdx_errmsg());
	ret = read_through(w, l, disk);
	if (ret < 0)
		fail_msg("%s: crash after event %zu: read failed: %s", what, after, vhdx_errmsg());
	bad = crash_bad_sector(disk, NSECT, acked, ops, nops, done, after);
	if (bad >= 0)
		fail_msg("%s: crash after event %zu: sector %lld holds neither its acknowledged data (write %u) nor an in-flight write",
			 what, after, (long long)bad, acked[bad]);
	assert_int_equal(vhdx_layer_close(l), 0);
}

/*
 * With VHDX_CRASH_DUMP_DIR set, crash images whose log is dirty are also
 * written there (base disks only: qemu cannot open children), so that
 * tests/test-crash-qemu.sh can check that qemu's replay gives our bytes.
 */
static void maybe_dump(const char *what, size_t after, const uint8_t *bytes, size_t len)
{
	static unsigned dumped;
	const char *dir = getenv("VHDX_CRASH_DUMP_DIR");
	struct vhdx_header h[2];
	bool dirty = false;
	char path[4096];
	FILE *f;

	if (!dir || strcmp(what, "dynamic") != 0 || dumped >= 24 || len < VHDX_HEADER2_OFF + VHDX_HEADER_SIZE)
		return;
	for (int i = 0; i < 2; i++)
		if (vhdx_header_decode(bytes + (i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF), VHDX_HEADER_SIZE, &h[i]) == 0)
			dirty |= !vhdx_guid_is_zero(h[i].log_guid) &&
				 (h[1 - i].seq < h[i].seq || vhdx_header_decode(bytes + (i ? VHDX_HEADER1_OFF : VHDX_HEADER2_OFF),
										 VHDX_HEADER_SIZE, &h[1 - i]) < 0);
	if (!dirty)
		return;
	snprintf(path, sizeof path, "%s/crash-%03zu.vhdx", dir, after);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	fclose(f);
	dumped++;
}

static void run_workload(struct world *w, const uint8_t *img, size_t img_len, unsigned seed, const char *what)
{
	struct vhdx_io *cio, *borrowed;
	struct vhdx_layer *l;
	struct crash_op ops[80];
	size_t nops = 0, nev;
	uint8_t *buf = malloc(256 * 1024);
	static const enum crash_mode modes[] = { CRASH_DROP_ALL, CRASH_KEEP_ALL, CRASH_TORN_512, CRASH_TORN_4096,
						 CRASH_RANDOM };

	assert_int_equal(crash_io_new(img, img_len, &cio), 0);
	assert_int_equal(crash_io_borrow(cio, &borrowed), 0);
	assert_int_equal(vhdx_layer_open_io(borrowed, "work", VHDX_LAYER_WRITABLE, &l), 0);
	for (uint32_t k = 0; k < 36; k++) {
		struct crash_op *o = &ops[nops++];
		if (k % 6 == 5) {
			o->kind = CRASH_OP_FLUSH;
			o->ev_start = crash_io_events(cio);
			assert_int_equal(l->ops->flush(l), 0);
			o->ev_end = crash_io_events(cio);
			continue;
		}
		o->kind = CRASH_OP_WRITE;
		o->id = 1000 + k;
		o->len = (uint64_t)(1 + crash_rnd(&seed) % 300) * SECTOR;
		o->voff = (uint64_t)(crash_rnd(&seed) % (NSECT - o->len / SECTOR)) * SECTOR;
		if (k % 7 == 3) /* straddle a block boundary */
			o->voff = (uint64_t)(1 + crash_rnd(&seed) % 3) * (1u << 20) - 2 * SECTOR;
		crash_fill(buf, o->id, o->voff / SECTOR, o->len / SECTOR);
		o->ev_start = crash_io_events(cio);
		assert_int_equal(l->ops->pwrite(l, buf, o->len, o->voff), 0);
		o->ev_end = crash_io_events(cio);
	}
	assert_int_equal(crash_close_as_flush(l, cio, &ops[nops++]), 0);
	nev = crash_io_events(cio);
	print_message("%s: %zu ops, %zu I/O events, %zu crash points x %zu modes\n", what, nops, nev, nev + 1,
		      sizeof modes / sizeof modes[0]);
	for (size_t after = 0; after <= nev; after++) {
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
			uint8_t *bytes;
			size_t len;
			assert_int_equal(crash_io_image(cio, after, modes[m], seed + (unsigned)after, &bytes, &len), 0);
			verify(w, ops, nops, after, bytes, len, m == 0, what);
			if (modes[m] == CRASH_DROP_ALL)
				maybe_dump(what, after, bytes, len);
			free(bytes);
		}
	}
	vhdx_io_close(cio);
	free(buf);
}

static void test_crash_dynamic(void **state)
{
	struct world w = { 0 };
	uint8_t *img;
	size_t len;

	make_image(&img, &len, NULL, NULL);
	run_workload(&w, img, len, 12345, "dynamic");
	free(img);
}

/* A child over a base whose every other MiB holds data: partial blocks must merge with the parent. */
static void test_crash_differencing(void **state)
{
	struct world w = { 0 };
	struct vhdx_io *bio;
	uint8_t *base, *child, *buf = malloc(1u << 20);
	size_t blen, clen;
	const uint8_t *d;
	FILE *f;

	make_image(&base, &blen, NULL, NULL);
	assert_int_equal(vhdx_io_mem_new(base, blen, "base", &bio), 0);
	assert_int_equal(vhdx_layer_open_io(bio, "base", VHDX_LAYER_WRITABLE, &w.base), 0);
	w.base_ids = calloc(NSECT, sizeof *w.base_ids);
	for (uint64_t mib = 0; mib < VSIZE >> 20; mib += 2) {
		crash_fill(buf, 7, mib << 11, 1u << 11);
		assert_int_equal(w.base->ops->pwrite(w.base, buf, 1u << 20, mib << 20), 0);
		for (uint64_t s = mib << 11; s < (mib + 1) << 11; s++)
			w.base_ids[s] = 7;
	}
	assert_int_equal(w.base->ops->flush(w.base), 0);
	/* the child's locator needs a real parent file to compute paths from */
	f = fopen("/tmp/libvhdx-crash-base.vhdx", "wb");
	assert_non_null(f);
	d = vhdx_io_mem_data(w.base->io, &blen);
	fwrite(d, 1, blen, f);
	fclose(f);
	{
		struct vhdx_io *io;
		struct vhdx_create_params p;
		memset(&p, 0, sizeof p);
		p.type = VHDX_TYPE_DIFFERENCING;
		p.virtual_size = VSIZE;
		p.block_size = 1u << 20;
		p.logical_sector_size = SECTOR;
		p.physical_sector_size = 4096;
		p.parent = "/tmp/libvhdx-crash-base.vhdx";
		memcpy(p.parent_linkage, w.base->identity, 16);
		assert_int_equal(vhdx_io_mem_new(NULL, 0, "child", &io), 0);
		assert_int_equal(vhdx_create_vhdx(io, "/tmp/libvhdx-crash-child.avhdx", &p), 0);
		d = vhdx_io_mem_data(io, &clen);
		child = malloc(clen);
		memcpy(child, d, clen);
		vhdx_io_close(io);
	}
	remove("/tmp/libvhdx-crash-base.vhdx");
	run_workload(&w, child, clen, 777, "differencing");
	vhdx_layer_close(w.base);
	free(w.base_ids);
	free(base);
	free(child);
	free(buf);
}

int main(void)
{
	disk = malloc(VSIZE);
	acked = calloc(NSECT, sizeof *acked);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_dynamic),
		cmocka_unit_test(test_crash_differencing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
