"""The child-process helpers of crashutil: what a test reads from a child is all
the child wrote, in order, whichever helper reads it."""

from __future__ import annotations

import pytest
from crashutil import finish, read_line, spawn_python, stop

# Prints a first line and then, in the same single write, the lines 1..LINES-1
# (under PIPE_BUF bytes in all, so they reach the pipe at once): reading the first
# line through a buffered reader reads the others into its buffer too.
BURST_SRC = r'''
import sys
n = int(sys.argv[1])
sys.stdout.write("".join(f"line {i} of {n}\n" for i in range(n)))
sys.stdout.flush()
'''
LINES = 100


def test_finish_returns_the_lines_read_ahead_by_read_line() -> None:
    """read_line() takes one line, while the text wrapper under it read all of them;
    finish() must return the other LINES - 1, whole and in order. (It once used
    Popen.communicate(), which reads the pipe's descriptor: it returned "", or a
    line cut in the middle when the rest had not been written yet.)"""
    proc = spawn_python(BURST_SRC, str(LINES))
    try:
        assert read_line(proc) == f"line 0 of {LINES}"
        out, err = finish(proc)
    finally:
        stop(proc)
    assert out.splitlines() == [f"line {i} of {LINES}" for i in range(1, LINES)]
    assert err == ""


# Writes far more to stderr than a pipe holds before its last stdout line.
CHATTY_SRC = r'''
import sys
print("READY", flush=True)
sys.stderr.write("e" * (1 << 20))
sys.stderr.flush()
print("DONE", flush=True)
'''


def test_finish_reads_stderr_while_it_reads_stdout() -> None:
    """A child blocked on a full stderr pipe never ends its stdout: finish() must
    read both at once."""
    proc = spawn_python(CHATTY_SRC)
    try:
        assert read_line(proc) == "READY"
        out, err = finish(proc, timeout=60)
    finally:
        stop(proc)
    assert out == "DONE\n"
    assert err == "e" * (1 << 20)


def test_finish_fails_with_the_stderr_of_a_child_that_fails() -> None:
    proc = spawn_python("import sys; print('half'); sys.exit('broken: 42')")
    try:
        with pytest.raises(AssertionError, match=r"exited with 1\n--- stderr\nbroken: 42"):
            finish(proc)
    finally:
        stop(proc)


def test_finish_kills_a_child_that_does_not_end_in_time() -> None:
    """finish() gives up after its timeout, kills the child and says so, with what
    the child wrote to stderr."""
    proc = spawn_python("import sys, time\nprint('hung', file=sys.stderr, flush=True)\n"
                        "time.sleep(600)")
    try:
        with pytest.raises(AssertionError, match=r"still running after 0.5 s.*\n.*\nhung"):
            finish(proc, timeout=0.5)
        assert proc.returncode is not None and proc.returncode < 0  # killed by a signal
    finally:
        stop(proc)


def test_stop_ends_a_running_child_and_is_harmless_after_finish() -> None:
    running = spawn_python("import time; time.sleep(600)")
    stop(running)
    assert running.returncode is not None and running.returncode < 0
    assert running.stdout is not None and running.stdout.closed
    done = spawn_python("print('x')")
    assert finish(done) == ("x\n", "")
    stop(done)
    assert done.returncode == 0
