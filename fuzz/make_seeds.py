#!/usr/bin/env python3
"""make_seeds.py - writes the seed corpora of fuzz/corpus/ (run by hand, the
result is committed; see fuzz/README).

  fuzz/make_seeds.py [--conf DIR] [--gen DIR]

Image seeds are written in the compact "sparse" form of fuzz/image.c: the
non-zero 4 KiB pages of an image (up to a byte budget, metadata first, so a
10 GiB image becomes a few KiB), with the checksum-fixing flags set so that
mutations keep passing the CRCs.  Sources: the conformance images (--conf,
decompressed, e.g. /tmp/conf), images made by qemu-img and by `vhdx create`
/ `vhdx write` (--gen, a folder of ready images), and hand-made locator
items, VHD dynamic headers and fault rules.
"""
import argparse
import os
import struct
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
PAGE = 4096
FIX_VHDX, FIX_LOG, FIX_VHD, WRITE = 1, 2, 4, 8


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def vhdx_ranges(b, size):
    """The ranges a VHDX open needs: file identifier, headers and region
    tables, every region (metadata, BAT) of the first valid region table,
    and the log of the headers (returned apart)."""
    need = [(0, 320 << 10), (size - PAGE, PAGE)]
    logs = []
    for hoff in (64 << 10, 128 << 10):
        if b[hoff:hoff + 4] == b"head":
            ll, lo = struct.unpack_from("<IQ", b, hoff + 68)
            logs.append((lo, ll))
    for roff in (192 << 10, 256 << 10):
        if b[roff:roff + 4] == b"regi":
            n = struct.unpack_from("<I", b, roff + 8)[0]
            for k in range(min(n, 64)):
                fo, ln = struct.unpack_from("<QI", b, roff + 16 + 32 * k + 16)
                need.append((fo, ln))
            break
    return need, logs


def vhd_ranges(b, size):
    """The ranges a VHD open needs: footer and its copy, dynamic header, BAT, locator data."""
    need = [(0, 512), (size - PAGE, PAGE)]
    f = b[size - 512:]
    if f[:8] == b"conectix":
        doff = struct.unpack_from(">Q", f, 16)[0]
        if doff < size and b[doff:doff + 8] == b"cxsparse":
            need.append((doff, 1024))
            toff, n = struct.unpack_from(">QI", b, doff + 16)
            need.append((toff, 4 * n))
            for k in range(8):
                code, _, ln, _, off = struct.unpack_from(">IIIIQ", b, doff + 576 + 24 * k)
                if code:
                    need.append((off, ln))
    return need, []


def sparse(path, flags, budget, choice=0, with_log=False, fill=True):
    """The sparse form of image PATH: every non-zero page of the ranges the
    open needs (None when they do not fit in BUDGET bytes), then further
    non-zero pages in file order while the budget lasts; runs of pages are
    merged into one record."""
    b = open(path, "rb").read()
    size = len(b)
    need, logs = (vhdx_ranges if b[:8] == b"vhdxfile" else vhd_ranges)(b, size)
    if with_log:
        need += logs
    pages = {}
    for off in range(0, size, PAGE):
        pg = b[off:off + PAGE]
        if pg.strip(b"\0"):
            pages[off] = pg
    chosen, used = {}, 0
    for start, ln in need:
        off = start - start % PAGE
        while off < start + ln and off < size:
            if off in pages and off not in chosen:
                chosen[off] = pages[off]
                used += len(pages[off])
            off += PAGE
    if used > budget:
        return None
    for off in sorted(pages) if fill else []:
        if used + PAGE > budget:
            break
        if off not in chosen:
            chosen[off] = pages[off]
            used += len(pages[off])
    recs = []
    for off in sorted(chosen):
        pg = chosen[off]
        if recs and recs[-1][0] + len(recs[-1][1]) == off:
            recs[-1] = (recs[-1][0], recs[-1][1] + pg)
        else:
            recs.append((off, pg))
    data = b"VXFZ" + bytes([flags, choice, 0, 0]) + struct.pack("<Q", size)
    for off, pg in recs:
        data += struct.pack("<QI", off, len(pg)) + pg
    return data


