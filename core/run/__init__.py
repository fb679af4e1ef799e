"""RUN sandboxes behind one small interface, and probing for the ones that work here.

- `spec`: `RunSpec` (what a step sees), `RunResult`, mounts, and the `Sandbox` protocol with
  its placeholder contract.
- `namespaces`: `ChrootSandbox` (root; namespaces via util-linux `unshare`, plain chroot
  without them) and `UsernsSandbox` (unprivileged user namespaces), both through the entry
  program `enter`, which sets a step up inside its namespaces.
- `proot`: `ProotSandbox` (ptrace path translation, no privileges).
- `fakechroot`: `FakechrootSandbox` (LD_PRELOAD path rewriting and fakeroot; glibc dynamic
  programs only), with `fakeroot` (its state file) and `reaper` (its launcher).
- `probe`: `probe`, `Prober` and `select_sandbox`: try each candidate, report, choose.
- `choice`: `choose`, the sandbox for one root (usable here and suited to the image).
- `tools`: finding `unshare`, `proot`, `fakechroot`, `busybox`, ... in a tools directory or on
  `PATH`.
Sandboxes that only pretend to be root report how they left ownership (`Ownership`) so that
the builder can record the image's real owners.
"""

from core.run.choice import Choice, choose
from core.run.fakechroot import FakechrootSandbox
from core.run.namespaces import ChrootSandbox, UsernsSandbox
from core.run.probe import (
    CANDIDATES,
    NoSandbox,
    ProbeEntry,
    Prober,
    ProbeReport,
    probe,
    select_sandbox,
    with_scratch,
)
from core.run.proot import ProotSandbox
from core.run.spec import (
    BindMount,
    FakeStat,
    Mount,
    Network,
    Ownership,
    RunResult,
    RunSpec,
    Sandbox,
    TmpfsMount,
)
from core.run.tools import Tools

__all__ = [
    "CANDIDATES",
    "BindMount",
    "Choice",
    "ChrootSandbox",
    "FakeStat",
    "FakechrootSandbox",
    "Mount",
    "Network",
    "NoSandbox",
    "Ownership",
    "ProbeEntry",
    "ProbeReport",
    "Prober",
    "ProotSandbox",
    "RunResult",
    "RunSpec",
    "Sandbox",
    "TmpfsMount",
    "Tools",
    "UsernsSandbox",
    "choose",
    "probe",
    "select_sandbox",
    "with_scratch",
]
