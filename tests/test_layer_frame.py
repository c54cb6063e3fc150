"""A layer streamed to the file in chunks (format/layer.py ``LayerPayload``,
format/image.py ``image_layout``/``image_chunks``, storage/append.py) against the
simple path that joins an encoded image into a payload and the payload into a frame,
a streamed layer cut off by a crash or a full disk, and the
stack's streamed merge of its layers (``LayerStack.records``) against a dict overlay.
The writer's bytes must not change (FORMAT.md §3, §8.1, §8.7): these are differential
tests of the memory-saving path against the obvious one."""

from __future__ import annotations

import errno
import os
import random
import struct
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_powerloss import MODES, Clock, PowerCut, PowerLossFS, Progress, _commit

from myosotis import Memory, WriterFailedError
from myosotis.engine import layers
from myosotis.engine.layers import LayerStack, StackEntry
from myosotis.engine.verify import verify_file
from myosotis.format.constants import (
    FRAME_ALIGN,
    FRAME_FLAG_UNSYNCED,
    KIND_LAYER,
    LAYER_BLOCK,
    LAYER_LEVEL_FULL,
    LAYER_MAGIC,
    LAYER_PREFIX_STRUCT,
    LAYER_TRAILER_STRUCT,
)
from myosotis.format.header import encode_frame, frame_head
from myosotis.format.helper import crc32c
from myosotis.format.image import StateImage, encode_image, image_chunks, image_layout
from myosotis.format.layer import LayerPayload, encode_layer
from myosotis.storage.fileops import FileOps
from myosotis.testing import open_memory, store_of

CID = bytes(range(32))
_U32 = struct.Struct("<I")


