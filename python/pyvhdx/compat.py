"""pyvhdx.compat - the pyvhdi interface (libvhdi's Python binding) over libvhdx.

dfvfs and plaso reach VHD and VHDX images through pyvhdi; with

    from pyvhdx import compat as pyvhdi

the same calls read through libvhdx, which replays a dirty VHDX log (in
memory) and reads the differencing cases libvhdi gets wrong.  Names, the
disk type numbers and the calling conventions are pyvhdi's:

    vhdi_file = pyvhdi.file()
    vhdi_file.open_file_object(file_object)
    if vhdi_file.parent_identifier:
        parent = pyvhdi.file()
        parent.open_file_object(parent_file_object)   # found by parent_filename
        vhdi_file.set_parent(parent)
    data = vhdi_file.read_buffer_at_offset(4096, 0)

Differences from pyvhdi, on purpose: an image whose checksums are wrong is
refused (IOError, a pyvhdx.CorruptImageError) where libvhdi reads it as it
is; a dirty VHDX log is replayed, so reads give the data Windows would; a
differencing image opened by file name resolves its parents by itself when
they are where its locator says (set_parent() still overrides).  Reading a
differencing image whose parent is not known raises IOError, as pyvhdi does.
"""

import io
import os

from . import _pyvhdx
from . import Image, Error, MissingParentError, _seek_target

__all__ = ["get_version", "check_file_signature", "check_file_signature_file_object", "open",
           "open_file_object", "file", "disk_types"]


class disk_types(object):
    """pyvhdi's disk type numbers (LIBVHDI_DISK_TYPES)."""
    FIXED = 2
    DYNAMIC = 3
    DIFFERENTIAL = 4


_DISK_TYPES = {"fixed": disk_types.FIXED, "dynamic": disk_types.DYNAMIC,
               "differencing": disk_types.DIFFERENTIAL}

# the locator entry pyvhdi reports as parent_filename, best first
_PARENT_NAME_KEYS = {"vhdx": ("absolute_win32_path", "relative_path", "volume_path"),
                     "vhd": ("parent_name", "W2ku", "W2ru")}


def get_version():
    """get_version() -> String: the version of libvhdx."""
    return _pyvhdx.library_version()


def _has_signature(head, tail):
    return head[:8] == b"vhdxfile" or head[:8] == b"conectix" or tail[:8] == b"conectix"


def check_file_signature_file_object(file_object):
    """check_file_signature_file_object(file_object) -> Boolean

    True when the object holds a VHDX ("vhdxfile" at 0) or VHD ("conectix"
    footer at the end, or its copy at 0) signature.
    """
    file_object.seek(0, os.SEEK_SET)
    head = file_object.read(8)
    size = file_object.seek(0, os.SEEK_END)
    tail = b""
    if size >= 512:
        file_object.seek(size - 512, os.SEEK_SET)
        tail = file_object.read(8)
    return _has_signature(head, tail)


def check_file_signature(filename):
    """check_file_signature(filename) -> Boolean: the same test on a file by name."""
    with io.open(filename, "rb") as f:
        return check_file_signature_file_object(f)


def open(filename, mode="r"):
    """open(filename, mode='r') -> file: a new file object with the image opened."""
    f = file()
    f.open(filename, mode)
    return f


def open_file_object(file_object, mode="r"):
    """open_file_object(file_object, mode='r') -> file: the same over a file-like object."""
    f = file()
    f.open_file_object(file_object, mode)
    return f


def _check_mode(mode):
    if mode not in ("r", "rb"):
        raise ValueError("unsupported mode: %r (pyvhdx.compat opens read-only)" % (mode,))


