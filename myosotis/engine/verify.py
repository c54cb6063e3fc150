"""Full verification of a file (``fsck``) and the repairs that lose nothing.

:func:`verify_file` checks every rule of FORMAT.md over the whole file:
header (R10–R12), every frame in full (R20–R27), record order (R30–R33),
every commit's encoding, sequence number and parent link (R31, R32, R60,
R61) and graph rules (R50–R53, which include referential integrity and ids
never reused), and every checkpoint's hash and agreement with a replay from
the start or the genesis (R80, R85). It reports findings instead of raising.

:func:`repair_file` does only what loses no committed data: cut a torn tail
and drop checkpoints that fail (they are a cache). Everything else is
reported, never "fixed".
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from myosotis.engine.chain import (
    ChainError,
    check_next_node_id,
    commit_header,
    commit_mutations,
    rewritten_version,
)
from myosotis.engine.graph import GraphState
from myosotis.engine.layers import single
from myosotis.engine.segments import owned
from myosotis.engine.verify_layers import check_layer
from myosotis.errors import MyosotisError, UnsupportedVersionError
from myosotis.format.constants import (
    FRAME_FLAGS_ALLOWED,
    FRAME_HEADER_SIZE,
    FRAME_HEADER_STRUCT,
    HEADER_SIZE,
    KIND_CHECKPOINT,
    KIND_COMMIT,
    KIND_GENESIS,
    KIND_LAYER,
    KIND_NAMES,
    KIND_ORIGIN,
    KINDS_BY_VERSION,
    SNAPSHOT_PREFIX_SIZE,
    VERSION_REWIND,
    ZERO_HASH,
)
from myosotis.format.header import (
    check_file_header,
    encode_file_header,
    frame_payload_ok,
    padding,
    without_flags,
)
from myosotis.format.helper import ScanStatus, scan_frames
from myosotis.format.image import StateImage, state_hash
from myosotis.format.records import (
    commit_id,
    decode_origin,
    decode_snapshot_header,
)
from myosotis.format.values import DecodeError, iter_refs
from myosotis.format.walk import walk
from myosotis.storage.fileops import (
    REAL,
    FileOps,
    open_regular,
)
from myosotis.storage.lock import WriterLock, truncation_guard
from myosotis.storage.recovery import cut_tail
from myosotis.storage.rewrite import write_atomically


@dataclass(frozen=True)
class Finding:
    """One problem. ``severity`` is "error" when committed data is damaged or a rule
    is broken, "warning" when only a cache (a checkpoint) or a torn tail is affected."""

    severity: str
    code: str
    message: str
    offset: int | None = None
    seq: int | None = None
    repairable: bool = False

    def __str__(self) -> str:
        where = []
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        if self.seq is not None:
            where.append(f"commit {self.seq}")
        loc = f" ({', '.join(where)})" if where else ""
        return f"{self.severity}: {self.code}{loc}: {self.message}"


@dataclass
class VerifyReport:
    path: str
    file_size: int = 0
    frames: int = 0
    commits: int = 0
    checkpoints: int = 0
    valid_end: int = 0
    free_bytes: int = 0  # zero bytes after valid_end: a writer's free space (§3), not damage
    findings: list[Finding] = field(default_factory=list)
    # frame offsets of checkpoints that fail (what --repair drops)
    bad_checkpoints: list[int] = field(default_factory=list)
    bytes_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


class _Stop(Exception):
    """Verification cannot go past this point (the truth itself is damaged)."""


def verify_file(path: str, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Check the file at ``path`` against every rule; never raises for damage.

    Raises MyosotisError only when the file cannot be read at all.
    ``progress(done_bytes, total_bytes)`` is called as the replay advances.
    """
    rep = VerifyReport(path)
    try:
        fd = open_regular(path, os.O_RDONLY)  # never blocks on a FIFO
    except OSError as e:
        raise MyosotisError(f"cannot open {path}: {e.strerror}") from None
    try:
        size = os.fstat(fd).st_size
        rep.file_size = size
        if size == 0:
            return rep  # a new file, the empty history (FORMAT.md §2)
        # The shared truncation guard keeps a writer from cutting a torn tail
        # while we read it through the map (which would be SIGBUS); see lock.py.
        with truncation_guard(fd, exclusive=False), \
                mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mm:
            mv = memoryview(mm)
            try:
                _verify(mv, size, rep, progress)
            except _Stop:
                pass
            finally:
                mv.release()
    finally:
        os.close(fd)
    return rep


