"""Finding out which sandboxes work here, by trying them, and choosing one.

`probe` runs a test program in each candidate sandbox and reports, per candidate, whether it
worked and why or why not; nothing is inferred from the user id or the platform. The program is
a static busybox copied into a throwaway root, except for `fakechroot`, which runs only dynamic
glibc programs: it gets the host's own shell. Whether a usable sandbox also suits a stage's base
image is `core.run.choice`'s question. Probing costs a few process starts per candidate (0.1-0.3 s
each): do it once per process and keep the answers (`Prober` does that for whoever holds it),
and only for the candidates asked about (`Prober.lazily`: `auto` stops at the first that fits).
`select_sandbox` turns a report and a `--run-isolation` name into a `Sandbox`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.errors import SandboxError
from core.run.fakechroot import FakechrootSandbox
from core.run.namespaces import ChrootSandbox, UsernsSandbox
from core.run.proot import ProotSandbox
from core.run.spec import RunResult, RunSpec, Sandbox
from core.run.tools import Tools, elf_interpreter, is_static_executable

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
    with _test_roots(tools, root_for_test, candidates) as roots:
        entries = tuple(_probe_one(name, tools, roots) for name in candidates)
    chosen = next((e.name for e in entries if e.usable), None)
    for entry in entries:
        log.info("RUN sandbox %s", entry)
    log.info("RUN sandbox chosen: %s", chosen or "none")
    return ProbeReport(entries, chosen)


class Prober:
    """Probes on demand and keeps what it found for as long as this object lives (hold one
    per process: the environment does not change under it). `entry` probes one candidate,
    the first time it is asked for; `report` probes every candidate not probed yet."""

    def __init__(self, *, candidates: Sequence[str] = CANDIDATES,
                 root_for_test: Path | None = None, tools_dir: Path | None = None) -> None:
        self._options = (tuple(candidates), root_for_test, tools_dir)
        self._entries: dict[str, ProbeEntry] = {}
        self._known: ProbeReport | None = None  # known_report(), until more is probed
        self._lock = threading.Lock()  # builds sharing a prober probe each candidate once

    @classmethod
    def known(cls, report: ProbeReport) -> Prober:
        """A prober that already has its answer (a report made elsewhere)."""
        prober = cls(candidates=tuple(e.name for e in report.entries))
        prober._entries = {e.name: e for e in report.entries}
        return prober

    @property
    def probed(self) -> bool:
        """Whether any candidate has been probed."""
        return bool(self._entries)

    def entry(self, name: str, *, root_for_test: Path | None = None) -> ProbeEntry | None:
        """One candidate's entry, probed now if it was not yet (throwaway root under
        `root_for_test`, default the one given at construction); None if not a candidate."""
        if name not in self._options[0]:
            return None
        if name not in self._entries:
            self._probe((name,), root_for_test)
        return self._entries[name]

    def report(self, *, root_for_test: Path | None = None) -> ProbeReport:
        """Every candidate, probing those not probed yet."""
        missing = tuple(name for name in self._options[0] if name not in self._entries)
        if missing:
            self._probe(missing, root_for_test)
        return self.known_report()

    def known_report(self) -> ProbeReport:
        """What has been probed so far, in candidate order (nothing is probed now)."""
        if self._known is None:
            entries = tuple(self._entries[n] for n in self._options[0] if n in self._entries)
            self._known = ProbeReport(entries, next((e.name for e in entries if e.usable), None))
        return self._known

    def lazily(self, *, root_for_test: Path | None = None) -> LazyReport:
        """A report-like view that probes each candidate only when `entry` asks for it."""
        return LazyReport(self, root_for_test)

    def select(self, name: str) -> Sandbox:
        return select_sandbox(name, self.report())

    def _probe(self, names: tuple[str, ...], root_for_test: Path | None) -> None:
        _, default_root, tools_dir = self._options
        with self._lock:
            names = tuple(name for name in names if name not in self._entries)
            if not names:
                return
            found = probe(candidates=names, root_for_test=root_for_test or default_root,
                          tools_dir=tools_dir)
            self._entries.update((e.name, e) for e in found.entries)
            self._known = None


@dataclass(frozen=True)
class LazyReport:
    """`Prober.lazily`: `entry` probes on first use; `describe` tells what was probed."""

    prober: Prober
    root_for_test: Path | None

    def entry(self, name: str) -> ProbeEntry | None:
        return self.prober.entry(name, root_for_test=self.root_for_test)

    def describe(self) -> str:
        return self.prober.known_report().describe()


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


@dataclass(frozen=True)
class _Roots:
    """The throwaway roots (or why there is none): a static busybox, and the host's shell."""

    scratch: Path
    static: Path | str
    dynamic: Path | str


