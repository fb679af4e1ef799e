"""Choosing the sandbox for a root (`core.run.choice`) and per stage in a build
(`core.build.sandbox`), from a probe report."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.build.sandbox import StageSandboxes, concrete, probe_lines
from core.errors import SandboxError
from core.run import (
    FakechrootSandbox,
    NoSandbox,
    ProbeEntry,
    Prober,
    ProbeReport,
    RunResult,
    RunSpec,
    choose,
)
from tests.run.conftest import make_busybox_root


def _fakechroot() -> FakechrootSandbox:
    return FakechrootSandbox(fakechroot=Path("/usr/bin/fakechroot"),
                             fakeroot=Path("/usr/bin/fakeroot"), chroot=Path("/usr/sbin/chroot"),
                             search_path="/usr/bin:/bin")


@dataclass(frozen=True)
class Fake:
    """A sandbox that runs nothing."""

    name: str
    ran: list[Path] = field(default_factory=list, compare=False)

    def transient_paths(self, spec: RunSpec) -> tuple[str, ...]:
        return ()

    def run(self, spec: RunSpec) -> RunResult:
        self.ran.append(spec.root)
        return RunResult(exit_code=0, signal=None, duration=0.0, timed_out=False)


def _report(*, proot: bool) -> ProbeReport:
    entries = (ProbeEntry("chroot", False, "chroot: Operation not permitted"),
               ProbeEntry("userns", False, "unshare: Operation not permitted"),
               ProbeEntry("proot", proot, "ptrace works" if proot else "ptrace refused",
                          Fake("proot") if proot else None),
               ProbeEntry("fakechroot", True, "works", _fakechroot()))
    return ProbeReport(entries, "proot" if proot else "fakechroot")


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """A static busybox root and a root whose /bin/sh is this machine's (dynamic glibc)."""
    if not Path("/bin/busybox").is_file():
        pytest.skip("busybox-static is not installed")
    static = make_busybox_root(tmp_path / "static")
    dynamic = tmp_path / "dynamic"
    (dynamic / "bin").mkdir(parents=True)
    shutil.copyfile(str(Path("/bin/sh").resolve()), dynamic / "bin" / "sh")
    return static, dynamic


def test_auto_takes_the_first_usable_sandbox_that_suits_the_root(
        roots: tuple[Path, Path]) -> None:
    static, dynamic = roots
    chosen = choose("auto", _report(proot=True), static)
    assert chosen.sandbox.name == "proot"
    assert chosen.skipped == ("chroot: not usable here (chroot: Operation not permitted)",
                              "userns: not usable here (unshare: Operation not permitted)")
    assert choose("auto", _report(proot=False), dynamic).sandbox.name == "fakechroot"
    with pytest.raises(SandboxError) as caught:
        choose("auto", _report(proot=False), static)
    assert str(caught.value).startswith("no usable RUN sandbox for this image: chroot: ")
    assert ("fakechroot: usable, but not for this image (/bin/sh is statically linked; "
            "fakechroot runs only dynamically linked glibc programs)") in str(caught.value)


def test_named_and_none(roots: tuple[Path, Path]) -> None:
    static, dynamic = roots
    assert choose("fakechroot", _report(proot=True), dynamic).skipped == ()
    with pytest.raises(SandboxError, match="run isolation 'userns' cannot run steps here: "
                                           "userns: not usable here"):
        choose("userns", _report(proot=True), static)
    none = choose("none", _report(proot=True), static).sandbox
    assert isinstance(none, NoSandbox) and "probed: chroot: not usable" in none.detail
    with pytest.raises(SandboxError, match="unknown run isolation 'docker'"):
        choose("docker", _report(proot=True), static)


def test_stage_sandboxes_choose_once_per_root(roots: tuple[Path, Path], tmp_path: Path) -> None:
    static, dynamic = roots
    prober = Prober.known(_report(proot=False))  # what a probe found here
    notes: list[str] = []
    sandboxes = StageSandboxes("auto", prober, tmp_path / "scratch", notes.append)
    assert sandboxes.name == "auto" and probe_lines(sandboxes)[3] == "fakechroot: usable (works)"
    chosen = concrete(sandboxes, dynamic)
    assert isinstance(chosen, FakechrootSandbox) and chosen.scratch == tmp_path / "scratch"
    assert concrete(sandboxes, dynamic) is chosen and len(notes) == 1
    assert notes[0].startswith("RUN sandbox: fakechroot (skipped: chroot: not usable here")
    with pytest.raises(SandboxError, match="statically linked"):
        concrete(sandboxes, static)
    assert sandboxes.name == "fakechroot"
    fake = Fake("proot")
    assert concrete(fake, static) is fake
