"""Bounded text and HTML for stored values: what ``repr``, error messages and
notebooks show.

A stored string may be 16 MiB (FORMAT.md §11) and a list 16 M items, so a
``repr`` that prints a value whole can print megabytes. Everything here has a
budget of characters and stops building as soon as it is spent: the cost is
O(budget), never O(value). It lives in the lowest layer so that the engine's
``Commit`` and the api's handles and errors share one definition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

REPR_LIMIT = 200
"""Default budget of a bounded repr, in characters (the mark of what was left out
comes on top)."""


def clip(text: str, limit: int = REPR_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with ``…(+N chars)`` saying how many
    were dropped."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit} chars)"


def short_repr(value: Any, limit: int = REPR_LIMIT) -> str:
    """A ``repr`` of ``value`` of at most about ``limit`` characters.

    Strings are cut (``'abc'…(+N chars)``), lists and dicts stop after the items
    that fit (``…(+N more)``); other objects use their own ``repr``, cut. Never
    raises for a value that has a repr.
    """
    out: list[str] = []
    _put(value, out, [max(limit, 8)])
    return "".join(out)


def _put(value: Any, out: list[str], budget: list[int]) -> None:
    """Append the repr of ``value`` to ``out``, spending ``budget[0]`` characters."""
    t = type(value)
    if t is str:
        room = max(budget[0], 4)
        text = repr(value[:room])
        if len(value) > room:
            text += f"…(+{len(value) - room} chars)"
        budget[0] -= min(len(text), room + 2)
        out.append(text)
    elif t is list or t is tuple:
        close = "]" if t is list else ")"
        out.append("[" if t is list else "(")
        _put_items(value, len(value), out, budget, lambda x: _put(x, out, budget))
        out.append(close)
    elif t is dict:
        out.append("{")
        _put_items(value.items(), len(value), out, budget,
                   lambda kv: _put_pair(kv, out, budget))
        out.append("}")
    elif t is int and value.bit_length() > 256:
        # repr would be long, or refused (sys.set_int_max_str_digits): its size says enough
        text = f"<int of {value.bit_length()} bits>"
        budget[0] -= len(text)
        out.append(text)
    else:
        text = clip(repr(value), max(budget[0], 8))
        budget[0] -= len(text)
        out.append(text)


def _put_pair(kv: tuple[Any, Any], out: list[str], budget: list[int]) -> None:
    _put(kv[0], out, budget)
    out.append(": ")
    _put(kv[1], out, budget)


def _put_items(items: Iterable[Any], n: int, out: list[str], budget: list[int],
               put: Callable[[Any], None]) -> None:
    """Put items while budget is left (iterated lazily: a huge list is not copied)."""
    for i, x in enumerate(items):
        if budget[0] <= 0:
            out.append(f"{', ' if i else ''}…(+{n - i} more)")
            return
        if i:
            out.append(", ")
            budget[0] -= 2
        put(x)


# --------------------------------------------------------------------------
# HTML for notebooks (``_repr_html_``)

HTML_ROWS = 50
"""At most this many rows in one HTML table; the rest is counted, not shown."""

HTML_CELL = 120
"""At most this many characters of a value in one HTML cell."""


def esc(text: str) -> str:
    """``text`` escaped for HTML text and attribute values (quotes included)."""
    import html  # only notebooks need it; not a cost of `import myosotis`

    return html.escape(text, quote=True)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, caption: str = "",
               more: int = 0, row_classes: Sequence[str] | None = None) -> str:
    """An HTML table; every header, cell and the caption are plain text (escaped
    here); ``more`` rows that were not shown are counted in a last row;
    ``row_classes`` marks rows (e.g. ``"deleted"``, drawn struck through)."""
    parts = ["<table class=\"myosotis\">"]
    if caption:
        parts.append(f"<caption style=\"text-align:left\">{esc(caption)}</caption>")
    parts.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>")
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes is not None else ""
        attr = " style=\"text-decoration:line-through;color:#888\"" if cls == "deleted" else ""
        parts.append(f"<tr{attr}>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    if more:
        parts.append(f"<tr><td colspan=\"{len(headers)}\">… {more} more not shown</td></tr>")
    parts.append("</table>")
    return "".join(parts)
