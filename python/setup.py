"""Builds pyvhdx against an installed libvhdx (found with pkg-config).

    pip install ./python          # from the libvhdx source tree, offline

The extension uses only libvhdx.h and the CPython API; the build needs the
interpreter's headers (Debian: python3-dev), setuptools and pkg-config with
libvhdx.pc on its path (PKG_CONFIG_PATH=PREFIX/lib/pkgconfig after a
`make install` into PREFIX).  `./configure && make && make install` builds
and installs the same package without pip.
"""
import os
import shlex
import subprocess
import sys

from setuptools import Extension, setup


def pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config"] + list(args) + ["libvhdx"], check=True,
                             stdout=subprocess.PIPE, universal_newlines=True).stdout
    except (OSError, subprocess.CalledProcessError):
        sys.exit("pyvhdx: pkg-config cannot find libvhdx; install libvhdx first "
                 "(make install) and set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig")
    return shlex.split(out)


def version():
    return pkg_config("--modversion")[0]


cflags = pkg_config("--cflags")
libs = pkg_config("--libs")
here = os.path.dirname(os.path.abspath(__file__))

setup(
    name="pyvhdx",
    version=version(),
    description="Read VHDX, AVHDX and VHD virtual disks with libvhdx (and a pyvhdi-compatible layer)",
    long_description=open(os.path.join(here, "README.md")).read(),
    long_description_content_type="text/markdown",
    license="see the libvhdx source tree",
    packages=["pyvhdx"],
    ext_modules=[Extension(
        "pyvhdx._pyvhdx", ["src/_pyvhdx.c"],
        include_dirs=[f[2:] for f in cflags if f.startswith("-I")],
        extra_compile_args=[f for f in cflags if not f.startswith("-I")],
        library_dirs=[f[2:] for f in libs if f.startswith("-L")],
        libraries=[f[2:] for f in libs if f.startswith("-l")],
        runtime_library_dirs=[f[2:] for f in libs if f.startswith("-L")],
    )],
    python_requires=">=3.7",
)
