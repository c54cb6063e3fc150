"""The stage file: changes kept between processes until they are committed.

Layout and rules: formatspec/STAGE.md (normative). A data file's stage lives
in the sidecar ``<file>.stage``; its operations are FORMAT.md §6 mutations,
encoded with the format's own codec. ``myo`` uses it so that changes staged
by separate runs are committed together; any program may (``Stage.read``,
``Stage.write``, ``Stage.remove``, ``Stage.status``).

The stage is rewritten whole for every change (temporary file, fsync, rename,
fsync of the directory). Callers hold the data file's writer lock while they
write or remove it, so a crash leaves the old or the new stage and two writers
never interleave.
"""

from __future__ import annotations

import contextlib
import os
import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from myosotis.errors import DamagedStageError, InvalidOperationError, MyosotisError
from myosotis.format.constants import MAX_PAYLOAD
from myosotis.format.helper import crc32c
from myosotis.format.mutations import VERSION_3_TYPES, Mutation, get_mutation, put_mutation
from myosotis.format.values import DecodeError, get_str, get_uvarint, put_str, put_uvarint
from myosotis.storage.fileops import copy_mode

if TYPE_CHECKING:
    from myosotis.api.memory import Memory

StageStatus = Literal["current", "committed", "stale", "foreign"]

MAGIC = b"MYOSTAGE"
VERSION = 2
VERSION_UNDELETE = 3  # version 2's layout, for a stage holding an UNDELETE (STAGE.md S2)
FLAG_INTENT = 0x01
_PREFIX = struct.Struct("<8sHHIQ32sq")  # magic, version, reserved, flags, base seq, id, ts
_FILE_ID = struct.Struct("<QQq")  # the data file's st_dev, st_ino, st_mtime_ns (v2)
PREFIX_V1 = _PREFIX.size
assert PREFIX_V1 == 64
PREFIX_SIZE = PREFIX_V1 + _FILE_ID.size
assert PREFIX_SIZE == 88
MAX_STAGE = MAX_PAYLOAD  # a commit payload holds at most this much
ZERO_ID = "0" * 64


@dataclass(frozen=True)
class StageFileId:
    """Which data file a stage was made for (STAGE.md S12); zeros: not recorded (v1)."""

    dev: int = 0
    ino: int = 0
    mtime_ns: int = 0

    @classmethod
    def of(cls, path: str) -> StageFileId:
        st = os.stat(path)
        return cls(st.st_dev, st.st_ino, st.st_mtime_ns)

    @property
    def known(self) -> bool:
        return self != StageFileId()


@dataclass(frozen=True)
class StageIntent:
    """A commit about to be written from this stage (STAGE.md S9)."""

    timestamp_us: int
    label: str


@dataclass(frozen=True)
class Stage:
    """The staged operations of a data file and the head commit they were made against.

    An immutable value; :meth:`read`, :meth:`write` and :meth:`remove` move it
    to and from ``<file>.stage`` (STAGE.md §3).
    """

    base_seq: int
    base_id: str  # 64 hex digits; zeros for the empty history
    ops: tuple[Mutation, ...] = ()
    intent: StageIntent | None = None
    file: StageFileId = StageFileId()  # set by write(); compared only when base_seq is 0 (S12)

    @staticmethod
    def path_for(data_path: str) -> str:
        """The stage file of data file ``data_path``."""
        return data_path + ".stage"

    def encode(self) -> bytes:
        """The bytes of this stage's file (STAGE.md §2)."""
        return _encode(self)

    @staticmethod
    def decode(data: bytes, path: str = "stage") -> Stage:
        """Parse a stage file (version 2, or 1: no file identity); raises
        DamagedStageError, naming ``path``, for any broken rule (S1–S6)."""
        return _decode(data, path)

    @staticmethod
    def read(data_path: str) -> Stage | None:
        """The stage of ``data_path``, or None when nothing is staged; raises
        DamagedStageError."""
        return _read(data_path)

    def write(self, data_path: str) -> Stage:
        """Make this the stage of ``data_path``, atomically and durably (S10); the
        result records the data file's identity (S12). Hold the writer lock."""
        return _write(data_path, self)

    @staticmethod
    def remove(data_path: str) -> bool:
        """Delete the stage of ``data_path`` (and a leftover temporary file); True if
        there was one. Hold the writer lock."""
        return _remove(data_path)

    def status(self, mem: Memory) -> StageStatus:
        """``current``, ``committed`` (by its intent, S9), ``stale`` (S8) or ``foreign``
        (made for another file at this path, S12), against ``mem``'s head."""
        return _status(mem, self)


# --------------------------------------------------------------------------
# bytes (STAGE.md §2)


