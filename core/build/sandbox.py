"""Choosing the RUN sandbox once per build, from `--run-isolation`, by probing (`core.run`).

A named sandbox is probed alone. `auto` probes the candidates in `core.run`'s order of
preference and stops at the first that works (each probe starts processes: no need to try the
rest). The probe's throwaway root lives under the work dir.
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.build.options import Isolation
from core.errors import SandboxError
from core.run import CANDIDATES, Sandbox, probe, select_sandbox

log = logging.getLogger(__name__)


def choose_sandbox(isolation: Isolation, *, probe_dir: Path) -> Sandbox:
    """The sandbox for `isolation`; `SandboxError` naming what was probed when unusable."""
    if isolation != "auto":
        candidates = (isolation,) if isolation in CANDIDATES else ()
        return select_sandbox(isolation, probe(candidates=candidates, root_for_test=probe_dir))
    tried: list[str] = []
    for name in CANDIDATES:
        report = probe(candidates=(name,), root_for_test=probe_dir)
        if report.chosen is not None:
            sandbox = select_sandbox(name, report)
            log.info("RUN sandbox: %s", sandbox.name)
            return sandbox
        tried.append(report.describe())
    raise SandboxError(f"no usable RUN sandbox here; probed: {'; '.join(tried)}")
