"""Fixtures for the RUN sandboxes: a busybox root, sandboxes, and ways to look at processes."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.run import ChrootSandbox, RunResult, RunSpec, Sandbox

BUSYBOX = Path("/bin/busybox")
APPLETS = (
    "sh", "echo", "id", "ls", "cat", "touch", "mkdir", "rm", "ln", "sleep", "env", "pwd",
    "hostname", "stat", "chmod", "chown", "wc", "head", "grep", "ip", "mknod", "setsid", "df",
    "readlink", "true", "false", "kill", "ps", "tr",
)
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n" \
         "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nstaff:x:50:app\napp:x:1000:\n"


def make_busybox_root(root: Path, *, owner: int | None = None) -> Path:
    """A small image root: busybox with its applets linked, users, groups and a sticky /tmp."""
    (root / "bin").mkdir(parents=True)
    shutil.copyfile(BUSYBOX, root / "bin" / "busybox")
    (root / "bin" / "busybox").chmod(0o755)
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "home" / "app").mkdir(parents=True)
    if owner is not None:
        for path in [root, *root.rglob("*")]:
            os.lchown(path, owner, owner)
    return root


@pytest.fixture
def busybox_root(tmp_path: Path) -> Path:
    if not BUSYBOX.is_file():
        pytest.skip("busybox-static is not installed")
    return make_busybox_root(tmp_path / "root")


@pytest.fixture
def chroot() -> ChrootSandbox:
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("the chroot sandbox needs root and util-linux unshare")
    return ChrootSandbox(unshare=Path(unshare))


@dataclass(frozen=True)
class Ran:
    result: RunResult
    output: str


def run(sandbox: Sandbox, root: Path, script: str | tuple[str, ...], **options: Any) -> Ran:
    """Run a shell script (or an argv tuple) with PATH=/bin unless `env` is given."""
    argv = ("/bin/sh", "-c", script) if isinstance(script, str) else script
    sink = io.BytesIO()
    options.setdefault("env", {"PATH": "/bin"})
    options.setdefault("timeout", 30.0)
    result = sandbox.run(RunSpec(root=root, argv=argv, stdout=sink, **options))
    return Ran(result, sink.getvalue().decode("utf-8", "replace"))


def processes_matching(text: str) -> list[int]:
    """Host processes whose command line is exactly `text` (arguments joined by spaces)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace") == text:
            found.append(int(name))
    return found


def tree_state(root: Path) -> dict[str, tuple[int, int, int, int]]:
    """(mode, size, mtime_ns, inode) of every path under `root`, to compare before and after."""
    state = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        state[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)
    return state


@pytest.fixture
def host_mounts() -> Iterator[None]:
    """Fails the test if the host's mount table changed across it."""
    before = Path("/proc/self/mountinfo").read_text()
    yield
    assert Path("/proc/self/mountinfo").read_text() == before
