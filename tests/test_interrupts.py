"""Interrupt sweeps: an exception raised at every traced line of Myosotis code.

An exception of any kind (KeyboardInterrupt from Ctrl-C, SystemExit from a
watchdog, MemoryError) can arrive between any two lines. For each operation
below, the sweep first counts the line events of ``myosotis/`` code it runs,
then runs it again once per line with an exception raised at that line
(``sys.settrace``), and afterwards does what a user would: retry once, refresh
again, close and reopen. The claims checked at every point:

- the injected exception, not another one, reaches the caller;
- every acknowledged commit is in the file exactly once, and nothing else is;
- the file opens and a full verification (fsck) finds no error;
- a handle never shows a state that was not committed: what it shows has
  the state hash of a committed state, or it raises InterruptedOperationError.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from model import FixedClock

import myosotis
from myosotis import InterruptedOperationError, Memory, MyosotisError, WriterFailedError
from myosotis.format import helper

# The sweeps exercise the Python layers above the helper; with the pure-Python twin
# they would only take minutes longer (its CRC is slow): the fast pure pass skips them.
pytestmark = [pytest.mark.slow] if helper.IMPLEMENTATION == "python" else []

MYO_DIR = os.path.dirname(myosotis.__file__) + os.sep
STORAGE_FILEOPS = os.path.join(MYO_DIR, "storage", "fileops.py")


class Interrupter:
    """Raises ``exc()`` at the ``at``-th line event in Myosotis code (never if ``at`` is 0).

    Only lines of files under ``prefix`` count. Python removes a trace function
    that raises, so exactly one exception is injected.
    """

    def __init__(self, at: int, exc: Callable[[], BaseException], prefix: str = MYO_DIR) -> None:
        self.at, self.exc, self.prefix = at, exc, prefix
        self.count = 0
        self.fired = False

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        # Not finalizers: Python reports an exception raised in __del__ and drops
        # it, whatever the code does (an interrupt arriving there is lost).
        code = frame.f_code
        if code.co_name == "__del__" or not code.co_filename.startswith(self.prefix):
            return None
        return self._local

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.count += 1
            if self.count == self.at:
                self.fired = True
                raise self.exc()
        return self._local

    def run(self, fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
        sys.settrace(self._global)
        try:
            return fn(), None
        except BaseException as e:  # noqa: BLE001 - the sweep inspects every exception
            # As after a user's except block: the frames the exception went
            # through (and what their locals held) are let go.
            chained: BaseException | None = e
            while chained is not None:
                chained.__traceback__ = None
                chained = chained.__context__
            return None, e
        finally:
            sys.settrace(None)


def count_lines(fn: Callable[[], Any], prefix: str = MYO_DIR) -> int:
    it = Interrupter(0, KeyboardInterrupt, prefix)
    _, err = it.run(fn)
    assert err is None, err
    return it.count


def quiet(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with Myosotis's warnings (e.g. dropped staged changes) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def close_quietly(mem: Memory) -> None:
    """Close as a user would after an error: close, and once more if that was interrupted."""
    quiet(mem.close)
    assert mem.closed


def committed_hashes(path: str) -> list[str]:
    """State hash after every commit of the file, oldest first (index 0: seq 1)."""
    with Memory.open(path, readonly=True) as mem:
        return [mem.at(c.seq).state_hash() for c in mem.history()]


def check_file(path: str, expected: list[list[str]]) -> list[str]:
    """The file opens, fsck is clean, and its per-commit hashes are one of ``expected``."""
    report = myosotis.Memory.open(path, readonly=True)
    try:
        assert report.verify().ok, report.verify()
    finally:
        report.close()
    got = committed_hashes(path)
    assert got in expected, f"history {got} is none of {expected}"
    return got


def make_writer(path: str, **kw: Any) -> Memory:
    return Memory.open(path, clock=FixedClock(), **kw)


EXCEPTIONS: list[Callable[[], BaseException]] = [KeyboardInterrupt, MemoryError,
                                                 lambda: SystemExit(3)]
EXC_IDS = ["KeyboardInterrupt", "MemoryError", "SystemExit"]


def eio() -> BaseException:
    """An OSError as a failing system call raises it (swept over the file layer)."""
    return OSError(errno.EIO, "injected I/O error")


def sweep(tmp_path: Path, name: str, setup: Callable[[str], Any],
          act: Callable[[Any], Any], after: Callable[[str, Any, Any, BaseException | None], None],
          exc: Callable[[], BaseException], prefix: str = MYO_DIR,
          expect: type[BaseException] | tuple[type[BaseException], ...] | None = None,
          stride: int = 1, may_succeed: bool = False) -> int:
    """Run ``act(setup(path))`` once per traced line with ``exc`` raised there (every
    ``stride``-th line).

    ``after(path, ctx, result, err)`` checks the outcome. ``may_succeed``: the
    operation may absorb the exception (an I/O error in a step that is allowed
    to fail, such as a directory sync after a rename, which warns). Returns the
    number of points swept.
    """
    probe = tmp_path / f"{name}-probe.myo"
    ctx = setup(str(probe))
    total = count_lines(lambda: act(ctx), prefix)
    quiet(lambda: ctx.close() if hasattr(ctx, "close") else None)
    assert total > 0
    want = expect or type(exc())
    at = 1 - stride
    swept = 0
    while True:
        at += stride
        path = str(tmp_path / f"{name}-{at}.myo")
        ctx = setup(path)
        it = Interrupter(at, exc, prefix)
        result, err = it.run(lambda: act(ctx))  # noqa: B023 - run at once
        if not it.fired:
            # Past the last line. The count can differ a little from the
            # probe's (caches warmed by the setup); it must not be far off.
            quiet(lambda: ctx.close() if hasattr(ctx, "close") else None)  # noqa: B023
            assert at > total * 0.8, f"only {at - 1} of about {total} points reached"
            return swept
        assert isinstance(err, want) or (may_succeed and err is None), \
            f"point {at}/{total}: {err!r} reached the caller"
        after(path, ctx, result, err)
        swept += 1
        for leftover in Path(tmp_path).glob(f"{name}-{at}.myo*"):
            leftover.unlink()


# --------------------------------------------------------------------------- commit


class WriterCtx:
    def __init__(self, path: str) -> None:
        self.mem = make_writer(path)
        n = self.mem.create("task", title="first", items=[1, 2])
        self.first = self.mem.commit("first")
        self.h1 = self.mem.state_hash()
        n.title = "second"
        n.items.append(3)
        self.mem.create("note", about=n)
        self.h2 = self.mem.state_hash()  # with the staged changes

    def close(self) -> None:
        self.mem.close()


def after_interrupted_commit(path: str, ctx: WriterCtx, result: Any,
                             err: BaseException | None) -> None:
    mem = ctx.mem
    # A user retries once. Either the handle took the interrupt cleanly (the
    # change is still staged, or it was committed) or it refuses with a clear
    # error: never a second copy of the commit.
    retried = None
    try:
        retried = mem.commit("second")
    except InterruptedOperationError:
        # Past its point of no return: nothing else settles the handle, not an
        # edit (which an exception would turn into a weaker stand-in: a review
        # found a commit then appended twice) and not discard().
        with pytest.raises(InterruptedOperationError):
            mem.create("other")
        with pytest.raises(InterruptedOperationError):
            mem.discard()
    except WriterFailedError:
        pass
    else:
        if retried is not None:
            assert mem.state_hash() == ctx.h2
    close_quietly(mem)
    got = check_file(path, [[ctx.h1], [ctx.h1, ctx.h2]])
    if retried is not None:
        assert got == [ctx.h1, ctx.h2]


@pytest.mark.parametrize("exc", EXCEPTIONS, ids=EXC_IDS)
def test_commit_interrupted_at_every_line_then_retried(tmp_path: Path,
                                                       exc: Callable[[], BaseException]) -> None:
    n = sweep(tmp_path, "commit", WriterCtx, lambda c: c.mem.commit("second"),
              after_interrupted_commit, exc)
    assert n > 40


def test_commit_with_os_error_at_every_file_layer_line(tmp_path: Path) -> None:
    """An OSError at any line of the file layer (where system calls are made)
    reaches the user as a MyosotisError, and nothing is lost or doubled."""
    sweep(tmp_path, "commit-eio", WriterCtx, lambda c: c.mem.commit("second"),
          after_interrupted_commit, eio, prefix=STORAGE_FILEOPS, expect=MyosotisError,
          may_succeed=True)


# --------------------------------------------------------------------------- checkpoint


def after_interrupted_checkpoint(path: str, ctx: WriterCtx, result: Any,
                                 err: BaseException | None) -> None:
    mem = ctx.mem
    with contextlib.suppress(InterruptedOperationError, WriterFailedError):
        mem.checkpoint()
    close_quietly(mem)
    check_file(path, [[ctx.h1, ctx.h2]])


class CheckpointCtx(WriterCtx):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.mem.commit("second")


@pytest.mark.parametrize("exc", [*EXCEPTIONS[:2], eio], ids=[*EXC_IDS[:2], "EIO-file-layer"])
def test_checkpoint_interrupted_at_every_line(tmp_path: Path,
                                              exc: Callable[[], BaseException]) -> None:
    io = exc is eio  # an OSError where a system call is made, reported as a MyosotisError
    sweep(tmp_path, "checkpoint", CheckpointCtx, lambda c: c.mem.checkpoint(),
          after_interrupted_checkpoint, exc, prefix=STORAGE_FILEOPS if io else MYO_DIR,
          expect=MyosotisError if io else None, may_succeed=io)


# --------------------------------------------------------------------------- compact


def after_interrupted_compact(path: str, ctx: WriterCtx, result: Any,
                              err: BaseException | None) -> None:
    mem = ctx.mem
    with contextlib.suppress(InterruptedOperationError, WriterFailedError):
        quiet(mem.compact)
    close_quietly(mem)
    with Memory.open(path, readonly=True) as r:
        assert r.head is not None and r.head.seq == 2
        assert r.state_hash() == ctx.h2
        assert r.verify().ok


@pytest.mark.parametrize("exc", [*EXCEPTIONS[:2], eio], ids=[*EXC_IDS[:2], "EIO-file-layer"])
def test_compact_interrupted_at_every_line(tmp_path: Path,
                                           exc: Callable[[], BaseException]) -> None:
    io = exc is eio
    sweep(tmp_path, "compact", CheckpointCtx, lambda c: c.mem.compact(),
          after_interrupted_compact, exc, prefix=STORAGE_FILEOPS if io else MYO_DIR,
          expect=MyosotisError if io else None, may_succeed=io)


# --------------------------------------------------------------------------- transaction


def transaction_act(ctx: TxCtx) -> None:
    with ctx.mem.transaction("tx"):
        node = ctx.mem[1]
        node.title = "second"
        node.items.append(3)
        ctx.mem.create("note", about=node)


class TxCtx:
    def __init__(self, path: str) -> None:
        self.mem = make_writer(path)
        self.mem.create("task", title="first", items=[1, 2])
        self.mem.commit("first")
        self.h1 = self.mem.state_hash()
        self.h2 = ""

    def close(self) -> None:
        self.mem.close()


def after_interrupted_transaction(path: str, ctx: TxCtx, result: Any,
                                  err: BaseException | None) -> None:
    mem = ctx.mem
    # The transaction either committed or left nothing staged (or the
    # handle refuses to be used until reopened).
    with contextlib.suppress(InterruptedOperationError):
        assert mem.pending == 0
    close_quietly(mem)
    got = committed_hashes(path)
    assert len(got) in (1, 2) and got[0] == ctx.h1
    with Memory.open(path, readonly=True) as r:
        assert r.verify().ok
        if len(got) == 2:
            assert r[1].title == "second" and list(r[1].items) == [1, 2, 3]
            assert r[2].about.id == 1


def test_transaction_interrupted_at_every_line(tmp_path: Path) -> None:
    sweep(tmp_path, "tx", TxCtx, transaction_act, after_interrupted_transaction,
          KeyboardInterrupt)


# --------------------------------------------------------------------------- open and close


def after_interrupted_open(path: str, ctx: str, result: Any, err: BaseException | None) -> None:
    if isinstance(result, Memory):  # pragma: no cover - the exception always arrives
        result.close()
    # No lock, file descriptor or half-created file may be left behind: the
    # next open works and sees the one commit.
    with make_writer(path) as mem:
        assert mem.head is not None and mem.head.seq == 1
        assert mem[1].title == "first"


def open_setup(path: str) -> str:
    with make_writer(path) as mem:
        mem.create("task", title="first")
        mem.commit("first")
    return path


def test_open_interrupted_at_every_line(tmp_path: Path) -> None:
    sweep(tmp_path, "open", open_setup, lambda p: make_writer(p), after_interrupted_open,
          KeyboardInterrupt)


def test_create_interrupted_at_every_line(tmp_path: Path) -> None:
    """Creating a new file, interrupted anywhere: the next open creates or reads it."""
    def after(path: str, ctx: str, result: Any, err: BaseException | None) -> None:
        with make_writer(path) as mem:
            assert mem.head is None and len(mem) == 0
        assert not [p for p in os.listdir(os.path.dirname(path))
                    if ".create-" in p or ".rewrite-" in p]

    sweep(tmp_path, "create", lambda p: p, lambda p: make_writer(p), after, KeyboardInterrupt)


def test_close_interrupted_at_every_line(tmp_path: Path) -> None:
    def setup(path: str) -> Memory:
        mem = make_writer(path)
        mem.create("task", title="first")
        mem.commit("first")
        return mem

    def after(path: str, mem: Memory, result: Any, err: BaseException | None) -> None:
        close_quietly(mem)  # closing again finishes the job
        with make_writer(path) as again:  # the writer lock was released
            assert again[1].title == "first"

    sweep(tmp_path, "close", setup, lambda m: m.close(), after, KeyboardInterrupt)


# --------------------------------------------------------------------------- staging


def test_staging_interrupted_at_every_line_is_settled_by_discard(tmp_path: Path) -> None:
    def setup(path: str) -> WriterCtx:
        return WriterCtx(path)

    def act(ctx: WriterCtx) -> None:
        ctx.mem[1].items.insert(0, {"deep": [1, 2, {"x": "y"}]})

    def after(path: str, ctx: WriterCtx, result: Any, err: BaseException | None) -> None:
        mem = ctx.mem
        # Either the edit was refused whole and the earlier staged changes
        # are intact, or the handle asks for discard().
        with contextlib.suppress(InterruptedOperationError):
            assert mem.state_hash() == ctx.h2
        mem.discard()
        assert mem.pending == 0 and mem.state_hash() == ctx.h1
        mem[1].title = "third"
        mem.commit("third")
        close_quietly(mem)
        got = committed_hashes(path)
        assert len(got) == 2 and got[0] == ctx.h1

    sweep(tmp_path, "stage", setup, act, after, KeyboardInterrupt)


# --------------------------------------------------------------------------- refresh


class ReaderCtx:
    """A writer with three commits (a checkpoint between) and a reader at the first."""

    def __init__(self, path: str, compact: bool = False) -> None:
        self.writer = make_writer(path)
        n = self.writer.create("task", title="first", items=[1, 2])
        self.writer.commit("first")
        self.hashes = [self.writer.state_hash()]
        self.reader = Memory.open(path, readonly=True)
        n.title = "second"
        n.items.append(3)
        self.writer.commit("second")
        self.hashes.append(self.writer.state_hash())
        self.writer.checkpoint()
        self.writer.create("note", about=n, text="third")
        n.items[0] = 10
        self.writer.commit("third")
        self.hashes.append(self.writer.state_hash())
        if compact:
            self.writer.compact()

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


def after_interrupted_refresh(path: str, ctx: ReaderCtx, result: Any,
                              err: BaseException | None) -> None:
    reader = ctx.reader
    try:
        seen = reader.state_hash()
    except InterruptedOperationError:
        seen = None
    else:
        assert seen in ctx.hashes, "the reader shows a state that was never committed"
        # What it shows agrees with its own head.
        head = reader.head
        assert head is not None and ctx.hashes[head.seq - 1] == seen
    n = reader.refresh()
    assert reader.head is not None and reader.head.seq == 3
    assert reader.state_hash() == ctx.hashes[2]
    assert reader[2].text == "third" and list(reader[1].items) == [10, 2, 3]
    if seen == ctx.hashes[0]:
        assert n == 2
    ctx.close()


def test_refresh_interrupted_at_every_line(tmp_path: Path) -> None:
    sweep(tmp_path, "refresh", ReaderCtx, lambda c: c.reader.refresh(),
          after_interrupted_refresh, KeyboardInterrupt)


def test_refresh_after_compaction_interrupted_at_every_line(tmp_path: Path) -> None:
    sweep(tmp_path, "refresh-c", lambda p: ReaderCtx(p, compact=True),
          lambda c: c.reader.refresh(), after_interrupted_refresh, KeyboardInterrupt)


def test_refresh_with_memory_error_at_every_line(tmp_path: Path) -> None:
    sweep(tmp_path, "refresh-m", ReaderCtx, lambda c: c.reader.refresh(),
          after_interrupted_refresh, MemoryError)


def test_multi_mutation_edit_interrupted_at_every_line_is_all_or_nothing(tmp_path: Path) -> None:
    """``extend`` stages several mutations: interrupted between two of them, the
    memory never shows half of the edit."""
    def act(ctx: WriterCtx) -> None:
        ctx.mem[1].items.extend([4, 5, {"six": 6}])

    def after(path: str, ctx: WriterCtx, result: Any, err: BaseException | None) -> None:
        mem = ctx.mem
        try:
            items = list(mem[1].items)
        except InterruptedOperationError:
            mem.discard()
            assert mem.pending == 0 and mem.state_hash() == ctx.h1
        else:
            assert items == [1, 2, 3], "a refused or interrupted extend left part of it"
            assert mem.state_hash() == ctx.h2
        close_quietly(mem)

    sweep(tmp_path, "extend", WriterCtx, act, after, KeyboardInterrupt)


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize("stride", [pytest.param(1, marks=pytest.mark.slow), 9])
def test_cli_commit_interrupted_at_every_line_then_retried(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], stride: int) -> None:
    """``myo commit`` interrupted anywhere (every line in the slow suite, every 9th
    in the default one: a CLI run costs ~0.1 s), then run again as a user would:
    the change is committed exactly once and the file passes fsck."""
    from myosotis.cli import main

    def setup(path: str) -> str:
        assert main(["init", path]) == 0
        assert main(["create", "-f", path, "Agent"]) == 0
        assert main(["set", "-f", path, "1", "goal", "Explore"]) == 0
        return path

    def act(path: str) -> None:
        code = main(["commit", "-f", path, "first goal"])
        if code:  # click reports KeyboardInterrupt as "Aborted!", exit status 1
            raise SystemExit(code)

    def after(path: str, ctx: str, result: Any, err: BaseException | None) -> None:
        main(["commit", "-f", path, "first goal"])  # the retry: done, or nothing to do
        capsys.readouterr()
        with Memory.open(path, readonly=True) as mem:
            labels = [c.label for c in mem.history()]
            assert labels == ["first goal"], labels
            assert mem[1].goal == "Explore"
            assert mem.verify().ok
        assert main(["status", "-f", path]) == 0
        capsys.readouterr()

    sweep(tmp_path, "cli", setup, act, after, KeyboardInterrupt,
          expect=(KeyboardInterrupt, SystemExit), stride=stride)
