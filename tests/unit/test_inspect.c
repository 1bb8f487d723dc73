/*
 * test_inspect.c - the inspect API (libvhdx/inspect.c and vhdx_open_parent
 * of image.c), through the public header only, on the chain that
 * vhdx_create() writes into a temporary folder (lib/api_chain.c):
 * vhdx_get_layer_info on each layer, vhdx_open_parent following one link,
 * vhdx_probe_file's bids, vhdx_info_doc's three shapes and vhdx_guid_text.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "lib/api_chain.h"

static struct api_chain ch;
static char text[300];

static int setup(void **st)
{
	FILE *f;

	if (api_chain_make(&ch, "inspect") < 0)
		return -1;
	snprintf(text, sizeof text, "%s/notes.txt", ch.dir);
	f = fopen(text, "w");
	if (!f)
		return -1;
	fputs("not an image\n", f);
	return fclose(f);
}

static int teardown(void **st)
{
	return api_chain_remove(&ch);
}

static struct vhdx_image *open_flags(const char *path, unsigned flags)
{
	struct vhdx_open_options oo;
	struct vhdx_image *img = NULL;

	vhdx_open_options_init(&oo);
	oo.flags = flags;
	assert_ok(vhdx_open(path, &oo, &img));
	return img;
}

static void layer_info_of_a_chain(void **st)
{
	struct vhdx_image *img = open_flags(ch.child, 0);
	struct vhdx_layer_info leaf = { .struct_size = sizeof leaf }, parent = { .struct_size = sizeof parent };

	assert_ok(vhdx_get_layer_info(img, 0, &leaf));
	assert_ok(vhdx_get_layer_info(img, 1, &parent));
	assert_string_equal(leaf.path, ch.child);
	assert_string_equal(parent.path, ch.base);
	assert_int_equal(leaf.format, VHDX_FORMAT_VHDX);
	assert_int_equal(leaf.type, VHDX_TYPE_DIFFERENCING);
	assert_int_equal(parent.type, VHDX_TYPE_DYNAMIC);
	assert_int_equal(leaf.virtual_size, 8u << 20);
	assert_true(leaf.has_parent);
	assert_false(parent.has_parent);
	/* the child links to what its parent is */
	assert_memory_equal(leaf.parent_linkage, parent.identity, 16);
	assert_non_null(leaf.parent_locator);
	assert_false(leaf.log_was_dirty);
	/* 8 payload blocks; a dynamic disk's first chunk holds them all before its bitmap entry (MS-VHDX 2.5) */
	assert_int_equal(parent.bat_entries, 8);
	assert_true(parent.chunk_ratio >= 8);
	assert_int_equal(parent.bat_foff % (1u << 20), 0);
	assert_fails(vhdx_get_layer_info(img, 2, &leaf), -ENOENT, "no layer 2");
	leaf.struct_size = 0;
	assert_fails(vhdx_get_layer_info(img, 0, &leaf), -EINVAL, "struct_size");
	assert_ok(vhdx_close(img));
}

/* A caller built against a shorter struct gets its part only. */
static void layer_info_short_struct(void **st)
{
	struct vhdx_image *img = open_flags(ch.base, VHDX_OPEN_NO_PARENT);
	struct vhdx_layer_info li;

	memset(&li, 0xa5, sizeof li);
	li.struct_size = offsetof(struct vhdx_layer_info, type);
	assert_ok(vhdx_get_layer_info(img, 0, &li));
	assert_string_equal(li.path, ch.base);
	assert_int_equal(li.format, VHDX_FORMAT_VHDX);
	assert_int_equal(((const unsigned char *)&li)[offsetof(struct vhdx_layer_info, type)], 0xa5);
	assert_ok(vhdx_close(img));
}

static void open_parent_follows_one_link(void **st)
{
	struct vhdx_image *img = open_flags(ch.child, VHDX_OPEN_NO_PARENT), *p = NULL;
	struct vhdx_layer_info pl = { .struct_size = sizeof pl }, cl = { .struct_size = sizeof cl };
	struct vhdx_info info = { .struct_size = sizeof info };

	assert_ok(vhdx_open_parent(img, NULL, &p));
	assert_ok(vhdx_get_layer_info(p, 0, &pl));
	assert_ok(vhdx_get_layer_info(img, 0, &cl));
	assert_string_equal(pl.path, ch.base);
	assert_memory_equal(cl.parent_linkage, pl.identity, 16);
	assert_ok(vhdx_get_info(p, &info));
	assert_int_equal(info.layers, 1);
	assert_int_equal(info.writable, 0);
	/* the base has no parent to open */
	assert_fails(vhdx_open_parent(p, NULL, &img), -EINVAL, "not a differencing image");
	assert_ok(vhdx_close(p));
	assert_ok(vhdx_close(img));
}

static void probe_file_bids(void **st)
{
	char missing[320];

	snprintf(missing, sizeof missing, "%s/missing.vhdx", ch.dir);
	assert_int_equal(vhdx_probe_file(ch.base), 1);
	assert_int_equal(vhdx_probe_file(ch.child), 1);
	assert_int_equal(vhdx_probe_file(text), 0);
	assert_int_equal(vhdx_probe_file(missing), -ENOENT);
}

static void info_doc_shapes(void **st)
{
	struct vhdx_image *img = open_flags(ch.base, 0);
	struct vhdx_info_doc_options o;
	char *json = NULL, *doc = NULL;
	size_t n;

	/* the default document is vhdx_info_json's */
	assert_ok(vhdx_info_json(img, 0, &json));
	assert_ok(vhdx_info_doc(img, NULL, &doc));
	assert_string_equal(doc, json);
	free(doc);
	/* left open: the same bytes without the closing brace and newline */
	vhdx_info_doc_options_init(&o);
	o.flags = VHDX_INFO_OPEN;
	assert_ok(vhdx_info_doc(img, &o, &doc));
	n = strlen(doc);
	assert_int_equal(n + 2, strlen(json));
	assert_memory_equal(doc, json, n);
	free(doc);
	/* text: the indented form, with the chain error when one is given */
	o.flags = VHDX_INFO_TEXT;
	o.chain_error = "parent not found";
	assert_ok(vhdx_info_doc(img, &o, &doc));
	assert_true(doc[0] != '{');
	assert_non_null(strstr(doc, "chain_error: parent not found"));
	free(doc);
	o.flags = 0x100;
	assert_fails(vhdx_info_doc(img, &o, &doc), -EINVAL, "unknown flags");
	free(json);
	assert_ok(vhdx_close(img));
}

static void guid_text_and_type_names(void **st)
{
	static const uint8_t g[16] = { 0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0x78, 0x56,
				       0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67 };
	char s[VHDX_GUID_TEXT_SIZE];

	vhdx_guid_text(g, s);
	assert_string_equal(s, "12345678-1234-5678-9abc-def001234567");
	assert_string_equal(vhdx_type_name(VHDX_TYPE_FIXED), "fixed");
	assert_string_equal(vhdx_type_name(VHDX_TYPE_DIFFERENCING), "differencing");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(layer_info_of_a_chain),
		cmocka_unit_test(layer_info_short_struct),
		cmocka_unit_test(open_parent_follows_one_link),
		cmocka_unit_test(probe_file_bids),
		cmocka_unit_test(info_doc_shapes),
		cmocka_unit_test(guid_text_and_type_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
