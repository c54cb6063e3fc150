"""Terminal escapes in user strings never reach the terminal raw (issue #8 item 10).

Labels, type names, field names, map keys, values, paths and error messages
quoting user input are printed with every control character (C0, DEL, C1),
format character (bidi overrides) and separator escaped, by every printing
command, with colour on or off; ``--json`` output stays JSON, with the same
characters as JSON escapes, and reads back exactly.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from cliutil import RUNNER, Run
from typer.testing import Result

from myosotis import Memory
from myosotis.cli import app

# clear screen, set the window title (OSC ... BEL), carriage return, CSI as one C1
# byte, right-to-left override, DEL, line separator, an invisible language tag
NASTY = "<\x1b[2J\x1b]0;pwned\x07|\r|\x9b31m|\u202e|\x7f|\u2028|\U000e0001|\x00|\x85>"
TYPE, FIELD, KEY, LABEL, VALUE = (p + NASTY for p in ("T", "f", "k", "L", "v"))
SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colours myo itself prints


@pytest.fixture
def nasty(cli: Run, tmp_path: Path) -> Path:
    """n.myo: #1 creates node 1 (TYPE) with FIELD, a map with KEY, a reference and a
    nested list, and node 2; #2 (LABEL) changes FIELD and deletes node 2."""
    path = tmp_path / "n.myo"
    with Memory.open(path) as mem:
        other = mem.create(TYPE)
        n = mem.create(TYPE, **{FIELD: VALUE, "m": {KEY: VALUE}, "ref" + NASTY: other,
                                "deep": {KEY: [other]}})
        mem.commit(LABEL)
        n[FIELD] = "changed" + NASTY
        other.delete()
        mem.commit(LABEL)
    return path


