"""A minimal reader of Myosotis format versions 1 to 4, written from FORMAT.md alone.

It deliberately imports nothing from ``myosotis``: its only dependencies are
the standard library and ``blake3``, and it carries its own CRC32C. The golden
vectors' ``.json`` and ``.hex`` files are produced by this reader from the
bytes the engine wrote, so a vector that regenerates cleanly is a statement
that the engine and this reading of the spec agree on every byte.

:func:`read_file` checks the rules of FORMAT.md (R1-R89, §10) and returns a
:class:`Dump`: a JSON-ready description of the file and a list of annotated
byte spans (for the hex dump). It raises :class:`SpecError` naming the rule a
file breaks. It is slow and simple on purpose; it is not meant for big files.

Values are given in a tagged JSON form that keeps every bit (FORMAT.md §5):

    null, true, false                  the scalars of the same name
    {"int": "-5"}                      integer, as a decimal string (exact)
    {"float": "7ff8000000000001"}      float, the 64 IEEE-754 bits as 16 hex digits,
                                       most significant first
    {"str": "text"}                    string
    {"ref": 3}                         reference to node 3
    {"list": [v, ...]}                 list
    {"map": [["key", v], ...]}         map, entries in stored (R40) order
"""

from __future__ import annotations

import copy
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blake3 import blake3

# --------------------------------------------------------------------------
# constants, each from the section named (FORMAT.md)

MAGIC = b"MYOSOTIS"  # §2
FORMAT_VERSION = 4  # §2, §12: versions 1 to 4 are read
FLAG_UNSYNCED = 1  # §3: bit 0 of a frame's flags byte (versions 2 to 4)
HEADER_SIZE = 32  # §2
FRAME_HEADER_SIZE = 16  # §3
MAX_PAYLOAD = 1 << 30  # §3, §11
KINDS = {1: "COMMIT", 2: "CHECKPOINT", 3: "GENESIS", 4: "ORIGIN", 5: "LAYER"}  # §4 (4: R34)
LAYER_BLOCK = 65536  # §8.7
LEVEL_FULL = 0xFFFFFFFF  # §8.7
TAG_NAMES = {0: "null", 1: "false", 2: "true", 3: "int", 4: "float", 5: "string",
             6: "reference", 7: "list", 8: "map"}  # §5
OPS = {1: "CREATE", 2: "SET", 3: "UNSET", 4: "DELETE", 5: "LIST_INSERT", 6: "LIST_REMOVE",
       7: "LIST_REPLACE", 8: "MAP_SET", 9: "MAP_DELETE", 10: "UNDELETE"}  # §6 (10: R54)
MAX_STRING = 1 << 24  # §11
MAX_FIELD_NAME = 1024
MAX_TYPE_NAME = 255
MAX_DEPTH = 64
MAX_ITEMS = 1 << 24
MAX_PATH = 64
MAX_NODE_ID = (1 << 63) - 1
ZERO_ID = bytes(32)


# --------------------------------------------------------------------------
# CRC32C (§1): reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC32C of ``data``, byte at a time (slow, obviously right)."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the check value of §1


# --------------------------------------------------------------------------
# results


class SpecError(Exception):
    """The file breaks ``rule`` (e.g. "R31") at file ``offset``."""

    def __init__(self, rule: str, offset: int, message: str) -> None:
        super().__init__(f"{rule} at offset {offset}: {message}")
        self.rule = rule
        self.offset = offset


@dataclass
class Span:
    """``length`` bytes at file ``offset`` and what they are."""

    offset: int
    length: int
    note: str


@dataclass
class Dump:
    """What :func:`read_file` found: ``data`` (JSON-ready), ``spans`` covering every
    byte of the file in order, and ``headings`` (offset -> title of the structure
    that starts there)."""

    data: dict[str, Any]
    spans: list[Span] = field(default_factory=list)
    headings: dict[int, str] = field(default_factory=dict)


# --------------------------------------------------------------------------
# primitive reads (§1) over one record


def _q(s: str, limit: int = 48) -> str:
    """A string quoted for a comment, shortened."""
    t = json.dumps(s, ensure_ascii=False)
    return t if len(t) <= limit else t[: limit - 4] + '..."'


class Cursor:
    """Reads one record ``data[pos:end]``; ``rule`` is what overrunning the end breaks."""

    def __init__(self, data: bytes, pos: int, end: int, spans: list[Span] | None,
                 rule: str) -> None:
        self.data, self.pos, self.end, self.spans, self.rule = data, pos, end, spans, rule

    def note(self, start: int, text: str) -> None:
        if self.spans is not None and self.pos > start:
            self.spans.append(Span(start, self.pos - start, text))

    def take(self, n: int) -> bytes:
        if n > self.end - self.pos:
            raise SpecError(self.rule, self.pos, "record ends in the middle of a field")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def u64(self, what: str) -> int:
        start = self.pos
        v: int = struct.unpack("<Q", self.take(8))[0]
        self.note(start, f"{what} = {v} (u64)")
        return v

    def i64(self, what: str) -> int:
        start = self.pos
        v: int = struct.unpack("<q", self.take(8))[0]
        self.note(start, f"{what} = {v} (i64)")
        return v

    def hash32(self, what: str) -> bytes:
        start = self.pos
        v = self.take(32)
        self.note(start, f"{what} = {v.hex()}")
        return v

    def _uvarint(self) -> int:
        start = self.pos
        result = 0
        for i in range(10):
            b = self.take(1)[0]
            if i == 9 and b > 1:
                raise SpecError("R2", start, "a uvarint's 10th byte is greater than 0x01")
            result |= (b & 0x7F) << (7 * i)
            if b < 0x80:
                if b == 0 and i > 0:
                    raise SpecError("R1", start, "a uvarint is not in its shortest form")
                return result
        raise AssertionError("unreachable: R2 stops a 10th byte with the high bit set")

    def uvarint(self, what: str) -> int:
        start = self.pos
        v = self._uvarint()
        self.note(start, f"{what} = {v} (uvarint)")
        return v

    def svarint(self, what: str) -> int:
        start = self.pos
        z = self._uvarint()
        v = (z >> 1) ^ -(z & 1)
        self.note(start, f"{what} = {v} (svarint, zig-zag {z})")
        return v

    def string(self, what: str, limit: int = MAX_STRING, min_len: int = 0) -> str:
        start = self.pos
        n = self._uvarint()
        self.note(start, f"{what}: length {n}")
        if n > limit or n < min_len:
            raise SpecError("§11", start, f"{what} of {n} bytes is outside 1..{limit}"
                            if min_len else f"{what} of {n} bytes exceeds {limit}")
        start = self.pos
        raw = self.take(n)
        try:
            s = raw.decode("utf-8")  # strict: no surrogates, no overlong forms
        except UnicodeDecodeError:
            raise SpecError("R3", start, f"{what} is not well-formed UTF-8") from None
        self.note(start, f"{what}: utf-8 {_q(s)}")
        return s

    def count(self, what: str, limit: int = MAX_ITEMS) -> int:
        start = self.pos
        n = self.uvarint(what)
        if n > self.end - self.pos:
            raise SpecError("R42", start, f"{what} {n} exceeds the bytes left in the record")
        if n > limit:
            raise SpecError("§11", start, f"{what} {n} exceeds {limit}")
        return n


