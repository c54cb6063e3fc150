"""The stateful machine of tests/test_stateful.py with restore, revert and fork rules:
each is checked against the plain model of tests/model.py, whose history of
snapshots says what a past commit's state was (the machine's invariants then
compare every node, the state hash and the history after each step)."""

from __future__ import annotations

import os

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test
from model import ModelNode, clone, state_hash
from test_stateful import FAST, GraphMachine, SmallFloorMachine

from myosotis import Memory, Mutation


class RewindMachine(GraphMachine):
    """GraphMachine plus going back. Restore and revert stage their mutations; the
    machine's commit rule commits them later, like any staged change."""

    forks = 0

    def _stage_model(self, ms: list[Mutation], want: dict[int, ModelNode | None]) -> None:
        """Make the model's staged nodes ``want`` says (None: tombstone, fields kept)."""
        for node_id, node in want.items():
            cur = self.model.staged[node_id]
            if node is None:
                cur.deleted = True
            else:
                self.model.staged[node_id] = ModelNode(node.type, clone(node.fields),
                                                       node.deleted)
        self.model.pending += len(ms)

    def _commit_pending(self) -> None:
        """Restore and revert need nothing staged: commit what is, as the commit rule
        would (its checks are the invariants')."""
        if self.model.pending:
            assert self.mem.commit("before going back") is not None
            self.model.commit("before going back", self.clock.now)

    @precondition(lambda self: self.model.head >= 1)
    @rule(data=st.data())
    def restore_past(self, data: st.DataObject) -> None:
        self._commit_pending()
        c = data.draw(st.integers(0, self.model.head), label="restore to")
        ids = sorted(self.model.staged)
        nodes = None
        if ids and data.draw(st.booleans(), label="some nodes"):
            nodes = data.draw(st.lists(st.sampled_from(ids), max_size=3, unique=True),
                              label="nodes")
        ms = self.mem.restore(c, nodes)
        event(f"restore staged {'some' if ms else 'no'} mutations")
        past = self.model.snapshots[c].nodes
        self._stage_model(ms, {i: past.get(i) for i in (ids if nodes is None else nodes)})

    @precondition(lambda self: self.model.head >= 1)
    @rule()
    def revert_head(self) -> None:
        """The head commit: no later commit touched anything, so never a conflict, and
        the result is the state before it (its new nodes tombstoned)."""
        self._commit_pending()
        head = self.model.head
        r = self.mem.revert(head)
        event(f"revert of the head staged {'some' if r.mutations else 'no'} mutations")
        assert r.commit == head and r.skipped == ()
        before = self.model.snapshots[head - 1].nodes
        self._stage_model(list(r.mutations),
                          {i: before.get(i) for i in self.model.snapshots[head].nodes})

    @rule(data=st.data())
    def fork_and_check(self, data: st.DataObject) -> None:
        """Staged changes are not the fork's business: it is made of a commit."""
        c = data.draw(st.integers(0, self.model.head), label="fork at")
        self.forks += 1
        path = os.path.join(self.dir, f"fork-{self.forks}.myo")
        origin = self.mem.fork(c, path)
        event("fork")
        snap = self.model.snapshots[c]
        want = state_hash(snap.nodes, snap.next_node_id)
        assert origin.seq == c and origin.state_hash == want
        with Memory.open(path, readonly=True) as f:
            assert f.state_hash() == want and f.info().origin == origin
            assert f.info().head_seq == c
        os.unlink(path)


class RewindSmallFloorMachine(RewindMachine, SmallFloorMachine):
    """The same, with automatic checkpoints every few hundred bytes."""


def test_restore_revert_fork_agree_with_the_model() -> None:
    run_state_machine_as_test(RewindMachine, settings=FAST)


def test_restore_revert_fork_agree_with_the_model_across_checkpoints() -> None:
    run_state_machine_as_test(RewindSmallFloorMachine, settings=FAST)
