"""Fixtures of the pyvhdx tests: the conformance images (decompressed once per
session), the `vhdx` tool of the build tree, and small chains made with it.

Environment (tests/test-python.sh sets it): VHDX (the tool), VHDX_SHARED
(the shared/ folder, default ../shared beside the source tree),
PYVHDX_TEST_LONG=1 to hash the disks larger than 2 GiB too.
"""
import csv
import lzma
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("VHDX_SHARED") or os.path.join(os.path.dirname(SRC), "shared")
CONFORMANCE = os.path.join(SHARED, "conformance")
LONG = os.environ.get("PYVHDX_TEST_LONG") == "1"
#: past this size a disk is checked through its map unless PYVHDX_TEST_LONG=1 (hashing 10 GiB takes 30 s here)
QUICK_LIMIT = 2 << 30


def manifest():
    """The rows of MANIFEST.tsv (dicts), or [] without the conformance images."""
    path = os.path.join(CONFORMANCE, "MANIFEST.tsv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


ROWS = manifest()
HASHED = [r for r in ROWS if r["raw_sha256"] != "-"]


@pytest.fixture(scope="session")
def vhdx_tool():
    tool = os.environ.get("VHDX") or shutil.which("vhdx")
    if not tool or not os.access(tool, os.X_OK):
        pytest.skip("the vhdx tool was not found (set VHDX=path/to/tools/vhdx)")
    return tool


@pytest.fixture(scope="session")
def conformance(tmp_path_factory):
    """conformance(name) -> the path of the decompressed image NAME (without .xz)."""
    if not ROWS:
        pytest.skip("conformance images not found at %s" % CONFORMANCE)
    d = tmp_path_factory.mktemp("conformance")

    def get(name):
        out = d / name
        if not out.exists():
            with lzma.open(os.path.join(CONFORMANCE, name + ".xz")) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        return str(out)
    return get


@pytest.fixture(params=HASHED, ids=[r["file"] for r in HASHED])
def hashed_image(request, conformance):
    """Each conformance image whose disk the manifest hashes, decompressed:
    (its MANIFEST.tsv row, its name without .xz, its path, its virtual size)."""
    row = request.param
    name = row["file"][:-3]
    return row, name, conformance(name), int(row["virtual_size"])


def run(*args):
    """Runs a command; returns its stdout (bytes); fails the test with its stderr."""
    p = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        pytest.fail("%s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr.decode(errors="replace")))
    return p.stdout


@pytest.fixture
def chain3(tmp_path, vhdx_tool):
    """A 3-layer VHDX chain base.vhdx <- mid.avhdx <- leaf.avhdx (8 MiB) with data in each layer.

    Returns (folder, [leaf, mid, base]).
    """
    import pyvhdx
    base, mid, leaf = (str(tmp_path / n) for n in ("base.vhdx", "mid.avhdx", "leaf.avhdx"))
    run(vhdx_tool, "create", "--size", "8M", "--block-size", "1M", base)
    with pyvhdx.open(base, writable=True) as img:
        img.pwrite(b"\x11" * (3 << 20), 0)
        img.pwrite(b"base-tail" * 100, (8 << 20) - 900)
    run(vhdx_tool, "create", "--parent", base, mid)
    with pyvhdx.open(mid, writable=True) as img:
        img.pwrite(b"\x22" * 4096, 1 << 20)
        img.pwrite(b"mid" * 1000, 5 << 20)
    run(vhdx_tool, "create", "--parent", mid, leaf)
    with pyvhdx.open(leaf, writable=True) as img:
        img.pwrite(b"\x33" * 512, (1 << 20) + 512)
        img.pwrite(b"leaf" * 300, 7 << 20)
    return str(tmp_path), [leaf, mid, base]


class CountingFile(object):
    """A file-like object over a real file that counts its calls (read/readinto/seek/tell)."""

    def __init__(self, path):
        self._f = open(path, "rb")
        self.name = path
        self.calls = {"read": 0, "readinto": 0, "seek": 0, "tell": 0}
        self.closed_by_us = False

    def read(self, n=-1):
        self.calls["read"] += 1
        return self._f.read(n)

    def readinto(self, b):
        self.calls["readinto"] += 1
        return self._f.readinto(b)

    def seek(self, off, whence=0):
        self.calls["seek"] += 1
        return self._f.seek(off, whence)

    def tell(self):
        self.calls["tell"] += 1
        return self._f.tell()

    def close(self):
        self.closed_by_us = True
        self._f.close()
