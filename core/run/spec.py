"""What a RUN step asks of a sandbox, what it gets back, and the interface every sandbox has.

A `RunSpec` says everything the step sees: the root directory, argv, the exact environment
(nothing of the builder's own environment is added), working directory, ids, extra mounts,
network mode, host name, time limit and the `/etc/resolv.conf` and `/etc/hosts` contents to show.
A `Sandbox` runs one spec and answers a `RunResult`; it never raises for the command's own failure
(a non-zero exit is a result), only `SandboxError` when the sandbox itself could not do its job.

Placeholders. To mount something at a path the root does not have (`/proc`, `/dev`,
`/etc/resolv.conf`, a cache mount target), a sandbox may create an empty directory or file there
(and missing parent directories) for the duration of the step. When `run` returns or raises, each
placeholder it created is gone again if it is still what the sandbox made (an empty file or an
empty directory with the same inode and ctime) and the times of its parent directory are put back; a
directory the step wrote into is kept, as part of the step's changes. `transient_paths` names
these paths up front (as written in the spec, before symlinks in the root are followed) so a
snapshotter can ignore them. A parent directory's ctime still moves when a placeholder is made
in it: comparisons of such directories should not rest on ctime alone.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from core.errors import SandboxError
from core.rootfs.metadata import EntryMetadata

Network = Literal["default", "none", "host"]
NETWORKS: tuple[Network, ...] = ("default", "none", "host")

#: host name a step sees unless told otherwise (BuildKit's)
DEFAULT_HOSTNAME = "buildkitsandbox"


@dataclass(frozen=True, kw_only=True)
class BindMount:
    """A host file or directory shown at `target` (cache, secret and bind mounts)."""

    source: Path
    target: str  # absolute path inside the root
    readonly: bool = True


@dataclass(frozen=True, kw_only=True)
class TmpfsMount:
    """An empty in-memory file system at `target`; `size` in bytes (None: kernel default)."""

    target: str
    size: int | None = None


Mount = BindMount | TmpfsMount


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SandboxError(f"invalid RUN spec: {message}")


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """One RUN step, as the sandbox must run it.

    `env` is exactly the step's environment. `cwd` must already exist in the root (the caller
    makes it). `stdout` receives the step's standard output and error, merged, as it is written;
    None leaves both on the builder's own. Standard input is always empty. `recorded` is what
    the image says about paths whose owner, mode or type the disk does not show (the map of an
    unprivileged extraction, keyed by root-relative path); a sandbox that fakes root shows
    the step these (fakechroot), the others ignore it.
    """

    root: Path
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: Network = "default"
    timeout: float | None = None
    hostname: str = DEFAULT_HOSTNAME
    stdout: BinaryIO | None = None
    resolv_conf: bytes | None = None
    hosts: bytes | None = None
    recorded: Mapping[str, EntryMetadata] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _require(self.root.is_absolute(), f"root {self.root} is not absolute")
        _require(bool(self.argv) and bool(self.argv[0]), "argv is empty")
        _require(self.cwd.startswith("/"), f"working directory {self.cwd!r} is not absolute")
        _require(self.network in NETWORKS, f"unknown network mode {self.network!r}")
        ids = (self.uid, self.gid, *self.groups)
        _require(all(0 <= i < 2**32 - 1 for i in ids), f"bad user or group id in {ids}")
        _require(self.timeout is None or self.timeout > 0, "timeout must be positive")
        for mount in self.mounts:
            _require(mount.target.startswith("/"), f"mount target {mount.target!r} is relative")
            _require(mount.target.strip("/") != "", "a mount cannot replace the root")
        for key in self.env:
            _require(bool(key) and "=" not in key and "\0" not in key, f"bad env name {key!r}")
        object.__setattr__(self, "env", types.MappingProxyType(dict(self.env)))
        object.__setattr__(self, "argv", tuple(self.argv))


@dataclass(frozen=True)
class FakeStat:
    """What a fake root says one inode is: `mode` with its file type bits, owner, device."""

    mode: int
    uid: int
    gid: int
    rdev: int = 0


@dataclass(frozen=True, kw_only=True)
class Ownership:
    """How a sandbox that only pretends to be root left ownership on disk.

    Files the step created belong, on disk, to the builder. `creator` is the (uid, gid) the
    step ran as: the owner of created files that nothing else says about. `recorded` maps
    (st_dev, st_ino) to what the step set through the fake root (fakeroot's database after
    the step, seeded ones included); empty when the sandbox keeps no record. `captures_chown`
    tells whether chown, chmod and mknod by the step are in `recorded` (fakechroot) or lost
    (proot: chown reports success and records nothing; userns: chown to another id fails).
    """

    creator: tuple[int, int]
    recorded: Mapping[tuple[int, int], FakeStat] = field(default_factory=dict)
    captures_chown: bool = False


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """How a step ended. `signal` is set when it was killed by one (then `exit_code` is
    128 + signal); `timed_out` when the sandbox killed it for running over `timeout`.
    `ownership` is None when files on disk have their real owners (chroot as root)."""

    exit_code: int
    signal: int | None
    duration: float
    timed_out: bool
    ownership: Ownership | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @classmethod
    def ended(cls, returncode: int, *, duration: float, timed_out: bool = False,
              ownership: Ownership | None = None) -> RunResult:
        """From a `subprocess` return code (negative: killed by that signal); a step killed
        for running over its timeout ends as by SIGKILL (137)."""
        if timed_out:
            return cls(exit_code=137, signal=9, duration=duration, timed_out=True,
                       ownership=ownership)
        signal = -returncode if returncode < 0 else None
        exit_code = 128 + signal if signal is not None else returncode
        return cls(exit_code=exit_code, signal=signal, duration=duration, timed_out=False,
                   ownership=ownership)


class Sandbox(Protocol):
    """Runs RUN steps in a root directory. See the module notes for the placeholder contract."""

    @property
    def name(self) -> str:
        """The `--run-isolation` name of this sandbox."""
        ...

    def run(self, spec: RunSpec) -> RunResult:
        """Run the step to its end (or its timeout); raise `SandboxError` if the sandbox fails."""
        ...

    def transient_paths(self, spec: RunSpec) -> tuple[str, ...]:
        """Root-relative paths this sandbox may create in the root for the step only."""
        ...


def transient_targets(spec: RunSpec, *, system: tuple[str, ...]) -> tuple[str, ...]:
    """The root-relative mount points a sandbox providing `system` paths would use for `spec`."""
    paths = list(system)
    if spec.resolv_conf is not None:
        paths.append("etc/resolv.conf")
    if spec.hosts is not None:
        paths.append("etc/hosts")
    paths.extend(m.target.strip("/") for m in spec.mounts)
    return tuple(dict.fromkeys(paths))
