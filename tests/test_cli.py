"""The `myo` command line: the seed transcript, every command, --json shapes,
exit codes, value syntax, and `fsck` on files damaged on purpose.

Most tests drive the typer app in process (typer's CliRunner); the seed
transcript runs the installed `myo` entry point in real subprocesses.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cliutil import RUNNER, Run
from typer.testing import Result

from myosotis import Memory, Ref, Stage
from myosotis.cli import app, main
from myosotis.cli import stage as stg
from myosotis.cli.gen_docs import command_helps, doc_path, render
from myosotis.cli.output import progress
from myosotis.engine.policy import CHECKPOINT_FLOOR
from myosotis.format.constants import (
    FORMAT_VERSION,
    FRAME_FLAGS_ALLOWED,
    KIND_CHECKPOINT,
    KIND_COMMIT,
    KIND_GENESIS,
)
from myosotis.format.header import encode_frame
from myosotis.format.helper import scan_frames
from myosotis.format.image import state_hash
from myosotis.format.mutations import Create, Set, put_mutation
from myosotis.format.records import commit_id, encode_commit
from myosotis.testing import open_memory


def js(r: Result) -> Any:
    return json.loads(r.stdout)


def one_error_line(r: Result) -> str:
    """The error output is exactly one line, without a traceback."""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("myo: error: "), r.stderr
    assert "Traceback" not in r.output
    return lines[0]


@pytest.fixture
def agent_file(cli: Run, tmp_path: Path) -> Path:
    """state.myo: #1 creates Agent 1 {goal: "Explore"}, #2 sets goal "Rest" and
    creates Tool 2 referenced from 1, #3 deletes 2's name."""
    cli("init", "state.myo")
    cli("create", "Agent", "goal=Explore")
    cli("commit", "initial goal")
    cli("set", "1", "goal", "Rest")
    cli("create", "Tool", "name=hammer")
    cli("set", "1", "tool", "@2")
    cli("commit", "-m", "second")
    cli("unset", "2", "name")
    cli("commit", "third")
    return tmp_path / "state.myo"


# --------------------------------------------------------------------------
# the seed transcript, through the installed entry point


def myo_exe() -> str:
    exe = Path(sys.executable).parent / "myo"
    found = str(exe) if exe.exists() else shutil.which("myo")
    assert found, "the `myo` console script is not installed"
    return found


