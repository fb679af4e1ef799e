"""Choosing the RUN sandbox: probed once per process, chosen per stage root (`core.run`).

`--run-isolation auto` takes, for each stage, the first candidate (chroot, userns, proot,
fakechroot) that the probe found usable and that suits the stage's tree (fakechroot needs a
dynamically linked glibc `/bin/sh`); a name takes that sandbox or fails; `none` refuses RUN.
The probe report comes from a `Prober` the caller keeps for the life of the process (a fresh
one per build otherwise). Nothing is probed until a RUN step executes, and then only the
candidates up to the first that fits (a build whose RUN steps all come from the layer cache
probes nothing); its throwaway root, and every sandbox's temporary files, live under the
build's work dir. Each choice is logged and announced as a `Message` event with the
reasons the candidates before it were passed over; a stage no sandbox suits fails its first
RUN with an error naming what was probed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.build.options import Isolation
from core.run import Choice, Prober, RunResult, RunSpec, Sandbox, choose, with_scratch
from core.run.choice import Entries

log = logging.getLogger(__name__)

Notify = Callable[[str], None]


def _quiet(text: str) -> None:
    return None


@dataclass
class StageSandboxes:
    """The `Sandbox` a build's RUN steps go through: it picks, per root, the sandbox `choose`
    gives (once per root) and runs the step there. `name` is every sandbox used, in order."""

    isolation: Isolation
    prober: Prober
    scratch: Path
    notify: Notify = _quiet
    _chosen: dict[str, Choice] = field(default_factory=dict)

    @property
    def name(self) -> str:
        used = dict.fromkeys(c.sandbox.name for c in self._chosen.values())
        return "+".join(used) or self.isolation

    def report_lines(self) -> tuple[str, ...]:
        """What the probe found, one line per candidate probed (() when nothing was)."""
        return tuple(str(entry) for entry in self.prober.known_report().entries)

    def for_root(self, root: Path) -> Sandbox:
        """The sandbox for steps in `root` (`SandboxError` when there is none)."""
        key = os.path.realpath(root)
        choice = self._chosen.get(key)
        if choice is None:
            # `none` names everything probed; otherwise probe only up to the first that fits
            report: Entries = self.prober.report(root_for_test=self.scratch) \
                if self.isolation == "none" else self.prober.lazily(root_for_test=self.scratch)
            choice = choose(self.isolation, report, Path(key))
            choice = Choice(with_scratch(choice.sandbox, self.scratch), choice.skipped)
            self._chosen[key] = choice
            self.notify(f"RUN sandbox: {choice.describe()}; probed: {report.describe()}")
        return choice.sandbox

    def transient_paths(self, spec: RunSpec) -> tuple[str, ...]:
        return self.for_root(spec.root).transient_paths(spec)

    def run(self, spec: RunSpec) -> RunResult:
        return self.for_root(spec.root).run(spec)


def concrete(sandbox: Sandbox, root: Path) -> Sandbox:
    """The sandbox that really runs steps in `root` (`sandbox` itself unless it chooses)."""
    return sandbox.for_root(root) if isinstance(sandbox, StageSandboxes) else sandbox


def probe_lines(sandbox: Sandbox | None) -> tuple[str, ...]:
    """The probe report behind a build's sandbox, for the build result (() when none)."""
    return sandbox.report_lines() if isinstance(sandbox, StageSandboxes) else ()


def choose_sandbox(isolation: Isolation, *, probe_dir: Path, prober: Prober | None = None,
                   notify: Notify = _quiet) -> StageSandboxes:
    """The RUN sandbox of one build; nothing is probed until a step needs it."""
    probe_dir.mkdir(parents=True, exist_ok=True)
    return StageSandboxes(isolation, prober or Prober(), probe_dir, notify)