def joined_layer(seq: int, base_offset: int, base_seq: int, level: int, self_offset: int,
                 image: bytes) -> bytes:
    """The layer payload of §8.7 written the obvious way (the writer's path before
    frames were built in place): head, block CRCs, head CRC, padding, image,
    padding, trailer, joined."""
    n = len(image)
    nb = -(-n // LAYER_BLOCK)
    head = bytearray(LAYER_PREFIX_STRUCT.pack(seq, CID, base_offset, base_seq, level, nb,
                                              self_offset, n))
    for b in range(nb):
        head += _U32.pack(crc32c(image[b * LAYER_BLOCK:(b + 1) * LAYER_BLOCK]))
    head += _U32.pack(crc32c(head))
    head += bytes(-len(head) % FRAME_ALIGN)
    tail = bytes(-n % FRAME_ALIGN) + LAYER_TRAILER_STRUCT.pack(self_offset, LAYER_MAGIC)
    return bytes(head) + image + tail


def records_of(ids: list[int], sizes: list[int]) -> list[tuple[int, bytes]]:
    return [(i, bytes([i % 251]) * s) for i, s in zip(ids, sizes, strict=False)]


# ids strictly ascending, records of any length (some past a block, so images span
# several blocks and blocks split records)
layer_records = st.lists(
    st.tuples(st.integers(1, 5), st.one_of(st.integers(0, 40), st.integers(0, 3 * LAYER_BLOCK))),
    max_size=12,
).map(lambda steps: records_of(
    [sum(step for step, _ in steps[:k + 1]) for k in range(len(steps))],
    [size for _, size in steps]))


def written(payload: LayerPayload) -> tuple[bytes, int]:
    """``payload`` written through its ``put`` into a buffer, each byte once, and the
    CRC it returns."""
    out = bytearray(payload.length)
    seen = bytearray(payload.length)

    def put(at: int, data: bytes | bytearray) -> None:
        assert not any(seen[at:at + len(data)]), "a byte written twice"
        out[at:at + len(data)] = data
        seen[at:at + len(data)] = b"\x01" * len(data)

    crc = payload.write(put)
    assert all(seen), "a byte never written"
    return bytes(out), crc


@settings(max_examples=60, deadline=None)
@given(layer_records, st.integers(0, 3), st.sampled_from([0, FRAME_FLAG_UNSYNCED]),
       st.sampled_from([1, 100, LAYER_BLOCK - 1, LAYER_BLOCK + 7, 1 << 20]))
def test_a_layer_streamed_in_chunks_is_the_joined_frame_byte_for_byte(
        recs: list[tuple[int, bytes]], level: int, flags: int, chunk: int) -> None:
    """Chunks of any size (inside a block, across blocks, larger than the image)
    give the same payload and the CRC the joined frame's header holds."""
    nni = (recs[-1][0] if recs else 0) + 1
    image = encode_image(nni, recs)
    layout = image_layout(nni, recs)
    assert layout.length == len(image)
    assert b"".join(image_chunks(layout, iter(recs), chunk)) == image
    payload, crc = written(LayerPayload(9, CID, 4096, 3, level, 8192, layout.length,
                                        image_chunks(layout, iter(recs), chunk)))
    assert payload == joined_layer(9, 4096, 3, level, 8192, image)
    assert crc == crc32c(payload)
    assert frame_head(KIND_LAYER, flags, len(payload), crc) + payload == \
        encode_frame(KIND_LAYER, payload, flags)
    assert encode_layer(9, CID, 4096, 3, level, 8192, image) == payload


def test_records_that_differ_from_their_layout_are_refused() -> None:
    recs = records_of([1, 2, 3], [4, 5, 6])
    layout = image_layout(4, recs)
    with pytest.raises(ValueError, match="differ from the layout"):
        list(image_chunks(layout, recs[:2], 8))
    with pytest.raises(ValueError, match="differ from the layout"):
        list(image_chunks(layout, [*recs[:2], (3, b"x" * 7)], 8))
    with pytest.raises(ValueError, match="laid out for"):
        written(LayerPayload(1, CID, 0, 0, LAYER_LEVEL_FULL, 64, layout.length + 1,
                             image_chunks(layout, recs, 8)))


def overlaid(full_n: int, layers: list[list[tuple[int, bytes]]]) -> list[tuple[int, bytes]]:
    """What a stack of ``layers`` (newest first) over a dense image of ``full_n``
    nodes holds, the simple way: a dict, the older layers overwritten by newer."""
    recs = {i: b"full%d" % i for i in range(1, full_n + 1)}
    for layer in reversed(layers):
        recs.update(layer)
    return sorted(recs.items())


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 30), st.lists(st.sets(st.integers(1, 45)), max_size=5))
def test_the_streamed_merge_of_a_stack_is_the_dict_overlay(
        full_n: int, layer_ids: list[set[int]]) -> None:
    top = max([full_n, *(i for ids in layer_ids for i in ids)])
    layers = [[(i, b"L%d:%d" % (age, i)) for i in sorted(ids)]
              for age, ids in enumerate(layer_ids)]
    # a stack's layers never hold a node past their own next_node_id, and the
    # nodes past the full image's are in the layers (they were created since)
    layers[0:0] = [[(i, b"new%d" % i) for i in range(full_n + 1, top + 1)]]
    full = [(i, b"full%d" % i) for i in range(1, full_n + 1)]
    entries = [StackEntry(64 * (k + 2), k + 2, 0,
                          StateImage(encode_image(top + 1, layer), sparse=True))
               for k, layer in enumerate(layers)]
    entries.append(StackEntry(64, 1, LAYER_LEVEL_FULL,
                              StateImage(encode_image(full_n + 1, full))))
    got = [(i, bytes(rec)) for i, rec in LayerStack(entries).records()]
    assert got == overlaid(full_n, layers)


# --------------------------------------------------------------------------
# a streamed layer cut off: by a power cut at any call, by a full disk


def layer_workload(path: str, fs: FileOps, progress: Progress) -> None:
    """Commits with a full and a sparse layer between them, each streamed in several
    chunks (the test makes LAYER_WRITE_CHUNK small)."""
    mem = open_memory(path, fileops=fs, clock=Clock())
    try:
        for i in range(40):
            mem.create("T", n=i, s="v" * 30)
        _commit(mem, progress, "one")
        assert mem.checkpoint()  # a full layer
        mem.get(3).n = -3
        mem.create("T", n=40)
        _commit(mem, progress, "two")
        assert mem.checkpoint()  # a sparse layer over it
        mem.get(5).s = "w"
        _commit(mem, progress, "three")
    finally:
        mem.close()


