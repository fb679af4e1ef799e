"""Byte searches for the secrets tests: every file under a path, opened all the way down.

`blobs` yields (name, bytes) for each file and, recursively, for what is inside it: the members
of a tar archive and the decompressed bytes of a gzip or zstd stream. `Needles` are the values
searched for, with the forms a value takes in output (a multi-line value's lines).
"""

from __future__ import annotations

import gzip
import io
import re
import subprocess
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import zstandard

_MAX_DEPTH = 4
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.")


def _inner(name: str, data: bytes, depth: int) -> Iterator[tuple[str, bytes]]:
    yield name, data
    if depth >= _MAX_DEPTH:
        return
    if data[:2] == b"\x1f\x8b":
        yield from _inner(f"{name}|gunzip", _gunzip(data), depth + 1)
    elif data[:4] == b"\x28\xb5\x2f\xfd":
        yield from _inner(f"{name}|unzstd", _unzstd(data), depth + 1)
    elif len(data) >= 512 and data[257:262] == b"ustar":
        yield from _members(name, data, depth)


def _gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return b""


def _unzstd(data: bytes) -> bytes:
    try:
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except zstandard.ZstdError:
        return b""


def _members(name: str, data: bytes, depth: int) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is not None:
                    yield from _inner(f"{name}!{member.name}", handle.read(), depth + 1)
    except tarfile.TarError:
        return


def blobs(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every regular file under `root` (or `root` itself), and what is inside each."""
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()
                                                   and not p.is_symlink())
    for path in paths:
        yield from _inner(str(path), path.read_bytes(), 0)


@dataclass(frozen=True)
class Needles:
    """Values that must not (or, for controls, must) be found."""

    values: Mapping[str, str]  # label -> value

    def forms(self) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for label, value in self.values.items():
            found[label] = value.encode()
            lines = [line for line in value.splitlines() if line.strip()]
            if len(lines) > 1:
                found.update({f"{label}[line {i}]": line.encode()
                              for i, line in enumerate(lines)})
        return found

    def hits(self, named: Iterable[tuple[str, bytes]], *, jwt: bool = True,
             ) -> list[tuple[str, str]]:
        """(label, where) for each form found; with `jwt`, any JSON Web Token counts too
        (label `jwt`): registry tokens are JWTs here."""
        forms = self.forms()
        found: list[tuple[str, str]] = []
        for where, data in named:
            found += [(label, where) for label, form in forms.items() if form in data]
            if jwt and JWT.search(data):
                found.append(("jwt", where))
        return found


def oci_copy(reference: str, dest: Path, *, creds: str | None = None) -> Path:
    """`skopeo copy docker://REF oci:DEST:image` (a client we did not write)."""
    cmd = ["skopeo", "copy", "--quiet", "--src-tls-verify=false"]
    if creds:
        cmd += ["--src-creds", creds]
    cmd += [f"docker://{reference}", f"oci:{dest}:image"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return dest
