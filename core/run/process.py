"""Starting a sandbox's launcher process, feeding its output on, and ending it on time.

The launcher (`unshare`, `proot`, the entry program) starts in a session of its own with an
empty standard input and only the descriptors it is given. One loop, with no threads, waits for
its exit (a pidfd where the kernel has them), copies the step's output to the sink, collects the
entry program's status lines and the launcher's own diagnostics, and kills the process group
with SIGKILL when the time is up. Processes of the group still alive when the launcher exits
are killed too, before the launcher is reaped, so its group id cannot have been reused.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from core.errors import SandboxError

log = logging.getLogger(__name__)

_CHUNK = 65536
_DIAGNOSTICS_LIMIT = 16384
_POLL_SECONDS = 0.02
_PR_SET_PDEATHSIG = 1
_DRAIN_SECONDS = 2.0  # after the exit, how long output of escaped processes is still read


@dataclass(frozen=True, kw_only=True)
class Launch:
    """A launcher command.

    With `entry`, it is the entry program's: the status pipe and a descriptor for the step's
    standard error are passed and their numbers appended to `argv` (-1: none), and the
    launcher's own standard error is kept as diagnostics.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str]
    pass_fds: tuple[int, ...] = ()
    entry: bool = False
    reap: Callable[[int], None] | None = None  # kills what a process group kill cannot reach
    umask: int = -1  # the launcher's umask (-1: the builder's own)


@dataclass(frozen=True)
class Outcome:
    """How the launcher ended."""

    pid: int  # the launcher's
    returncode: int  # as `subprocess` reports it: negative for a signal
    timed_out: bool
    duration: float
    status: bytes = b""  # what the entry program reported (`core.run.handoff`)
    diagnostics: str = ""


def _fileno(stream: BinaryIO | None) -> int | None:
    if stream is None:
        return None
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None


class _Wiring:
    """The descriptors of one launch; `close` releases the builder's copies."""

    def __init__(self, output: BinaryIO | None, *, status: bool, step_stderr: bool) -> None:
        self._ours: list[int] = []  # closed right after the launch
        self.reads: dict[int, str] = {}  # descriptor -> "output" | "status" | "diagnostics"
        if output is not None:
            output.flush()
        target = _fileno(output)
        self.stdout: int | None = target
        if output is not None and target is None:
            self.stdout = self._pipe("output")[1]
        self.stderr: int | None = self.stdout
        self.step_stderr: int | None = None
        if step_stderr:
            # a private number: the entry program marks it close-on-exec
            self.step_stderr = self._dup(self.stdout if self.stdout is not None else 2)
            _, self.stderr = self._pipe("diagnostics")
        self.status: int | None = self._pipe("status")[1] if status else None

    def _pipe(self, role: str) -> tuple[int, int]:
        read, write = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(read, False)
        self.reads[read] = role
        self._ours.append(write)
        return read, write

    def _dup(self, fd: int) -> int:
        copy = os.dup(fd)
        self._ours.append(copy)
        return copy

    def close_launch_ends(self) -> None:
        while self._ours:
            os.close(self._ours.pop())

    def close(self) -> None:
        self.close_launch_ends()
        for fd in list(self.reads):
            os.close(fd)
        self.reads.clear()


def supervise(launch: Launch, *, output: BinaryIO | None, timeout: float | None) -> Outcome:
    """Run `launch` to its end; `output` gets the step's output (None: the builder's own)."""
    wiring = _Wiring(output, status=launch.entry, step_stderr=launch.entry)
    extra = tuple(fd for fd in (wiring.status, wiring.step_stderr) if fd is not None)
    argv = launch.argv
    if launch.entry:
        argv += tuple(str(-1 if fd is None else fd) for fd in (wiring.status, wiring.step_stderr))
    started = time.monotonic()
    try:
        try:
            process = subprocess.Popen(
                argv, env=dict(launch.env), stdin=subprocess.DEVNULL,
                stdout=wiring.stdout, stderr=wiring.stderr,
                pass_fds=launch.pass_fds + extra, start_new_session=True, cwd="/",
                umask=launch.umask, preexec_fn=_death_signal())
        except OSError as e:
            raise SandboxError(f"cannot start {launch.argv[0]}: {e.strerror}") from e
        wiring.close_launch_ends()
        watch = _Watch(process, wiring, output, launch.reap, started, timeout)
        try:
            return watch.run()
        except BaseException:  # the sink failed or we were interrupted: leave nothing running
            watch.kill()
            process.wait()
            raise
    finally:
        wiring.close()


