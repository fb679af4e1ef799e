"""Fixtures of the resources suite: a small tmpfs as the work root, CLI builds in a subprocess,
and looks at what a build left behind (files, mounts, processes).

Builds run `python -m core build` in a new session (so a test can kill the build's whole
process group), with TMPDIR pointed at the directory under test: a build without `--work-dir`
makes its work dir there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO), "LANG": "C.UTF-8"}


@contextmanager
def mounted_tmpfs(where: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` MiB at `where` (skips the test when mounting is not permitted)."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=1777", "tmpfs",
                           str(where)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not permitted'})")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mounts a tmpfs of the asked size (MiB) under the test's temp dir; unmounted after."""
    with contextlib.ExitStack() as stack:
        counter = iter(range(1000))

        def mount(size_mb: int) -> Path:
            return stack.enter_context(mounted_tmpfs(tmp_path / f"disk{next(counter)}",
                                                     size_mb))

        yield mount


@dataclass(frozen=True)
class CliRun:
    """A finished CLI build."""

    returncode: int
    stdout: str
    stderr: str


def cli_env(tmpdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**BASE_ENV, "TMPDIR": str(tmpdir), "HOME": str(tmpdir), **(extra or {})}


class StartedBuild:
    """A CLI build running in a session of its own; its stderr is collected as it comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float = 300) -> CliRun:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        assert self.process.stdout is not None
        out = self.process.stdout.read()  # a digest line at most
        self._reader.join(timeout=10)
        return CliRun(self.process.returncode, out, self.stderr)

    def wait_with_peak(self, timeout: float = 600) -> tuple[CliRun, int]:
        """Wait for the end; also return the peak resident memory (bytes) of the build's
        process: its `VmHWM`, sampled until it exits. (wait4's ru_maxrss would not do: exec
        keeps the high-water mark of the process image it replaced, here a fork of pytest.)"""
        deadline = time.monotonic() + timeout
        peak = 0
        while self.process.poll() is None:
            peak = max(peak, _high_water_mark(self.process.pid))
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("the build did not finish in time")
            time.sleep(0.05)
        return self.wait(timeout=30), peak

    def kill(self, sig: int = signal.SIGKILL) -> int:
        """Signal the build's process group (the CLI leads it); return its exit status."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        return self.wait(timeout=120).returncode


def _high_water_mark(pid: int) -> int:
    """`VmHWM` of a live process in bytes (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def start_cli(args: Sequence[str], *, tmpdir: Path, env: Mapping[str, str] | None = None,
              preexec: Callable[[], None] | None = None) -> StartedBuild:
    """Start `python -m core build ARGS` in a session of its own."""
    return StartedBuild(subprocess.Popen(
        [sys.executable, "-m", "core", "build", *args], cwd=REPO, env=cli_env(tmpdir, env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=preexec))


def run_cli(args: Sequence[str], *, tmpdir: Path, env: Mapping[str, str] | None = None,
            preexec: Callable[[], None] | None = None, timeout: float = 300) -> CliRun:
    return start_cli(args, tmpdir=tmpdir, env=env, preexec=preexec).wait(timeout)


def processes_with(token: str) -> list[str]:
    """Processes whose command line contains `token` (other than this test's own)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if token in cmdline and int(pid) != os.getpid():
            found.append(f"{pid}: {cmdline.strip()}")
    return found


def unique_tag(registry_host: str, name: str) -> str:
    return f"{registry_host}/resources/{name}:{uuid.uuid4().hex[:10]}"


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` in this process's mount namespace."""
    root = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            point = line.split()[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                found.append(point)
    return found


def processes_under(path: Path) -> list[str]:
    """Processes whose root or working directory is at or below `path`."""
    root = os.path.realpath(path)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for link in ("root", "cwd"):
            try:
                target = os.readlink(f"/proc/{pid}/{link}")
            except OSError:
                continue
            if target == root or target.startswith(root + "/"):
                found.append(f"{pid} ({link} {target})")
    return found


def entries(path: Path) -> list[str]:
    """Everything under `path` (relative), without following links."""
    out = []
    for parent, dirs, files in os.walk(path):
        for name in dirs + files:
            out.append(os.path.relpath(os.path.join(parent, name), path))
    return sorted(out)


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
