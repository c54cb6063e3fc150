"""Build the golden vectors of formatspec/vectors/ (FORMAT.md §13).

Each vector ``NAME`` is three files:

- ``NAME.myo``: a file written by myosotis through its public API, with a
  fixed clock (commit k, counting from 0, is stamped
  1_700_000_000_000_000 + 1_000_000·k microseconds), so it is byte-identical on
  every run;
- ``NAME.json``: what ``reference_reader.py`` (FORMAT.md only, no myosotis
  code) reads in it: frames, commits with their mutations, checkpoints, the
  final state and its hash;
- ``NAME.hex``: an annotated hex dump naming the structure of every byte.

Golden vectors are never edited (FORMAT.md §12): a change that breaks one is
a new format_version. So this script writes only vectors that do not exist
yet, and ``--check`` proves that the current code still writes the committed
bytes.

    python formatspec/make_vectors.py --check        # exit 1 on any difference
    python formatspec/make_vectors.py --new NAME     # write a brand-new vector
    python formatspec/make_vectors.py                # write all (none may exist)
"""

from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script or imported by the tests
    sys.path.insert(0, str(HERE))

from reference_reader import Dump, SpecError, crc32c, read_file  # noqa: E402

from myosotis import Memory  # noqa: E402
from myosotis.engine.policy import CHECKPOINT_FLOOR  # noqa: E402
from myosotis.testing import open_memory, store_of  # noqa: E402

VECTORS_DIR = HERE / "vectors"
CLOCK_BASE_US = 1_700_000_000_000_000
CLOCK_STEP_US = 1_000_000
SUFFIXES = (".myo", ".json", ".hex")


def fixed_clock() -> Callable[[], int]:
    """A clock whose k-th reading (from 0) is CLOCK_BASE_US + CLOCK_STEP_US·k."""
    k = -1

    def clock() -> int:
        nonlocal k
        k += 1
        return CLOCK_BASE_US + CLOCK_STEP_US * k

    return clock


def f64(bits: int) -> float:
    """The float with these IEEE-754 bits (for NaN payloads and -0.0)."""
    x: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return x


# --------------------------------------------------------------------------
# the vectors: each builder changes a fresh Memory through the public API


def build_empty(mem: Memory) -> None:
    """Nothing: a new file is the header alone (FORMAT.md §2)."""


def build_one_commit(mem: Memory) -> None:
    agent = mem.create("Agent", name="Iris")
    agent.goal = "Explore ideas"
    mem.commit(label="initial goal")


def build_all_values(mem: Memory) -> None:
    v = mem.create(
        "Values",
        null=None, false=False, true=True,
        int_zero=0, int_one=1, int_minus_one=-1, int_63=63, int_64=64, int_minus_65=-65,
        int_min=-(1 << 63), int_max=(1 << 63) - 1,
        float_one_half=1.5, float_zero=0.0, float_neg_zero=-0.0, float_inf=math.inf,
        float_neg_inf=-math.inf, float_min_subnormal=f64(1),
        float_nan=f64(0x7FF8000000000000), float_nan_payload=f64(0x7FF80000DEADBEEF),
        float_neg_nan_payload=f64(0xFFF8000000000001), float_snan=f64(0x7FF0000000000001),
        str_empty="", str_ascii="Iris", str_unicode="é ✓ 𝄞 日本", str_nul="a\x00b",
        list_empty=[], map_empty={},
        list_mixed=[1, "two", 3.0, None, True, False, [], {}],
        # R40: keys in UTF-8 byte order, shorter first: "", "B", "a", "ab", "b", "z", "é"
        map_key_order={"b": 1, "a": 2, "ab": 3, "": 4, "B": 5, "é": 6, "z": 7},
        map_nested={"inner": [1, [2, [3]]], "m": {"deep": {"list": []}}},
    )
    v.ref_self = v  # a reference (tag 0x06) to the node itself, set once it exists (R51)
    v.list_refs = [v, {"to": v}]
    mem.commit(label="every value type")


