"""Fuzz harness: open arbitrary bytes as a data file and read everything.

Property: for any bytes, ``Memory.open(readonly=True)`` followed by reading
every node of every commit (views, fields, diffs, state hashes) either ends in
a ``MyosotisError`` or serves states that are consistent with each other, with
``fsck`` (``verify_file``) and with the reference reader written from FORMAT.md
alone (fuzz/checks.py). A file that reads is then opened as a writer: recovery
(cutting a torn tail, FORMAT.md §10 step 3) must keep every commit, and a new
commit must follow them. Anything else raised is a finding.

Run: ``python fuzz/fuzz_open.py fuzz/corpus/open -dict=fuzz/dict/myosotis.dict``
(see fuzz/README.md); ``python fuzz/fuzz_open.py --replay DIR_OR_FILE...`` replays.
"""

from __future__ import annotations

import fuzzlib

with fuzzlib.instrumented():
    import checks


def test_one_input(data: bytes) -> None:
    checks.check_file(data)


if __name__ == "__main__":
    fuzzlib.main(test_one_input)
