"""The stage: changes made by separate ``myo`` runs, kept until ``myo commit``.

Layout and rules: formatspec/STAGE.md (normative). The stage lives in the
sidecar ``<file>.stage``. Its operations are FORMAT.md §6 mutations, encoded
with the format's own codec, and they are applied only through the public
API (``Memory.create``, ``node[field] = v``, ``del node[field]``,
``node.delete()``, list and map proxies): the command line never changes a
graph by itself, so every rule the engine checks is checked when a change is
staged and again when it is committed.

The stage is rewritten whole for every change (temporary file, fsync, rename,
fsync of the directory), only while the data file's writer lock is held, so
a crash leaves the old or the new stage and two ``myo`` runs never interleave.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from myosotis.api.handles import ListProxy, MapProxy, Node
from myosotis.api.memory import Memory
from myosotis.errors import InvalidOperationError, MyosotisError
from myosotis.format.constants import MAX_PAYLOAD
from myosotis.format.helper import crc32c
from myosotis.format.mutations import (
    Create,
    Delete,
    ListInsert,
    ListRemove,
    ListReplace,
    MapDelete,
    MapSet,
    Mutation,
    Path,
    Set,
    Unset,
    get_mutation,
    put_mutation,
)
from myosotis.format.values import DecodeError, get_str, get_uvarint, put_str, put_uvarint
from myosotis.storage.fileops import copy_mode

from .files import head_of
from .output import EXIT_CORRUPT, CliError, printable
from .values import human, path_text, to_json

MAGIC = b"MYOSTAGE"
VERSION = 2
FLAG_INTENT = 0x01
_PREFIX = struct.Struct("<8sHHIQ32sq")  # magic, version, reserved, flags, base seq, id, ts
_FILE_ID = struct.Struct("<QQq")  # the data file's st_dev, st_ino, st_mtime_ns (v2)
PREFIX_V1 = _PREFIX.size
assert PREFIX_V1 == 64
PREFIX_SIZE = PREFIX_V1 + _FILE_ID.size
assert PREFIX_SIZE == 88
MAX_STAGE = MAX_PAYLOAD  # a commit payload holds at most this much
ZERO_ID = "0" * 64
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def stage_path(path: str) -> str:
    return path + ".stage"


class DamagedStageError(CliError):
    """The stage file breaks STAGE.md; nothing of it is used."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"the stage file {path} is damaged ({reason}); nothing in it was "
                         "used. Run `myo discard` to remove it, then stage the changes again",
                         EXIT_CORRUPT)


class StaleStageError(CliError):
    """The head moved since the stage was made (STAGE.md S8)."""


class ForeignStageError(CliError):
    """The stage was made for another file at the same path (STAGE.md S12)."""


@dataclass(frozen=True)
class FileId:
    """Which data file a stage was made for (STAGE.md S12); zeros: not recorded (v1)."""

    dev: int = 0
    ino: int = 0
    mtime_ns: int = 0

    @classmethod
    def of(cls, path: str) -> FileId:
        st = os.stat(path)
        return cls(st.st_dev, st.st_ino, st.st_mtime_ns)

    @property
    def known(self) -> bool:
        return self != FileId()


@dataclass(frozen=True)
class Intent:
    """A commit about to be written from this stage (STAGE.md S9)."""

    timestamp_us: int
    label: str


@dataclass(frozen=True)
class Stage:
    """The staged operations and the head commit they were made against."""

    base_seq: int
    base_id: str  # 64 hex digits; zeros for the empty history
    ops: tuple[Mutation, ...] = ()
    intent: Intent | None = None
    file: FileId = FileId()  # set by write(); compared only when base_seq is 0 (S12)


# --------------------------------------------------------------------------
# bytes (STAGE.md §2)


def encode(stage: Stage) -> bytes:
    """The bytes of a stage file (STAGE.md §2)."""
    it, f = stage.intent, stage.file
    buf = bytearray(_PREFIX.pack(MAGIC, VERSION, 0, FLAG_INTENT if it else 0, stage.base_seq,
                                 bytes.fromhex(stage.base_id), it.timestamp_us if it else 0))
    buf += _FILE_ID.pack(f.dev, f.ino, f.mtime_ns)
    put_str(buf, it.label if it else "", "commit label")
    put_uvarint(buf, len(stage.ops))
    for m in stage.ops:
        put_mutation(buf, m)
    buf += crc32c(bytes(buf)).to_bytes(4, "little")
    return bytes(buf)


