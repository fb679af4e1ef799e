"""Base images for the unprivileged builds, written as tar files and pushed by buildah.

Each base is one layer crafted entry by entry (owners, modes, setuid and setgid bits, a FIFO, a
device node, hardlinks), so that an unprivileged extraction has a lot to record in its metadata
map; buildah (`from scratch`, `add` of the tar, which keeps owners, `commit`, `push`) is the
independent producer, as in `tests.fixtures.images`.
- `busybox_entries`: a static busybox with its applets (runs under proot; not under fakechroot);
- `glibc_entries`: dash as `/bin/sh`, bash, coreutils and the libraries `ldd` names for them,
  copied from this machine (runs under fakechroot, whose programs must be dynamic glibc ones).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.images import Buildah, require_tools, run

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "ls", "cat", "echo", "true", "env", "id", "mkdir", "rm", "ln", "touch", "chmod",
           "chown", "chgrp", "stat", "cp", "mv", "mknod", "sed", "grep", "sleep", "rmdir")
GLIBC_PROGRAMS = ("dash", "bash", "ls", "cat", "id", "mkdir", "rm", "ln", "touch", "chmod",
                  "chown", "chgrp", "stat", "cp", "mv", "mknod", "env", "sleep", "rmdir",
                  "readlink", "sed")
PASSWD = ("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\nshadow:x:42:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class Entry:
    """One tar entry: kind is file, dir, symlink, link (hardlink), fifo or char."""

    name: str
    kind: str = "file"
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    data: bytes = b""
    target: str = ""  # symlink target, hardlink target, or "MAJOR:MINOR" of a device


def _common() -> list[Entry]:
    """What both bases hold besides their programs."""
    return [
        Entry("etc", "dir", 0o755), Entry("etc/passwd", data=PASSWD.encode()),
        Entry("etc/group", data=GROUP.encode()), Entry("etc/motd", data=b"hello\n"),
        Entry("etc/shadow", mode=0o640, gid=42, data=b"root:*::0:::::\n"),
        Entry("home", "dir", 0o755), Entry("home/app", "dir", 0o750, 1000, 1000),
        Entry("home/app/.profile", uid=1000, gid=1000, data=b"# profile\n"),
        Entry("root", "dir", 0o700), Entry("tmp", "dir", 0o1777),
        Entry("srv", "dir", 0o755), Entry("srv/data", "dir", 0o2775, 1000, 50),
        Entry("srv/data/readme", mode=0o664, uid=1000, gid=50, data=b"shared\n"),
        Entry("old", "dir", 0o755), Entry("old/a", uid=1000, gid=1000, data=b"linked\n"),
        Entry("old/b", "link", 0o644, 1000, 1000, target="old/a"),
        Entry("usr", "dir", 0o755), Entry("usr/bin", "dir", 0o755),
        Entry("usr/bin/suid", mode=0o4755, data=b"#!/bin/sh\nexit 0\n"),
        Entry("var", "dir", 0o755), Entry("var/cache", "dir", 0o755),
        Entry("var/cache/stale", data=b"stale\n"), Entry("var/lib", "dir", 0o755),
        Entry("var/lib/gone", "dir", 0o700, 1000, 1000),
        Entry("var/lib/gone/file", mode=0o600, uid=1000, gid=1000, data=b"x\n"),
        Entry("opt", "dir", 0o755), Entry("opt/special", "dir", 0o755),
        Entry("opt/special/pipe", "fifo", 0o620, 0, 50),
        Entry("opt/special/null", "char", 0o666, target="1:3"),
        Entry("opt/readonly", "dir", 0o555),
        Entry("opt/readonly/file", mode=0o444, data=b"read only\n"),
    ]


def busybox_entries() -> list[Entry]:
    entries = [Entry("bin", "dir", 0o755),
               Entry("bin/busybox", mode=0o755, data=BUSYBOX.read_bytes())]
    entries += [Entry(f"bin/{applet}", "symlink", 0o777, target="busybox") for applet in APPLETS]
    return entries + _common()


def _ldd(program: Path) -> Iterator[Path]:
    done = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=True)
    for match in re.finditer(r"(/\S+)", done.stdout):
        yield Path(match.group(1))


def glibc_entries() -> list[Entry]:
    """dash, bash and coreutils from this machine with their libraries, at the paths `ldd`
    names (the loader included), and an ld.so.conf naming the library directory."""
    files: dict[str, bytes] = {}
    for name in GLIBC_PROGRAMS:
        found = shutil.which(name)
        assert found is not None, f"{name} is not installed"
        files[f"bin/{name}"] = Path(os.path.realpath(found)).read_bytes()
        for library in _ldd(Path(found)):
            files[library.as_posix().lstrip("/")] = library.resolve().read_bytes()
    entries: dict[str, Entry] = {}
    for path in sorted(files):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            entries.setdefault(parent, Entry(parent, "dir", 0o755))
        entries[path] = Entry(path, mode=0o755, data=files[path])
    entries["bin/sh"] = Entry("bin/sh", "symlink", 0o777, target="dash")
    conf = b"/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n"
    common = _common()
    common += [Entry("etc/ld.so.conf", data=conf),
               Entry("etc/nsswitch.conf", data=b"passwd: files\ngroup: files\n")]
    return list(entries.values()) + common


def write_tar(path: Path, entries: list[Entry]) -> Path:
    kinds = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "link": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "char": tarfile.CHRTYPE}
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type, info.mode = kinds[entry.kind], entry.mode
            info.uid, info.gid, info.mtime = entry.uid, entry.gid, 1_600_000_000
            if entry.kind in ("symlink", "link"):
                info.linkname = entry.target
            if entry.kind == "char":
                info.devmajor, info.devminor = map(int, entry.target.split(":"))
            info.size = len(entry.data) if entry.kind == "file" else 0
            tar.addfile(info, io.BytesIO(entry.data) if entry.kind == "file" else None)
    return path


def push_base(workdir: Path, host: str, name: str, entries: list[Entry]) -> str:
    """Push a one-layer image of `entries` as `host/base/NAME:1` with buildah; the reference."""
    require_tools("buildah")
    buildah = Buildah(workdir / "buildah")
    archive = write_tar(workdir / f"{name}.tar", entries)
    container = buildah("from", "scratch")
    buildah("add", container, str(archive), "/")
    buildah("config", "--arch", "amd64", "--os", "linux", "--cmd", "/bin/sh",
            "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            container)
    buildah("commit", "--quiet", container, f"localhost/{name}:1")
    buildah("rm", container)
    reference = f"{host}/base/{name}:1"
    buildah("push", "--quiet", "--tls-verify=false", "--format", "docker",
            f"localhost/{name}:1", f"docker://{reference}")
    return reference


def unpack_layout(layout: Path, tag: str, bundle: Path) -> Path:
    """`umoci unpack` (as root) of an OCI layout's image; the rootfs."""
    require_tools("umoci")
    run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)])
    return bundle / "rootfs"
