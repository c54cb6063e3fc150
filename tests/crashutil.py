"""Helpers for crash, corruption and multi-process tests.

Byte editing of data files (flip, set, truncate, append), a frame listing
built on the frame scan of the helper (FORMAT.md §3, §10), and ways to run a
Python snippet in a child process with the interpreter running the tests
(``sys.executable``, so the child imports the same ``myosotis``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from myosotis.api.handles import Node
from myosotis.format.constants import (
    FRAME_FLAGS_ALLOWED,
    FRAME_HEADER_SIZE,
    HEADER_SIZE,
    SNAPSHOT_PREFIX_STRUCT,
)
from myosotis.format.helper import scan_frames

PathLike = str | os.PathLike[str]

KIND_COMMIT = 1
KIND_CHECKPOINT = 2
KIND_GENESIS = 3

TESTS_DIR = Path(__file__).resolve().parent
REPO_DIR = TESTS_DIR.parent


# ---------------------------------------------------------------------- byte editing


def read_bytes(path: PathLike) -> bytes:
    return Path(path).read_bytes()


def flip_byte(path: PathLike, offset: int, mask: int = 0xFF) -> int:
    """XOR the byte at ``offset`` with ``mask`` in place; return the new value."""
    if not 0 < mask <= 0xFF:
        raise ValueError(f"mask must be in 1..255, got {mask}")
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(1)
        if len(old) != 1:
            raise ValueError(f"offset {offset} is past the end of {path}")
        new = old[0] ^ mask
        f.seek(offset)
        f.write(bytes([new]))
    return new


def flip_bit(path: PathLike, offset: int, bit: int) -> int:
    """Flip bit ``bit`` (0 = least significant) of the byte at ``offset``."""
    return flip_byte(path, offset, 1 << bit)


def set_byte(path: PathLike, offset: int, value: int) -> None:
    """Overwrite the byte at ``offset`` with ``value``."""
    set_bytes(path, offset, bytes([value]))


def set_bytes(path: PathLike, offset: int, data: bytes) -> None:
    """Overwrite ``len(data)`` bytes at ``offset`` (must lie inside the file)."""
    size = os.path.getsize(path)
    if offset + len(data) > size:
        raise ValueError(f"writing {len(data)} bytes at {offset} passes the end ({size})")
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def truncate_to(path: PathLike, size: int) -> None:
    """Cut (or zero-extend) the file to ``size`` bytes."""
    os.truncate(path, size)


def append_bytes(path: PathLike, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def copy_prefix(src: PathLike, dst: PathLike, size: int) -> None:
    """Write the first ``size`` bytes of ``src`` to ``dst`` (replacing it)."""
    Path(dst).write_bytes(read_bytes(src)[:size])


# ---------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Frame:
    """One frame of a file, as found by the frame scan (FORMAT.md §3)."""

    offset: int
    kind: int
    payload_length: int

    @property
    def payload_start(self) -> int:
        return self.offset + FRAME_HEADER_SIZE

    @property
    def payload_end(self) -> int:
        return self.payload_start + self.payload_length

    @property
    def end(self) -> int:
        """Offset right after the frame, padding included (where the next frame starts)."""
        return self.payload_end + (-self.payload_length % 8)


def frames_of(data: bytes, verify_payload: bool = True) -> list[Frame]:
    """The frames of the valid prefix of ``data`` (a whole file's bytes)."""
    if len(data) <= HEADER_SIZE:
        return []
    flags = FRAME_FLAGS_ALLOWED.get(int.from_bytes(data[8:10], "little"), 0)  # R23
    result = scan_frames(data, HEADER_SIZE, verify_payload, flags)
    frames = []
    for off, kind in zip(result.offsets, result.kinds, strict=True):
        n = struct.unpack_from("<I", data, off)[0]
        frames.append(Frame(int(off), int(kind), n))
    return frames


def frame_offsets(path: PathLike) -> list[Frame]:
    """The frames of the file at ``path`` (offset, kind, payload length), in file order."""
    return frames_of(read_bytes(path))


def checkpoint_fields(data: bytes, frame: Frame) -> tuple[int, bytes, bytes]:
    """``(seq, commit_id, state_hash)`` of a checkpoint or genesis frame (FORMAT.md §8.2)."""
    seq, cid, sh = SNAPSHOT_PREFIX_STRUCT.unpack_from(data, frame.payload_start)
    return int(seq), bytes(cid), bytes(sh)


def commit_seq(data: bytes, frame: Frame) -> int:
    """The ``seq`` field of a commit frame (FORMAT.md §7)."""
    return int(struct.unpack_from("<Q", data, frame.payload_start)[0])


# ---------------------------------------------------------------------- child processes


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child interpreter: ours, plus the repo on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_DIR), str(TESTS_DIR), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_python(code: str, *args: str, cwd: PathLike | None = None, timeout: float = 60.0,
               input: str | None = None, env: dict[str, str] | None = None,
               check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``sys.executable -c`` and wait; ``args`` become ``sys.argv[1:]``.

    With ``check`` a non-zero exit fails with the child's stderr in the message.
    """
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, input=input,
                          capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else child_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"child exited with {proc.returncode}\n--- stdout\n{proc.stdout}"
                             f"\n--- stderr\n{proc.stderr}")
    return proc


def spawn_python(code: str, *args: str, cwd: PathLike | None = None,
                 env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``code`` in a child interpreter with line-buffered text pipes on stdin/stdout."""
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1,
                            env=env if env is not None else child_env())


