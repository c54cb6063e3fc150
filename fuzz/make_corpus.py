"""Build the seed corpora of the fuzz harnesses (``python fuzz/make_corpus.py``).

Seeds are small valid files, so the fuzzers start deep in the format instead of
at the magic check:

- ``corpus/files/``: whole data files, for fuzz_open, fuzz_structured and
  fuzz_fsck. Every golden vector ``formatspec/vectors/*.myo`` is copied in, and
  files written through the public API cover every value type, every mutation
  opcode, labels, empty commits, checkpoints, a genesis (compaction), a torn
  tail and a damaged frame.
- ``corpus/decode/``: one selector byte (see fuzz_decode.TARGETS) then a value,
  a mutation, a commit record, a state image, a snapshot record or a header.
- ``corpus/helper/``: the fuzz_helper layout (flags, u32, buffer) over the files.

The output is deterministic (fixed clock), so re-running it changes nothing
unless the engine or the vectors changed.
"""

from __future__ import annotations

import shutil
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(FUZZ_DIR))

from myosotis import Memory, Ref  # noqa: E402
from myosotis.format.mutations import (  # noqa: E402
    Create,
    Delete,
    ListInsert,
    ListRemove,
    ListReplace,
    MapDelete,
    MapSet,
    Set,
    Unset,
    put_mutation,
)
from myosotis.format.values import encode_value  # noqa: E402
from myosotis.testing import open_memory  # noqa: E402

CORPUS = FUZZ_DIR / "corpus"
VECTORS = FUZZ_DIR.parent / "formatspec" / "vectors"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000_000

    def __call__(self) -> int:
        self.now += 1_000_000
        return self.now


def _write(path: Path, build: Callable[[Memory], None], floor: int = 1 << 20) -> bytes:
    with open_memory(path, durability="none", clock=Clock(), checkpoint_floor=floor) as mem:
        build(mem)
    return path.read_bytes()


def _empty(mem: Memory) -> None:
    pass


def _one(mem: Memory) -> None:
    mem.create("Agent", name="Iris")
    mem.commit()


def _values(mem: Memory) -> None:
    a = mem.create("Agent", name="Iris", age=3, ok=True, no=False, nil=None, pi=3.25,
                   neg=-(1 << 63), big=(1 << 63) - 1, nan=float("nan"), zero=-0.0,
                   text="fleur \u2764 \U0001f338", items=[1, "two", [3.5, None]],
                   meta={"b": 1, "a": {"x": [True]}, "": "empty key"})
    mem.commit("values")
    b = mem.create("Ref", to=a, many=[a, {"r": a}])
    b.to = b
    mem.commit()


def _edits(mem: Memory) -> None:
    a = mem.create("Doc", items=[1, 2, 3], m={"a": 1, "b": [1, {"c": 2}]}, t="x")
    mem.commit("create")
    a.items.append(4)
    a.items.insert(0, 0)
    a.items[2] = "two"
    del a.items[1]
    a.m["z"] = 26
    del a.m["a"]
    a.m["b"][1]["d"] = [5]
    a.m["b"].append(None)
    mem.commit("paths")
    del a.t
    a.t2 = 2
    mem.commit()
    mem.commit("marker", allow_empty=True)
    b = mem.create("Tmp", of=a)
    mem.commit()
    b.delete()
    mem.commit("delete")


def _checkpoints(mem: Memory) -> None:
    _edits(mem)
    mem.checkpoint()
    n = mem.get(1)
    n.items.append("after checkpoint")
    mem.commit()
    mem.checkpoint()
    mem.create("Late")
    mem.commit()


def _auto_checkpoints(mem: Memory) -> None:
    for i in range(8):
        mem.create("N", i=i, s="x" * (i * 7))
        mem.commit(f"c{i}")


def _compacted(mem: Memory) -> None:
    _edits(mem)
    mem.compact(at=3)
    mem.get(1).after = "compaction"
    mem.commit()


def _compacted_head(mem: Memory) -> None:
    _values(mem)
    mem.compact()


def _deep(mem: Memory) -> None:
    v: list = []
    for _ in range(63):
        v = [v]
    mem.create("Deep", v=v)
    mem.commit()