def _verify(mv: memoryview, size: int, rep: VerifyReport,
            progress: Callable[[int, int], None] | None) -> None:
    """Every check, in the order a reader makes them (§10); raises _Stop where the
    truth itself is damaged."""
    version = _check_header(mv, size, rep)
    offsets, kinds = _walk(mv, size, version, rep)
    bad_checkpoints = _check_payloads(mv, offsets, kinds, rep)
    rep.frames = len(offsets)
    for off, kind in zip(offsets, kinds, strict=True):
        n = FRAME_HEADER_STRUCT.unpack_from(mv, off)[0]
        name = KIND_NAMES[kind]
        rep.bytes_by_kind[name] = rep.bytes_by_kind.get(name, 0) + FRAME_HEADER_SIZE + n + \
            padding(n)
    _replay(mv, offsets, kinds, rep, progress, bad_checkpoints, version)


def _check_header(mv: memoryview, size: int, rep: VerifyReport) -> int:
    """The file's format version (R10–R12), or a finding and _Stop."""
    try:
        return check_file_header(mv, size, rep.path)
    except UnsupportedVersionError as e:
        rep.findings.append(Finding("error", "version", str(e), 8))  # format_version (§2)
        raise _Stop from None
    except MyosotisError as e:
        rep.findings.append(Finding("error", "header", str(e), 0))
        raise _Stop from None


def _walk(mv: memoryview, size: int, version: int,
          rep: VerifyReport) -> tuple[list[int], list[int]]:
    """The frame walk of §10, the one open does (format/walk.py): the offsets and kinds
    of the valid prefix, with findings for what follows it. Past damage that valid
    frames follow (step 4), the walk goes on, to report them too."""
    flags = FRAME_FLAGS_ALLOWED[version]
    # Every version's kinds (R22): a frame of a kind this version lacks is not cut
    # as a damaged tail, the replay reports it (R34 for an ORIGIN) and stops.
    found = walk(mv, HEADER_SIZE, flags)
    offsets, kinds = list(found.offsets), list(found.kinds)
    rep.valid_end = found.end
    damaged = found.status == ScanStatus.CORRUPT
    if found.status == ScanStatus.FREE:
        rep.free_bytes = size - found.end
    elif found.status == ScanStatus.TORN:
        rep.findings.append(Finding(
            "warning", "torn-tail",
            f"{size - found.end} bytes after the last whole frame (a crash mid-append); "
            "`--repair` cuts them (keeping any non-zero byte in "
            f"<file>.recovered-{found.end})", found.end, repairable=True))
    elif damaged and found.next_valid is None and found.end == HEADER_SIZE:
        # The first frame: a compacted file's genesis (R85), or the only commit.
        # Cutting it would leave an empty history that looks whole.
        rep.findings.append(Finding(
            "error", "damaged-tail",
            f"{found.reason}; it is the first frame (a compacted file's genesis snapshot, "
            "or the first commit), so nothing before it can be kept: restore the file "
            "from a copy", found.end))
    elif damaged and found.next_valid is None:
        rep.findings.append(Finding(
            "error", "damaged-tail",
            f"{found.reason}; the frame may hold an acknowledged commit. `--repair` cuts "
            f"the {size - found.end} bytes from here after keeping them in "
            f"<file>.recovered-{found.end}", found.end, repairable=True))
    next_valid = found.next_valid
    while next_valid is not None:
        rep.findings.append(Finding(
            "error", "frame",
            f"damaged frame; a valid frame follows at offset {next_valid} (§10 step 4)",
            found.end))
        found = walk(mv, next_valid, flags)
        next_valid = found.next_valid if found.status == ScanStatus.CORRUPT else None
    return offsets, kinds


