"""``Memory.export`` and ``Memory.import_``: the canonical JSON form of a memory
(formatspec/EXPORT.md) written to and read from file objects."""

from __future__ import annotations

import io
import os
from typing import IO, Any

from myosotis.engine.export import BufferedOut, write_history, write_state
from myosotis.engine.importing import ImportSummary, read_export
from myosotis.engine.store import Store
from myosotis.errors import InvalidArgumentError
from myosotis.format.jsonstream import finish, load_stream
from myosotis.storage.newfile import create_new_file


def export_to(store: Store, fp: IO[Any], seq: int, history: bool) -> None:
    """Write the export of ``store`` at commit ``seq`` to ``fp`` (text or binary)."""
    write = getattr(fp, "write", None)
    if write is None:
        raise InvalidArgumentError(f"export needs a file object open for writing, not "
                                   f"{type(fp).__name__}")
    text = isinstance(fp, io.TextIOBase)
    out = BufferedOut(write if text else (lambda s: write(s.encode("utf-8"))))
    (write_history if history else write_state)(store, seq, out)
    out.flush()


def import_from(fp: IO[Any], path: str) -> ImportSummary:
    """Create the file ``path`` from the export read from ``fp``; see Memory.import_.
    The document is read in pieces (format/jsonstream.py), never whole."""
    read = getattr(fp, "read", None)
    if read is None:
        raise InvalidArgumentError(f"import needs a file object open for reading, not "
                                   f"{type(fp).__name__}")
    summary: list[ImportSummary] = []

    def produce(write: Any, patch: Any) -> None:
        # Read as a stream: one node or commit of the document at a time.
        doc = load_stream(read)
        summary.append(read_export(doc, write, patch))
        finish(doc)

    create_new_file(os.fspath(path), produce, what="import")
    return summary[0]