# --------------------------------------------------------------------------
# values (§5)


def _key_bytes(k: str) -> bytes:
    return k.encode("utf-8")


def read_value(c: Cursor, what: str, level: int = 0) -> Any:
    """One value in tagged form; ``level`` = lists/maps enclosing it (R41)."""
    start = c.pos
    tag = c.take(1)[0]
    if tag not in TAG_NAMES:
        raise SpecError("§5", start, f"invalid value tag 0x{tag:02x}")
    c.note(start, f"{what}: tag 0x{tag:02x} {TAG_NAMES[tag]}")
    if tag == 0:
        return None
    if tag in (1, 2):
        return tag == 2
    if tag == 3:
        return {"int": str(c.svarint(f"{what}: int"))}
    if tag == 4:
        start = c.pos
        bits: int = struct.unpack("<Q", c.take(8))[0]
        x = struct.unpack("<d", struct.pack("<Q", bits))[0]
        c.note(start, f"{what}: float64 bits 0x{bits:016x} ({x!r})")
        return {"float": f"{bits:016x}"}
    if tag == 5:
        return {"str": c.string(f"{what}: string")}
    if tag == 6:
        start = c.pos
        rid = c.uvarint(f"{what}: node id")
        if not 1 <= rid <= MAX_NODE_ID:
            raise SpecError("§5", start, f"reference to node id {rid}")
        return {"ref": rid}
    if level >= MAX_DEPTH:  # this container would make the value deeper than MAX_DEPTH
        raise SpecError("R41", start, f"value nests deeper than {MAX_DEPTH}")
    if tag == 7:
        n = c.count(f"{what}: list count")
        return {"list": [read_value(c, f"{what}[{i}]", level + 1) for i in range(n)]}
    return {"map": read_entries(c, what, level + 1)}


def read_entries(c: Cursor, what: str, level: int, field_set: bool = False) -> list[list[Any]]:
    """A map body or a field set (§5): ``[[key, value], ...]`` in R40 order."""
    n = c.count(f"{what}: {'field' if field_set else 'entry'} count")
    out: list[list[Any]] = []
    prev: bytes | None = None
    for i in range(n):
        start = c.pos
        if field_set:
            key = c.string(f"{what}: field name #{i}", MAX_FIELD_NAME, 1)
        else:
            key = c.string(f"{what}: key #{i}")
        kb = _key_bytes(key)
        if prev is not None and kb <= prev:
            raise SpecError("R40", start, f"{what}: keys not strictly ascending")
        prev = kb
        sub = f"{what} field {_q(key, 24)}" if field_set else f"{what}[{_q(key, 24)}]"
        out.append([key, read_value(c, sub, level)])
    return out


def encode_uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_string(s: str) -> bytes:
    b = s.encode("utf-8")
    return encode_uvarint(len(b)) + b


