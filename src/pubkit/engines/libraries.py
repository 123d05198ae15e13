"""Turn a C library's name into the file the dynamic loader knows it by, quickly.

cffi finds each C library WeasyPrint loads (GLib, Pango, HarfBuzz, fontconfig) by
``ctypes.util.find_library``, trying the names every platform gives it in turn:
``libgobject-2.0-0`` (Windows'), ``gobject-2.0-0``, then ``gobject-2.0``, found. On Linux
each name that is not one costs ctypes a run of the C compiler and of the linker (14 ms),
and WeasyPrint asks for thirteen such, 0.2 s at the start of every build. :func:`install`
answers from ``ldconfig -p``'s list, read once, as ctypes' own first look does, and a name
not in it fails at once. It stands aside where that list cannot be read or lacks a library
WeasyPrint needs, or where ``LD_LIBRARY_PATH`` names libraries outside it.
"""

from __future__ import annotations

import ctypes.util
import os
import re
import struct
import subprocess
from collections.abc import Callable
from functools import cache

#: What WeasyPrint cannot do without, by the names ctypes finds them by.
NEEDED = ("gobject-2.0", "pango-1.0", "harfbuzz", "fontconfig", "pangoft2-1.0")
#: ldconfig's name for this machine's libraries (ctypes.util's table).
_ABI = {"x86_64-64": "libc6,x86-64", "ppc64-64": "libc6,64bit", "sparc64-64": "libc6,64bit",
        "s390x-64": "libc6,64bit", "ia64-64": "libc6,IA-64"}  # fmt: skip


def install() -> None:
    """Have ``ctypes.util.find_library`` answer from ldconfig's list (idempotent)."""
    if os.name != "posix" or os.environ.get("LD_LIBRARY_PATH"):
        return
    find = _finder()
    if find is not None and ctypes.util.find_library is not find:
        setattr(ctypes.util, "find_library", find)  # noqa: B010


@cache
def _finder() -> Callable[[str], str | None] | None:
    try:
        listing = subprocess.run(
            ["/sbin/ldconfig", "-p"],
            capture_output=True,
            check=True,
            env={"LC_ALL": "C", "LANG": "C"},
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    machine = os.uname().machine + ("-32" if struct.calcsize("l") == 4 else "-64")
    abi = re.escape(_ABI.get(machine, "libc6").encode())

    def find_library(name: str) -> str | None:
        """The library ``name`` as ldconfig lists it (``gobject-2.0`` →
        ``libgobject-2.0.so.0``), or None."""
        found = re.search(
            rb"\s+(lib" + re.escape(name.encode()) + rb"\.[^\s]+)\s+\(" + abi, listing
        )
        return os.fsdecode(found[1]) if found else None

    if not all(find_library(name) for name in NEEDED):
        return None
    return find_library
