"""Pictures of the graph: Graphviz DOT text of a subgraph, and SVG through ``dot``.

The DOT text is deterministic (nodes in id order, edges in the traversal's
order: fields by name, lists by index, maps by key) so two runs over the same
state give the same bytes. Every piece of user text (types, field names,
values, map keys in edge labels) goes into a double-quoted DOT string through
:func:`dot_string`, which escapes what DOT or its label syntax would read
(``"`` and ``\\``) and shows control characters as visible escapes; nothing a
user stored can end a string, add an attribute or become an HTML label.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import TYPE_CHECKING, Literal

from myosotis.api.explore import Starts, check_depth, start_ids
from myosotis.engine import traverse
from myosotis.engine.graph import NodeState
from myosotis.errors import InvalidArgumentError, MissingProgramError, RenderError
from myosotis.format.display import clip, short_repr
from myosotis.format.values import Ref

if TYPE_CHECKING:
    from myosotis.api.view import Reader

GraphFormat = Literal["dot", "svg"]

MAX_NODES = 500
"""Default bound on the nodes drawn; more are counted in a note, not drawn."""

_FIELD_LINES = 8  # value lines per node label when ``fields`` is not given
_VALUE_WIDTH = 40


def _visible(text: str) -> str:
    """Control and other non-printable characters as ``\\xNN``/``\\uNNNN`` escapes."""
    if text.isprintable():
        return text
    out = []
    for c in text:
        if c.isprintable():
            out.append(c)
        else:
            cp = ord(c)
            out.append(f"\\x{cp:02x}" if cp < 0x100 else
                       f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}")
    return "".join(out)


def dot_string(text: str) -> str:
    """``text`` as a DOT double-quoted string showing exactly ``text`` (made visible
    by :func:`_visible`): backslashes doubled (label escapes like ``\\n`` are not
    read), quotes escaped."""
    return '"' + _visible(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(lines: list[str]) -> str:
    # each line escaped on its own, then joined with DOT's left-justified line break
    body = "\\l".join(dot_string(line)[1:-1] for line in lines)
    return f'"{body}\\l"'


def path_text(path: traverse.EdgePath) -> str:
    """``field[1]["key"]``: an edge's path as text (keys quoted as JSON-like strings)."""
    out = [str(path[0])]
    for step in path[1:]:
        out.append(f"[{step}]" if type(step) is int else f"[{short_repr(step, 40)}]")
    return "".join(out)


def _has_ref(v: object) -> bool:
    if type(v) is Ref:
        return True
    if type(v) is list:
        return any(_has_ref(x) for x in v)
    if type(v) is dict:
        return any(_has_ref(x) for x in v.values())
    return False


def _node_lines(node_id: int, n: NodeState, fields: Iterable[str] | None) -> list[str]:
    head = f"#{node_id} {clip(n.type, 60)}" + (" (deleted)" if n.deleted else "")
    lines = [head]
    if fields is None:  # the fields that are not references (those are edges), bounded
        names = [k for k in sorted(n.fields) if not _has_ref(n.fields[k])]
        shown = names[:_FIELD_LINES]
    else:
        names = shown = [k for k in fields if k in n.fields]
    for k in shown:
        lines.append(f"{clip(k, 40)} = {short_repr(n.fields[k], _VALUE_WIDTH)}")
    if len(names) > len(shown):
        lines.append(f"… {len(names) - len(shown)} more fields")
    return lines


def _chosen(reader: Reader, nodes: Starts | None, depth: int | None,
            max_nodes: int) -> tuple[list[int], int]:
    """The ids to draw (sorted) and how many more there were beyond ``max_nodes``."""
    state = reader._read_state()
    if nodes is None:
        every = (n.id for n in reader.nodes(deleted=True))
        ids = list(islice(every, max_nodes))
        return ids, sum(1 for _ in every)
    steps = traverse.bfs(state, start_ids(reader, nodes), depth, None)
    ids = [s[0] for s in islice(steps, max_nodes)]
    return sorted(ids), sum(1 for _ in steps)


def to_dot(reader: Reader, nodes: Starts | None, depth: int | None,
           fields: Iterable[str] | None, max_nodes: int = MAX_NODES) -> str:
    """See :meth:`Reader.graph` (the DOT text)."""
    check_depth(depth)
    if type(max_nodes) is not int or max_nodes < 1:
        raise InvalidArgumentError(
            f"max_nodes must be an int >= 1, not {short_repr(max_nodes, 40)}")
    if isinstance(fields, str):
        fields = [fields]
    chosen = None if fields is None else list(fields)
    ids, more = _chosen(reader, nodes, depth, max_nodes)
    state = reader._read_state()
    drawn = set(ids)
    out = ["digraph myosotis {",
           '  node [shape=box, fontname="monospace", fontsize=10];',
           '  edge [fontname="monospace", fontsize=9];']
    edge_lines = []
    for node_id in ids:
        n = state.get(node_id)
        assert n is not None  # chosen from this state
        style = ', style=dashed, color="gray50", fontcolor="gray50"' if n.deleted else ""
        out.append(f"  n{node_id} [label={_label(_node_lines(node_id, n, chosen))}{style}];")
        for path, target in traverse.edges(n):
            if target in drawn:
                edge_lines.append(f"  n{node_id} -> n{target} "
                                  f"[label={dot_string(path_text(path))}];")
    out += edge_lines
    if more:
        out.append(f'  more [shape=plaintext, label="… {more} more nodes not drawn"];')
    out.append("}")
    return "\n".join(out) + "\n"


def render_svg(dot_text: str, timeout: float = 120.0) -> str:
    """SVG from DOT text through the Graphviz program ``dot`` found on ``PATH``.

    Raises MissingProgramError when there is no ``dot`` on PATH, RenderError
    when it fails (its first line of stderr is in the message).
    """
    import shutil  # with subprocess, a cost only SVG output pays (tests/test_import_cost.py)
    import subprocess

    program = shutil.which("dot")
    if program is None:
        raise MissingProgramError(
            "rendering SVG needs the Graphviz program `dot`, which is not on PATH; install "
            "Graphviz (e.g. `apt install graphviz`), or ask for the DOT text instead "
            "(format='dot'; `myo graph --format dot`)")
    try:
        done = subprocess.run([program, "-Tsvg"], input=dot_text.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RenderError(f"running {program} failed: {e}") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"{program} -Tsvg exited with status {done.returncode}"
                          + (f": {clip(why[0], 200)}" if why else ""))
    return done.stdout.decode("utf-8", "replace")
