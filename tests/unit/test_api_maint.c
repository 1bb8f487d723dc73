/*
 * test_api_maint.c - the public doors of libvhdx/api_maint.c, through the
 * public header alone, on images vhdx_create() writes into a temporary
 * folder: vhdx_reparent_ex with and without a fault engine, and
 * vhdx_merge_pending on a record and without one.
 */
#include "config.h"

#include <stdlib.h>

#include "lib/unit.h"
#include "lib/api_chain.h"

static struct api_chain ch;

static int setup(void **st)
{
	return api_chain_make(&ch, "api-maint");
}

static int teardown(void **st)
{
	return api_chain_remove(&ch);
}

static void reparent_ex_takes_faults(void **st)
{
	struct vhdx_reparent_options ro;
	struct vhdx_faults *f;

	vhdx_reparent_options_init(&ro);
	assert_int_equal(ro.struct_size, sizeof ro);
	assert_ok(vhdx_faults_new(&f));
	assert_int_equal(vhdx_faults_add(f, "op=open err=EIO"), 1);
	ro.faults = f;
	assert_int_equal(vhdx_reparent_ex(ch.child, ch.base, &ro), -EIO);
	ro.faults = NULL;
	assert_ok(vhdx_reparent_ex(ch.child, ch.base, &ro));
	assert_ok(vhdx_reparent_ex(ch.child, ch.base, NULL));
	ro.struct_size = 1;
	assert_fails(vhdx_reparent_ex(ch.child, ch.base, &ro), -EINVAL, "struct_size");
	vhdx_faults_free(f);
}

static void merge_pending_reads_the_record(void **st)
{
	char rec[320], *anc = (char *)1;
	FILE *f;

	assert_int_equal(vhdx_merge_pending(ch.child, &anc), 0);
	assert_null(anc);
	snprintf(rec, sizeof rec, "%s.merging", ch.child);
	f = fopen(rec, "w");
	assert_non_null(f);
	fprintf(f, "libvhdx merge record 1\nancestor=%s\nlinkage={01234567-89ab-cdef-0123-456789abcdef}\n", ch.base);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(vhdx_merge_pending(ch.child, &anc), 1);
	assert_string_equal(anc, ch.base);
	free(anc);
	assert_int_equal(unlink(rec), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reparent_ex_takes_faults),
		cmocka_unit_test(merge_pending_reads_the_record),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
