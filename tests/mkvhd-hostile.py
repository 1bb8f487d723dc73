#!/usr/bin/env python3
# mkvhd-hostile.py - writes a dynamic VHD (VHD spec v1.0) whose dynamic
# header declares far more BAT entries than the disk uses, as a sparse file,
# for tests/test-vhd-hostile.sh.  Written from the spec's field layout, not
# by libvhdx, so that the test does not check the code against itself: it is
# kept as an independent writer (issue #18 folded the other image builders
# into the C generator, tests/lib/vhdx_gen.h and gen_bytes.h).
#
#   mkvhd-hostile.py OUT RAW SIZE MAX_ENTRIES [--block-size N] [--raw-size N]
#                    [--tail-fill HEX] [--zero-block]
#
# SIZE is the footer's current size, MAX_ENTRIES the dynamic header's Max
# Table Entries.  The table sits at 0x600 and is MAX_ENTRIES * 4 bytes long
# (sector-rounded); the first data block follows it.  Block 0 is allocated
# and holds a seeded pseudo-random pattern (bitmap all ones), the other
# blocks inside the disk are unallocated.  In the table only the disk's
# entries and the rest of their sector are written (0xFFFFFFFF, entry 0 the
# block): past them the table is a hole of the sparse file, which reads as
# zeros, i.e. entries "allocated at sector 0" (what a hostile file would
# hold).  --tail-fill sets the entries past the disk's end in that first
# written part to HEX instead of 0xFFFFFFFF (writers must keep them);
# --zero-block makes block 0 hold zeros (compact releases it).  RAW receives the disk's expected bytes (SIZE bytes, or --raw-size
# when SIZE is too big to write out; '-' for none).
import random
import struct
import sys

SECTOR = 512


def checksum(buf, at):
    b = bytearray(buf)
    b[at:at + 4] = b"\0\0\0\0"
    return (~sum(b)) & 0xFFFFFFFF


def footer(size, dynhdr_off):
    f = bytearray(512)
    f[0:8] = b"conectix"
    struct.pack_into(">IIQI", f, 8, 2, 0x00010000, dynhdr_off, 0)
    f[28:32] = b"test"
    struct.pack_into(">I", f, 32, 0x00010000)
    f[36:40] = b"Wi2k"
    struct.pack_into(">QQ", f, 40, size, size)
    struct.pack_into(">HBB", f, 56, 65535, 16, 255)  # the maximum geometry: readers use the size
    struct.pack_into(">I", f, 60, 3)  # dynamic
    f[68:84] = bytes(range(1, 17))  # unique id
    struct.pack_into(">I", f, 64, checksum(f, 64))
    return bytes(f)


def dynhdr(table_off, max_entries, block_size):
    h = bytearray(1024)
    h[0:8] = b"cxsparse"
    struct.pack_into(">QQIII", h, 8, 0xFFFFFFFFFFFFFFFF, table_off, 0x00010000, max_entries, block_size)
    struct.pack_into(">I", h, 36, checksum(h, 36))
    return bytes(h)


def main():
    args = sys.argv[1:]
    block_size = 2 << 20
    raw_size = None
    if "--block-size" in args:
        i = args.index("--block-size")
        block_size = int(args[i + 1])
        del args[i:i + 2]
    tail_fill = 0xFFFFFFFF
    if "--tail-fill" in args:
        i = args.index("--tail-fill")
        tail_fill = int(args[i + 1], 0)
        del args[i:i + 2]
    zero_block = "--zero-block" in args
    if zero_block:
        args.remove("--zero-block")
    if "--raw-size" in args:
        i = args.index("--raw-size")
        raw_size = int(args[i + 1])
        del args[i:i + 2]
    out, raw, size, max_entries = args[0], args[1], int(args[2], 0), int(args[3], 0)
    if raw_size is None:
        raw_size = size
    table_off = 0x600
    blocks = -(-size // block_size)
    table_len = -(-(4 * max_entries) // SECTOR) * SECTOR
    block0 = table_off + table_len
    bitmap_len = -(-(block_size // SECTOR // 8) // SECTOR) * SECTOR
    data = bytes(block_size) if zero_block else random.Random(4242).randbytes(block_size)

    # the entries of the disk and the rest of their sector
    # (at most 1 Mi entries: a header whose table is too small for the disk
    # must not make this script write 16 GiB)
    n_written = min(max_entries, -(-max(blocks, 1) // 128) * 128, 1 << 20)
    n_ff = min(blocks, n_written)
    table = bytearray(b"\xff" * (4 * n_ff) + struct.pack(">I", tail_fill) * (n_written - n_ff))
    if blocks:
        struct.pack_into(">I", table, 0, block0 // SECTOR)
    with open(out, "wb") as f:
        f.write(footer(size, SECTOR))
        f.write(dynhdr(table_off, max_entries, block_size))
        f.write(table)
        f.seek(block0)
        f.write(b"\xff" * bitmap_len)
        f.write(data)
        f.write(footer(size, SECTOR))
    if raw != "-":
        with open(raw, "wb") as f:
            f.write(data[:min(raw_size, block_size)])
            f.truncate(raw_size)


main()
