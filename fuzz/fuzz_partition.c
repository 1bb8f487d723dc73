/*
 * fuzz_partition.c - libFuzzer target for the partition-table codecs and
 * the file-system probe (codec/partition_*.c, codec/fs_probe.c): the input
 * is a whole disk, read through a callback, with 512- and 4096-byte
 * sectors and with the probe on.  Besides "no crash, no leak, no read out
 * of bounds", the result must make sense: every partition inside the disk,
 * numbers ascending and unique, GPT numbers within the entry count, MBR
 * logicals from 5, and every failure with a message.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "codec/partition.h"
#include "fuzz.h"

struct input {
	const uint8_t *data;
	size_t size;
};

static int input_read(void *arg, void *buf, size_t len, uint64_t off)
{
	const struct input *in = arg;

	if (off > in->size || len > in->size - off)
		FUZZ_FAIL("the codec asked for %zu bytes at %llu of a %zu-byte disk", len, (unsigned long long)off,
			  in->size);
	memcpy(buf, in->data + off, len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t sizes[] = { 512, 4096 };
	struct input in = { data, size };

	for (unsigned s = 0; s < 2; s++) {
		struct vhdx_part_table t;
		int ret;

		vhdx_err_clear();
		ret = vhdx_part_table_read(input_read, &in, size, sizes[s], true, &t);
		if (ret < 0 && !vhdx_errmsg()[0])
			FUZZ_FAIL("vhdx_part_table_read failed (%d) without a message", ret);
		for (unsigned i = 0; ret == 0 && i < t.n; i++) {
			const struct vhdx_part *p = &t.parts[i];

			if (p->start > size || p->size > size - p->start || p->size == 0)
				FUZZ_FAIL("partition %u (%llu+%llu) is not inside the %zu-byte disk", p->number,
					  (unsigned long long)p->start, (unsigned long long)p->size, size);
			if (i && p->number <= t.parts[i - 1].number)
				FUZZ_FAIL("partition numbers not ascending: %u after %u", p->number, t.parts[i - 1].number);
			if (t.scheme == VHDX_PART_MBR && ((p->flags & VHDX_PART_F_LOGICAL) ? p->number < 5 : p->number > 4))
				FUZZ_FAIL("MBR partition %u numbered against its kind", p->number);
			if (strlen(p->name) >= sizeof p->name || strlen(p->fs) >= sizeof p->fs ||
			    strlen(p->label) >= sizeof p->label)
				FUZZ_FAIL("unterminated string in partition %u", p->number);
			(void)vhdx_part_type_kind(p, t.scheme);
			(void)vhdx_part_gpt_type_name(p->type_guid);
			(void)vhdx_part_mbr_type_name(p->mbr_type);
		}
		vhdx_part_table_free(&t);
	}
	return 0;
}
