"""pyvhdx - read (and write) VHDX, AVHDX and VHD virtual disks with libvhdx.

    import shutil, pyvhdx

    with pyvhdx.open("disk.avhdx", parent_dirs=["/evidence"]) as img:
        print(img.size, img.disk_type, [layer["path"] for layer in img.chain])
        for ext in img.map():
            if ext.data:
                print(ext.start, ext.length, ext.layer, ext.file_offset)
        with open("disk.raw", "wb") as out:
            shutil.copyfileobj(img, out, 1 << 20)

An image opened by pyvhdx.open() is an io.RawIOBase over the whole virtual
disk (its chain of parents resolved), so io.BufferedReader and
shutil.copyfileobj work on it.  Its bytes may come from a path or from any
Python file object (an image inside an E01, a zip, another disk), with the
parents of such an image taken from parent=.  A dirty VHDX log is replayed
in memory: the file is never written unless writable=True.

Reads and writes release the GIL, and one image may be read from several
threads at once with pread() (read()/seek() share one position, as for any
file).  Errors raise pyvhdx.Error (an OSError with the errno and libvhdx's
message) or one of its subclasses: MissingParentError (with paths_tried),
CorruptImageError (EBADMSG) and ImageInUseError (EBUSY).

pyvhdx.compat speaks the interface of pyvhdi (libvhdi's binding) that dfvfs
and plaso use.
"""

import collections
import io
import json
import os
import re
import threading

from . import _pyvhdx
from ._pyvhdx import Error, MissingParentError, CorruptImageError, ImageInUseError

__all__ = ["open", "Image", "Extent", "Error", "MissingParentError", "CorruptImageError",
           "ImageInUseError", "library_version"]

library_version = _pyvhdx.library_version

#: One run of the virtual disk, as map() yields it.
Extent = collections.namedtuple("Extent", "start length data layer file_offset")
Extent.__doc__ = """A run of the virtual disk: START and LENGTH in bytes; DATA True when the
bytes are stored in layer LAYER's file at FILE_OFFSET, False when the run
reads as zeros (LAYER and FILE_OFFSET are then None)."""

_TRIED = re.compile(r"Tried: (.*)$", re.S)


def _paths_tried(message):
    """The paths of a libvhdx "parent ... not found. Tried: P (why); P (why)" message."""
    m = _TRIED.search(message or "")
    if not m:
        return []
    paths = []
    for part in re.split(r"; (?=[^;]*? \()", m.group(1)):
        part = part.strip()
        cut = part.rfind(" (")
        paths.append(part[:cut] if cut > 0 else part)
    return paths


def _reraise(exc):
    """Adds paths_tried to a MissingParentError and raises EXC."""
    if isinstance(exc, MissingParentError):
        exc.paths_tried = _paths_tried(exc.strerror)
    raise exc


def _is_path(obj):
    return isinstance(obj, (str, bytes)) or hasattr(obj, "__fspath__")


def _parent_source(parent):
    """What open_parent may return for PARENT: a path, a file object, or an Image's source."""
    if isinstance(parent, Image):
        return parent._source
    return parent


def _open_parent_for(parent):
    """The open_parent callable for parent= (None, a source, an Image, a list of them, or a callable)."""
    if parent is None:
        return None
    if callable(parent) and not hasattr(parent, "read") and not isinstance(parent, Image):
        return lambda request: _parent_source(parent(request))
    layers = list(parent) if isinstance(parent, (list, tuple)) else [parent]

    def open_parent(request):
        depth = request["depth"]
        if depth > len(layers):
            return None
        return _parent_source(layers[depth - 1])
    return open_parent


def _seek_target(pos, size, offset, whence, error):
    """The position a seek(OFFSET, WHENCE) from POS on a disk of SIZE bytes goes to; ERROR when negative."""
    if whence == io.SEEK_SET:
        target = offset
    elif whence == io.SEEK_CUR:
        target = pos + offset
    elif whence == io.SEEK_END:
        target = size + offset
    else:
        raise ValueError("invalid whence (%r)" % (whence,))
    if target < 0:
        raise error("negative seek position %d" % target)
    return target


