"""The stage of `myo` (formatspec/STAGE.md): its bytes, crash safety, staleness,
locking, and that a commit writes exactly what was staged.

Staging between separate processes is exercised by the seed transcript in
test_cli.py (create, set and commit run as separate `myo` processes); here
processes are killed at chosen points (``os._exit``, no cleanup) to check
that a crash leaves the old or the new stage and never commits twice.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cliutil import Run

from myosotis import (
    Create,
    DamagedStageError,
    Delete,
    ListInsert,
    MapSet,
    Memory,
    Set,
    Stage,
    StageIntent,
    Unset,
)
from myosotis.api.stagefile import StageFileId
from myosotis.format.helper import crc32c, scan_frames
from myosotis.format.records import decode_commit_header, decode_mutations

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def data(cli: Run, tmp_path: Path) -> Path:
    """s.myo with one commit: Agent 1 {goal: "A", xs: [1]}."""
    cli("init", "s.myo")
    cli("create", "Agent", "goal=A", "xs=[1]")
    cli("commit", "one")
    return tmp_path / "s.myo"


def stage_file(data: Path) -> Path:
    return data.with_name(data.name + ".stage")


def status(cli: Run) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("status", "--json").stdout)
    return doc


def child(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` in a child process (cwd tmp_path, the tests' interpreter)."""
    e = {k: v for k, v in os.environ.items() if k != "MYO_FILE"}
    e.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=e,
                          capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------
# bytes (STAGE.md §2, §5)


