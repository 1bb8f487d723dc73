#!/usr/bin/env python3
"""volumes.py - helpers of tests/test-volumes.sh (independent of libvhdx).

  compare INFO.json SFDISK.json     vhdx info --json agrees with sfdisk --json:
                                    scheme, sector size, disk id, and per partition
                                    number, start, size, type, uuid, name, bootable
  slices MNT SFDISK.json            every MNT/pN is the slice of MNT/disk that
                                    sfdisk names (extended partitions: no file),
                                    and MNT holds no other pN
  gpt-damage RAW SS WHAT            damages the GPT of a raw disk in place and
                                    prints the exact message vhdx must give:
                                    WHAT = primary-header | arrays | past-end
  mbr-damage RAW WHAT               WHAT = ebr-loop | past-end (a sfdisk-made MBR
                                    with an extended partition)
"""
import json
import os
import struct
import sys
import zlib


def load(path):
    with open(path) as f:
        return json.load(f)


def part_number(node):
    digits = ''
    for ch in reversed(node):
        if not ch.isdigit():
            break
        digits = ch + digits
    return int(digits)


def compare(info_path, sfdisk_path):
    info = load(info_path)['partitions']
    pt = load(sfdisk_path)['partitiontable']
    ss = pt.get('sectorsize', 512)
    want_scheme = {'gpt': 'gpt', 'dos': 'mbr'}[pt['label']]
    assert info['scheme'] == want_scheme, (info['scheme'], want_scheme)
    assert info['sector_size'] == ss, (info['sector_size'], ss)
    assert 'error' not in info, info.get('error')
    if want_scheme == 'gpt':
        assert info['disk_guid'] == pt['id'].lower(), (info['disk_guid'], pt['id'])
    else:
        assert info['mbr_signature'] == int(pt['id'], 16), (info['mbr_signature'], pt['id'])
    ours = {e['number']: e for e in info['entries']}
    theirs = {part_number(p['node']): p for p in pt.get('partitions', [])}
    assert sorted(ours) == sorted(theirs), (sorted(ours), sorted(theirs))
    for n, p in theirs.items():
        e = ours[n]
        assert e['start_sector'] == p['start'] and e['first_byte'] == p['start'] * ss, (n, e, p)
        assert e['sectors'] == p['size'] and e['size'] == p['size'] * ss, (n, e, p)
        if want_scheme == 'gpt':
            assert e['type_guid'] == p['type'].lower(), (n, e['type_guid'], p['type'])
            assert e['guid'] == p['uuid'].lower(), (n, e['guid'], p['uuid'])
            assert e['name'] == p.get('name', ''), (n, e['name'], p.get('name'))
        else:
            assert e['mbr_type'] == int(p['type'], 16), (n, e['mbr_type'], p['type'])
            assert e['bootable'] == bool(p.get('bootable', False)), (n, e, p)
            assert e['extended'] == (int(p['type'], 16) in (5, 0xf, 0x85)), (n, e, p)
    print('%d partitions agree' % len(theirs))


def slices(mnt, sfdisk_path):
    pt = load(sfdisk_path)['partitiontable']
    ss = pt.get('sectorsize', 512)
    want = set()
    with open(os.path.join(mnt, 'disk'), 'rb') as disk:
        for p in pt.get('partitions', []):
            n = part_number(p['node'])
            if pt['label'] == 'dos' and int(p['type'], 16) in (5, 0xf, 0x85):
                assert not os.path.exists(os.path.join(mnt, 'p%d' % n)), 'extended partition %d has a file' % n
                continue
            want.add('p%d' % n)
            disk.seek(p['start'] * ss)
            expect = disk.read(p['size'] * ss)
            with open(os.path.join(mnt, 'p%d' % n), 'rb') as f:
                got = f.read()
            assert os.path.getsize(os.path.join(mnt, 'p%d' % n)) == p['size'] * ss, n
            assert got == expect, 'p%d differs from bytes %d+%d of disk' % (n, p['start'] * ss, p['size'] * ss)
    have = set(x for x in os.listdir(mnt) if x.startswith('p') and x[1:].isdigit())
    assert have == want, (sorted(have), sorted(want))
    print('%d partition files equal their slices' % len(want))


def gpt_header(d, off):
    return list(struct.unpack_from('<8sIIIIQQQQ16sQIII', d, off))


