"""RUN sandboxes behind one small interface, and probing for the ones that work here.

- `spec`: `RunSpec` (what a step sees), `RunResult`, mounts, and the `Sandbox` protocol with
  its placeholder contract.
- `namespaces`: `ChrootSandbox` (root; namespaces via util-linux `unshare`, plain chroot
  without them) and `UsernsSandbox` (unprivileged user namespaces), both through the entry
  program `enter`, which sets a step up inside its namespaces.
- `proot`: `ProotSandbox` (ptrace path translation, no privileges).
- `probe`: `probe`, `Prober` and `select_sandbox`: try each candidate, report, choose.
- `tools`: finding `unshare`, `proot` and `busybox` in a tools directory or on `PATH`.
"""

from core.run.namespaces import ChrootSandbox, UsernsSandbox
from core.run.probe import (
    CANDIDATES,
    NoSandbox,
    ProbeEntry,
    Prober,
    ProbeReport,
    probe,
    select_sandbox,
)
from core.run.proot import ProotSandbox
from core.run.spec import (
    BindMount,
    Mount,
    Network,
    RunResult,
    RunSpec,
    Sandbox,
    TmpfsMount,
)
from core.run.tools import Tools

__all__ = [
    "CANDIDATES",
    "BindMount",
    "ChrootSandbox",
    "Mount",
    "Network",
    "NoSandbox",
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
    "probe",
    "select_sandbox",
]
