"""pyvhdx: the conformance images through a path, io.BytesIO and a counting
file object; the dirty log; info() against `vhdx info --json`; map();
parents from file objects; threads; exceptions; memory over many opens.
"""
import errno
import hashlib
import io
import json
import os
import random
import shutil
import threading
import time

import pytest

import pyvhdx
from conftest import LONG, QUICK_LIMIT, ROWS, CountingFile, run

MiB = 1 << 20
DIRTY = "dirtylog-10G.vhdx"


def sha256_of(img):
    """sha256 of the whole disk read through IMG's RawIOBase interface (readinto, 4 MiB at a time)."""
    h = hashlib.sha256()
    buf = bytearray(4 * MiB)
    view = memoryview(buf)
    img.seek(0)
    while True:
        n = img.readinto(buf)
        if not n:
            break
        h.update(view[:n])
    return h.hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def check_contents(img, row):
    """The disk reads to the manifest's raw_sha256.

    Hashing runs at ~0.4 GB/s on the test machines, so by default a disk
    larger than QUICK_LIMIT (the 10 GiB dirty log, the 127 GiB VHDs) is
    checked through its map instead: every data extent is read, and each
    zero extent reads as zeros at its first and last MiB.
    PYVHDX_TEST_LONG=1 hashes every disk whole.
    """
    size = int(row["virtual_size"])
    assert img.size == size
    if size > QUICK_LIMIT and not LONG:
        total = 0
        for e in img.map():
            assert e.start == total
            total += e.length
            if e.data:
                assert len(img.pread(e.start, e.length)) == e.length
            else:
                n = min(MiB, e.length)
                assert img.pread(e.start, n) == bytes(n)
                assert img.pread(e.start + e.length - n, n) == bytes(n)
        assert total == size
        return
    assert sha256_of(img) == row["raw_sha256"]


def same_disk(a, b, size):
    """Reads both images whole, 4 MiB at a time, and says whether they are byte-identical."""
    for off in range(0, size, 4 * MiB):
        if a.pread(off, 4 * MiB) != b.pread(off, 4 * MiB):
            return False
    return True


def test_conformance_reads(hashed_image):
    row, name, path, size = hashed_image
    quick = size > QUICK_LIMIT and not LONG
    with open(path, "rb") as f:
        data = f.read()
    cf = CountingFile(path)
    # through a path (hashed), through io.BytesIO and through a file object that counts its calls
    # (each compared with the path's bytes, or checked like it for the large disks)
    with pyvhdx.open(path) as img, pyvhdx.open(io.BytesIO(data)) as bio, pyvhdx.open(cf) as counted:
        assert img.format == row["format"]
        assert img.disk_type == row["type"]
        check_contents(img, row)
        for other in (bio, counted):
            if quick:
                check_contents(other, row)
            else:
                assert other.size == size and same_disk(img, other, size)
    # readinto is used, and the object is released with the image
    assert cf.calls["readinto"] > 0 and cf.calls["read"] == 0
    cf.close()
    # a read-only open never writes
    assert file_sha256(path) == row["file_sha256"]


def test_dirty_log_read_right_file_untouched(conformance):
    path = conformance(DIRTY)
    before = file_sha256(path)
    for source in (path, io.BytesIO(open(path, "rb").read())):
        with pyvhdx.open(source) as img:
            info = img.info()
            assert info["layers"][0]["log"]["state"] == "dirty, replayed"
            # 0xa5 for 0-18M (block 17 comes from the log's BAT entry), then zeros
            assert img.pread(17 * MiB, MiB) == b"\xa5" * MiB
            assert img.pread(0, 18 * MiB) == b"\xa5" * (18 * MiB)
            assert img.pread(18 * MiB, MiB) == bytes(MiB)
    assert file_sha256(path) == before
    assert before == [r for r in ROWS if r["file"] == DIRTY + ".xz"][0]["file_sha256"]


def held_by_us(doc):
    """The tool's document with the in_use facts that our own open causes taken
    out: while pyvhdx holds the image (a shared lock), `vhdx info` in another
    process sees every file of it in use for reading, and pyvhdx sees nobody."""
    assert doc.pop("in_use") == "read"
    for layer in doc["layers"]:
        assert layer.pop("in_use") == "read"
    return doc


def nobody_else(doc):
    assert doc.pop("in_use") is None
    for layer in doc["layers"]:
        assert layer.pop("in_use") is None
    return doc


