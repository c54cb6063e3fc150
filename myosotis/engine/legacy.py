"""Legacy v0.5 files (formatspec/LEGACY.md): telling one from anything else, and the
binary file it migrates to.

A legacy file is a JSON document without the magic (LEGACY.md §2). Reading one
means building, in memory, the bytes of the binary file it migrates to
(engine/importing.py ``read_legacy``): the state, the history and the commit
ids are then exactly the migrated file's. The bytes depend only on the
document, so migrating twice gives the same file.
"""

from __future__ import annotations

import os
from typing import Any

from myosotis.engine.importing import ImportSummary, read_legacy
from myosotis.errors import (
    CorruptFileError,
    InvalidDocumentError,
    MyosotisError,
    NotAMyosotisFileError,
    UnsupportedVersionError,
)
from myosotis.format.constants import MAGIC
from myosotis.format.jsonform import load_json
from myosotis.storage.fileops import open_regular

BACKUP_SUFFIX = ".v0.bak"
_WHITESPACE = b" \t\r\n"
_SNIFF = 4096  # bytes read to tell a legacy file by L1 before reading it whole


def read_file(path: str, only_legacy: bool = False) -> bytes:
    """The bytes of the regular file ``path`` (never blocks on a FIFO).

    With ``only_legacy``, a file that cannot be a legacy file by its first bytes
    (L1) is refused (NotAMyosotisFileError) before the rest is read: a large
    binary or foreign file is never read whole to be told apart.
    """
    try:
        fd = open_regular(path, os.O_RDONLY)
    except OSError as e:
        raise MyosotisError(f"cannot open {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            if only_legacy:
                head = f.read(_SNIFF)
                if not _may_be_legacy(head):
                    raise _not_ours(path)
                return head + f.read()
            return f.read()
    finally:
        os.close(fd)


def _may_be_legacy(head: bytes) -> bool:
    """L1 on the first bytes of a file: no magic, and ``{`` first after whitespace
    (whitespace longer than the bytes read is not a legacy file either)."""
    return not head.startswith(MAGIC) and head.lstrip(_WHITESPACE).startswith(b"{")


def _not_ours(name: str) -> NotAMyosotisFileError:
    return NotAMyosotisFileError(
        f"{name} is not a Myosotis file (it does not start with {MAGIC.decode()!r} and is "
        "not a legacy v0.5 JSON file)")


def legacy_document(data: bytes, name: str) -> Any:
    """The legacy document in ``data`` (LEGACY.md §2, L1–L4), checked for its shape only.

    Raises NotAMyosotisFileError when ``data`` is not a legacy file (it has the
    magic, or is not a JSON object with ``commits`` and ``next_node_id``), and
    UnsupportedVersionError for a JSON document that carries the magic and a
    ``format_version`` (a later JSON form this version does not read, L5).
    """
    not_ours = _not_ours(name)
    if not _may_be_legacy(data[:_SNIFF]):
        raise not_ours
    try:
        doc = load_json(data)
    except InvalidDocumentError:
        raise not_ours from None
    if not isinstance(doc, dict):
        raise not_ours
    if "magic" in doc or "format_version" in doc:
        if doc.get("magic") == MAGIC.decode():
            raise UnsupportedVersionError(
                f"{name} is a JSON Myosotis file with format_version "
                f"{doc.get('format_version')!r}, which this version does not read (it reads "
                "binary files and header-less v0.5 files); upgrade Myosotis to open it")
        raise not_ours
    if "commits" not in doc or "next_node_id" not in doc:
        raise not_ours
    return doc


def migrated_bytes(doc: Any) -> tuple[bytes, ImportSummary]:
    """The binary file a legacy document migrates to (LEGACY.md §4), and what it holds.
    Raises CorruptFileError naming the JSON location of what breaks LEGACY.md §3."""
    parts: list[bytes] = []
    try:
        summary = read_legacy(doc, parts.append)
    except InvalidDocumentError as e:
        raise CorruptFileError(f"legacy v0.5 file, at {e.location or '/'}: {e.reason}") from None
    return b"".join(parts), summary


def is_legacy(path: str) -> bool:
    """Whether the file at ``path`` is a legacy file by L1–L4 (not whether it is valid)."""
    try:
        legacy_document(read_file(path, only_legacy=True), path)
    except MyosotisError:
        return False
    return True
