/*
 * test_open_errors.c - an I/O error while a layer is opened is an I/O error
 * (issue #15 item 9), on the mem backend under the fault backend:
 *   - the VHD probe's read of the last 512 bytes failing with EIO: a fixed
 *     VHD used to be "not a VHDX or VHD image", a dynamic one hid it behind
 *     the footer read that follows; both now fail with EIO; a VHDX (whose
 *     signature settles the format) makes no such read at all, so there is
 *     nothing to swallow;
 *   - a header read failing with ETIMEDOUT, ENOTCONN, ESTALE or EACCES used
 *     to fall back to the other header as if this one were damaged; the
 *     open now fails with that errno;
 *   - the same for a region table read.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "format/format.h"
#include "format/vhd_create.h"
#include "format/vhdx_create.h"
#include "io/fault.h"
#include "io/io.h"

#define M (1ull << 20)

/* A new image in a mem io: FMT "vhd" or "vhdx", fixed or dynamic. */
static struct vhdx_io *create(const char *fmt, enum vhdx_disk_type type)
{
	struct vhdx_create_params p;
	struct vhdx_io *io;

	memset(&p, 0, sizeof p);
	p.type = type;
	p.virtual_size = 8 * M;
	p.block_size = (uint32_t)M;
	p.logical_sector_size = 512;
	p.physical_sector_size = 512;
	assert_int_equal(vhdx_io_mem_new(NULL, 0, "new", &io), 0);
	if (!strcmp(fmt, "vhd"))
		assert_ok(vhdx_create_vhd(io, "/tmp/libvhdx-unit-open.vhd", &p, NULL));
	else
		assert_ok(vhdx_create_vhdx(io, "/tmp/libvhdx-unit-open.vhdx", &p));
	return io;
}

static char last_msg[1024]; /* the open's message */

/* Opens IO (taken) under RULE; returns the open's result (message in last_msg), *HITS the rule's hits. */
static int open_with(struct vhdx_io *io, const char *rule, uint64_t *hits)
{
	struct vhdx_faults *f;
	struct vhdx_layer *l = NULL;
	struct vhdx_io *fio;
	uint64_t matched;
	int ret;

	assert_ok(vhdx_faults_new(&f));
	assert_int_equal(vhdx_faults_add(f, rule), 1);
	assert_ok(vhdx_io_fault_new(f, io, &fio));
	vhdx_err_clear();
	ret = vhdx_layer_open_io(fio, "img", 0, &l);
	snprintf(last_msg, sizeof last_msg, "%s", ret < 0 ? vhdx_errmsg() : "");
	if (ret == 0)
		vhdx_layer_close(l);
	assert_ok(vhdx_faults_rule_hits(f, 1, &matched, hits));
	vhdx_faults_free(f);
	return ret;
}

static void test_vhd_probe_eio(void **st)
{
	uint64_t hits;

	(void)st;
	/* the probe is the first footer read of the open */
	assert_int_equal(open_with(create("vhd", VHDX_TYPE_FIXED), "op=read struct=footer nth=1 err=EIO", &hits), -EIO);
	if (!strstr(last_msg, "img: new: reading footer at offset 0x800000 (512 bytes): injected EIO"))
		fail_msg("message: %s", last_msg);
	assert_int_equal(hits, 1);
	assert_int_equal(open_with(create("vhd", VHDX_TYPE_DYNAMIC), "op=read struct=footer nth=1 err=EIO", &hits), -EIO);
	if (!strstr(last_msg, "reading footer at offset") || !strstr(last_msg, "injected EIO"))
		fail_msg("message: %s", last_msg);
	assert_int_equal(hits, 1);
	/* other errnos are I/O errors too */
	assert_int_equal(open_with(create("vhd", VHDX_TYPE_FIXED), "op=read struct=footer nth=1 err=ETIMEDOUT", &hits),
			 -ETIMEDOUT);
	/* a VHDX never reads a VHD footer: no fault to swallow */
	assert_int_equal(open_with(create("vhdx", VHDX_TYPE_DYNAMIC), "op=read struct=footer err=EIO", &hits), 0);
	assert_int_equal(hits, 0);
}

static void test_header_read_errors(void **st)
{
	static const char *const errs[] = { "ETIMEDOUT", "ENOTCONN", "ESTALE", "EACCES", "EIO" };
	static const int codes[] = { ETIMEDOUT, ENOTCONN, ESTALE, EACCES, EIO };
	char rule[128];
	uint64_t hits;

	(void)st;
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		for (int nth = 1; nth <= 2; nth++) {
			/* header 1 or header 2 */
			snprintf(rule, sizeof rule, "op=read struct=header nth=%d err=%s", nth, errs[i]);
			assert_int_equal(open_with(create("vhdx", VHDX_TYPE_DYNAMIC), rule, &hits), -codes[i]);
			assert_int_equal(hits, 1);
			snprintf(rule, sizeof rule, "op=read struct=region nth=%d err=%s", nth, errs[i]);
			assert_int_equal(open_with(create("vhdx", VHDX_TYPE_DYNAMIC), rule, &hits), -codes[i]);
			assert_int_equal(hits, 1);
		}
	}
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_vhd_probe_eio),
	  cmocka_unit_test(test_header_read_errors))
