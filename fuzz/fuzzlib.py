"""Shared plumbing of the fuzz harnesses (see fuzz/README.md).

Each harness is a script with a ``test_one_input(data: bytes) -> None`` entry
that returns quietly for an input that ends in a correct state or a clean
``MyosotisError`` and raises anything else (an ``AssertionError`` for a broken
property, or the stray exception itself). :func:`main` runs it:

- under atheris/libFuzzer when atheris is installed (every libFuzzer flag and
  corpus directory on the command line is passed through);
- as a plain replay loop over files and directories when atheris is missing or
  ``--replay`` is the first argument, so the regression tests and machines
  without atheris run the very same entry function.

The C helper can be replaced by a sanitizer build (fuzz/build_asan.sh) by
pointing ``MYOSOTIS_FUZZ_HELPER`` at it: :func:`load_helper_override` must run
before anything imports ``myosotis.format.helper``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

Entry = Callable[[bytes], None]

FUZZ_DIR = Path(__file__).resolve().parent
REPO_DIR = FUZZ_DIR.parent

try:  # atheris is optional: without it the harnesses only replay inputs
    import atheris
except ImportError:  # pragma: no cover - depends on the machine
    atheris = None


def replaying() -> bool:
    """True when the harness replays inputs instead of fuzzing."""
    return atheris is None or (len(sys.argv) > 1 and sys.argv[1] == "--replay")


def load_helper_override() -> None:
    """Load the C helper named by ``MYOSOTIS_FUZZ_HELPER`` as ``myosotis._helper``.

    The ASan/UBSan build of fuzz/build_asan.sh is a cffi extension with the same
    init symbol as the installed one; putting it in ``sys.modules`` first makes
    ``myosotis.format.helper`` use it. Refuses a stale or missing file loudly:
    a fuzz run that silently used the uninstrumented helper would prove nothing.
    """
    path = os.environ.get("MYOSOTIS_FUZZ_HELPER")
    if not path or "myosotis._helper" in sys.modules:
        return
    loader = importlib.machinery.ExtensionFileLoader("myosotis._helper", path)
    spec = importlib.util.spec_from_file_location("myosotis._helper", path, loader=loader)
    if spec is None:
        raise ImportError(f"MYOSOTIS_FUZZ_HELPER={path} is not loadable")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules["myosotis._helper"] = module


@contextlib.contextmanager
def instrumented() -> Iterator[None]:
    """Import ``myosotis`` with atheris's coverage instrumentation when fuzzing.

    Used as ``with fuzzlib.instrumented(): import myosotis...`` at the top of a
    harness. When replaying (or imported by a test) it does nothing.
    """
    load_helper_override()
    main_file = getattr(sys.modules["__main__"], "__file__", None) or ""
    as_script = Path(main_file).resolve().parent == FUZZ_DIR
    if not as_script or replaying() or "myosotis" in sys.modules:
        yield
        return
    with atheris.instrument_imports(include=["myosotis"]):
        yield


_SCRATCH: Path | None = None


def scratch_dir() -> Path:
    """A private directory for the files a harness writes, in RAM when possible."""
    global _SCRATCH
    if _SCRATCH is None:
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        _SCRATCH = Path(tempfile.mkdtemp(prefix="myo-fuzz-", dir=base))
        atexit.register(shutil.rmtree, _SCRATCH, True)
    return _SCRATCH


def write_scratch(data: bytes, name: str = "input.myo") -> str:
    """Write ``data`` to a scratch file (replacing it) and return its path.

    Sidecar files of an earlier input (``.lock``, temporaries) are removed so
    every input starts from the same directory contents.
    """
    d = scratch_dir()
    for p in d.iterdir():
        if p.name.startswith(name):
            p.unlink()
    path = d / name
    path.write_bytes(data)
    return str(path)


def iter_inputs(args: list[str]) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of every file named in ``args`` or inside a named directory."""
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    yield str(f), f.read_bytes()
        elif p.is_file():
            yield str(p), p.read_bytes()
        else:
            raise SystemExit(f"no such input: {arg}")


def replay(entry: Entry, args: list[str]) -> int:
    """Run ``entry`` on every input; print and count failures; return an exit code."""
    count = failures = 0
    for name, data in iter_inputs(args):
        count += 1
        try:
            entry(data)
        except Exception:
            failures += 1
            print(f"FAIL {name}", file=sys.stderr)
            traceback.print_exc()
    print(f"replayed {count} inputs, {failures} failed", file=sys.stderr)
    return 1 if failures else 0


def main(entry: Entry, custom_mutator: Callable[[bytes, int, int], bytes] | None = None) -> None:
    """Fuzz ``entry`` with atheris, or replay the inputs named on the command line."""
    if replaying():
        args = sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "--replay" else sys.argv[1:]
        if atheris is None and any(a.startswith("-") for a in args):
            raise SystemExit("atheris is not installed: only replay (no libFuzzer flags) works; "
                             "`pip install atheris` to fuzz")
        raise SystemExit(replay(entry, args))
    if custom_mutator is None:
        atheris.Setup(sys.argv, entry)
    else:
        atheris.Setup(sys.argv, entry, custom_mutator=custom_mutator)
    atheris.Fuzz()
