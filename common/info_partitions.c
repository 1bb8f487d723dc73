/*
 * info_partitions.c - the "partitions" member of the info document
 * (`vhdx info`, vhdx_info_json): the table that vhdx_partitions() reads,
 * with one entry per partition (number, first byte, size, type, name,
 * file system, label); in text, a table.  Also the reader and the names
 * the vhdx commands use for --partition N (tools/parts.c).  Public API
 * alone: compiled into the library and into the tools.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libvhdx.h"
#include "common/info_partitions.h"

int vhdx_report_partitions_read(struct vhdx_image *img, struct vhdx_partition_table *t, struct vhdx_partition **parts)
{
	struct vhdx_partition *p = NULL;
	unsigned max = 0;
	int n;

	*parts = NULL;
	for (;;) {
		memset(t, 0, sizeof *t);
		t->struct_size = sizeof *t;
		if (p)
			p[0].struct_size = sizeof *p;
		n = vhdx_partitions(img, t, p, max);
		if (n < 0) {
			free(p);
			return n;
		}
		if ((unsigned)n <= max || n == 0)
			break;
		free(p);
		max = (unsigned)n;
		p = calloc(max, sizeof *p);
		if (!p)
			return -ENOMEM;
	}
	*parts = p;
	return 0;
}

const char *vhdx_report_scheme_name(enum vhdx_partition_scheme s)
{
	return s == VHDX_SCHEME_GPT ? "gpt" : s == VHDX_SCHEME_MBR ? "mbr" : "none";
}

const char *vhdx_report_partition_type(const struct vhdx_partition *p, enum vhdx_partition_scheme s, char *buf, size_t len)
{
	if (p->type_name[0])
		return p->type_name;
	if (s == VHDX_SCHEME_GPT) {
		char g[VHDX_GUID_TEXT_SIZE];

		vhdx_guid_text(p->type_guid, g);
		snprintf(buf, len, "%s", g);
	} else {
		snprintf(buf, len, "0x%02x", p->mbr_type);
	}
	return buf;
}


static void human(uint64_t b, char *buf, size_t len)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)b;
	unsigned i = 0;

	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.4g %s" : "%.0f %s", v, u[i]);
}

static void report_text(struct report *r, const struct vhdx_partition_table *t, const struct vhdx_partition *p,
			const char *err)
{
	FILE *f = r->f;
	const char *in = "  "; /* inside the report's top object */
	char g[VHDX_GUID_TEXT_SIZE], size[32], type[48];

	fprintf(f, "%spartitions: %s", in, vhdx_report_scheme_name(t->scheme));
	if (t->scheme != VHDX_SCHEME_NONE)
		fprintf(f, ", %" PRIu32 "-byte sectors", t->sector_size);
	if (t->scheme == VHDX_SCHEME_GPT) {
		vhdx_guid_text(t->disk_guid, g);
		fprintf(f, ", disk %s%s", g, t->from_backup ? ", READ FROM THE BACKUP GPT" : "");
	} else if (t->scheme == VHDX_SCHEME_MBR) {
		fprintf(f, ", signature 0x%08" PRIx32, t->mbr_signature);
	}
	fputc('\n', f);
	if (t->note[0])
		fprintf(f, "%s  note: %s\n", in, t->note);
	if (err)
		fprintf(f, "%s  error: %s\n", in, err);
	if (t->scheme == VHDX_SCHEME_NONE && t->fs[0])
		fprintf(f, "%s  whole disk: %s%s%s\n", in, t->fs, t->label[0] ? ", label " : "", t->label);
	if (!t->count)
		return;
	fprintf(f, "%s  %-3s %-14s %-10s %-30s %-20s %-9s %s\n", in, "#", "first byte", "size", "type", "name", "fs", "label");
	for (unsigned i = 0; i < t->count; i++) {
		human(p[i].size, size, sizeof size);
		fprintf(f, "%s  %-3u %-14" PRIu64 " %-10s %-30s %-20s %-9s %s\n", in, p[i].number, p[i].offset, size,
			vhdx_report_partition_type(&p[i], t->scheme, type, sizeof type), p[i].name[0] ? p[i].name : "-",
			p[i].flags & VHDX_PARTITION_EXTENDED ? "(logicals)" : p[i].flags & VHDX_PARTITION_UNREADABLE ? "(unreadable)"
			: p[i].fs[0] ? p[i].fs : "-", p[i].label);
	}
}

void vhdx_report_partitions(struct report *r, struct vhdx_image *img)
{
	struct vhdx_partition_table t;
	struct vhdx_partition *p = NULL;
	char *err = NULL, type[48];
	int ret = vhdx_report_partitions_read(img, &t, &p);

	if (ret < 0)
		err = strdup(vhdx_errmsg()[0] ? vhdx_errmsg() : strerror(-ret));
	if (!r->json) {
		report_text(r, &t, p, err);
		goto out;
	}
	report_begin(r, "partitions");
	report_str(r, "scheme", vhdx_report_scheme_name(t.scheme));
	report_u64(r, "sector_size", t.sector_size);
	if (t.scheme == VHDX_SCHEME_GPT)
		report_guid(r, "disk_guid", t.disk_guid);
	if (t.scheme == VHDX_SCHEME_MBR)
		report_u64(r, "mbr_signature", t.mbr_signature);
	report_bool(r, "from_backup", t.from_backup);
	report_str(r, "note", t.note);
	if (err)
		report_str(r, "error", err);
	report_str(r, "fs", t.fs);
	report_str(r, "label", t.label);
	report_begin_list(r, "entries");
	for (unsigned i = 0; i < t.count; i++) {
		report_begin(r, NULL);
		report_u64(r, "number", p[i].number);
		report_u64(r, "first_byte", p[i].offset);
		report_u64(r, "size", p[i].size);
		report_u64(r, "start_sector", p[i].offset / t.sector_size);
		report_u64(r, "sectors", p[i].size / t.sector_size);
		report_str(r, "type", vhdx_report_partition_type(&p[i], t.scheme, type, sizeof type));
		if (t.scheme == VHDX_SCHEME_GPT) {
			report_guid(r, "type_guid", p[i].type_guid);
			report_guid(r, "guid", p[i].guid);
			report_u64(r, "attributes", p[i].attributes);
			report_str(r, "name", p[i].name);
		} else {
			report_u64(r, "mbr_type", p[i].mbr_type);
			report_bool(r, "bootable", p[i].flags & VHDX_PARTITION_BOOTABLE);
			report_bool(r, "logical", p[i].flags & VHDX_PARTITION_LOGICAL);
			report_bool(r, "extended", p[i].flags & VHDX_PARTITION_EXTENDED);
		}
		report_str(r, "kind", p[i].kind);
		report_bool(r, "unreadable", p[i].flags & VHDX_PARTITION_UNREADABLE);
		report_str(r, "fs", p[i].fs);
		report_str(r, "label", p[i].label);
		report_end(r);
	}
	report_end_list(r);
	report_end(r);
out:
	free(err);
	free(p);
}