def _death_signal() -> Callable[[], None] | None:
    """A pre-exec hook that makes the launcher get SIGKILL when the builder dies (however it
    dies: its session of its own keeps it out of a process group kill). `unshare
    --kill-child` and proot pass the kill on to the step. Resolved before the fork: the child
    only makes one system call."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the builder died before the signal was armed
            os._exit(137)

    return arm


class _Watch:
    """The waiting loop of one launch (working state)."""

    def __init__(self, process: subprocess.Popen[bytes], wiring: _Wiring,
                 output: BinaryIO | None, reap: Callable[[int], None] | None, started: float,
                 timeout: float | None) -> None:
        self.process, self.wiring, self.output, self.reap = process, wiring, output, reap
        self.deadline = None if timeout is None else started + timeout
        self.started = started
        self.collected: dict[str, bytearray] = {"status": bytearray(), "diagnostics": bytearray()}
        self.timed_out = False
        self.ended: float | None = None

    def run(self) -> Outcome:
        with selectors.DefaultSelector() as selector, _pidfd(self.process.pid) as pidfd:
            for fd in self.wiring.reads:
                selector.register(fd, selectors.EVENT_READ)
            if pidfd is not None:
                selector.register(pidfd, selectors.EVENT_READ)
            while not self._finished(selector, pidfd):
                self._turn(selector, pidfd)
        returncode = self.process.wait()
        diagnostics = bytes(self.collected["diagnostics"]).decode("utf-8", "replace")
        duration = (self.ended or time.monotonic()) - self.started
        return Outcome(self.process.pid, returncode, self.timed_out, duration,
                       bytes(self.collected["status"]), diagnostics.strip())

    def _finished(self, selector: selectors.BaseSelector, pidfd: int | None) -> bool:
        if self.ended is None:
            return False
        readers = [k for k in selector.get_map().values() if k.fd != pidfd]
        return not readers or time.monotonic() > self.ended + _DRAIN_SECONDS

    def _turn(self, selector: selectors.BaseSelector, pidfd: int | None) -> None:
        polling = pidfd is None or self.ended is not None or self.timed_out
        wait = _POLL_SECONDS if polling else None
        if self.deadline is not None and wait is None:
            wait = max(0.0, self.deadline - time.monotonic())
        for key, _ in selector.select(wait):
            if key.fd == pidfd:
                selector.unregister(pidfd)
            else:
                self._read(selector, key.fd)
        if self.ended is None and _exited(self.process.pid):
            self.ended = time.monotonic()
            self.kill()  # stragglers of the group; the launcher is a zombie still
        elif self.ended is None and self.deadline is not None and time.monotonic() >= self.deadline:
            self.timed_out = True
            log.info("step ran over its time limit; killing it")
            self.kill()

    def _read(self, selector: selectors.BaseSelector, fd: int) -> None:
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            return
        role = self.wiring.reads[fd]
        if not chunk:
            selector.unregister(fd)
        elif role == "output" and self.output is not None:
            self.output.write(chunk)
            self.output.flush()
        elif role in self.collected and len(self.collected[role]) < _DIAGNOSTICS_LIMIT:
            self.collected[role] += chunk

    def kill(self) -> None:
        if self.reap is not None:
            self.reap(self.process.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _exited(pid: int) -> bool:
    """Whether child `pid` has exited, without reaping it."""
    try:
        result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return result is not None


@contextlib.contextmanager
def _pidfd(pid: int) -> Iterator[int | None]:
    try:
        fd: int | None = os.pidfd_open(pid)
    except (OSError, AttributeError):
        fd = None
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def exit_status(returncode: int) -> tuple[int, int | None]:
    """`(exit_code, signal)` from a `subprocess` return code or an entry status."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


def kill_processes(select: Callable[[int], bool], *, rounds: int = 8) -> None:
    """SIGKILL every process `select` picks, again while new ones appear (they may fork)."""
    for _ in range(rounds):
        found = [pid for pid in _pids() if select(pid)]
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def tracer_of(pid: int) -> int | None:
    """The process ptrace-ing `pid`, if any (None when unknown)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"TracerPid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def root_of(pid: int) -> str | None:
    """The root directory of `pid` as this process sees it (None when not visible)."""
    try:
        return os.readlink(f"/proc/{pid}/root")
    except OSError:
        return None


def _parents() -> dict[int, int]:
    """pid -> parent pid of every visible process."""
    found: dict[int, int] = {}
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
            found[pid] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    return found


def kill_descendants(ancestor: int, *, rounds: int = 8) -> None:
    """SIGKILL every process descending from `ancestor` (not `ancestor` itself), also those
    in sessions of their own, again while new ones appear."""
    for _ in range(rounds):
        parents = _parents()
        found = [pid for pid in parents if _descends(pid, ancestor, parents)]
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _descends(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    seen = 0
    while pid in parents and seen < 4096:
        pid = parents[pid]
        if pid == ancestor:
            return True
        seen += 1
    return False