def _check_payloads(mv: memoryview, offsets: list[int], kinds: list[int],
                    rep: VerifyReport) -> set[int]:
    """R26/R27 for every frame of the walk; return the offsets of the checkpoints that
    fail. A checkpoint that fails is only not usable (R80); any other frame that
    fails is corruption, and replay stops there: it and the frames after it are
    cut from ``offsets`` and ``kinds``."""
    bad_checkpoints: set[int] = set()
    for i, (off, kind) in enumerate(zip(offsets, kinds, strict=True)):
        if frame_payload_ok(mv, off):
            continue
        if kind in (KIND_CHECKPOINT, KIND_LAYER):
            bad_checkpoints.add(off)
            rep.bad_checkpoints.append(off)
            rep.findings.append(Finding("warning", "checkpoint", "payload checksum does not "
                                        "match (R26); it is skipped on open and `--repair` "
                                        "drops it", off, repairable=True))
            continue
        rep.findings.append(Finding("error", "frame", "payload checksum does not match (R26)",
                                    off))
        del offsets[i:], kinds[i:]
        break
    return bad_checkpoints


def _payload(mv: memoryview, off: int) -> memoryview:
    n = FRAME_HEADER_STRUCT.unpack_from(mv, off)[0]
    return mv[off + FRAME_HEADER_SIZE: off + FRAME_HEADER_SIZE + n]


@dataclass
class _Replay:
    """The replay of the whole history: the state after commit ``seq``, whose id is
    ``head``."""

    state: GraphState = field(default_factory=GraphState)
    seq: int = 0
    head: bytes = ZERO_HASH
    changed_at: dict[int, int] = field(default_factory=dict)  # node -> last commit changing it
    snapshots: dict[int, int] = field(default_factory=dict)  # offset -> seq of good snapshots
    version: int = 1  # the file's format_version: UNDELETE and ORIGIN need 3 (R34, R54)
    genesis_hash: bytes = ZERO_HASH  # the genesis's state_hash, for R87


def _replay(mv: memoryview, offsets: list[int], kinds: list[int], rep: VerifyReport,
            progress: Callable[[int, int], None] | None, bad_checkpoints: set[int],
            version: int) -> None:
    """Replay every frame from the start or the genesis, checking each against the
    rules and each checkpoint against the replay; raises _Stop at the first commit,
    genesis or origin that breaks one."""
    r = _Replay(version=version)
    total = offsets[-1] if offsets else 0
    for i, (off, kind) in enumerate(zip(offsets, kinds, strict=True)):
        if progress is not None and i % 256 == 0:
            progress(off, total)
        payload = _payload(mv, off)
        if kind == KIND_GENESIS:
            if i != 0:
                rep.findings.append(Finding("error", "genesis",
                                            "a genesis frame that is not the first (R30)", off))
                raise _Stop
            _replay_genesis(r, payload, off, rep)
        elif kind not in KINDS_BY_VERSION[r.version] and kind != KIND_ORIGIN:
            rep.findings.append(Finding("error", "frame", f"a {KIND_NAMES[kind]} frame in a "
                                        f"version-{r.version} file (R22)", off))
            raise _Stop
        elif kind == KIND_ORIGIN:
            _check_origin(r, payload, off, rep, i == 1 and kinds[0] == KIND_GENESIS)
        elif kind in (KIND_CHECKPOINT, KIND_LAYER):
            rep.checkpoints += 1
            if off not in bad_checkpoints:  # else reported with the frame checks
                _check_checkpoint_frame(r, payload, off, rep, kind)
        else:
            _replay_commit(r, payload, off, rep)
    if progress is not None:
        progress(total, total)