def put_gpt_header(d, off, h):
    h[3] = 0
    struct.pack_into('<8sIIIIQQQQ16sQIII', d, off, *h)
    crc = zlib.crc32(bytes(d[off:off + h[2]]))
    struct.pack_into('<I', d, off + 16, crc)


def gpt_damage(raw, ss, what):
    ss = int(ss)
    with open(raw, 'rb') as f:
        d = bytearray(f.read())
    p = gpt_header(d, ss)
    backup_off = p[6] * ss
    b = gpt_header(d, backup_off)
    if what == 'primary-header':
        d[ss + 40] ^= 1
        h = bytes(d[ss:ss + 92])
        crc = zlib.crc32(h[:16] + b'\0\0\0\0' + h[20:])
        print('primary GPT header at byte %d: CRC-32 0x%08x does not match the stored 0x%08x; '
              'read the backup GPT header at byte %d and its entry array at byte %d'
              % (ss, crc, p[3], backup_off, b[10] * ss))
    elif what == 'arrays':
        msgs = []
        for h, name in ((p, 'primary'), (b, 'backup')):
            off = h[10] * ss
            d[off + 60] ^= 0x20
            crc = zlib.crc32(bytes(d[off:off + h[11] * h[12]]))
            msgs.append('%s GPT entry array at byte %d: CRC-32 0x%08x does not match 0x%08x in its header'
                        % (name, off, crc, h[13]))
        print('no valid GPT: %s; and: %s' % tuple(msgs))
    elif what == 'past-end':
        nsec = len(d) // ss
        for h, hoff in ((p, ss), (b, backup_off)):
            off = h[10] * ss
            first = struct.unpack_from('<Q', d, off + 32)[0]
            struct.pack_into('<Q', d, off + 40, nsec + 7)
            h[13] = zlib.crc32(bytes(d[off:off + h[11] * h[12]]))
            put_gpt_header(d, hoff, h)
        print('no valid GPT: primary GPT entry 1 (at byte %d): LBAs %d-%d lie outside the usable LBAs %d-%d (past the end); '
              'and: backup GPT entry 1 (at byte %d): LBAs %d-%d lie outside the usable LBAs %d-%d (past the end)'
              % (p[10] * ss, first, nsec + 7, p[7], p[8], b[10] * ss, first, nsec + 7, b[7], b[8]))
    else:
        raise SystemExit('unknown damage ' + what)
    with open(raw, 'r+b') as f:
        f.write(d)


def mbr_damage(raw, what):
    with open(raw, 'rb') as f:
        d = bytearray(f.read())
    entries = [struct.unpack_from('<B3xB3xII', d, 446 + 16 * i) for i in range(4)]
    if what == 'past-end':
        nsec = len(d) // 512
        slot = next(i for i, e in enumerate(entries) if e[1] not in (0, 5, 0xf, 0x85))
        first = entries[slot][2]
        size = nsec - first + 100
        struct.pack_into('<I', d, 446 + 16 * slot + 12, size)
        print('MBR entry %d at byte %d: sectors %d-%d lie past the end of the disk (%d sectors of 512 bytes)'
              % (slot + 1, 446 + 16 * slot, first, first + size - 1, nsec))
    elif what == 'ebr-loop':
        slot = next(i for i, e in enumerate(entries) if e[1] in (5, 0xf, 0x85))
        ext = entries[slot][2]
        chain = [ext]
        while True:
            link = struct.unpack_from('<B3xB3xII', d, chain[-1] * 512 + 446 + 16)
            if link[1] == 0:
                break
            chain.append(ext + link[2])
        assert len(chain) >= 2, 'the chain needs two EBRs'
        last = chain[-1] * 512
        # the last EBR links back to the second one
        struct.pack_into('<B3xB3xII', d, last + 446 + 16, 0, 5, chain[1] - ext, 10)
        print('EBR chain of extended partition %d: the link in the EBR at byte %d points back to the EBR at byte %d (a loop)'
              % (slot + 1, last, chain[1] * 512))
    else:
        raise SystemExit('unknown damage ' + what)
    with open(raw, 'r+b') as f:
        f.write(d)


def main():
    cmd = sys.argv[1]
    if cmd == 'compare':
        compare(sys.argv[2], sys.argv[3])
    elif cmd == 'slices':
        slices(sys.argv[2], sys.argv[3])
    elif cmd == 'gpt-damage':
        gpt_damage(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == 'mbr-damage':
        mbr_damage(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(__doc__)


if __name__ == '__main__':
    main()
