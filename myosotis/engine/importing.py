"""Reading a JSON export (formatspec/EXPORT.md) or a legacy v0.5 document
(formatspec/LEGACY.md) into the frames of a binary file, through
engine/rebuild.py.

Each reader checks the document's shape part by part as it goes (a JSON
pointer names the part in every error) and hands the builder what it needs;
the builder checks the graph rules and the hashes. Nothing here writes a
file: ``emit`` receives the bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from myosotis.engine.export import EXPORT_FORMAT, EXPORT_VERSION
from myosotis.engine.rebuild import ZERO_ID, Builder, Emit, Patch, check_hash
from myosotis.format.constants import INT_MAX, INT_MIN, MAX_NODE_ID
from myosotis.format.jsonform import (
    array,
    fields_from_json,
    hex_id,
    integer,
    mutation_from_json,
    node_id,
    obj,
    pointer,
    refuse,
    text,
)
from myosotis.format.mutations import Mutation

_U63 = MAX_NODE_ID + 1  # the largest next_node_id (§11)
_COUNT_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class ImportSummary:
    """What a document held: its kind, the head it ends at, the state hash, and
    the problems found in a cache (a legacy checkpoint that was dropped)."""

    kind: str
    head_seq: int
    head_id: str | None
    state_hash: str
    commits: int
    problems: tuple[str, ...] = ()


# --------------------------------------------------------------------------
# parts shared by both documents


def _next_id(x: Any, where: str) -> int:
    return integer(x, where, 1, _U63, "next_node_id")


def _nodes(x: Any, where: str) -> Iterator[tuple[int, str, dict[str, Any], bool, str]]:
    """The nodes of a state (EXPORT.md §4), checked one at a time as they are read."""
    for i, n in enumerate(array(x, where)):
        w = pointer(where, i)
        d = obj(n, w, ("id", "type", "deleted", "fields"))
        deleted = d["deleted"]
        if type(deleted) is not bool:
            raise refuse(pointer(w, "deleted"), "expected true or false")
        yield (node_id(d["id"], pointer(w, "id")), text(d["type"], pointer(w, "type")),
               fields_from_json(d["fields"], pointer(w, "fields")), deleted, w)


def _optional_id(x: Any, where: str) -> bytes:
    """A commit id or null (no commit): never 64 zeros, which is no commit's id."""
    if x is None:
        return ZERO_ID
    cid = hex_id(x, where)
    if cid == ZERO_ID:
        raise refuse(where, "no commit has the id of 64 zeros: write null for no commit")
    return cid


def _commit(b: Builder, c: Any, where: str, required: tuple[str, ...],
            optional: tuple[str, ...]) -> None:
    d = obj(c, where, required, optional)
    seq = integer(d["seq"], pointer(where, "seq"), 1, _COUNT_MAX, "seq")
    ts = integer(d["timestamp_us"], pointer(where, "timestamp_us"), INT_MIN, INT_MAX,
                 "timestamp_us")
    label = d["label"]
    label = "" if label is None else text(label, pointer(where, "label"), "label")
    expect: dict[str, Any] = {}
    if "id" in d:
        expect["id"] = hex_id(d["id"], pointer(where, "id"))
    if "parent" in d:
        expect["parent"] = _optional_id(d["parent"], pointer(where, "parent"))
    if "next_node_id" in d:
        expect["next_node_id"] = _next_id(d["next_node_id"], pointer(where, "next_node_id"))
    mw = pointer(where, "mutations")
    ms: list[tuple[Mutation, bytes, str]] = []
    for i, m in enumerate(array(d["mutations"], mw)):
        w = pointer(mw, i)
        ms.append((*mutation_from_json(m, w), w))
    b.commit(seq, ts, label, ms, where, expect)


def _hash(d: dict[str, Any], key: str, where: str) -> bytes | None:
    return hex_id(d[key], pointer(where, key), "state hash") if key in d else None


# --------------------------------------------------------------------------
# EXPORT.md


_EXPORT_COMMIT = ("seq", "id", "parent", "timestamp_us", "label", "next_node_id", "mutations")