def decode(data: bytes, path: str = "stage") -> Stage:
    """Parse a stage file (version 2, or 1: no file identity); raises DamagedStageError
    for any broken rule (S1–S6)."""
    if len(data) < 8 or data[:8] != MAGIC:
        raise DamagedStageError(path, "it does not start with MYOSTAGE (S1)")
    if len(data) < PREFIX_V1 + 2 + 4:
        raise DamagedStageError(path, "it is cut short (S3)")
    magic, version, reserved, flags, base_seq, base_id, ts = _PREFIX.unpack_from(data)
    if version not in (1, VERSION):
        raise DamagedStageError(path, f"stage version {version}; this myo reads versions 1 "
                                f"and {VERSION} (S2)")
    prefix = PREFIX_SIZE if version == VERSION else PREFIX_V1
    if len(data) < prefix + 2 + 4:
        raise DamagedStageError(path, "it is cut short (S3)")
    file = FileId(*_FILE_ID.unpack_from(data, PREFIX_V1)) if version == VERSION else FileId()
    body, crc = data[:-4], int.from_bytes(data[-4:], "little")
    if crc32c(body) != crc:
        raise DamagedStageError(path, "its checksum does not match (S3)")
    if reserved or flags & ~FLAG_INTENT or (not flags & FLAG_INTENT and ts):
        raise DamagedStageError(path, "reserved bits are set (S4)")
    if (base_seq == 0) != (base_id == bytes(32)):
        raise DamagedStageError(path, "base_seq and base_commit_id disagree (S5)")
    end = len(body)
    try:
        label, p = get_str(body, prefix, end)
        if label and not flags & FLAG_INTENT:
            raise DamagedStageError(path, "a label without a commit intent (S4)")
        count, p = get_uvarint(body, p, end)
        if count > end - p:
            raise DamagedStageError(path, "operation count exceeds the bytes left (S6)")
        ops: list[Mutation] = []
        for _ in range(count):
            m, p = get_mutation(body, p, end)
            ops.append(m)
    except DecodeError as e:
        raise DamagedStageError(path, f"operation bytes: {e.reason} (S6)") from None
    if p != end:
        raise DamagedStageError(path, "bytes after the last operation (S6)")
    intent = Intent(ts, label) if flags & FLAG_INTENT else None
    return Stage(base_seq, base_id.hex(), tuple(ops), intent, file)


# --------------------------------------------------------------------------
# the file (STAGE.md §3)


def read(path: str) -> Stage | None:
    """The stage of data file ``path``, or None when nothing is staged."""
    sp = stage_path(path)
    try:
        with open(sp, "rb") as f:
            data = f.read(MAX_STAGE + 1)
    except FileNotFoundError:
        return None
    if len(data) > MAX_STAGE:
        raise DamagedStageError(sp, "it is larger than a commit can be (S3)")
    return decode(data, sp)


def _sync_dir(path: str) -> None:
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _replace(src: str, dst: str) -> None:
    """The rename that makes a new stage current (a seam for crash tests)."""
    os.replace(src, dst)


def write(path: str, stage: Stage) -> Stage:
    """Make ``stage`` the stage of ``path``, atomically and durably (STAGE.md S10); it
    records the identity of the data file ``path`` (S12). Returns what was written.

    The stage holds staged values (secrets too): it takes the data file's
    permission bits, never wider ones.
    """
    sp = stage_path(path)
    tmp = sp + ".tmp"
    data_stat = os.stat(path)
    stage = replace(stage, file=FileId(data_stat.st_dev, data_stat.st_ino,
                                       data_stat.st_mtime_ns))
    data = encode(stage)
    if len(data) > MAX_STAGE:
        raise CliError("too many staged changes for one commit; commit some of them first")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        # the data file's mode exactly (whatever the umask; a leftover temporary
        # file of another mode is corrected too), and its owner and group if allowed
        copy_mode(path, fd)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    _replace(tmp, sp)
    _sync_dir(sp)
    return stage


def remove(path: str) -> bool:
    """Delete the stage (and a leftover temporary file); True if there was one."""
    sp = stage_path(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sp + ".tmp")
    try:
        os.unlink(sp)
    except FileNotFoundError:
        return False
    _sync_dir(sp)
    return True


# --------------------------------------------------------------------------
# against the data file (STAGE.md §4)


def committed_by_intent(mem: Memory, stage: Stage) -> int | None:
    """The seq of the commit this stage's intent produced, if it is in the history (S9)."""
    it = stage.intent
    head_seq, _ = head_of(mem)
    if it is None or head_seq <= stage.base_seq:
        return None
    seq = stage.base_seq + 1
    try:
        c = mem.commit_info(seq)
    except MyosotisError:
        return None
    parent = c.parent or ZERO_ID
    if parent == stage.base_id and c.timestamp_us == it.timestamp_us and \
            (c.label or "") == it.label:
        return seq
    return None


