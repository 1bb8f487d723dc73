/*
 * partitions.c - vhdx_partitions(): the partition table of an image's
 * virtual disk, read through vhdx_pread by the codecs of
 * codec/partition.h, copied into the caller's versioned structs.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "codec/partition.h"

/* The codecs' read callback: the whole range or an error. */
static int part_read(void *arg, void *buf, size_t len, uint64_t off)
{
	ssize_t n = vhdx_pread(arg, buf, len, off);

	if (n < 0)
		return (int)n;
	if ((size_t)n != len)
		return vhdx_err(EIO, "short read of %zu bytes at byte %" PRIu64 " (%zd read)", len, off, n);
	return 0;
}

/* Copies P into the caller's entry DST of DST_SIZE bytes (at least struct_size). */
static void part_copy_out(const struct vhdx_part *p, enum vhdx_part_scheme scheme, void *dst, size_t dst_size)
{
	struct vhdx_partition o;
	const char *type, *kind = vhdx_part_type_kind(p, scheme);

	memset(&o, 0, sizeof o);
	o.struct_size = sizeof o;
	o.number = p->number;
	o.flags = (p->flags & VHDX_PART_F_BOOTABLE ? VHDX_PARTITION_BOOTABLE : 0) |
		  (p->flags & VHDX_PART_F_LOGICAL ? VHDX_PARTITION_LOGICAL : 0) |
		  (p->flags & VHDX_PART_F_EXTENDED ? VHDX_PARTITION_EXTENDED : 0) |
		  (p->flags & VHDX_PART_F_UNREADABLE ? VHDX_PARTITION_UNREADABLE : 0);
	o.offset = p->start;
	o.size = p->size;
	o.mbr_type = p->mbr_type;
	memcpy(o.type_guid, p->type_guid, 16);
	memcpy(o.guid, p->guid, 16);
	o.attributes = p->attributes;
	type = scheme == VHDX_PART_GPT ? vhdx_part_gpt_type_name(p->type_guid) : vhdx_part_mbr_type_name(p->mbr_type);
	snprintf(o.type_name, sizeof o.type_name, "%s", type ? type : "");
	snprintf(o.kind, sizeof o.kind, "%s", kind ? kind : "");
	snprintf(o.name, sizeof o.name, "%s", p->name);
	snprintf(o.fs, sizeof o.fs, "%s", p->fs);
	snprintf(o.label, sizeof o.label, "%s", p->label);
	memcpy(dst, &o, VHDX_MIN(dst_size, sizeof o));
	memcpy(dst, &dst_size, sizeof dst_size); /* struct_size: what the caller's struct holds */
}

int vhdx_partitions(struct vhdx_image *img, struct vhdx_partition_table *table, struct vhdx_partition *parts,
		    unsigned max)
{
	struct vhdx_partition_table o;
	struct vhdx_part_table t;
	struct vhdx_info info;
	size_t stride = 0;
	int ret;

	if (!img || !table || table->struct_size < sizeof(size_t) || (max && !parts))
		return vhdx_err(EINVAL, "vhdx_partitions: set table->struct_size (and pass PARTS for MAX entries)");
	if (max) {
		stride = parts[0].struct_size;
		if (stride < offsetof(struct vhdx_partition, number) + sizeof(unsigned))
			return vhdx_err(EINVAL, "vhdx_partitions: parts[0].struct_size %zu is too small", stride);
	}
	info.struct_size = sizeof info;
	ret = vhdx_get_info(img, &info);
	if (ret < 0)
		return ret;
	ret = vhdx_part_table_read(part_read, img, info.virtual_size, info.logical_sector_size, true, &t);

	memset(&o, 0, sizeof o);
	o.struct_size = sizeof o;
	o.scheme = (enum vhdx_partition_scheme)t.scheme;
	o.sector_size = t.sector_size;
	o.mbr_signature = t.mbr_signature;
	memcpy(o.disk_guid, t.disk_guid, 16);
	o.from_backup = t.from_backup;
	snprintf(o.note, sizeof o.note, "%s", t.note);
	snprintf(o.fs, sizeof o.fs, "%s", t.fs);
	snprintf(o.label, sizeof o.label, "%s", t.label);
	o.count = ret < 0 ? 0 : t.n;
	vhdx_struct_copy_out(table, &o, sizeof o);
	if (ret < 0) {
		vhdx_part_table_free(&t);
		return ret;
	}
	for (unsigned i = 0; i < t.n && i < max; i++)
		part_copy_out(&t.parts[i], t.scheme, (char *)parts + (size_t)i * stride, stride);
	ret = (int)t.n;
	vhdx_part_table_free(&t);
	return ret;
}
