"""pyvhdx.compat against pyvhdi (python3-libvhdi) side by side: every property
both have on every conformance image, the same bytes where libvhdi is right
and the documented difference on the dirty log, the signature checks, and
dfvfs' sequence (vhdi_file_io.py) on a 3-layer chain.
"""
import hashlib
import io
import os

import pytest

import pyvhdx
from pyvhdx import compat
from conftest import QUICK_LIMIT, ROWS, CountingFile, run

pyvhdi = pytest.importorskip("pyvhdi", reason="python3-libvhdi is not installed for this interpreter")

MiB = 1 << 20
PROPERTIES = ("media_size", "bytes_per_sector", "disk_type", "identifier", "parent_identifier",
              "parent_filename", "format_version")
# libvhdi reads these although their checksums are wrong; libvhdx refuses them (MANIFEST.tsv "expect")
REFUSED = {"badsum-dynamic.vhd", "badsum-differencing.vhd"}
DIRTY = "dirtylog-10G.vhdx"


def test_names_and_numbers():
    assert compat.disk_types.FIXED == pyvhdi.disk_types.FIXED == 2
    assert compat.disk_types.DYNAMIC == pyvhdi.disk_types.DYNAMIC == 3
    assert compat.disk_types.DIFFERENTIAL == pyvhdi.disk_types.DIFFERENTIAL == 4
    for name in ("get_version", "check_file_signature", "check_file_signature_file_object", "open",
                 "open_file_object", "file", "disk_types"):
        assert hasattr(pyvhdi, name) and hasattr(compat, name)
    for name in ("open", "open_file_object", "close", "read_buffer", "read_buffer_at_offset", "read",
                 "seek_offset", "seek", "get_offset", "tell", "get_media_size", "set_parent") + PROPERTIES:
        assert hasattr(pyvhdi.file, name) and hasattr(compat.file, name), name
    assert compat.get_version() == pyvhdx.library_version()


@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_properties_match_pyvhdi(conformance, row):
    name = row["file"][:-3]
    path = conformance(name)
    theirs = pyvhdi.file()
    theirs.open(path)
    assert compat.check_file_signature(path) == pyvhdi.check_file_signature(path) is True
    with open(path, "rb") as f:
        assert compat.check_file_signature_file_object(f) is True
    if name in REFUSED:
        with pytest.raises(IOError) as ei:
            compat.open(path)
        assert isinstance(ei.value, pyvhdx.CorruptImageError) and "checksum mismatch" in str(ei.value)
        theirs.close()
        return
    for ours in (compat.open(path), compat.open_file_object(open(path, "rb"))):
        for p in PROPERTIES:
            assert getattr(ours, p) == getattr(theirs, p), p
            assert getattr(ours, "get_" + p)() == getattr(theirs, "get_" + p)(), p
        ours.close()
    theirs.close()


def test_signature_of_other_files(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"\0" * 4096)
    assert compat.check_file_signature(str(p)) == pyvhdi.check_file_signature(str(p)) is False