def made_for_another_file(mem: Memory, stage: Stage) -> bool:
    """True if the stage was made for another data file at this path (S12).

    Only a stage of the empty history is checked: every empty file has the same
    head, so the recorded identity (device, inode, modification time) tells
    them apart. A stage of a later head is tied to its file by the head commit id
    (S8), which also survives compaction (a new inode). Once the head moved, the
    file's modification time moved with it, and only the inode is compared.
    """
    f = stage.file
    if stage.base_seq != 0 or not f.known:
        return False
    now = FileId.of(mem.path)
    if head_of(mem)[0] == 0:
        return now != f
    return (now.dev, now.ino) != (f.dev, f.ino)


def status_of(mem: Memory, stage: Stage | None) -> str:
    """``none``, ``current``, ``committed`` (by its intent, S9), ``stale`` (S8) or
    ``foreign`` (made for another file at this path, S12)."""
    if stage is None:
        return "none"
    if (stage.base_seq, stage.base_id) == head_of(mem):
        return "foreign" if made_for_another_file(mem, stage) else "current"
    if committed_by_intent(mem, stage) is not None:
        return "committed"
    return "foreign" if made_for_another_file(mem, stage) else "stale"


def foreign_message(path: str, stage: Stage) -> str:
    n = len(stage.ops)
    return (f"the stage file {stage_path(path)} ({n} change{'s' if n != 1 else ''}) was made "
            f"for another file at this path, one that was deleted or replaced since; nothing "
            "in it was used. Run `myo discard` to remove it, then stage the changes again")


def stale_message(mem: Memory, stage: Stage) -> str:
    seq, cid = head_of(mem)
    return (f"the staged changes were made against commit #{stage.base_seq} "
            f"{stage.base_id[:12]}, but the head is now #{seq} {cid[:12]}: another writer "
            "committed in between. Run `myo status` to see them, `myo discard` to drop them, "
            "then stage them again")


def load_for_write(mem: Memory, path: str) -> Stage:
    """The current stage for a writer (holding the lock); a spent stage is removed.

    Raises StaleStageError when the head moved (S8) and DamagedStageError.
    """
    stage = read(path)
    seq, cid = head_of(mem)
    st = status_of(mem, stage)
    if stage is None or st == "committed":
        if st == "committed":
            remove(path)
        return Stage(seq, cid)
    if st == "stale":
        raise StaleStageError(stale_message(mem, stage))
    if st == "foreign":
        raise ForeignStageError(foreign_message(path, stage))
    return stage


# --------------------------------------------------------------------------
# applying operations through the public API


def container(node: Node, field_name: str, path: Path) -> Any:
    """The list or map proxy at ``path`` inside ``field_name`` of ``node``."""
    cur: Any = node[field_name]
    for depth, step in enumerate(path):
        if isinstance(cur, ListProxy) and type(step) is int:
            if not 0 <= step < len(cur):
                raise InvalidOperationError(
                    f"index {step} out of range at step {depth + 1} of the path into "
                    f"{field_name!r} (length {len(cur)})")
            cur = cur[step]
        elif isinstance(cur, MapProxy) and type(step) is str:
            if step not in cur:
                raise InvalidOperationError(
                    f"no key {step!r} at step {depth + 1} of the path into {field_name!r}")
            cur = cur[step]
        else:
            raise InvalidOperationError(
                f"{path_text(field_name, path[:depth])} of node {node.id} is "
                f"{_kind(cur)}; cannot step into it with {step!r}")
    return cur


def _kind(v: Any) -> str:
    if isinstance(v, ListProxy):
        return "a list"
    if isinstance(v, MapProxy):
        return "a map"
    return f"not a list or map ({human(v)})"


def list_at(node: Node, field_name: str, path: Path) -> ListProxy:
    """The list at ``path`` inside ``field_name``; InvalidOperationError if it is not one."""
    c = container(node, field_name, path)
    if not isinstance(c, ListProxy):
        raise InvalidOperationError(
            f"{path_text(field_name, path)} of node {node.id} is {_kind(c)}, not a list")
    return c


def map_at(node: Node, field_name: str, path: Path) -> MapProxy:
    """The map at ``path`` inside ``field_name``; InvalidOperationError if it is not one."""
    c = container(node, field_name, path)
    if not isinstance(c, MapProxy):
        raise InvalidOperationError(
            f"{path_text(field_name, path)} of node {node.id} is {_kind(c)}, not a map")
    return c


