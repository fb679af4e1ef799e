"""Probing which sandboxes work, choosing one, and finding tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import SandboxError
from core.run import (
    ChrootSandbox,
    NoSandbox,
    ProbeEntry,
    Prober,
    ProbeReport,
    RunSpec,
    Tools,
    UsernsSandbox,
    probe,
    select_sandbox,
)
from core.run.tools import is_static_executable

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="probing chroot as usable needs root")


@pytest.fixture
def tools_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PATH and a tools directory holding only what a test puts there."""
    tools = tmp_path / "tools"
    tools.mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return tools


def _have(*names: str) -> bool:
    return all(shutil.which(name) is not None for name in names)


def _link_tools(tools: Path, *names: str) -> None:
    for name in names:
        found = shutil.which(name, path="/usr/bin:/bin")
        if found is None:
            pytest.skip(f"{name} is not installed")
        (tools / name).symlink_to(found)


@needs_root
def test_probe_as_root_chooses_chroot(tmp_path: Path) -> None:
    report = probe(root_for_test=tmp_path / "probe")
    assert [e.name for e in report.entries] == ["chroot", "userns", "proot", "fakechroot"]
    chroot = report.entry("chroot")
    assert chroot is not None and chroot.usable and "namespaces" in chroot.reason
    assert isinstance(chroot.sandbox, ChrootSandbox) and chroot.sandbox.namespaces
    assert report.chosen == "chroot"
    fakechroot = report.entry("fakechroot")
    assert fakechroot is not None and fakechroot.usable == _have("fakechroot", "fakeroot")
    assert os.listdir(tmp_path / "probe") == []  # the throwaway root is gone
    assert "chroot: usable" in report.describe()


@needs_root
def test_selected_sandbox_runs_steps(tmp_path: Path) -> None:
    sandbox = select_sandbox("auto", probe(candidates=("chroot",), root_for_test=tmp_path))
    assert sandbox.name == "chroot"


def test_no_busybox_means_nothing_can_be_tried(tools_only: Path) -> None:
    report = probe(tools_dir=tools_only, candidates=("chroot", "userns"))
    assert report.chosen is None
    chroot, userns = report.entries
    assert not chroot.usable and "static busybox" in chroot.reason
    assert not userns.usable and "unshare" in userns.reason  # named before busybox is missed


@needs_root
def test_tools_dir_is_searched_and_chroot_degrades_without_unshare(tools_only: Path) -> None:
    _link_tools(tools_only, "busybox")
    report = probe(tools_dir=tools_only, candidates=("chroot", "userns", "proot"))
    chroot, userns, proot = report.entries
    assert chroot.usable and chroot.reason.startswith("plain chroot works")
    assert isinstance(chroot.sandbox, ChrootSandbox) and not chroot.sandbox.namespaces
    assert not userns.usable and "unshare" in userns.reason
    assert not proot.usable and "proot not found" in proot.reason


@needs_root
def test_root_without_sys_admin_falls_back_to_plain_chroot() -> None:
    """As in a container with Docker's default capabilities: chroot, but no new namespaces."""
    script = ("from core.run import probe; entry = probe(candidates=('chroot',)).entries[0]; "
              "print(entry.usable, entry.sandbox.namespaces, entry.reason)")
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", sys.executable, "-c",
         script], cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True,
        text=True, timeout=60, check=True)
    assert done.stdout.startswith("True False plain chroot works")
    assert "in namespaces: " in done.stdout and "not permitted" in done.stdout


def test_tools_lookup_order(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for directory in (first, second / "bin"):
        directory.mkdir(parents=True)
        (directory / "tool").write_text("#!/bin/sh\n")
        (directory / "tool").chmod(0o755)
    (first / "plain").write_text("not executable")
    tools = Tools.discover(tools_dir=second, environ={"PATH": f"{first}:/nonexistent"})
    assert tools.find("tool") == second / "bin" / "tool"
    assert tools.find("plain") is None
    assert Tools.discover(environ={"PATH": str(first)}).find("tool") == first / "tool"


def test_static_executables_are_recognised(tmp_path: Path) -> None:
    if not Path("/bin/busybox").is_file():
        pytest.skip("busybox-static is not installed")
    assert is_static_executable(Path("/bin/busybox"))
    assert not is_static_executable(Path("/bin/ls"))
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert not is_static_executable(tmp_path / "script")
    assert not is_static_executable(tmp_path / "missing")


def _report() -> ProbeReport:
    userns = UsernsSandbox(unshare=Path("/usr/bin/unshare"))
    return ProbeReport((ProbeEntry("chroot", False, "not root"),
                        ProbeEntry("userns", True, "works", userns)), "userns")


def test_select_by_name_and_auto() -> None:
    report = _report()
    assert select_sandbox("auto", report).name == "userns"
    assert select_sandbox("userns", report).name == "userns"
    with pytest.raises(SandboxError, match="'chroot' is not usable here: not root"):
        select_sandbox("chroot", report)
    with pytest.raises(SandboxError, match="'proot' was not probed; probed: chroot: not usable"):
        select_sandbox("proot", report)
    with pytest.raises(SandboxError, match="unknown run isolation 'docker'"):
        select_sandbox("docker", report)


def test_nothing_usable_names_what_was_probed(tmp_path: Path) -> None:
    report = ProbeReport((ProbeEntry("chroot", False, "not root"),
                          ProbeEntry("proot", False, "ptrace refused")), None)
    with pytest.raises(SandboxError) as caught:
        select_sandbox("auto", report)
    assert "chroot: not usable (not root); proot: not usable (ptrace refused)" in str(caught.value)
    none = select_sandbox("none", report)
    assert isinstance(none, NoSandbox) and none.name == "none"
    spec = RunSpec(root=tmp_path, argv=("true",))
    assert none.transient_paths(spec) == ()
    with pytest.raises(SandboxError, match="ptrace refused"):
        none.run(spec)


def test_prober_probes_once(tools_only: Path) -> None:
    prober = Prober(candidates=("fakechroot",), tools_dir=tools_only)
    first = prober.report()
    assert prober.report() is first
    assert first.entries[0].name == "fakechroot" and not first.entries[0].usable
    with pytest.raises(SandboxError, match="fakechroot"):
        prober.select("auto")