def build_edits(mem: Memory) -> None:
    task = mem.create("Task", title="write vectors", tags=["a", "b", "c"], note="temp",
                      meta={"k": 1, "z": {"inner": [1, 2]}})
    user = mem.create("User", name="Ana")
    task.owner = user
    mem.commit(label="setup")

    task.tags.insert(1, "x")  # [a, x, b, c]
    task.tags.append("d")  # [a, x, b, c, d]
    del task.tags[0]  # [x, b, c, d]
    task.tags[0] = "X"  # [X, b, c, d]
    task.meta["z"]["inner"].append(3)  # path ["z", "inner"]
    mem.commit(label="list edits")

    task.meta["new"] = []
    del task.meta["k"]
    task.meta["z"]["inner2"] = {"deep": True}  # path ["z"]
    task.grid = [[1, 2], [3]]
    task.grid[1].append(4)  # path [1]
    task.grid[0][1] = {"cell": None}  # path [0]
    mem.commit(label="map edits")

    del task.note
    user.delete()
    mem.commit()  # no label

    mem.commit(label="marker", allow_empty=True)  # an empty commit (count = 0)

    mem.create("Note", about=user)  # a reference to a tombstoned node (R51)
    task.title = "done"
    mem.commit(label="after delete")


def build_checkpoint(mem: Memory) -> None:
    a = mem.create("Counter", count=0, items=[])
    b = mem.create("Counter", count=10)
    mem.commit(label="two counters")
    a.count = 1
    b.delete()
    mem.commit(label="delete b")
    a.items.append({"n": 1})
    a.partner = b
    mem.commit(label="items")
    mem.checkpoint()  # the image holds a tombstone and a reference
    a.count = 2
    a.items[0]["n"] = 2  # path [0]
    mem.commit(label="after checkpoint")
    mem.create("Counter", count=100, prev=a)
    mem.commit(label="third counter")


TORN_EXTRA_PAYLOAD = 21  # payload bytes of the torn frame that reached the disk


def build_torn_tail_extra(mem: Memory) -> None:
    """The edits vector plus one more commit, whose frame is then cut short."""
    build_edits(mem)
    mem.get(1).title = "this commit never finished"
    mem.commit(label="torn")


def build_free_space(mem: Memory) -> None:
    """Written with durability "full": the first commit's write reserves free space
    (FORMAT.md §3) and the second commit lands inside it."""
    build_one_commit(mem)
    mem.get(1).goal = "Remember everything"
    mem.commit(label="second goal")


def build_compacted(mem: Memory) -> None:
    """The checkpoint vector compacted at commit 2, then one more commit: a genesis
    frame, the commits after it and the checkpoint after commit 3, kept (§8.3)."""
    build_checkpoint(mem)
    mem.compact(at=2)
    mem.get(1).count = 3
    mem.commit(label="after compaction")


def build_compacted_at_head(mem: Memory) -> None:
    """Two commits compacted at the head: the header and one genesis frame."""
    build_one_commit(mem)
    mem.get(1).goal = "Remember everything"
    mem.commit(label="second goal")
    mem.compact()


def build_auto_checkpoints(mem: Memory) -> None:
    """Twelve commits to a growing list with a small checkpoint floor: the writer
    appends checkpoints by its policy (§8.4), not by request."""
    log = mem.create("Log", entries=[], n=0)
    mem.commit(label="start")
    for i in range(11):
        log.entries.append({"i": i, "text": "entry " * (i + 1)})
        log.n = i + 1
        mem.commit(label=f"entry {i}")


