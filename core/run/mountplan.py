"""The mounts a namespace sandbox makes for a step, as `MountOp`s for the entry program.

In order: the root bound onto itself (`nodev`, so device nodes a step creates are files in the
layer and nothing more), `/proc` with the kernel knobs read-only and the sensitive files masked,
a small `/dev` (tmpfs with the host's harmless devices bound in, `pts`, `shm`, the `fd` links),
`/etc/resolv.conf` and `/etc/hosts` from the spec (read-only), then the spec's own mounts,
shallowest first. Mount points the root lacks are made as placeholders (`Placeholders`) before
the entry program starts; mount points inside a tmpfs made for the step are made by the entry
program itself and vanish with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import SandboxError
from core.run.handoff import MountOp
from core.run.placeholders import Kind, Placeholders
from core.run.spec import BindMount, Mount, RunSpec, TmpfsMount

SYSTEM_PATHS = ("proc", "dev")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
PROC_READONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")
PROC_MASKED = ("kcore", "keys", "timer_list", "sched_debug", "acpi", "scsi", "latency_stats")
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))
_SMALL_TMPFS = "size=65536k"


@dataclass(frozen=True)
class _Placed:
    """A mount already planned: where it is as written, on the host, and what backs it."""

    written: str  # clean target as the spec wrote it, root-relative
    host: str  # host path of the mount point
    backing: Path | None  # directory a nested target resolves in; None: a fresh tmpfs


def host_root(spec: RunSpec) -> str:
    root = os.path.realpath(spec.root)
    if root == "/" or not os.path.isdir(root):
        raise SandboxError(f"root {spec.root} is not a directory other than /")
    return root


def plan_mounts(spec: RunSpec, placeholders: Placeholders) -> tuple[MountOp, ...]:
    """All operations for `spec`, making the placeholders they need on the way."""
    root = host_root(spec)
    base = Path(root)
    ops = [MountOp(kind="bind", source=root, target=root, options=("nodev",))]
    proc = f"{root}/{placeholders.ensure(base, 'proc', 'dir')}"
    ops += _proc_ops(proc)
    dev = f"{root}/{placeholders.ensure(base, 'dev', 'dir')}"
    ops += _dev_ops(dev)
    for name, content in (("resolv.conf", spec.resolv_conf), ("hosts", spec.hosts)):
        if content is not None:
            target = f"{root}/{placeholders.ensure(base, f'etc/{name}', 'file')}"
            ops.append(MountOp(kind="file", source=f"{dev}/.bucketbuild-{name}", target=target,
                               content=content))
    placed = [_Placed("proc", proc, None), _Placed("dev", dev, None)]
    for mount in sorted(spec.mounts, key=lambda m: m.target.strip("/").count("/")):
        host, nested_op = _mount_point(mount, base, placed, placeholders)
        if nested_op is not None:
            ops.append(nested_op)
        ops.append(_mount_op(mount, host))
        backing = mount.source if isinstance(mount, BindMount) and mount.source.is_dir() else None
        placed.append(_Placed(_clean(mount.target), host, backing))
    return tuple(ops)


def _proc_ops(proc: str) -> list[MountOp]:
    ops = [MountOp(kind="mount", source="proc", target=proc, options=("nosuid", "nodev", "noexec"))]
    ops += [MountOp(kind="bind", source=f"{proc}/{name}", target=f"{proc}/{name}",
                    options=("ro", "rec"), optional=True) for name in PROC_READONLY]
    ops += [MountOp(kind="mask", target=f"{proc}/{name}", optional=True) for name in PROC_MASKED]
    return ops


def _dev_ops(dev: str) -> list[MountOp]:
    ops = [MountOp(kind="mount", source="tmpfs", target=dev, options=("nosuid", "noexec"),
                   data=f"mode=755,{_SMALL_TMPFS}")]
    for name in DEVICES:
        ops.append(MountOp(kind="touch", target=f"{dev}/{name}"))
        ops.append(MountOp(kind="bind", source=f"/dev/{name}", target=f"{dev}/{name}",
                           optional=True))
    ops += [
        MountOp(kind="mkdir", target=f"{dev}/pts"),
        MountOp(kind="mount", source="devpts", target=f"{dev}/pts", options=("nosuid", "noexec"),
                data="newinstance,ptmxmode=0666,mode=0620", optional=True),
        MountOp(kind="mkdir", target=f"{dev}/shm"),
        MountOp(kind="mount", source="tmpfs", target=f"{dev}/shm",
                options=("nosuid", "nodev", "noexec"), data=f"mode=1777,{_SMALL_TMPFS}"),
    ]
    ops += [MountOp(kind="symlink", source=link, target=f"{dev}/{name}")
            for name, link in DEV_LINKS]
    return ops


def _clean(target: str) -> str:
    return "/".join(p for p in target.split("/") if p not in ("", "."))


def _kind(mount: Mount) -> Kind:
    if isinstance(mount, BindMount) and not mount.source.is_dir():
        return "file"
    return "dir"


def _mount_point(mount: Mount, base: Path, placed: list[_Placed],
                 placeholders: Placeholders) -> tuple[str, MountOp | None]:
    """Host path of `mount`'s mount point, and an entry-side operation making it if needed."""
    if isinstance(mount, BindMount) and not mount.source.exists():
        raise SandboxError(f"bind mount source {mount.source} does not exist")
    written, kind = _clean(mount.target), _kind(mount)
    for outer in reversed(placed):
        if not written.startswith(outer.written + "/"):
            continue
        rest = written[len(outer.written) + 1:]
        if outer.written == "proc":
            raise SandboxError(f"cannot mount at {mount.target}: /proc belongs to the sandbox")
        if outer.backing is None:  # a tmpfs made for this step: make the point in there
            host = f"{outer.host}/{rest}"
            return host, MountOp(kind="mkdir" if kind == "dir" else "touch", target=host)
        return f"{outer.host}/{placeholders.ensure(outer.backing, rest, kind)}", None
    return f"{base}/{placeholders.ensure(base, written, kind)}", None


def _mount_op(mount: Mount, host: str) -> MountOp:
    if isinstance(mount, TmpfsMount):
        data = f"size={mount.size}" if mount.size is not None else ""
        return MountOp(kind="mount", source="tmpfs", target=host, options=("nosuid", "nodev"),
                       data=data)
    options = ("rec", "nosuid", "nodev", *(("ro",) if mount.readonly else ()))
    return MountOp(kind="bind", source=os.fspath(mount.source), target=host, options=options)