def _replay_genesis(r: _Replay, payload: memoryview, off: int, rep: VerifyReport) -> None:
    """Start the replay from the genesis at ``off`` (§8.3, R85, R72)."""
    try:
        g = decode_snapshot_header(payload)
        if (g.seq == 0) != (g.commit_id == ZERO_HASH):
            raise DecodeError("genesis base_seq and base_commit_id disagree (§8.3)", 0)
        body = payload[SNAPSHOT_PREFIX_SIZE:]
        if state_hash(body) != g.state_hash:
            raise DecodeError("genesis state hash does not match its image (R85)", 0)
        img = StateImage(body, off + FRAME_HEADER_SIZE + SNAPSHOT_PREFIX_SIZE)
        img.check_tables(offsets=True)
        # Every record must decode (§5, §8.1) and every reference
        # name a node of the image (R72): the genesis is the truth.
        for i in range(img.node_count):
            rec = img.record(i)
            for v in rec.fields.values():
                for ref in iter_refs(v):
                    if not 1 <= ref < img.next_node_id:
                        raise DecodeError(f"node {i + 1} refers to missing node {ref} "
                                          "(R72)", 0)
    except DecodeError as e:
        rep.findings.append(Finding("error", "genesis", e.reason, off))
        raise _Stop from None
    r.state = GraphState(single(off, g.seq, img))
    r.seq, r.head, r.genesis_hash = g.seq, g.commit_id, g.state_hash
    r.snapshots[off] = g.seq


def _check_origin(r: _Replay, payload: memoryview, off: int, rep: VerifyReport,
                  placed: bool) -> None:
    """The origin frame at ``off`` (R34, R87; ``placed``: right after the genesis), or
    a finding and _Stop."""
    try:
        if r.version < VERSION_REWIND:
            raise DecodeError(f"an origin frame in a version-{r.version} file (R34)", 0)
        if not placed:
            raise DecodeError("an origin frame that does not follow the genesis (R34)", 0)
        o = decode_origin(payload)
        if o.seq > r.seq or (o.seq == r.seq and (o.commit_id != r.head
                                                 or o.state_hash != r.genesis_hash)):
            raise DecodeError("the origin record disagrees with the genesis (R87)", 0)
    except DecodeError as e:
        rep.findings.append(Finding("error", "origin", e.reason, off))
        raise _Stop from None


def _check_checkpoint_frame(r: _Replay, payload: memoryview, off: int,
                            rep: VerifyReport, kind: int) -> None:
    """Report the checkpoint or layer at ``off`` if it is unusable or disagrees with
    the replay."""
    if kind == KIND_LAYER:
        problem, used = check_layer(payload, off, r.seq, r.head, r.state, r.changed_at,
                                    r.snapshots)
    else:
        problem, used = _check_checkpoint(payload, r.seq, r.head, r.state)
    if not problem:
        r.snapshots[off] = r.seq
    if problem and used:
        # Its hash is right, so readers use it (R80) and serve its state,
        # or refuse a malformed record when they read it (§8.4).
        rep.findings.append(Finding("error", "checkpoint", problem + "; readers use it "
                                    "(its hash is right) and show its state or refuse "
                                    "its records; `--repair` drops it", off, r.seq, True))
        rep.bad_checkpoints.append(off)
    elif problem:
        rep.findings.append(Finding("warning", "checkpoint", problem + "; it is skipped "
                                    "on open and `--repair` drops it", off, r.seq, True))
        rep.bad_checkpoints.append(off)


def _replay_commit(r: _Replay, payload: memoryview, off: int, rep: VerifyReport) -> None:
    """Apply the commit at ``off`` (R31, R32, R60, R61, R50–R53), or a finding and _Stop."""
    r.seq += 1
    seq = r.seq
    try:
        h = commit_header(payload, seq, r.head, off)
        muts = commit_mutations(payload, h, seq, off, r.version)
        changed_at = r.changed_at
        try:
            for m in muts:
                owned(m).apply(r.state)
                changed_at[m.node] = seq
        except MyosotisError as e:
            raise ChainError("rule", f"mutation breaks §6: {e}", off) from None
        check_next_node_id(h, seq, r.state.next_node_id, off)
    except ChainError as e:
        rep.findings.append(Finding("error", e.code, e.reason, e.offset, seq))
        raise _Stop from None
    r.head = commit_id(payload)
    rep.commits += 1