def test_info_equals_vhdx_info_json(conformance, vhdx_tool, chain3):
    for row in ROWS:
        path = conformance(row["file"][:-3])
        try:
            img = pyvhdx.open(path)
        except pyvhdx.Error:
            continue  # the orphans and the bad checksums: see test_exceptions
        with img:
            assert nobody_else(img.info()) == held_by_us(json.loads(run(vhdx_tool, "info", "--json", path)))
            assert nobody_else(img.info(log=True)) == held_by_us(
                json.loads(run(vhdx_tool, "info", "--json", "--log", path)))
    leaf = chain3[1][0]
    with pyvhdx.open(leaf) as img:
        assert nobody_else(img.info()) == held_by_us(json.loads(run(vhdx_tool, "info", "--json", leaf)))


def test_properties_and_chain(chain3, vhdx_tool):
    folder, (leaf, mid, base) = chain3
    doc = json.loads(run(vhdx_tool, "info", "--json", leaf))
    with pyvhdx.open(leaf) as img:
        assert img.size == 8 * MiB == doc["virtual_size"]
        assert img.logical_sector_size == 512
        assert img.format == "vhdx" and img.disk_type == "differencing"
        assert img.identifier == doc["disk_id"]
        assert img.parent_identifier == doc["layers"][0]["parent"]["linkage"] == doc["layers"][1]["identity"]
        assert [layer["path"] for layer in img.chain] == [leaf, mid, base]
        assert [layer["type"] for layer in img.chain] == ["differencing", "differencing", "dynamic"]
    with pyvhdx.open(base) as img:
        assert img.parent_identifier is None and len(img.chain) == 1


def expected_chain3():
    disk = bytearray(8 * MiB)
    disk[0:3 * MiB] = b"\x11" * (3 * MiB)
    disk[8 * MiB - 900:] = b"base-tail" * 100
    disk[MiB:MiB + 4096] = b"\x22" * 4096
    disk[5 * MiB:5 * MiB + 3000] = b"mid" * 1000
    disk[MiB + 512:MiB + 1024] = b"\x33" * 512
    disk[7 * MiB:7 * MiB + 1200] = b"leaf" * 300
    return bytes(disk)


def test_raw_io_interface(chain3, tmp_path, vhdx_tool):
    leaf = chain3[1][0]
    want = expected_chain3()
    assert run(vhdx_tool, "convert", "-O", "raw", leaf, "-") == want
    with pyvhdx.open(leaf) as img:
        assert isinstance(img, io.RawIOBase)
        assert img.readable() and img.seekable() and not img.writable()
        assert img.seek(MiB + 500) == MiB + 500 and img.tell() == MiB + 500
        assert img.read(30) == want[MiB + 500:MiB + 530] and img.tell() == MiB + 530
        assert img.seek(-10, io.SEEK_END) == 8 * MiB - 10 and img.read() == want[-10:]
        assert img.read(5) == b""
        img.seek(100)
        assert img.seek(20, io.SEEK_CUR) == 120
        # io.BufferedReader and shutil.copyfileobj over it
        img.seek(0)
        br = io.BufferedReader(img, 65536)
        assert br.read() == want
        br.detach()  # else the reader closes the image when it goes away
        img.seek(0)
        out = io.BytesIO()
        shutil.copyfileobj(img, out, MiB)
        assert out.getvalue() == want
        assert img.pread(7 * MiB, 1200) == want[7 * MiB:7 * MiB + 1200]
        # lengths past the end are clipped before anything is allocated
        assert img.pread(img.size - 10, 1 << 50) == want[-10:]
        assert img.pread(img.size + 5, 1 << 50) == b""
        with pytest.raises(io.UnsupportedOperation):
            img.write(b"x")
    assert img.closed
    with pytest.raises(ValueError):
        img.read(1)
    with pytest.raises(ValueError):
        img.pread(0, 1)


def test_map(chain3, vhdx_tool):
    leaf = chain3[1][0]
    with pyvhdx.open(leaf) as img:
        got = [(e.start, e.length, "data" if e.data else "zero", e.layer, e.file_offset)
               for e in img.map(layers=True)]
        want = [(e["offset"], e["length"], e["type"], e.get("layer"), e.get("file_offset"))
                for e in json.loads(run(vhdx_tool, "map", "--json", "--layers", leaf))]
        assert got == want
        assert {e[3] for e in got if e[2] == "data"} == {0, 1, 2}
        merged = list(img.map())
        assert sum(e.length for e in merged) == img.size
        assert all(a.data != b.data for a, b in zip(merged, merged[1:]))
        part = list(img.map(MiB, 4096, layers=True))
        assert part[0].start == MiB and sum(e.length for e in part) == 4096


