"""`myo diff`: paths of the structural diff, --json (docs/DIFF.md), --stat, the
filters, and output that stays bounded however large the change."""

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
def edited(tmp_path: Path) -> Path:
    """s.myo: #1 Agent 1 {name, items: 0..4, meta: {k: {x: 1}, z: 2}} and Tool 2;
    #2 appends to items, sets meta.k.x, removes meta.z, deletes 2, creates Note 3."""
    path = tmp_path / "s.myo"
    with Memory.open(path) as mem:
        a = mem.create("Agent", name="Iris", items=list(range(5)),
                       meta={"k": {"x": 1}, "z": 2})
        t = mem.create("Tool")
        mem.commit("one")
        a.items.append(5)
        a.meta["k"]["x"] = 2
        del a.meta["z"]
        t.delete()
        mem.create("Note", about=a)
        mem.commit("two")
    return path


def test_text_marks_only_what_changed_at_its_path(cli: Run, edited: Path) -> None:
    lines = cli("diff", "HEAD~1").stdout.splitlines()
    assert lines[0].startswith("diff #1 ") and " -> #2 " in lines[0]
    assert lines[1:] == [
        "~ node 1 Agent",
        "  + items[5]: 5",
        '    meta["k"]["x"]: 1 -> 2',
        '  - meta["z"]: 2',
        "- node 2 Tool (deleted)",
        "+ node 3 Note (created)",
        "  + about: @1"]


def test_json_is_the_documented_document(cli: Run, edited: Path) -> None:
    doc = js(cli("diff", "1", "2", "--json"))
    with Memory.open(edited, readonly=True) as mem:
        assert doc == mem.diff(1, 2).to_json()
    assert doc["schema"] == "myosotis.diff" and doc["version"] == 1
    assert [(o["op"], o["path"]) for o in doc["ops"]] == [
        ("insert", ["items", 5]), ("change", ["meta", "k", "x"]), ("remove", ["meta", "z"]),
        ("delete", []), ("create", [])]
    assert doc["ops"][4]["new"] == {"about": {"@ref": 1}}
    assert "new" not in doc["ops"][2] and doc["ops"][2]["old"] == 2


def test_stat_counts(cli: Run, edited: Path) -> None:
    text = cli("diff", "1", "2", "--stat").stdout.splitlines()
    assert text[1] == "3 nodes, 5 ops: 1 insert, 1 change, 1 remove, 1 delete, 1 create"
    assert text[2:] == ["  items  1", "  meta   2"]
    doc = js(cli("diff", "1", "2", "--stat", "--json"))
    assert set(doc) == {"schema", "version", "from", "to", "stat"}
    assert doc["stat"] == {"nodes": 3, "ops": 5, "by_field": {"items": 1, "meta": 2},
                           "by_op": {"insert": 1, "change": 1, "remove": 1, "delete": 1,
                                     "create": 1}}


def test_filters(cli: Run, edited: Path) -> None:
    ops = js(cli("diff", "1", "2", "--field", "meta", "--json"))["ops"]
    assert [o["path"] for o in ops] == [["meta", "k", "x"], ["meta", "z"]]
    assert [o["node"] for o in js(cli("diff", "1", "2", "--node", "2", "--node", "3",
                                      "--json"))["ops"]] == [2, 3]
    assert [o["node"] for o in js(cli("diff", "1", "2", "-t", "Note", "--json"))["ops"]] == [3]
    assert cli("diff", "1", "2", "--node", "9").stdout.splitlines()[-1] == "no changes"


def test_a_created_node_shows_its_first_fields_only(cli: Run, tmp_path: Path) -> None:
    with Memory.open(tmp_path / "wide.myo") as mem:
        mem.create("Wide", **{f"f{i:03}": i for i in range(50)})
        mem.commit()
    lines = cli("diff", "0", "1").stdout.splitlines()
    assert lines[1:4] == ["+ node 1 Wide (created)", "  + f000: 0", "  + f001: 1"]
    assert lines[-1] == "    ... 30 more fields" and len(lines) == 23


def test_backward_and_empty_diffs(cli: Run, edited: Path) -> None:
    text = cli("diff", "2", "1").stdout
    assert "+ node 2 Tool (undeleted)" in text and "- node 3 Note (uncreated)" in text
    assert "  - items[5]: 5" in text
    assert cli("diff", "2", "2").stdout.splitlines()[-1] == "no changes"
    assert js(cli("diff", "0", "1", "--json"))["from"] == {"seq": 0, "id": None}


def test_output_is_bounded_for_huge_changes(cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "big.myo"
    with Memory.open(path) as mem:
        n = mem.create("Log", items=list(range(20_000)), text="a")
        mem.commit()
        n.items.append(1)
        n.text = "y" * 1_000_000
        for i in range(600):
            mem.create("N", i=i)
        mem.commit()
    r = cli("diff", "HEAD~1")
    lines = r.stdout.splitlines()
    assert len(r.stdout) < 60_000 and len(lines) <= 502  # header, 500 lines, "... more"
    assert "  + items[20000]: 1" in lines
    assert any(line.startswith('    text: "a" -> "yyyy') and len(line) < 200 for line in lines)
    assert lines[-1] == "... 352 more ops not shown (--limit N, --all, or --json)"
    assert cli("diff", "HEAD~1", "-n", "3").stdout.splitlines()[-1].startswith("... 600 more")
    assert len(cli("diff", "HEAD~1", "--all").stdout.splitlines()) > 1200


def test_bad_commit_is_one_error_line(cli: Run, edited: Path) -> None:
    r = cli("diff", "1", "7", code=1)
    assert r.stderr.startswith("myo: error: no commit 7") and "Traceback" not in r.output
