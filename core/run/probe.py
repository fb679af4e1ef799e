"""Finding out which sandboxes work here, by trying them, and choosing one.

`probe` runs a static test program (busybox, copied into a throwaway root) in each candidate
sandbox and reports, per candidate, whether it worked and why or why not; nothing is inferred
from the user id or the platform. Probing costs a few process starts per candidate: do it
once per process and keep the report (`Prober` does that for whoever holds it).
`select_sandbox` turns a report and a `--run-isolation` name into a `Sandbox`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import SandboxError
from core.run.namespaces import ChrootSandbox, UsernsSandbox
from core.run.proot import ProotSandbox
from core.run.spec import RunResult, RunSpec, Sandbox
from core.run.tools import Tools, is_static_executable

log = logging.getLogger(__name__)

CANDIDATES = ("chroot", "userns", "proot", "fakechroot")
NAMES = ("auto", *CANDIDATES, "none")
PROBE_TIMEOUT = 20.0
_TOKEN = b"bucketbuild-probe-ok\n"


@dataclass(frozen=True)
class ProbeEntry:
    """One candidate: whether it worked, and why (or why not)."""

    name: str
    usable: bool
    reason: str
    sandbox: Sandbox | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.name}: {'usable' if self.usable else 'not usable'} ({self.reason})"


@dataclass(frozen=True)
class ProbeReport:
    """Every candidate probed, in order, and the first usable one."""

    entries: tuple[ProbeEntry, ...]
    chosen: str | None

    def entry(self, name: str) -> ProbeEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def describe(self) -> str:
        return "; ".join(map(str, self.entries)) or "nothing probed"


def probe(*, candidates: Sequence[str] = CANDIDATES, root_for_test: Path | None = None,
          tools_dir: Path | None = None) -> ProbeReport:
    """Try each candidate sandbox; the first usable one is `chosen`.

    The throwaway root is made in a new directory under `root_for_test` (a directory under the
    work dir; None: the temporary directory) and removed afterwards. Tools are looked for in
    `tools_dir`, then on `PATH`.
    """
    tools = Tools.discover(tools_dir=tools_dir)
    with _test_root(tools, root_for_test) as root:
        entries = tuple(_probe_one(name, tools, root) for name in candidates)
    chosen = next((e.name for e in entries if e.usable), None)
    for entry in entries:
        log.info("RUN sandbox %s", entry)
    log.info("RUN sandbox chosen: %s", chosen or "none")
    return ProbeReport(entries, chosen)


class Prober:
    """Probes on first use and keeps the report for as long as this object lives."""

    def __init__(self, *, candidates: Sequence[str] = CANDIDATES,
                 root_for_test: Path | None = None, tools_dir: Path | None = None) -> None:
        self._options = (tuple(candidates), root_for_test, tools_dir)
        self._report: ProbeReport | None = None

    def report(self) -> ProbeReport:
        if self._report is None:
            candidates, root_for_test, tools_dir = self._options
            self._report = probe(candidates=candidates, root_for_test=root_for_test,
                                 tools_dir=tools_dir)
        return self._report

    def select(self, name: str) -> Sandbox:
        return select_sandbox(name, self.report())


@dataclass(frozen=True)
class NoSandbox:
    """`--run-isolation none`: builds without RUN work; a RUN fails, naming what was probed."""

    detail: str

    @property
    def name(self) -> str:
        return "none"

    def transient_paths(self, spec: RunSpec) -> tuple[str, ...]:
        return ()

    def run(self, spec: RunSpec) -> RunResult:
        raise SandboxError(f"RUN needs a sandbox and none is in use ({self.detail})")


def select_sandbox(name: str, report: ProbeReport) -> Sandbox:
    """The sandbox for `--run-isolation name`; `SandboxError` when it is not usable here."""
    if name == "none":
        return NoSandbox(f"run isolation 'none'; probed: {report.describe()}")
    if name == "auto":
        entry = report.entry(report.chosen) if report.chosen else None
        if entry is None or entry.sandbox is None:
            raise SandboxError(f"no usable RUN sandbox here; probed: {report.describe()}")
        return entry.sandbox
    if name not in CANDIDATES:
        raise SandboxError(f"unknown run isolation {name!r} (choose from {', '.join(NAMES)})")
    entry = report.entry(name)
    if entry is None:
        raise SandboxError(f"run isolation {name!r} was not probed; probed: {report.describe()}")
    if not entry.usable or entry.sandbox is None:
        raise SandboxError(f"run isolation {name!r} is not usable here: {entry.reason}; "
                           f"probed: {report.describe()}")
    return entry.sandbox


@contextlib.contextmanager
def _test_root(tools: Tools, parent: Path | None) -> Iterator[Path | str]:
    """A throwaway root with a static busybox and a token file, or why there is none."""
    busybox = tools.find("busybox")
    if busybox is None or not is_static_executable(busybox):
        found = "not found" if busybox is None else f"{busybox} is not statically linked"
        yield f"no test program: a static busybox is needed ({found} in {tools.describe()})"
        return
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    holder = Path(tempfile.mkdtemp(prefix="bucketbuild-probe-", dir=parent))
    try:
        root = holder / "root"
        (root / "bin").mkdir(parents=True)
        shutil.copyfile(busybox, root / "bin" / "busybox")
        (root / "bin" / "busybox").chmod(0o755)
        (root / "probe.txt").write_bytes(_TOKEN)
        yield root
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def _probe_one(name: str, tools: Tools, root: Path | str) -> ProbeEntry:
    tries, missing = _candidates(name, tools)
    if not tries:
        return ProbeEntry(name, False, missing)
    if isinstance(root, str):
        return ProbeEntry(name, False, root)
    failures: list[str] = []
    for sandbox, works in tries:
        failure = _try(sandbox, root)
        if failure is None:
            why = works if not failures else f"{works}; {'; '.join(failures)}"
            return ProbeEntry(name, True, why, sandbox)
        failures.append(failure)
    return ProbeEntry(name, False, "; ".join(failures))


def _candidates(name: str, tools: Tools) -> tuple[list[tuple[Sandbox, str]], str]:
    """Configurations of `name` to try, best first, each with what its success means."""
    unshare, proot = tools.find("unshare"), tools.find("proot")
    tries: list[tuple[Sandbox, str]] = []
    if name == "chroot":
        if unshare is not None:
            tries.append((ChrootSandbox(unshare=unshare), "chroot in new namespaces works"))
        tries.append((ChrootSandbox(unshare=None),
                      "plain chroot works (no /proc, /dev or mounts for steps)"))
        return tries, ""
    if name == "userns":
        if unshare is not None:
            tries.append((UsernsSandbox(unshare=unshare), "unprivileged user namespaces work"))
        return tries, f"unshare (util-linux) not found in {tools.describe()}"
    if name == "proot":
        if proot is not None:
            tries.append((ProotSandbox(proot=proot), f"ptrace works ({proot})"))
        return tries, f"proot not found in {tools.describe()}"
    if name == "fakechroot":
        return tries, "not available in this version (needs the ownership map of issue 5)"
    return tries, f"unknown sandbox {name!r}"


def _try(sandbox: Sandbox, root: Path) -> str | None:
    """Run the test program; None when it worked, else what went wrong."""
    output = io.BytesIO()
    spec = RunSpec(root=root, argv=("/bin/busybox", "cat", "/probe.txt"),
                   env={"PATH": "/bin"}, timeout=PROBE_TIMEOUT, stdout=output)
    label = ""
    if isinstance(sandbox, ChrootSandbox):
        label = "in namespaces: " if sandbox.namespaces else "plain: "
    try:
        result = sandbox.run(spec)
    except SandboxError as e:
        return f"{label}{e}"
    if result.timed_out:
        return f"{label}test program timed out"
    if result.exit_code != 0 or output.getvalue() != _TOKEN:
        said = output.getvalue().decode("utf-8", "replace").strip().splitlines()
        return f"{label}test program exited {result.exit_code}" + (f": {said[0]}" if said else "")
    return None