def read_export(doc: Any, emit: Emit, patch: Patch) -> ImportSummary:
    """Check an export document and emit the frames of the file it imports to
    (EXPORT.md §8); ``patch(offset, bytes)`` rewrites bytes already emitted (the
    header, when a commit holds an UNDELETE). Raises InvalidDocumentError."""
    d = obj(doc, "")
    if d.get("format") != EXPORT_FORMAT:
        raise refuse("/format", f"not a Myosotis export (no \"format\": \"{EXPORT_FORMAT}\")")
    version = d.get("version")
    if type(version) is not int or version != EXPORT_VERSION:
        raise refuse("/version", f"export version {version!r}: this version of Myosotis reads "
                     f"version {EXPORT_VERSION}; upgrade Myosotis to import it")
    kind = d.get("kind")
    b = Builder(emit, patch=patch)
    # The keys are read in the order an export writes them (EXPORT.md §2), so that
    # a streamed document (format/jsonstream.py) is read one node or commit at a time.
    if kind == "state":
        obj(d, "", ("format", "version", "kind", "at", "next_node_id", "nodes"), ("state_hash",))
        at = obj(d["at"], "/at", ("seq", "id"))
        seq = integer(at["seq"], "/at/seq", 0, _COUNT_MAX, "seq")
        aid = _optional_id(at["id"], "/at/id")
        h = b.genesis(seq, aid, _next_id(d["next_node_id"], "/next_node_id"),
                      _nodes(d["nodes"], "/nodes"), "")
        check_hash(h, _hash(d, "state_hash", ""), "/state_hash")
        return ImportSummary("state", seq, aid.hex() if seq else None, h.hex(), 0)
    if kind != "history":
        raise refuse("/kind", f"kind {kind!r}: an export is of kind \"state\" or \"history\"")
    obj(d, "", ("format", "version", "kind", "genesis", "commits", "head", "next_node_id"),
        ("state_hash",))
    if d["genesis"] is not None:
        g = obj(d["genesis"], "/genesis", ("seq", "id", "next_node_id", "nodes"),
                ("state_hash",))
        base = integer(g["seq"], "/genesis/seq", 0, _COUNT_MAX, "seq")
        gid = _optional_id(g["id"], "/genesis/id")
        h = b.genesis(base, gid, _next_id(g["next_node_id"], "/genesis/next_node_id"),
                      _nodes(g["nodes"], "/genesis/nodes"), "/genesis")
        check_hash(h, _hash(g, "state_hash", "/genesis"), "/genesis/state_hash")
    count = 0
    for i, c in enumerate(array(d["commits"], "/commits")):
        _commit(b, c, pointer("/commits", i), _EXPORT_COMMIT, ())
        count += 1
    head = obj(d["head"], "/head", ("seq", "id"))
    head_seq = integer(head["seq"], "/head/seq", 0, _COUNT_MAX, "seq")
    if head_seq != b.head_seq or _optional_id(head["id"], "/head/id") != b.head_id:
        raise refuse("/head", f"the commits end at commit {b.head_seq} "
                     f"({b.head_id.hex()}), not at the head written")
    h = b.finish(_next_id(d["next_node_id"], "/next_node_id"), "")
    check_hash(h, _hash(d, "state_hash", ""), "/state_hash")
    return ImportSummary("history", b.head_seq, head["id"], h.hex(), count)


# --------------------------------------------------------------------------
# LEGACY.md


LEGACY_KEYS = ("commits", "checkpoints", "next_node_id")
LEGACY_OPTIONAL = ("genesis_state", "genesis_state_hash")
_LEGACY_COMMIT = ("seq", "timestamp_us", "label", "mutations")
_LEGACY_COMMIT_OPTIONAL = ("id", "parent", "next_node_id")


def read_legacy(doc: Any, emit: Emit) -> ImportSummary:
    """Check a legacy document (LEGACY.md §3) and emit the frames of the binary file
    it migrates to (§4). Raises InvalidDocumentError; a legacy checkpoint that does
    not match the replay is dropped and named in ``problems``."""
    d = obj(doc, "", LEGACY_KEYS, LEGACY_OPTIONAL)
    b = Builder(emit, auto_checkpoints=False)
    if "genesis_state" in d:
        g = obj(d["genesis_state"], "/genesis_state", ("next_node_id", "nodes"))
        h = b.genesis(0, ZERO_ID, _next_id(g["next_node_id"], "/genesis_state/next_node_id"),
                      _nodes(g["nodes"], "/genesis_state/nodes"), "/genesis_state")
        check_hash(h, _hash(d, "genesis_state_hash", ""), "/genesis_state_hash")
    elif "genesis_state_hash" in d:
        raise refuse("/genesis_state_hash", "a genesis_state_hash without a genesis_state")
    checkpoints = _legacy_checkpoints(d["checkpoints"])
    commits = array(d["commits"], "/commits")
    for i, c in enumerate(commits):
        w = pointer("/commits", i)
        _commit(b, c, w, _LEGACY_COMMIT, _LEGACY_COMMIT_OPTIONAL)
        if b.head_seq in checkpoints:
            b.checkpoint(checkpoints.pop(b.head_seq))
    if checkpoints:
        raise refuse("/checkpoints", f"a checkpoint of commit {min(checkpoints)}, which the "
                     "file does not have")
    h = b.finish(_next_id(d["next_node_id"], "/next_node_id"), "")
    hid = b.head_id.hex() if b.head_seq else None
    return ImportSummary("legacy", b.head_seq, hid, h.hex(), len(commits), tuple(b.problems))


def _legacy_checkpoints(x: Any) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for i, c in enumerate(array(x, "/checkpoints")):
        w = pointer("/checkpoints", i)
        cp = obj(c, w, ("seq", "state_hash"))
        seq = integer(cp["seq"], pointer(w, "seq"), 1, _COUNT_MAX, "seq")
        if out and seq <= max(out):
            raise refuse(pointer(w, "seq"), "checkpoints are listed once each, in commit order")
        out[seq] = hex_id(cp["state_hash"], pointer(w, "state_hash"), "state hash")
    return out