def build_layers(mem: Memory) -> None:
    """Format version 4: ten commits with a layer after every second one (a test
    hook lowers LAYER_COMMITS): a full layer of twelve nodes, then sparse ones of the
    few nodes each changes, merged by size tiers (§8.7): three tier-0 layers, then
    one that absorbs the three; a node edited and one deleted among them."""
    store_of(mem).layer_commits = 2
    nodes = [mem.create("Task", title=f"task number {i} of the layers vector", n=0)
             for i in range(12)]
    mem.commit(label="twelve tasks")
    mem.commit(allow_empty=True)  # the full layer follows this one
    for i in range(1, 9):
        nodes[i % 3]["n"] = i
        if i == 3:
            nodes[4]["title"] = "edited"
        if i == 6:
            nodes[5].delete()
        mem.commit()
    nodes[0]["n"] = 99
    mem.commit(label="after the last layer")


def build_unsynced(mem: Memory) -> None:
    """Three commits with durability "none" and no sync: the file moves to version 2
    before the second frame, and the third carries FRAME_FLAG_UNSYNCED (§3, §12)."""
    agent = mem.create("Agent", name="Iris")
    mem.commit(label="one")
    agent.goal = "Explore ideas"
    mem.commit(label="two")
    mem.create("Note", about=agent, text="written after no sync at all")
    mem.commit(label="three")


def build_undelete(mem: Memory) -> None:
    """Version 3 (§6 UNDELETE, §12): a node deleted, then restored to commit 1 by
    ``mem.restore``: the restore commit holds an UNDELETE and the SETs that bring
    back its fields, so the writer moved the file from version 1 to 3 before it."""
    task = mem.create("Task", title="draft", tags=["a"])
    mem.commit(label="create")
    task.title = "final"
    task.tags.append("b")
    mem.commit(label="edit")
    task.delete()
    mem.commit(label="delete")
    mem.restore(1)
    mem.commit(label="restore 1")


def build_forked(mem: Memory) -> None:
    """Version 3 (§8.6): the source history of this builder's file is two commits;
    the vector is its fork at commit 1 (``mem.fork``), then one commit made on the
    fork. :func:`build_myo` returns the fork's bytes."""
    build_one_commit(mem)
    mem.get(1).goal = "Remember everything"
    mem.commit(label="second goal")
    fork = forked_path(Path(mem.path))
    mem.fork(1, fork)
    with open_memory(fork, durability="none", clock=fixed_clock()) as f:
        _sync_after_each_commit(f)
        f.sync()  # the fork was written whole and synced: its commit needs no flag (§3)
        f.get(1).goal = "Try another way"
        f.commit(label="on the fork")


def forked_path(path: Path) -> Path:
    return path.with_name(path.stem + ".fork.myo")


def post_reordered_unsynced(data: bytes) -> bytes:
    """unsynced.myo with its second frame's bytes zero, as if the disk never wrote
    them (nothing synced them) while it wrote the third frame's: the hole and the
    flagged frame after it are a torn tail (§10 step 4, R29)."""
    out = bytearray(data)
    second, third = _frame_offsets(data)[1:3]
    out[second:third] = bytes(third - second)
    return bytes(out)


DURABLE = {"free_space"}  # vectors written with durability "full" (the others: "none")
UNSYNCED = {"unsynced"}  # "none" vectors written without a sync after each commit
FLOORS = {"auto_checkpoints": 256}  # checkpoint_floor (default: CHECKPOINT_FLOOR)
LAYERED = {"layers"}  # vectors written with layers (§8.7)


def _recrc(data: bytearray, off: int) -> None:
    """Recompute both CRCs of the frame at ``off`` (§3) after its payload was edited."""
    n = struct.unpack_from("<I", data, off)[0]
    struct.pack_into("<I", data, off + 8, crc32c(bytes(data[off + 16:off + 16 + n])))
    struct.pack_into("<I", data, off + 12, crc32c(bytes(data[off:off + 12])))


def _frame_offsets(data: bytes) -> list[int]:
    """Offsets of the frames of an undamaged file (headers only)."""
    offs, o = [], 32
    while o + 16 <= len(data) and data[o + 4]:
        offs.append(o)
        n = struct.unpack_from("<I", data, o)[0]
        o += 16 + n + (-n % 8)
    return offs


