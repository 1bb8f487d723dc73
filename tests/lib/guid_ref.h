/*
 * guid_ref.h - the well-known VHDX GUIDs as FORMAT.md 1.7 writes them, with
 * the names the library's messages give them: one table, written from the
 * specification, that the tests check the library's constants, its names
 * and its messages against.  Include it after the codec header.
 */
#ifndef VHDX_TESTS_GUID_REF_H
#define VHDX_TESTS_GUID_REF_H

#include <stdbool.h>
#include <stdint.h>

struct guid_ref {
	const uint8_t *guid;      /* the library's constant */
	const char *text;         /* its text in FORMAT.md 1.7 */
	const char *name;         /* what vhdx_known_guid_name() says (NULL: no name) */
	bool required_item;       /* a metadata item every VHDX must carry */
};

static const struct guid_ref GUID_REFS[] = {
	{ VHDX_GUID_BAT_REGION, "2DC27766-F623-4200-9D64-115E9BFD4A08", "BAT", false },
	{ VHDX_GUID_METADATA_REGION, "8B7CA206-4790-4B9A-B8FE-575F050F886E", "Metadata", false },
	{ VHDX_GUID_FILE_PARAMETERS, "CAA16737-FA36-4D43-B3B6-33F0AA44E76B", "File Parameters", true },
	{ VHDX_GUID_VIRTUAL_DISK_SIZE, "2FA54224-CD1B-4876-B211-5DBED83BF4B8", "Virtual Disk Size", true },
	{ VHDX_GUID_VIRTUAL_DISK_ID, "BECA12AB-B2E6-4523-93EF-C309E000C746", "Virtual Disk ID", true },
	{ VHDX_GUID_LOGICAL_SECTOR_SIZE, "8141BF1D-A96F-4709-BA47-F233A8FAAB5F", "Logical Sector Size", true },
	{ VHDX_GUID_PHYSICAL_SECTOR_SIZE, "CDA348C7-445D-4471-9CC9-E9885251C556", "Physical Sector Size", true },
	{ VHDX_GUID_PARENT_LOCATOR, "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C", "Parent Locator", false },
	{ VHDX_GUID_CHS_PARAMETERS, "DA02D7BC-3D3A-423C-AC88-2A36AB21479B", "CHS Parameters", false },
	{ VHDX_GUID_INCOMPLETE_FILE, "71CC85F0-1B69-4E28-9558-C3BF83AE75D3", "Incomplete File", false },
	{ VHDX_GUID_PMEM_LABEL, "10E1AE8A-4B7E-4169-A40F-CD70DE928393", "PMEM Label Storage Area", false },
	{ VHDX_GUID_PARENT_LOCATOR_TYPE, "B04AEFB7-D19E-4A81-B789-25B8E9445913", NULL, false },
};

#endif /* VHDX_TESTS_GUID_REF_H */
