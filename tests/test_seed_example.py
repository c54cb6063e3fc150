"""The seed's Python example, run verbatim as a script, then read back by a new process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from crashutil import child_env, run_python

from myosotis import Memory

SEED_EXAMPLE = '''\
from myosotis import Memory
mem = Memory.open("state.myo")
agent = mem.create("Agent", name="Iris")
agent.goal = "Explore ideas"
mem.commit(label="initial goal")
'''

READ_BACK = '''\
import json
from myosotis import Memory
mem = Memory.open("state.myo", readonly=True)
agent = mem.get(1)
print(json.dumps({"id": agent.id, "type": agent.type, "name": agent.name,
                  "goal": agent.goal, "label": mem.head.label, "seq": mem.head.seq,
                  "nodes": len(mem)}))
mem.close()
'''


def run_seed_example(tmp_path: Path) -> None:
    """Write the example verbatim to ``seed_example.py`` and run it with cwd=tmp_path."""
    script = tmp_path / "seed_example.py"
    script.write_text(SEED_EXAMPLE)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""  # no warnings, no output


def test_seed_example_commit_is_read_back_by_a_new_process(tmp_path: Path) -> None:
    # The example never closes its handle: the commit must be durable when
    # commit() returns (durability "full"), whatever happens at exit.
    run_seed_example(tmp_path)
    assert (tmp_path / "state.myo").is_file()

    got = json.loads(run_python(READ_BACK, cwd=tmp_path).stdout)
    assert got == {"id": 1, "type": "Agent", "name": "Iris", "goal": "Explore ideas",
                   "label": "initial goal", "seq": 1, "nodes": 1}


def test_seed_example_process_exit_releases_the_writer_lock(tmp_path: Path) -> None:
    run_seed_example(tmp_path)
    with Memory.open(tmp_path / "state.myo") as mem:  # no LockedError: the lock died with it
        assert mem.head is not None and mem.head.label == "initial goal"
        assert len(mem.history()) == 1
        agent = mem.get(1)
        assert agent.fields() == {"goal": "Explore ideas", "name": "Iris"}
        agent.goal = "Explore more"
        assert mem.commit(label="second").seq == 2  # type: ignore[union-attr]
