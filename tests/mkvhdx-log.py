#!/usr/bin/env python3
# mkvhdx-log.py - edits the headers and the log of an existing VHDX the way
# a hostile or damaged file would have them, for tests/test-hostile-log.sh.
# Written from MS-VHDX (2.2.2 headers, 2.3.1 log entries), not by libvhdx,
# so that the tests do not check the code against itself.  Both headers are
# rewritten with valid CRC-32C checksums.
#
#   mkvhdx-log.py FILE --log-offset N
#       sets LogOffset to N in both headers (LogGuid unchanged)
#   mkvhdx-log.py FILE --entry SEQ --last N [--flushed N]
#       sets a new LogGuid in both headers and writes one log entry at log
#       offset 0: SequenceNumber SEQ, Tail 0, no descriptors,
#       FlushedFileOffset (default: the file size rounded down to 1 MiB)
#       and LastFileOffset N
import struct
import sys


def crc32c(data):
    poly = 0x82F63B78
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def with_crc(buf, at):
    b = bytearray(buf)
    b[at:at + 4] = b'\0\0\0\0'
    struct.pack_into('<I', b, at, crc32c(bytes(b)))
    return bytes(b)


HEADERS = (0x10000, 0x20000)
HSIZE = 4096


def main():
    args = sys.argv[1:]
    path = args.pop(0)
    opts = {}
    while args:
        k = args.pop(0)
        opts[k] = int(args.pop(0), 0)
    with open(path, 'r+b') as f:
        f.seek(0, 2)
        size = f.tell()
        hdrs = []
        for off in HEADERS:
            f.seek(off)
            hdrs.append(bytearray(f.read(HSIZE)))
        log_guid = None
        if '--entry' in opts:
            log_guid = bytes(range(0xa0, 0xb0))
        for h in hdrs:
            assert h[0:4] == b'head', 'not a VHDX header'
            if '--log-offset' in opts:
                struct.pack_into('<Q', h, 72, opts['--log-offset'])
            if log_guid:
                h[48:64] = log_guid
        for off, h in zip(HEADERS, hdrs):
            f.seek(off)
            f.write(with_crc(h, 4))
        if log_guid:
            log_off = struct.unpack_from('<Q', hdrs[0], 72)[0]
            flushed = opts.get('--flushed', size // (1 << 20) * (1 << 20))
            e = bytearray(4096)
            # signature, checksum, EntryLength, Tail, SequenceNumber,
            # DescriptorCount, reserved, LogGuid, FlushedFileOffset, LastFileOffset
            struct.pack_into('<4sIIIQII16sQQ', e, 0, b'loge', 0, 4096, 0, opts['--entry'], 0, 0,
                             log_guid, flushed, opts['--last'])
            f.seek(log_off)
            f.write(with_crc(e, 4))


main()
