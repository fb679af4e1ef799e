"""Choosing the sandbox for one root: usable here (the probe says) and suited to the image.

`chroot`, `userns` and `proot` run any program; `fakechroot` runs only dynamically linked glibc
programs, so it suits a root only when its `/bin/sh` is one. `choose` walks the probe report in
its order of preference for `auto`, or takes the sandbox named, and says why each one before
the choice was passed over. It asks the report for candidates one at a time, so a lazy report
(`Prober.lazily`) probes only up to the first one that fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.errors import SandboxError
from core.run.fakechroot import FakechrootSandbox
from core.run.probe import CANDIDATES, NAMES, NoSandbox, ProbeEntry
from core.run.spec import Sandbox


class Entries(Protocol):
    """What `choose` reads: a `ProbeReport`, or a `LazyReport` that probes on demand."""

    def entry(self, name: str) -> ProbeEntry | None: ...
    def describe(self) -> str: ...


@dataclass(frozen=True)
class Choice:
    """The sandbox for a root, and one line per candidate passed over before it."""

    sandbox: Sandbox
    skipped: tuple[str, ...]

    def describe(self) -> str:
        why = f" (skipped: {'; '.join(self.skipped)})" if self.skipped else ""
        return f"{self.sandbox.name}{why}"


def unsuitable(sandbox: Sandbox, root: Path) -> str | None:
    """Why `sandbox` cannot run steps in `root`, or None when it can."""
    if isinstance(sandbox, FakechrootSandbox):
        return sandbox.unsuitable(root)
    return None


def choose(isolation: str, report: Entries, root: Path) -> Choice:
    """The sandbox `--run-isolation isolation` gives for `root`; `SandboxError` naming what
    was probed (and why each candidate does not fit) when there is none."""
    if isolation == "none":
        return Choice(NoSandbox(f"run isolation 'none'; probed: {report.describe()}"), ())
    if isolation not in NAMES:
        raise SandboxError(f"unknown run isolation {isolation!r} (choose from "
                           f"{', '.join(NAMES)})")
    names = CANDIDATES if isolation == "auto" else (isolation,)
    skipped: list[str] = []
    for name in names:
        entry = report.entry(name)
        reason = _passed_over(entry, root)
        if reason is None and entry is not None and entry.sandbox is not None:
            return Choice(entry.sandbox, tuple(skipped))
        skipped.append(f"{name}: {reason}")
    wanted = "no usable RUN sandbox for this image" if isolation == "auto" else \
        f"run isolation {isolation!r} cannot run steps here"
    raise SandboxError(f"{wanted}: {'; '.join(skipped)}")


def _passed_over(entry: ProbeEntry | None, root: Path) -> str | None:
    if entry is None:
        return "not probed"
    if not entry.usable or entry.sandbox is None:
        return f"not usable here ({entry.reason})"
    problem = unsuitable(entry.sandbox, root)
    return None if problem is None else f"usable, but not for this image ({problem})"
