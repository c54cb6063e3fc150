"""cffi builder of ``myosotis._helper`` (the C helper: CRC32C and the frame scan).

setup.py names this file in ``cffi_modules``; ``pip install -e .`` builds it.
The declarations handed to ``ffibuilder.cdef`` are the block between the
``BEGIN CDEF`` and ``END CDEF`` markers of ``csrc/myo_helper.h``, read verbatim,
so the cdef mirrors the header one to one and cannot drift from it.
"""

from __future__ import annotations

import os

from cffi import FFI

_HERE = os.path.dirname(os.path.abspath(__file__))
_BEGIN = "/* --- BEGIN CDEF --- */"
_END = "/* --- END CDEF --- */"


def read_cdef(header_path: str = os.path.join(_HERE, "myo_helper.h")) -> str:
    """Return the declarations between the CDEF markers of the header."""
    with open(header_path, encoding="utf-8") as f:
        text = f.read()
    begin = text.index(_BEGIN) + len(_BEGIN)
    end = text.index(_END, begin)
    return text[begin:end]


ffibuilder = FFI()
ffibuilder.cdef(read_cdef())
ffibuilder.set_source(
    "myosotis._helper",
    '#include "myo_helper.h"',
    sources=["csrc/myo_helper.c"],
    include_dirs=["csrc"],
    extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
)
