/*
 * partition_types.c - names of the partition types Windows and Linux use:
 * GPT type GUIDs (UEFI 2.x and the Discoverable Partitions Specification;
 * Microsoft's from its GPT documentation) and MBR type bytes.
 */
#include "config.h"

#include <string.h>

#include "codec/guid.h"
#include "codec/partition.h"

static const struct {
	const char *guid;
	const char *name;
	const char *kind;
} gpt_types[] = {
	{ "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "Microsoft basic data", NULL },
	{ "e3c9e316-0b5c-4db8-817d-f92df00215ae", "Microsoft reserved", "msr" },
	{ "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI system", NULL },
	{ "de94bba4-06d1-4d40-a16a-bfd50179d6ac", "Windows recovery environment", NULL },
	{ "5808c8aa-7e8f-42e0-85d2-e1e90434cfb3", "Microsoft LDM metadata", "ldm" },
	{ "af9b60a0-1431-4f62-bc68-3311714a69ad", "Microsoft LDM data", "ldm" },
	{ "e75caf8f-f680-4cee-afa3-b001e56efc2d", "Microsoft Storage Spaces", "storage-spaces" },
	{ "558d43c5-a1ac-43c0-aac8-d1472b2923d1", "Microsoft Storage Replica", NULL },
	{ "0fc63daf-8483-4772-8e79-3d69d8477de4", "Linux filesystem", NULL },
	{ "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "Linux swap", NULL },
	{ "e6d6d379-f507-44c2-a23c-238f2a3df928", "Linux LVM", NULL },
	{ "a19d880f-05fc-4d3b-a006-743f0f84911e", "Linux RAID", NULL },
	{ "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "Linux root (x86-64)", NULL },
	{ "44479540-f297-41b2-9af7-d131d5f0458a", "Linux root (x86)", NULL },
	{ "b921b045-1df0-41c3-af44-4c6f280d3fae", "Linux root (ARM-64)", NULL },
	{ "933ac7e1-2eb4-4f13-b844-0e14e2aef915", "Linux home", NULL },
	{ "3b8f8425-20e0-4f3b-907f-1a25a76f98e8", "Linux server data", NULL },
	{ "bc13c2ff-59e6-4262-a352-b275fd6f7172", "Linux extended boot", NULL },
	{ "ca7d7ccb-63ed-4c53-861c-1742536059cc", "Linux LUKS", NULL },
	{ "21686148-6449-6e6f-744e-656564454649", "BIOS boot", NULL },
	{ "024dee41-33e7-11d3-9d69-0008c781f39f", "MBR partition scheme", NULL },
	{ "516e7cb4-6ecf-11d6-8ff8-00022d09712b", "FreeBSD data", NULL },
	{ "48465300-0000-11aa-aa11-00306543ecac", "Apple HFS/HFS+", NULL },
	{ "7c3457ef-0000-11aa-aa11-00306543ecac", "Apple APFS", NULL },
};

static const struct {
	uint8_t type;
	const char *name;
} mbr_types[] = {
	{ 0x01, "FAT12" },
	{ 0x04, "FAT16 <32M" },
	{ 0x05, "Extended" },
	{ 0x06, "FAT16" },
	{ 0x07, "HPFS/NTFS/exFAT" },
	{ 0x0b, "W95 FAT32" },
	{ 0x0c, "W95 FAT32 (LBA)" },
	{ 0x0e, "W95 FAT16 (LBA)" },
	{ 0x0f, "W95 Ext'd (LBA)" },
	{ 0x11, "Hidden FAT12" },
	{ 0x12, "Compaq diagnostics" },
	{ 0x14, "Hidden FAT16 <32M" },
	{ 0x16, "Hidden FAT16" },
	{ 0x17, "Hidden HPFS/NTFS" },
	{ 0x1b, "Hidden W95 FAT32" },
	{ 0x1c, "Hidden W95 FAT32 (LBA)" },
	{ 0x1e, "Hidden W95 FAT16 (LBA)" },
	{ 0x27, "Hidden NTFS WinRE" },
	{ 0x42, "Windows dynamic (LDM)" },
	{ 0x82, "Linux swap" },
	{ 0x83, "Linux" },
	{ 0x85, "Linux extended" },
	{ 0x8e, "Linux LVM" },
	{ 0xa5, "FreeBSD" },
	{ 0xa6, "OpenBSD" },
	{ 0xa9, "NetBSD" },
	{ 0xaf, "HFS / HFS+" },
	{ 0xde, "Dell Utility" },
	{ 0xee, "GPT protective" },
	{ 0xef, "EFI (FAT-12/16/32)" },
	{ 0xfd, "Linux raid autodetect" },
};

/* Index of GUID in gpt_types, or -1. */
static int gpt_index(const uint8_t guid[16])
{
	char text[VHDX_GUID_STRLEN];

	vhdx_guid_format(guid, text);
	for (unsigned i = 0; i < sizeof gpt_types / sizeof gpt_types[0]; i++)
		if (strcmp(text, gpt_types[i].guid) == 0)
			return (int)i;
	return -1;
}

const char *vhdx_part_gpt_type_name(const uint8_t guid[16])
{
	int i = gpt_index(guid);

	return i < 0 ? NULL : gpt_types[i].name;
}

const char *vhdx_part_mbr_type_name(uint8_t type)
{
	for (unsigned i = 0; i < sizeof mbr_types / sizeof mbr_types[0]; i++)
		if (mbr_types[i].type == type)
			return mbr_types[i].name;
	return NULL;
}

const char *vhdx_part_type_kind(const struct vhdx_part *p, enum vhdx_part_scheme scheme)
{
	int i;

	if (scheme == VHDX_PART_GPT) {
		i = gpt_index(p->type_guid);
		return i < 0 ? NULL : gpt_types[i].kind;
	}
	if (p->flags & VHDX_PART_F_EXTENDED)
		return "extended";
	if (p->mbr_type == 0x42)
		return "ldm";
	if (p->mbr_type == 0xee)
		return "protective";
	return NULL;
}
