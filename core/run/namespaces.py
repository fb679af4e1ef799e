"""The `chroot` and `userns` sandboxes: the entry program in new namespaces made by `unshare`.

`chroot` (root, or CAP_SYS_ADMIN and CAP_SYS_CHROOT): new mount, PID, UTS and IPC namespaces (and
a network namespace holding only `lo` for `network="none"`); the root gets `/proc`, `/dev`,
`resolv.conf`, `hosts` and the spec's mounts, becomes `/` by `pivot_root` with the host tree
detached, and the step runs with the spec's ids and groups and Docker's default capabilities.
The PID namespace's init exits with the step, so nothing the step started outlives it.
Without the right to make namespaces (`unshare=None`) it degrades to a plain `chroot`: no
`/proc`, `/dev`, `resolv.conf`, `hosts`, host name, mounts or network isolation; when the step
ends, every process whose root directory is the step's root is killed.

`userns` (no privileges; unprivileged user namespaces): the same in a user namespace mapping the
caller to root. Only that one id exists there, so a step running as another user sees itself
as that user through a nested user namespace, supplementary groups cannot be set (they are
left out, with a log line), every file of the root appears owned by the step's user, and `chown`
to another id fails. Files the step creates belong, on disk, to the builder: the result's
`Ownership` says they are the step's user's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.errors import SandboxError
from core.run import enter
from core.run.handoff import EntryPlan, parse_status
from core.run.mountplan import SYSTEM_PATHS, host_root, plan_mounts
from core.run.placeholders import Placeholders
from core.run.process import Launch, Outcome, kill_processes, root_of, supervise
from core.run.spec import Ownership, RunResult, RunSpec, transient_targets

log = logging.getLogger(__name__)

ENTRY_SCRIPT = Path(enter.__file__)
_NAMESPACE_FLAGS = ("--mount", "--pid", "--fork", "--kill-child", "--uts", "--ipc",
                    "--propagation", "private")


@dataclass(frozen=True, kw_only=True)
class ChrootSandbox:
    """Runs steps as real root would, in namespaces when `unshare` is given."""

    unshare: Path | None
    python: str = field(default_factory=lambda: sys.executable)

    @property
    def name(self) -> str:
        return "chroot"

    @property
    def namespaces(self) -> bool:
        return self.unshare is not None

    def transient_paths(self, spec: RunSpec) -> tuple[str, ...]:
        return transient_targets(spec, system=SYSTEM_PATHS) if self.namespaces else ()

    def run(self, spec: RunSpec) -> RunResult:
        if self.unshare is None:
            return _run_plain(spec, python=self.python)
        flags = _NAMESPACE_FLAGS + (("--net",) if spec.network == "none" else ())
        prefix = (os.fspath(self.unshare), *flags)
        return run_entry(spec, sandbox=self.name, prefix=prefix, python=self.python,
                         user_switch="setuid")


@dataclass(frozen=True, kw_only=True)
class UsernsSandbox:
    """Runs steps without privileges in a user namespace of their own."""

    unshare: Path
    python: str = field(default_factory=lambda: sys.executable)

    @property
    def name(self) -> str:
        return "userns"

    def transient_paths(self, spec: RunSpec) -> tuple[str, ...]:
        return transient_targets(spec, system=SYSTEM_PATHS)

    def run(self, spec: RunSpec) -> RunResult:
        if set(spec.groups) - {spec.gid}:
            log.info("userns sandbox cannot set supplementary groups %s; the step runs without",
                     list(spec.groups))
        network = ("--net",) if spec.network == "none" else ()
        flags = ("--user", "--map-root-user", *_NAMESPACE_FLAGS, *network)
        result = run_entry(spec, sandbox=self.name, prefix=(os.fspath(self.unshare), *flags),
                           python=self.python, user_switch="userns")
        return replace(result, ownership=Ownership(creator=(spec.uid, spec.gid)))


def run_entry(spec: RunSpec, *, sandbox: str, prefix: tuple[str, ...], python: str,
              user_switch: str) -> RunResult:
    """Run `spec` through the entry program started by the launcher command `prefix`."""
    placeholders = Placeholders()
    try:
        plan = EntryPlan(
            root=host_root(spec), argv=spec.argv, env=tuple(spec.env.items()), cwd=spec.cwd,
            uid=spec.uid, gid=spec.gid, groups=spec.groups,
            ops=plan_mounts(spec, placeholders), user_switch=user_switch,
            hostname=spec.hostname, loopback=spec.network == "none")
        outcome = _launch(plan, prefix=prefix, python=python, spec=spec)
    finally:
        placeholders.remove_all()
    return _result(outcome, sandbox=sandbox, init=True)


def _run_plain(spec: RunSpec, *, python: str) -> RunResult:
    if spec.mounts:
        raise SandboxError("plain chroot (no mount namespace) cannot provide RUN mounts")
    if spec.network == "none":
        raise SandboxError("plain chroot (no network namespace) cannot run without network")
    log.info("plain chroot: the step gets no /proc, /dev, resolv.conf, hosts or host name")
    root = host_root(spec)
    plan = EntryPlan(root=root, argv=spec.argv, env=tuple(spec.env.items()), cwd=spec.cwd,
                     uid=spec.uid, gid=spec.gid, groups=spec.groups, isolate="chroot",
                     init=False)
    outcome = _launch(plan, prefix=(), python=python, spec=spec,
                      reap=lambda _: kill_processes(lambda pid: _inside(root_of(pid), root)))
    return _result(outcome, sandbox="chroot", init=False)


def _inside(path: str | None, root: str) -> bool:
    return path is not None and (path == root or path.startswith(root + "/"))


@contextlib.contextmanager
def _plan_file(plan: EntryPlan) -> Iterator[int]:
    try:
        fd = os.memfd_create("bucketbuild-plan", os.MFD_CLOEXEC)
    except (OSError, AttributeError):
        with tempfile.TemporaryFile() as spill:
            fd = os.dup(spill.fileno())
    try:
        os.write(fd, plan.encode())
        os.lseek(fd, 0, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)


def _launch(plan: EntryPlan, *, prefix: tuple[str, ...], python: str, spec: RunSpec,
            reap: Callable[[int], None] | None = None) -> Outcome:
    with _plan_file(plan) as plan_fd:
        argv = (*prefix, python, "-I", "-S", "-B", os.fspath(ENTRY_SCRIPT), str(plan_fd))
        launch = Launch(argv=argv, env={}, pass_fds=(plan_fd,), entry=True, reap=reap)
        return supervise(launch, output=spec.stdout, timeout=spec.timeout)


def _result(outcome: Outcome, *, sandbox: str, init: bool) -> RunResult:
    """The step's result from the launcher's outcome and the entry program's status."""
    status = parse_status(outcome.status)
    for note in status.notes:
        log.info("%s sandbox: %s", sandbox, note)
    if outcome.timed_out:
        return RunResult.ended(outcome.returncode, duration=outcome.duration, timed_out=True)
    if status.error is not None:
        raise SandboxError(f"{sandbox} sandbox: {status.error}")
    code = status.exit
    if code is None:
        if init or not status.started:
            detail = outcome.diagnostics or f"exit status {outcome.returncode}"
            raise SandboxError(f"{sandbox} sandbox failed before the step ended: {detail}")
        code = outcome.returncode
    return RunResult.ended(code, duration=outcome.duration)
