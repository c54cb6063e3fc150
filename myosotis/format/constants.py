"""On-disk constants and fixed layouts of format versions 1 to 3.

Every value here is defined by formatspec/FORMAT.md; the section is named on
each line. Layouts are ``struct`` formats checked against their documented
sizes at import.
"""

from __future__ import annotations

import struct
from typing import Final

# §1 CRC32C: reflected Castagnoli polynomial (init and final xor 0xFFFFFFFF)
CRC32C_POLY: Final = 0x82F63B78

# §2 File header
MAGIC: Final = b"MYOSOTIS"
FORMAT_VERSION: Final = 4  # the newest version read and written (§12); new files start at 1
VERSION_UNSYNCED: Final = 2  # the first version with the UNSYNCED frame flag (§3, §12)
VERSION_REWIND: Final = 3  # the first version with UNDELETE and ORIGIN (§4, §6, §12)
VERSION_LAYERS: Final = 4  # the first version with LAYER records (§8.7, §12)
HEADER_SIZE: Final = 32
HEADER_STRUCT: Final = struct.Struct("<8sHHI12sI")
assert HEADER_STRUCT.size == HEADER_SIZE

# §3 Frames
FRAME_HEADER_SIZE: Final = 16
FRAME_HEADER_STRUCT: Final = struct.Struct("<IB3sII")
assert FRAME_HEADER_STRUCT.size == FRAME_HEADER_SIZE
FRAME_ALIGN: Final = 8
MAX_PAYLOAD: Final = 1 << 30
FRAME_FLAG_UNSYNCED: Final = 1  # §3 flags byte (version 2): bytes before may not be durable
# R23: the frame flags each format_version allows
FRAME_FLAGS_ALLOWED: Final = {1: 0, 2: FRAME_FLAG_UNSYNCED, 3: FRAME_FLAG_UNSYNCED,
                              4: FRAME_FLAG_UNSYNCED}
# §3 byte offsets of the frame header's fields (payload_length is at 0)
FRAME_KIND_OFFSET: Final = 4
FRAME_FLAGS_OFFSET: Final = 5  # then 2 reserved bytes
FRAME_PAYLOAD_CRC_OFFSET: Final = 8
FRAME_HEADER_CRC_OFFSET: Final = 12  # header_crc covers the 12 bytes before it
assert FRAME_HEADER_STRUCT.format == "<IB3sII"  # the offsets above are its fields'

# §4 Record kinds
KIND_COMMIT: Final = 1
KIND_CHECKPOINT: Final = 2
KIND_GENESIS: Final = 3
KIND_ORIGIN: Final = 4  # version 3 and later (R34): fork provenance, right after the genesis
KIND_LAYER: Final = 5  # version 4 (§8.7): a sparse image over a base
KIND_NAMES: Final = {KIND_COMMIT: "commit", KIND_CHECKPOINT: "checkpoint", KIND_GENESIS: "genesis",
                     KIND_ORIGIN: "origin", KIND_LAYER: "layer"}
# R22: the kinds valid in each format_version: the one table every check reads.
# The frame scan (C helper and twin) accepts KIND_MIN..KIND_MAX, the union of
# every version's kinds; the walk then refuses a kind its file's version lacks.
_KINDS_V1: Final = frozenset({KIND_COMMIT, KIND_CHECKPOINT, KIND_GENESIS})
KINDS_BY_VERSION: Final = {
    1: _KINDS_V1,
    2: _KINDS_V1,
    3: _KINDS_V1 | {KIND_ORIGIN},
    4: _KINDS_V1 | {KIND_ORIGIN, KIND_LAYER},
}
KIND_MIN: Final = KIND_COMMIT
KIND_MAX: Final = KIND_LAYER
assert set(KIND_NAMES) == set(range(KIND_MIN, KIND_MAX + 1))
assert set(FRAME_FLAGS_ALLOWED) == set(KINDS_BY_VERSION)
assert max(KINDS_BY_VERSION) == FORMAT_VERSION

# §5 Value tags
TAG_NULL: Final = 0x00
TAG_FALSE: Final = 0x01
TAG_TRUE: Final = 0x02
TAG_INT: Final = 0x03
TAG_FLOAT: Final = 0x04
TAG_STR: Final = 0x05
TAG_REF: Final = 0x06
TAG_LIST: Final = 0x07
TAG_MAP: Final = 0x08

# §6 Mutation opcodes
OP_CREATE: Final = 0x01
OP_SET: Final = 0x02
OP_UNSET: Final = 0x03
OP_DELETE: Final = 0x04
OP_LIST_INSERT: Final = 0x05
OP_LIST_REMOVE: Final = 0x06
OP_LIST_REPLACE: Final = 0x07
OP_MAP_SET: Final = 0x08
OP_MAP_DELETE: Final = 0x09
OP_UNDELETE: Final = 0x0A  # version 3 only (§6, §12)
PATH_INDEX: Final = 0x00
PATH_KEY: Final = 0x01

# §7 Commit record: seq, timestamp_us, parent, next_node_id
COMMIT_PREFIX_STRUCT: Final = struct.Struct("<Qq32sQ")
assert COMMIT_PREFIX_STRUCT.size == 56

# §8.2 / §8.3 Checkpoint and genesis records: seq, commit id, state hash
SNAPSHOT_PREFIX_STRUCT: Final = struct.Struct("<Q32s32s")
assert SNAPSHOT_PREFIX_STRUCT.size == 72
SNAPSHOT_PREFIX_SIZE: Final = 72
# §8.6 Origin record: source seq, commit id, state hash, source base seq, base commit id
ORIGIN_STRUCT: Final = struct.Struct("<Q32s32sQ32s")
assert ORIGIN_STRUCT.size == 112
# §8.1 State image: next_node_id, node_count
IMAGE_PREFIX_STRUCT: Final = struct.Struct("<QQ")
assert IMAGE_PREFIX_STRUCT.size == 16
NODE_FLAG_DELETED: Final = 0x01
# §8.7 Layer record: seq, commit_id, base_offset, base_seq, level, block_count,
# self_offset, image_length; and its 16-byte trailer: self_offset, LAYER_MAGIC
LAYER_PREFIX_STRUCT: Final = struct.Struct("<Q32sQQIIQQ")
assert LAYER_PREFIX_STRUCT.size == 80
LAYER_PREFIX_SIZE: Final = 80
LAYER_TRAILER_STRUCT: Final = struct.Struct("<Q8s")
assert LAYER_TRAILER_STRUCT.size == 16
LAYER_MAGIC: Final = b"MYOLAYER"  # §8.7: ends every layer's payload, found from the end
LAYER_BLOCK: Final = 1 << 16  # §8.7: bytes of image per block CRC
LAYER_LEVEL_FULL: Final = 0xFFFFFFFF  # §8.7: the level of a full layer (base_offset 0)

# §9 Hashes
HASH_SIZE: Final = 32
ZERO_HASH: Final = bytes(HASH_SIZE)

# §11 Limits
MAX_STRING: Final = 1 << 24
MAX_FIELD_NAME: Final = 1024
MAX_TYPE_NAME: Final = 255
MAX_DEPTH: Final = 64
MAX_ITEMS: Final = 1 << 24
MAX_PATH: Final = 64
MAX_NODE_ID: Final = (1 << 63) - 1
INT_MIN: Final = -(1 << 63)
INT_MAX: Final = (1 << 63) - 1
