"""Legacy v0.5 files (formatspec/LEGACY.md): the golden vectors open as they are,
migrate once on the first write or `myo migrate`, and a SIGKILL at any step of
a migration leaves the legacy file or the binary one, whole.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3
from cliutil import Run
from crashutil import run_python
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from myosotis import (
    CorruptFileError,
    LockedError,
    Memory,
    MyosotisError,
    NotAMyosotisFileError,
    ReadOnlyError,
    UnsupportedVersionError,
)

VECTORS = Path(__file__).resolve().parent.parent / "formatspec" / "vectors" / "legacy"
NAMES = sorted(p.name[:-4] for p in VECTORS.glob("*.myo"))


def expected(name: str) -> dict[str, Any]:
    e: dict[str, Any] = json.loads((VECTORS / f"{name}.expect.json").read_text())
    return e


def copy_vector(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / f"{name}.myo"
    shutil.copyfile(VECTORS / f"{name}.myo", dst)
    return dst


def test_there_are_vectors() -> None:
    assert {"empty", "minimal", "all_values", "genesis_checkpoints"} <= set(NAMES)


def test_the_vector_generator_agrees() -> None:
    run_python("import sys, runpy; sys.argv = ['x', '--check']; "
               "runpy.run_path('formatspec/make_legacy_vectors.py', run_name='__main__')",
               cwd=VECTORS.parent.parent.parent)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("readonly", [True, False])
def test_vectors_open_as_they_are(tmp_path: Path, name: str, readonly: bool) -> None:
    path = copy_vector(name, tmp_path)
    before = path.read_bytes()
    want = expected(name)
    with Memory.open(path, readonly=readonly) as mem:
        assert [{"seq": c.seq, "id": c.id} for c in mem.history()] == want["commits"]
        assert mem.state_hash() == want["state_hash"]
        assert mem.info().next_node_id == want["next_node_id"]
        if want["commits"]:
            assert mem.at(1).state_hash()  # time travel works on the legacy history
    assert path.read_bytes() == before  # reading never migrates
    assert not (tmp_path / f"{name}.myo.v0.bak").exists()


@pytest.mark.parametrize("name", NAMES)
def test_fsck_checks_a_legacy_file(tmp_path: Path, name: str) -> None:
    rep = Memory.check_file(copy_vector(name, tmp_path))
    dropped = expected(name)["dropped_checkpoints"]
    assert [f.code for f in rep.findings] == ["legacy-checkpoint"] * len(dropped)
    assert rep.commits == len(expected(name)["commits"])


@pytest.mark.parametrize("name", NAMES)
def test_first_write_migrates_once_with_ids_unchanged(tmp_path: Path, name: str) -> None:
    path = copy_vector(name, tmp_path)
    legacy = path.read_bytes()
    want = expected(name)
    with Memory.open(path) as mem:
        node = mem.create("New", x=1)  # the first write
        assert path.read_bytes()[:8] == b"MYOSOTIS"
        assert (tmp_path / f"{name}.myo.v0.bak").read_bytes() == legacy
        node.y = 2
        mem.commit("after migration")
        ids = [c.id for c in mem.history()]
    assert [{"seq": s + 1, "id": i} for s, i in enumerate(ids[:-1])] == want["commits"]
    assert Memory.check_file(path).ok
    with Memory.open(path) as mem:  # a binary file now: nothing to migrate again
        mem.create("More")
        mem.commit()
    assert (tmp_path / f"{name}.myo.v0.bak").read_bytes() == legacy


@pytest.mark.parametrize("name", NAMES)
def test_migrate_writes_the_pinned_bytes_and_is_idempotent(tmp_path: Path, name: str) -> None:
    path = copy_vector(name, tmp_path)
    r = Memory.migrate(path)
    want = expected(name)
    assert r.backup == f"{path}.v0.bak"
    assert blake3(path.read_bytes()).hexdigest() == want["migrated_blake3"]
    assert r.state_hash == want["state_hash"]
    assert list(r.dropped) == want["dropped_checkpoints"]
    again = Memory.migrate(path)
    assert again.backup is None and again.state_hash == want["state_hash"]
    assert blake3(path.read_bytes()).hexdigest() == want["migrated_blake3"]


def test_a_read_only_legacy_memory_refuses_writes(tmp_path: Path) -> None:
    path = copy_vector("minimal", tmp_path)
    before = path.read_bytes()
    with Memory.open(path, readonly=True) as mem:
        with pytest.raises(ReadOnlyError, match="legacy"):
            mem.create("X")
        with pytest.raises(ReadOnlyError):
            mem[1].goal = "y"
        assert mem.commit() is None
    assert path.read_bytes() == before


@pytest.mark.parametrize(("text", "error"), [
    ('{"magic": "MYOSOTIS", "format_version": 7, "commits": []}', UnsupportedVersionError),
    ('{"commits": [], "checkpoints": []}', NotAMyosotisFileError),  # no next_node_id
    ('["commits"]', NotAMyosotisFileError),
    ('{"commits": [', NotAMyosotisFileError),
    ("plain text", NotAMyosotisFileError),
    ('{"commits": [{"seq": 2}], "checkpoints": [], "next_node_id": 1}', CorruptFileError),
    ('{"commits": [], "checkpoints": [], "next_node_id": 2}', CorruptFileError),
    ('{"commits": [], "checkpoints": [{"seq": 1, "state_hash": "00"}], "next_node_id": 1}',
     CorruptFileError),
])
def test_what_is_not_a_valid_legacy_file(tmp_path: Path, text: str,
                                         error: type[Exception]) -> None:
    path = tmp_path / "f.myo"
    path.write_text(text)
    with pytest.raises(error):
        Memory.open(path)
    assert path.read_text() == text
    assert sorted(os.listdir(tmp_path)) == ["f.myo"]


def test_a_binary_file_of_a_future_version_stays_refused(tmp_path: Path) -> None:
    from myosotis.format.header import encode_file_header
    path = tmp_path / "future.myo"
    path.write_bytes(encode_file_header(9)[:8] + (9).to_bytes(2, "little")
                     + encode_file_header(1)[10:])
    with pytest.raises(UnsupportedVersionError):
        Memory.open(path)
    with pytest.raises(UnsupportedVersionError):
        Memory.migrate(path)


def test_a_legacy_writer_holds_the_lock_from_the_open(tmp_path: Path) -> None:
    path = copy_vector("minimal", tmp_path)
    with Memory.open(path) as mem:
        with pytest.raises(LockedError):
            Memory.open(path)
        with pytest.raises(LockedError):
            Memory.migrate(path)
        with mem.transaction("first write"):
            mem[1].goal = "changed"
        assert mem.head.label == "first write" and mem.head.seq == 3
    assert path.read_bytes()[:8] == b"MYOSOTIS"


def test_a_broken_legacy_file_names_the_json_location(tmp_path: Path) -> None:
    doc = json.loads((VECTORS / "minimal.myo").read_text())
    doc["commits"][1]["mutations"][0]["node"] = 9
    path = tmp_path / "f.myo"
    path.write_text(json.dumps(doc))
    with pytest.raises(CorruptFileError, match="/commits/1/mutations/0"):
        Memory.open(path, readonly=True)
    rep = Memory.check_file(path)
    assert [f.code for f in rep.errors] == ["legacy"]
    assert "/commits/1/mutations/0" in rep.errors[0].message


def test_repair_and_migrate_leave_other_files_alone(tmp_path: Path) -> None:
    path = copy_vector("minimal", tmp_path)
    before = path.read_bytes()
    r = Memory.repair(path)  # a legacy file has nothing to cut: only checked
    assert r.actions == [] and r.report.ok
    assert path.read_bytes() == before
    Memory.migrate(path)
    binary = path.read_bytes()
    assert Memory.migrate(path).backup is None and path.read_bytes() == binary
    empty = tmp_path / "empty.myo"
    empty.write_bytes(b"")
    assert Memory.migrate(empty).head_seq == 0 and empty.read_bytes() == b""
    foreign = tmp_path / "notes.txt"
    foreign.write_text("{ not json")
    with pytest.raises(NotAMyosotisFileError):
        Memory.migrate(foreign)
    assert foreign.read_text() == "{ not json"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["minimal", "all_values", "genesis_checkpoints"]), st.data())
def test_damaged_legacy_files_open_exactly_when_fsck_finds_no_error(
        tmp_path: Path, name: str, data: st.DataObject) -> None:
    good = (VECTORS / f"{name}.myo").read_bytes()
    pos = data.draw(st.integers(0, len(good) - 1))
    bad = good[:pos] + data.draw(st.binary(max_size=3)) + good[pos + data.draw(
        st.integers(0, 3)):]
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "f.myo"
    path.write_bytes(bad)
    try:
        with Memory.open(path, readonly=True) as mem:
            mem.state_hash()
        opened = True
    except MyosotisError:
        opened = False
    rep = Memory.check_file(path)  # never raises for damage
    assert opened == (not rep.errors), rep.findings
    assert path.read_bytes() == bad


# ---------------------------------------------------------------------- SIGKILL

_KILL_AT = """
import os, signal, sys
from myosotis.storage.fileops import REAL
from myosotis import Memory
target, n = int(sys.argv[2]), [0]