def test_a_power_cut_at_any_call_of_a_streamed_layer_loses_no_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut before any of a streamed layer's writes (its chunks, its trailer, its head,
    its frame header, written last), with the unsynced writes lost, kept, torn or
    kept by sectors: the file opens with every acknowledged commit and no other,
    the layer whole or a torn tail (§10 step 3, R28), verifies and takes a commit.
    (test_powerloss.py's simulator; its checks assume no layer.)"""
    monkeypatch.setattr(layers, "LAYER_WRITE_CHUNK", 256)
    (tmp_path / "expected").mkdir()
    fs = PowerLossFS(tmp_path / "expected")
    layer_workload(str(tmp_path / "expected" / "data.myo"), fs, Progress())
    with Memory.open(tmp_path / "expected" / "data.myo", readonly=True) as mem:
        base = store_of(mem).committed.base
        assert isinstance(base, LayerStack) and len(base.entries) == 2  # sparse over full
        assert base.entries[1].image.size > 4 * 256  # streamed in several chunks
        ids = {c.seq: c.id for c in mem.history()}
    rng = random.Random(3)
    for k in range(fs.calls):
        run = tmp_path / f"run{k}"
        run.mkdir()
        cut, progress = PowerLossFS(run, crash_at=k), Progress()
        with pytest.raises(PowerCut):
            layer_workload(str(run / "data.myo"), cut, progress)
        for mode in MODES:
            image, what = tmp_path / f"img{k}-{mode}", f"cut before call {k} ({mode})"
            cut.image(image, mode, rng)
            path = image / "data.myo"
            if not path.exists():
                assert not progress.created, what
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a recovered torn tail warns
                with Memory.open(path, readonly=True) as mem:
                    got = {c.seq: c.id for c in mem.history()}
                assert progress.acked <= len(got) <= max(progress.attempted, progress.acked)
                assert got == {seq: ids[seq] for seq in got}, what
                assert not verify_file(str(path)).errors, what
                with Memory.open(path) as mem:
                    mem.create("Survivor")
                    assert mem.commit().seq == len(got) + 1, what


class FullDiskAt(FileOps):
    """``pwrite`` fails with ENOSPC at its ``fail_at``-th call once armed."""

    def __init__(self) -> None:
        self.armed = False
        self.calls = 0
        self.fail_at = 0

    def pwrite(self, fd: int, data: bytes | bytearray, offset: int) -> None:
        if self.armed:
            self.calls += 1
            if self.calls == self.fail_at:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().pwrite(fd, data, offset)


def test_a_full_disk_in_a_streamed_layer_takes_its_bytes_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC at any write of a streamed layer: the layer is not in the file, the file
    ends where it did, the handle fails stop, and a reopen reads every commit."""
    monkeypatch.setattr(layers, "LAYER_WRITE_CHUNK", 256)
    fail_at = 1
    while True:
        path = tmp_path / f"f{fail_at}.myo"
        fs = FullDiskAt()
        mem = open_memory(path, fileops=fs, clock=Clock())
        for i in range(40):
            mem.create("T", n=i, s="v" * 30)
        mem.commit()
        want, size = mem.state_hash(), path.stat().st_size
        fs.armed, fs.fail_at = True, fail_at
        try:
            mem.checkpoint()
        except WriterFailedError as e:
            assert "not committed" in str(e)
            assert path.stat().st_size == size
            mem.create("T", n=-1)
            with pytest.raises(WriterFailedError):
                mem.commit("refused")
            mem.close()
        else:
            mem.close()
            assert fail_at > 3  # the chunks, the trailer, the head and the header
            return
        with Memory.open(path, readonly=True) as again:
            assert again.state_hash() == want
            assert not store_of(again).problems
        assert not verify_file(str(path)).errors
        fail_at += 1


def resident_kib(path: Path) -> int:
    """KiB of ``path`` this process has mapped and resident (/proc/self/smaps)."""
    total, ours = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):  # a mapping's first line
                ours = line.rstrip().endswith(str(path))
            elif ours and first == "Rss:":
                total += int(line.split()[1])
    return total


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="Linux only")
def test_a_layer_drops_the_pages_its_merge_read_through_the_map(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a layer whose merge read at least RESIDENT_DROP_BYTES through the map
    (here 0: any layer), the writer drops the pages it read from its resident set
    (FileMap.drop_resident) and reads the state on from the page cache, unchanged."""
    monkeypatch.setattr(layers, "RESIDENT_DROP_BYTES", 0)
    path = tmp_path / "a.myo"
    with Memory.open(path, durability="none") as mem:
        for i in range(3000):
            mem.create("T", n=i, s="v" * 200)
        mem.commit()  # a layer follows (LAYER_BYTES): the full one
        mem.get(7).n = -7
        mem.commit()
        base = store_of(mem).committed.base
        assert isinstance(base, LayerStack)
        for _ in base.records():
            pass  # every page of the stack is read: resident
        before = resident_kib(path)
        assert before > 600  # the full layer: 3000 records of 200 bytes
        want = mem.state_hash()
        mem.get(8).n = -8
        mem.commit()
        assert mem.checkpoint()  # a sparse layer over it
        assert resident_kib(path) < before / 4
        assert mem.get(7).n == -7 and mem.get(8).n == -8 and mem.state_hash() != want