def post_unusable_checkpoint(data: bytes) -> bytes:
    """checkpoint.myo with one byte of the checkpoint's image changed and both frame
    CRCs recomputed: the frame is valid, its state hash is not (R80)."""
    out = bytearray(data)
    cp = [o for o in _frame_offsets(data) if data[o + 4] == 2][0]
    out[cp + 16 + 72 + 8] ^= 0x01  # node_count: the image no longer hashes to state_hash
    _recrc(out, cp)
    return bytes(out)


def post_damaged_last_frame(data: bytes) -> bytes:
    """edits.myo with one bit of its last frame's payload flipped: a whole frame that
    no torn write leaves (R28), refused at its offset."""
    out = bytearray(data)
    out[_frame_offsets(data)[-1] + 16 + 10] ^= 0x04
    return bytes(out)


def post_damaged_genesis(data: bytes) -> bytes:
    """compacted_at_head.myo with one bit of its genesis frame flipped: never torn
    (R85, R28), refused at offset 32."""
    out = bytearray(data)
    out[32 + 16 + 40] ^= 0x80
    return bytes(out)


def post_damaged_middle_frame(data: bytes) -> bytes:
    """edits.myo with one bit of its second frame's header flipped: valid frames follow
    the damage (§10 step 4), refused at its offset."""
    out = bytearray(data)
    out[_frame_offsets(data)[1] + 2] ^= 0x10
    return bytes(out)


# Vectors made by editing another vector's bytes (a damaged file): (source, edit).
POST: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "unusable_checkpoint": ("checkpoint", post_unusable_checkpoint),
    "damaged_last_frame": ("edits", post_damaged_last_frame),
    "damaged_genesis": ("compacted_at_head", post_damaged_genesis),
    "damaged_middle_frame": ("edits", post_damaged_middle_frame),
    "reordered_unsynced": ("unsynced", post_reordered_unsynced),
}

