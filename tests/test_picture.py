"""``graph()``: Graphviz DOT text that parses, shows exactly what is stored (quotes,
backslashes, newlines, HTML and control characters escaped), is deterministic,
and SVG through a ``dot`` program on PATH (a fake one here) or a clear error.

The DOT reader below follows Graphviz's own lexer for quoted strings (scan.l:
``\\"`` is a quote, ``\\\\`` stays two characters, anything else is kept) and
then its label escapes (``\\l``/``\\n`` end a line, ``\\\\`` is a backslash), so
a label that decodes to the expected text is one Graphviz would draw as such.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

import pytest
from model import FixedClock

from myosotis import InvalidArgumentError, Memory, MissingProgramError, MyosotisError, RenderError

# --------------------------------------------------------------------------
# a small reader of the DOT we write

_TOKEN = re.compile(r'\s*(?:(->)|([{}\[\];=,])|([A-Za-z_][A-Za-z_0-9]*|[0-9]+)|("))')


def tokens(text: str) -> list[tuple[str, str]]:
    out, i = [], 0
    while True:
        m = _TOKEN.match(text, i)
        if m is None:
            assert text[i:].strip() == "", f"cannot read DOT at {text[i:i + 40]!r}"
            return out
        i = m.end()
        if m.group(1) or m.group(2):
            out.append(("op", m.group(1) or m.group(2)))
        elif m.group(3):
            out.append(("id", m.group(3)))
        else:  # a quoted string, as Graphviz's lexer reads it
            buf = []
            while text[i] != '"':
                if text[i] == "\\" and text[i + 1] == '"':
                    buf.append('"')
                    i += 2
                elif text[i] == "\\" and text[i + 1] == "\\":
                    buf.append("\\\\")
                    i += 2
                else:
                    assert text[i] != "\n", "a raw newline inside a DOT string"
                    buf.append(text[i])
                    i += 1
            i += 1
            out.append(("str", "".join(buf)))


def label_lines(s: str) -> list[str]:
    """A label's escString as the lines Graphviz draws."""
    lines, cur, i = [], [], 0
    while i < len(s):
        if s[i] == "\\":
            nxt = s[i + 1]
            if nxt in "lnr":
                lines.append("".join(cur))
                cur = []
            else:
                assert nxt == "\\", f"unexpected label escape \\{nxt}"
                cur.append("\\")
            i += 2
        else:
            cur.append(s[i])
            i += 1
    if cur:
        lines.append("".join(cur))
    return lines


def parse(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str, dict[str, str]]]]:
    """``(nodes, edges)`` of a digraph; fails on anything else."""
    toks = tokens(text)
    assert toks[:3] == [("id", "digraph"), ("id", "myosotis"), ("op", "{")]
    assert toks[-1] == ("op", "}")
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str, dict[str, str]]] = []
    i = 3

    def attrs(j: int) -> tuple[dict[str, str], int]:
        assert toks[j] == ("op", "[")
        d, j = {}, j + 1
        while toks[j] != ("op", "]"):
            key, eq, val = toks[j], toks[j + 1], toks[j + 2]
            assert key[0] == "id" and eq == ("op", "=") and val[0] in ("id", "str")
            d[key[1]] = val[1]
            j += 3
            if toks[j] == ("op", ","):
                j += 1
        return d, j + 1

    while i < len(toks) - 1:
        kind, name = toks[i]
        assert kind == "id"
        if toks[i + 1] == ("op", "->"):
            target = toks[i + 2]
            assert target[0] == "id"
            a, i = attrs(i + 3)
            edges.append((name, target[1], a))
        else:
            a, i = attrs(i + 1)
            if name not in ("node", "edge"):
                assert name not in nodes, f"node {name} twice"
                nodes[name] = a
        assert toks[i] == ("op", ";")
        i += 1
    return nodes, edges


# --------------------------------------------------------------------------


@pytest.fixture
def mem(mem_path: str, clock: FixedClock) -> Memory:
    m = Memory.open(mem_path, clock=clock)
    yield m  # type: ignore[misc]
    m.close()


NASTY = 'a"b\\c\nd<script>\\l\x1b[31m'  # repr under the 40-character cut


