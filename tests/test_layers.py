"""The codebase rules of docs/ARCHITECTURE.md, checked on the code itself.

- Layers: each layer imports only the layers below it, and the CLI only the
  public package (import-linter contracts in pyproject.toml). The check is
  shown to fail on a copy of the package with one forbidden import added, so
  a broken configuration cannot pass silently.
- Size: no function in myosotis/ is longer than 80 lines.
- Types: no ``type: ignore`` in the engine.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import myosotis

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "myosotis"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
MAX_FUNCTION_LINES = 80


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the package under ``root`` (its pyproject.toml)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(PACKAGE, root / "myosotis",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def inject(root: Path, module: str, line: str) -> Path:
    """Append ``line`` to ``module`` (a path under myosotis/) in the copy; return it."""
    target = root / "myosotis" / module
    original = target.read_text()
    target.write_text(original + f"\n{line}  # injected by tests/test_layers.py\n")
    return target


def test_the_layer_contracts_hold() -> None:
    r = lint_imports(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 kept, 0 broken" in r.stdout


@pytest.mark.parametrize("module, line, broken", [
    # the CLI reaching around the public API
    ("cli/files.py", "from myosotis.engine import graph as _graph", "cli-public-only"),
    ("cli/output.py", "import myosotis.format.constants", "cli-public-only"),
    ("cli/values.py", "from myosotis.errors import MyosotisError as _E", "cli-public-only"),
    # a layer importing one above it
    ("format/values.py", "from myosotis.storage import fileops as _f", "layers"),
    ("storage/mapping.py", "from myosotis.engine import graph as _graph", "layers"),
    ("engine/chain.py", "from myosotis.api import memory as _memory", "layers"),
    ("engine/chain.py", "import myosotis.testing", "layers"),
])
def test_a_forbidden_import_breaks_a_contract(package_copy: Path, module: str, line: str,
                                              broken: str) -> None:
    target = package_copy / "myosotis" / module
    original = target.read_text()
    try:
        inject(package_copy, module, line)
        r = lint_imports(package_copy)
    finally:
        target.write_text(original)
    assert r.returncode != 0, r.stdout
    assert "1 broken" in r.stdout, r.stdout
    assert module.replace("/", ".").removesuffix(".py") in r.stdout


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_no_function_is_longer_than_80_lines() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for fn in _functions(ast.parse(path.read_text(), str(path))):
            assert fn.end_lineno is not None
            lines = fn.end_lineno - fn.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                long.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} ({lines} lines)")
    assert long == []


def test_the_engine_has_no_type_ignore() -> None:
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((PACKAGE / "engine").rglob("*.py"))
            for i, text in enumerate(p.read_text().splitlines(), 1) if "type: ignore" in text]
    assert hits == []


def test_the_public_names_are_exported_and_importable() -> None:
    for name in myosotis.__all__:
        assert hasattr(myosotis, name), name
    assert "Memory" in myosotis.__all__ and "VerifyReport" in myosotis.__all__