def _check_checkpoint(payload: memoryview, seq: int, head: bytes,
                      state: GraphState) -> tuple[str, bool]:
    """Why a checkpoint is unusable (R33, R80) or disagrees with the replay ("" if
    fine), and whether readers use it all the same (its hash and R33 are right)."""
    try:
        h = decode_snapshot_header(payload)
    except DecodeError as e:
        return e.reason, False
    if seq == 0:
        return "checkpoint before the first commit (R33)", False
    if h.seq != seq or h.commit_id != head:
        return f"checkpoint claims commit {h.seq} but follows commit {seq} (R33)", False
    body = payload[SNAPSHOT_PREFIX_SIZE:]
    if state_hash(body) != h.state_hash:
        return "state hash does not match the checkpoint's image (R80)", False
    try:
        StateImage(body, 0).check_tables()
    except DecodeError as e:
        return f"its image's tables are malformed: {e.reason} (R80)", False
    if state_hash(state.image()) != h.state_hash:
        return "checkpoint's state differs from the replay of the commits before it", True
    return "", False


def repair_file(path: str, lock_timeout: float = 0.0,
                fileops: FileOps = REAL) -> tuple[VerifyReport, list[str]]:
    """Repair what loses nothing committed; return the report after repair and the actions.

    Takes the writer lock (LockedError if a writer has the file, under any of
    its names). Cuts a torn tail; rewrites the file without checkpoints that
    fail (and without any layer: their base offsets would move, §8.5),
    atomically (temp file, fsync, rename, directory fsync), with its mode.
    Other findings are left alone.
    """
    lock = WriterLock(path)
    lock.acquire(lock_timeout)
    actions: list[str] = []
    done = False
    try:
        rep = verify_file(path)
        tail = [f for f in rep.findings if f.code in ("torn-tail", "damaged-tail")]
        if any(not f.repairable for f in rep.errors):
            pass  # committed data is damaged: repair would hide it; only report
        elif rep.bad_checkpoints:
            if tail:  # first, so the rewrite below copies only what stays
                actions.append(_cut_tail(path, rep, fileops))
            drop = set(rep.bad_checkpoints)
            _rewrite_without(path, drop, rep.valid_end, fileops, lock)
            actions.append(f"dropped {len(drop)} checkpoint(s) that failed verification")
        elif tail:
            actions.append(_cut_tail(path, rep, fileops))
        if actions:
            rep = verify_file(path)
        done = True
        return rep, actions
    finally:
        if done:
            lock.release()
        else:
            lock.abandon()  # a lock sidecar it created goes too


def _cut_tail(path: str, rep: VerifyReport, fileops: FileOps) -> str:
    """Cut the file at ``rep.valid_end`` (a torn or damaged tail), keeping its bytes
    aside (storage.log.cut_tail); return what was done."""
    fd = fileops.open(path, os.O_RDWR)
    try:
        cut = rep.file_size - rep.valid_end
        kept = cut_tail(fd, path, rep.valid_end, os.pread(fd, cut, rep.valid_end), fileops)
    finally:
        fileops.close(fd)
    done = f"cut the {cut} bytes at offset {rep.valid_end}"
    return f"{done} (kept in {kept})" if kept else done


def _rewrite_without(path: str, drop: set[int], valid_end: int, fileops: FileOps,
                     lock: WriterLock) -> None:
    """Copy every frame of ``[32, valid_end)`` except those at ``drop`` into a new file
    that replaces ``path`` atomically."""
    with open(path, "rb") as f:
        data = f.read(valid_end)
    res = scan_frames(data, HEADER_SIZE, False, FRAME_FLAGS_ALLOWED[2])
    offs = list(res.offsets) + [res.end]
    # Whole and synced: no frame needs a flag (§3), and no layer stays, so version
    # 1, unless the file holds what only version 3 has (an ORIGIN, an UNDELETE):
    # then 3 (§12, chain.rewritten_version). Repair runs only when every commit
    # decoded (no unrepairable finding), so the commits decode here too.
    commits = (_payload(memoryview(data), a) for a, kind in zip(offs, res.kinds, strict=False)
               if kind == KIND_COMMIT)
    version = rewritten_version(int.from_bytes(data[8:10], "little"),
                                KIND_ORIGIN in res.kinds, commits)
    parts = [encode_file_header(version)]
    for a, b, kind in zip(offs, offs[1:], res.kinds, strict=False):
        # Every layer goes too: each names its base by an offset that moves (§8.5).
        if a not in drop and kind != KIND_LAYER:
            parts.append(without_flags(data[a:b]))
    write_atomically(path, b"".join(parts), fileops, lock)
