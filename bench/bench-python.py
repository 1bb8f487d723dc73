#!/usr/bin/env python3
"""bench-python.py - pyvhdx against pyvhdi and the raw file (issue 19): figures, not a test.

Builds a fully allocated dynamic VHDX (1 GiB by default, 32 MiB blocks, random
bytes) and its raw twin (`vhdx convert -O raw`) in a temporary folder, then
measures in one run, caches warm, each reader after one untimed pass, the
readers taking turns within each run:

  seq-1M     sequential 1 MiB reads of the whole disk (MiB/s)
  rand-4K    random 4 KiB-aligned 4 KiB reads (IOPS)

through pyvhdx (Image.pread), through pyvhdi (python3-libvhdi,
read_buffer_at_offset) and of the raw twin with os.pread; each figure is the
median of --runs runs.  Targets: pyvhdx >= 2x pyvhdi, and >= 0.8 of the raw
file for 1 MiB reads.

--slow-seq N limits pyvhdi's sequential runs to the first N bytes of the
disk (for slow libvhdi builds; default: the whole disk, like the others).

Usage: PYTHONPATH=DIR-WITH-pyvhdx bench/bench-python.py [--size 1G] [--runs 3]
           [--rand-ops 200000] [--slow-seq N] [--dir /var/tmp] [--vhdx build/tools/vhdx] [--json]
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20


def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1].upper()] if s[-1].upper() in mult else int(s)


def make_images(d, size, vhdx):
    import pyvhdx
    img_path, raw_path = os.path.join(d, "bench.vhdx"), os.path.join(d, "bench.raw")
    subprocess.run([vhdx, "create", "--size", str(size), img_path], check=True)
    rnd = random.Random(19)
    with pyvhdx.open(img_path, writable=True) as img:
        chunk = bytes(rnd.getrandbits(8) for _ in range(64 * 1024)) * 16  # 1 MiB, not compressible per block
        for off in range(0, size, MiB):
            img.pwrite(chunk[off // MiB % 16:] + chunk[:off // MiB % 16], off)
    with open(raw_path, "wb") as out:
        subprocess.run([vhdx, "convert", "-O", "raw", img_path, "-"], check=True, stdout=out)
    os.sync()
    return img_path, raw_path


def seq(read, size):
    t = time.perf_counter()
    for off in range(0, size, MiB):
        read(MiB, off)
    return size / MiB / (time.perf_counter() - t)


def rand(read, offsets):
    t = time.perf_counter()
    for off in offsets:
        read(4096, off)
    return len(offsets) / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1G")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rand-ops", type=int, default=200000)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--vhdx", default=shutil.which("vhdx") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build", "tools", "vhdx"))
    ap.add_argument("--slow-seq", default=None, help="bytes of pyvhdi's sequential runs (default: the whole disk)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    size = parse_size(a.size)
    load = open("/proc/loadavg").read().strip() if os.path.exists("/proc/loadavg") else "?"

    import pyvhdx
    try:
        import pyvhdi
    except ImportError:
        pyvhdi = None
    d = tempfile.mkdtemp(prefix="bench-python.", dir=a.dir)
    try:
        img_path, raw_path = make_images(d, size, a.vhdx)
        rng = random.Random(4)
        offsets = [rng.randrange(0, size // 4096) * 4096 for _ in range(a.rand_ops)]
        readers = {}
        img = pyvhdx.open(img_path)
        readers["pyvhdx"] = lambda n, off: img.pread(off, n)
        if pyvhdi is not None:
            vf = pyvhdi.file()
            vf.open(img_path)
            readers["pyvhdi"] = vf.read_buffer_at_offset
        fd = os.open(raw_path, os.O_RDONLY)
        readers["raw os.pread"] = lambda n, off: os.pread(fd, n, off)
        seq_len = {name: min(size, parse_size(a.slow_seq)) if name == "pyvhdi" and a.slow_seq else size
                   for name in readers}
        for name, read in readers.items():
            seq(read, seq_len[name])  # untimed: warm the page cache and the reader
        # the readers take turns within each run, so that a slower moment of the
        # machine (another process, the host taking memory back) falls on all of them
        seqs = {name: [] for name in readers}
        rands = {name: [] for name in readers}
        for _ in range(a.runs):
            for name, read in readers.items():
                seqs[name].append(seq(read, seq_len[name]))
            for name, read in readers.items():
                rands[name].append(rand(read, offsets))
        results = {name: {"seq_1m_mib_s": round(statistics.median(seqs[name]), 1),
                          "rand_4k_iops": round(statistics.median(rands[name]), 1)} for name in readers}
        img.close()
        os.close(fd)
    finally:
        shutil.rmtree(d, ignore_errors=True)

    ours, raw, theirs = results["pyvhdx"], results["raw os.pread"], results.get("pyvhdi")
    rows = [
        ("seq-1M vs raw", ours["seq_1m_mib_s"], raw["seq_1m_mib_s"], ">=0.80", "MiB/s, os.pread of the raw twin"),
        ("rand-4K vs raw", ours["rand_4k_iops"], raw["rand_4k_iops"], "-", "IOPS, os.pread of the raw twin"),
    ]
    if theirs:
        rows += [
            ("seq-1M vs pyvhdi", ours["seq_1m_mib_s"], theirs["seq_1m_mib_s"], ">=2.00", "MiB/s, pyvhdi, same image"),
            ("rand-4K vs pyvhdi", ours["rand_4k_iops"], theirs["rand_4k_iops"], ">=2.00", "IOPS, pyvhdi, same image"),
        ]
    if a.json:
        print(json.dumps({"size": size, "runs": a.runs, "rand_ops": a.rand_ops, "load": load,
                          "results": results}, indent=1))
        return 0
    print("bench-python --size %s --runs %d --rand-ops %d; python %s; load average before: %s"
          % (a.size, a.runs, a.rand_ops, sys.version.split()[0], load))
    print("%-18s %12s %12s %7s %7s %s" % ("figure", "pyvhdx", "baseline", "ratio", "target", "met  unit, baseline"))
    for name, o, b, target, unit in rows:
        ratio = o / b if b else float("inf")
        met = "-" if target == "-" else ("yes" if ratio >= float(target[2:]) else "NO")
        print("%-18s %12.1f %12.1f %7.3f %7s %-4s %s" % (name, o, b, ratio, target, met, unit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