@contextlib.contextmanager
def _test_roots(tools: Tools, parent: Path | None, names: Sequence[str]) -> Iterator[_Roots]:
    """The throwaway roots the candidates `names` need (fakechroot the dynamic one, the
    others the static one)."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    holder = Path(tempfile.mkdtemp(prefix="bucketbuild-probe-", dir=parent))
    unused = "not needed"
    try:
        static = _static_root(tools, holder / "static") \
            if any(name != "fakechroot" for name in names) else unused
        dynamic = _dynamic_root(tools, holder / "dynamic") if "fakechroot" in names else unused
        yield _Roots(holder, static, dynamic)
    finally:
        shutil.rmtree(holder, ignore_errors=True)


def _static_root(tools: Tools, root: Path) -> Path | str:
    """A root with a static busybox and a token file, or why there is none."""
    busybox = tools.find("busybox")
    if busybox is None or not is_static_executable(busybox):
        found = "not found" if busybox is None else f"{busybox} is not statically linked"
        return f"no test program: a static busybox is needed ({found} in {tools.describe()})"
    (root / "bin").mkdir(parents=True)
    shutil.copyfile(busybox, root / "bin" / "busybox")
    (root / "bin" / "busybox").chmod(0o755)
    (root / "probe.txt").write_bytes(_TOKEN)
    return root


def _dynamic_root(tools: Tools, root: Path) -> Path | str:
    """A root with the host's shell (a dynamic glibc program) and a token file."""
    shell = tools.find("sh")
    if shell is None:
        return f"no test program: no sh in {tools.describe()}"
    real = Path(os.path.realpath(shell))
    interpreter = elf_interpreter(real)
    if not interpreter or ("ld-linux" not in interpreter and "ld64.so" not in interpreter):
        return f"no test program: the host's shell {real} is not a dynamic glibc program"
    (root / "bin").mkdir(parents=True)
    shutil.copyfile(real, root / "bin" / "sh")
    (root / "bin" / "sh").chmod(0o755)
    (root / "probe.txt").write_bytes(_TOKEN)
    return root


def _probe_one(name: str, tools: Tools, roots: _Roots) -> ProbeEntry:
    tries, missing = _candidates(name, tools)
    if not tries:
        return ProbeEntry(name, False, missing)
    root = roots.dynamic if name == "fakechroot" else roots.static
    if isinstance(root, str):
        return ProbeEntry(name, False, root)
    failures: list[str] = []
    for sandbox, works in tries:
        failure = _try(with_scratch(sandbox, roots.scratch), root)
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
        return _fakechroot(tools)
    return tries, f"unknown sandbox {name!r}"


def _fakechroot(tools: Tools) -> tuple[list[tuple[Sandbox, str]], str]:
    """fakechroot with fakeroot's SysV IPC daemon, else with its TCP one (where message
    queues are not allowed)."""
    found = {name: tools.find(name) for name in ("fakechroot", "fakeroot", "chroot")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        return [], f"{' and '.join(missing)} not found in {tools.describe()}"
    search_path = os.pathsep.join(map(str, tools.directories))
    tries: list[tuple[Sandbox, str]] = []
    for fakeroot in dict.fromkeys((_path(found["fakeroot"]), tools.find("fakeroot-tcp"))):
        if fakeroot is None:
            continue
        sandbox = FakechrootSandbox(fakechroot=_path(found["fakechroot"]), fakeroot=fakeroot,
                                    chroot=_path(found["chroot"]), search_path=search_path)
        what = "fakeroot's daemon" if fakeroot.name == "fakeroot" else fakeroot.name
        tries.append((sandbox, f"LD_PRELOAD and {what} work (glibc dynamic programs only)"))
    return tries, ""


def _path(found: Path | None) -> Path:
    assert found is not None
    return found


def _try(sandbox: Sandbox, root: Path) -> str | None:
    """Run the test program; None when it worked, else what went wrong."""
    output = io.BytesIO()
    if isinstance(sandbox, FakechrootSandbox):
        argv: tuple[str, ...] = ("/bin/sh", "-c", 'read -r line < /probe.txt && echo "$line"')
    else:
        argv = ("/bin/busybox", "cat", "/probe.txt")
    spec = RunSpec(root=root, argv=argv, env={"PATH": "/bin"}, timeout=PROBE_TIMEOUT,
                   stdout=output)
    label = ""
    if isinstance(sandbox, ChrootSandbox):
        label = "in namespaces: " if sandbox.namespaces else "plain: "
    elif isinstance(sandbox, FakechrootSandbox):
        label = f"with {sandbox.fakeroot.name}: "
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


def with_scratch(sandbox: Sandbox, scratch: Path) -> Sandbox:
    """`sandbox` keeping its temporary files under `scratch` (for those that make some)."""
    if isinstance(sandbox, (ProotSandbox, FakechrootSandbox)):
        return replace(sandbox, scratch=scratch)
    return sandbox
