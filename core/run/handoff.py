"""What the builder hands the entry program (`core.run.enter`), and what it hands back.

The plan travels as a `marshal`-ed dict of plain values (the builder and the entry program run
the same interpreter, and `marshal` costs the entry no imports). Status comes back as lines
`KEYWORD [text]`: `note TEXT`, `error TEXT` (the sandbox failed; the step did not run), `start`
(the step is about to be executed) and, from an init, `exit N` (N < 0: killed by signal -N).
"""

from __future__ import annotations

import marshal
from dataclasses import dataclass

from core.errors import SandboxError

#: mount flag names a `MountOp` may carry
FLAG_NAMES = ("ro", "nosuid", "nodev", "noexec", "rec")
OP_KINDS = ("bind", "mount", "file", "mask", "mkdir", "touch", "symlink")


@dataclass(frozen=True, kw_only=True)
class MountOp:
    """One step of preparing the step's file system, on host paths before isolation.

    kinds: `bind` (source onto target; `ro nosuid nodev noexec` remount the bind, `rec` binds
    recursively), `mount` (file system type `source`, mount data `data`), `file` (`content`
    written at `source` on a tmpfs of ours and bound read-only onto target), `mask` (hide a
    file or directory if there is one), `mkdir` (with parents), `touch` (an empty file, with
    parents), `symlink` (target -> text `source`). When an `optional` operation fails the
    step still runs (noted in the log; silently when the thing is missing).
    """

    kind: str
    target: str
    source: str = ""
    options: tuple[str, ...] = ()
    data: str = ""
    content: bytes = b""
    optional: bool = False

    def __post_init__(self) -> None:
        if self.kind not in OP_KINDS or not set(self.options) <= set(FLAG_NAMES):
            raise SandboxError(f"bad mount operation {self.kind} {self.options}")


@dataclass(frozen=True, kw_only=True)
class EntryPlan:
    """Everything the entry program does, in order."""

    root: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    cwd: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    ops: tuple[MountOp, ...] = ()
    isolate: str = "pivot"  # "pivot" (needs a private mount namespace) or "chroot"
    init: bool = True  # stay as the PID namespace's init and start the step as a child
    user_switch: str = "setuid"  # or "userns": a nested user namespace shows the ids
    hostname: str | None = None
    loopback: bool = False
    drop_caps: bool = True

    def encode(self) -> bytes:
        ops = [{"kind": op.kind, "target": op.target, "source": op.source,
                "options": list(op.options), "data": op.data, "content": op.content,
                "optional": op.optional} for op in self.ops]
        return marshal.dumps({
            "root": self.root, "argv": list(self.argv), "env": dict(self.env), "cwd": self.cwd,
            "uid": self.uid, "gid": self.gid, "groups": list(self.groups), "ops": ops,
            "isolate": self.isolate, "init": self.init, "user_switch": self.user_switch,
            "hostname": self.hostname, "loopback": self.loopback, "drop_caps": self.drop_caps,
        })


@dataclass(frozen=True)
class Status:
    """What the entry program reported."""

    notes: tuple[str, ...]
    error: str | None
    started: bool
    exit: int | None


def parse_status(data: bytes) -> Status:
    notes: list[str] = []
    error: str | None = None
    started = False
    code: int | None = None
    for line in data.decode("utf-8", "replace").splitlines():
        keyword, _, text = line.partition(" ")
        if keyword == "note":
            notes.append(text)
        elif keyword == "error":
            error = text
        elif keyword == "start":
            started = True
        elif keyword == "exit" and text.lstrip("-").isdigit():
            code = int(text)
    return Status(tuple(notes), error, started, code)