def worked_example() -> bytes:
    """The hex dump of STAGE.md §5, read from the document itself."""
    doc = (REPO / "formatspec" / "STAGE.md").read_text(encoding="utf-8")
    block = doc.split("## §5 Worked example", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    out = bytearray()
    for line in block.strip().splitlines():
        hexpart = line[6:53]
        out += bytes.fromhex(hexpart)
    return bytes(out)


EXAMPLE_FILE = StageFileId(2051, 1234567, 1_700_000_000_123_456_789)
EXAMPLE = Stage(0, "0" * 64, (Create(1, "Agent", {}), Set(1, "goal", "Explore")),
                None, EXAMPLE_FILE)


def test_stage_bytes_match_the_worked_example_of_stage_md() -> None:
    """STAGE.md §5, byte for byte, both ways."""
    assert EXAMPLE.encode() == worked_example()
    assert len(worked_example()) == 119
    assert Stage.decode(worked_example()) == EXAMPLE


def test_stage_with_commit_intent_matches_stage_md() -> None:
    """STAGE.md §5, the INTENT variant: flags, timestamp, label and crc as documented."""
    b = Stage(0, "0" * 64, EXAMPLE.ops, StageIntent(1_700_000_000_000_000, "initial goal"),
              EXAMPLE_FILE).encode()
    assert len(b) == 131
    assert b[12:16] == bytes.fromhex("01000000")
    assert b[56:64] == bytes.fromhex("00401e18240a0600")
    assert b[88:101] == b"\x0cinitial goal"
    assert b[-4:] == bytes.fromhex("801660a3")
    assert Stage.decode(b).intent == StageIntent(1_700_000_000_000_000, "initial goal")


# the worked example of version 1 of STAGE.md (no file identity), §7
STAGE_V1 = bytes.fromhex(
    "4d594f5354414745010000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
    "00020101054167656e740002010467 6f616c0507 4578706c6f7265344382dc".replace(" ", ""))


def test_a_version_1_stage_is_read_with_its_identity_unknown() -> None:
    """STAGE.md §7: a stage written before S12 still reads; S12 never calls it foreign."""
    st = Stage.decode(STAGE_V1)
    assert st == Stage(0, "0" * 64, EXAMPLE.ops)
    assert not st.file.known


def test_stage_round_trips_every_operation_kind() -> None:
    st = Stage(7, "ab" * 32, (
        Create(3, "T", {"a": [1, {"b": None}]}), Set(3, "f", -1.5), Unset(3, "f"),
        ListInsert(3, "a", (), 2, "x"), MapSet(3, "a", (1,), "k", True), Delete(3)))
    assert Stage.decode(st.encode()) == st


def with_crc(body: bytes) -> bytes:
    return body + crc32c(body).to_bytes(4, "little")


def broken(edit: Callable[[bytearray], None], fix_crc: bool = True) -> bytes:
    b = bytearray(EXAMPLE.encode()[:-4])
    edit(b)
    return with_crc(bytes(b)) if fix_crc else bytes(b) + EXAMPLE.encode()[-4:]


def _set(offset: int, value: bytes) -> Callable[[bytearray], None]:
    def edit(b: bytearray) -> None:
        b[offset: offset + len(value)] = value
    return edit


DAMAGE: list[tuple[str, bytes, str]] = [
    ("magic", broken(_set(0, b"MYOSTAGX")), "S1"),
    ("empty", b"", "S1"),
    ("newer version", broken(_set(8, b"\x04\x00")), "S2"),
    ("version 3 without an undelete", broken(_set(8, b"\x03\x00")), "S2"),
    ("cut short", EXAMPLE.encode()[:60], "S3"),
    ("checksum", broken(_set(70, b"B"), fix_crc=False), "S3"),
    ("reserved", broken(_set(10, b"\x01\x00")), "S4"),
    ("reserved flag", broken(_set(12, b"\x02")), "S4"),
    ("timestamp without intent", broken(_set(56, b"\x01")), "S4"),
    ("label without intent", with_crc(EXAMPLE.encode()[:88] + b"\x01x\x00"), "S4"),
    ("base seq without id", broken(_set(16, b"\x01")), "S5"),
    ("count too large", broken(_set(89, b"\x7f")), "S6"),
    ("bad opcode", broken(_set(90, b"\x0f")), "S6"),
    ("trailing bytes", with_crc(EXAMPLE.encode()[:-4] + b"\x00"), "S6"),
    ("fewer operations", broken(_set(89, b"\x01")), "S6"),
    ("version 2 cut to a version 1 length", with_crc(EXAMPLE.encode()[:70]), "S3"),
]


@pytest.mark.parametrize(("name", "raw", "rule"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_each_broken_rule_makes_the_stage_damaged(name: str, raw: bytes, rule: str) -> None:
    """STAGE.md S1–S6: a damaged stage is refused whole, naming the rule."""
    with pytest.raises(DamagedStageError, match=rf"\({rule}\)"):
        Stage.decode(raw)


# --------------------------------------------------------------------------
# through the command line


def test_commit_writes_exactly_the_staged_mutations(cli: Run, data: Path) -> None:
    """STAGE.md S7: the commit holds the staged operations, in order, byte for byte."""
    cli("create", "Tool", "owner=@1")
    cli("set", "1", "tool", "@2")
    cli("list", "append", "1", "xs", "2")
    cli("list", "insert", "1", "xs", "0", "0")
    cli("map", "set", "2", "meta", "k", "v", code=1)  # no such field: refused, not staged
    cli("set", "2", "meta", "{}")
    cli("map", "set", "2", "meta", "k", "v")
    cli("unset", "1", "goal")
    staged = Stage.read(str(data))
    assert staged is not None and len(staged.ops) == 7
    cli("commit", "two")
    raw = data.read_bytes()
    res = scan_frames(raw, 32, verify_payload=True)
    last = res.offsets[-1]
    n = int.from_bytes(raw[last: last + 4], "little")
    payload = raw[last + 16: last + 16 + n]
    h = decode_commit_header(payload)
    assert h.seq == 2 and h.label == "two"
    assert decode_mutations(payload, h.body) == list(staged.ops)
    assert not stage_file(data).exists()


def test_a_stale_stage_is_refused_and_can_be_discarded(cli: Run, data: Path) -> None:
    """STAGE.md S8: another writer committed after the changes were staged."""
    cli("set", "1", "goal", "B")
    with Memory.open(data) as mem:
        mem.get(1).goal = "C"
        mem.commit("other writer")
    r = cli("commit", "mine", code=1)
    assert "another writer committed in between" in r.stderr and "myo discard" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "another writer" in cli("set", "1", "x", "1", code=1).stderr
    doc = status(cli)
    assert doc["stage"] == "stale" and doc["base"]["seq"] == 1 and doc["head"]["seq"] == 2
    assert len(doc["changes"]) == 1
    assert "another writer" in cli("status").stdout
    with Memory.open(data, readonly=True) as mem:
        assert mem.get(1).goal == "C" and len(mem.history()) == 2
    cli("discard")
    cli("set", "1", "goal", "D")
    cli("commit")
    assert cli("get", "1", "goal").stdout == "D\n"


def test_a_stage_is_tied_to_the_head_id_not_only_its_seq(cli: Run, data: Path,
                                                         tmp_path: Path) -> None:
    """S8: a file with the same number of commits but another history is another head."""
    cli("set", "1", "goal", "B")
    data.unlink()
    with Memory.open(data) as mem:
        mem.create("Other")
        mem.commit("one")
    assert status(cli)["stage"] == "stale"
    cli("commit", code=1)


def test_a_damaged_stage_is_exit_3_and_discard_removes_it(cli: Run, data: Path) -> None:
    cli("set", "1", "goal", "B")
    raw = bytearray(stage_file(data).read_bytes())
    raw[-1] ^= 0xFF
    stage_file(data).write_bytes(bytes(raw))
    for args in (["status"], ["set", "1", "x", "1"], ["commit"]):
        r = cli(*args, code=3)
        assert "is damaged" in r.stderr and "myo discard" in r.stderr
    assert json.loads(cli("discard", "--json").stdout) == {"discarded": 0, "damaged": True}
    assert not stage_file(data).exists()
    cli("set", "1", "goal", "B")


def test_staged_operations_are_replayed_through_the_api_at_commit(cli: Run, data: Path) -> None:
    """A well-formed stage whose operation breaks a graph rule commits nothing (R50)."""
    head = data.read_bytes()
    with Memory.open(data, readonly=True) as mem:
        seq, cid = mem.head.seq if mem.head else 0, mem.head.id if mem.head else ""
    Stage(seq, cid, (Set(9, "x", 1),)).write(str(data))
    r = cli("commit", code=1)
    assert "staged change 1 (set 9.x = 1) no longer applies: node 9 does not exist" in r.stderr
    assert data.read_bytes() == head


def test_a_stage_failing_half_way_at_commit_is_one_error_line_without_a_warning(
        cli: Run, data: Path) -> None:
    """The changes replayed before the failing one are dropped from the Memory on
    purpose (the stage file keeps them): no UncommittedChangesWarning is printed."""
    with Memory.open(data, readonly=True) as mem:
        assert mem.head is not None
        seq, cid = mem.head.seq, mem.head.id
    Stage(seq, cid, (Set(1, "x", 1), Set(9, "x", 1))).write(str(data))
    r = cli("commit", code=1)
    assert r.stderr.startswith("myo: error: staged change 2 (set 9.x = 1) no longer applies")
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert len(Stage.read(str(data)).ops) == 2  # type: ignore[union-attr]


def test_staging_needs_the_writer_lock(cli: Run, data: Path) -> None:
    """STAGE.md S11: with another writer holding the file nothing is staged or discarded."""
    cli("set", "1", "goal", "B")
    before = stage_file(data).read_bytes()
    with Memory.open(data):
        assert "open for writing" in cli("set", "1", "goal", "C", code=1).stderr
        assert "open for writing" in cli("discard", code=1).stderr
        assert status(cli)["stage"] == "current"  # reading needs no lock
    assert stage_file(data).read_bytes() == before


def test_a_leftover_temporary_stage_is_ignored(cli: Run, data: Path) -> None:
    """STAGE.md S10: `.stage.tmp` is what a crash mid-write leaves; it is never read."""
    tmp = data.with_name(data.name + ".stage.tmp")
    tmp.write_bytes(b"half a stage")
    assert status(cli)["stage"] == "none"
    cli("set", "1", "goal", "B")
    assert not tmp.exists()
    assert len(status(cli)["changes"]) == 1


def test_concurrent_myo_processes_never_lose_a_staged_change(data: Path, tmp_path: Path) -> None:
    """S11: the writer lock serialises read-modify-write of the stage across processes."""
    code = """
        import sys
        from myosotis.cli import main
        sys.exit(main(["set", "1", f"f{sys.argv[1]}", sys.argv[1]]))
    """
    env = {k: v for k, v in os.environ.items() if k != "MYO_FILE"}
    env["MYO_LOCK_TIMEOUT"] = "60"
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), str(i)],
                              cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    st = Stage.read(str(data))
    assert st is not None
    assert sorted(op.field for op in st.ops if type(op) is Set) == ["f0", "f1", "f2", "f3"]


# --------------------------------------------------------------------------
# crashes of a `myo` process (os._exit: no cleanup, no flush)


def test_a_crash_while_rewriting_the_stage_leaves_the_old_stage(
        cli: Run, data: Path, tmp_path: Path) -> None:
    """S10: killed after writing the temporary file, before the rename."""
    cli("set", "1", "goal", "B")
    before = stage_file(data).read_bytes()
    p = child(tmp_path, """
        import os
        from myosotis.api import stagefile
        from myosotis.cli import main
        stagefile._replace = lambda src, dst: os._exit(9)  # the rename of Stage.write
        main(["set", "1", "goal", "C"])
    """)
    assert p.returncode == 9, p.stderr
    assert stage_file(data).read_bytes() == before
    assert data.with_name("s.myo.stage.tmp").exists()
    assert [c["value"] for c in status(cli)["changes"]] == ["B"]
    cli("commit")
    assert cli("get", "1", "goal").stdout == "B\n"


def test_a_crash_after_the_commit_before_the_stage_is_removed_commits_once(
        cli: Run, data: Path, tmp_path: Path) -> None:
    """S9: the stage's commit intent shows the changes were committed; never again."""
    cli("set", "1", "goal", "B")
    cli("list", "append", "1", "xs", "2")
    p = child(tmp_path, """
        import os
        from myosotis import Stage
        from myosotis.cli import main
        Stage.remove = staticmethod(lambda path: os._exit(9))  # after the commit
        main(["commit", "crashing"])
    """)
    assert p.returncode == 9, p.stderr
    assert stage_file(data).exists()
    doc = status(cli)
    assert doc["stage"] == "committed" and doc["changes"] == []
    assert "already committed" in cli("status").stdout
    assert "nothing to commit" in cli("commit", code=1).stderr
    assert not stage_file(data).exists()  # the writer removed the spent stage
    with Memory.open(data, readonly=True) as mem:
        assert [c.label for c in mem.history()] == ["one", "crashing"]
        assert mem.get(1).fields() == {"goal": "B", "xs": [1, 2]}
    cli("set", "1", "goal", "C")
    assert status(cli)["stage"] == "current"


def test_a_crash_before_the_commit_is_written_keeps_the_stage(
        cli: Run, data: Path, tmp_path: Path) -> None:
    """S9: the intent is recorded, the commit never reached the file: still staged."""
    cli("set", "1", "goal", "B")
    p = child(tmp_path, """
        import os
        from myosotis import Memory
        from myosotis.cli import main
        Memory.commit = lambda self, *a, **k: os._exit(9)
        main(["commit", "lost"])
    """)
    assert p.returncode == 9, p.stderr
    st = Stage.read(str(data))
    assert st is not None and st.intent is not None and st.intent.label == "lost"
    assert status(cli)["stage"] == "current"
    out = cli("commit", "again").stdout
    assert re.match(r"\[#2 [0-9a-f]{12}\] again \(1 change\)", out)
    with Memory.open(data, readonly=True) as mem:
        assert [c.label for c in mem.history()] == ["one", "again"]


# --------------------------------------------------------------------------
# a stage belongs to one file (STAGE.md S12) and is as private as it (S13)


@pytest.fixture
def empty_with_stage(cli: Run, tmp_path: Path) -> Path:
    """e.myo with an empty history and two changes staged for it."""
    cli("init", "e.myo")
    cli("-f", "e.myo", "create", "Old", "secret=stale")
    cli("-f", "e.myo", "set", "1", "more", "x")
    return tmp_path / "e.myo"


def test_myo_init_over_a_deleted_file_removes_the_stage_it_left(
        cli: Run, empty_with_stage: Path) -> None:
    empty_with_stage.unlink()
    r = cli("init", "e.myo")
    assert r.stdout == "created e.myo\n"
    assert r.stderr == ("myo: warning: removed e.myo.stage (2 staged change(s)) left by an "
                        "earlier e.myo; a stage belongs to the file it was made for\n")
    assert not stage_file(empty_with_stage).exists()
    assert "nothing to commit" in cli("-f", "e.myo", "commit", "new", code=1).stderr
    cli("-f", "e.myo", "create", "New")
    cli("-f", "e.myo", "commit", "new")
    with Memory.open(empty_with_stage, readonly=True) as mem:
        assert [n.type for n in mem.nodes()] == ["New"] and mem.get(1).fields() == {}


def test_a_stage_is_refused_by_a_new_empty_file_at_its_path(
        cli: Run, empty_with_stage: Path) -> None:
    """The new file may even get the old inode back: its modification time differs."""
    empty_with_stage.unlink()
    time.sleep(0.05)  # a new timestamp even where the file system clock is coarse
    Memory.open(empty_with_stage).close()  # created by a program, not by `myo init`
    doc = json.loads(cli("-f", "e.myo", "status", "--json").stdout)
    assert doc["stage"] == "foreign" and len(doc["changes"]) == 2
    assert "was made for another file" in cli("-f", "e.myo", "status").stdout
    for args in (["commit", "x"], ["create", "New"], ["show", "1", "--staged"]):
        r = cli("-f", "e.myo", *args, code=1)
        assert "e.myo.stage (2 changes) was made for another file at this path" in r.stderr
        assert "myo discard" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "made for another file" in cli("-f", "e.myo", "fsck").stdout
    cli("-f", "e.myo", "discard")
    cli("-f", "e.myo", "create", "New")
    cli("-f", "e.myo", "commit", "new")
    with Memory.open(empty_with_stage, readonly=True) as mem:
        assert [n.type for n in mem.nodes()] == ["New"]


def test_a_stage_is_refused_by_another_file_moved_over_its_path(
        cli: Run, empty_with_stage: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.myo"
    with Memory.open(other) as mem:
        mem.create("Other")
        mem.commit("other")
    os.replace(other, empty_with_stage)
    assert json.loads(cli("-f", "e.myo", "status", "--json").stdout)["stage"] == "foreign"
    assert "made for another file" in cli("-f", "e.myo", "commit", code=1).stderr


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o604])
def test_the_stage_file_takes_the_mode_of_the_data_file(cli: Run, data: Path,
                                                        mode: int) -> None:
    """S13: staged values (secrets too) are no more readable than the data file."""
    data.chmod(mode)
    tmp = data.with_name(data.name + ".stage.tmp")
    tmp.write_bytes(b"left over")
    tmp.chmod(0o666)  # a leftover temporary file of a wider mode is corrected too
    old = os.umask(0)  # and the umask does not widen it either
    try:
        cli("set", "1", "secret", "s3cr3t")
    finally:
        os.umask(old)
    assert stat.S_IMODE(stage_file(data).stat().st_mode) == mode
    cli("set", "1", "secret2", "x")  # rewritten: still the data file's mode
    assert stat.S_IMODE(stage_file(data).stat().st_mode) == mode