def _path_maps(path_map):
    if path_map is None:
        return None
    if isinstance(path_map, dict):
        return ["%s=%s" % (k, os.fsdecode(v)) for k, v in path_map.items()]
    return [os.fsdecode(m) for m in path_map]


def open(source, *, parent=None, parent_dirs=(), path_map=None, ignore_id_mismatch=False,
         writable=False, force_share=False):
    """Opens a VHDX, AVHDX or VHD image and its parents; returns an Image.

    source: a path (str, bytes, os.PathLike) or a file object with read()
        and seek() (readinto() is used when present; write() for writable).
    parent: the immediate parent: a path, a file object or another Image;
        or a list of them, one per layer below (parent, grandparent, ...);
        or a callable(request) -> path / file object / None, where request
        is a dict with "child", "depth" (1 = the parent of SOURCE),
        "format", "linkage" (the identity the parent must have) and
        "entries" (the locator's (key, value) pairs).  For a path SOURCE
        and a path parent, libvhdx's own search is used.  Parents are
        always checked against the child's link.
    parent_dirs: folders searched for parents by file name.
    path_map: {"C:\\\\VMs": "/mnt/vms"} (or ["C:\\\\VMs=/mnt/vms"]): how absolute
        Windows locator paths map to local folders.
    ignore_id_mismatch: accept a parent whose identity is not the child's link.
    writable: open the leaf for writing (parents stay read-only).
    force_share: open even when another program holds the image's lock
        (read-only peeking); accepted for the image-locking work.
    Raises pyvhdx.Error or a subclass.
    """
    flags = 0
    if writable:
        flags |= _pyvhdx.OPEN_RDWR
    if ignore_id_mismatch:
        flags |= _pyvhdx.OPEN_IGNORE_ID_MISMATCH
    if force_share:
        flags |= getattr(_pyvhdx, "OPEN_FORCE_SHARE", 0)
    explicit = None
    open_parent = None
    if parent is not None and _is_path(source) and _is_path(parent):
        explicit = parent
    else:
        open_parent = _open_parent_for(parent)
    dirs = [os.fsdecode(d) for d in parent_dirs] if parent_dirs else None
    try:
        handle = _pyvhdx.open(source, flags, explicit, dirs, _path_maps(path_map), open_parent)
    except MissingParentError as exc:
        _reraise(exc)
    return Image(handle, source, writable)