def file_seeds(tmp: Path) -> Iterator[tuple[str, bytes]]:
    builders: dict[str, tuple[Callable[[Memory], None], int]] = {
        "empty": (_empty, 1 << 20), "one": (_one, 1 << 20), "values": (_values, 1 << 20),
        "edits": (_edits, 1 << 20), "checkpoints": (_checkpoints, 1 << 20),
        "auto-checkpoints": (_auto_checkpoints, 64), "compacted": (_compacted, 1 << 20),
        "compacted-head": (_compacted_head, 1 << 20), "deep": (_deep, 1 << 20),
    }
    for name, (build, floor) in builders.items():
        data = _write(tmp / f"{name}.myo", build, floor)
        yield f"api-{name}.myo", data
    edits = (tmp / "edits.myo").read_bytes()
    yield "api-torn-tail.myo", edits[:-11]
    damaged = bytearray(edits)
    damaged[60] ^= 0x10  # inside the first commit's payload: valid frames follow
    yield "api-damaged-frame.myo", bytes(damaged)
    if VECTORS.is_dir():
        for v in sorted(VECTORS.glob("*.myo")):
            yield f"vector-{v.stem}.myo", v.read_bytes()


def frames_of(data: bytes) -> Iterator[tuple[int, bytes]]:
    p = 32
    while p + 16 <= len(data):
        n, kind = struct.unpack_from("<IB", data, p)
        if p + 16 + n > len(data):
            return
        yield kind, data[p + 16:p + 16 + n]
        p += 16 + n + (-n % 8)


def decode_seeds(files: dict[str, bytes]) -> Iterator[tuple[str, bytes]]:
    values = [None, True, False, 0, -1, 1 << 62, -(1 << 63), 2.5, float("-inf"), "", "h\u00e9",
              Ref(1), [], [1, [2, [3]]], {}, {"a": 1, "b": {"c": [None]}}]
    for i, v in enumerate(values):
        yield f"value-{i:02d}", b"\x00" + encode_value(v)
    muts = [Create(1, "T", {"a": 1, "b": [2]}), Set(1, "f", {"k": Ref(1)}), Unset(1, "f"),
            Delete(1), ListInsert(1, "l", (0, "k"), 2, "v"), ListRemove(1, "l", (), 0),
            ListReplace(1, "l", (1,), 0, [1]), MapSet(1, "m", ("a", 0), "key", 1.0),
            MapDelete(1, "m", (), "key")]
    for i, m in enumerate(muts):
        out = bytearray()
        put_mutation(out, m)
        yield f"mutation-{i:02d}", b"\x01" + bytes(out)
    for name, data in files.items():
        for j, (kind, payload) in enumerate(frames_of(data)):
            stem = name.removesuffix(".myo")
            if kind == 1:
                yield f"commit-{stem}-{j}", b"\x02" + payload
            elif kind in (2, 3):
                yield f"image-{stem}-{j}", b"\x03" + payload[72:]
                yield f"snapshot-{stem}-{j}", b"\x04" + payload
        yield f"header-{name}", b"\x05" + data[:32]


def helper_seeds(files: dict[str, bytes]) -> Iterator[tuple[str, bytes]]:
    for name, data in files.items():
        stem = name.removesuffix(".myo")
        yield f"scan-{stem}", b"\x01" + struct.pack("<I", 4) + data  # start 32, verify
        yield f"scan-headers-{stem}", b"\x10" + struct.pack("<I", 4) + data
        yield f"crc-{stem}", b"\x02" + struct.pack("<I", 0) + data[:200]
        yield f"crc-portable-{stem}", b"\x26" + struct.pack("<I", 7) + data[:100]


def _replace_dir(d: Path, seeds: Iterator[tuple[str, bytes]]) -> int:
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    n = 0
    for name, data in seeds:
        (d / name).write_bytes(data)
        n += 1
    return n


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = dict(file_seeds(Path(tmp)))
    counts = {
        "files": _replace_dir(CORPUS / "files", iter(files.items())),
        "decode": _replace_dir(CORPUS / "decode", decode_seeds(files)),
        "helper": _replace_dir(CORPUS / "helper", helper_seeds(files)),
    }
    for name, n in counts.items():
        print(f"fuzz/corpus/{name}: {n} seeds")


if __name__ == "__main__":
    main()