VECTORS: dict[str, tuple[str, Callable[[Memory], None]]] = {
    "empty": ("A new file: the 32-byte header and no frame (the empty history).",
              build_empty),
    "one_commit": ("The seed example: Agent name Iris, goal 'Explore ideas', one commit "
                   "labelled 'initial goal'. Walked through byte by byte in README.md.",
                   build_one_commit),
    "all_values": ("One node with a field of every value type (§5): ints at the zig-zag "
                   "boundaries and the int64 limits, -0.0, infinities, NaNs with payloads, "
                   "unicode, empty list and map, map keys in R40 order, nesting, references.",
                   build_all_values),
    "edits": ("Six commits: list insert/remove/replace, map set/delete at nested paths, "
              "unset, delete, an unlabelled commit, an empty commit (allow_empty), a "
              "reference to a tombstoned node.", build_edits),
    "checkpoint": ("Three commits, mem.checkpoint() (an image with a tombstone and a "
                   "reference), then two more commits.", build_checkpoint),
    "torn_tail": ("The edits vector plus the first bytes of one more commit frame, as a "
                  "writer that died mid-append leaves them: a torn tail readers ignore "
                  "(§10 step 3); the state is that of edits.", build_torn_tail_extra),
    "free_space": ("The one_commit vector written durably, then a second commit: the first "
                   "write left the file 4096 bytes long, the frame followed by zero bytes of "
                   "free space (§3); the second frame was written into them. Readers ignore "
                   "the zeros after the last frame (§10 step 3).", build_free_space),
    "compacted": ("The checkpoint vector compacted at commit 2 (a genesis record with "
                  "base_seq 2), the commits and the checkpoint after it kept as they were, "
                  "then one more commit (§8.3).", build_compacted),
    "compacted_at_head": ("Two commits compacted at the head: the header and one genesis "
                          "frame (§8.3), no commit frame.", build_compacted_at_head),
    "auto_checkpoints": ("Twelve commits with a checkpoint floor of 256 bytes: the "
                         "reference writer's policy (§8.4) appends a checkpoint whenever the "
                         "commit bytes since the last one reach max(floor, its image size).",
                         build_auto_checkpoints),
    "unusable_checkpoint": ("The checkpoint vector with one byte of the checkpoint's image "
                            "changed and its frame CRCs recomputed: the frame is valid but "
                            "the image does not hash to state_hash, so the checkpoint is not "
                            "usable (R80) and readers replay the commits instead.", build_empty),
    "damaged_last_frame": ("The edits vector with one bit of its last frame's payload "
                           "flipped: a whole frame no torn write leaves. Readers refuse the "
                           "file (error: R28 at the frame's offset).", build_empty),
    "damaged_genesis": ("The compacted_at_head vector with one bit of its genesis frame "
                        "flipped: a genesis frame is never torn. Readers refuse the file "
                        "(error: R28 at offset 32).", build_empty),
    "damaged_middle_frame": ("The edits vector with one bit of its second frame's header "
                             "flipped: valid frames follow the damage. Readers refuse the "
                             "file (error: §10 step 4 at the frame's offset).", build_empty),
    "unsynced": ("Format version 2: three commits written with durability \"none\" and "
                 "no sync() call. Frame 0 follows the file's creation (durable). Before "
                 "frame 1, which follows an unsynced frame, the writer moved the header to "
                 "version 2 (§12), which syncs, so frame 1 needs no flag; frame 2 follows "
                 "unsynced frame 1 and carries the UNSYNCED flag (§3).", build_unsynced),
    "reordered_unsynced": ("The unsynced vector with its second frame zero, as a power cut "
                           "with writeback out of order leaves it: the hole can be torn "
                           "(R28) and the frame after it is UNSYNCED, so from the hole on "
                           "all is a torn tail (R29); the state is that after commit 1.",
                           build_empty),
    "undelete": ("Format version 3: a Task created, edited, deleted, then mem.restore(1) "
                 "committed: an UNDELETE (§6, R54) and the SETs of its fields at commit 1. "
                 "The writer moved the header from version 1 to 3 (§12) before that frame.",
                 build_undelete),
    "forked": ("Format version 3: one_commit plus a second commit, forked at commit 1 "
               "(mem.fork): the fork's GENESIS (base_seq 1, as compaction at 1 writes it), "
               "its ORIGIN record (§8.6) naming commit 1 and its state hash, then one commit "
               "made on the fork, whose parent is commit 1's id.", build_forked),
    "layers": ("Format version 4: eleven commits, a layer (§8.7) after every second one "
               "(the writer's layer period lowered to 2): a full layer, then sparse "
               "layers merged by size tiers (three of tier 0, then one absorbing them), naming "
               "their bases by frame offset; one more commit after the last layer. Written with "
               "durability \"none\" and a sync after each commit, so each layer, written "
               "before that sync, is UNSYNCED (§3).", build_layers),
}


def _sync_after_each_commit(mem: Memory) -> None:
    """Make ``mem`` sync after each commit and checkpoint. With durability "none" a
    frame written after unsynced ones carries FRAME_FLAG_UNSYNCED (FORMAT.md §3),
    which makes a version-2 file; the vectors of version 1 are written synced."""
    commit, checkpoint = mem.commit, mem.checkpoint

    def synced_commit(*args: Any, **kwargs: Any) -> Any:
        c = commit(*args, **kwargs)
        mem.sync()
        return c

    def synced_checkpoint() -> bool:
        done = checkpoint()
        mem.sync()
        return done

    mem.commit = synced_commit  # type: ignore[method-assign]
    mem.checkpoint = synced_checkpoint  # type: ignore[method-assign]