def vhdx_locator(pairs):
    """A VHDX parent locator item (MS-VHDX 2.6.2.6) of (key, value) pairs."""
    hdr = uuid.UUID("b04aefb7-d19e-4a81-b789-25b8e9445913").bytes_le + struct.pack("<HH", 0, len(pairs))
    blob = b""
    base = len(hdr) + 12 * len(pairs)
    ents = b""
    for k, v in pairs:
        kb, vb = k.encode("utf-16-le"), v.encode("utf-16-le")
        ko = base + len(blob)
        blob += kb
        vo = base + len(blob)
        blob += vb
        ents += struct.pack("<IIHH", ko, vo, len(kb), len(vb))
    return hdr + ents + blob


def vhd_dynhdr(locs, parent_name="parent.vhd"):
    """A VHD dynamic header (1024 bytes, valid checksum) followed by the data of
    LOCS [(code, bytes)], whose offsets point after the header in this buffer."""
    h = bytearray(1024)
    h[0:8] = b"cxsparse"
    h[8:16] = b"\xff" * 8
    struct.pack_into(">QIII", h, 16, 1536 + 4096, 0x00010000, 4, 2 << 20)
    h[40:56] = uuid.UUID("12345678-1234-5678-9abc-def012345678").bytes
    struct.pack_into(">I", h, 56, 0x2a000000)
    name = parent_name.encode("utf-16-be")[:512]
    h[64:64 + len(name)] = name
    data = b""
    for i, (code, b) in enumerate(locs):
        off = 1024 + len(data)
        struct.pack_into(">IIIIQ", h, 576 + 24 * i, code, 512, len(b), 0, off)
        data += b + b"\0" * (-len(b) % 512)
    s = (~sum(h[:36] + h[40:])) & 0xFFFFFFFF
    struct.pack_into(">I", h, 36, s)
    return bytes(h) + data


def locator_seeds(conf):
    link = "{" + str(uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")) + "}"
    out("fuzz_locator", "vhdx-relative", vhdx_locator([("parent_linkage", link), ("relative_path", ".\\base.vhdx")]))
    out("fuzz_locator", "vhdx-all-paths", vhdx_locator([
        ("parent_linkage", link), ("parent_linkage2", link.upper()),
        ("relative_path", "..\\dir\\base.vhdx"),
        ("volume_path", "\\\\?\\Volume{26a21bda-a627-11d7-9931-806e6f6e6963}\\vm\\base.vhdx"),
        ("absolute_win32_path", "\\\\?\\C:\\vm\\base.vhdx")]))
    out("fuzz_locator", "vhdx-no-linkage", vhdx_locator([("relative_path", "base.vhdx")]))
    out("fuzz_locator", "vhdx-unicode", vhdx_locator([("parent_linkage", link), ("relative_path", "D\u00e9j\u00e0\\\U0001F4BE.vhdx")]))
    out("fuzz_locator", "vhd-w2ru-w2ku", vhd_dynhdr([
        (0x57327275, ".\\base.vhd".encode("utf-16-le")),
        (0x57326B75, "C:\\vm\\base.vhd".encode("utf-16-le"))]))
    out("fuzz_locator", "vhd-wi2r-macx", vhd_dynhdr([
        (0x57693272, b".\\base.vhd"), (0x4D616358, b"file://localhost/Users/a/base.vhd"),
        (0x4D616320, b"\0\0alias")]))
    if conf:
        # the locator item of a Hyper-V differencing image, found by its type GUID
        p = os.path.join(conf, "hyperv-win10-differencing-orphan.avhdx")
        if os.path.exists(p):
            b = open(p, "rb").read()
            g = uuid.UUID("b04aefb7-d19e-4a81-b789-25b8e9445913").bytes_le
            i = b.find(g)
            if i >= 0:
                n = struct.unpack_from("<H", b, i + 18)[0]
                end = 20 + 12 * n
                for k in range(n):
                    ko, vo, kl, vl = struct.unpack_from("<IIHH", b, i + 20 + 12 * k)
                    end = max(end, ko + kl, vo + vl)
                out("fuzz_locator", "hyperv-avhdx-locator", b[i:i + end])
        # the dynamic header of a diskpart differencing VHD with its locator data moved behind it
        p = os.path.join(conf, "diskpart-fat-differencing-orphan.vhd")
        if os.path.exists(p):
            b = open(p, "rb").read()
            doff = struct.unpack_from(">Q", b, len(b) - 512 + 16)[0]
            h = bytearray(b[doff:doff + 1024])
            data = b""
            for k in range(8):
                code, space, ln, _, off = struct.unpack_from(">IIIIQ", h, 576 + 24 * k)
                if code:
                    struct.pack_into(">Q", h, 576 + 24 * k + 16, 1024 + len(data))
                    data += b[off:off + ln] + b"\0" * (-ln % 512)
            s = (~sum(h[:36] + h[40:])) & 0xFFFFFFFF
            struct.pack_into(">I", h, 36, s)
            out("fuzz_locator", "diskpart-vhd-dynhdr", bytes(h) + data)