def unsafe_left(text: str) -> list[str]:
    """Characters that must not reach a terminal, after removing myo's own colours."""
    text = SGR.sub("", text)
    return sorted({c for c in text if c not in "\n" and (
        unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp"))})


def check(r: Result, *shown: str) -> None:
    """No raw unsafe character anywhere in the output; ``shown`` texts (escaped forms)
    appear."""
    both = r.stdout + r.stderr
    assert unsafe_left(both) == [], both
    for s in shown:
        assert s in both, (s, both)


ESCAPED = r"<\x1b[2J\x1b]0;pwned\x07|\r|\x9b31m|\u202e|\x7f|\u2028|\U000e0001|\x00|\x85>"


@pytest.mark.parametrize("colour", ["never", "always"])
@pytest.mark.parametrize(("args", "shown"), [
    (["history"], ["L" + ESCAPED]),
    (["show", "2"], ["T" + ESCAPED, "f" + ESCAPED, "ref" + ESCAPED + " -> @1 T" + ESCAPED]),
    (["show", "2", "--at", "1"], ["T" + ESCAPED]),
    (["ls"], ["T" + ESCAPED, 'deep={"k<\\u001b[2J\\u001b]0;pwned\\u0007|\\r|\\u009b31m']),
    (["ls", "--deleted"], ["T" + ESCAPED]),
    (["get", "2", "m"], ["\\u001b[2J"]),
    (["get", "2", "f" + NASTY], ["changed" + ESCAPED]),
    (["log", "2"], ["L" + ESCAPED, "f" + ESCAPED]),
    (["log", "1"], ["node 1 T" + ESCAPED + " (deleted)"]),
    (["blame", "2"], ["f" + ESCAPED, "L" + ESCAPED]),
    (["refs", "1"], ["ref" + ESCAPED, "T" + ESCAPED]),
    (["diff", "0", "2"], ["T" + ESCAPED, "f" + ESCAPED]),
    (["diff", "1", "2"], ["f" + ESCAPED]),
])
def test_every_read_command_escapes_user_strings(cli: Run, nasty: Path, colour: str,
                                                 args: list[str], shown: list[str]) -> None:
    check(cli("--color", colour, *args), *shown)


@pytest.mark.parametrize("colour", ["never", "always"])
def test_staging_commands_escape_user_strings(cli: Run, nasty: Path, colour: str) -> None:
    check(cli("--color", colour, "create", TYPE, f"{FIELD}={json.dumps(VALUE)}"))
    check(cli("--color", colour, "set", "2", FIELD, "-s", VALUE))
    check(cli("--color", colour, "map", "set", "2", "m", KEY, "-s", VALUE))
    check(cli("--color", colour, "status"), "create 3 T" + ESCAPED, "2.f" + ESCAPED,
          '"v<\\u001b[2J')
    check(cli("--color", colour, "commit", LABEL), "L" + ESCAPED)


@pytest.mark.parametrize(("args", "shown"), [
    (["get", "2", "no" + NASTY], ["no" + ESCAPED]),  # error quoting a field name
    (["get", "1", "x"], ["T" + ESCAPED]),  # error naming the node's type
    (["show", "2", "--at", "HEAD~" + NASTY], []),
    (["ls", "--type", TYPE[:-1] + "?"], ["T<\\x1b[2J"]),
    (["unset", "2", "no" + NASTY], ["no" + ESCAPED]),
    (["list", "append", "2", "m", "1", "--in", KEY], []),
    (["show", "1", "-f", "missing" + NASTY + ".myo"], ["missing" + ESCAPED]),
])
def test_errors_quoting_user_input_are_escaped(cli: Run, nasty: Path, args: list[str],
                                               shown: list[str]) -> None:
    r = RUNNER.invoke(app, ["-f", "n.myo", *args])
    assert r.exit_code != 0 or args[0] == "ls"
    check(r, *shown)


def test_paths_are_escaped_by_init_stats_fsck_and_compact(cli: Run, tmp_path: Path) -> None:
    name = "s" + NASTY.replace("\x00", "") + ".myo"  # a file name cannot hold NUL
    shown = "s" + ESCAPED.replace("\\x00", "") + ".myo"
    check(cli("init", name), shown)
    check(cli("-f", name, "create", "A"))
    check(cli("-f", name, "status"), shown)
    check(cli("-f", name, "commit", "one"))
    check(cli("-f", name, "stats"), shown)
    check(cli("-f", name, "fsck"), shown)
    check(cli("-f", name, "compact"), shown)


@pytest.mark.parametrize("args", [["history", "--json"], ["show", "2", "--json"],
                                  ["ls", "--json"], ["log", "2", "--json"],
                                  ["diff", "0", "2", "--json"], ["get", "2", "m", "--json"]])
def test_json_output_escapes_them_as_json_and_reads_back_exactly(
        cli: Run, nasty: Path, args: list[str]) -> None:
    r = cli(*args)
    check(r)
    found = strings(json.loads(r.stdout))
    assert found & {LABEL, TYPE, FIELD, KEY, VALUE, "changed" + NASTY}, found


def strings(doc: Any) -> set[str]:
    """Every string (keys too) inside a JSON document."""
    if isinstance(doc, str):
        return {doc}
    if isinstance(doc, list):
        return set().union(*(strings(x) for x in doc))
    if isinstance(doc, dict):
        return set(doc).union(*(strings(x) for x in doc.values()))
    return set()


def test_status_json_reads_back_the_staged_strings_exactly(cli: Run, nasty: Path) -> None:
    cli("create", TYPE, f"{FIELD}={json.dumps(VALUE)}")
    r = cli("status", "--json")
    check(r)
    op: dict[str, Any] = json.loads(r.stdout)["changes"][0]
    assert op["type"] == TYPE and op["fields"] == {FIELD: VALUE}


def test_get_prints_a_string_as_text_keeping_only_newlines_and_tabs(
        cli: Run, tmp_path: Path) -> None:
    with Memory.open(tmp_path / "t.myo") as mem:
        mem.create("A", note="line 1\n\tline 2\x1b[2J\r\u202e")
        mem.commit()
    r = cli("-f", "t.myo", "get", "1", "note")
    assert r.stdout == "line 1\n\tline 2\\x1b[2J\\r\\u202e\n"
