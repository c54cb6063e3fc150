"""The layer record (FORMAT.md §8.7, format version 4): a checkpoint that holds only the
nodes changed since the snapshot it builds on, with a CRC per 64 KiB block of its
image so that a reader checks only the blocks it reads, and a trailer by which a
reader finds the newest layer from the end of the file (§10.1). No I/O.

Payload layout (§8.7)::

    0    8     seq            u64
    8    32    commit_id
    40   8     base_offset    u64, frame offset of the base snapshot; 0 = none (full)
    48   8     base_seq       u64, that snapshot's seq (0 with no base)
    56   4     level          u32 (LAYER_LEVEL_FULL for a full layer)
    60   4     block_count    u32, B = ceil(image_length / LAYER_BLOCK)
    64   8     self_offset    u64, the file offset of this layer's own frame
    72   8     image_length   u64, I
    80   4·B   block_crcs     CRC32C of each block of the image
    ..   4     head_crc       CRC32C of every byte before it
    ..   0–7   zero padding   to a multiple of 8
    A    I     image          §8.1 layout (sparse unless full)
    ..   0–7   zero padding   to a multiple of 8
    n-16 8     self_offset    again (the trailer)
    n-8  8     LAYER_MAGIC    "MYOLAYER"
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from myosotis.format.constants import (
    FRAME_ALIGN,
    FRAME_HEADER_SIZE,
    FRAME_KIND_OFFSET,
    HEADER_SIZE,
    KIND_LAYER,
    LAYER_BLOCK,
    LAYER_LEVEL_FULL,
    LAYER_MAGIC,
    LAYER_PREFIX_SIZE,
    LAYER_PREFIX_STRUCT,
    LAYER_TRAILER_STRUCT,
)
from myosotis.format.helper import crc32c
from myosotis.format.helper_contract import header_payload_length
from myosotis.format.image import StateImage
from myosotis.format.values import DecodeError

_U32 = struct.Struct("<I")
_TRAILER = LAYER_TRAILER_STRUCT.size


def image_start(block_count: int) -> int:
    """Payload offset of the image of a layer with ``block_count`` blocks (§8.7)."""
    head_end = LAYER_PREFIX_SIZE + 4 * block_count + 4
    return head_end + (-head_end % FRAME_ALIGN)


def block_count(image_len: int) -> int:
    return -(-image_len // LAYER_BLOCK)


def payload_length(block_count: int, image_len: int) -> int:
    """The payload length of a layer (a multiple of 8: its trailer ends its frame)."""
    return image_start(block_count) + image_len + (-image_len % FRAME_ALIGN) + _TRAILER


class LayerHeader(NamedTuple):
    """The fixed part of a layer record, checked by its ``head_crc``."""

    seq: int
    commit_id: bytes
    base_offset: int  # 0: a full layer
    base_seq: int
    level: int
    block_count: int
    self_offset: int
    image_length: int
    image_at: int  # payload offset of the image

    @property
    def full(self) -> bool:
        return self.base_offset == 0


class LayerPayload:
    """The payload of a layer record (§8.7) over an image of ``image_length`` bytes that
    ``image`` yields in pieces, written in pieces by :meth:`write` (a large one is
    never held whole: a full layer holds every node). For ``LogFile.append``."""

    __slots__ = ("length", "_head", "_image_length", "_image", "_self_offset")

    def __init__(self, seq: int, cid: bytes, base_offset: int, base_seq: int, level: int,
                 self_offset: int, image_length: int, image: Iterable[bytes | bytearray]) -> None:
        nb = block_count(image_length)
        self.length = payload_length(nb, image_length)
        self._head = LAYER_PREFIX_STRUCT.pack(seq, cid, base_offset, base_seq, level, nb,
                                              self_offset, image_length)
        self._image_length = image_length
        self._image = image
        self._self_offset = self_offset

    def write(self, put: Callable[[int, bytes | bytearray], None]) -> int:
        """Write every byte of the payload once through ``put(payload offset, bytes)``
        (the image first, the head, which holds the block CRCs, last) and return the
        payload's CRC32C (§3). Once only: the image is consumed. Raises what ``put``
        raises, and ValueError if the image is not ``image_length`` bytes long."""
        n = self._image_length
        at = image_start(block_count(n))
        crcs = bytearray()
        image_crc = block_crc = pos = 0  # pos: bytes of the image written
        for chunk in self._image:
            put(at + pos, chunk)
            image_crc = crc32c(chunk, image_crc)
            with memoryview(chunk) as view:
                i = 0
                while i < len(view):
                    take = min(len(view) - i, LAYER_BLOCK - pos % LAYER_BLOCK)
                    block_crc = crc32c(view[i:i + take], block_crc)
                    i += take
                    pos += take
                    if pos % LAYER_BLOCK == 0:
                        crcs += _U32.pack(block_crc)
                        block_crc = 0
        if pos != n:
            raise ValueError(f"layer image of {pos} bytes, laid out for {n}")
        if pos % LAYER_BLOCK:
            crcs += _U32.pack(block_crc)
        head = bytearray(self._head)
        head += crcs
        head += _U32.pack(crc32c(head))
        head += bytes(at - len(head))
        tail = bytes(-n % FRAME_ALIGN) + LAYER_TRAILER_STRUCT.pack(self._self_offset,
                                                                    LAYER_MAGIC)
        put(at + n, tail)
        put(0, head)
        return crc32c(tail, _crc_concat(crc32c(head), image_crc, n))


_ZEROS = bytes(LAYER_BLOCK)


def _crc_concat(crc_a: int, crc_b: int, len_b: int) -> int:
    """The CRC32C of ``a + b`` from ``crc32c(a)``, ``crc32c(b)`` and ``len(b)``: the CRC
    is affine in its input, so ``crc(a + b) = crc(a + 0^n) ^ crc(0^n) ^ crc(b)``, with
    ``n = len(b)``. Costs two CRCs of ``n`` zero bytes (in C, a few ms per 10 MiB),
    so that a payload written in pieces is never read back."""
    shifted, zeros = crc_a, 0
    while len_b:
        k = min(len_b, len(_ZEROS))
        piece = _ZEROS if k == len(_ZEROS) else _ZEROS[:k]
        shifted, zeros = crc32c(piece, shifted), crc32c(piece, zeros)
        len_b -= k
    return shifted ^ zeros ^ crc_b


def encode_layer(seq: int, cid: bytes, base_offset: int, base_seq: int, level: int,
                 self_offset: int, image: bytes | bytearray) -> bytes:
    """The payload of a layer record over ``image``, whose frame starts at file offset
    ``self_offset`` (§8.7), built whole: for a layer no larger than a write chunk
    (:class:`LayerPayload` writes the same bytes in pieces)."""
    n = len(image)
    nb = block_count(n)
    head = bytearray(LAYER_PREFIX_STRUCT.pack(seq, cid, base_offset, base_seq, level, nb,
                                              self_offset, n))
    with memoryview(image) as view:
        for b in range(nb):
            head += _U32.pack(crc32c(view[b * LAYER_BLOCK:(b + 1) * LAYER_BLOCK]))
    head += _U32.pack(crc32c(head))
    head += bytes(-len(head) % FRAME_ALIGN)
    tail = bytes(-n % FRAME_ALIGN) + LAYER_TRAILER_STRUCT.pack(self_offset, LAYER_MAGIC)
    return b"".join((head, image, tail))


def decode_layer_header(payload: Any) -> LayerHeader:
    """The checked fixed part of a layer's payload: ``head_crc``, the padding, the
    lengths and the trailer against the head, and the base fields (§8.7, R88). Reads
    only the head and the trailer (a few KiB at most per GiB of image); raises
    DecodeError."""
    n = len(payload)
    if n < LAYER_PREFIX_SIZE + 4 + _TRAILER:
        raise DecodeError("layer record shorter than its head and trailer (§8.7)", 0)
    seq, cid, base_off, base_seq, level, nb, self_off, image_len = \
        LAYER_PREFIX_STRUCT.unpack_from(payload, 0)
    crc_at = LAYER_PREFIX_SIZE + 4 * nb
    if crc_at + 4 > n:
        raise DecodeError(f"layer claims {nb} blocks, more than the record holds (§8.7)", 60)
    if crc32c(payload[:crc_at]) != _U32.unpack_from(payload, crc_at)[0]:
        raise DecodeError("layer head checksum does not match (R88)", crc_at)
    at = image_start(nb)
    if at > n or any(payload[crc_at + 4:at]):
        raise DecodeError("layer padding is cut short or not zero (§8.7)", crc_at + 4)
    if image_len < 24 or block_count(image_len) != nb or \
            payload_length(nb, image_len) != n:
        raise DecodeError(f"layer of {n} bytes with {nb} block CRCs for an image of "
                          f"{image_len} bytes (R88)", 60)
    if LAYER_TRAILER_STRUCT.unpack_from(payload, n - _TRAILER) != (self_off, LAYER_MAGIC):
        raise DecodeError("layer trailer does not repeat its self_offset (R88)", n - _TRAILER)
    if (base_off == 0) != (level == LAYER_LEVEL_FULL) or (base_off == 0) != (base_seq == 0):
        raise DecodeError("layer base fields disagree: base_offset 0 if and only if "
                          "base_seq 0 and level full (R88)", 40)
    if seq == 0 or (base_off and (base_seq >= seq or base_off >= self_off)):
        raise DecodeError(f"layer of commit {seq} on a base of commit {base_seq} at offset "
                          f"{base_off}, not before it (R88)", 0)
    return LayerHeader(seq, bytes(cid), base_off, base_seq, level, nb, self_off, image_len,
                       at)


def trailer_at(buf: Any, end: int) -> int | None:
    """The ``self_offset`` of the layer whose frame ends at ``end`` of ``buf`` (a whole
    file's bytes), if the 16 bytes before ``end`` are a layer trailer; else None.
    Only a candidate: the caller checks the frame it names (§10.1)."""
    if end < _TRAILER:
        return None
    self_off, magic = LAYER_TRAILER_STRUCT.unpack_from(buf, end - _TRAILER)
    return int(self_off) if magic == LAYER_MAGIC else None


class BlockGuard:
    """Checks each block of a layer's image against its CRC the first time any byte of
    it is read (§8.7, R89); a failure raises DecodeError naming the block's offset
    in the file (``base``: the file offset of the image)."""

    __slots__ = ("_mv", "_crcs", "_ok", "_base")

    def __init__(self, payload: memoryview, h: LayerHeader, base: int) -> None:
        self._mv = payload[h.image_at:h.image_at + h.image_length]
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
                    raise DecodeError(f"layer block {b} fails its CRC (R89): the layer is "
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
    return StateImage(payload[h.image_at:h.image_at + h.image_length], at, sparse=not h.full,
                      guard=BlockGuard(payload, h, at))


def find_newest_layer(buf: Any, size: int, allowed_flags: int, budget: int) -> int | None:
    """The frame offset of the newest layer whose frame ends in the last ``budget``
    bytes of ``buf`` (a whole file's ``size`` bytes), found from the end by its
    trailer (§10.1); None if there is none there. A candidate counts only if the
    frame it names is header-valid (R21–R25) with kind LAYER, ends right where
    its trailer does, and its head passes R88. No I/O: the caller walks forward
    from the offset returned to prove the rest (§10.1)."""
    floor = max(HEADER_SIZE, size - budget)
    hi, window, m = size, 1 << 16, len(LAYER_MAGIC)
    while hi - floor >= m:
        # Windows growing from the end: the newest layer is usually within a few
        # KiB of it, and only the bytes searched are read (copied, paged in).
        lo = max(floor, hi - window)
        chunk = bytes(buf[lo:hi])
        i = chunk.rfind(LAYER_MAGIC)
        while i >= 0:
            pos = lo + i
            # The magic is 8-aligned at the end of a frame (layer payloads are
            # multiples of 8): anything else is a coincidence in other bytes.
            off = trailer_at(buf, pos + m) if pos % FRAME_ALIGN == 0 else None
            if off is not None and _layer_frame_ends_at(buf, off, pos + m, allowed_flags):
                return off
            i = chunk.rfind(LAYER_MAGIC, 0, i + m - 1)
        if lo == floor:
            return None
        hi, window = lo + m - 1, window * 4  # a magic across ``lo`` is found next
    return None


def _layer_frame_ends_at(buf: Any, off: int, end: int, allowed_flags: int) -> bool:
    if not HEADER_SIZE <= off <= end - FRAME_HEADER_SIZE or off % FRAME_ALIGN:
        return False
    head = bytes(buf[off:off + FRAME_HEADER_SIZE])
    n = header_payload_length(head, allowed_flags, crc32c)
    if n < 0 or head[FRAME_KIND_OFFSET] != KIND_LAYER or off + FRAME_HEADER_SIZE + n != end:
        return False
    try:
        h = decode_layer_header(memoryview(buf)[off + FRAME_HEADER_SIZE:end])
    except DecodeError:
        return False
    return h.self_offset == off
