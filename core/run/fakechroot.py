"""The `fakechroot` sandbox: LD_PRELOAD path rewriting plus fakeroot, for glibc images.

The step runs as `fakechroot fakeroot -i STATE -s STATE chroot ROOT /bin/sh -c ENTER ...`:
libfakechroot makes ROOT look like `/` and libfakeroot makes the step look like root (or the
spec's user), keeping what it chowns, chmods and mknods in faked's database. The database is
seeded from the spec's `recorded` map (`core.run.fakeroot`), so the step sees the image's
owners and modes, and read back afterwards into the result's `Ownership`. A tiny shell
program (ENTER) run by the image's own `/bin/sh` changes to the working directory and puts
back the variables the wrappers changed before executing the step. The launcher is the
`reaper`, which adopts `faked` (a daemon) so that fakeroot never waits on a slow init.

Needs neither privileges, namespaces nor ptrace: it works where Lambda runs functions. Limits:
- only dynamically linked glibc programs are rewritten; a static program (busybox-static) runs
  unconfined in the host's file system, so a root whose `/bin/sh`, or a step whose program,
  is static or not glibc is refused, naming the file; programs run with the host's dynamic
  loader and the image's libraries (via its `ld.so.conf`), so the host must be glibc too;
- `/dev` and `/sys` are the host's; there is no `/proc` (fakechroot's default shows the host's,
  which would show the builder's processes and their environment);
- fakechroot's "chroot" environment replaces some programs by its wrappers: `chroot`, `env` and
  `ldd` by its scripts, `ldconfig` (static) and `ischroot` by `true`;
- no RUN mounts, no network isolation, no host name, no supplementary groups;
- the step's environment also holds the wrappers' variables (`LD_PRELOAD`, `LD_LIBRARY_PATH`,
  `FAKECHROOT*`, `FAKEROOT*`, `FAKED_MODE`);
- files a step running as another user creates look root-owned to it (fakeroot's "unknown is
  root"); the image still gets the step's user (see `Ownership.creator`);
- a step's processes still running when it ends are killed;
- path rewriting is not a security boundary against a hostile step.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import RootfsError, SandboxError
from core.rootfs.paths import Root
from core.run import reaper
from core.run.fakeroot import read_state, write_seed
from core.run.mountplan import host_root
from core.run.process import Launch, kill_descendants, supervise
from core.run.spec import Ownership, RunResult, RunSpec
from core.run.tools import elf_interpreter

log = logging.getLogger(__name__)

REAPER_SCRIPT = Path(reaper.__file__)
SHELL = "/bin/sh"
#: runs in the image's shell: $1 working directory, then `set:NAME VALUE` / `unset:NAME`
#: pairs up to `--`, then the step's argv
ENTER = ('cd "$1" || exit 125; shift; '
         'while [ "$#" -gt 0 ] && [ "$1" != -- ]; do case $1 in '
         'set:*) export "${1#set:}=$2"; shift 2;; '
         'unset:*) unset "${1#unset:}"; shift;; *) exit 125;; esac; done; shift; exec "$@"')
#: variables the wrapper scripts and ENTER change on their way: set back to the step's
RESTORED = ("PATH", "HOME", "PWD", "OLDPWD", "CDPATH")
_FAKEROOT_IDS = ("UID", "EUID", "SUID", "FUID")
#: host paths the step sees as they are (fakechroot's default also has /proc, which would show
#: the builder's processes and their environment)
EXCLUDED = "/dev:/sys"
_GLIBC_LOADERS = ("ld-linux", "ld64.so")


@dataclass(frozen=True, kw_only=True)
class FakechrootSandbox:
    """Runs steps under fakechroot and fakeroot. `search_path` is the PATH the wrapper scripts
    run with (the tools directory first); `scratch` holds each step's state file and home."""

    fakechroot: Path
    fakeroot: Path
    chroot: Path
    search_path: str
    python: str = field(default_factory=lambda: sys.executable)
    scratch: Path | None = None

    @property
    def name(self) -> str:
        return "fakechroot"

    def transient_paths(self, spec: RunSpec) -> tuple[str, ...]:
        return ()

    def unsuitable(self, root: Path) -> str | None:
        """Why steps cannot run in `root` (its `/bin/sh` is not a glibc program), or None."""
        problem = program_problem(root, SHELL)
        return None if problem is None else f"{problem}; fakechroot runs only dynamically " \
                                            f"linked glibc programs"

    def run(self, spec: RunSpec) -> RunResult:
        _refuse_unsupported(spec)
        root = Path(host_root(spec))
        for program in dict.fromkeys((SHELL, _program(root, spec))):
            problem = program_problem(root, program) if program else None
            if problem is not None:
                raise SandboxError(f"fakechroot sandbox cannot run the step: {problem} "
                                   f"(fakechroot runs only dynamically linked glibc programs)")
        _check_cwd(root, spec.cwd)
        if set(spec.groups) - {spec.gid}:
            log.info("fakechroot sandbox cannot set supplementary groups %s", list(spec.groups))
        if self.scratch is not None:
            self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="bucketbuild-fakechroot-",
                                         dir=self.scratch) as tmp:
            state, home = Path(tmp) / "state", Path(tmp) / "home"
            home.mkdir()
            seeded = write_seed(state, root, spec.recorded or {})
            log.debug("fakechroot: seeded fakeroot with %d inodes", seeded)
            launch = Launch(argv=self._argv(spec, root, state), env=self._env(spec, home),
                            reap=kill_descendants, umask=0o022)
            outcome = supervise(launch, output=spec.stdout, timeout=spec.timeout)
            recorded = read_state(state) if not outcome.timed_out else {}
        ownership = Ownership(creator=(spec.uid, spec.gid), recorded=recorded,
                              captures_chown=True)
        return RunResult.ended(outcome.returncode, duration=outcome.duration,
                               timed_out=outcome.timed_out, ownership=ownership)

    def _argv(self, spec: RunSpec, root: Path, state: Path) -> tuple[str, ...]:
        restore: list[str] = []
        for name in RESTORED:
            value = spec.env.get(name)
            restore += [f"set:{name}", value] if value is not None else [f"unset:{name}"]
        drop = () if "LC_CTYPE" in spec.env else ("--drop", "LC_CTYPE")
        return (self.python, "-I", "-S", "-B", os.fspath(REAPER_SCRIPT), *drop, "--",
                os.fspath(self.fakechroot), "--environment", "chroot",
                os.fspath(self.fakeroot), "-i", os.fspath(state),
                "-s", os.fspath(state), os.fspath(self.chroot), os.fspath(root),
                SHELL, "-c", ENTER, "sh", spec.cwd, *restore, "--", *spec.argv)

    def _env(self, spec: RunSpec, home: Path) -> dict[str, str]:
        """The step's environment, with what the wrappers need: they run on the host."""
        env = {k: v for k, v in spec.env.items()
               if k not in ("FAKEROOTKEY", "FAKECHROOT", "FAKECHROOT_BASE")}
        env["PATH"] = self.search_path
        env["FAKECHROOT_EXCLUDE_PATH"] = EXCLUDED  # the host's /dev and /sys, and no /proc
        env["HOME"] = os.fspath(home)  # fakechroot reads $HOME/.fakechroot: keep it ours
        for suffix in _FAKEROOT_IDS:
            env[f"FAKEROOT{suffix}"] = str(spec.uid)
            env[f"FAKEROOT{suffix.replace('U', 'G')}"] = str(spec.gid)
        return env