class Image(io.RawIOBase):
    """An opened virtual disk: an io.RawIOBase with a position, plus pread()/pwrite().

    Attributes: size, logical_sector_size, physical_sector_size, block_size,
    format ("vhdx" or "vhd"), disk_type ("fixed", "dynamic", "differencing"),
    identifier and parent_identifier (GUID strings, parent_identifier None
    without a parent), chain (one dict per layer, leaf first), warnings.
    Methods: read, readinto, seek, tell, pread, pwrite, flush, info, map, close.
    Use pyvhdx.open() to make one.
    """

    def __init__(self, handle, source, writable):
        super().__init__()
        self._h = handle
        self._source = source
        self._writable = bool(writable)
        self._pos = 0
        self._pos_lock = threading.Lock()
        # the handle's own method: no Python frame between the caller and libvhdx on the hot path
        self.pread = handle.pread
        i = handle.get_info()
        self._info = i
        self.size = i["size"]
        self.logical_sector_size = i["logical_sector_size"]
        self.physical_sector_size = i["physical_sector_size"]
        self.block_size = i["block_size"]
        self.format = i["format"]
        self.disk_type = i["disk_type"]
        self.warnings = [w for w in i["warnings"].split("\n") if w]
        self._doc_cache = None

    @property
    def _doc(self):
        """The parsed `vhdx info --json` document (made on first use: opens stay cheap)."""
        if self._doc_cache is None:
            self._doc_cache = json.loads(self._h.info_json())
        return self._doc_cache

    @property
    def identifier(self):
        """The virtual disk id (VHDX DiskId, VHD unique id) as a GUID string."""
        return self._doc["disk_id"]

    @property
    def parent_identifier(self):
        """The identity of the parent the leaf links to (GUID string), or None without a parent."""
        leaf = self._doc["layers"][0]
        return leaf["parent"]["linkage"] if "parent" in leaf else None

    @property
    def chain(self):
        """One dict per opened layer, leaf first: path, format, type, virtual_size, identity, disk_id."""
        return [{"path": layer["path"], "format": layer["format"], "type": layer["type"],
                 "virtual_size": layer["virtual_size"], "identity": layer["identity"],
                 "disk_id": layer["disk_id"]} for layer in self._doc["layers"]]

    # ---- io.RawIOBase
    def readable(self):
        """True: an image can always be read."""
        self._check()
        return True

    def seekable(self):
        """True: an image has a size and any position."""
        self._check()
        return True

    def writable(self):
        """True when opened with writable=True."""
        self._check()
        return self._writable

    def _check(self):
        if self.closed:
            raise ValueError("I/O operation on closed image")

    def readinto(self, b):
        """Reads into the writable buffer B at the position; returns the bytes read (0 at the end)."""
        with self._pos_lock:
            n = self._h.preadinto(b, self._pos)
            self._pos += n
        return n

    def read(self, size=-1):
        """Reads up to SIZE bytes at the position (all the rest when SIZE is -1 or None)."""
        with self._pos_lock:
            if size is None or size < 0:
                size = max(0, self.size - self._pos)
            data = self._h.pread(self._pos, size)
            self._pos += len(data)
        return data

    def readall(self):
        """Reads from the position to the end of the disk."""
        return self.read(-1)

    def write(self, b):
        """Writes B at the position (writable images only); returns the bytes written."""
        with self._pos_lock:
            if not self._writable:
                raise io.UnsupportedOperation("image not opened with writable=True")
            n = self._h.pwrite(b, self._pos)
            self._pos += n
        return n

    def seek(self, offset, whence=io.SEEK_SET):
        """Moves the position (SEEK_SET, SEEK_CUR, SEEK_END); returns the new one."""
        self._check()
        with self._pos_lock:
            self._pos = _seek_target(self._pos, self.size, offset, whence, ValueError)
            return self._pos

    def tell(self):
        """The position."""
        self._check()
        return self._pos

    def flush(self):
        """Makes every completed write durable (a no-op on a read-only image)."""
        if not self.closed and self._writable:
            self._h.flush()

    def close(self):
        """Flushes (when writable) and closes the image and every layer; idempotent."""
        if not self.closed:
            try:
                super().close()  # flushes through self.flush(), then marks the object closed
            finally:
                self._h.close()

    # ---- positional I/O, safe from several threads
    def pread(self, offset, length):
        """Reads up to LENGTH bytes at OFFSET without touching the position (thread-safe)."""
        return self._h.pread(offset, length)

    def pwrite(self, data, offset):
        """Writes DATA at OFFSET without touching the position; durable after flush()."""
        if not self._writable:
            raise io.UnsupportedOperation("image not opened with writable=True")
        return self._h.pwrite(data, offset)

    # ---- reports
    def info(self, log=False):
        """The dict `vhdx info --json` prints for this image (with log=True, `--log` too)."""
        return json.loads(self._h.info_json(log))

    def map(self, offset=0, length=None, layers=False):
        """Iterates the extents of [OFFSET, OFFSET+LENGTH) (to the end when LENGTH is None).

        Yields Extent(start, length, data, layer, file_offset).  With
        layers=False, neighbouring runs of the same kind are merged whatever
        layer holds them and layer/file_offset are None; with layers=True
        each run names the layer whose file holds it and where.
        """
        end = self.size if length is None else min(self.size, offset + length)
        pending = None
        while offset < end:
            start, n, data, layer, foff = self._h.map_extent(offset, end - offset)
            if layers:
                yield Extent(start, n, data, layer if data else None, foff if data else None)
            elif pending is not None and pending.data == data:
                pending = pending._replace(length=pending.length + n)
            else:
                if pending is not None:
                    yield pending
                pending = Extent(start, n, data, None, None)
            offset = start + n
        if pending is not None:
            yield pending

    def __repr__(self):
        state = "closed" if self.closed else "%d bytes, %d layer(s)" % (self.size, len(self._info["paths"]))
        return "<pyvhdx.Image %s %s %s>" % (self.format, self.disk_type, state)
