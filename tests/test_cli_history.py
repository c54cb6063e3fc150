"""`myo log NODE [FIELD]`, `myo blame NODE`, `myo refs NODE [--at C]` (cmd_history.py),
text and --json, on the agent file of tests/test_cli.py plus list and map references."""

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


@pytest.fixture
def graph_file(cli: Run, tmp_path: Path) -> Path:
    """g.myo: #1 Agent 1 {goal}, Tool 2; #2 1.tool=@2, 1.goal; #3 Box 3 {items: [1, @2],
    by: {"k": @2}}; #4 1.tool unset, 2 deleted; #5 label "last" sets 1.goal."""
    cli("init", "g.myo")
    cli("create", "Agent", "goal=Explore")
    cli("create", "Tool")
    cli("commit", "one")
    cli("set", "1", "tool", "@2")
    cli("set", "1", "goal", "Rest")
    cli("commit", "two")
    cli("create", "Box", 'items=[1, {"@ref": 2}]', 'by={"k": {"@ref": 2}}')
    cli("commit", "three")
    cli("unset", "1", "tool")
    cli("delete", "2")
    cli("commit", "four")
    cli("set", "1", "goal", "Sleep")
    cli("commit", "last")
    return tmp_path / "g.myo"


def test_log_of_a_field_lists_only_its_commits(cli: Run, graph_file: Path) -> None:
    doc = js(cli("log", "1", "goal", "--json"))
    assert doc["field"] == "goal" and doc["at"]["seq"] == 5
    assert [c["seq"] for c in doc["commits"]] == [5, 2, 1]
    assert doc["commits"][0]["changes"] == [
        {"op": "set", "node": 1, "field": "goal", "value": "Sleep"}]
    assert [c["seq"] for c in js(cli("log", "1", "tool", "--json"))["commits"]] == [4, 2]
    assert [c["seq"] for c in js(cli("log", "1", "--at", "2", "--json"))["commits"]] == [2, 1]
    text = cli("log", "1", "goal").stdout
    assert text.splitlines()[0] == "node 1 Agent  field goal"
    assert 'set 1.goal = "Sleep"' in text and "#5 " in text and "last" in text
    assert "no commit changed it" in cli("log", "1", "nothing").stdout


def test_blame_names_the_commit_that_last_set_each_field(cli: Run, graph_file: Path) -> None:
    doc = js(cli("blame", "1", "--json"))
    assert set(doc) == {"node", "at", "fields"}
    assert {k: c["seq"] for k, c in doc["fields"].items()} == {"goal": 5}
    at2 = js(cli("blame", "1", "--at", "2", "--json"))["fields"]
    assert {k: c["seq"] for k, c in at2.items()} == {"goal": 2, "tool": 2}
    assert {k: c["seq"] for k, c in js(cli("blame", "3", "--json"))["fields"].items()} == {
        "by": 3, "items": 3}
    text = cli("blame", "1").stdout
    assert "goal" in text and "#5 " in text and "last" in text


def test_refs_lists_paths_at_head_and_in_the_past(cli: Run, graph_file: Path) -> None:
    doc = js(cli("refs", "2", "--json"))
    assert set(doc) == {"node", "at", "referrers"}
    assert doc["referrers"] == [
        {"node": 3, "type": "Box", "field": "by", "path": ["k"]},
        {"node": 3, "type": "Box", "field": "items", "path": [1]}]
    past = js(cli("refs", "2", "--at", "3", "--json"))["referrers"]
    assert [(r["node"], r["field"], r["path"]) for r in past] == [
        (1, "tool", []), (3, "by", ["k"]), (3, "items", [1])]
    assert js(cli("refs", "2", "--at", "1", "--json"))["referrers"] == []
    text = cli("refs", "2").stdout
    assert '@3.by["k"]  Box' in text and "@3.items[1]  Box" in text
    assert "nothing references node 1" in cli("refs", "1").stdout


def test_unknown_nodes_and_commits_are_one_line_errors(cli: Run, graph_file: Path) -> None:
    for args in (["log", "9"], ["blame", "9"], ["refs", "9"], ["refs", "3", "--at", "2"],
                 ["blame", "1", "--at", "99"]):
        r = cli(*args, code=1)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("myo: error: "), (args, r.stderr)


def test_commands_answer_the_same_after_the_index_is_deleted(cli: Run, graph_file: Path) -> None:
    runs = [["log", "1", "--json"], ["blame", "3", "--json"], ["refs", "2", "--at", "3", "--json"]]
    before = [cli(*a).stdout for a in runs]
    Path(str(graph_file) + ".idx").unlink()
    assert [cli(*a).stdout for a in runs] == before
    assert Path(str(graph_file) + ".idx").exists()  # the reader rebuilt it (no writer ran)


def test_blame_after_compaction_names_the_base(cli: Run, graph_file: Path) -> None:
    cli("compact", "--at", "3")
    fields = js(cli("blame", "1", "--json"))["fields"]
    assert fields["goal"]["seq"] == 5
    with Memory.open(graph_file, readonly=True) as mem:
        assert mem.blame(3) == {"by": mem.commit_info(3), "items": mem.commit_info(3)}
        assert mem.commit_info(3).compacted
    assert [c["seq"] for c in js(cli("log", "1", "--json"))["commits"]] == [5, 4]