def step():
    n[0] += 1
    if n[0] == target:
        os.kill(os.getpid(), signal.SIGKILL)

def wrap(name):
    call = getattr(REAL, name)
    def wrapped(*a, **k):
        step()  # before the system call
        r = call(*a, **k)
        step()  # after it
        return r
    setattr(REAL, name, wrapped)

for name in ("open", "close", "pwrite", "sync", "sync_dir", "link", "replace", "unlink"):
    wrap(name)
Memory.migrate(sys.argv[1])
print("steps", n[0])
"""


@pytest.mark.parametrize("name", ["genesis_checkpoints", "all_values"])
def test_sigkill_at_every_step_of_migration_leaves_one_whole_file(tmp_path: Path,
                                                                  name: str) -> None:
    want = expected(name)
    legacy = (VECTORS / f"{name}.myo").read_bytes()
    k, outcomes = 1, set()
    while True:
        d = tmp_path / f"k{k}"
        d.mkdir()
        path = copy_vector(name, d)
        proc = run_python(_KILL_AT, str(path), str(k), check=False)
        data = path.read_bytes()
        if data == legacy:
            outcomes.add("legacy")
        else:
            assert blake3(data).hexdigest() == want["migrated_blake3"], k
            outcomes.add("binary")
        bak = d / f"{name}.myo.v0.bak"
        assert not bak.exists() or bak.read_bytes() == legacy
        with Memory.open(path, readonly=True) as mem:
            assert mem.state_hash() == want["state_hash"]
            assert [c.id for c in mem.history()] == [c["id"] for c in want["commits"]]
        r = Memory.migrate(path)  # finishing is always possible
        assert r.state_hash == want["state_hash"]
        assert (d / f"{name}.myo.v0.bak").read_bytes() == legacy
        if proc.returncode == 0:
            assert proc.stdout.startswith("steps")
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        k += 1
    assert outcomes == {"legacy", "binary"}
    assert k > 10  # the migration has that many system calls, each killed before and after


# ---------------------------------------------------------------------- CLI


def test_cli_migrate_fsck_and_export(cli: Run, tmp_path: Path) -> None:
    copy_vector("minimal", tmp_path)
    want = expected("minimal")
    r = cli("fsck", "-f", "minimal.myo", "--json")
    assert json.loads(r.stdout)["ok"] is True
    r = cli("export", "-f", "minimal.myo", "--history", "-o", "h.json", "--json")
    assert json.loads(r.stdout)["at"]["id"] == want["commits"][-1]["id"]
    assert (tmp_path / "minimal.myo").read_bytes()[:1] == b"{"  # reading did not migrate
    r = cli("migrate", "minimal.myo", "--json")
    doc = json.loads(r.stdout)
    assert doc["migrated"] is True and doc["backup"] == "minimal.myo.v0.bak"
    assert doc["head"]["id"] == want["commits"][-1]["id"]
    assert doc["state_hash"] == want["state_hash"]
    r = cli("migrate", "minimal.myo", "--json")
    assert json.loads(r.stdout)["migrated"] is False
    r = cli("import", "h.json", "copy.myo", "--json")
    doc = json.loads(r.stdout)
    assert doc["head"]["id"] == want["commits"][-1]["id"] and doc["commits"] == 2
    r = cli("import", "h.json", "copy.myo", code=1)
    assert "already exists" in r.stderr


def test_cli_import_reports_the_location(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"format": "myosotis-export", "version": 1, '
                                       '"kind": "state", "at": {"seq": 0, "id": null}, '
                                       '"next_node_id": 2, "nodes": []}')
    r = cli("import", "bad.json", "x.myo", code=1)
    assert "/nodes" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.myo").exists()
    r = cli("export", "-f", "x.myo", "--json", code=2)  # --json needs -o


_IMPORT_KILL_AT = _KILL_AT.replace(
    "Memory.migrate(sys.argv[1])",
    "Memory.import_(open(sys.argv[3], 'rb'), sys.argv[1]).close()")


def test_sigkill_at_every_step_of_an_import_leaves_no_file_or_a_whole_one(
        tmp_path: Path) -> None:
    """EXPORT.md E42: the new file appears whole (temp file, fsync, link) or not at all."""
    src = copy_vector("all_values", tmp_path)
    with Memory.open(src, readonly=True) as mem:
        export = tmp_path / "h.json"
        with open(export, "wb") as f:
            mem.export(f, history=True)
        want = [c.id for c in mem.history()]
    k, outcomes = 1, set()
    while True:
        d = tmp_path / f"k{k}"
        d.mkdir()
        target = d / "new.myo"
        proc = run_python(_IMPORT_KILL_AT, str(target), str(k), str(export), check=False)
        if target.exists():
            with Memory.open(target, readonly=True) as mem:
                assert [c.id for c in mem.history()] == want
            outcomes.add("whole")
        else:
            outcomes.add("none")
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        k += 1
    assert outcomes == {"none", "whole"} and k > 6


def test_restore_and_revert_on_a_legacy_memory_migrate_it_first(tmp_path: Path) -> None:
    # restore and revert stage through the memory, so the legacy file is migrated before
    # anything is staged and the commit that follows is written, not dropped
    path = copy_vector("minimal", tmp_path)
    with Memory.open(path) as mem:
        assert mem[1].goal == "Explore"
        staged = mem.revert(2)
        assert staged.mutations and path.read_bytes()[:8] == b"MYOSOTIS"
        mem.commit("revert goal")
        assert "goal" not in mem[1]
        mem.restore(2)
        mem.commit("restore goal")
    with Memory.open(path, readonly=True) as mem:
        assert mem[1].goal == "Explore"
        assert [c.label for c in mem.history()][-2:] == ["revert goal", "restore goal"]


def test_a_legacy_file_with_an_undelete_is_refused(tmp_path: Path) -> None:
    # v0.5 had no UNDELETE (a format version 3 mutation): such a document is damaged
    doc = json.loads((VECTORS / "minimal.myo").read_text())
    doc["commits"].append({"label": None, "seq": 3, "timestamp_us": 1600000003000000,
                           "mutations": [{"node": 1, "op": "delete"}]})
    doc["commits"].append({"label": None, "seq": 4, "timestamp_us": 1600000004000000,
                           "mutations": [{"node": 1, "op": "undelete"}]})
    path = tmp_path / "u.myo"
    path.write_text(json.dumps(doc))
    with pytest.raises(CorruptFileError, match="undelete"):
        Memory.open(path, readonly=True)
    assert json.loads(path.read_text()) == doc