def _refuse_unsupported(spec: RunSpec) -> None:
    if spec.network == "none":
        raise SandboxError("fakechroot sandbox cannot isolate the network (RUN --network=none)")
    if spec.mounts:
        targets = ", ".join(m.target for m in spec.mounts)
        raise SandboxError(f"fakechroot sandbox cannot provide RUN mounts ({targets})")
    if spec.resolv_conf is not None or spec.hosts is not None:
        raise SandboxError("fakechroot sandbox cannot show the step its own /etc/resolv.conf "
                           "or /etc/hosts")


def _program(root: Path, spec: RunSpec) -> str | None:
    """The file the step's argv[0] names in the root (searched in the step's PATH)."""
    name = spec.argv[0]
    if "/" in name:
        return name if name.startswith("/") else f"{spec.cwd.rstrip('/')}/{name}"
    for directory in spec.env.get("PATH", "").split(":"):
        candidate = f"{directory.rstrip('/')}/{name}" if directory.startswith("/") else None
        if candidate is not None and _resolved(root, candidate) is not None:
            return candidate
    return None  # not found: the shell says so


def _resolved(root: Path, path: str) -> Path | None:
    try:
        with Root(root, clamp=True) as fs:
            inside = fs.resolve(path.lstrip("/"))
    except (OSError, RootfsError):
        return None
    found = root / inside
    return found if found.is_file() else None


def program_problem(root: Path, program: str) -> str | None:
    """Why `program` (a path inside `root`) cannot run under fakechroot, or None. Scripts
    and missing files are left to the step (its shell reports them)."""
    found = _resolved(root, program)
    if found is None:
        return f"{program} does not exist in the image" if program == SHELL else None
    interpreter = elf_interpreter(found)
    if interpreter is None:
        return None if _is_script(found) or program != SHELL else \
            f"{program} is not an executable program"
    if interpreter == "":
        return f"{program} is statically linked"
    if not any(name in interpreter.rsplit("/", 1)[-1] for name in _GLIBC_LOADERS):
        return f"{program} is not a glibc program (its loader is {interpreter})"
    return None


def _is_script(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def _check_cwd(root: Path, cwd: str) -> None:
    try:
        with Root(root, clamp=True) as fs:
            inside = fs.resolve(cwd.lstrip("/"))
    except (OSError, RootfsError) as e:
        raise SandboxError(f"fakechroot sandbox: working directory {cwd}: {e}") from e
    if not (root / inside).is_dir():
        raise SandboxError(f"fakechroot sandbox: working directory {cwd} is not a directory "
                           f"in the root")
