"""Fuzz harness: fsck (``verify_file``) and ``repair_file`` on arbitrary bytes.

Property: ``verify_file`` never raises for damage: it returns a report whose
offsets lie inside the file, and that agrees with the engine and the reference
reader (fuzz/checks.py). ``repair_file`` loses nothing: if it changes the file,
the file afterwards has no findings (repairs only what is repairable, R80 and
§10 step 3), and serves exactly the commits and states a reader saw before,
since a torn tail and failing checkpoints are never committed data. A file with
errors is never "repaired" into something that hides them, except a damaged
last frame (R28), which is cut only after its bytes were kept aside.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import fuzzlib

with fuzzlib.instrumented():
    import checks

    from myosotis.engine.verify import repair_file, verify_file
    from myosotis.errors import MyosotisError


def test_one_input(data: bytes) -> None:
    checks.check_file(data, writer=False)
    path = fuzzlib.write_scratch(data)
    before = verify_file(path)
    known = checks.fsck(path, data).skip_agreement
    try:
        reading = checks.read_everything(path)
    except MyosotisError:
        reading = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        after, actions = repair_file(path)
    repaired = Path(path).read_bytes()
    kept = sorted(Path(path).parent.glob(Path(path).name + ".recovered-*"))
    for k in kept:  # what a cut kept aside (checked below), never left for the next input
        k.unlink()
    hard = [f for f in before.errors if not f.repairable]
    if hard:
        assert not actions and repaired == data, "repair touched a file with errors"
        assert [str(f) for f in after.findings] == [str(f) for f in before.findings]
        return
    if before.errors:  # a damaged last frame (R28) or a checkpoint readers would use
        assert actions, "repairable errors left alone"
        if any(f.code == "damaged-tail" for f in before.errors):
            assert len(kept) == 1 and kept[0].name.endswith(f".recovered-{before.valid_end}")
        assert not [f for f in after.errors if f.code in ("damaged-tail", "checkpoint")], \
            [str(f) for f in after.errors]
        return
    if not actions:
        assert repaired == data
        return
    assert after.ok, f"findings left after repair: {[str(f) for f in after.findings]}"
    if reading is None:
        return  # fsck found no error but the engine refuses: known issue K4 (checks.py)
    if known:
        return  # D1: the engine served a checkpoint repair dropped (checks.KNOWN_ISSUES)
    again = checks.read_everything(path)
    assert again.head_seq == reading.head_seq and again.head_hash == reading.head_hash
    assert again.commits == reading.commits, "repair changed committed history"


if __name__ == "__main__":
    fuzzlib.main(test_one_input)
