"""The layer record (FORMAT.md §8.6, format version 4): a checkpoint that holds only the
nodes changed since the snapshot it builds on, with a CRC per 64 KiB block of its
image so that a reader checks only the blocks it reads. No I/O.

Payload layout (§8.6)::

    0    8     seq            u64
    8    32    commit_id
    40   8     base_offset    u64, frame offset of the base snapshot; 0 = none (full)
    48   8     base_seq       u64, that snapshot's seq (0 with no base)
    56   4     level          u32 (LAYER_LEVEL_FULL for a full layer)
    60   4     block_count    u32, B = ceil(image length / LAYER_BLOCK)
    64   4·B   block_crcs     CRC32C of each block of the image
    ..   4     head_crc       CRC32C of every byte before it
    ..   0–7   zero padding   to a multiple of 8
    A    var   image          §8.1 layout (sparse unless full), to the end
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from myosotis.format.constants import (
    FRAME_ALIGN,
    LAYER_BLOCK,
    LAYER_LEVEL_FULL,
    LAYER_PREFIX_SIZE,
    LAYER_PREFIX_STRUCT,
)
from myosotis.format.helper import crc32c
from myosotis.format.image import StateImage
from myosotis.format.values import DecodeError

_U32 = struct.Struct("<I")


def image_start(block_count: int) -> int:
    """Payload offset of the image of a layer with ``block_count`` blocks (§8.6)."""
    head_end = LAYER_PREFIX_SIZE + 4 * block_count + 4
    return head_end + (-head_end % FRAME_ALIGN)


def block_count(image_len: int) -> int:
    return -(-image_len // LAYER_BLOCK)


class LayerHeader(NamedTuple):
    """The fixed part of a layer record, checked by its ``head_crc``."""

    seq: int
    commit_id: bytes
    base_offset: int  # 0: a full layer
    base_seq: int
    level: int
    block_count: int
    image_at: int  # payload offset of the image

    @property
    def full(self) -> bool:
        return self.base_offset == 0


def encode_layer(seq: int, cid: bytes, base_offset: int, base_seq: int, level: int,
                 image: bytes | bytearray) -> bytes:
    """The payload of a layer record over ``image`` (§8.6)."""
    nb = block_count(len(image))
    head = bytearray(LAYER_PREFIX_STRUCT.pack(seq, cid, base_offset, base_seq, level, nb))
    for b in range(nb):
        head += _U32.pack(crc32c(memoryview(image)[b * LAYER_BLOCK:(b + 1) * LAYER_BLOCK]))
    head += _U32.pack(crc32c(head))
    head += bytes(-len(head) % FRAME_ALIGN)
    return bytes(head) + bytes(image)


def decode_layer_header(payload: Any) -> LayerHeader:
    """The checked fixed part of a layer's payload: ``head_crc``, the padding, the
    block count against the image's length and the base fields (§8.6, R87). Reads
    only the head (a few KiB at most per GiB of image); raises DecodeError."""
    n = len(payload)
    if n < LAYER_PREFIX_SIZE + 4:
        raise DecodeError("layer record shorter than its 68-byte head (§8.6)", 0)
    seq, cid, base_off, base_seq, level, nb = LAYER_PREFIX_STRUCT.unpack_from(payload, 0)
    crc_at = LAYER_PREFIX_SIZE + 4 * nb
    if crc_at + 4 > n:
        raise DecodeError(f"layer claims {nb} blocks, more than the record holds (§8.6)", 60)
    if crc32c(payload[:crc_at]) != _U32.unpack_from(payload, crc_at)[0]:
        raise DecodeError("layer head checksum does not match (R87)", crc_at)
    at = image_start(nb)
    if at > n or any(payload[crc_at + 4:at]):
        raise DecodeError("layer padding is cut short or not zero (§8.6)", crc_at + 4)
    if block_count(n - at) != nb:
        raise DecodeError(f"layer has {nb} block CRCs for an image of {n - at} bytes (R87)",
                          60)
    if (base_off == 0) != (level == LAYER_LEVEL_FULL) or (base_off == 0) != (base_seq == 0):
        raise DecodeError("layer base fields disagree: base_offset 0 if and only if "
                          "base_seq 0 and level full (R87)", 40)
    if seq == 0 or (base_off and base_seq >= seq):
        raise DecodeError(f"layer of commit {seq} on a base of commit {base_seq} (R87)", 0)
    return LayerHeader(seq, bytes(cid), base_off, base_seq, level, nb, at)


class BlockGuard:
    """Checks each block of a layer's image against its CRC the first time any byte of
    it is read (§8.6, R88); a failure raises DecodeError naming the block's offset
    in the file (``base``: the file offset of the image)."""

    __slots__ = ("_mv", "_crcs", "_ok", "_base")

    def __init__(self, payload: memoryview, h: LayerHeader, base: int) -> None:
        self._mv = payload[h.image_at:]
        self._crcs = payload[LAYER_PREFIX_SIZE:LAYER_PREFIX_SIZE + 4 * h.block_count]
        self._ok = bytearray(h.block_count)
        self._base = base

    def __call__(self, lo: int, hi: int) -> None:
        ok = self._ok
        first, last = lo // LAYER_BLOCK, max(lo, hi - 1) // LAYER_BLOCK
        if first == last and first < len(ok) and ok[first]:  # the common case
            return
        for b in range(first, min(last + 1, len(ok))):
            if not ok[b]:
                start = b * LAYER_BLOCK
                crc = crc32c(self._mv[start:start + LAYER_BLOCK])
                if crc != _U32.unpack_from(self._crcs, 4 * b)[0]:
                    raise DecodeError(f"layer block {b} fails its CRC (R88): the layer is "
                                      "damaged", self._base + start)
                ok[b] = 1

    def check_all(self) -> None:
        """Check every block (fsck)."""
        self(0, len(self._mv))


def layer_image(payload: memoryview, h: LayerHeader, base: int) -> StateImage:
    """The image of a layer read in place, its blocks checked as they are read;
    ``base``: the file offset of the payload. Raises DecodeError (a damaged block
    among those the constructor reads, or malformed tables)."""
    at = base + h.image_at
    return StateImage(payload[h.image_at:], at, sparse=not h.full,
                      guard=BlockGuard(payload, h, at))
