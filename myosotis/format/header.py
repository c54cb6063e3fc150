"""The file header (FORMAT.md §2) and frame headers (§3). No I/O."""

from __future__ import annotations

import struct
from typing import Any

from myosotis.errors import CorruptFileError, NotAMyosotisFileError, UnsupportedVersionError
from myosotis.format.constants import (
    FORMAT_VERSION,
    FRAME_ALIGN,
    FRAME_FLAG_UNSYNCED,
    FRAME_FLAGS_OFFSET,
    FRAME_HEADER_CRC_OFFSET,
    FRAME_HEADER_SIZE,
    FRAME_HEADER_STRUCT,
    HEADER_SIZE,
    HEADER_STRUCT,
    KINDS_BY_VERSION,
    MAGIC,
)
from myosotis.format.helper import crc32c

_FLAGS = {0: bytes(3), FRAME_FLAG_UNSYNCED: bytes([FRAME_FLAG_UNSYNCED, 0, 0])}
_FRAME_PREFIX = struct.Struct("<IB3sI")  # the first 12 bytes of a frame header (§3)
_U32 = struct.Struct("<I")
_PADDING = [bytes(i) for i in range(FRAME_ALIGN)]
_RESERVED12 = bytes(12)


def encode_file_header(version: int = 1) -> bytes:
    """The 32 bytes a file of ``format_version`` ``version`` starts with (§2). New files
    are version 1; a writer moves a file to 2 when it first writes a flagged frame, and
    to 3 when it first writes an UNDELETE or an ORIGIN (§12)."""
    head = HEADER_STRUCT.pack(MAGIC, version, HEADER_SIZE, 0, _RESERVED12, 0)[:28]
    return head + crc32c(head).to_bytes(4, "little")


def check_file_header(buf: Any, size: int, name: str = "file") -> int:
    """Check R10–R12 on the first bytes of a file of ``size`` bytes; return its
    ``format_version`` (1, 2, 3 or 4).

    Raises NotAMyosotisFileError (R10), UnsupportedVersionError (R11) or
    CorruptFileError (R11 version 0, R12).
    """
    if size < len(MAGIC) or bytes(buf[: len(MAGIC)]) != MAGIC:
        raise NotAMyosotisFileError(
            f"{name} is not a Myosotis file (it does not start with {MAGIC.decode()!r})"
        )
    if size < 10:
        raise CorruptFileError("file header is cut short (R12)", 0)
    version = int.from_bytes(bytes(buf[8:10]), "little")
    if version > FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"{name} has format_version {version}, newer than the {FORMAT_VERSION} this "
            "version of Myosotis reads; upgrade Myosotis to open it"
        )
    if version == 0:
        raise CorruptFileError("format_version 0 is invalid (R11)", 8)
    if version not in KINDS_BY_VERSION:
        raise UnsupportedVersionError(
            f"{name} has format_version {version}, which this version of Myosotis does "
            f"not read (it reads {', '.join(map(str, sorted(KINDS_BY_VERSION)))})")
    if size < HEADER_SIZE:
        raise CorruptFileError("file header is cut short (R12)", 0)
    head = bytes(buf[:HEADER_SIZE])
    _, _, header_size, flags, reserved, crc = HEADER_STRUCT.unpack(head)
    if crc != crc32c(head[:28]):
        raise CorruptFileError("file header checksum does not match (R12)", 28)
    if header_size != HEADER_SIZE or flags != 0 or reserved != _RESERVED12:
        raise CorruptFileError("file header has a bad size or non-zero reserved bytes (R12)", 10)
    return version


def padding(n: int) -> int:
    """Zero bytes after an ``n``-byte payload so the next frame is 8-aligned (§3)."""
    return -n % FRAME_ALIGN


def encode_frame(kind: int, payload: bytes | bytearray, flags: int = 0) -> bytes:
    """A whole frame (header, payload, padding) holding ``payload`` (§3); ``flags``
    is the flags byte (version 2 only: FRAME_FLAG_UNSYNCED, or 0)."""
    n = len(payload)
    return b"".join((frame_head(kind, flags, n, crc32c(payload)), payload,
                     _PADDING[-n % FRAME_ALIGN]))


def frame_head(kind: int, flags: int, n: int, payload_crc: int) -> bytes:
    """The 16-byte header of a frame of ``kind`` whose ``n``-byte payload has CRC32C
    ``payload_crc`` (§3)."""
    head = _FRAME_PREFIX.pack(n, kind, _FLAGS[flags], payload_crc)
    return head + _U32.pack(crc32c(head))


def frame_payload_ok(buf: Any, off: int) -> bool:
    """R26 and R27 for the header-valid frame at ``off`` of ``buf`` (a whole file's
    bytes or map): the payload CRC matches and the padding is zero."""
    n, _, _, payload_crc, _ = FRAME_HEADER_STRUCT.unpack_from(buf, off)
    start = off + FRAME_HEADER_SIZE
    return crc32c(buf[start:start + n]) == payload_crc and not any(
        buf[start + n:start + n + (-n % FRAME_ALIGN)])


def without_flags(frame: bytes) -> bytes:
    """``frame`` (a whole frame) with its flags byte cleared and its header CRC
    recomputed: for a file written whole and synced (compaction, repair), where no
    byte can be unsynced."""
    if not frame[FRAME_FLAGS_OFFSET]:
        return frame
    flags = FRAME_FLAGS_OFFSET
    head = frame[:flags] + b"\0" + frame[flags + 1:FRAME_HEADER_CRC_OFFSET]
    return head + _U32.pack(crc32c(head)) + frame[FRAME_HEADER_SIZE:]
