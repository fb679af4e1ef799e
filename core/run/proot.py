"""The `proot` sandbox: ptrace-based path translation with a faked root (`proot -0`).

Needs only that the builder may ptrace its own children, so it works as an unprivileged user
without user namespaces (Cloud Functions), and runs static binaries. proot makes mount points
in the root when they are missing and removes them when it exits, but not when it is killed, so
the sandbox makes them itself as placeholders (see `core.run.spec`) and proot finds them there.
What it cannot do, compared with `chroot`:
- no `/proc`: the host's would show the builder's processes and their environment (credentials);
- `/dev` has only the harmless devices bound from the host and an empty `/dev/shm`;
- no network isolation (`network="none"` is refused), no host name, no supplementary groups;
- binds cannot be read-only: read-only mounts are copies made for the step, so writes to them
  are lost instead of refused, and tmpfs mounts are empty directories without a size limit;
- `chown` to another id reports success and records nothing: files keep the owner they had
  (those the step creates belong to the step's user, see `Ownership`);
- the step ends when its last process does, so a background process it leaves behind keeps it
  running until the time limit; the exit status is that of the last process to exit, and a
  step killed by a signal exits 255 (proot prints which signal in the step's output);
- ptrace is not a security boundary against a hostile step.
- proot adds `PWD` (the working directory) to the step's environment; with a `scratch`
  directory it also adds `PROOT_TMP_DIR` (there, so that proot's loader and glue files stay
  under the work dir), else proot's own temporary files go to `/tmp` (or to the step's
  `PROOT_TMP_DIR`). Steps run with umask 022.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import SandboxError
from core.run.mountplan import DEVICES, host_root
from core.run.placeholders import Kind, Placeholders
from core.run.process import Launch, kill_processes, supervise, tracer_of
from core.run.spec import Mount, Ownership, RunResult, RunSpec, TmpfsMount, transient_targets

log = logging.getLogger(__name__)

SYSTEM_PATHS = ("dev", *(f"dev/{name}" for name in DEVICES), "dev/shm")


@dataclass(frozen=True, kw_only=True)
class ProotSandbox:
    """Runs steps under `proot`; `scratch` holds the step's temporary copies (None: TMPDIR)."""

    proot: Path
    scratch: Path | None = None

    @property
    def name(self) -> str:
        return "proot"

    def transient_paths(self, spec: RunSpec) -> tuple[str, ...]:
        return transient_targets(spec, system=SYSTEM_PATHS)

    def run(self, spec: RunSpec) -> RunResult:
        if spec.network == "none":
            raise SandboxError("proot sandbox cannot isolate the network (RUN --network=none)")
        root = Path(host_root(spec))
        placeholders = Placeholders()
        try:
            _check_cwd(placeholders, root, spec.cwd)
            with tempfile.TemporaryDirectory(prefix="bucketbuild-proot-",
                                             dir=self.scratch) as tmp:
                arguments = _arguments(spec, root, Path(tmp), placeholders)
                env = dict(spec.env)
                if self.scratch is not None and "PROOT_TMP_DIR" not in env:
                    env["PROOT_TMP_DIR"] = tmp  # the loader and glue stay under the work dir
                launch = Launch(argv=(os.fspath(self.proot), *arguments, *spec.argv),
                                env=env, reap=kill_tracees, umask=0o022)
                outcome = supervise(launch, output=spec.stdout, timeout=spec.timeout)
                _remove_glue(outcome.pid, env.get("PROOT_TMP_DIR") or "/tmp")
        finally:
            placeholders.remove_all()
        ownership = Ownership(creator=(spec.uid, spec.gid))
        return RunResult.ended(outcome.returncode, duration=outcome.duration,
                               timed_out=outcome.timed_out, ownership=ownership)


def _check_cwd(placeholders: Placeholders, root: Path, cwd: str) -> None:
    if not (root / placeholders.resolve(root, cwd)).is_dir():
        raise SandboxError(f"proot sandbox: working directory {cwd} is not a directory in the root")


def _binds(spec: RunSpec, tmp: Path) -> list[tuple[Path, str, Kind]]:
    """(host source, guest target, kind) of everything bound into the root."""
    binds: list[tuple[Path, str, Kind]] = [
        (Path(f"/dev/{name}"), f"dev/{name}", "file") for name in DEVICES
        if os.path.exists(f"/dev/{name}")]
    (tmp / "shm").mkdir(mode=0o1777)
    binds.append((tmp / "shm", "dev/shm", "dir"))
    for name, content in (("resolv.conf", spec.resolv_conf), ("hosts", spec.hosts)):
        if content is not None:
            (tmp / name).write_bytes(content)
            binds.append((tmp / name, f"etc/{name}", "file"))
    for number, mount in enumerate(spec.mounts):
        source = _mount_source(mount, tmp / f"mount-{number}")
        binds.append((source, mount.target, "dir" if source.is_dir() else "file"))
    return binds


def _arguments(spec: RunSpec, root: Path, tmp: Path, placeholders: Placeholders) -> list[str]:
    """proot's options. Mount points are made beforehand as our placeholders: proot would
    make its own in the root and leave them there when it is killed."""
    ids = "0:0" if spec.uid == 0 and spec.gid == 0 else f"{spec.uid}:{spec.gid}"
    arguments = ["-i", ids, "-r", os.fspath(root), "-w", spec.cwd]
    if set(spec.groups) - {spec.gid}:
        log.info("proot sandbox cannot set supplementary groups %s", list(spec.groups))
    for source, target, kind in _binds(spec, tmp):
        guest = "/" + placeholders.ensure(root, target, kind)
        if ":" in os.fspath(source) or ":" in guest:
            raise SandboxError(f"proot cannot bind paths containing ':' ({source} -> {guest})")
        arguments += ["-b", f"{source}:{guest}"]
    return arguments


def _mount_source(mount: Mount, place: Path) -> Path:
    """What to bind for `mount`: the source itself, a copy for read-only binds, or a fresh
    directory standing in for a tmpfs."""
    if isinstance(mount, TmpfsMount):
        place.mkdir(mode=0o1777)
        return place
    if not mount.source.exists():
        raise SandboxError(f"bind mount source {mount.source} does not exist")
    if not mount.readonly:
        return mount.source
    if mount.source.is_dir():
        shutil.copytree(mount.source, place, symlinks=True)
    else:
        shutil.copy2(mount.source, place)
    return place


def _remove_glue(pid: int, directory: str) -> None:
    """Remove the temporary directories a killed proot (`pid`) could not remove itself."""
    for path in glob.glob(os.path.join(glob.escape(directory), f"proot-{pid}-*")):
        with contextlib.suppress(OSError):
            if os.lstat(path).st_uid == os.geteuid():
                shutil.rmtree(path)
                log.debug("removed proot's leftover %s", path)


def kill_tracees(tracer: int) -> None:
    """SIGKILL every process `tracer` traces: if the tracer died first, ptrace would let them
    go on, untranslated, in the host's file system."""
    kill_processes(lambda pid: tracer_of(pid) == tracer)