def build_myo(name: str, workdir: Path) -> bytes:
    """The bytes of vector ``name``'s ``.myo`` file, written by myosotis in ``workdir``."""
    if name in POST:
        source, edit = POST[name]
        sub = workdir / source
        sub.mkdir(exist_ok=True)
        return edit(build_myo(source, sub))
    path = workdir / f"{name}.myo"
    durability = "full" if name in DURABLE else "none"
    # The vectors of versions 1 to 3 are written by the image policy (§8.4) they
    # were made with; those of version 4 by the layer policy (§8.7).
    floor = {} if name in LAYERED else {"checkpoint_floor": FLOORS.get(name, CHECKPOINT_FLOOR)}
    with open_memory(path, durability=durability, clock=fixed_clock(), **floor) as mem:
        if durability == "none" and name not in UNSYNCED:
            _sync_after_each_commit(mem)
        VECTORS[name][1](mem)
    data = path.read_bytes()
    if name == "forked":
        data = forked_path(path).read_bytes()
    if name == "torn_tail":
        edits = build_myo("edits", workdir)
        if not (data.startswith(edits) and len(data) > len(edits) + 16 + TORN_EXTRA_PAYLOAD):
            raise RuntimeError("torn_tail must be edits.myo plus a longer frame")
        data = data[:len(edits) + 16 + TORN_EXTRA_PAYLOAD]
    return data


# --------------------------------------------------------------------------
# rendering: JSON and annotated hex


def to_json_text(obj: Any, indent: int = 0, col: int = 0, width: int = 120) -> str:
    """JSON with each list/object on one line when it fits in ``width`` columns
    (starting at column ``col``), else one item per line indented by ``indent`` + 2
    (deterministic and diff-friendly)."""
    flat = json.dumps(obj, ensure_ascii=False)
    if col + len(flat) <= width or not isinstance(obj, dict | list) or not obj:
        return flat
    pad = " " * (indent + 2)
    if isinstance(obj, list):
        items = [pad + to_json_text(x, indent + 2, indent + 2, width) for x in obj]
    else:
        items = []
        for k, v in obj.items():
            key = f"{pad}{json.dumps(k, ensure_ascii=False)}: "
            items.append(key + to_json_text(v, indent + 2, len(key), width))
    return ("[" if isinstance(obj, list) else "{") + "\n" + ",\n".join(items) + "\n" \
        + " " * indent + ("]" if isinstance(obj, list) else "}")


def render_json(name: str, dump: Dump) -> str:
    doc = {"vector": name, "description": VECTORS[name][0], **dump.data}
    return to_json_text(doc) + "\n"


HEX_PER_LINE = 16


def hex_lines(data: bytes, dump: Dump) -> list[str]:
    """Annotated hex lines: ``offset  bytes  structure``, 16 bytes a line at most;
    a heading line before each structure. Every byte is covered exactly once."""
    out: list[str] = []
    at = 0
    for span in dump.spans:
        if span.offset != at:
            raise ValueError(f"annotations leave a gap or overlap at byte {at}")
        if at in dump.headings:
            out.append(f"# {dump.headings[at]}")
        for i in range(0, span.length, HEX_PER_LINE):
            chunk = data[span.offset + i:span.offset + min(span.length, i + HEX_PER_LINE)]
            if 0 < i < span.length - HEX_PER_LINE and not any(
                    data[span.offset + i - HEX_PER_LINE:span.offset + i + HEX_PER_LINE]):
                # a long run of zero lines: one "*" line, as hexdump does
                if out[-1] != "*":
                    out.append("*")
                continue
            note = span.note if i == 0 else ""
            out.append(f"{span.offset + i:08x}  {chunk.hex(' '):<47}  {note}".rstrip())
        at += span.length
    if at != len(data) or not {s.offset for s in dump.spans} >= dump.headings.keys():
        raise ValueError("the end of the file is not annotated, or a heading has no bytes")
    return out


def render_hex(name: str, data: bytes, dump: Dump) -> str:
    head = [f"# {name}.myo: {len(data)} bytes, format_version {dump.data['format_version']}.",
            "# Annotated by formatspec/reference_reader.py from FORMAT.md alone; generated by",
            "# formatspec/make_vectors.py, never edited. Columns: file offset (hex), bytes, "
            "structure."]
    return "\n".join(head + hex_lines(data, dump)) + "\n"