def rule_seeds():
    rules = {
        "basic": "op=read voff=1048576-1114111 err=EIO   # the second MiB's first 64 KiB\n",
        "crash": "op=write after=5 torn=3 crash\nop=flush nth=2 crash\n",
        "mixed": "op=read voff=2M+64K flip=1 seed=11\nop=read voff=3M+4K err=EIO\n"
                 "op=read voff=4M+4K delay=400\nop=read voff=5M+4K err=ETIMEDOUT once\n",
        "structs": "op=read struct=header nth=1 flip=1\nop=write struct=bat nth=1 crash\n"
                   "op=write struct=log nth=1 crash\nop=read struct=payload,bitmap every=3 prob=0.5 seed=7 err=EIO\n",
        "files": "# comment line\n\n  file=*.avhdx op=any off=0x30000+64K short=512 err=ENOSPC\n"
                 "op=truncate off=1G err=EFBIG\nop=open nth=5\nop=close err=EIO\n",
        "numbers": "op=write off=4096 delay=2 every=5 after=10\nop=read off=1T-2T err=7\n"
                   "op=read voff=0-0xffffffffffffffff prob=1 seed=0x10 flip=64\n",
    }
    for name, text in rules.items():
        out("fuzz_fault_rules", name, text.encode())


def image_seeds(conf, gen):
    srcs = []
    if conf:
        for n in sorted(os.listdir(conf)):
            if n.endswith((".vhdx", ".avhdx", ".vhd")):
                srcs.append(os.path.join(conf, n))
    if gen:
        for n in sorted(os.listdir(gen)):
            srcs.append(os.path.join(gen, n))
    def put(target, name, data):
        if data is None:
            print("%s: %s does not fit the budget, left out" % (target, name), file=sys.stderr)
        else:
            out(target, name, data)

    for p in srcs:
        name = os.path.basename(p)
        with open(p, "rb") as f:
            head = f.read(8)
        if head == b"vhdxfile":
            put("fuzz_vhdx_open", name, sparse(p, FIX_VHDX | FIX_LOG, 128 << 10))
            if name.startswith(("lib-", "qemu-", "dirtylog")):
                put("fuzz_vhdx_open", name + "-write", sparse(p, FIX_VHDX | FIX_LOG | WRITE, 128 << 10, choice=0x21))
            if "dirtylog" in name or "log" in name:
                put("fuzz_vhdx_log", name, sparse(p, FIX_VHDX | FIX_LOG, 1200 << 10, with_log=True, fill=False))
        else:
            put("fuzz_vhd_open", name, sparse(p, FIX_VHD, 128 << 10))
            if name.startswith(("lib-", "qemu-", "badsum")):
                put("fuzz_vhd_open", name + "-write", sparse(p, FIX_VHD | WRITE, 128 << 10, choice=0x21))
            if os.path.getsize(p) <= 128 << 10:
                out("fuzz_vhd_open", "raw-" + name, open(p, "rb").read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conf")
    ap.add_argument("--gen")
    a = ap.parse_args()
    locator_seeds(a.conf)
    rule_seeds()
    image_seeds(a.conf, a.gen)


if __name__ == "__main__":
    main()