def apply(mem: Memory, op: Mutation) -> None:
    """Stage ``op`` on ``mem`` through the public API (raises what the API raises)."""
    if type(op) is Create:
        node = mem.create(op.type, **op.fields)
        if node.id != op.node:
            raise InvalidOperationError(
                f"staged create of node {op.node} got id {node.id}; the stage does not fit "
                "this file (run `myo discard`)")
        return
    n = mem.get(op.node)
    if type(op) is Set:
        n[op.field] = op.value
    elif type(op) is Unset:
        del n[op.field]
    elif type(op) is Delete:
        n.delete()
    elif type(op) is ListInsert:
        lst = list_at(n, op.field, op.path)
        if not 0 <= op.pos <= len(lst):
            raise InvalidOperationError(f"list index {op.pos} out of range for insert into a "
                                        f"list of length {len(lst)}")
        lst.insert(op.pos, op.value)
    elif type(op) is ListRemove:
        lst = list_at(n, op.field, op.path)
        if not 0 <= op.pos < len(lst):
            raise InvalidOperationError(f"list index {op.pos} out of range (length {len(lst)})")
        del lst[op.pos]
    elif type(op) is ListReplace:
        lst = list_at(n, op.field, op.path)
        if not 0 <= op.pos < len(lst):
            raise InvalidOperationError(f"list index {op.pos} out of range (length {len(lst)})")
        lst[op.pos] = op.value
    elif type(op) is MapSet:
        map_at(n, op.field, op.path)[op.key] = op.value
    elif type(op) is MapDelete:
        m = map_at(n, op.field, op.path)
        if op.key not in m:
            raise InvalidOperationError(f"map {path_text(op.field, op.path)} of node {op.node} "
                                        f"has no key {op.key!r}")
        del m[op.key]
    else:  # pragma: no cover - every opcode is handled above
        raise InvalidOperationError(f"unknown staged operation {op!r}")


def replay(mem: Memory, stage: Stage) -> None:
    """Apply every staged operation, in order, to ``mem`` (which has nothing staged)."""
    for i, op in enumerate(stage.ops, 1):
        try:
            apply(mem, op)
        except MyosotisError as e:
            raise CliError(f"staged change {i} ({describe(op)}) no longer applies: {e}. "
                           "Run `myo discard` and stage again") from None


@contextlib.contextmanager
def staged(mem: Memory, path: str) -> Iterator[Stage]:
    """The current stage, replayed on ``mem``; mem's staged state is dropped after."""
    stage = load_for_write(mem, path)
    try:
        replay(mem, stage)
        yield stage
    finally:
        if not mem.closed:
            mem.discard()


def add(path: str, stage: Stage, ops: list[Mutation]) -> Stage:
    """Write ``stage`` plus ``ops`` (already applied on a Memory) as the new stage."""
    return write(path, replace(stage, ops=(*stage.ops, *ops), intent=None))


# --------------------------------------------------------------------------
# describing operations


def op_name(op: Mutation) -> str:
    return {Create: "create", Set: "set", Unset: "unset", Delete: "delete",
            ListInsert: "list-insert", ListRemove: "list-remove", ListReplace: "list-set",
            MapSet: "map-set", MapDelete: "map-delete"}[type(op)]


def describe(mutation: Mutation) -> str:
    """One line for people, e.g. ``set 1.goal = "Explore"``."""
    op: Any = mutation
    t = type(op)
    if t is Create:
        fields = " ".join(f"{printable(k)}={human(v)}" for k, v in sorted(op.fields.items()))
        return f"create {op.node} {printable(op.type)}" + (f" {fields}" if fields else "")
    if t is Delete:
        return f"delete {op.node}"
    where = f"{op.node}.{path_text(op.field, getattr(op, 'path', ()))}"
    if t is Set:
        return f"set {where} = {human(op.value)}"
    if t is Unset:
        return f"unset {where}"
    if t is ListInsert:
        return f"list-insert {where} at {op.pos}: {human(op.value)}"
    if t is ListRemove:
        return f"list-remove {where} at {op.pos}"
    if t is ListReplace:
        return f"list-set {where} at {op.pos} = {human(op.value)}"
    if t is MapSet:
        return f"map-set {where} [{human(op.key)}] = {human(op.value)}"
    return f"map-delete {where} [{human(op.key)}]"


def op_json(mutation: Mutation) -> dict[str, Any]:
    """The JSON form of a staged operation (docs/CLI.md, ``myo status --json``)."""
    op: Any = mutation
    d: dict[str, Any] = {"op": op_name(op), "node": op.node}
    if type(op) is Create:
        d["type"] = op.type
        d["fields"] = {k: to_json(v) for k, v in op.fields.items()}
        return d
    if type(op) is Delete:
        return d
    d["field"] = op.field
    if hasattr(op, "path"):
        d["path"] = list(op.path)
    if hasattr(op, "pos"):
        d["index"] = op.pos
    if hasattr(op, "key"):
        d["key"] = op.key
    if hasattr(op, "value"):
        d["value"] = to_json(op.value)
    return d
