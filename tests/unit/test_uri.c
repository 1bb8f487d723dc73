/*
 * test_uri.c - L0, NBD URIs as image names (io/uri.c): telling a URI from
 * a path, and resolving a parent's relative locator path against a child
 * opened by URI (same server, same query, the export's folder), with the
 * cases a hostile locator can bring (absolute paths, climbing above the
 * top, characters that need percent-encoding).
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "io/io.h"

static void expect_resolve(const char *uri, const char *rel, bool folder, const char *want)
{
	char *got = vhdx_io_uri_resolve(uri, rel, folder);

	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_is_uri(void **state)
{
	(void)state;
	assert_true(vhdx_io_is_uri("nbd://host/disk.vhdx"));
	assert_true(vhdx_io_is_uri("nbds://host:10809/disk.vhdx"));
	assert_true(vhdx_io_is_uri("nbd+unix:///disk.vhdx?socket=/tmp/s"));
	assert_true(vhdx_io_is_uri("nbds+unix:///?socket=/tmp/s"));
	assert_true(vhdx_io_is_uri("nbd+vsock://2/x"));
	assert_false(vhdx_io_is_uri("disk.vhdx"));
	assert_false(vhdx_io_is_uri("/srv/nbd://x"));
	assert_false(vhdx_io_is_uri("nbd:/x"));
	assert_false(vhdx_io_is_uri("http://host/disk.vhdx"));
	assert_false(vhdx_io_is_uri(""));
	assert_false(vhdx_io_is_uri(NULL));
}

static void test_resolve_flat(void **state)
{
	(void)state;
	/* the usual case: nbdkit file dir=FOLDER, a locator ".\parent.vhdx" */
	expect_resolve("nbd+unix:///child.avhdx?socket=/tmp/s", ".\\base.vhdx", false,
		       "nbd+unix:///base.vhdx?socket=/tmp/s");
	expect_resolve("nbd://host:10809/child.avhdx", "base.vhdx", false, "nbd://host:10809/base.vhdx");
	expect_resolve("nbds://host/child.avhdx?tls-certificates=/c#frag", "base.vhdx", false,
		       "nbds://host/base.vhdx?tls-certificates=/c#frag");
	/* a URI with no path at all */
	expect_resolve("nbd://host", "base.vhdx", false, "nbd://host/base.vhdx");
	/* './' and empty components are dropped */
	expect_resolve("nbd://h/c", "././/b.vhdx", false, "nbd://h/b.vhdx");
}

static void test_resolve_folders(void **state)
{
	(void)state;
	expect_resolve("nbd://h/vm/disks/child.avhdx", "base.vhdx", false, "nbd://h/vm/disks/base.vhdx");
	expect_resolve("nbd://h/vm/disks/child.avhdx", "..\\golden\\base.vhdx", false, "nbd://h/vm/golden/base.vhdx");
	expect_resolve("nbd://h/vm/child.avhdx", "..\\..\\base.vhdx", false, NULL); /* above the top */
	expect_resolve("nbd://h/child.avhdx", "../base.vhdx", false, NULL);
	/* a search folder given as a URI: its export name is the folder */
	expect_resolve("nbd+unix:///?socket=/s", "base.vhdx", true, "nbd+unix:///base.vhdx?socket=/s");
	expect_resolve("nbd://h/parents", "base.vhdx", true, "nbd://h/parents/base.vhdx");
}

static void test_resolve_refuses_absolute(void **state)
{
	(void)state;
	expect_resolve("nbd://h/c.avhdx", "C:\\VMs\\base.vhdx", false, NULL);
	expect_resolve("nbd://h/c.avhdx", "\\\\?\\C:\\base.vhdx", false, NULL);
	expect_resolve("nbd://h/c.avhdx", "/srv/base.vhdx", false, NULL);
	expect_resolve("nbd://h/c.avhdx", "", false, NULL);
	expect_resolve("/local/c.avhdx", "base.vhdx", false, NULL);
}

static void test_resolve_encoding(void **state)
{
	(void)state;
	/* the child's name is decoded, the parent's encoded */
	expect_resolve("nbd://h/my%20vm/child%20disk.avhdx", "base disk#1?.vhdx", false,
		       "nbd://h/my%20vm/base%20disk%231%3F.vhdx");
	expect_resolve("nbd://h/%E4/c.avhdx", "\xc3\xa4.vhdx", false, "nbd://h/%E4/%C3%A4.vhdx");
}

UNIT_MAIN(NULL, NULL,
	  cmocka_unit_test(test_is_uri),
	  cmocka_unit_test(test_resolve_flat),
	  cmocka_unit_test(test_resolve_folders),
	  cmocka_unit_test(test_resolve_refuses_absolute),
	  cmocka_unit_test(test_resolve_encoding))
