"""Properties shared by the file-level harnesses (fuzz_open, fuzz_structured, fuzz_fsck).

The contract checked (issue "hostile files lose nothing and crash nothing"):
opening, reading, verifying and replaying any bytes ends in a correct state
or a ``MyosotisError``. "Correct" is checked three ways, each independent of
the code path it checks:

1. Self-consistency: the head equals the view of the head commit, ``len()``
   counts the live nodes, and ``diff(a, b)`` names exactly the nodes whose
   dumps differ between the two states.
2. fsck agreement: a full read succeeds exactly when ``verify_file`` finds no
   error (warnings, such as a torn tail or a skipped checkpoint, are allowed).
3. Reference agreement: ``formatspec/reference_reader.py`` (written from
   FORMAT.md alone) accepts the bytes exactly when the engine does, and then
   reports the same commits and the same state hash after every commit.

Import this module inside ``fuzzlib.instrumented()``.
"""

from __future__ import annotations

import os
import shutil
import struct
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fuzzlib
from blake3 import blake3

from myosotis import ListProxy, MapProxy, Memory, MyosotisError, Node
from myosotis.format.header import encode_file_header
from myosotis.format.helper import crc32c

try:
    sys.path.insert(0, str(fuzzlib.REPO_DIR / "formatspec"))
    import reference_reader as _ref
except ImportError:  # pragma: no cover - the reference reader is optional
    _ref = None
finally:
    sys.path.pop(0)

MAX_COMMITS = 400  # a full read is quadratic in commits (a view per commit); keep units fast


def plain(v: Any) -> Any:
    """A comparable form of a read value: refs by id, floats by their bits."""
    if isinstance(v, (list, ListProxy)):
        return ["L", [plain(x) for x in v]]
    if isinstance(v, (dict, MapProxy)):
        return ["M", sorted((k, plain(x)) for k, x in v.items())]
    if isinstance(v, Node):
        return ["R", v.id]
    if isinstance(v, float):
        return ["F", struct.pack("<d", v).hex()]
    if isinstance(v, bool):
        return ["B", v]
    if isinstance(v, int):
        return ["I", v]
    return ["S", v] if isinstance(v, str) else ["N", v]


def dump(reader: Any) -> dict[int, tuple[str, bool, Any]]:
    """Every node of a Memory or View (tombstoned too), each field read two ways."""
    out = {}
    for n in reader.nodes(deleted=True):
        fields = n.fields()
        assert list(fields) == sorted(fields), "fields() is not sorted by name"
        assert list(n) == list(fields)
        for name in fields:
            assert name in n
            assert plain(n[name]) == plain(fields[name])
        out[n.id] = (n.type, n.deleted, plain(fields))
    return out


@dataclass
class Reading:
    """What a full read of a file showed."""

    base_seq: int
    head_seq: int
    commits: list[tuple[int, str, str | None, str]]  # (seq, id, parent, state hash)
    head_hash: str
    inconsistencies: list[str]  # what disagrees only when a checkpoint was trusted (D1)