def test_parents_from_file_objects(chain3):
    folder, (leaf, mid, base) = chain3
    want = expected_chain3()
    blobs = [open(p, "rb").read() for p in (leaf, mid, base)]
    # a list of file objects, one per layer below
    with pyvhdx.open(io.BytesIO(blobs[0]), parent=[io.BytesIO(blobs[1]), io.BytesIO(blobs[2])]) as img:
        assert img.read() == want
        assert len(img.chain) == 3
    # a callable given the locator entries, returning file objects or paths
    asked = []

    def open_parent(request):
        asked.append((request["depth"], request["entries"]))
        name = dict(request["entries"])["relative_path"].rpartition("\\")[2]
        return io.BytesIO(open(os.path.join(folder, name), "rb").read()) if name == "mid.avhdx" \
            else os.path.join(folder, name)
    with pyvhdx.open(io.BytesIO(blobs[0]), parent=open_parent) as img:
        assert img.read() == want
    assert [d for d, _ in asked] == [1, 2]
    assert dict(asked[0][1])["relative_path"] == ".\\mid.avhdx"
    # other Images as parents (their sources are used)
    with pyvhdx.open(mid) as pm, pyvhdx.open(base) as pb:
        with pyvhdx.open(leaf, parent=[pm, pb]) as img:
            assert img.read() == want
    # a path source with an explicit path parent uses libvhdx's own search and checks
    with pyvhdx.open(leaf, parent=mid, parent_dirs=[folder]) as img:
        assert img.read() == want
    # a wrong parent is refused: the identity is checked
    with pytest.raises(pyvhdx.CorruptImageError) as ei:
        pyvhdx.open(io.BytesIO(blobs[0]), parent=[io.BytesIO(blobs[2])])
    assert ei.value.errno == errno.EBADMSG and "wrong identity" in ei.value.strerror
    with pyvhdx.open(io.BytesIO(blobs[0]), parent=[io.BytesIO(blobs[2])], ignore_id_mismatch=True) as img:
        assert img.pread(MiB + 512, 512) == b"\x33" * 512


def test_writes(tmp_path, vhdx_tool):
    path = str(tmp_path / "w.vhdx")
    run(vhdx_tool, "create", "--size", "4M", "--block-size", "1M", path)
    with pyvhdx.open(path, writable=True) as img:
        assert img.writable()
        img.seek(1000)
        assert img.write(b"hello") == 5
        assert img.pwrite(b"\xee" * 4096, 2 * MiB) == 4096
        img.flush()
    assert run(vhdx_tool, "convert", "-O", "raw", path, "-")[1000:1005] == b"hello"
    # a writable file object
    bio = io.BytesIO(open(path, "rb").read())
    with pyvhdx.open(bio, writable=True) as img:
        img.pwrite(b"via-bytesio", 3 * MiB)
    with pyvhdx.open(io.BytesIO(bio.getvalue())) as img:
        assert img.pread(3 * MiB, 11) == b"via-bytesio"
        assert img.pread(2 * MiB, 4096) == b"\xee" * 4096
    # a source without write() cannot be opened writable
    cf = CountingFile(path)
    with pytest.raises(pyvhdx.Error) as ei:
        pyvhdx.open(cf, writable=True)
    assert ei.value.errno == errno.EROFS
    assert "cannot open writable: the source has no pwrite callback" in ei.value.strerror
    cf.close()


def test_threads_random_reads(chain3):
    want = expected_chain3()
    errors = []
    folder, (leaf, mid, base) = chain3
    for source, parent in ((leaf, None), (io.BytesIO(open(leaf, "rb").read()), [mid, io.BytesIO(open(base, "rb").read())])):
        with pyvhdx.open(source, parent=parent) as img:
            def worker(seed):
                rnd = random.Random(seed)
                try:
                    for _ in range(300):
                        off = rnd.randrange(0, img.size)
                        n = rnd.randrange(1, 70000)
                        if img.pread(off, n) != want[off:off + n]:
                            errors.append((seed, off, n))
                except Exception as exc:  # pragma: no cover - reported below
                    errors.append(exc)
            threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    assert errors == []


def test_reads_release_the_gil(conformance):
    """A long pread of a path image lets another Python thread run meanwhile."""
    path = conformance(DIRTY)
    with pyvhdx.open(path) as img:
        done = threading.Event()
        ticks = [0]

        def spin():
            while not done.is_set():
                ticks[0] += 1
        t = threading.Thread(target=spin)
        t.start()
        time.sleep(0.05)
        before = ticks[0]
        t0 = time.monotonic()
        buf = bytearray(256 * MiB)
        for _ in range(8):
            img._h.preadinto(buf, 1 << 30)
        elapsed = time.monotonic() - t0
        during = ticks[0] - before
        done.set()
        t.join()
    # holding the GIL for the reads would leave the spinner at most a few switch intervals
    assert during > 1000, "spinner advanced %d times in %.3f s of reads" % (during, elapsed)


