"""Blob sources and the verified, atomic copy every layout writer uses."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.errors import ImageError
from core.image.digest import Hasher, Writable
from core.image.manifest import Descriptor

CHUNK = 1 << 20

BlobSource = Path | BinaryIO | bytes


@dataclass(frozen=True)
class Blob:
    """Content to write, described by `descriptor` (digest and size are checked on copy).

    `source` is a file path, a readable binary stream positioned at the start of the content,
    or bytes (for small things such as configs and manifests).
    """

    descriptor: Descriptor
    source: BlobSource


@contextmanager
def open_source(source: BlobSource) -> Iterator[BinaryIO]:
    """A readable stream over a source; paths are opened and closed here, streams are not."""
    if isinstance(source, Path):
        with source.open("rb") as stream:
            yield stream
    elif isinstance(source, bytes):
        yield io.BytesIO(source)
    else:
        yield source


def copy_verified(stream: BinaryIO, target: Writable, descriptor: Descriptor) -> None:
    """Copy exactly the described content from `stream` to `target`, verifying it."""
    hasher = Hasher()
    remaining = descriptor.size
    while remaining > 0:
        chunk = stream.read(min(CHUNK, remaining))
        if not chunk:
            break
        hasher.update(chunk)
        target.write(chunk)
        remaining -= len(chunk)
    if remaining or stream.read(1):
        raise ImageError(f"blob {descriptor.digest}: size differs from the declared "
                         f"{descriptor.size} bytes")
    if hasher.digest != descriptor.digest:
        raise ImageError(f"blob {descriptor.digest}: content has digest {hasher.digest}")


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Write `path` through a temporary file in the same directory, renamed on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
