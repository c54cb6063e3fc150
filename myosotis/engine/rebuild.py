"""Writing a new file's frames from a genesis state and a list of commits, as a writer
would, checking every rule on the way: the back end of import (EXPORT.md §7) and of
legacy migration (LEGACY.md §4).

The frames go to an ``emit`` callable as they are made (the caller streams
them to a temp file): the header, a GENESIS frame when there is a base state
(FORMAT.md §8.3; ``base_seq`` 0 is allowed and means a state before the first
commit), one COMMIT frame per commit (§7) and CHECKPOINT frames where the
reference writer's policy puts them (§8.4) or where the caller asks. The
output depends only on the input: two builds of one document give the same
bytes. Errors are InvalidDocumentError naming the JSON location the caller
gave; nothing is emitted after one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from myosotis.engine.graph import GraphState
from myosotis.engine.layers import single
from myosotis.engine.policy import CHECKPOINT_FLOOR, checkpoint_due
from myosotis.errors import InvalidDocumentError, MyosotisError
from myosotis.format.constants import (
    KIND_CHECKPOINT,
    KIND_COMMIT,
    KIND_GENESIS,
    MAX_PAYLOAD,
)
from myosotis.format.header import encode_file_header, encode_frame
from myosotis.format.image import StateImage, encode_image, encode_node_record, state_hash
from myosotis.format.jsonform import pointer
from myosotis.format.mutation_parts import check_refs
from myosotis.format.mutations import Mutation, Undelete
from myosotis.format.records import commit_id, encode_commit, encode_snapshot
from myosotis.format.values import encode_str

Emit = Callable[[bytes], None]
"""Appends bytes to the new file."""
Patch = Callable[[int, bytes], None]
"""Writes bytes at an offset of what was emitted already (the header's version)."""
ZERO_ID = bytes(32)


class Builder:
    """Frames of a new file, made one call at a time (see the module docstring).

    Call :meth:`genesis` at most once, first; then :meth:`commit` for each
    commit in order, :meth:`checkpoint` where wanted; then :meth:`finish`.
    ``head_seq``, ``head_id`` and ``state`` follow the last commit.
    """

    def __init__(self, emit: Emit, auto_checkpoints: bool = True,
                 patch: Patch | None = None) -> None:
        """``patch``: how to rewrite the header when a commit holds an UNDELETE (the file
        is then version 3, FORMAT.md §12); None refuses such a commit (legacy
        documents, which have no UNDELETE)."""
        self.emit = emit
        self.patch = patch
        self.version = 1
        self.auto = auto_checkpoints
        self.state = GraphState()
        self.head_seq = 0
        self.head_id = ZERO_ID
        self.bytes_since_checkpoint = 0
        self.last_image_size = 0
        self.problems: list[str] = []
        emit(encode_file_header())

    # ------------------------------------------------------------------ genesis

    def genesis(self, base_seq: int, base_id: bytes, next_node_id: int,
                nodes: Iterable[tuple[int, str, dict[str, Any], bool, str]], where: str) -> bytes:
        """The state after commit ``base_seq`` (id ``base_id``) as its GENESIS frame;
        ``nodes``: ``(id, type, fields, deleted, json location)``, in id order (read
        one at a time: only their records are kept). Returns its state hash, for
        the caller to check (:func:`check_hash`). A base of seq 0 with no node
        writes no frame (the empty state needs none)."""
        if (base_seq == 0) != (base_id == ZERO_ID):
            raise InvalidDocumentError("the commit id is null exactly when seq is 0 (R86)",
                                       pointer(where, "id"))
        records: list[tuple[int, bytes]] = []
        for i, (node_id, type_name, fields, deleted, w) in enumerate(nodes):
            if node_id != i + 1:
                raise InvalidDocumentError(
                    f"node id {node_id} where {i + 1} belongs: nodes are listed once each, "
                    "ids 1, 2, 3... in order, with no gap (FORMAT.md R73)", pointer(w, "id"))
            if node_id >= next_node_id:
                raise InvalidDocumentError(f"node id {node_id} is not below next_node_id "
                                           f"{next_node_id} (R70)", pointer(w, "id"))
            records.append((node_id, _node_record(type_name, fields, deleted, next_node_id, w)))
        if len(records) != next_node_id - 1:
            raise InvalidDocumentError(
                f"next_node_id is {next_node_id} but {len(records)} nodes are listed: every id "
                f"from 1 to next_node_id - 1 must be (R73)", pointer(where, "nodes"))
        image = encode_image(next_node_id, records)
        del records
        h = state_hash(image)
        if base_seq or next_node_id > 1:
            self._frame(KIND_GENESIS, encode_snapshot(base_seq, base_id, h, image), where)
            self.last_image_size = len(image)
        # a stack of one full image (engine/layers.py); this writer writes no layers
        self.state = GraphState(single(0, base_seq, StateImage(image))) \
            if next_node_id > 1 else GraphState()
        self.head_seq, self.head_id = base_seq, base_id
        return h

    # ------------------------------------------------------------------ commits

    def commit(self, seq: int, timestamp_us: int, label: str,
               mutations: list[tuple[Mutation, bytes, str]], where: str,
               expect: dict[str, Any]) -> bytes:
        """Apply and write one commit; return its id. ``mutations``: ``(mutation, its
        encoding, json location)``. ``expect`` may hold ``parent`` and ``id`` (bytes)
        and ``next_node_id`` (int) as the document states them: each is checked."""
        if seq != self.head_seq + 1:
            raise InvalidDocumentError(f"commit seq {seq} where {self.head_seq + 1} belongs "
                                       "(consecutive, R31)", pointer(where, "seq"))
        if expect.get("parent", self.head_id) != self.head_id:
            raise InvalidDocumentError("parent is not the id of the commit before (R32)",
                                       pointer(where, "parent"))
        if self.version < 3 and any(type(m) is Undelete for m, _, _ in mutations):
            self._need_version_3(where)
        state = self.state
        for m, _, w in mutations:
            try:
                m.apply(state)
            except MyosotisError as e:
                raise InvalidDocumentError(f"{e} (FORMAT.md R50-R53)", w) from None
        nxt = state.next_node_id
        if expect.get("next_node_id", nxt) != nxt:
            raise InvalidDocumentError(f"next_node_id after this commit is {nxt}, not "
                                       f"{expect['next_node_id']} (R60)",
                                       pointer(where, "next_node_id"))
        body = b"".join(b for _, b, _ in mutations)
        try:
            encode_str(label, "commit label")
        except MyosotisError as e:
            raise InvalidDocumentError(str(e), pointer(where, "label")) from None
        payload = encode_commit(seq, timestamp_us, self.head_id, nxt, label, len(mutations), body)
        cid = commit_id(payload)
        if expect.get("id", cid) != cid:
            raise InvalidDocumentError(
                f"the commit's contents hash to {cid.hex()}, not the id written: the "
                "document was edited or is damaged (FORMAT.md §9.1)", pointer(where, "id"))
        self._frame(KIND_COMMIT, payload, where)
        self.head_seq, self.head_id = seq, cid
        self.bytes_since_checkpoint += len(payload)
        if self.auto and checkpoint_due(self.bytes_since_checkpoint, self.last_image_size,
                                        CHECKPOINT_FLOOR):
            self.checkpoint()
        return cid

    def checkpoint(self, expect_hash: bytes | None = None) -> bool:
        """A CHECKPOINT frame of the state after the last commit. With ``expect_hash``
        (a legacy file's checkpoint), only if the state hashes to it: else it is
        noted in ``problems`` (a checkpoint is a cache) and False returned."""
        if self.head_seq == 0:
            return False
        image = self.state.image()
        h = state_hash(image)
        if expect_hash is not None and h != expect_hash:
            self.problems.append(f"the checkpoint of commit {self.head_seq} does not match "
                                 "the replay of the commits; it was dropped (a cache)")
            return False
        self._frame(KIND_CHECKPOINT, encode_snapshot(self.head_seq, self.head_id, h, image), "")
        self.bytes_since_checkpoint = 0
        self.last_image_size = len(image)
        self.state = self.state.rebased(single(0, self.head_seq, StateImage(image)))
        return True

    def finish(self, next_node_id: int, where: str) -> bytes:
        """Check the document's final ``next_node_id``; return the state hash."""
        if next_node_id != self.state.next_node_id:
            raise InvalidDocumentError(
                f"next_node_id is {next_node_id} but the commits leave "
                f"{self.state.next_node_id}", pointer(where, "next_node_id"))
        return state_hash(self.state.image())

    def _need_version_3(self, where: str) -> None:
        # R54: only a version-3 file holds an UNDELETE. Nothing is read back from the
        # new file before it is whole, so its header can still change.
        if self.patch is None:
            raise InvalidDocumentError("an undelete mutation, which legacy files do not "
                                       "have (FORMAT.md R54)", pointer(where, "mutations"))
        self.patch(0, encode_file_header(3))
        self.version = 3

    def _frame(self, kind: int, payload: bytes, where: str) -> None:
        if len(payload) > MAX_PAYLOAD:
            raise InvalidDocumentError(f"this part takes {len(payload)} bytes in the file; a "
                                       f"record holds at most {MAX_PAYLOAD} (FORMAT.md §11)",
                                       where)
        self.emit(encode_frame(kind, payload))


def check_hash(h: bytes, expect: bytes | None, where: str) -> None:
    """A state hash the document states (``expect``, None if it states none) against
    the one of the state it describes (``h``)."""
    if expect is not None and h != expect:
        raise InvalidDocumentError(f"the state these parts describe hashes to {h.hex()}, not "
                                   "to the state hash written: the document was edited or "
                                   "is damaged", where)


def _node_record(type_name: str, fields: dict[str, Any], deleted: bool, next_node_id: int,
                 where: str) -> bytes:
    """A node of a state as its record (§8.1): a type and fields that can be stored,
    references to existing ids only (R72)."""
    if not type_name:
        raise InvalidDocumentError("a node type is a non-empty string", pointer(where, "type"))
    try:
        check_refs(fields, next_node_id)
        return encode_node_record(type_name, fields, deleted)
    except MyosotisError as e:
        raise InvalidDocumentError(f"{e} (FORMAT.md R72, §11)", where) from None