class FailingFile(io.RawIOBase):
    """A readable file object whose reads past FAIL_FROM raise (a ValueError, or EXC)."""

    def __init__(self, data, fail_from, exc=None):
        self._b = io.BytesIO(data)
        self._fail_from = fail_from
        self._exc = exc

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, off, whence=0):
        return self._b.seek(off, whence)

    def readinto(self, buf):
        if self._b.tell() + len(buf) > self._fail_from:
            if self._exc:
                raise self._exc
            raise ValueError("sector %d of the evidence is unreadable" % (self._b.tell() // 512))
        return self._b.readinto(buf)


def test_exceptions(conformance, chain3):
    assert issubclass(pyvhdx.Error, OSError)
    for cls in (pyvhdx.MissingParentError, pyvhdx.CorruptImageError, pyvhdx.ImageInUseError):
        assert issubclass(cls, pyvhdx.Error)
    orphan = conformance("hyperv-win10-differencing-orphan.avhdx")
    with pytest.raises(pyvhdx.MissingParentError) as ei:
        pyvhdx.open(orphan)
    e = ei.value
    assert e.errno == errno.ENOENT
    assert 'parent "Generation 1_49C4BAF3-4B25-4406-8C4B-D39E65C32385.avhdx" (identity {ff34003b-11ed-4cf8-a166-b2be05e20b80}) not found' in e.strerror
    assert os.path.join(os.path.dirname(orphan), "Generation 1_49C4BAF3-4B25-4406-8C4B-D39E65C32385.avhdx") in e.paths_tried
    assert "C:\\Users\\Public\\Documents\\Hyper-V\\Virtual hard disks\\Generation 1_49C4BAF3-4B25-4406-8C4B-D39E65C32385.avhdx" in e.paths_tried
    bad = conformance("badsum-dynamic.vhd")
    with pytest.raises(pyvhdx.CorruptImageError) as ei:
        pyvhdx.open(bad)
    assert ei.value.errno == errno.EBADMSG
    assert "footer: checksum mismatch" in ei.value.strerror and bad in ei.value.strerror
    assert str(ei.value).startswith("[Errno %d] %s: " % (errno.EBADMSG, bad))
    with pytest.raises(pyvhdx.CorruptImageError) as ei:
        pyvhdx.open(io.BytesIO(b"not an image" * 100))
    assert "not a VHDX or VHD image" in ei.value.strerror
    # a file object whose reads fail: EIO naming the structure, the offset and the object's error
    leaf = chain3[1][2]  # the base: data at 0-3 MiB
    data = open(leaf, "rb").read()
    with pyvhdx.open(leaf) as img:
        first_data = next(e for e in img.map(layers=True) if e.data).file_offset
    with pyvhdx.open(FailingFile(data, first_data)) as img:
        with pytest.raises(pyvhdx.Error) as ei:
            img.pread(0, 4096)
    assert ei.value.errno == errno.EIO
    assert "reading payload at offset 0x%x" % first_data in ei.value.strerror
    assert "readinto() raised ValueError: sector %d of the evidence is unreadable" % (first_data // 512) \
        in ei.value.strerror
    with pytest.raises(pyvhdx.Error) as ei:
        pyvhdx.open(FailingFile(data, 0))
    assert ei.value.errno == errno.EIO and "readinto() raised ValueError" in ei.value.strerror
    # an OSError of the object keeps its errno: EBUSY (a lock held elsewhere) is an ImageInUseError
    with pytest.raises(pyvhdx.ImageInUseError) as ei:
        pyvhdx.open(FailingFile(data, 0, OSError(errno.EBUSY, "locked by the acquisition tool")))
    assert ei.value.errno == errno.EBUSY and "locked by the acquisition tool" in ei.value.strerror
    with pytest.raises(TypeError):
        pyvhdx.open(12345)
    with pytest.raises(pyvhdx.MissingParentError) as ei:
        pyvhdx.open(io.BytesIO(open(chain3[1][0], "rb").read()), parent=["/nonexistent/parent.vhdx"])
    assert ei.value.errno == errno.ENOENT
    assert "not given by the open_parent callback: opening the parent source raised FileNotFoundError" \
        in ei.value.strerror and "/nonexistent/parent.vhdx" in ei.value.strerror


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.skipif(os.environ.get("PYVHDX_ASAN") == "1",
                    reason="AddressSanitizer keeps freed memory in quarantine: RSS cannot show leaks here "
                           "(its leak checker covers the library in the unit tests)")
def test_open_close_cycles_do_not_grow_memory(conformance):
    path = conformance("win11-dynamic-6M.vhdx")
    data = open(path, "rb").read()

    def cycle(n):
        for i in range(n):
            src = path if i % 2 else io.BytesIO(data)
            with pyvhdx.open(src) as img:
                img.pread(0, 512)
    cycle(1000)  # warm up allocator pools
    before = rss_kib()
    cycle(10000)
    grown = rss_kib() - before
    assert grown < 2048, "RSS grew by %d KiB over 10000 open/close cycles" % grown
