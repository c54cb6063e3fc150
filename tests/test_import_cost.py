"""What `import myosotis`, the core calls and the CLI load (issue #10: `import
myosotis` <= 30 ms, the CLI imports only what a command needs).

Behaviour, not timing: a fresh interpreter reports the modules each step added
to ``sys.modules``. A program that opens a memory, reads nodes, changes them
and commits must not load the subsystems it does not use (diff, rewind, fork,
compaction, verify, interchange, legacy files, the stage file, node history
queries) nor the heavy stdlib modules only they need; their public names are
imported on first use (PEP 562, ``myosotis._LAZY``) and must still be all
there for ``from myosotis import X``, ``dir()`` and ``__all__``.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import myosotis
from myosotis import Memory

ROOT = Path(__file__).resolve().parent.parent

SUBSYSTEMS = {f"myosotis.{m}" for m in (
    "api.info", "api.interchange", "api.legacy", "api.legacy_memory", "api.node_queries",
    "api.rewind", "api.stagefile", "api.timeline",
    "engine.compact", "engine.diff", "engine.diff_render", "engine.diffapply",
    "engine.export", "engine.fork", "engine.importing", "engine.legacy",
    "engine.node_history",
    "engine.rebuild", "engine.retention", "engine.rewind", "engine.structdiff",
    "engine.verify", "engine.verify_layers",
    "format.jsonform", "format.jsonstream", "storage.newfile", "storage.rewrite",
)}
"""Modules of the subsystems a program that opens, reads and commits does not use."""

HEAVY_STDLIB = {"json", "dataclasses", "inspect", "subprocess", "shutil", "tempfile",
                "html", "pathlib", "ast", "dis", "tokenize"}
"""Stdlib modules costly to import that only those subsystems (or the CLI) need.
Not sqlite3: a writer indexes every commit it writes in the history index's
SQLite sidecar (engine/history_index.py), so it is on the commit path; loaded
on first commit, it would be paid by every process a fork server starts."""

NEVER = SUBSYSTEMS | HEAVY_STDLIB

# A fresh interpreter: runs its steps and prints, as a Python literal, the
# modules each step added to sys.modules (json would be one of them).
CHILD = """
import sys
PATH = sys.argv[1]
seen = set(sys.modules)
added = {}

def step(name):
    global seen
    now = set(sys.modules)
    added[name] = sorted(now - seen)
    seen = now

STEPS

print(repr(added))
"""

CORE_STEPS = """
import myosotis
step("import")
with myosotis.Memory.open(PATH, readonly=True) as mem:
    node = mem[1]
    assert node.name == "a" and list(node.items) == [1] and mem.head.seq == 1
step("open and read")
with myosotis.Memory.open(PATH) as mem:
    mem[1].name = "b"
    mem[1].items.append(2)
    mem.create("Note", about=mem[1])
    step("open and change")
    assert mem.commit("second").seq == 2
step("commit")
"""


def run_child(steps: str, path: str) -> dict[str, set[str]]:
    """Run ``steps`` in a fresh interpreter, with ``PATH`` bound to ``path``."""
    code = CHILD.replace("STEPS", steps)
    proc = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True,
                          check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    added: dict[str, list[str]] = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    return {name: set(mods) for name, mods in added.items()}


@pytest.fixture
def one_node(tmp_path: Path) -> str:
    path = str(tmp_path / "a.myo")
    with Memory.open(path) as mem:
        mem.create("Task", name="a", items=[1])
        mem.commit("first")
    return path


def test_import_open_read_change_and_commit_load_no_subsystem(one_node: str) -> None:
    added = run_child(CORE_STEPS, one_node)
    assert "myosotis.api.memory" in added["import"]  # the child did what it says
    for step in ("import", "open and read", "open and change", "commit"):
        assert added[step] & NEVER == set(), step
    # what the writer used was all loaded by the import
    assert not any(m.startswith("myosotis.") for m in added["commit"])


@pytest.mark.parametrize("argv, allowed", [
    (["--version"], set()),
    (["show", "1", "-f", "PATH"], set()),
    # history prints the file's sizes and counts (Memory.info) and lists commits
    (["history", "-n", "10", "-f", "PATH"],
     {"myosotis.api.info", "myosotis.api.timeline", "myosotis.engine.fork"}),
])
def test_a_cli_command_loads_only_what_it_uses(one_node: str, argv: list[str],
                                               allowed: set[str]) -> None:
    argv = [one_node if a == "PATH" else a for a in argv]
    steps = f"""
import io, contextlib
from myosotis.cli import main
step("import")
with contextlib.redirect_stdout(io.StringIO()):
    assert main({argv!r}) == 0
step("run")
"""
    added = run_child(steps, one_node)
    loaded = added["import"] | added["run"]
    assert "myosotis.cli.cmd_inspect" in loaded
    # typer itself imports some of the heavy stdlib modules: only ours count here
    assert loaded & SUBSYSTEMS == allowed


def test_every_public_name_is_listed_and_importable() -> None:
    assert set(myosotis.__all__) <= set(dir(myosotis))
    namespace: dict[str, object] = {}
    exec("from myosotis import *", namespace)
    assert set(myosotis.__all__) <= set(namespace)
    for name in myosotis.__all__:
        assert namespace[name] is getattr(myosotis, name), name


def test_a_lazy_name_is_the_object_of_its_module() -> None:
    lazy: dict[str, str] = myosotis._LAZY  # type: ignore[attr-defined]
    assert set(lazy) <= set(myosotis.__all__)
    for name, module in lazy.items():
        assert getattr(myosotis, name) is getattr(importlib.import_module(module), name)


def test_a_missing_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        _ = myosotis.NoSuchName  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        exec("from myosotis import NoSuchName", {})


def test_the_lazy_table_matches_the_type_checking_imports() -> None:
    """Each name of ``_LAZY`` is imported under ``TYPE_CHECKING`` from the same module
    (what type checkers see is what runs), and nothing else is."""
    tree = ast.parse((ROOT / "myosotis" / "__init__.py").read_text())
    typed: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module is not None
                typed.update((a.name, imp.module) for a in imp.names)
    assert typed == myosotis._LAZY  # type: ignore[attr-defined]
