"""Replay the fuzz corpora and every input the fuzzers found, through the harnesses.

Each harness of ``fuzz/`` (see fuzz/README.md) exposes ``test_one_input(data)``,
which returns for an input that ends in a correct state or a ``MyosotisError``
and raises otherwise. This file runs that same entry on the seed corpus
(``fuzz/corpus/``) and the regression inputs (``fuzz/regressions/``), so a crash
found once by the fuzzer stays fixed. The harnesses tolerate a few known engine
issues (``fuzz/checks.py: KNOWN_ISSUES``) so that long runs can find new ones;
the tests at the end state the intended behaviour of each issue found (all
fixed since) strictly.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from myosotis import CorruptFileError, Memory
from myosotis.engine.verify import repair_file, verify_file
from myosotis.format.mutations import get_mutation
from myosotis.format.values import DecodeError
from myosotis.testing import store_of

FUZZ_DIR = Path(__file__).resolve().parent.parent / "fuzz"
REGRESSIONS = FUZZ_DIR / "regressions"
CORPUS = FUZZ_DIR / "corpus"

# harness -> the corpus/regression subdirectory its inputs live in
HARNESSES = {"open": "files", "structured": "files", "fsck": "files", "decode": "decode",
             "helper": "helper"}


def _entry(harness: str) -> Callable[[bytes], None]:
    if str(FUZZ_DIR) not in sys.path:
        sys.path.insert(0, str(FUZZ_DIR))
    module = importlib.import_module(f"fuzz_{harness}")
    entry: Callable[[bytes], None] = module.test_one_input
    return entry


def _cases() -> list[tuple[str, Path]]:
    cases = []
    for harness, sub in HARNESSES.items():
        for root in (REGRESSIONS / sub, CORPUS / sub):
            if root.is_dir():
                cases += [(harness, p) for p in sorted(root.iterdir()) if p.is_file()]
    return cases


CASES = _cases()


def test_every_harness_has_seeds_and_the_files_harnesses_have_regressions() -> None:
    for harness, sub in HARNESSES.items():
        assert any(h == harness for h, _ in CASES), f"no input for fuzz_{harness}"
        assert (CORPUS / sub).is_dir(), f"run `python fuzz/make_corpus.py` ({sub})"
    assert list((REGRESSIONS / "files").iterdir())


@pytest.mark.parametrize(("harness", "path"), CASES,
                         ids=[f"{h}-{p.parent.parent.name}-{p.name}" for h, p in CASES])
def test_fuzz_input_replays_cleanly(harness: str, path: Path) -> None:
    """The input ends in a correct state or a MyosotisError (the harness's property)."""
    _entry(harness)(path.read_bytes())


# ---------------------------------------------------------------------- known issues


def _copy(tmp_path: Path, name: str) -> Path:
    dst = tmp_path / name
    shutil.copyfile(REGRESSIONS / "files" / name, dst)
    return dst


def _head_and_hash(path: Path) -> tuple[int, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Memory.open(path, readonly=True) as mem:
            return store_of(mem).head_seq, mem.state_hash()


def test_fsck_reports_a_damaged_checkpoint_as_a_repairable_warning(tmp_path: Path) -> None:
    """R80: checkpoints are a cache. A damaged one is a warning that `--repair` drops,
    and the file keeps every commit."""
    path = _copy(tmp_path, "k1-damaged-checkpoint-before-valid-frames.myo")
    before = _head_and_hash(path)
    report = verify_file(str(path))
    assert not report.errors, [str(f) for f in report.errors]
    assert [f.code for f in report.findings] == ["checkpoint"]
    after, actions = repair_file(str(path))
    assert actions and after.ok
    assert _head_and_hash(path) == before


@pytest.mark.parametrize("name", ["k4-genesis-record-with-bad-value-tag.myo",
                                  "k4-genesis-record-keys-not-ascending.myo"])
def test_fsck_finds_a_malformed_node_record_in_the_genesis(tmp_path: Path, name: str) -> None:
    """§5, §8.1, R85: fsck checks every rule, node records of the genesis included.

    Found by fuzz_structured (issue K4: fsck passed such a file while reading the
    node raised CorruptFileError); fixed in verify.py during the same session."""
    path = _copy(tmp_path, name)
    report = verify_file(str(path))
    assert report.errors, [str(f) for f in report.findings]


def test_fsck_agrees_with_open_on_a_valid_frame_inside_a_torn_last_frame(
        tmp_path: Path) -> None:
    """§10: the walk reads header-valid frames (one at 32 whose payload spans the
    valid frame inside it) and stops at 248, at a damaged header that no torn write
    leaves (R28): open and fsck both report it there, not as a torn tail."""
    path = _copy(tmp_path, "k5-valid-frame-inside-torn-last-frame.myo")
    with pytest.raises(CorruptFileError, match="R28") as ei:
        _head_and_hash(path)
    assert ei.value.offset == 248
    report = verify_file(str(path))
    assert sorted((f.code, f.offset) for f in report.findings) == \
        [("damaged-tail", 248), ("frame", 32)]
    assert report.valid_end == 248


@pytest.mark.parametrize("name", ["k6-genesis-base-seq-and-id-disagree.myo",
                                  "k6-genesis-base-seq-zero-with-nonzero-id.myo"])
def test_fsck_finds_a_genesis_whose_base_seq_and_id_disagree(tmp_path: Path, name: str) -> None:
    """§8.3: base_commit_id is zero when base_seq is 0, and only then."""
    path = _copy(tmp_path, name)
    with pytest.raises(CorruptFileError, match="§8.3"):
        _head_and_hash(path)
    report = verify_file(str(path))
    assert report.errors, [str(f) for f in report.findings]


@pytest.mark.parametrize("encoded", [b"\x04\x00", b"\x03\x00\x01f",
                                     b"\x04" + b"\xff" * 9 + b"\x01"])
def test_decoder_refuses_a_mutation_naming_a_node_id_out_of_range(encoded: bytes) -> None:
    """§11: node ids run from 1 to 2^63-1; 0 or 2^64-1 in a mutation is corruption."""
    with pytest.raises(DecodeError):
        get_mutation(encoded, 0, len(encoded))
