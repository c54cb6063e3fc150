"""HTML for notebooks (``_repr_html_``) of nodes, memories and views.

Jupyter and its kin call ``_repr_html_`` to draw an object. Every table here
is bounded: at most ``HTML_ROWS`` rows (the rest counted), every value cut to
``HTML_CELL`` characters, and every piece of user text (types, field names,
values, labels, paths) HTML-escaped, so a stored ``<script>`` is shown, never
run.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING

from myosotis.engine.graph import NodeState
from myosotis.format.display import HTML_CELL, HTML_ROWS, clip, html_table, short_repr

if TYPE_CHECKING:
    from myosotis.api.view import Reader


def node_html(node_id: int, state: NodeState) -> str:
    """One node: a caption with id, type and tombstone, then a FIELD | VALUE table."""
    mark = " (deleted)" if state.deleted else ""
    names = sorted(state.fields)
    rows = [[clip(name, HTML_CELL), short_repr(state.fields[name], HTML_CELL)]
            for name in islice(names, HTML_ROWS)]
    return html_table(["field", "value"], rows,
                      caption=f"node {node_id} {clip(state.type, HTML_CELL)}{mark}",
                      more=max(0, len(names) - HTML_ROWS))


def _node_rows(reader: Reader) -> Iterator[tuple[list[str], str]]:
    # ids are dense (FORMAT.md R73): node by node, so a past state is read only as
    # far as the rows shown (Reader.nodes would materialise all of it)
    for node_id in range(1, reader.next_node_id):
        s = reader._node_state(node_id)
        fields = ", ".join(f"{clip(name, 40)}={short_repr(s.fields[name], 40)}"
                           for name in islice(sorted(s.fields), 8))
        if len(s.fields) > 8:
            fields += f", …(+{len(s.fields) - 8} fields)"
        yield ([str(node_id), clip(s.type, 60), "yes" if s.deleted else "",
                clip(fields, HTML_CELL)], "deleted" if s.deleted else "")


def nodes_html(reader: Reader, caption: str) -> str:
    """The first ``HTML_ROWS`` nodes of ``reader`` in id order, tombstones included
    and struck through, and how many more there are. Reads only the nodes shown."""
    shown = list(islice(_node_rows(reader), HTML_ROWS))
    total = reader.next_node_id - 1
    return html_table(["id", "type", "deleted", "fields"], [r for r, _ in shown],
                      caption=caption, more=max(0, total - len(shown)),
                      row_classes=[c for _, c in shown])