def chunks_equal(a, b, size, step=4 * MiB):
    """The offsets of the MiB-sized pieces where the two compat-style readers differ."""
    diff = []
    for off in range(0, size, step):
        n = min(step, size - off)
        x, y = a.read_buffer_at_offset(n, off), b.read_buffer_at_offset(n, off)
        if x != y:
            for k in range(0, n, MiB):
                if x[k:k + MiB] != y[k:k + MiB]:
                    diff.append((off + k) // MiB)
    return diff


def test_same_bytes_as_pyvhdi(hashed_image):
    """Where libvhdi is right both read the same; on the dirty log, libvhdi reads MiB 17 stale."""
    row, name, path, size = hashed_image
    theirs = pyvhdi.file()
    theirs.open(path)
    ours = compat.open(path)
    if name == DIRTY:
        diff = chunks_equal(ours, theirs, 32 * MiB)
        # the log's one live entry adds the BAT entry of block 17 (1 MiB blocks): libvhdi ignores it
        assert diff == [17]
        assert ours.read_buffer_at_offset(MiB, 17 * MiB) == b"\xa5" * MiB
        assert theirs.read_buffer_at_offset(MiB, 17 * MiB) == bytes(MiB)
    elif size > 128 * MiB:
        # libvhdi reads ~60 MB/s here: the first 64 MiB, 16 MiB spread over the disk, the last 4 MiB
        assert chunks_equal(ours, theirs, 64 * MiB) == []
        for k in range(1, 17):
            off = size * k // 17 // MiB * MiB
            assert ours.read_buffer_at_offset(MiB, off) == theirs.read_buffer_at_offset(MiB, off), off
        assert ours.read_buffer_at_offset(4 * MiB, size - 4 * MiB) == \
            theirs.read_buffer_at_offset(4 * MiB, size - 4 * MiB)
    else:
        assert chunks_equal(ours, theirs, size) == []
    if size <= 128 * MiB and name != DIRTY:
        # and both are right: the manifest's hash
        h = hashlib.sha256()
        ours.seek_offset(0)
        while True:
            b = ours.read_buffer(4 * MiB)
            if not b:
                break
            h.update(b)
        assert h.hexdigest() == row["raw_sha256"]
    ours.close()
    theirs.close()


def test_offset_semantics_match_pyvhdi(conformance):
    path = conformance("win10-dynamic-10M.vhdx")
    a, b = compat.open(path), pyvhdi.open(path)
    for op in (lambda f: f.read_buffer(1000), lambda f: f.get_offset(), lambda f: f.seek_offset(5000, os.SEEK_SET),
               lambda f: f.read(100), lambda f: f.tell(), lambda f: f.seek(-512, os.SEEK_END),
               lambda f: f.read_buffer(4096), lambda f: f.get_offset(), lambda f: f.seek_offset(100, os.SEEK_CUR),
               lambda f: f.read_buffer_at_offset(700, 0x200000 - 100), lambda f: f.get_offset(),
               lambda f: f.get_media_size()):
        assert op(a) == op(b)
    a.close()
    b.close()


def dfvfs_open(vhdi_module, folder, leaf_name):
    """dfvfs' VHDIFile._OpenFileObject/_OpenParentFile: file objects, parents found by parent_filename."""
    opened = []

    def open_parent(location, vhdi_file):
        parent_filename = vhdi_file.parent_filename
        _, _, parent_filename = parent_filename.rpartition("\\")
        parent_location = os.path.join(os.path.dirname(location), parent_filename)
        file_object = CountingFile(parent_location)
        vhdi_parent_file = vhdi_module.file()
        vhdi_parent_file.open_file_object(file_object)
        if vhdi_parent_file.parent_identifier:
            open_parent(parent_location, vhdi_parent_file)
        vhdi_file.set_parent(vhdi_parent_file)
        opened.append((vhdi_parent_file, file_object))

    location = os.path.join(folder, leaf_name)
    file_object = CountingFile(location)
    vhdi_file = vhdi_module.file()
    vhdi_file.open_file_object(file_object)
    if vhdi_file.parent_identifier:
        open_parent(location, vhdi_file)
    opened.append((vhdi_file, file_object))
    return vhdi_file, opened


def test_dfvfs_sequence_on_a_3_layer_chain(chain3, vhdx_tool):
    folder, (leaf, mid, base) = chain3
    want = run(vhdx_tool, "convert", "-O", "raw", leaf, "-")
    vhdi_file, opened = dfvfs_open(compat, folder, "leaf.avhdx")
    assert vhdi_file.disk_type == compat.disk_types.DIFFERENTIAL
    assert vhdi_file.media_size == len(want)
    assert vhdi_file.read_buffer(len(want)) == want
    assert vhdi_file.read_buffer_at_offset(4096, 5 * MiB) == want[5 * MiB:5 * MiB + 4096]
    for f, fo in opened:
        assert fo.calls["readinto"] > 0
    for f, fo in reversed(opened):
        f.close()
    # before set_parent a child whose parents cannot be found opens but cannot be read, as with pyvhdi
    lone = compat.file()
    lone.open_file_object(io.BytesIO(open(leaf, "rb").read()))
    assert lone.parent_filename.endswith("mid.avhdx")
    with pytest.raises(IOError):
        lone.read_buffer(512)
    lone.close()