class file(object):
    """file() -> a closed VHD/VHDX image; open() or open_file_object() it (pyvhdi.file)."""

    def __init__(self):
        self._img = None
        self._source = None
        self._parent = None
        self._leaf_only = False
        self._offset = 0

    # ---- opening
    def _open(self, source):
        if self._img is not None:
            raise IOError("file already open")
        try:
            img = Image(_pyvhdx.open(source, 0, None, None, None, None), source, False)
            leaf_only = False
        except MissingParentError:
            # like pyvhdi: the image opens, its parent comes from set_parent()
            img = Image(_pyvhdx.open(source, _pyvhdx.OPEN_NO_PARENT, None, None, None, None), source, False)
            leaf_only = True
        self._img, self._source, self._leaf_only, self._offset = img, source, leaf_only, 0

    def open(self, filename, mode="r"):
        """open(filename, mode='r') -> None: opens the image at FILENAME."""
        _check_mode(mode)
        self._open(os.fspath(filename))

    def open_file_object(self, file_object, mode="r"):
        """open_file_object(file_object, mode='r') -> None: opens the image a file-like object holds."""
        _check_mode(mode)
        self._open(file_object)

    def close(self):
        """close() -> None: closes the image (not the parents given to set_parent)."""
        if self._img is None:
            raise IOError("file not open")
        self._img.close()
        self._img = None
        self._source = None
        self._parent = None

    def signal_abort(self):
        """signal_abort() -> None: nothing to abort (reads are not interruptible here)."""

    def set_parent(self, parent_file):
        """set_parent(parent_file) -> None: reads the parts this image lacks from PARENT_FILE.

        PARENT_FILE is an opened pyvhdx.compat.file (with its own parent set
        first when it is a differencing image too).  Its identity must be
        the one this image links to (IOError otherwise).
        """
        img = self._opened()
        if not isinstance(parent_file, file) or parent_file._img is None:
            raise TypeError("parent_file must be an opened pyvhdx.compat.file")
        chain = []
        p = parent_file
        while p is not None:
            chain.append(p._source)
            p = p._parent

        def open_parent(request):
            depth = request["depth"]
            return chain[depth - 1] if depth <= len(chain) else None
        new = Image(_pyvhdx.open(self._source, 0, None, None, None, open_parent), self._source, False)
        img.close()
        self._img, self._parent, self._leaf_only = new, parent_file, False

    # ---- reading
    def _opened(self):
        if self._img is None:
            raise IOError("file not open")
        return self._img

    def _readable(self):
        img = self._opened()
        if self._leaf_only:
            raise MissingParentError(2, "%s: missing parent file (%s): call set_parent() first"
                                     % (img.chain[0]["path"], self.parent_filename))
        return img

    def read_buffer(self, size=None):
        """read_buffer(size) -> Binary string: SIZE bytes (the rest when None) at the current offset."""
        img = self._readable()
        if size is None:
            size = max(0, img.size - self._offset)
        if size < 0:
            raise ValueError("invalid size %d" % size)
        data = img.pread(self._offset, size)
        self._offset += len(data)
        return data

    read = read_buffer

    def read_buffer_at_offset(self, size, offset):
        """read_buffer_at_offset(size, offset) -> Binary string: SIZE bytes at OFFSET; the offset moves past them."""
        img = self._readable()
        if size < 0 or offset < 0:
            raise ValueError("invalid size %d or offset %d" % (size, offset))
        data = img.pread(offset, size)
        self._offset = offset + len(data)
        return data

    def seek_offset(self, offset, whence=os.SEEK_SET):
        """seek_offset(offset, whence) -> None: moves the current offset (SEEK_SET, SEEK_CUR, SEEK_END)."""
        img = self._opened()
        self._offset = _seek_target(self._offset, img.size, offset, whence, IOError)

    seek = seek_offset

    def get_offset(self):
        """get_offset() -> Integer: the current offset within the data."""
        self._opened()
        return self._offset

    tell = get_offset

    # ---- properties (with pyvhdi's getters)
    def get_media_size(self):
        """get_media_size() -> Integer: the size of the virtual disk in bytes."""
        return self._opened().size

    def get_bytes_per_sector(self):
        """get_bytes_per_sector() -> Integer: the logical sector size."""
        return self._opened().logical_sector_size

    def get_disk_type(self):
        """get_disk_type() -> Integer: disk_types.FIXED, DYNAMIC or DIFFERENTIAL."""
        return _DISK_TYPES[self._opened().disk_type]

    def get_identifier(self):
        """get_identifier() -> Unicode string: the identity a child links to (VHDX DataWriteGuid, VHD unique id)."""
        return self._opened().chain[0]["identity"]

    def get_parent_identifier(self):
        """get_parent_identifier() -> Unicode string or None: the identity of the parent this image links to."""
        return self._opened().parent_identifier

    def get_parent_filename(self):
        """get_parent_filename() -> Unicode string or None: the parent's path as the locator stores it."""
        img = self._opened()
        leaf = img._doc["layers"][0]
        if "parent" not in leaf:
            return None
        entries = dict((e["key"], e["value"]) for e in leaf["parent"]["paths"])
        for key in _PARENT_NAME_KEYS[img.format]:
            if entries.get(key):
                return entries[key]
        return None

    def get_format_version(self):
        """get_format_version() -> Unicode string: "MAJOR.MINOR" of the VHDX header or VHD footer."""
        img = self._opened()
        leaf = img._doc["layers"][0]
        if img.format == "vhd":
            v = leaf["footer"]["format_version"]
            return "%d.%d" % (v >> 16, v & 0xffff)
        current = leaf["headers"][leaf["current_header"] - 1]
        return "%d.0" % current["version"]

    media_size = property(get_media_size, doc="The media size.")
    bytes_per_sector = property(get_bytes_per_sector, doc="The number of bytes per sector.")
    disk_type = property(get_disk_type, doc="The disk type.")
    identifier = property(get_identifier, doc="The identifier.")
    parent_identifier = property(get_parent_identifier, doc="The parent identifier.")
    parent_filename = property(get_parent_filename, doc="The parent filename.")
    format_version = property(get_format_version, doc="The format version.")