def render(name: str, workdir: Path) -> dict[str, bytes]:
    """The three files of vector ``name``, by file name. A file that readers must
    refuse gets ``{"error": {"rule", "offset"}}`` as its JSON and a plain hex dump."""
    data = build_myo(name, workdir)
    try:
        dump = read_file(data)
    except SpecError as e:
        doc = {"vector": name, "description": VECTORS[name][0],
               "error": {"rule": e.rule, "offset": e.offset}}
        return {f"{name}.myo": data,
                f"{name}.json": (to_json_text(doc) + "\n").encode("utf-8"),
                f"{name}.hex": render_plain_hex(name, data, e).encode("utf-8")}
    return {f"{name}.myo": data,
            f"{name}.json": render_json(name, dump).encode("utf-8"),
            f"{name}.hex": render_hex(name, data, dump).encode("utf-8")}


def render_plain_hex(name: str, data: bytes, error: SpecError) -> str:
    """A hex dump without annotations, for a file readers refuse (``error``)."""
    head = [f"# {name}.myo: {len(data)} bytes, refused by readers: {error}.",
            "# Generated by formatspec/make_vectors.py, never edited. Columns: file offset "
            "(hex), bytes."]
    lines = [f"{o:08x}  {data[o:o + HEX_PER_LINE].hex(' ')}".rstrip()
             for o in range(0, len(data), HEX_PER_LINE)]
    return "\n".join(head + lines) + "\n"


def generate(names: list[str] | None = None) -> dict[str, bytes]:
    """Every file of the named vectors (default: all), freshly built in a temp dir."""
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="myo-vectors-") as tmp:
        for name in names or list(VECTORS):
            sub = Path(tmp) / name
            sub.mkdir()
            files.update(render(name, sub))
    return files


def check(vectors_dir: Path = VECTORS_DIR) -> list[str]:
    """Differences between freshly generated vectors and those in ``vectors_dir``
    (missing, extra or different files); empty when byte-identical."""
    fresh = generate()
    problems = []
    on_disk = {p.name for p in vectors_dir.iterdir() if p.suffix in SUFFIXES}
    for fname in sorted(on_disk - fresh.keys()):
        problems.append(f"{fname}: on disk but no longer generated")
    for fname, content in sorted(fresh.items()):
        path = vectors_dir / fname
        if not path.exists():
            problems.append(f"{fname}: generated but missing on disk")
        elif path.read_bytes() != content:
            old = path.read_bytes()
            first = next((i for i, (a, b) in enumerate(zip(old, content, strict=False))
                          if a != b), min(len(old), len(content)))
            problems.append(f"{fname}: differs from the committed file at byte {first} "
                            f"({len(old)} bytes on disk, {len(content)} generated)")
    return problems


def write(names: list[str], vectors_dir: Path = VECTORS_DIR) -> list[str]:
    """Write the files of ``names``; refuse (return the reasons) if any exists."""
    existing = [f"{vectors_dir / (n + s)}" for n in names for s in SUFFIXES
                if (vectors_dir / (n + s)).exists()]
    if existing:
        return [f"{p} exists; golden vectors are never edited (FORMAT.md §12)"
                for p in existing]
    vectors_dir.mkdir(parents=True, exist_ok=True)
    for fname, content in generate(names).items():
        (vectors_dir / fname).write_bytes(content)
    return []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true",
                    help="regenerate in a temp dir, compare byte for byte, exit 1 on a difference")
    ap.add_argument("--new", action="append", metavar="NAME", choices=list(VECTORS),
                    help="write this brand-new vector (repeatable); it must not exist yet")
    ap.add_argument("--dir", type=Path, default=VECTORS_DIR, help="vectors directory")
    args = ap.parse_args(argv)
    if args.check:
        problems = check(args.dir)
        for p in problems:
            print(p, file=sys.stderr)
        print("vectors: " + ("DIFFERENT" if problems else f"{len(VECTORS)} match"))
        return 1 if problems else 0
    problems = write(args.new or list(VECTORS), args.dir)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