def read_everything(path: str) -> Reading:
    """Open ``path`` read-only and read every node at every commit.

    Raises MyosotisError when the file is refused (at open or at any read);
    raises AssertionError when what it serves is inconsistent.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Memory.open(path, readonly=True) as mem:
            return _read(mem)


def _read(mem: Memory) -> Reading:
    history = mem.history()
    info = mem.info()
    base_seq, head_seq = info.base_seq, info.head_seq
    seqs = [c.seq for c in history]
    # The genesis base (seq base_seq) may be listed as the first commit (compacted).
    assert not seqs or (seqs[0] in (base_seq, base_seq + 1) and seqs[0] >= 1
                        and seqs == list(range(seqs[0], head_seq + 1))), (seqs, base_seq)
    assert seqs or head_seq == base_seq
    assert mem.head is None or mem.head.seq == head_seq
    if len(history) > MAX_COMMITS:
        history = history[-MAX_COMMITS:]
    commits = []
    odd: list[str] = []
    prev_seq, prev_dump = None, None
    for c in history:
        view = mem.at(c.seq)
        d = dump(view)
        h = view.state_hash()
        assert mem.resolve(c.id) == c.seq
        if view.next_node_id != c.next_node_id:
            odd.append(f"commit {c.seq} records next_node_id {c.next_node_id}, its view has "
                       f"{view.next_node_id}")
        assert set(d) == set(range(1, view.next_node_id)), "node ids are not dense (R73)"
        if prev_seq is not None:
            diff = mem.diff(prev_seq, c.seq)
            changed = {i for i in set(d) | set(prev_dump) if d.get(i) != prev_dump.get(i)}
            if {n.id for n in diff.nodes} != changed:
                odd.append(f"diff({prev_seq}, {c.seq}) names {sorted(n.id for n in diff.nodes)}"
                           f" but the views differ at {sorted(changed)}")
            assert not mem.diff(c.seq, c.seq)
        commits.append((c.seq, c.id, c.parent, h))
        prev_seq, prev_dump = c.seq, d
    head = dump(mem)
    head_hash = mem.state_hash()
    if commits:
        assert head == prev_dump, "the head differs from the view of the head commit"
        assert head_hash == commits[-1][3]
    assert len(mem) == sum(1 for _, deleted, _ in head.values() if not deleted)
    for i in head:
        assert i in mem and mem.get(i).id == i
    assert mem.next_node_id not in mem
    return Reading(base_seq, head_seq, commits, head_hash, odd)


@dataclass
class Fsck:
    """What ``verify_file`` says, sorted into what the other checks need."""

    errors: list[str]  # error findings, as text
    skip_agreement: str | None  # why engine/fsck/reference agreement is not checkable


def fsck(path: str, data: bytes) -> Fsck:
    """Run ``verify_file`` on ``path`` (holding ``data``) and classify its findings
    (through ``Memory.check_file``, which also checks a legacy v0.5 file, LEGACY.md)."""
    report = Memory.check_file(path)
    assert report.valid_end <= report.file_size
    for f in report.findings:
        assert f.severity in ("error", "warning"), f
        assert f.offset is None or 0 <= f.offset <= report.file_size, f
    errors = [str(f) for f in report.errors]
    skip = None
    if any("differs from the replay" in f.message for f in report.findings):
        skip = "D1: a checkpoint's image hashes right but is not the replayed state"
    elif any(f.code == "genesis" for f in report.errors) and _hash_valid_checkpoint_seqs(data):
        skip = "D1: a hash-valid checkpoint covers a genesis whose records fsck rejects"
    else:
        error_seqs = [f.seq for f in report.errors if f.seq is not None]
        covering = [q for q in _hash_valid_checkpoint_seqs(data)
                    if error_seqs and q >= min(error_seqs)]
        if covering:
            skip = "D1: a hash-valid checkpoint covers a commit fsck rejects"
    return Fsck(errors, skip if TOLERATE_KNOWN else None)


def fsck_errors(path: str) -> list[str]:
    """The error findings of ``verify_file`` (warnings are not errors), as text."""
    with open(path, "rb") as fh:
        return fsck(path, fh.read()).errors


KNOWN_ISSUES = {
    "D1": "By R80 a reader trusts a checkpoint whose image hashes right (and R33 holds) "
          "without replaying the commits before it; fsck replays them. A crafted file "
          "(valid CRCs and BLAKE3 chain) can hold a checkpoint that is not the replayed "
          "state, or that covers a commit record fsck rejects: the engine serves the "
          "checkpoint. Not reachable by damage, only by construction (design note).",
    "K3": "The reference reader refuses a file whose checkpoint frame (kind 2) breaks a "
          "rule of its record or image; the engine skips such a checkpoint (R80). "
          "FORMAT.md §4 vs §8.2 (the reference reader's own comment notes it).",
}
TOLERATE_KNOWN = os.environ.get("MYO_FUZZ_STRICT") != "1"


def _frames(data: bytes) -> list[tuple[int, int, int]]:
    """``(offset, kind, payload length)`` of the header-valid frames from offset 32."""
    out = []
    p = 32
    while p + 16 <= len(data):
        n, kind, reserved, _, header_crc = struct.unpack_from("<IB3sII", data, p)
        size = 16 + n + (-n % 8)
        if (kind not in (1, 2, 3) or reserved != b"\0\0\0" or p + size > len(data)
                or crc32c(data[p:p + 12]) != header_crc):
            break
        out.append((p, kind, n))
        p += size
    return out


def _hash_valid_checkpoint_seqs(data: bytes) -> list[int]:
    """Seqs claimed by checkpoint frames whose state hash matches their image (R80)."""
    seqs = []
    for o, kind, n in _frames(data):
        payload = data[o + 16:o + 16 + n]
        if kind == 2 and n >= 72 and blake3(payload[72:]).digest() == payload[40:72]:
            seqs.append(struct.unpack_from("<Q", payload)[0])
    return seqs


def _in_checkpoint_frame(data: bytes, offset: int) -> bool:
    """Does file ``offset`` fall inside a checkpoint frame (issue K3)?"""
    return any(kind == 2 and o <= offset <= o + 16 + n for o, kind, n in _frames(data))


def reference_reading(data: bytes) -> dict[str, Any] | None | Exception:
    """The reference reader's dump data, its SpecError, or None without a reference."""
    if _ref is None:
        return None
    try:
        return _ref.read_file(data).data
    except _ref.SpecError as e:
        return e


