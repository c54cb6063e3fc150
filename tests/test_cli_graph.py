"""``myo walk``, ``myo graph``, ``myo history --since/--until/--label/--at``,
``myo stats --at``, commit names on the command line, and the pager (only on a
terminal, never in a pipe)."""

from __future__ import annotations

import io
import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from cliutil import Run
from model import FixedClock
from typer.testing import Result

from myosotis import Memory
from myosotis.cli import pager


def one_error_line(r: Result) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("myo: error: ") and "Traceback" not in r.output
    return lines[0]


@pytest.fixture
def graph_file(tmp_path: Path) -> Path:
    """state.myo: 1 Agent -> 2 Task (tasks[0]) -> 3 Note (notes["a"]); 4 loose, deleted
    at commit 2; commit labels "setup" and "cleanup"."""
    path = tmp_path / "state.myo"
    with Memory.open(str(path), clock=FixedClock()) as mem:
        agent = mem.create("Agent", name="Iris")
        task = mem.create("Task", title='say "hi" <b>')
        note = mem.create("Note")
        loose = mem.create("Loose")
        agent.tasks = [task]
        task.notes = {"a": note}
        mem.commit("setup")
        loose.delete()
        task.back = agent
        mem.commit("cleanup")
    return path


def doc(r: Result) -> Any:
    return json.loads(r.stdout)


def test_walk_json_lists_nodes_breadth_first_with_their_paths(cli: Run, graph_file: Path) -> None:
    d = doc(cli("walk", "1", "--json"))
    assert [(n["id"], n["depth"], n["parent"], n["via"]) for n in d["nodes"]] == [
        (1, 0, None, []), (2, 1, 1, ["tasks", 0]), (3, 2, 2, ["notes", "a"])]
    assert d["start"] == 1 and d["truncated"] is False and d["at"]["seq"] == 2
    assert [n["id"] for n in doc(cli("walk", "@1", "--depth", "1", "--json"))["nodes"]] == [1, 2]
    assert [n["id"] for n in doc(cli("walk", "2", "--follow", "back", "--json"))["nodes"]] == \
        [2, 1]
    limited = doc(cli("walk", "1", "-n", "2", "--json"))
    assert len(limited["nodes"]) == 2 and limited["truncated"] is True
    assert [n["id"] for n in doc(cli("walk", "2", "--at", "1", "--json"))["nodes"]] == [2, 3]


def test_walk_human_output(cli: Run, graph_file: Path) -> None:
    text = cli("walk", "1").stdout
    assert "walk from @1 at #2" in text
    assert "(start)" in text and '@2 notes["a"]' in text
    assert "stopped after 1 nodes" in cli("walk", "1", "--limit", "1").stdout


def test_walk_errors_are_one_line(cli: Run, graph_file: Path) -> None:
    assert "no node 9" in one_error_line(cli("walk", "9", code=1))
    assert "no commit 7" in one_error_line(cli("walk", "1", "--at", "7", code=1))


def test_orphans_lists_live_nodes_no_root_reaches(cli: Run, graph_file: Path) -> None:
    assert doc(cli("orphans", "1", "--json"))["orphans"] == []  # 4 is deleted
    d = doc(cli("orphans", "1", "--at", "1", "--json"))
    assert d["orphans"] == [{"id": 4, "type": "Loose"}] and d["count"] == 1
    cut = doc(cli("orphans", "3", "-n", "1", "--json"))
    assert cut["at"]["seq"] == 2 and cut["roots"] == [3]
    assert cut["count"] == 2 and cut["orphans"] == [{"id": 1, "type": "Agent"}]  # 1 and 2
    assert "every live node is reachable" in cli("orphans", "1").stdout
    text = cli("orphans", "3", "--limit", "1").stdout
    assert "2 orphans at #2" in text and "--limit 0" in text


def test_graph_prints_dot_writes_files_and_json(cli: Run, graph_file: Path,
                                                tmp_path: Path) -> None:
    dot = cli("graph", "1", "--depth", "2").stdout
    assert dot.startswith("digraph myosotis {") and dot.endswith("}\n")
    assert 'n1 -> n2 [label="tasks[0]"];' in dot
    assert '\\"hi\\" <b>' in dot  # the quote escaped inside the label
    assert "n4" not in dot  # not reached from 1
    everything = cli("graph", "--field", "name").stdout
    assert "n4 [" in everything and "style=dashed" in everything
    r = cli("graph", "1", "-o", "g.dot", "--json")
    assert doc(r) == {"at": doc(r)["at"], "format": "dot", "output": "g.dot", "text": None}
    assert (tmp_path / "g.dot").read_text() == cli("graph", "1").stdout
    assert "wrote g2.dot" in cli("graph", "1", "-o", "g2.dot").stdout
    past = doc(cli("graph", "2", "--at", "1", "--json"))
    assert past["at"]["seq"] == 1 and "back" not in past["text"]