def encode_value(v: Any) -> bytes:
    """The canonical bytes (§5) of a tagged value."""
    if v is None:
        return b"\x00"
    if v is False:
        return b"\x01"
    if v is True:
        return b"\x02"
    (tag, body), = v.items()
    if tag == "int":
        n = int(body)
        return b"\x03" + encode_uvarint(((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF)
    if tag == "float":
        return b"\x04" + struct.pack("<Q", int(body, 16))
    if tag == "str":
        return b"\x05" + encode_string(body)
    if tag == "ref":
        return b"\x06" + encode_uvarint(body)
    if tag == "list":
        return b"\x07" + encode_uvarint(len(body)) + b"".join(encode_value(x) for x in body)
    return b"\x08" + encode_entries(body)


def encode_entries(pairs: list[list[Any]]) -> bytes:
    return encode_uvarint(len(pairs)) + b"".join(
        encode_string(k) + encode_value(x) for k, x in pairs)


def depth(v: Any) -> int:
    """R41: a scalar 0, a list or map one more than its deepest element."""
    if isinstance(v, dict) and ("list" in v or "map" in v):
        items = v["list"] if "list" in v else [x for _, x in v["map"]]
        return 1 + max((depth(x) for x in items), default=0)
    return 0


def refs(v: Any) -> list[int]:
    """Every node id referenced inside ``v``."""
    if isinstance(v, dict):
        if "ref" in v:
            return [v["ref"]]
        if "list" in v:
            return [r for x in v["list"] for r in refs(x)]
        if "map" in v:
            return [r for _, x in v["map"] for r in refs(x)]
    return []


def _find(pairs: list[list[Any]], key: str) -> int | None:
    for i, (k, _) in enumerate(pairs):
        if k == key:
            return i
    return None


def _put(pairs: list[list[Any]], key: str, value: Any) -> None:
    """Set ``key`` keeping the R40 order."""
    kb = _key_bytes(key)
    for i, (k, _) in enumerate(pairs):
        if k == key:
            pairs[i][1] = value
            return
        if _key_bytes(k) > kb:
            pairs.insert(i, [key, value])
            return
    pairs.append([key, value])


# --------------------------------------------------------------------------
# mutations (§6) and the graph state


@dataclass
class State:
    """A graph state: node id -> {"type", "deleted", "fields": [[name, value], ...]}."""

    next_node_id: int = 1
    nodes: dict[int, dict[str, Any]] = field(default_factory=dict)

    def image(self) -> bytes:
        """The state image (§8.1)."""
        ids = sorted(self.nodes)
        records = [bytes((1 if self.nodes[i]["deleted"] else 0,))
                   + encode_string(self.nodes[i]["type"])
                   + encode_entries(self.nodes[i]["fields"]) for i in ids]
        offsets = [0]
        for r in records:
            offsets.append(offsets[-1] + len(r))
        return (struct.pack("<QQ", self.next_node_id, len(ids))
                + b"".join(struct.pack("<Q", i) for i in ids)
                + b"".join(struct.pack("<Q", o) for o in offsets) + b"".join(records))

    def hash(self) -> str:
        return blake3(self.image()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {"next_node_id": self.next_node_id,
                "nodes": [{"id": i, "type": n["type"], "deleted": n["deleted"],
                           "fields": n["fields"]} for i, n in sorted(self.nodes.items())],
                "state_hash": self.hash()}


def read_path(c: Cursor, what: str) -> list[dict[str, Any]]:
    start = c.pos
    n = c.uvarint(f"{what}: path length")
    if n > MAX_PATH:
        raise SpecError("§11", start, f"path of {n} steps exceeds {MAX_PATH}")
    steps: list[dict[str, Any]] = []
    for i in range(n):
        s = c.take(1)[0]
        c.note(c.pos - 1, f"{what}: path step {i} kind = 0x{s:02x}"
               + {0: " (list index)", 1: " (map key)"}.get(s, ""))
        if s == 0:
            steps.append({"index": c.uvarint(f"{what}: path step {i} index")})
        elif s == 1:
            steps.append({"key": c.string(f"{what}: path step {i} key")})
        else:
            raise SpecError("§6", c.pos - 1, f"invalid path step kind 0x{s:02x}")
    return steps


def read_mutation(c: Cursor, i: int) -> dict[str, Any]:
    """One mutation as ``{"op": NAME, ...operands}``."""
    what = f"mutation {i}"
    start = c.pos
    op = c.take(1)[0]
    if op not in OPS:
        raise SpecError("§6", start, f"invalid opcode 0x{op:02x}")
    c.note(start, f"{what}: op 0x{op:02x} {OPS[op]}")
    m: dict[str, Any] = {"op": OPS[op], "id": c.uvarint(f"{what}: node id")}
    if op == 1:
        m["type"] = c.string(f"{what}: type", MAX_TYPE_NAME, 1)
        m["fields"] = read_entries(c, what, 0, field_set=True)
        return m
    if op in (4, 10):
        return m
    m["field"] = c.string(f"{what}: field", MAX_FIELD_NAME, 1)
    if op == 2:
        m["value"] = read_value(c, f"{what} value")
    elif op >= 5:
        m["path"] = read_path(c, what)
        if op in (8, 9):
            m["key"] = c.string(f"{what}: key")
        else:
            m["index"] = c.uvarint(f"{what}: index")
        if op in (5, 7, 8):
            m["value"] = read_value(c, f"{what} value")
    return m


Fail = Callable[[str, str], SpecError]  # fail(rule, message): the error of one mutation
Mutation = Callable[[State, dict[str, Any], Any, Fail], None]


def apply(state: State, m: dict[str, Any], where: int) -> None:
    """Apply one mutation, checking R50-R53 and the MUSTs of §6; raises SpecError."""
    op, nid = m["op"], m["id"]

    def fail(rule: str, msg: str) -> SpecError:
        return SpecError(rule, where, f"{op} of node {nid}: {msg}")

    value = copy.deepcopy(m["value"] if "value" in m
                          else {"map": m["fields"]} if op == "CREATE" else None)
    # R51: a reference names a node that exists before this mutation, or, in the
    # fields of a CREATE, the node being created (its id is next_node_id: §6).
    limit = state.next_node_id + 1 if op == "CREATE" else state.next_node_id
    for r in refs(value):
        if not 1 <= r < limit:
            raise fail("R51", f"reference to node {r}, which does not exist")
    if op == "UNDELETE":  # R50: UNDELETE names a tombstoned node
        node = state.nodes.get(nid)
        if node is None or not node["deleted"]:
            raise fail("R50", "the node does not exist or is not tombstoned")
    elif op != "CREATE":  # R50: every other mutation but CREATE names a live node
        node = state.nodes.get(nid)
        if node is None or node["deleted"]:
            raise fail("R50", "the node does not exist or is tombstoned")
    MUTATIONS[op](state, m, value, fail)


# One function per opcode of §6. Each gets the state, the mutation, a private copy
# of its value (the field set, as a map, for CREATE; None if it has none), and
# ``fail``; R51 and R50 are checked already (apply).


def _create(state: State, m: dict[str, Any], value: Any, fail: Fail) -> None:
    """0x01 CREATE: a new node; ``id`` MUST equal next_node_id, which becomes id + 1."""
    nid = m["id"]
    if nid != state.next_node_id:
        raise fail("§6", f"CREATE id must be next_node_id {state.next_node_id}")
    state.nodes[nid] = {"type": m["type"], "deleted": False, "fields": value["map"]}
    state.next_node_id = nid + 1
    for _, v in value["map"]:
        if depth(v) > MAX_DEPTH:
            raise fail("R53", "a field nests deeper than MAX_DEPTH")


def _set(state: State, m: dict[str, Any], value: Any, fail: Fail) -> None:
    """0x02 SET: set the field (create or replace)."""
    fields = state.nodes[m["id"]]["fields"]
    _put(fields, m["field"], value)
    if len(fields) > MAX_ITEMS:
        raise fail("§11", "more than MAX_ITEMS fields")
    _check_field_depth(value, fail)


def _unset(state: State, m: dict[str, Any], value: Any, fail: Fail) -> None:
    """0x03 UNSET: remove the field; it MUST exist."""
    fields = state.nodes[m["id"]]["fields"]
    j = _find(fields, m["field"])
    if j is None:
        raise fail("§6", f"UNSET of missing field {m['field']!r}")
    del fields[j]


def _delete(state: State, m: dict[str, Any], value: Any, fail: Fail) -> None:
    """0x04 DELETE: set the node's tombstone (R50: it is not set yet)."""
    state.nodes[m["id"]]["deleted"] = True


def _undelete(state: State, m: dict[str, Any], value: Any, fail: Fail) -> None:
    """0x0A UNDELETE: clear the node's tombstone (R50: it is set); fields unchanged."""
    state.nodes[m["id"]]["deleted"] = False


def _list_insert(state: State, m: dict[str, Any], value: Any, fail: Fail) -> None:
    """0x05 LIST_INSERT: insert before ``index``; 0 <= index <= len."""
    entry, target = _path_target(state, m, fail)
    if not m["index"] <= len(target):
        raise fail("§6", f"insert index {m['index']} > length {len(target)}")
    target.insert(m["index"], value)
    _check_path_edit(entry, target, fail)


def _list_remove(state: State, m: dict[str, Any], value: Any, fail: Fail) -> None:
    """0x06 LIST_REMOVE: remove the element at ``index`` < len."""
    entry, target = _path_target(state, m, fail)
    if not m["index"] < len(target):
        raise fail("§6", f"index {m['index']} >= length {len(target)}")
    del target[m["index"]]
    _check_path_edit(entry, target, fail)


def _list_replace(state: State, m: dict[str, Any], value: Any, fail: Fail) -> None:
    """0x07 LIST_REPLACE: replace the element at ``index`` < len."""
    entry, target = _path_target(state, m, fail)
    if not m["index"] < len(target):
        raise fail("§6", f"index {m['index']} >= length {len(target)}")
    target[m["index"]] = value
    _check_path_edit(entry, target, fail)


def _map_set(state: State, m: dict[str, Any], value: Any, fail: Fail) -> None:
    """0x08 MAP_SET: set ``key`` in the map."""
    entry, target = _path_target(state, m, fail)
    _put(target, m["key"], value)
    _check_path_edit(entry, target, fail)


def _map_delete(state: State, m: dict[str, Any], value: Any, fail: Fail) -> None:
    """0x09 MAP_DELETE: remove ``key``; it MUST exist."""
    entry, target = _path_target(state, m, fail)
    k = _find(target, m["key"])
    if k is None:
        raise fail("§6", f"MAP_DELETE of missing key {m['key']!r}")
    del target[k]
    _check_path_edit(entry, target, fail)


MUTATIONS: dict[str, Mutation] = {  # §6: opcode (by its name in OPS) -> its effect
    "CREATE": _create, "SET": _set, "UNSET": _unset, "DELETE": _delete,
    "LIST_INSERT": _list_insert, "LIST_REMOVE": _list_remove,
    "LIST_REPLACE": _list_replace, "MAP_SET": _map_set, "MAP_DELETE": _map_delete,
    "UNDELETE": _undelete}
assert list(MUTATIONS) == list(OPS.values())


def _path_target(state: State, m: dict[str, Any], fail: Fail) -> tuple[list[Any], list[Any]]:
    """R52 for a LIST_* or MAP_* mutation: the ``[name, value]`` entry of the field it
    names, and the items of the list or map its path names inside that value."""
    fields = state.nodes[m["id"]]["fields"]
    j = _find(fields, m["field"])
    if j is None:
        raise fail("R52", f"no field {m['field']!r}")
    kind = "list" if m["op"].startswith("LIST") else "map"
    target = _container(fields[j][1], m["path"], kind)
    if target is None:
        raise fail("R52", f"the path {m['path']} does not name a {kind}")
    entry: list[Any] = fields[j]
    return entry, target


def _check_path_edit(entry: list[Any], target: list[Any], fail: Fail) -> None:
    """R53 after a LIST_* or MAP_* mutation: the container it changed holds at most
    MAX_ITEMS, and the field it changed is no deeper than MAX_DEPTH."""
    if len(target) > MAX_ITEMS:
        raise fail("R53", "a container exceeds MAX_ITEMS")
    _check_field_depth(entry[1], fail)


def _check_field_depth(v: Any, fail: Fail) -> None:
    """R53: after the mutation, the field value ``v`` still obeys R41."""
    if depth(v) > MAX_DEPTH:
        raise fail("R53", "the field nests deeper than MAX_DEPTH")

def _container(v: Any, path: list[dict[str, Any]], kind: str) -> list[Any] | None:
    """The items of the ``kind`` ("list" or "map") that ``path`` names inside the
    field value ``v``, or None if a step does not fit (R52)."""
    for step in path:
        if "index" in step and isinstance(v, dict) and "list" in v \
                and step["index"] < len(v["list"]):
            v = v["list"][step["index"]]
        elif "key" in step and isinstance(v, dict) and "map" in v \
                and (k := _find(v["map"], step["key"])) is not None:
            v = v["map"][k][1]
        else:
            return None
    if isinstance(v, dict) and kind in v:
        items: list[Any] = v[kind]
        return items
    return None


# --------------------------------------------------------------------------
# records (§7, §8)


def read_commit(c: Cursor) -> tuple[dict[str, Any], list[int]]:
    """The fields of a commit record (§7), mutations decoded but not applied, and
    the file offset of each mutation."""
    seq = c.u64("seq")
    ts = c.i64("timestamp_us")
    parent = c.hash32("parent")
    nxt = c.u64("next_node_id")
    label = c.string("label")
    n = c.count("mutation count", MAX_PAYLOAD)  # no limit of its own; R42 bounds it
    muts, where = [], []
    for i in range(n):
        where.append(c.pos)
        muts.append(read_mutation(c, i))
    if c.pos != c.end:
        raise SpecError("R61", c.pos, "bytes left after the last mutation")
    return {"seq": seq, "timestamp_us": ts, "parent": parent, "next_node_id": nxt,
            "label": label, "mutations": muts}, where


def read_image(c: Cursor, sparse: bool = False) -> State:
    """A state image (§8.1), checked against R70-R73 and decoded; ``sparse``: a layer's
    (§8.7: ids strictly ascending below next_node_id, R73 and R72 not applying)."""
    start = c.pos
    nxt = c.u64("image next_node_id")
    n = c.u64("image node_count")
    if n > (c.end - c.pos) // 16 or (n > nxt - 1 if sparse else n != nxt - 1):
        raise SpecError("R73", start, f"node_count {n} with next_node_id {nxt}")
    ids = [c.u64(f"ids[{i}]") for i in range(n)]
    offsets = [c.u64(f"offsets[{i}]") for i in range(n + 1)]
    data_at = c.pos
    if sparse:
        if any(a >= b for a, b in zip(ids, ids[1:], strict=False)) or \
                (ids and not 1 <= ids[0] <= ids[-1] < nxt):
            raise SpecError("R70", start, "layer ids are not strictly ascending below "
                            "next_node_id")
    elif ids != list(range(1, n + 1)):
        raise SpecError("R70", start, "ids are not 1..node_count")
    if offsets[0] != 0 or any(a > b for a, b in zip(offsets, offsets[1:], strict=False)) \
            or data_at + offsets[-1] != c.end:
        raise SpecError("R71", start, "offsets do not frame the data exactly")
    state = State(nxt)
    for i, node_id in enumerate(ids):
        rec = Cursor(c.data, data_at + offsets[i], data_at + offsets[i + 1], c.spans, "R71")
        flags = rec.take(1)[0]
        rec.note(rec.pos - 1, f"node {node_id} flags = 0x{flags:02x}"
                 + (" (tombstone)" if flags == 1 else ""))
        if flags & 0xFE:
            raise SpecError("§8.1", rec.pos - 1, "reserved node flag bits set")
        typ = rec.string(f"node {node_id} type", MAX_TYPE_NAME, 1)
        fields = read_entries(rec, f"node {node_id}", 0, field_set=True)
        if rec.pos != rec.end:
            raise SpecError("R71", rec.pos, f"node {node_id} record has trailing bytes")
        state.nodes[node_id] = {"type": typ, "deleted": bool(flags & 1), "fields": fields}
    c.pos = c.end
    if sparse:
        return state  # R72 holds for the stack (§8.7): read_layer_frame checks it
    for node in state.nodes.values():
        for r in (r for _, v in node["fields"] for r in refs(v)):
            if r not in state.nodes:
                raise SpecError("R72", start, f"reference to node {r}, not in the image")
    return state


def read_snapshot(c: Cursor, names: tuple[str, str]) -> tuple[int, bytes, bytes, State | None]:
    """A checkpoint (§8.2) or genesis (§8.3) record: seq, id, state hash and the
    decoded image, or ``None`` for the image when it fails its state hash."""
    seq = c.u64(names[0])
    cid = c.hash32(names[1])
    sh = c.hash32("state_hash")
    if blake3(c.data[c.pos:c.end]).digest() == sh:
        return seq, cid, sh, read_image(c)
    start, c.pos = c.pos, c.end
    c.note(start, "state image that does not match state_hash (not decoded)")
    return seq, cid, sh, None


# --------------------------------------------------------------------------
# frames (§3) and the walk (§10)


def _pad(n: int) -> int:
    return (8 - n % 8) % 8


def header_valid(data: bytes, o: int, allowed: int = 0) -> tuple[int, int] | None:
    """``(payload_length, kind)`` if the frame at ``o`` is header-valid (R20-R25);
    ``allowed``: the flag bits byte 5 may have (0 in version 1, R23)."""
    if o + FRAME_HEADER_SIZE > len(data):  # R20
        return None
    n, kind, reserved, _, hcrc = struct.unpack_from("<IB3sII", data, o)
    if (hcrc != crc32c(data[o:o + 12]) or kind not in KINDS or reserved[0] & ~allowed
            or reserved[1:] != b"\0\0" or n > MAX_PAYLOAD
            or o + 16 + n + _pad(n) > len(data)):  # R21-R25
        return None
    return n, kind


def payload_valid(data: bytes, o: int, n: int) -> bool:
    """R26 and R27 for a header-valid frame at ``o``."""
    pcrc = struct.unpack_from("<I", data, o + 8)[0]
    return (crc32c(data[o + 16:o + 16 + n]) == pcrc
            and not any(data[o + 16 + n:o + 16 + n + _pad(n)]))


def tearable(data: bytes, o: int, allowed: int = 0) -> bool:
    """R28: whether a write that stopped part way can leave the damaged frame at ``o``:
    it runs past the end of the file, or a 512-byte-aligned sector is all zero within
    it (within its 16 header bytes when the header is not header-valid). Never a
    GENESIS or ORIGIN frame (R85, R87)."""
    def zero_sector(a: int, b: int) -> bool:
        for sector in range(a // 512 * 512, b, 512):
            if not any(data[max(a, sector):min(b, sector + 512)]):
                return True
        return False

    if o + FRAME_HEADER_SIZE > len(data):
        return True
    n, kind, reserved, _, hcrc = struct.unpack_from("<IB3sII", data, o)
    if (hcrc != crc32c(data[o:o + 12]) or kind not in KINDS or reserved[0] & ~allowed
            or reserved[1:] != b"\0\0" or n > MAX_PAYLOAD):  # not header-valid (R21-R24)
        return zero_sector(o, o + FRAME_HEADER_SIZE)
    if kind in (3, 4):
        return False
    e = o + 16 + n + _pad(n)
    return e > len(data) or zero_sector(o, e)


def next_valid(data: bytes, p: int, allowed: int) -> int | None:
    """§10 step 3: the first 8-aligned q > p where a valid frame starts, payloads
    checked within a budget of 2 * (L - p) bytes (past it a header-valid candidate
    counts as valid); None if there is none."""
    budget = 2 * (len(data) - p)
    for q in range(p + 8, len(data), 8):
        h = header_valid(data, q, allowed)
        if h is None:
            continue
        if h[0] > budget or payload_valid(data, q, h[0]):
            return q
        budget -= h[0]
    return None


def only_unsynced_after(data: bytes, p: int, allowed: int) -> bool:
    """R29: whether every header-valid frame header (R21-R24) at an 8-aligned offset
    after ``p`` has the FLAG_UNSYNCED bit."""
    for q in range(p + 8, len(data) - FRAME_HEADER_SIZE + 1, 8):
        n, kind, reserved, _, hcrc = struct.unpack_from("<IB3sII", data, q)
        if (hcrc == crc32c(data[q:q + 12]) and kind in KINDS and not reserved[0] & ~allowed
                and reserved[1:] == b"\0\0" and n <= MAX_PAYLOAD
                and not reserved[0] & FLAG_UNSYNCED):
            return False
    return True


# --------------------------------------------------------------------------
# reading a file (§10), one step at a time


Frame = tuple[int, int, int]  # (offset, payload_length, kind) of a header-valid frame


def read_file(data: bytes) -> Dump:
    """Read a whole file following FORMAT.md; raise :class:`SpecError` if it breaks a rule."""
    if not data:
        return empty_history()
    dump = Dump({})
    version = read_header(data, dump)  # §10 step 1
    allowed = FLAG_UNSYNCED if version >= 2 else 0  # R23
    frames, end = walk_frames(data, allowed)  # §10 step 2
    for fo, _, kind in frames:
        if kind == 5 and version < 4:  # §4, §12: the scan may accept it, the version not
            raise SpecError("R22", fo, "a LAYER frame in a file of version 1, 2 or 3")
    free = check_tail(data, end, version, allowed)  # §10 steps 3-4
    torn = drop_torn_frames(data, frames, allowed)  # §10 step 5
    if torn is not None:
        end, free = torn, False  # a torn frame, then zeros: the tail is torn
    damaged = damaged_checkpoints(data, frames)  # §10 step 5, R80
    dump.data.update(describe_layout(data, version, frames, end, free))
    replay = Replay(version=version)
    for index, frame in enumerate(frames):  # §10 steps 6-7
        read_frame(data, dump, version, index, frame, frame[0] in damaged, replay)
    if replay.origin is not None:  # only in files that have one: older dumps unchanged
        dump.data["origin"] = replay.origin
    dump.data.update(genesis=replay.genesis, commits=replay.commits,
                     checkpoints=replay.checkpoints, state=replay.state.to_json())
    note_tail(data, dump, end, free)
    return dump


def empty_history() -> Dump:
    """§2: a file of 0 bytes is a new file, the empty history; nothing to show."""
    head = MAGIC + struct.pack("<HHI12s", 1, HEADER_SIZE, 0, bytes(12))
    dump = read_file(head + struct.pack("<I", crc32c(head)))
    dump.spans.clear()
    dump.headings.clear()
    dump.data.update(file_length=0, valid_end=0)
    return dump


def read_header(data: bytes, dump: Dump) -> int:
    """The file header (§2), checked in the order R10-R12; its format_version."""
    if len(data) < 8 or data[:8] != MAGIC:
        raise SpecError("R10", 0, "not a Myosotis file")
    if len(data) < 10 or not 1 <= struct.unpack_from("<H", data, 8)[0] <= FORMAT_VERSION:
        raise SpecError("R11", 8, "format_version is not 1, 2, 3 or 4")
    if len(data) < HEADER_SIZE:
        raise SpecError("R12", 0, "file shorter than its header")
    _, version, hsize, flags, reserved, hcrc = struct.unpack_from("<8sHHI12sI", data, 0)
    if hsize != HEADER_SIZE or flags or any(reserved) or hcrc != crc32c(data[:28]):
        raise SpecError("R12", 8, "bad header_size, flags, reserved bytes or header_crc")
    dump.headings[0] = "file header (§2)"
    dump.spans.extend([
        Span(0, 8, 'magic "MYOSOTIS"'), Span(8, 2, f"format_version = {version} (u16)"),
        Span(10, 2, f"header_size = {hsize} (u16)"), Span(12, 4, "flags = 0 (u32)"),
        Span(16, 12, "reserved, zero"), Span(28, 4, f"header_crc = 0x{hcrc:08x} "
                                              "(CRC32C of bytes 0..27)")])
    return int(version)


def walk_frames(data: bytes, allowed: int) -> tuple[list[Frame], int]:
    """§10 step 2: walk header-valid frames from offset 32; the frames, and the offset
    where the walk stopped (the first frame that is not header-valid, or the end)."""
    frames: list[Frame] = []
    o = HEADER_SIZE
    while o < len(data):
        h = header_valid(data, o, allowed)
        if h is None:
            break
        frames.append((o, *h))
        o += 16 + h[0] + _pad(h[0])
    return frames, o


def check_tail(data: bytes, end: int, version: int, allowed: int) -> bool:
    """§10 steps 3-4 for the bytes from ``end``, where the walk stopped: whether they
    are free space. Raises SpecError unless they are free space or a torn tail."""
    # §10 step 3: zero bytes to the end of the file are free space (§3)
    free = end < len(data) and not any(data[end:])
    # §10 steps 3-4: a tail with a valid frame after it is corruption, not a torn tail;
    # payloads are checked within a budget of 2 * (L - end) bytes (step 3)
    q = None if free or end == len(data) else next_valid(data, end, allowed)
    unsynced_tail = q is not None and version >= 2 and tearable(data, end, allowed) \
        and only_unsynced_after(data, end, allowed)  # R29: all of it is a torn tail
    if q is not None and not unsynced_tail:
        raise SpecError("§10", end, f"damaged frame, but a valid frame follows at {q}")
    # §10 step 3, R28: the damaged frame where the walk stopped must be tearable
    if not free and end < len(data) and not tearable(data, end, allowed):
        raise SpecError("R28", end, "damaged frame that a torn write cannot leave")
    return free


def drop_torn_frames(data: bytes, frames: list[Frame], allowed: int) -> int | None:
    """§10 step 5: the last frame must be valid in full, else it is torn too (if R28
    allows it), and so on back. Removes the torn frames from ``frames``; returns the
    offset of the first one, the new valid end (None if no frame is torn)."""
    torn = None
    while frames and not payload_valid(data, frames[-1][0], frames[-1][1]):
        if not tearable(data, frames[-1][0], allowed):
            raise SpecError("R28", frames[-1][0], "damaged last frame that a torn write "
                            "cannot leave")
        torn = frames.pop()[0]
    return torn


def damaged_checkpoints(data: bytes, frames: list[Frame]) -> set[int]:
    """The offsets of the frames, all checkpoints, that fail R26/R27 but are not last."""
    # A damaged frame that is not the last is corruption (§10 step 5), except a
    # checkpoint: R80 makes a checkpoint whose frame is not valid merely unusable,
    # and this reader follows the more specific rule (as the reference engine does).
    damaged = set()
    for fo, n, kind in frames:
        if not payload_valid(data, fo, n):
            if kind not in (2, 5):
                raise SpecError("R26", fo, "payload CRC or padding of a frame that is not "
                                "the last")
            damaged.add(fo)
    return damaged


def describe_layout(data: bytes, version: int, frames: list[Frame], end: int,
                    free: bool) -> dict[str, Any]:
    """The first part of the dump: the version, the valid end and what follows it,
    and the frames (§3)."""
    out: dict[str, Any] = {}
    out["format_version"] = version
    out["file_length"] = len(data)
    out["valid_end"] = end
    out["torn_tail"] = None if end == len(data) or free else {
        "offset": end, "length": len(data) - end, "ignored": True}
    if free:  # only in files that have free space, so older dumps stay as they are
        out["free_space"] = {"offset": end, "length": len(data) - end}
    out["frames"] = [{"offset": fo, "kind": KINDS[k], "payload_length": n,
                      "payload_crc": f"{struct.unpack_from('<I', data, fo + 8)[0]:08x}",
                      **({"flags": data[fo + 5]} if version >= 2 else {})}
                     for fo, n, k in frames]
    return out


def note_tail(data: bytes, dump: Dump, end: int, free: bool) -> None:
    """The span of the bytes after the valid end: free space (§3) or a torn tail."""
    if free:
        dump.headings[end] = "free space: zero bytes a writer reserved (§3, §10 step 3)"
        dump.spans.append(Span(end, len(data) - end, f"{len(data) - end} zero bytes"))
    elif end < len(data):
        dump.headings[end] = "torn tail: ignored by readers (§10 step 3)"
        h = struct.unpack_from("<I", data, end)[0] if end + 4 <= len(data) else None
        why = (f"claims a {h}-byte payload, only {len(data) - end - 16} bytes follow (R25)"
               if h is not None and end + 16 <= len(data) else "shorter than a frame header (R20)")
        dump.spans.append(Span(end, len(data) - end, f"torn frame: {why}"))


# --------------------------------------------------------------------------
# the records of the frames, in order (§10 steps 6-7)


@dataclass
class Replay:
    """What the frames read so far give: the state after them, the seq and id of the
    last commit (R31, R32), and the genesis, commits and checkpoints of the dump."""

    state: State = field(default_factory=State)
    last_seq: int = 0
    last_id: bytes = ZERO_ID
    genesis: dict[str, Any] | None = None
    snapshots: dict[int, tuple[int, State]] = field(default_factory=dict)  # offset -> good
    genesis_hash: bytes = ZERO_ID
    origin: dict[str, Any] | None = None
    version: int = 1
    commits: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)


def read_frame(data: bytes, dump: Dump, version: int, index: int, frame: Frame,
               damaged: bool, replay: Replay) -> None:
    """Frame ``index`` (§3): its header, then its record (§4), then its padding."""
    fo, n, kind = frame
    note_frame_header(data, dump, version, index, frame)
    start, stop = fo + 16, fo + 16 + n
    c = Cursor(data, start, stop, dump.spans, "R61" if kind == 1 else "R71")
    if damaged:  # a checkpoint failing R26/R27: one span covers payload and padding
        dump.spans.append(Span(start, stop + _pad(n) - start, "checkpoint payload and "
                               "padding failing R26/R27: not usable (R80), not decoded"))
        replay.checkpoints.append({"offset": fo, "usable": False})
        return
    RECORDS[kind](c, fo, index, dump, replay)
    if _pad(n):
        dump.spans.append(Span(stop, _pad(n), f"padding, {_pad(n)} zero bytes"))


def note_frame_header(data: bytes, dump: Dump, version: int, index: int,
                      frame: Frame) -> None:
    """The heading and spans of a frame header (§3)."""
    fo, n, kind = frame
    name = KINDS[kind]
    dump.headings[fo] = f"frame {index}: {name}, payload {n} bytes (§3)"
    pcrc, hcrc = struct.unpack_from("<II", data, fo + 8)
    dump.spans.extend([
        Span(fo, 4, f"payload_length = {n} (u32)"),
        Span(fo + 4, 1, f"kind = {kind} {name}"),
        *([Span(fo + 5, 1, f"flags = {data[fo + 5]}"
                           f"{' (unsynced)' if data[fo + 5] else ''}"),
           Span(fo + 6, 2, "reserved, zero")] if version >= 2
          else [Span(fo + 5, 3, "reserved, zero")]),
        Span(fo + 8, 4, f"payload_crc = 0x{pcrc:08x}"),
        Span(fo + 12, 4, f"header_crc = 0x{hcrc:08x} (CRC32C of bytes 0..11)")])


def read_commit_frame(c: Cursor, fo: int, index: int, dump: Dump, replay: Replay) -> None:
    """A commit record (§7): R31, R32, its mutations applied in order (§6), R60."""
    start, stop = c.pos, c.end
    dump.headings[start] = f"commit record (§7), frame {index}"
    rec, where = read_commit(c)
    if rec["seq"] != replay.last_seq + 1:
        raise SpecError("R31", start, f"seq {rec['seq']} after {replay.last_seq}")
    if rec["parent"] != replay.last_id:
        raise SpecError("R32", start + 16, "parent is not the previous commit's id")
    state = replay.state
    for m, at in zip(rec["mutations"], where, strict=True):
        if m["op"] == "UNDELETE" and replay.version < 3:
            raise SpecError("R54", at, f"UNDELETE in a version-{replay.version} file")
        apply(state, m, at)
    if state.next_node_id != rec["next_node_id"]:
        raise SpecError("R60", start + 48, f"next_node_id {rec['next_node_id']} but "
                        f"the mutations give {state.next_node_id}")
    replay.last_seq, replay.last_id = rec["seq"], blake3(c.data[start:stop]).digest()  # §9.1
    replay.commits.append({
        "seq": rec["seq"], "offset": fo, "id": replay.last_id.hex(),
        "parent": None if rec["parent"] == ZERO_ID else rec["parent"].hex(),
        "timestamp_us": rec["timestamp_us"], "label": rec["label"],
        "next_node_id": rec["next_node_id"], "mutations": rec["mutations"],
        "state_hash_after": state.hash()})


def read_checkpoint_frame(c: Cursor, fo: int, index: int, dump: Dump,
                          replay: Replay) -> None:
    """A checkpoint record (§8.2) in a valid frame, usable or not (R80)."""
    start, stop = c.pos, c.end
    dump.headings[start] = f"checkpoint record (§8.2), frame {index}"
    dump.headings[start + 72] = "state image (§8.1)"
    seq, cid, sh, image = read_snapshot(c, ("seq", "commit_id"))
    # R80: a checkpoint that breaks R33 or its hash is skipped, not fatal
    # (FORMAT.md §4 calls an R33 violation corruption; §8.2 says skip).
    usable = image is not None and seq == replay.last_seq != 0 and cid == replay.last_id
    # What §8.2 means by "the state after seq": a writer bug otherwise.
    if usable and image.image() != replay.state.image():  # type: ignore[union-attr]
        raise SpecError("§8.2", start + 72, "checkpoint image differs from replay")
    replay.checkpoints.append({"offset": fo, "seq": seq, "commit_id": cid.hex(),
                               "state_hash": sh.hex(), "image_length": stop - start - 72,
                               "usable": usable})
    if usable:
        replay.snapshots[fo] = (seq, image)  # type: ignore[assignment]


def read_genesis_frame(c: Cursor, fo: int, index: int, dump: Dump, replay: Replay) -> None:
    """A genesis record (§8.3): R30, R85, R86; the history continues from its state."""
    start = c.pos
    dump.headings[start] = f"genesis record (§8.3), frame {index}"
    dump.headings[start + 72] = "state image (§8.1)"
    seq, cid, sh, image = read_snapshot(c, ("base_seq", "base_commit_id"))
    if index != 0:
        raise SpecError("R30", fo, "a genesis frame that is not the first")
    if image is None:
        raise SpecError("R85", start + 40, "genesis state_hash does not match")
    if (seq == 0) != (cid == ZERO_ID):  # R86
        raise SpecError("§8.3", start, "base_seq and base_commit_id disagree")
    replay.state, replay.last_seq, replay.last_id = image, seq, cid
    replay.snapshots[fo] = (seq, copy.deepcopy(image))  # replay changes image in place
    replay.genesis_hash = sh
    replay.genesis = {"offset": fo, "base_seq": seq, "base_commit_id": cid.hex(),
                      "state_hash": sh.hex()}


def _u32(c: Cursor, what: str, crc: bool = False) -> int:
    v: int = struct.unpack_from("<I", c.take(4))[0]
    c.note(c.pos - 4, f"{what} = 0x{v:08x}" if crc else f"{what} = {v}")
    return v


def read_layer_head(c: Cursor) -> tuple[int, bytes, int, int, int, int, int, list[int], bool]:
    """The head of a layer record (§8.7) up to its image: seq, commit_id, base_offset,
    base_seq, level, self_offset, image_length, the block CRCs, and whether
    head_crc and the padding pass (R88)."""
    start = c.pos
    seq = c.u64("seq")
    cid = c.hash32("commit_id")
    base_off = c.u64("base_offset")
    base_seq = c.u64("base_seq")
    level = _u32(c, "level")
    nb = _u32(c, "block_count")
    self_off = c.u64("self_offset")
    image_len = c.u64("image_length")
    crcs = [_u32(c, f"block_crcs[{b}]", crc=True) for b in range(nb)]
    head_crc = _u32(c, "head_crc", crc=True)
    usable = head_crc == crc32c(c.data[start:c.pos - 4])  # R88
    pad = _pad(c.pos - start)
    usable = usable and not any(c.take(pad))
    if pad:
        c.note(c.pos - pad, f"padding, {pad} zero bytes")
    return seq, cid, base_off, base_seq, level, self_off, image_len, crcs, usable


def read_layer_frame(c: Cursor, fo: int, index: int, dump: Dump, replay: Replay) -> None:
    """A layer record (§8.7) in a valid frame: R88 and R89 in full, and its stack (the
    layer over its base's state) against the replay."""
    start, stop = c.pos, c.end
    dump.headings[start] = f"layer record (§8.7), frame {index}"
    seq, cid, base_off, base_seq, level, self_off, image_len, crcs, usable = \
        read_layer_head(c)
    img_at = c.pos
    img_end = img_at + image_len
    trailer = c.data[stop - 16:stop]
    usable = usable and (stop - start) % 8 == 0 and img_end + _pad(image_len) + 16 == stop \
        and trailer == struct.pack("<Q", self_off) + b"MYOLAYER" and self_off == fo
    blocks = [c.data[a:min(a + LAYER_BLOCK, img_end)] for a in range(img_at, img_end,
                                                                      LAYER_BLOCK)]
    usable = usable and len(blocks) == len(crcs) and all(
        crc32c(b) == crc for b, crc in zip(blocks, crcs, strict=False))  # R88, R89
    usable = usable and (base_off == 0) == (base_seq == 0) == (level == LEVEL_FULL) and \
        seq == replay.last_seq != 0 and cid == replay.last_id and base_seq < seq
    base = replay.snapshots.get(base_off) if base_off else (0, State())
    usable = usable and base is not None and base[0] == base_seq
    dump.headings[img_at] = "layer image (§8.1 layout, §8.7)"
    if not usable:
        c.pos = c.end
        c.note(img_at, "layer image and trailer of a layer that is not usable (not decoded)")
    else:
        assert base is not None
        c.end = img_end
        layer = read_image(c, sparse=base_off != 0)
        c.end = stop
        if _pad(image_len):
            c.take(_pad(image_len))
            c.note(img_end, f"padding, {_pad(image_len)} zero bytes")
        c.take(8)
        c.note(stop - 16, f"trailer: self_offset = {self_off}")
        c.take(8)
        c.note(stop - 8, 'trailer: magic "MYOLAYER"')
        state = State(layer.next_node_id, {**base[1].nodes, **layer.nodes})
        if state.image() != replay.state.image():  # what §8.7 means: a writer bug else
            raise SpecError("§8.7", img_at, "layer's stack differs from replay")
        replay.snapshots[fo] = (seq, state)
    replay.checkpoints.append({"offset": fo, "seq": seq, "commit_id": cid.hex(),
                               "base_offset": base_off, "base_seq": base_seq, "level": level,
                               "self_offset": self_off, "image_length": image_len,
                               "usable": usable})


def read_origin_frame(c: Cursor, fo: int, index: int, dump: Dump, replay: Replay) -> None:
    """An origin record (§8.6): R34, R87. It changes neither the state nor the chain."""
    start = c.pos
    dump.headings[start] = f"origin record (§8.6), frame {index}"
    if replay.version < 3:
        raise SpecError("R34", fo, f"an ORIGIN frame in a version-{replay.version} file")
    if index != 1 or replay.genesis is None:
        raise SpecError("R34", fo, "an ORIGIN frame that does not follow the genesis")
    if c.end - c.pos != 112:
        raise SpecError("R87", start, f"origin record of {c.end - c.pos} bytes, not 112")
    seq = c.u64("source_seq")
    cid = c.hash32("source_commit_id")
    sh = c.hash32("source_state_hash")
    base_seq = c.u64("source_base_seq")
    base_id = c.hash32("source_base_commit_id")
    if (seq == 0) != (cid == ZERO_ID) or (base_seq == 0) != (base_id == ZERO_ID):
        raise SpecError("R87", start, "a seq and its commit id disagree")
    if base_seq > seq or seq > replay.last_seq:
        raise SpecError("R87", start, "source_base_seq <= source_seq <= base_seq fails")
    if seq == replay.last_seq and (cid != replay.last_id or sh != replay.genesis_hash):
        raise SpecError("R87", start, "the origin disagrees with the genesis it follows")
    replay.origin = {"offset": fo, "source_seq": seq, "source_commit_id": cid.hex(),
                     "source_state_hash": sh.hex(), "source_base_seq": base_seq,
                     "source_base_commit_id": base_id.hex()}


RecordReader = Callable[[Cursor, int, int, Dump, Replay], None]
RECORDS: dict[int, RecordReader] = {  # §4: record kind -> its reader
    1: read_commit_frame, 2: read_checkpoint_frame, 3: read_genesis_frame,
    4: read_origin_frame, 5: read_layer_frame}
assert list(RECORDS) == list(KINDS)