def check_file(data: bytes, writer: bool = True) -> None:
    """Every property of the module docstring, for the file holding ``data``.

    With ``writer``, the file is also opened as a writer (which cuts a torn
    tail, FORMAT.md §10 step 3), given one more commit, and read again: the
    old commits must be unchanged and the new one must follow them.
    """
    path = fuzzlib.write_scratch(data)
    try:
        reading: Reading | None = read_everything(path)
        refused: MyosotisError | None = None
    except MyosotisError as e:
        reading, refused = None, e
    result = fsck(path, data)
    if result.skip_agreement is None:
        if reading is not None:
            assert not reading.inconsistencies, reading.inconsistencies
            assert not result.errors, \
                f"the engine served a file that fsck finds broken: {result.errors}"
        else:
            assert result.errors, f"the engine refused a file fsck finds sound: {refused!r}"
        ref = reference_reading(data)
        if reading is not None and data.lstrip(b" \t\r\n")[:1] == b"{":
            ref = None  # a legacy v0.5 file (LEGACY.md): the reference reads binary files only
        if ref is not None:
            if (isinstance(ref, Exception) and reading is not None and TOLERATE_KNOWN
                    and _in_checkpoint_frame(data, getattr(ref, "offset", -1))):
                pass  # K3
            else:
                _compare_with_reference(reading, refused, ref)
    if reading is not None and writer:
        _check_writer(path, data, reading)


def _compare_with_reference(reading: Reading | None, refused: MyosotisError | None,
                            ref: dict[str, Any] | Exception) -> None:
    if isinstance(ref, Exception):
        assert reading is None, f"the engine served a file the reference reader refuses: {ref}"
        return
    assert reading is not None, f"the engine refused a file the reference reader accepts: " \
                                f"{refused!r}"
    ref_commits = [(c["seq"], c["id"], c["parent"], c["state_hash_after"])
                   for c in ref["commits"]]
    assert reading.head_seq == (ref_commits[-1][0] if ref_commits else reading.base_seq)
    after_base = [c for c in reading.commits if c[0] > reading.base_seq]
    kept = ref_commits[len(ref_commits) - len(after_base):]
    assert after_base == kept, (reading.commits, ref_commits)
    if ref_commits:
        assert reading.head_hash == ref_commits[-1][3]


def _check_writer(path: str, data: bytes, reading: Reading) -> None:
    """A writer's recovery keeps every commit and appends after them (§10 step 3)."""
    wpath = path + ".w"
    shutil.copyfile(path, wpath)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                mem = Memory.open(wpath, durability="none")
            except MyosotisError as e:
                # Only a failed cut of the torn tail may stop a writer where a reader got in.
                raise AssertionError(f"a writer cannot open what a reader read: {e!r}") from e
            with mem:
                assert mem.info().head_seq == reading.head_seq
                assert mem.state_hash() == reading.head_hash
                cut = os.path.getsize(wpath)
                kept = data or encode_file_header()  # 0 bytes: a new file (FORMAT.md §2)
                assert kept[:cut] == Path(wpath).read_bytes(), "recovery changed kept bytes"
                mem.create("Fuzz", n=1)
                mem.commit("after recovery")
        after = read_everything(wpath)
        assert after.head_seq == reading.head_seq + 1
        old = {c[0]: c for c in reading.commits}
        for c in after.commits[:-1]:
            assert old.get(c[0], c) == c, "an old commit changed after recovery"
        if reading.commits:
            assert after.commits[-1][2] == reading.commits[-1][1], "new commit's parent (R32)"
        with open(wpath, "rb") as fh:
            again = fsck(wpath, fh.read())
        assert not again.errors or again.skip_agreement, again.errors
    finally:
        for suffix in ("", ".lock", ".v0.bak"):  # .v0.bak: a legacy file migrated
            if os.path.exists(wpath + suffix):
                os.unlink(wpath + suffix)