def test_graph_svg_needs_dot(cli: Run, graph_file: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    line = one_error_line(cli("graph", "1", "--format", "svg", code=1))
    assert "`dot`" in line and "--format dot" in line
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dot"
    fake.write_text(f"#!{sys.executable}\nimport sys\nsys.stdin.read()\nprint('<svg/>')\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert cli("graph", "1", "--format", "svg").stdout == "<svg/>\n"


def test_history_filters(cli: Run, graph_file: Path) -> None:
    def seqs(*args: str) -> list[int]:
        return [c["seq"] for c in doc(cli("history", "--json", *args))["commits"]]

    assert seqs() == [2, 1]
    assert seqs("--label", "^clean") == [2]
    assert seqs("--since", "2") == [2]
    assert seqs("--until", "1") == [1]
    assert seqs("--at", "1") == [1]
    with Memory.open(str(graph_file), readonly=True) as mem:
        t1 = mem.commit_info(1).timestamp
    assert t1 is not None
    assert seqs("--until", t1.isoformat()) == [1]
    assert seqs("--since", t1.isoformat()) == [2, 1]
    assert seqs("--since", "1970-01-01") == [2, 1]
    assert seqs("--until", "1970-01-01") == []
    assert "no commits match" in cli("history", "--label", "nothing").stdout
    assert "--at and --until" in one_error_line(cli("history", "--at", "1", "--until", "1",
                                                    code=2))


def test_stats_at_counts_the_nodes_of_that_commit(cli: Run, graph_file: Path) -> None:
    now, then = doc(cli("stats", "--json")), doc(cli("stats", "--at", "1", "--json"))
    assert now["nodes"] == {"live": 3, "deleted": 1, "total": 4} and "nodes_at" not in now
    assert then["nodes"] == {"live": 4, "deleted": 0, "total": 4}
    assert then["nodes_at"]["seq"] == 1


def test_commit_names_on_the_command_line(cli: Run, graph_file: Path) -> None:
    with Memory.open(str(graph_file), readonly=True) as mem:
        cid = mem.commit_info(1).id
    assert doc(cli("show", "1", "--at", f"id:{cid[:8]}", "--json"))["at"]["seq"] == 1
    assert doc(cli("show", "1", "--at", "seq:1", "--json"))["at"]["seq"] == 1
    assert "seq:N" in one_error_line(cli("show", "1", "--at", "nonsense", code=1))


def test_show_cuts_long_values_and_get_prints_them_whole(cli: Run, tmp_path: Path) -> None:
    with Memory.open(str(tmp_path / "big.myo")) as mem:
        mem.create("Big", s="x" * 10_000_000)
        mem.commit()
    text = cli("show", "1").stdout
    assert len(text) < 2_000 and "9,999,702 more characters" in text
    assert "`myo get NODE s` prints all" in text
    assert len(cli("get", "1", "s").stdout) == 10_000_001


# --------------------------------------------------------------------------
# the pager


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _capture_pager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    seen = tmp_path / "paged.txt"
    script = tmp_path / "pager.py"
    script.write_text(f"import sys\nopen({str(seen)!r}, 'w').write(sys.stdin.read())\n")
    monkeypatch.setenv("MYO_PAGER", f"{sys.executable} {script}")
    return seen


def test_long_output_on_a_terminal_goes_through_the_pager(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    seen = _capture_pager(tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "stdout", _Tty())
    monkeypatch.setenv("LINES", "10")
    pager.page([f"line {i}" for i in range(50)])
    assert seen.read_text() == "".join(f"line {i}\n" for i in range(50))
    assert sys.stdout.getvalue() == ""


def test_short_output_piped_output_and_cat_are_printed_directly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = _capture_pager(tmp_path, monkeypatch)
    monkeypatch.setenv("LINES", "10")
    pager.page([f"line {i}" for i in range(50)])  # stdout is captured: not a terminal
    assert not seen.exists()
    assert capsys.readouterr().out.count("line") == 50
    tty = _Tty()
    monkeypatch.setattr(sys, "stdout", tty)
    pager.page(["one", "two"])  # fits the screen
    monkeypatch.setenv("MYO_PAGER", "cat")
    pager.page([f"line {i}" for i in range(50)])
    assert not seen.exists()
    assert tty.getvalue().count("\n") == 52


def test_a_pager_that_is_not_installed_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _Tty()
    monkeypatch.setattr(sys, "stdout", tty)
    monkeypatch.setenv("LINES", "10")
    monkeypatch.setenv("MYO_PAGER", "no-such-pager-here --flag")
    pager.page([f"line {i}" for i in range(50)])
    assert tty.getvalue().count("line") == 50


def test_commands_in_a_pipe_never_page(cli: Run, graph_file: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture_pager(tmp_path, monkeypatch)
    monkeypatch.setenv("LINES", "3")
    assert "cleanup" in cli("history").stdout
    assert "(start)" in cli("walk", "1").stdout
    assert "diff" in cli("diff", "0", "HEAD").stdout
    assert "#1 " in cli("log", "1").stdout
    assert not seen.exists()