def sh(cwd: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MYO_FILE", "NO_COLOR")}
    p = subprocess.run([myo_exe(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
    return p


def test_seed_transcript_works_as_typed_in_real_subprocesses(tmp_path: Path) -> None:
    assert sh(tmp_path, "init", "state.myo").stdout.strip() == "created state.myo"
    node_id = sh(tmp_path, "create", "Agent").stdout.strip()
    assert node_id == "1"
    sh(tmp_path, "set", node_id, "goal", "Explore")
    # what the two processes staged is in the stage file, waiting for `commit`
    staged = Stage.read(str(tmp_path / "state.myo"))
    assert staged is not None and [stg.describe(op) for op in staged.ops] == [
        "create 1 Agent", 'set 1.goal = "Explore"']
    assert "#1" in sh(tmp_path, "commit", "initial goal").stdout
    assert not (tmp_path / "state.myo.stage").exists()
    history = sh(tmp_path, "history").stdout
    assert "initial goal" in history
    with Memory.open(tmp_path / "state.myo", readonly=True) as mem:
        first = mem.head.id if mem.head else ""
    shown = sh(tmp_path, "show", node_id, "--at", first).stdout
    assert "Agent" in shown and '"Explore"' in shown
    sh(tmp_path, "set", node_id, "goal", "Rest")
    sh(tmp_path, "commit", "rest")
    with Memory.open(tmp_path / "state.myo", readonly=True) as mem:
        second = mem.head.id if mem.head else ""
    diff = sh(tmp_path, "diff", first, second).stdout
    assert '"Explore" -> "Rest"' in diff
    # the file is what the library sees: same engine, no second implementation
    with Memory.open(tmp_path / "state.myo", readonly=True) as mem:
        assert [c.label for c in mem.history()] == ["initial goal", "rest"]
        assert mem.get(1).goal == "Rest"
        assert mem.at(1).get(1).goal == "Explore"
    # a user error in a real process: one line on stderr, exit 1, no traceback
    bad = sh(tmp_path, "show", "9", code=1)
    assert bad.stderr.strip() == "myo: error: no node 9" and bad.stdout == ""


def test_main_returns_the_exit_code_instead_of_exiting(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MYO_FILE", raising=False)
    assert main(["init", "x.myo"]) == 0
    assert main(["show", "1"]) == 1
    assert main(["--no-such-option"]) == 2


# --------------------------------------------------------------------------
# which file


def test_file_option_env_variable_and_the_only_myo_file_here(
        cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli("init", "a.myo")
    assert cli("create", "A").stdout == "1\n"  # the only *.myo file here
    cli("init", "b.myo")
    r = cli("status", code=2)  # two candidates: ask
    line = r.stderr.strip()
    assert "2 *.myo files here (a.myo, b.myo)" in line and "--file" in line and "MYO_FILE" in line
    assert len(r.stderr.strip().splitlines()) == 1
    assert cli("create", "B", "-f", "b.myo").stdout == "1\n"  # after the command
    assert cli("-f", "b.myo", "create", "B").stdout == "2\n"  # before the command
    # the command's own --file wins over the root one
    assert cli("-f", "a.myo", "create", "A", "--file", "b.myo").stdout == "3\n"
    monkeypatch.setenv("MYO_FILE", "a.myo")
    assert cli("create", "A").stdout == "2\n"
    assert cli("create", "A", "-f", "b.myo").stdout == "4\n"  # the option beats MYO_FILE


def test_no_myo_file_here_is_a_one_line_usage_error(cli: Run) -> None:
    r = cli("ls", code=2)
    assert r.stderr.strip().startswith("myo: error: which file? there is no *.myo file here")


def test_a_missing_file_is_not_created_by_a_command_other_than_init(
        cli: Run, tmp_path: Path) -> None:
    r = cli("create", "A", "-f", "typo.myo", code=1)
    assert "does not exist; create it with `myo init typo.myo`" in one_error_line(r)
    assert not (tmp_path / "typo.myo").exists()
    cli("init", "typo.myo")
    assert "already exists" in one_error_line(cli("init", "typo.myo", code=1))
    assert "directory" in one_error_line(cli("init", "no/such/dir.myo", code=1))
    assert "name the file to create" in one_error_line(cli("init", code=2))


# --------------------------------------------------------------------------
# values


VALUES: list[tuple[list[str], Any]] = [
    (["42"], 42),
    (["-7"], -7),
    (["9223372036854775807"], 2**63 - 1),
    (["-9223372036854775808"], -(2**63)),
    (["1.5"], 1.5),
    (["1e3"], 1000.0),
    (["-0.0"], -0.0),
    (["true"], True),
    (["false"], False),
    (["null"], None),
    (["Explore"], "Explore"),
    (["two words"], "two words"),
    (["01"], "01"),
    (['"42"'], "42"),
    (["-s", "42"], "42"),
    (["--string", "[not json"], "[not json"),
    (["-s", "@1"], "@1"),
    ([""], ""),
    (["@1"], Ref(1)),
    (['[1, "a", {"@ref": 1}]'], [1, "a", Ref(1)]),
    (['{"k": [true, null], "@@at": 2}'], {"@at": 2, "k": [True, None]}),
    (['{"@float": "Infinity"}'], float("inf")),
    (["-Infinity"], float("-inf")),
    (["--", "-s"], "-s"),
]


@pytest.mark.parametrize(("args", "expected"), VALUES, ids=[" ".join(a) for a, _ in VALUES])
def test_value_syntax_stores_the_documented_value(
        cli: Run, tmp_path: Path, args: list[str], expected: Any) -> None:
    cli("init", "v.myo")
    cli("create", "T")
    cli("set", "1", "v", *args)
    cli("commit")
    with Memory.open(tmp_path / "v.myo", readonly=True) as mem:
        got = mem.get(1).fields()["v"]
    if isinstance(expected, Ref):
        assert got.id == expected.id
    elif isinstance(expected, list) and expected and isinstance(expected[-1], Ref):
        assert got[:2] == expected[:2] and got[2].id == 1
    else:
        assert type(got) is type(expected) and repr(got) == repr(expected)


def test_nan_is_stored_as_a_float(cli: Run, tmp_path: Path) -> None:
    cli("init", "v.myo")
    cli("create", "T", "a=NaN", 'b={"@float": "NaN"}')
    cli("commit")
    got = js(cli("show", "1", "--json"))["fields"]
    assert got == {"a": {"@float": "NaN"}, "b": {"@float": "NaN"}}


REFUSED = [
    ("9223372036854775808", "outside the signed 64-bit range"),
    ("-9223372036854775809", "outside the signed 64-bit range"),
    ("1" * 5000, "outside the signed 64-bit range"),
    ("1e400", "too large for a 64-bit float"),
    ("[1, 2", "looks like JSON but is not valid JSON"),
    ('{"a": 1', "looks like JSON but is not valid JSON"),
    ('"unterminated', "looks like JSON but is not valid JSON"),
    ('{"a": 1, "a": 2}', "appears twice"),
    ('{"@x": 1}', "reserved"),
    ('{"@ref": "1"}', "needs a node id"),
    ('{"@float": "nan"}', "takes"),
    ("@x", "is not a reference"),
    ("@0", "is not a reference"),
    ("@", "is not a reference"),
    ("@5", "reference to node 5, which does not exist"),
    ("[" * 70 + "]" * 70, "deeper"),
]


@pytest.mark.parametrize(("value", "message"), REFUSED, ids=[v[:20] for v, _ in REFUSED])
def test_bad_values_are_refused_before_anything_is_staged(
        cli: Run, tmp_path: Path, value: str, message: str) -> None:
    cli("init", "v.myo")
    cli("create", "T")
    before = (tmp_path / "v.myo.stage").read_bytes()
    r = cli("set", "1", "v", value, code=1)
    assert message in one_error_line(r)
    assert (tmp_path / "v.myo.stage").read_bytes() == before


def test_get_json_value_round_trips_through_set(cli: Run, tmp_path: Path) -> None:
    cli("init", "v.myo")
    cli("create", "T")
    value = '{"@@a": [1, 2.0, -0.0, "x", {"@ref": 1}, {"@float": "-Infinity"}], "b": null}'
    cli("set", "1", "v", value)
    cli("commit")
    printed = js(cli("get", "1", "v", "--json"))["value"]
    cli("set", "1", "w", json.dumps(printed))
    cli("commit")
    with Memory.open(tmp_path / "v.myo", readonly=True) as mem:
        n = mem.get(1)
        assert repr(n.fields()["v"]) == repr(n.fields()["w"])


# --------------------------------------------------------------------------
# staging commands


def test_create_prints_the_id_the_node_gets_at_commit(cli: Run, tmp_path: Path) -> None:
    cli("init", "s.myo")
    assert js(cli("create", "Agent", "--json")) == {"id": 1, "type": "Agent", "staged": True}
    assert cli("create", "Tool", "owner=@1", "n=3", "-s").stdout == "2\n"
    assert cli("create", "Tool", "owner=@2").stdout == "3\n"
    c = js(cli("commit", "tools", "--json"))
    assert c["changes"] == 3 and c["next_node_id"] == 4 and c["seq"] == 1
    with Memory.open(tmp_path / "s.myo", readonly=True) as mem:
        assert [(n.id, n.type) for n in mem.nodes()] == [(1, "Agent"), (2, "Tool"), (3, "Tool")]
        assert mem.get(2).fields() == {"n": "3", "owner": "@1"}  # -s: every value a string
        assert mem.get(3).owner.id == 2


def test_create_field_arguments_must_be_field_equals_value(cli: Run) -> None:
    cli("init", "s.myo")
    assert "is not FIELD=VALUE" in one_error_line(cli("create", "A", "oops", code=2))
    assert "given twice" in one_error_line(cli("create", "A", "a=1", "a=2", code=2))
    assert "non-empty" in one_error_line(cli("create", "", code=1))


def test_unset_and_delete_are_checked_by_the_engine_when_staged(cli: Run, agent_file: Path) -> None:
    assert "no field 'nope'" in one_error_line(cli("unset", "1", "nope", code=1))
    cli("delete", "2")
    assert "deleted" in one_error_line(cli("set", "2", "x", "1", code=1))
    assert "deleted" in one_error_line(cli("delete", "2", code=1))
    cli("commit", "delete tool")
    shown = js(cli("show", "2", "--json"))
    assert shown["deleted"] is True
    assert [n["id"] for n in js(cli("ls", "--json"))["nodes"]] == [1]
    assert [n["id"] for n in js(cli("ls", "--deleted", "--json"))["nodes"]] == [1, 2]
    assert js(cli("show", "1", "--json"))["references"][0]["to_deleted"] is True


def test_list_edits_append_insert_set_remove_with_negative_indices(
        cli: Run, tmp_path: Path) -> None:
    cli("init", "l.myo")
    cli("create", "T", "xs=[]", "grid=[[1], [2]]")
    cli("list", "append", "1", "xs", "a")
    cli("list", "append", "1", "xs", "c")
    cli("list", "insert", "1", "xs", "-1", "b")  # before the last, like Python
    cli("list", "insert", "1", "xs", "3", "d")  # at the length: append
    cli("list", "set", "1", "xs", "-1", "D")
    cli("list", "remove", "1", "xs", "0")
    cli("list", "append", "1", "grid", "-5", "--in", "-1")  # negative number as a value
    cli("list", "remove", "1", "grid", "0", "--in", "0")
    assert "out of range" in one_error_line(cli("list", "set", "1", "xs", "9", "x", code=1))
    assert "out of range" in one_error_line(cli("list", "insert", "1", "xs", "-9", "x", code=1))
    assert "not a list index" in one_error_line(
        cli("list", "remove", "1", "xs", "one", code=2))
    assert "not a list" in one_error_line(cli("list", "append", "1", "grid", "1", "--in", "1",
                                              "--in", "0", code=1))
    ops = js(cli("status", "--json"))["changes"]
    assert [o["op"] for o in ops] == ["create", "list-insert", "list-insert", "list-insert",
                                      "list-insert", "list-set", "list-remove", "list-insert",
                                      "list-remove"]
    assert ops[3] == {"op": "list-insert", "node": 1, "field": "xs", "path": [], "index": 1,
                      "value": "b"}
    assert ops[7]["path"] == [1] and ops[7]["index"] == 1
    cli("commit")
    with Memory.open(tmp_path / "l.myo", readonly=True) as mem:
        assert mem.get(1).fields() == {"grid": [[], [2, -5]], "xs": ["b", "c", "D"]}


def test_map_edits_set_and_delete_nested_keys(cli: Run, tmp_path: Path) -> None:
    cli("init", "m.myo")
    cli("create", "T", 'config={"net": {}, "old": 1}')
    cli("map", "set", "1", "config", "retries", "3")
    cli("map", "set", "1", "config", "timeout", "30", "--in", "net")
    cli("map", "set", "1", "config", "@key", "-s", "@v")  # keys are taken as typed
    cli("map", "delete", "1", "config", "old")
    assert "no key 'old'" in one_error_line(cli("map", "delete", "1", "config", "old", code=1))
    assert "no key 'x'" in one_error_line(cli("map", "set", "1", "config", "k", "1",
                                              "--in", "x", code=1))
    assert "not a map" in one_error_line(cli("map", "set", "1", "config", "k", "1",
                                             "--in", "retries", code=1))
    cli("commit")
    with Memory.open(tmp_path / "m.myo", readonly=True) as mem:
        assert mem.get(1).config == {"@key": "@v", "net": {"timeout": 30}, "retries": 3}


def test_changes_the_engine_refuses_are_one_error_line_and_stage_nothing(
        cli: Run, agent_file: Path) -> None:
    """Every change is staged with Memory.stage, so the engine's rules (R50–R53) refuse
    it in their own words; the command line adds its own where it says more (which
    map, which list)."""
    cli("delete", "2")
    cli("commit", "delete the tool")
    for args, message in [
        (("set", "9", "x", "1"), "node 9 does not exist"),
        (("delete", "9"), "node 9 does not exist"),
        (("set", "2", "x", "1"), "node 2 is deleted; a deleted node cannot change (R50)"),
        (("unset", "1", "nope"), "node 1 has no field 'nope' to delete"),
        (("set", "1", "x", "@9"), "reference to node 9, which does not exist"),
        (("map", "set", "1", "goal", "k", "v"),
         'goal of node 1 is not a list or map ("Rest"), not a map'),
        (("list", "append", "1", "goal", "x"),
         'goal of node 1 is not a list or map ("Rest"), not a list'),
    ]:
        assert one_error_line(cli(*args, code=1)) == f"myo: error: {message}", args
    assert "nothing staged" in cli("status").stdout


def test_status_lists_staged_changes_and_discard_drops_them(cli: Run, agent_file: Path) -> None:
    assert "nothing staged" in cli("status").stdout
    cli("set", "1", "mood", "calm")
    cli("delete", "2")
    text = cli("status").stdout
    assert "2 staged changes" in text and 'set 1.mood = "calm"' in text and "delete 2" in text
    doc = js(cli("status", "--json"))
    assert set(doc) == {"file", "head", "stage", "base", "changes"}
    assert doc["stage"] == "current" and doc["base"] == doc["head"] and doc["head"]["seq"] == 3
    assert doc["changes"] == [{"op": "set", "node": 1, "field": "mood", "value": "calm"},
                              {"op": "delete", "node": 2}]
    assert js(cli("discard", "--json")) == {"discarded": 2, "damaged": False}
    assert not (agent_file.parent / "state.myo.stage").exists()
    assert cli("discard").stdout.strip() == "nothing staged"
    assert "nothing to commit" in one_error_line(cli("commit", "x", code=1))
    assert js(cli("commit", "--allow-empty", "marker", "--json"))["changes"] == 0
    assert "give the message once" in one_error_line(cli("commit", "a", "-m", "b", code=2))


def test_read_commands_show_committed_state_unless_staged(cli: Run, agent_file: Path) -> None:
    cli("create", "Note", "text=hi")
    cli("set", "1", "goal", "Sleep")
    r = cli("show", "3", code=1)
    assert "node 3 is staged but not committed; use --staged" in one_error_line(r)
    assert cli("get", "1", "goal").stdout == "Rest\n"
    assert cli("get", "1", "goal", "--staged").stdout == "Sleep\n"
    assert js(cli("show", "3", "--staged", "--json"))["at"]["staged"] is True
    assert [n["id"] for n in js(cli("ls", "--staged", "--json"))["nodes"]] == [1, 2, 3]
    assert "do not go together" in one_error_line(cli("ls", "--staged", "--at", "1", code=2))
    assert len(js(cli("status", "--json"))["changes"]) == 2  # reading changed nothing


# --------------------------------------------------------------------------
# read commands and their --json shapes

COMMIT_KEYS = {"seq", "id", "timestamp", "timestamp_us", "label", "parent", "next_node_id",
               "compacted"}


def test_history_lists_commits_newest_first(cli: Run, agent_file: Path) -> None:
    text = cli("history").stdout.splitlines()
    assert text[0].split() == ["SEQ", "ID", "TIME", "LABEL"]
    assert [line.split()[0] for line in text[1:]] == ["3", "2", "1"]
    doc = js(cli("history", "--json"))
    assert set(doc) == {"file", "compacted_before", "commits"}
    assert [c["seq"] for c in doc["commits"]] == [3, 2, 1]
    assert all(set(c) == COMMIT_KEYS for c in doc["commits"])
    assert doc["commits"][0]["parent"] == doc["commits"][1]["id"]
    assert doc["commits"][2]["parent"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", doc["commits"][0]["timestamp"])
    assert [c["seq"] for c in js(cli("history", "-n", "2", "--reverse", "--json"))["commits"]] \
        == [2, 3]


def test_show_at_any_commit_with_fields_and_references(cli: Run, agent_file: Path) -> None:
    doc = js(cli("show", "1", "--json"))
    assert set(doc) == {"id", "type", "deleted", "at", "fields", "references"}
    assert doc["fields"] == {"goal": "Rest", "tool": {"@ref": 2}}
    assert doc["references"] == [{"field": "tool", "path": [], "to": 2, "to_type": "Tool",
                                  "to_deleted": False}]
    assert doc["at"]["seq"] == 3 and doc["at"]["staged"] is False
    old = js(cli("show", "1", "--at", "1", "--json"))
    assert old["fields"] == {"goal": "Explore"} and old["at"]["seq"] == 1
    text = cli("show", "1").stdout
    assert "node 1 Agent" in text and "tool -> @2 Tool" in text and '"Rest"' in text
    assert "no node 2 at commit 1" in one_error_line(cli("show", "2", "--at", "1", code=1))
    assert "not a node id" in one_error_line(cli("show", "x", code=2))


def test_commits_are_named_by_seq_id_prefix_head_and_head_tilde_n(
        cli: Run, agent_file: Path) -> None:
    ids = [c["id"] for c in js(cli("history", "--reverse", "--json"))["commits"]]
    # a 12-digit prefix: a shorter one of decimal digits only would name a seq number
    for name, seq in [("2", 2), (ids[1], 2), (ids[1][:12], 2), ("HEAD", 3), ("HEAD~2", 1),
                      ("head~1", 2)]:
        assert js(cli("ls", "--at", name, "--json"))["at"] == {"staged": False, "seq": seq,
                                                               "id": ids[seq - 1]}, name
    assert "no commit" in one_error_line(cli("ls", "--at", "9", code=1))
    assert "HEAD~N" in one_error_line(cli("ls", "--at", "HEAD~x", code=1))
    assert "no commit" in one_error_line(cli("ls", "--at", "HEAD~5", code=1))


def test_ls_filters_by_type_and_shows_a_table(cli: Run, agent_file: Path) -> None:
    rows = cli("ls").stdout.splitlines()
    assert rows[0].split() == ["ID", "TYPE", "FIELDS"]
    assert rows[1].split()[:2] == ["1", "Agent"] and 'goal="Rest"' in rows[1]
    doc = js(cli("ls", "--type", "Tool", "--json"))
    assert set(doc) == {"at", "type", "nodes"}
    assert doc["nodes"] == [{"id": 2, "type": "Tool", "deleted": False, "fields": {}}]
    assert cli("ls", "-t", "Nope").stdout.strip() == "no nodes of type Nope"


def test_get_prints_one_value(cli: Run, agent_file: Path) -> None:
    assert cli("get", "1", "tool").stdout == "@2\n"
    doc = js(cli("get", "1", "goal", "--at", "1", "--json"))
    assert set(doc) == {"node", "field", "path", "at", "value"}
    assert doc["value"] == "Explore"
    assert "has no field 'nope'" in one_error_line(cli("get", "1", "nope", code=1))
    cli("set", "1", "m", '{"a": [10, 20]}')
    cli("commit")
    assert cli("get", "1", "m", "--in", "a", "--in", "-1").stdout == "20\n"
    assert js(cli("get", "1", "m", "--in", "a", "--json"))["path"] == ["a"]
    assert "has no key 'b'" in one_error_line(cli("get", "1", "m", "--in", "b", code=1))


def test_log_lists_the_commits_that_changed_one_node(cli: Run, agent_file: Path) -> None:
    doc = js(cli("log", "1", "--json"))
    assert set(doc) == {"node", "field", "at", "commits"}
    assert [c["seq"] for c in doc["commits"]] == [2, 1]
    assert all(set(c) == COMMIT_KEYS | {"changes"} for c in doc["commits"])
    assert doc["commits"][1]["changes"] == [
        {"op": "create", "node": 1, "type": "Agent", "fields": {"goal": "Explore"}}]
    assert doc["commits"][0]["changes"] == [
        {"op": "set", "node": 1, "field": "goal", "value": "Rest"},
        {"op": "set", "node": 1, "field": "tool", "value": {"@ref": 2}}]
    tool = js(cli("log", "2", "--json"))["commits"]
    assert [c["seq"] for c in tool] == [3, 2]
    assert tool[0]["changes"] == [{"op": "unset", "node": 2, "field": "name"}]
    text = cli("log", "1").stdout
    assert 'set 1.goal = "Rest"' in text and text.startswith("node 1 Agent")
    assert len(js(cli("log", "1", "-n", "1", "--json"))["commits"]) == 1
    assert "no node 7" in one_error_line(cli("log", "7", code=1))


def test_diff_shows_created_deleted_and_changed_fields(cli: Run, agent_file: Path) -> None:
    cli("delete", "2")
    cli("commit", "gone")
    doc = js(cli("diff", "1", "HEAD", "--json"))  # the schema of docs/DIFF.md
    assert set(doc) == {"schema", "version", "from", "to", "stat", "ops"}
    assert (doc["schema"], doc["version"]) == ("myosotis.diff", 1)
    assert doc["from"]["seq"] == 1 and doc["to"]["seq"] == 4
    assert doc["ops"] == [
        {"node": 1, "type": "Agent", "op": "change", "path": ["goal"], "old": "Explore",
         "new": "Rest"},
        {"node": 1, "type": "Agent", "op": "add", "path": ["tool"], "new": {"@ref": 2}},
        # created after 1 and deleted since: created (without the name unset since)
        {"node": 2, "type": "Tool", "op": "create", "path": [], "new": {}},
        {"node": 2, "type": "Tool", "op": "delete", "path": []}]
    assert js(cli("diff", "3", "4", "--json"))["ops"] == [
        {"node": 2, "type": "Tool", "op": "delete", "path": []}]
    assert js(cli("diff", "0", "1", "--json"))["ops"][0]["op"] == "create"
    text = cli("diff", "HEAD~3").stdout
    assert "~ node 1 Agent" in text and '    goal: "Explore" -> "Rest"' in text
    assert "  + tool: @2" in text
    assert "+ node 2 Tool (created)\n    (deleted)" in text
    assert "\x1b[" not in text  # no colour when stdout is not a terminal
    assert cli("diff", "2", "2").stdout.splitlines()[-1] == "no changes"


def test_colour_only_when_asked_or_on_a_terminal(cli: Run, agent_file: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert "\x1b[" in cli("--color", "always", "diff", "1", "2").stdout
    assert "\x1b[" not in cli("--color", "never", "diff", "1", "2").stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in cli("diff", "1", "2").stdout


def test_stats_counts_commits_nodes_and_bytes_by_record_kind(cli: Run, agent_file: Path) -> None:
    cli("checkpoint")
    cli("delete", "2")
    cli("commit")
    doc = js(cli("stats", "--json"))
    assert set(doc) == {"file", "file_size", "head", "commits", "compacted_before",
                        "checkpoints", "genesis", "nodes", "next_node_id", "bytes", "frames",
                        "format_version", "origin"}
    assert doc["commits"] == 4 and doc["checkpoints"] == 1 and doc["genesis"] is False
    assert doc["nodes"] == {"live": 1, "deleted": 1, "total": 2}
    # `myo checkpoint` writes a layer (FORMAT.md §8.7) in format version 4
    assert doc["frames"] == {"commit": 4, "checkpoint": 0, "genesis": 0, "origin": 0,
                             "layer": 1}
    assert sum(doc["bytes"].values()) == doc["file_size"] == agent_file.stat().st_size
    # the CLI writes durably: the file ends with free space (FORMAT.md §3), not damage
    assert doc["bytes"]["free_space"] > 0 and doc["bytes"]["torn_tail"] == 0
    assert "KIND" in cli("stats").stdout


def test_stats_counts_a_torn_last_frame_before_zeros_as_torn_tail(cli: Run,
                                                                   agent_file: Path) -> None:
    """§10 steps 3 and 5: a last frame whose header never reached the disk (zero)
    leaves a torn tail, even when zeros follow it; stats agrees with fsck (which
    repairs it). A flipped byte instead is damage, an error (R28)."""
    before = js(cli("stats", "--json"))
    data = bytearray(agent_file.read_bytes())
    with Memory.open(agent_file, readonly=True) as mem:
        last, end = frames(bytes(data))[-1][0], mem.info().data_end
    flipped = bytearray(data)
    flipped[last + 20] ^= 0xFF
    agent_file.write_bytes(bytes(flipped))
    assert codes(fsck(code=3)) == [("error", "damaged-tail")]
    data[last:last + 16] = bytes(16)
    agent_file.write_bytes(bytes(data))
    doc = js(cli("stats", "--json"))
    assert doc["bytes"]["torn_tail"] == len(data) - last and doc["bytes"]["free_space"] == 0
    assert doc["bytes"]["checkpoint"] + doc["bytes"]["commit"] == \
        before["bytes"]["checkpoint"] + before["bytes"]["commit"] - (end - last)
    assert codes(fsck(code=3)) == [("warning", "torn-tail")]


def test_checkpoint_writes_one_only_when_needed(cli: Run, agent_file: Path) -> None:
    doc = js(cli("checkpoint", "--json"))
    assert doc["written"] is True and doc["seq"] == 3 and doc["bytes"] > 0
    assert js(cli("checkpoint", "--json"))["written"] is False
    assert "already covers" in cli("checkpoint").stdout


def test_compact_reports_bytes_and_keeps_state_ids_and_stage(cli: Run, agent_file: Path) -> None:
    before = js(cli("history", "--json"))["commits"]
    cli("set", "1", "goal", "Staged")
    doc = js(cli("compact", "--at", "2", "--json"))
    assert set(doc) == {"file", "bytes_before", "bytes_after", "base_seq", "state_hash",
                        "dry_run", "folded", "bytes_reclaimed"}
    assert doc["folded"] == [1, 2] and doc["dry_run"] is False
    assert doc["base_seq"] == 2 and doc["bytes_after"] == agent_file.stat().st_size
    after = js(cli("history", "--json"))
    assert after["compacted_before"] == 3 and after["commits"] == before[:1]
    assert "folded into the genesis" in one_error_line(cli("show", "1", "--at", "1", code=1))
    assert js(cli("status", "--json"))["stage"] == "current"  # commit ids are unchanged
    text = cli("compact").stdout
    assert re.search(r"compacted state\.myo: [\d,]+ -> [\d,]+ bytes", text)
    assert js(cli("status", "--json"))["stage"] == "current"  # head = the genesis base now
    cli("commit", "after compaction")
    assert cli("get", "1", "goal").stdout == "Staged\n"
    assert js(cli("stats", "--json"))["genesis"] is True
    cli("fsck")


def test_compact_reports_growth_as_larger_and_shrinkage_as_smaller(cli: Run,
                                                                   tmp_path: Path) -> None:
    """The percentage is always positive; the word says which way the size went."""
    with Memory.open(tmp_path / "grows.myo") as mem:  # one small commit: a snapshot is larger
        mem.create("A", x="y" * 10)
        mem.commit()
    with Memory.open(tmp_path / "shrinks.myo") as mem:  # 40 commits of one field
        n = mem.create("A", x=0)
        for i in range(40):
            n.x = i
            mem.commit()
    pattern = r"compacted \S+: ([\d,]+) -> ([\d,]+) bytes \((\d+)% (larger|smaller)\)"
    for name, word in (("grows.myo", "larger"), ("shrinks.myo", "smaller")):
        m = re.search(pattern, cli("-f", name, "compact").stdout)
        assert m is not None
        before, after = (int(g.replace(",", "")) for g in m.group(1, 2))
        assert m.group(4) == word and (after > before) == (word == "larger")
        assert int(m.group(3)) == round(100 * abs(after - before) / before)
    assert "(same size)" in cli("-f", "shrinks.myo", "compact").stdout


# --------------------------------------------------------------------------
# exit codes and errors


def test_usage_errors_exit_2(cli: Run, agent_file: Path) -> None:
    assert cli("nosuchcommand", code=2).exit_code == 2
    assert cli("show", code=2).exit_code == 2
    assert cli("ls", "--bogus", code=2).exit_code == 2
    assert cli("history", "-n", "0", code=2).exit_code == 2


def test_a_locked_file_is_a_one_line_error(cli: Run, agent_file: Path) -> None:
    with Memory.open(agent_file):
        r = cli("set", "1", "goal", "x", code=1)
        assert "is open for writing by another process" in one_error_line(r)
        assert cli("get", "1", "goal").stdout == "Rest\n"  # readers need no lock


def test_not_a_myosotis_file_is_error_1_and_damage_is_3(cli: Run, tmp_path: Path,
                                                         agent_file: Path) -> None:
    (tmp_path / "junk.myo").write_bytes(b"hello, world" * 4)
    assert "not a Myosotis file" in one_error_line(cli("ls", "-f", "junk.myo", code=1))
    data = bytearray(agent_file.read_bytes())
    second = frames(bytes(data))[1]
    data[second[0] + 16 + 60] ^= 0xFF  # a payload byte of commit 2
    agent_file.write_bytes(bytes(data))
    assert "corrupt file at offset" in one_error_line(cli("ls", "-f", "state.myo", code=3))


def test_every_command_has_an_example_and_is_in_the_docs() -> None:
    """docs/CLI.md is generated from --help; a stale or incomplete doc fails here."""
    helps = command_helps()
    names = [n for n, _ in helps]
    expected = {"init", "create", "set", "unset", "delete", "status", "commit", "discard",
                "history", "show", "ls", "get", "log", "blame", "refs", "diff", "stats",
                "checkpoint", "fsck",
                "compact", "list", "list append", "list insert", "list set", "list remove",
                "map", "map set", "map delete", "walk", "orphans", "graph", "export", "import",
                "migrate", "restore", "revert", "fork"}
    assert {n.removeprefix("myo ") for n in names[1:]} == expected
    for name, text in helps:
        assert "Example:\n" in text, f"`{name} --help` has no example"
    assert "Exit codes:" in helps[0][1]
    doc = doc_path().read_text(encoding="utf-8")
    for name in names:
        assert f"### `{name}`" in doc, f"{name} is missing from docs/CLI.md"
    assert doc == render(), "docs/CLI.md is out of date: run python -m myosotis.cli.gen_docs"


def test_version_and_help(cli: Run) -> None:
    assert cli("--version").stdout.startswith("myo (myosotis) ")
    assert "Usage: myo set" in cli("set", "-h").stdout
    assert "VALUE syntax" in cli("set", "--help").stdout


# --------------------------------------------------------------------------
# fsck on files damaged on purpose

Frame = tuple[int, int, int]  # offset, kind, payload length


def frames(data: bytes) -> list[Frame]:
    flags = FRAME_FLAGS_ALLOWED[data[8]]  # a "none" file may be version 2 (FORMAT.md §3)
    res = scan_frames(data, 32, False, flags)
    return [(o, k, struct.unpack_from("<I", data, o)[0])
            for o, k in zip(res.offsets, res.kinds, strict=True)]


def payload(data: bytes, f: Frame) -> bytes:
    return data[f[0] + 16: f[0] + 16 + f[2]]


def put_frame(path: Path, f: Frame, new_payload: bytes) -> None:
    """Replace frame ``f``'s payload by one of the same length, with valid CRCs."""
    assert len(new_payload) == f[2]
    data = bytearray(path.read_bytes())
    frame = encode_frame(f[1], new_payload, data[f[0] + 5])  # keeps the frame's flags
    data[f[0]: f[0] + len(frame)] = frame
    path.write_bytes(bytes(data))


@pytest.fixture
def fsck_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """f.myo: 3 commits (ids 1..3), a checkpoint after commit 2. Written with
    durability "none", so the file ends with its last frame (no free space, FORMAT.md
    §3) and the tests can append frames to it; with the version-2 checkpoint policy
    (§8.4), so the checkpoint is a whole image (test_checkpoint_layers.py has layers)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MYO_FILE", raising=False)
    p = tmp_path / "f.myo"
    with open_memory(p, durability="none", checkpoint_floor=CHECKPOINT_FLOOR) as mem:
        a = mem.create("Agent", goal="Explore")
        mem.commit("one")
        mem.create("Tool", owner=a, name="hammer")
        mem.commit("two")
        mem.checkpoint()
        a.goal = "Rest"
        mem.create("Note")
        mem.commit("three")
    return p


def fsck(*args: str, code: int) -> dict[str, Any]:
    r = RUNNER.invoke(app, ["fsck", "--json", *args])
    assert r.exit_code == code, (r.stdout, r.stderr)
    doc: dict[str, Any] = json.loads(r.stdout)
    assert doc["ok"] is (code == 0)
    return doc


def codes(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["severity"], f["code"]) for f in doc["findings"]]


def test_fsck_reports_a_clean_file_as_clean(fsck_file: Path) -> None:
    doc = fsck(code=0)
    assert doc["findings"] == [] and doc["commits"] == 3 and doc["checkpoints"] == 1
    assert set(doc) == {"file", "ok", "file_size", "frames", "commits", "checkpoints", "errors",
                        "warnings", "findings", "repaired", "stage"}
    r = RUNNER.invoke(app, ["fsck"])
    assert r.exit_code == 0 and r.stdout.rstrip().endswith(": clean")


def test_fsck_finds_a_bad_magic(fsck_file: Path) -> None:
    """R10."""
    data = bytearray(fsck_file.read_bytes())
    data[0:8] = b"NOTMYOSO"
    fsck_file.write_bytes(bytes(data))
    doc = fsck(code=3)
    assert codes(doc) == [("error", "header")] and doc["findings"][0]["offset"] == 0


def test_fsck_finds_a_newer_format_version(fsck_file: Path) -> None:
    """R11."""
    data = bytearray(fsck_file.read_bytes())
    data[8:10] = (FORMAT_VERSION + 1).to_bytes(2, "little")
    fsck_file.write_bytes(bytes(data))
    doc = fsck(code=3)
    assert codes(doc)[0][1] in ("header", "version") and "newer" in doc["findings"][0]["message"]


def test_fsck_finds_a_damaged_file_header(fsck_file: Path) -> None:
    """R12: header CRC."""
    data = bytearray(fsck_file.read_bytes())
    data[20] ^= 0x01
    fsck_file.write_bytes(bytes(data))
    doc = fsck(code=3)
    assert codes(doc) == [("error", "header")] and "R12" in doc["findings"][0]["message"]


def test_fsck_finds_a_frame_crc_failure_and_repair_does_not_drop_it(fsck_file: Path) -> None:
    """R26 on a frame that valid frames follow (§10 step 4): committed data is damaged."""
    data = fsck_file.read_bytes()
    second = frames(data)[1]
    damaged = bytearray(data)
    damaged[second[0] + 16 + 58] ^= 0x40
    fsck_file.write_bytes(bytes(damaged))
    doc = fsck(code=3)
    assert ("error", "frame") in codes(doc)
    assert doc["findings"][0]["offset"] == second[0]
    text = RUNNER.invoke(app, ["fsck"]).stdout
    assert f"error: frame [offset {second[0]}]" in text
    rep = fsck("--repair", code=3)
    assert rep["repaired"] == [] and fsck_file.read_bytes() == bytes(damaged)


def test_fsck_finds_a_torn_tail_and_repair_cuts_it(fsck_file: Path) -> None:
    """§10 step 3: a torn tail is a warning; --repair cuts it and loses no commit."""
    data = fsck_file.read_bytes()
    last = frames(data)[-1]
    torn = data + data[last[0]: last[0] + 24]  # half a frame, as a crash mid-append leaves
    fsck_file.write_bytes(torn)
    doc = fsck(code=3)
    assert codes(doc) == [("warning", "torn-tail")]
    assert doc["findings"][0]["offset"] == len(data) and doc["findings"][0]["repairable"]
    assert "--repair" in RUNNER.invoke(app, ["fsck"]).stdout
    rep = fsck("--repair", code=0)
    assert rep["repaired"] and fsck_file.read_bytes() == data
    with Memory.open(fsck_file, readonly=True) as mem:
        assert len(mem.history()) == 3


def test_fsck_finds_a_checkpoint_failing_its_hash_and_repair_drops_it(fsck_file: Path) -> None:
    """R80: a checkpoint is a cache; dropping it loses nothing committed."""
    data = fsck_file.read_bytes()
    cp = next(f for f in frames(data) if f[1] == KIND_CHECKPOINT)
    body = bytearray(payload(data, cp))
    body[-1] ^= 0x01  # a byte of the image; the frame CRCs are made valid again
    put_frame(fsck_file, cp, bytes(body))
    with pytest.warns(UserWarning, match="skipped"), \
            Memory.open(fsck_file, readonly=True) as mem:
        state = mem.state_hash()
    r = RUNNER.invoke(app, ["ls"])  # the engine's warning, as one line of the command line
    assert r.exit_code == 0 and re.fullmatch(
        rf"myo: warning: .*checkpoint at offset {cp[0]} skipped: .*\(R80\)\n", r.stderr)
    doc = fsck(code=3)
    assert codes(doc) == [("warning", "checkpoint")]
    assert doc["findings"][0]["offset"] == cp[0] and doc["findings"][0]["seq"] == 2
    rep = fsck("--repair", code=0)
    assert rep["checkpoints"] == 0 and len(rep["repaired"]) == 1
    with Memory.open(fsck_file, readonly=True) as mem:
        assert mem.state_hash() == state and len(mem.history()) == 3


def test_fsck_finds_a_checkpoint_that_disagrees_with_the_replay(fsck_file: Path) -> None:
    """A checkpoint whose hash matches its own image, but the image is not the replayed
    state."""
    data = fsck_file.read_bytes()
    cp = next(f for f in frames(data) if f[1] == KIND_CHECKPOINT)
    body = bytearray(payload(data, cp))
    i = body.rindex(b"hammer")
    body[i: i + 6] = b"HAMMER"
    body[40:72] = state_hash(bytes(body[72:]))
    put_frame(fsck_file, cp, bytes(body))
    doc = fsck(code=3)
    # Its hash is right, so readers use it and would show "HAMMER" (§8.4): an error.
    assert codes(doc) == [("error", "checkpoint")]
    assert "replay" in doc["findings"][0]["message"]
    assert "readers use it" in doc["findings"][0]["message"]


def test_fsck_finds_a_broken_hash_chain(fsck_file: Path) -> None:
    """R32: commit 3's parent is not commit 2's id."""
    data = fsck_file.read_bytes()
    third = [f for f in frames(data) if f[1] == KIND_COMMIT][2]
    body = bytearray(payload(data, third))
    body[16] ^= 0xFF  # first byte of `parent`
    put_frame(fsck_file, third, bytes(body))
    doc = fsck(code=3)
    assert codes(doc) == [("error", "chain")]
    assert doc["findings"][0]["seq"] == 3 and doc["findings"][0]["offset"] == third[0]


def test_fsck_finds_a_wrong_sequence_number(fsck_file: Path) -> None:
    """R31."""
    data = fsck_file.read_bytes()
    third = [f for f in frames(data) if f[1] == KIND_COMMIT][2]
    body = bytearray(payload(data, third))
    body[0:8] = (7).to_bytes(8, "little")
    put_frame(fsck_file, third, bytes(body))
    doc = fsck(code=3)
    assert codes(doc) == [("error", "sequence")] and doc["findings"][0]["seq"] == 3


def append_commit(path: Path, muts: list[Any], next_node_id: int) -> int:
    """Append a well-formed commit frame (valid CRCs, right seq and parent) holding
    ``muts``; the graph rules are the only thing it may break. Returns its offset."""
    data = path.read_bytes()
    commits = [f for f in frames(data) if f[1] == KIND_COMMIT]
    parent = commit_id(payload(data, commits[-1]))
    body = bytearray()
    for m in muts:
        put_mutation(body, m)
    p = encode_commit(len(commits) + 1, 1_700_000_000_000_000, parent, next_node_id, "bad",
                      len(muts), body)
    with open(path, "ab") as f:
        f.write(encode_frame(KIND_COMMIT, p))
    return len(data)


def test_fsck_finds_a_reference_to_a_missing_node(fsck_file: Path) -> None:
    """R51: referential integrity at every commit."""
    off = append_commit(fsck_file, [Set(1, "friend", Ref(99))], 4)
    doc = fsck(code=3)
    assert codes(doc) == [("error", "rule")]
    assert doc["findings"][0]["seq"] == 4 and doc["findings"][0]["offset"] == off
    assert "99" in doc["findings"][0]["message"]


def test_fsck_finds_a_reused_node_id(fsck_file: Path) -> None:
    """§6 CREATE: ids are never reused."""
    append_commit(fsck_file, [Create(2, "Again", {})], 4)
    doc = fsck(code=3)
    assert codes(doc) == [("error", "rule")] and doc["findings"][0]["seq"] == 4


def test_fsck_finds_next_node_id_going_back(fsck_file: Path) -> None:
    """R60: the recorded next_node_id must be the state's after the mutations."""
    append_commit(fsck_file, [Set(1, "x", 1)], 2)
    doc = fsck(code=3)
    assert codes(doc) == [("error", "rule")] and "R60" in doc["findings"][0]["message"]


def test_fsck_finds_a_genesis_failing_its_hash(fsck_file: Path) -> None:
    """R85: the genesis is not a cache, so this is an error and --repair leaves it."""
    with Memory.open(fsck_file) as mem:
        mem.compact()
    data = fsck_file.read_bytes()
    g = frames(data)[0]
    assert g[1] == KIND_GENESIS
    body = bytearray(payload(data, g))
    body[-1] ^= 0x01
    put_frame(fsck_file, g, bytes(body))
    doc = fsck(code=3)
    assert codes(doc) == [("error", "genesis")] and doc["findings"][0]["offset"] == g[0]
    damaged = fsck_file.read_bytes()
    assert fsck("--repair", code=3)["repaired"] == [] and fsck_file.read_bytes() == damaged


def test_fsck_checks_the_stage_file(fsck_file: Path) -> None:
    RUNNER.invoke(app, ["set", "1", "x", "1"])
    doc = fsck(code=0)
    assert doc["stage"] == {"path": "f.myo.stage", "present": True, "state": "current",
                            "changes": 1, "base": {"seq": 3, "id": doc["stage"]["base"]["id"]}}
    stage = fsck_file.parent / "f.myo.stage"
    data = bytearray(stage.read_bytes())
    data[-10] ^= 0x01
    stage.write_bytes(bytes(data))
    doc = fsck(code=3)
    assert codes(doc) == [("warning", "stage")]
    assert "checksum" in doc["findings"][0]["message"]


def test_fsck_reports_a_stale_stage_as_a_note_not_a_problem(fsck_file: Path) -> None:
    RUNNER.invoke(app, ["set", "1", "x", "1"])
    with Memory.open(fsck_file) as mem:
        mem.get(1).y = 2
        mem.commit()
    assert fsck(code=0)["stage"]["state"] == "stale"
    assert "`myo commit` will refuse it" in RUNNER.invoke(app, ["fsck"]).stdout


def test_fsck_repair_refuses_while_a_writer_holds_the_file(
        fsck_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYO_LOCK_TIMEOUT", "0")
    with Memory.open(fsck_file):
        r = RUNNER.invoke(app, ["fsck", "--repair"])
    assert r.exit_code == 1 and "open for writing" in one_error_line(r)


def test_fsck_draws_a_progress_bar_only_on_a_terminal(fsck_file: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The bar is driven by Memory.check_file's progress callback and drawn on stderr."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with progress("checking") as cb:  # pytest's stderr is not a terminal: no bar
        assert cb is None
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with progress("checking") as cb:
        assert cb is not None
        report = Memory.check_file(str(fsck_file), progress=cb)
    assert report.ok
    assert "checking" in term.getvalue() and "100%" in term.getvalue()


# --------------------------------------------------------------------------
# engine behaviour the command line depends on


def test_engine_view_commit_of_the_compacted_base_is_the_base_commit(tmp_path: Path) -> None:
    """After compaction at HEAD the head is the genesis base: a Commit marked compacted."""
    with Memory.open(tmp_path / "c.myo") as mem:
        mem.create("A")
        first = mem.commit("a")
        assert first is not None
        mem.compact()
        c = mem.at("HEAD").commit
        assert (c.seq, c.id, c.compacted, c.timestamp, c.label) == (1, first.id, True, None, None)
        assert mem.head == c and mem.history() == []
