"""Finding the programs the sandboxes need: a tools directory first, then `PATH`.

A function ships its tools (proot, busybox, ...) in a Lambda layer or in its image and names the
directory with `BUCKETBUILD_TOOLS_DIR`; the caller reads that setting and passes it in.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_PT_INTERP = 3


@dataclass(frozen=True)
class Tools:
    """Where executables are looked up, in order."""

    directories: tuple[Path, ...]

    @classmethod
    def discover(cls, *, tools_dir: Path | None = None,
                 environ: Mapping[str, str] | None = None) -> Tools:
        """`tools_dir` (and its `bin/`), then the directories of `PATH` in `environ`
        (default: this process's environment, read now)."""
        env = os.environ if environ is None else environ
        found: list[Path] = []
        if tools_dir is not None:
            found += [tools_dir, tools_dir / "bin"]
        found += [Path(p) for p in env.get("PATH", os.defpath).split(os.pathsep) if p]
        return cls(tuple(dict.fromkeys(found)))

    def find(self, name: str) -> Path | None:
        """The first executable regular file called `name`."""
        for directory in self.directories:
            candidate = directory / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        return None

    def describe(self) -> str:
        return ":".join(map(str, self.directories)) or "(nowhere)"


def is_static_executable(path: Path) -> bool:
    """Whether `path` is an ELF executable without a program interpreter (statically linked)."""
    found = elf_interpreter(path)
    return found is not None and found == ""


def elf_interpreter(path: Path) -> str | None:
    """The program interpreter a 64-bit ELF file names (its dynamic loader, e.g.
    `/lib64/ld-linux-x86-64.so.2`), "" for a static executable, None when `path` is not a
    readable 64-bit ELF file. `path` is opened as given: resolve it inside a root first."""
    try:
        with path.open("rb") as f:
            header = f.read(64)
            if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2:
                return None  # not a 64-bit ELF file
            order = "<" if header[5] == 1 else ">"
            phoff, = struct.unpack_from(order + "Q", header, 32)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            for i in range(phnum):
                if (i + 1) * phentsize > len(table) or phentsize < 56:
                    break
                kind, = struct.unpack_from(order + "I", table, i * phentsize)
                if kind == _PT_INTERP:
                    offset, = struct.unpack_from(order + "Q", table, i * phentsize + 8)
                    size, = struct.unpack_from(order + "Q", table, i * phentsize + 32)
                    f.seek(offset)
                    return f.read(min(size, 4096)).split(b"\0", 1)[0].decode("utf-8", "replace")
    except (OSError, struct.error):
        return None
    return ""