def read_line(proc: subprocess.Popen[str], expect_prefix: str | None = None) -> str:
    """Read one line from the child's stdout; fail with its stderr if it ended instead."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        err = proc.stderr.read() if proc.stderr is not None else ""
        raise AssertionError(f"child ended (rc={proc.returncode}) before answering:\n{err}")
    line = line.rstrip("\n")
    if expect_prefix is not None and not line.startswith(expect_prefix):
        raise AssertionError(f"expected a line starting with {expect_prefix!r}, got {line!r}")
    return line


def send_line(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def drain(proc: subprocess.Popen[str], timeout: float = 20.0) -> tuple[str, str]:
    """Close the child's stdin, wait for it to end, return the rest of its stdout and
    all of its stderr; its pipes are closed afterwards. If it does not end within
    ``timeout``, kill it and fail (AssertionError) with its stderr.

    Stdout is read through ``proc.stdout``, the text wrapper :func:`read_line` reads:
    its buffer may hold lines read ahead past the last line returned, which come
    first. ``proc.communicate()`` reads the pipe's descriptor and never sees that
    buffer, so after a :func:`read_line` it can lose lines or return a cut one.
    Stderr is read at the same time, so a child with a full stderr pipe cannot block.
    """
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    with contextlib.suppress(BrokenPipeError):  # the child may be gone already
        proc.stdin.close()  # end of input: a child reading commands stops
    with ThreadPoolExecutor(max_workers=2) as pool:
        reads = [pool.submit(stream.read) for stream in (proc.stdout, proc.stderr)]
        _, late = futures_wait(reads, timeout)
        if late:
            proc.kill()  # ends both reads (end of file), so the pool can shut down
    out, err = (r.result() for r in reads)
    proc.stdout.close()
    proc.stderr.close()
    proc.wait(timeout=20)
    if late:
        raise AssertionError(f"child still running after {timeout} s (killed)\n--- stderr\n"
                             f"{err}")
    return out, err


def finish(proc: subprocess.Popen[str], timeout: float = 20.0) -> tuple[str, str]:
    """:func:`drain` the child and check that it exited 0; return its remaining stdout
    and its stderr."""
    out, err = drain(proc, timeout)
    if proc.returncode != 0:
        raise AssertionError(f"child exited with {proc.returncode}\n--- stderr\n{err}")
    return out, err


def stop(proc: subprocess.Popen[str]) -> None:
    """End a child for good (in a ``finally``): kill it if it still runs, reap it and
    close its pipes, dropping what nobody read. Harmless after :func:`finish`."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=20)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(BrokenPipeError):  # stdin: unsent lines, child gone
                stream.close()


# ---------------------------------------------------------------------- states


def plain(v: Any) -> Any:
    """A comparable copy of a read value: references become ``("ref", id)``."""
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, Node):
        return ("ref", v.id)
    return v


def dump_state(reader: Any) -> dict[int, tuple[str, bool, dict[str, Any]]]:
    """Every node (tombstoned ones too) of a Memory or View: id -> (type, deleted, fields)."""
    return {n.id: (n.type, n.deleted, plain(n.fields())) for n in reader.nodes(deleted=True)}


class FixedClock:
    """A deterministic clock: ``start``, ``start + step``, ... microseconds."""

    def __init__(self, start: int = 1_700_000_000_000_000, step: int = 1_000) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> int:
        t = self.now
        self.now += self.step
        return t


# ---------------------------------------------------------------------- fork server

# The loop of a fork server: after the prelude (which defines the functions that
# children run) it reads one JSON list ``[function, *args]`` per line on stdin,
# forks a child that calls it, answers "PID <pid>", waits for the child and
# answers "EXIT <wait status>". A child's stdin is /dev/null; an exception in it
# goes to the server's stderr and makes its exit code 1.
_FORK_LOOP_SRC = r'''
import json as _json
import os as _os
import sys as _sys
import traceback as _traceback

for _line in _sys.stdin:
    _func, *_args = _json.loads(_line)
    _sys.stdout.flush()
    _sys.stderr.flush()
    _pid = _os.fork()
    if _pid == 0:
        _code = 0
        try:
            _null = _os.open(_os.devnull, _os.O_RDONLY)
            _os.dup2(_null, 0)
            globals()[_func](*_args)
        except SystemExit as _e:
            _code = _e.code if isinstance(_e.code, int) else 1
            if not isinstance(_e.code, int):
                _sys.stderr.write(f"{_func}: {_e.code}\n")
        except BaseException:
            _traceback.print_exc()
            _code = 1
        finally:
            _sys.stdout.flush()
            _sys.stderr.flush()
            _os._exit(_code)
    _sys.stdout.write(f"PID {_pid}\n")
    _sys.stdout.flush()
    _, _status = _os.waitpid(_pid, 0)
    _sys.stdout.write(f"EXIT {_status}\n")
    _sys.stdout.flush()
'''


