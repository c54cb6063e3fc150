"""The structural diff over random histories: the stateful machine of
tests/test_stateful.py (the engine against the model of tests/model.py) with
one more rule, which diffs two random commits and checks that

- replaying the ops on the model's state ``a`` as docs/DIFF.md defines them
  gives the model's state ``b`` (forward and backward in time);
- the nodes with ops are exactly the nodes that differ (the model's node diff);
- ``apply(diff(a, b))`` on a fresh memory brought to state ``a`` (itself by
  ``apply(diff(0, a))``) gives ``b``'s state hash, for ``a <= b``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test
from model import node_diff, state_hash
from test_stateful import GraphMachine
from test_structdiff import replay

from myosotis import Memory


class DiffMachine(GraphMachine):
    """GraphMachine plus the structural diff rule."""

    @rule(data=st.data())
    def structural_diff(self, data: st.DataObject) -> None:
        if self.model.pending and data.draw(st.booleans(), label="commit first"):
            self.commit(data)  # the machine's own rule: more histories with field edits
        a = data.draw(st.integers(0, self.model.head), label="a")
        b = data.draw(st.integers(0, self.model.head), label="b")
        sa, sb = self.model.snapshots[a], self.model.snapshots[b]
        want = state_hash(sb.nodes, sb.next_node_id)
        d = self.mem.diff(a, b)
        ops = list(d)
        assert state_hash(replay(sa.nodes, ops), sb.next_node_id) == want, f"diff({a}, {b})"
        assert sorted({op.node for op in ops}) == [w[0] for w in node_diff(sa.nodes, sb.nodes)]
        assert len(d) == len(ops) and bool(d) == bool(ops)
        if a > b:
            return
        path = os.path.join(self.dir, f"apply-{a}-{b}.myo")
        with Memory.open(path, durability="none") as target:
            target.apply(self.mem.diff(0, a))
            target.commit(allow_empty=True)
            target.apply(d)
            assert target.state_hash() == want, f"apply(diff({a}, {b}))"
            target.discard()
        os.remove(path)


    @precondition(lambda self: self._paths(list) or self._paths(dict))
    @rule(data=st.data())
    def container_edits_then_diff(self, data: st.DataObject) -> None:
        """Edits inside lists and maps (the machine's own rules), committed, then diffed:
        the ops inside containers get exercised, not only whole nodes and fields."""
        for _ in range(data.draw(st.integers(1, 3), label="edit rounds")):
            kinds = [k for k, t in (("list", list), ("map", dict)) if self._paths(t)]
            if not kinds:
                break
            if data.draw(st.sampled_from(kinds), label="kind") == "list":
                self.list_edit(data)
            else:
                self.map_edit(data)
        self.commit(data)
        self.structural_diff(data)


class SmallFloorDiffMachine(DiffMachine):
    """Automatic checkpoints every few hundred bytes: diffs cross them."""

    checkpoint_floor = 256


FAST = settings(max_examples=40, stateful_step_count=50, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_structural_diff_replays_and_applies_over_random_histories() -> None:
    run_state_machine_as_test(DiffMachine, settings=FAST)


def test_structural_diff_across_automatic_checkpoints() -> None:
    run_state_machine_as_test(SmallFloorDiffMachine, settings=settings(FAST, max_examples=15))
