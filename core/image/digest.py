"""Content digests (`algorithm:encoded`) and streaming helpers that compute them."""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO, Protocol

from core.errors import ImageError

_ALGORITHM = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*")
_ENCODED = re.compile(r"[a-zA-Z0-9=_-]+")
#: registered algorithms and the exact form of their encoded part
_REGISTERED = {
    "sha256": re.compile(r"[a-f0-9]{64}"),
    "sha512": re.compile(r"[a-f0-9]{128}"),
}


def sha256_digest(data: bytes) -> str:
    """Return the `sha256:<hex>` digest of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_digest(text: str) -> tuple[str, str]:
    """Split a digest into (algorithm, encoded), validating both parts.

    sha256 and sha512 need lowercase hex of their exact length; other algorithms only need
    the OCI grammar.
    """
    algorithm, sep, encoded = text.partition(":")
    if not sep:
        raise ImageError(f"invalid digest {text!r}: expected ALGORITHM:HEX")
    if not _ALGORITHM.fullmatch(algorithm):
        raise ImageError(f"invalid digest {text!r}: bad algorithm {algorithm!r}")
    exact = _REGISTERED.get(algorithm)
    if exact is not None and not exact.fullmatch(encoded):
        raise ImageError(f"invalid digest {text!r}: {algorithm} needs lowercase hex "
                         f"of {len(hashlib.new(algorithm).hexdigest())} characters")
    if exact is None and not _ENCODED.fullmatch(encoded):
        raise ImageError(f"invalid digest {text!r}: bad encoded part")
    return algorithm, encoded


def is_digest(text: str) -> bool:
    """True if `text` is a valid digest."""
    try:
        parse_digest(text)
    except ImageError:
        return False
    return True


def digest_hex(text: str) -> str:
    """The encoded part of a sha256 digest (the blob's file name in layouts)."""
    algorithm, encoded = parse_digest(text)
    if algorithm != "sha256":
        raise ImageError(f"unsupported digest algorithm {algorithm!r} (only sha256)")
    return encoded


class Hasher:
    """Counts bytes and computes their sha256 as they pass."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _Digesting:
    """What the wrappers below share: the digest and size of the bytes passed so far."""

    def __init__(self) -> None:
        self._hasher = Hasher()

    @property
    def digest(self) -> str:
        return self._hasher.digest

    @property
    def size(self) -> int:
        return self._hasher.size


class DigestingWriter(_Digesting):
    """A write-through wrapper that hashes and counts everything written to `target`."""

    def __init__(self, target: Writable) -> None:
        super().__init__()
        self._target = target

    def write(self, data: bytes) -> int:
        written = self._target.write(data)
        self._hasher.update(data)
        return written


class DigestingReader(_Digesting):
    """A read-through wrapper that hashes and counts everything read from `source`."""

    def __init__(self, source: BinaryIO) -> None:
        super().__init__()
        self._source = source

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._hasher.update(data)
        return data
