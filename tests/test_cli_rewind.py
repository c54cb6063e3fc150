"""`myo restore`, `myo revert`, `myo fork` and `myo compact --keep-last/--keep-since/
--dry-run`, through --json (and one error line for what a user can get wrong)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cliutil import Run
from typer.testing import Result

from myosotis import Memory


def js(r: Result) -> Any:
    return json.loads(r.stdout)


def one_error_line(r: Result) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("myo: error: "), r.stderr
    return lines[0]


@pytest.fixture
def history(cli: Run, tmp_path: Path) -> Path:
    """h.myo: #1 creates A 1 {x: 1}; #2 sets x 2 and creates B 2; #3 deletes 1."""
    cli("init", "h.myo")
    cli("create", "A", "x=1")
    cli("commit", "one")
    cli("set", "1", "x", "2")
    cli("create", "B")
    cli("commit", "two")
    cli("delete", "1")
    cli("commit", "three")
    return tmp_path / "h.myo"


def test_restore_stages_then_commit_writes_the_old_state(cli: Run, history: Path) -> None:
    doc = js(cli("restore", "1", "--json"))
    assert doc["restored_to"]["seq"] == 1
    assert doc["staged"] == [{"op": "undelete", "node": 1},
                             {"op": "set", "node": 1, "field": "x", "value": 1},
                             {"op": "delete", "node": 2}]
    status = js(cli("status", "--json"))
    assert [op["op"] for op in status["changes"]] == ["undelete", "set", "delete"]
    cli("commit", "back to one")
    diff = js(cli("diff", "1", "HEAD", "--json"))
    # only node 2, created after commit 1, differs: it was made and is now a tombstone
    assert [(op["node"], op["op"]) for op in diff["ops"]] == [(2, "create"), (2, "delete")]
    assert js(cli("stats", "--json"))["format_version"] == 3
    assert js(cli("fsck", "--json"))["ok"]


def test_restore_of_one_node_and_a_nonempty_stage(cli: Run, history: Path) -> None:
    doc = js(cli("restore", "1", "--node", "1", "--json"))
    assert [op["op"] for op in doc["staged"]] == ["undelete", "set"]
    r = cli("restore", "1", code=1)
    assert "staged" in one_error_line(r)
    cli("discard")
    r = cli("restore", "1", "--node", "9", code=1)
    assert "node 9" in one_error_line(r)
    r = cli("restore", "7", code=1)
    assert "no commit 7" in one_error_line(r)


def test_revert_names_conflicts_and_force_skips_them(cli: Run, history: Path) -> None:
    r = cli("revert", "2", code=1)
    line = one_error_line(r)
    assert "commit 3 changed node 1 (tombstone)" in line and "--force" in line
    assert js(cli("status", "--json"))["changes"] == []
    doc = js(cli("revert", "2", "--force", "--json"))
    assert doc["skipped"] == [{"commit": 3, "node": 1, "path": "(tombstone)"}]
    assert doc["staged"] == [{"op": "delete", "node": 2}]
    cli("commit", "revert two")
    cli("discard")
    doc = js(cli("revert", "HEAD~1", "--json"))  # #3 deleted node 1
    assert doc["reverted"]["seq"] == 3 and doc["staged"] == [{"op": "undelete", "node": 1}]
    out = cli("commit").stdout
    assert out


def test_revert_text_output_lists_the_staged_changes(cli: Run, history: Path) -> None:
    out = cli("revert", "3").stdout
    assert "staged: undelete 1" in out and "1 change staged" in out


def test_fork_writes_a_new_file_that_names_its_origin(cli: Run, history: Path,
                                                      tmp_path: Path) -> None:
    before = history.read_bytes()
    doc = js(cli("fork", "2", "alt.myo", "--json"))
    assert history.read_bytes() == before
    with Memory.open(history, readonly=True) as mem:
        c2 = mem.commit_info(2)
        want_hash = mem.at(2).state_hash()
    assert doc["origin"]["seq"] == 2 and doc["origin"]["commit_id"] == c2.id
    assert doc["origin"]["state_hash"] == want_hash
    stats = js(cli("-f", "alt.myo", "stats", "--json"))
    assert stats["origin"] == {"seq": 2, "commit_id": c2.id, "state_hash": want_hash}
    assert stats["frames"]["origin"] == 1 and stats["format_version"] == 3
    assert "forked from  #2" in cli("-f", "alt.myo", "stats").stdout
    cli("-f", "alt.myo", "set", "1", "x", "9")
    commit = js(cli("-f", "alt.myo", "commit", "on the fork", "--json"))
    assert commit["seq"] == 3 and commit["parent"] == c2.id
    r = cli("-f", "h.myo", "fork", "1", "alt.myo", code=1)
    assert "already exists" in one_error_line(r)


def test_compact_dry_run_then_keep_last(cli: Run, history: Path) -> None:
    before = history.read_bytes()
    doc = js(cli("compact", "--keep-last", "1", "--dry-run", "--json"))
    assert doc["dry_run"] and doc["folded"] == [1, 2] and doc["base_seq"] == 2
    assert doc["bytes_reclaimed"] == doc["bytes_before"] - doc["bytes_after"]
    assert history.read_bytes() == before
    assert "nothing changed" in cli("compact", "--keep-last", "1", "--dry-run").stdout
    ids = [c["id"] for c in js(cli("history", "--json", "--reverse"))["commits"]]
    doc = js(cli("compact", "--keep-last", "1", "--json"))
    assert not doc["dry_run"] and doc["folded"] == [1, 2]
    kept = js(cli("history", "--json"))["commits"]
    assert [(c["seq"], c["id"]) for c in kept] == [(3, ids[2])]
    assert "nothing to fold" in cli("compact", "--keep-last", "5").stdout


def test_compact_keep_since(cli: Run, history: Path) -> None:
    commits = js(cli("history", "--json", "--reverse"))["commits"]
    since = commits[1]["timestamp"]  # keep #2 and #3
    doc = js(cli("compact", "--keep-since", since, "--json"))
    assert doc["folded"] == [1, 1]
    assert [c["seq"] for c in js(cli("history", "--json"))["commits"]] == [3, 2]
    r = cli("compact", "--keep-since", "yesterday", code=2)
    assert "ISO 8601" in one_error_line(r)
    r = cli("compact", "--at", "2", "--keep-last", "1", code=1)
    assert "not both" in one_error_line(r)
