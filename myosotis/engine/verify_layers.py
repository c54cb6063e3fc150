"""What ``fsck`` checks of a layer (FORMAT.md §8.7): its head (R88), every block
(R89), its tables, and the stack it tops against the replay of the commits
(engine/verify.py runs the replay and calls :func:`check_layer` at each layer).
"""

from __future__ import annotations

from myosotis.engine.graph import GraphState
from myosotis.format.constants import FRAME_HEADER_SIZE
from myosotis.format.image import StateImage
from myosotis.format.layer import BlockGuard, LayerHeader, decode_layer_header, layer_image
from myosotis.format.values import DecodeError


def check_layer(payload: memoryview, off: int, seq: int, head: bytes, state: GraphState,
                changed_at: dict[int, int], snapshots: dict[int, int]) -> tuple[str, bool]:
    """Why the layer at frame offset ``off`` is unusable (R33, R88, R89) or disagrees
    with the replay ("" if fine), and whether readers use it all the same (§8.7).

    ``seq``, ``head``, ``state``: the replay's commit, its id and its state;
    ``changed_at``: node -> the last commit that changed it; ``snapshots``: frame
    offset -> seq of the snapshots found good so far (a base must be one)."""
    try:
        h = decode_layer_header(payload)
    except DecodeError as e:
        return e.reason, False
    if h.seq != seq or h.commit_id != head or h.self_offset != off:
        return f"layer claims commit {h.seq} but follows commit {seq} (R33, R88)", False
    if not h.full and snapshots.get(h.base_offset) != h.base_seq:
        return (f"layer's base at offset {h.base_offset} is no good snapshot of commit "
                f"{h.base_seq} (R88)"), False
    base = off + FRAME_HEADER_SIZE
    try:
        BlockGuard(payload, h, base).check_all()
    except DecodeError as e:
        return f"{e.reason} at offset {e.offset}; readers report it when they read it", True
    try:
        img = layer_image(payload, h, base)
        img.check_tables(offsets=True) if h.full else _check_sparse_tables(img)
        return _layer_differs(img, h, state, changed_at), True
    except DecodeError as e:
        return f"its image is malformed: {e.reason} (§8.7)", True


def _check_sparse_tables(img: StateImage) -> None:
    ids = img.ids()
    if any(a >= b for a, b in zip(ids, ids[1:], strict=False)) or \
            (ids and not 1 <= ids[0] <= ids[-1] < img.next_node_id):
        raise DecodeError("layer ids are not strictly ascending within 1..next_node_id-1 "
                          "(§8.7)", img.base)


def _layer_differs(img: StateImage, h: LayerHeader, state: GraphState,
                   changed_at: dict[int, int]) -> str:
    """Why the stack this layer tops differs from the replay, or "" (§8.7): its records
    must be the replay's nodes, and a sparse one must hold every node changed since
    its base (the base itself was checked when the replay passed it)."""
    if img.next_node_id != state.next_node_id:
        return "layer's next_node_id differs from the replay's"
    ids = img.ids()
    for i, node_id in enumerate(ids):
        n = state.get(node_id)
        if n is None or bytes(img.raw_record(i)) != n.record():
            return f"layer's record of node {node_id} differs from the replay"
    if not h.full:
        held = set(ids)
        for node_id, seq in changed_at.items():
            if seq > h.base_seq and node_id not in held:
                return f"layer lacks node {node_id}, changed since its base"
    return ""
