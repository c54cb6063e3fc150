"""Structure-aware fuzz harness: mutate valid files frame by frame, then open them.

Property: the same as fuzz_open.py (fuzz/checks.py): whatever the bytes, a
full read ends in a ``MyosotisError`` or in states consistent with each other,
with fsck and with the reference reader, and a writer's recovery keeps every
commit.

What differs is the mutator. Random byte edits almost never get past the
frame CRCs (FORMAT.md §3), so a byte-level fuzzer spends its time in the scan.
This one parses the input into frames and edits them as a careful attacker or
a confused writer would: flip bits inside a payload, insert or delete payload
bytes, overwrite a varint with an edge value, splice, duplicate, delete or swap
whole frames, change a length, truncate. It then re-frames the payloads with
correct CRCs (R21, R26) and, most of the time, re-chains the history: sequence
numbers (R31), parent ids (R32), checkpoint seq/commit id (R33) and snapshot
state hashes (R80, R85) are recomputed, so the edit reaches the record
decoders and the graph rules (R50-R61, R70-R73) instead of being caught by a
checksum. Some edits keep the stale CRCs or hashes on purpose.
"""

from __future__ import annotations

import random
import struct

import fuzzlib

with fuzzlib.instrumented():
    import checks
    from blake3 import blake3

    from myosotis.format.helper import crc32c

HEADER_SIZE = 32  # FORMAT.md §2
FRAME = struct.Struct("<IB3sII")  # FORMAT.md §3
COMMIT, CHECKPOINT, GENESIS = 1, 2, 3  # FORMAT.md §4
EDGE_BYTES = (0x00, 0x01, 0x02, 0x07, 0x08, 0x09, 0x0A, 0x3F, 0x40, 0x7F, 0x80, 0xFF)
EDGE_VARINTS = (b"\x00", b"\x01", b"\x7f", b"\x80\x01", b"\x80\x00", b"\xff\xff\xff\xff\x0f",
                b"\xff" * 9 + b"\x01", b"\xff" * 9 + b"\x02", b"\x80\x80\x80\x80\x08",
                b"\x81\x80\x80\x08", b"\x40", b"\x41")


def split(data: bytes) -> tuple[bytes, list[tuple[int, bytearray]], bytes]:
    """``(file header, [(kind, payload)], tail)``: frames read by their length fields only."""
    frames: list[tuple[int, bytearray]] = []
    p = HEADER_SIZE
    while p + 16 <= len(data):
        n, kind, _, _, _ = FRAME.unpack_from(data, p)
        size = 16 + n + (-n % 8)
        if p + size > len(data):
            break
        frames.append((kind, bytearray(data[p + 16:p + 16 + n])))
        p += size
    return data[:HEADER_SIZE], frames, data[p:]


def frame(kind: int, payload: bytes) -> bytes:
    head = struct.pack("<IB3sI", len(payload), kind, b"\0\0\0", crc32c(payload))
    return head + struct.pack("<I", crc32c(head)) + bytes(payload) + bytes(-len(payload) % 8)


def rechain(frames: list[tuple[int, bytearray]]) -> None:
    """Recompute seq, parent, checkpoint fields and snapshot hashes in place (R31-R33, R80)."""
    seq, head = 0, bytes(32)
    for i, (kind, p) in enumerate(frames):
        if kind == GENESIS and i == 0 and len(p) >= 72:
            p[40:72] = blake3(bytes(p[72:])).digest()
            seq, head = struct.unpack_from("<Q", p)[0], bytes(p[8:40])
        elif kind == COMMIT and len(p) >= 56:
            seq += 1
            p[0:8] = struct.pack("<Q", seq)
            p[16:48] = head
            head = blake3(bytes(p)).digest()
        elif kind == CHECKPOINT and len(p) >= 72:
            p[0:8] = struct.pack("<Q", seq)
            p[8:40] = head
            p[40:72] = blake3(bytes(p[72:])).digest()


def _edit_payload(rng: random.Random, p: bytearray, max_size: int) -> None:
    if not p:
        p += bytes([rng.choice(EDGE_BYTES)])
        return
    what = rng.randrange(7)
    i = rng.randrange(len(p))
    if what == 0:
        p[i] ^= 1 << rng.randrange(8)
    elif what == 1:
        p[i] = rng.choice(EDGE_BYTES)
    elif what == 2:
        p[i:i + rng.randrange(1, 4)] = rng.choice(EDGE_VARINTS)
    elif what == 3:
        del p[i:i + rng.randrange(1, 9)]
    elif what == 4:
        j = rng.randrange(len(p))
        p[i:i] = p[j:j + rng.randrange(1, 17)]
    elif what == 5 and fuzzlib.atheris is not None:
        p[:] = fuzzlib.atheris.Mutate(bytes(p), max(len(p) * 2, 8))
    else:
        p[i:i] = bytes([rng.choice(EDGE_BYTES)])


def mutate(data: bytes, max_size: int, seed: int) -> bytes:
    """The custom mutator (libFuzzer's LLVMFuzzerCustomMutator contract)."""
    rng = random.Random(seed)
    if len(data) < HEADER_SIZE or not data.startswith(b"MYOSOTIS") or rng.random() < 0.05:
        if fuzzlib.atheris is not None:
            return bytes(fuzzlib.atheris.Mutate(data, max_size))
        return data
    header, frames, tail = split(data)
    op = rng.randrange(10)
    if frames and op < 4:
        _edit_payload(rng, rng.choice(frames)[1], max_size)
    elif frames and op == 4:
        frames.insert(rng.randrange(len(frames) + 1), rng.choice(frames))
    elif frames and op == 5:
        del frames[rng.randrange(len(frames))]
    elif len(frames) > 1 and op == 6:
        i, j = rng.sample(range(len(frames)), 2)
        frames[i], frames[j] = frames[j], frames[i]
    elif frames and op == 7:
        i = rng.randrange(len(frames))
        frames[i] = (rng.choice((0, 1, 2, 3, 4, 255)), frames[i][1])
    frames = [(k, bytearray(p)) for k, p in frames]  # duplicates must not share buffers
    if rng.random() < 0.8:
        rechain(frames)
    out = bytearray(header)
    for kind, p in frames:
        out += frame(kind, p)
    if op == 8 and len(out) > HEADER_SIZE:  # raw damage after framing: stale CRCs
        i = rng.randrange(HEADER_SIZE, len(out))
        out[i] ^= 1 << rng.randrange(8)
    elif op == 9:  # a cut, or a torn tail of garbage
        if rng.random() < 0.5:
            del out[rng.randrange(HEADER_SIZE, len(out) + 1):]
        else:
            out += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    elif rng.random() < 0.2:
        out += tail
    return bytes(out[:max_size])


def test_one_input(data: bytes) -> None:
    checks.check_file(data)


if __name__ == "__main__":
    fuzzlib.main(test_one_input, custom_mutator=mutate)