class ForkServer:
    """A child interpreter that imports what ``prelude`` imports once, then forks a
    fresh process per :meth:`start`: a child costs a fork, not an interpreter start
    (what a test that kills hundreds of writers needs). One child at a time.

    The server's stderr (the children's too) goes to ``stderr_path``, so a chatty
    or failing child can never block on a full pipe; :meth:`stderr_text` reads it.
    """

    def __init__(self, prelude: str, stderr_path: PathLike,
                 env: dict[str, str] | None = None) -> None:
        self.stderr_path = Path(stderr_path)
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", prelude + _FORK_LOOP_SRC], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1,
                env=env if env is not None else child_env())
        self.pid: int | None = None  # the running child

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def _line(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=20)
            raise AssertionError(f"the fork server ended (rc={self.proc.returncode}):\n"
                                 f"{self.stderr_text()}")
        if not line.startswith(prefix + " "):
            raise AssertionError(f"fork server: expected {prefix!r}, got {line!r}")
        return line[len(prefix) + 1:].strip()

    def start(self, func: str, *args: Any) -> int:
        """Fork a child that runs ``func(*args)`` (JSON-able args); return its pid."""
        if self.pid is not None:
            raise RuntimeError("the previous child was not waited for")
        send_line(self.proc, json.dumps([func, *args]))
        self.pid = int(self._line("PID"))
        return self.pid

    def running(self) -> bool:
        """Whether the child started last still runs. The server reaps a child as soon
        as it ends, so this turns false then, even before :meth:`wait` read its status."""
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def wait(self) -> int:
        """Wait for the child to end; return its ``os.waitpid`` status."""
        if self.pid is None:
            raise RuntimeError("no child is running")
        status = int(self._line("EXIT"))
        self.pid = None
        return status

    def kill_and_wait(self) -> int:
        """SIGKILL the child (if it still runs) and wait for it; return its status."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        return self.wait()

    def close(self) -> None:
        """End the server (killing a running child first)."""
        if self.pid is not None:
            with contextlib.suppress(AssertionError):
                self.kill_and_wait()
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def describe_status(status: int) -> str:
    """A wait status in words: "killed by SIGKILL", "exit 3", ..."""
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    if os.WIFEXITED(status):
        return f"exit {os.WEXITSTATUS(status)}"
    return f"status {status}"


# ---------------------------------------------------------------------- acknowledgement log


class AckLog:
    """A side file of acknowledged commits, one line ``<seq> <state hash> <label>`` each,
    written and fsynced by a writer after ``commit()`` returned and before its next
    commit. A process killed in the middle of a line leaves it incomplete (no
    newline): it acknowledges nothing, and the next writer cuts it (:meth:`open`)."""

    def __init__(self, fd: int, records: list[tuple[int, str, str]]) -> None:
        self.fd = fd
        self.records = records

    @classmethod
    def open(cls, path: PathLike) -> AckLog:
        """Open for appending (creating it), cutting an incomplete last line."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        data = os.read(fd, os.fstat(fd).st_size)
        whole = data[:data.rfind(b"\n") + 1]
        if len(whole) != len(data):
            os.ftruncate(fd, len(whole))
            os.fsync(fd)
        return cls(fd, parse_acks(whole))

    @property
    def last_seq(self) -> int:
        return self.records[-1][0] if self.records else 0

    def append(self, seq: int, state_hash: str, label: str) -> None:
        os.write(self.fd, f"{seq} {state_hash} {label}\n".encode())
        os.fsync(self.fd)
        self.records.append((seq, state_hash, label))

    def close(self) -> None:
        os.close(self.fd)


def parse_acks(data: bytes) -> list[tuple[int, str, str]]:
    """The complete lines of an acknowledgement log as ``(seq, hash, label)``."""
    out = []
    for line in data[:data.rfind(b"\n") + 1].decode().splitlines():
        seq, h, label = line.split(" ", 2)
        out.append((int(seq), h, label))
    return out


def read_acks(path: PathLike) -> list[tuple[int, str, str]]:
    """The acknowledged commits of the log at ``path`` (an incomplete last line is not)."""
    return parse_acks(read_bytes(path)) if Path(path).exists() else []