def _encode(stage: Stage) -> bytes:
    it, f = stage.intent, stage.file
    # A stage with an UNDELETE says so in its version, so that a myo that does not
    # know the opcode refuses it as newer (S2), not as damaged.
    version = VERSION_UNDELETE if any(type(m) in VERSION_3_TYPES for m in stage.ops) \
        else VERSION
    buf = bytearray(_PREFIX.pack(MAGIC, version, 0, FLAG_INTENT if it else 0, stage.base_seq,
                                 bytes.fromhex(stage.base_id), it.timestamp_us if it else 0))
    buf += _FILE_ID.pack(f.dev, f.ino, f.mtime_ns)
    put_str(buf, it.label if it else "", "commit label")
    put_uvarint(buf, len(stage.ops))
    for m in stage.ops:
        put_mutation(buf, m)
    buf += crc32c(bytes(buf)).to_bytes(4, "little")
    return bytes(buf)


def _decode(data: bytes, path: str) -> Stage:
    if len(data) < 8 or data[:8] != MAGIC:
        raise DamagedStageError(path, "it does not start with MYOSTAGE (S1)")
    if len(data) < PREFIX_V1 + 2 + 4:
        raise DamagedStageError(path, "it is cut short (S3)")
    magic, version, reserved, flags, base_seq, base_id, ts = _PREFIX.unpack_from(data)
    if version not in (1, VERSION, VERSION_UNDELETE):
        raise DamagedStageError(path, f"stage version {version}; this myo reads versions 1 "
                                f"to {VERSION_UNDELETE} (S2)")
    prefix = PREFIX_SIZE if version != 1 else PREFIX_V1
    if len(data) < prefix + 2 + 4:
        raise DamagedStageError(path, "it is cut short (S3)")
    file = StageFileId(*_FILE_ID.unpack_from(data, PREFIX_V1)) if version != 1 \
        else StageFileId()
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
    if (version == VERSION_UNDELETE) != any(type(m) in VERSION_3_TYPES for m in ops):
        raise DamagedStageError(path, f"a version-{version} stage that does "
                                f"{'' if version == VERSION_UNDELETE else 'not '}hold an "
                                "UNDELETE; version 3 is written exactly when one does (S2)")
    intent = StageIntent(ts, label) if flags & FLAG_INTENT else None
    return Stage(base_seq, base_id.hex(), tuple(ops), intent, file)


# --------------------------------------------------------------------------
# the file (STAGE.md §3)


def _read(path: str) -> Stage | None:
    sp = Stage.path_for(path)
    try:
        with open(sp, "rb") as f:
            data = f.read(MAX_STAGE + 1)
    except FileNotFoundError:
        return None
    if len(data) > MAX_STAGE:
        raise DamagedStageError(sp, "it is larger than a commit can be (S3)")
    return _decode(data, sp)


def _sync_dir(path: str) -> None:
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _replace(src: str, dst: str) -> None:
    """The rename that makes a new stage current (a seam for crash tests)."""
    os.replace(src, dst)


def _write(path: str, stage: Stage) -> Stage:
    # The stage holds staged values (secrets too): it takes the data file's
    # permission bits, never wider ones.
    sp = Stage.path_for(path)
    tmp = sp + ".tmp"
    data_stat = os.stat(path)
    stage = replace(stage, file=StageFileId(data_stat.st_dev, data_stat.st_ino,
                                       data_stat.st_mtime_ns))
    data = _encode(stage)
    if len(data) > MAX_STAGE:
        raise InvalidOperationError("too many staged changes for one commit; commit some of them "
                                    "first")
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


def _remove(path: str) -> bool:
    sp = Stage.path_for(path)
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


def _head(mem: Memory) -> tuple[int, str]:
    head = mem.head
    return (0, ZERO_ID) if head is None else (head.seq, head.id)


def _committed_by_intent(mem: Memory, stage: Stage) -> int | None:
    """The seq of the commit this stage's intent produced, if it is in ``mem``'s
    history (S9)."""
    it = stage.intent
    head_seq, _ = _head(mem)
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


def _made_for_another_file(mem: Memory, stage: Stage) -> bool:
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
    now = StageFileId.of(mem.path)
    if _head(mem)[0] == 0:
        return now != f
    return (now.dev, now.ino) != (f.dev, f.ino)


def _status(mem: Memory, stage: Stage) -> StageStatus:
    if (stage.base_seq, stage.base_id) == _head(mem):
        return "foreign" if _made_for_another_file(mem, stage) else "current"
    if _committed_by_intent(mem, stage) is not None:
        return "committed"
    return "foreign" if _made_for_another_file(mem, stage) else "stale"