def test_dot_parses_and_shows_nodes_fields_and_edge_paths(mem: Memory) -> None:
    a = mem.create("Agent", name="Iris", age=3)
    t = mem.create("Task", owner=a, tags={"main": a}, title="x")
    a.tasks = [t]
    mem.commit()
    nodes, edges = parse(mem.graph(a))
    assert set(nodes) == {"n1", "n2"}
    assert label_lines(nodes["n1"]["label"]) == ["#1 Agent", "age = 3", "name = 'Iris'"]
    assert label_lines(nodes["n2"]["label"]) == ["#2 Task", "title = 'x'"]
    assert sorted((s, d, e["label"]) for s, d, e in edges) == [
        ("n1", "n2", "tasks[0]"), ("n2", "n1", "owner"), ("n2", "n1", "tags['main']")]
    only = parse(mem.graph(a, fields=["name", "missing"]))[0]
    assert label_lines(only["n1"]["label"]) == ["#1 Agent", "name = 'Iris'"]


def test_user_text_is_escaped_everywhere(mem: Memory) -> None:
    a = mem.create('Ty"pe\nX', **{'fi"eld': NASTY})
    b = mem.create("B", **{'li"nk': {'k"]': a}})
    mem.commit()
    text = mem.graph(b)
    nodes, edges = parse(text)  # nothing the user stored broke the syntax
    assert set(nodes) == {"n1", "n2"}
    lines = label_lines(nodes["n1"]["label"])
    assert lines[0] == '#1 Ty"pe\\x0aX'  # the newline in the type is shown, not obeyed
    assert lines[1] == "fi\"eld = " + repr(NASTY)  # the value's repr, exactly
    assert len(lines) == 2  # the value's newline did not start a line
    assert edges == [("n2", "n1", {"label": "li\"nk['k\"]']"})]
    assert "\x1b" not in text
    assert "label=<" not in text  # never an HTML label: <script> is only text in a string


def test_tombstones_are_dashed_and_everything_is_drawn_without_nodes(mem: Memory) -> None:
    a = mem.create("A")
    b = mem.create("B", to=a)
    mem.commit()
    a.delete()
    mem.commit()
    nodes, edges = parse(mem.graph())
    assert nodes["n1"]["style"] == "dashed" and "(deleted)" in nodes["n1"]["label"]
    assert "style" not in nodes["n2"]
    assert edges == [("n2", "n1", {"label": "to"})]
    past = parse(mem.graph(at=1))[0]  # before the delete
    assert "style" not in past["n1"]
    assert parse(mem.graph(b, depth=0))[1] == []  # edges only between drawn nodes


def test_output_is_deterministic_and_bounded(tmp_path: Path) -> None:
    def build(name: str) -> str:
        with Memory.open(str(tmp_path / name), clock=FixedClock()) as m:
            hub = m.create("Hub")
            hub.spokes = [m.create("S", n=i) for i in range(30)]
            m.commit()
            first = m.graph(hub, max_nodes=10)
            assert m.graph(hub, max_nodes=10) == first
            return first

    text = build("one.myo")
    assert text == build("two.myo")
    nodes, _ = parse(text)
    assert len(nodes) == 11  # 10 drawn and the note
    assert label_lines(nodes["more"]["label"]) == ["… 21 more nodes not drawn"]


def test_bad_arguments(mem: Memory) -> None:
    a = mem.create("A")
    mem.commit()
    with pytest.raises(InvalidArgumentError):
        mem.graph(a, format="png")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        mem.graph(a, max_nodes=0)
    with pytest.raises(InvalidArgumentError):
        mem.graph(a, depth=-2)


def _fake_dot(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir()
    script = bin_dir / "dot"
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_svg_runs_dot_from_path(mem: Memory, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    a = mem.create("A", s="<b>")
    mem.commit()
    seen = tmp_path / "seen.dot"
    _fake_dot(tmp_path / "bin", f"""import sys
data = sys.stdin.read()
open({str(seen)!r}, "w").write(" ".join(sys.argv[1:]) + "\\n" + data)
print("<svg>%d</svg>" % len(data))
""")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    svg = mem.graph(a, format="svg")
    dot = mem.graph(a)
    assert svg.strip() == f"<svg>{len(dot)}</svg>"
    assert seen.read_text() == "-Tsvg\n" + dot


def test_svg_without_dot_names_the_missing_program(mem: Memory,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a = mem.create("A")
    mem.commit()
    monkeypatch.setenv("PATH", "")
    with pytest.raises(MissingProgramError, match=r"`dot`.*not on PATH") as e:
        mem.graph(a, format="svg")
    assert isinstance(e.value, MyosotisError)


def test_a_failing_dot_is_a_render_error(mem: Memory, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    a = mem.create("A")
    mem.commit()
    _fake_dot(tmp_path / "bin", "import sys\nsys.stderr.write('Error: syntax\\n')\n"
                                "sys.exit(3)\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ["PATH"])
    with pytest.raises(RenderError, match="status 3: Error: syntax"):
        mem.graph(a, format="svg")
