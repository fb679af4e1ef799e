"""Function-like boxes made from this machine's tools, and builds run inside them.

A box is uid/gid 65534 with no capabilities (`setpriv --reuid --regid --clear-groups
--inh-caps=-all --bounding-set=-all`), so `/` is not writable while `/tmp` is; HOME names a
directory that does not exist and cannot be made; then `box.py`, run by the system Python (the
venv's interpreter lives under /root, out of that user's reach), loads a seccomp filter that
refuses user namespaces (and, in the Lambda-like box, ptrace) and executes the program. The
repository and the venv's packages are on PYTHONPATH. No bwrap or user namespace is involved:
inside one, chown to an unmapped id fails with EINVAL instead of EPERM.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

NOBODY = 65534
SYSTEM_PYTHON = Path("/usr/bin/python3")
REPO = Path(__file__).resolve().parents[2]
BOX_SCRIPT = Path(__file__).resolve().parent / "box.py"
HOME = "/nonexistent/home"


@dataclass(frozen=True)
class Box:
    """One kind of box: what its seccomp filter allows."""

    name: str
    ptrace: bool = True
    userns: bool = False

    def argv(self, program: Sequence[str]) -> list[str]:
        flags = [*([] if self.ptrace else ["--no-ptrace"]),
                 *(["--allow-userns"] if self.userns else [])]
        return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", str(SYSTEM_PYTHON), str(BOX_SCRIPT),
                *flags, "--", *program]

    def run(self, program: Sequence[str], *, timeout: float = 300, stdin: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(program), env={**box_env(), **(env or {})}, cwd="/",
                              input=stdin, capture_output=True, text=True, timeout=timeout,
                              check=False)


GEN2 = Box("gen2")  # Cloud Functions gen2: ptrace allowed, no user namespaces
LAMBDA = Box("lambda", ptrace=False)  # Lambda: neither
USERNS = Box("userns", userns=True)  # a laptop or CI runner: unprivileged user namespaces


def box_env() -> dict[str, str]:
    site = sysconfig.get_paths()["purelib"]  # this venv's packages, for core's imports
    return {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": HOME,
            "PYTHONPATH": f"{REPO}{os.pathsep}{site}", "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8"}


def require_boxes() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to drop to an unprivileged user with setpriv")
    if not SYSTEM_PYTHON.is_file():
        pytest.skip("needs the system python3")
    done = subprocess.run([str(SYSTEM_PYTHON), "-c", "import seccomp"], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip("needs Debian's python3-seccomp for the system python3")


@contextmanager
def shared_dir(prefix: str) -> Iterator[Path]:
    """A directory under /tmp that the box's user may read and write (pytest's tmp_path is
    root's alone)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o777)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class BuildOutcome:
    """What `bucketbuild build` said: exit status, JSON events, the OCI layout written."""

    returncode: int
    events: list[dict[str, Any]]
    stderr: str
    layout: Path

    def messages(self, level: str | None = None) -> list[str]:
        return [e["text"] for e in self.events if e.get("type") == "message"
                and (level is None or e.get("level") == level)]

    def final(self) -> dict[str, Any]:
        return next(e for e in self.events if e.get("type") in ("build_succeeded",
                                                                   "build_failed"))


def build_argv(context: Path, layout: Path, registry_host: str,
               *extra: str) -> list[str]:
    return [str(SYSTEM_PYTHON), "-m", "core", "build", "--context", str(context),
            "--no-push", "--oci-layout-path", str(layout), "--insecure-registry",
            registry_host, "--log-format=json", *extra]


def build(box: Box | None, context: Path, layout: Path, registry_host: str,
          *extra: str) -> BuildOutcome:
    """`python3 -m core build` of `context` in `box` (None: as root, outside any box)."""
    argv = build_argv(context, layout, registry_host, *extra)
    if box is None:
        done = subprocess.run(argv, env=box_env(), cwd="/", capture_output=True, text=True,
                              timeout=300, check=False)
    else:
        done = box.run(argv)
    events = []
    for line in done.stderr.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return BuildOutcome(done.returncode, events, done.stderr, layout)


def write_context(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root
