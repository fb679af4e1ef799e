"""Object stores: one small interface over Amazon S3 and Google Cloud Storage.

The build reads its context archive from a bucket and writes its status, result and log
objects next to it. Both clouds are reached through their official SDKs, imported only when
a store is opened (`open_store`), so importing `core` stays fast and needs neither SDK.

Endpoints come from the SDKs' own variables (`AWS_ENDPOINT_URL`, `STORAGE_EMULATOR_HOST`);
retries on throttling and server errors are the SDKs' own, configured in each adapter.
Every failure is raised as `ContextError` (with `retryable` set when trying again may help),
and a missing object is reported with a message that names it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from core.errors import ContextError

log = logging.getLogger(__name__)

#: bytes read or written per call when streaming an object to or from disk
CHUNK_SIZE = 1 << 20
#: SDK attempts (first try included) for throttled or failed calls
MAX_ATTEMPTS = 5
SCHEMES = ("s3", "gs")
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,221}[A-Za-z0-9]")


@dataclass(frozen=True)
class ObjectInfo:
    """What a store reports about one object (one version of it)."""

    bucket: str
    key: str
    size: int
    etag: str  # without quotes
    version: str | None  # S3 VersionId or GCS generation; None when the store keeps none
    revision: str  # what `put_bytes(if_version=...)` compares: S3 ETag, GCS generation
    metadata: Mapping[str, str] = field(default_factory=dict)  # user metadata, no prefixes
    content_type: str | None = None
    updated: datetime | None = None

    @property
    def url(self) -> str:
        """`bucket/key` as shown in messages (the scheme belongs to the store)."""
        return f"{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ObjectURL:
    """A parsed `s3://bucket/key` or `gs://bucket/object`."""

    scheme: str
    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> ObjectURL:
        scheme, sep, rest = url.partition("://")
        bucket, _, key = rest.partition("/")
        if not sep or scheme not in SCHEMES:
            raise ContextError(f"{url!r} is not an s3:// or gs:// object URL")
        if not _BUCKET.fullmatch(bucket):
            raise ContextError(f"{url!r}: {bucket!r} is not a valid bucket name")
        if not key or key.endswith("/"):
            raise ContextError(f"{url!r} names no object (expected {scheme}://BUCKET/KEY)")
        return cls(scheme, bucket, key)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}"


class ObjectStore(Protocol):
    """Reading and writing objects in one cloud's buckets."""

    scheme: str

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """The object's description; ContextError when it does not exist."""
        ...

    def find(self, bucket: str, key: str) -> ObjectInfo | None:
        """Like `head`, but None when the object does not exist."""
        ...

    def download(self, bucket: str, key: str, dest: Path, *, version: str | None = None,
                 max_bytes: int | None = None) -> ObjectInfo:
        """Stream the object (that `version` when given) into the new file `dest`."""
        ...

    def read_bytes(self, bucket: str, key: str, *, max_bytes: int) -> bytes:
        """The whole (small) object in memory; ContextError above `max_bytes`."""
        ...

    def put_bytes(self, bucket: str, key: str, data: bytes, *, content_type: str,
                  metadata: Mapping[str, str] | None = None,
                  create_only: bool = False, if_version: str | None = None) -> bool:
        """Write an object. With `create_only`, False (and nothing written) if it exists;
        with `if_version` (an `ObjectInfo.revision`), False unless it is still at that one."""
        ...

    def put_file(self, bucket: str, key: str, path: Path, *, content_type: str) -> None:
        """Upload a local file (streamed; large files in parts)."""
        ...


def open_store(url_scheme: str) -> ObjectStore:
    """The store for `s3` or `gs`, with an SDK client configured from the environment."""
    if url_scheme == "s3":
        from core.cloud.s3 import S3Store

        return S3Store()
    if url_scheme == "gs":
        from core.cloud.gcs import GcsStore

        return GcsStore()
    raise ContextError(f"no object store for {url_scheme!r} (expected one of {SCHEMES})")


def storage_error(message: str, *, retryable: bool = False) -> ContextError:
    """A ContextError for a failed store call, marked retryable when it may pass later."""
    error = ContextError(message)
    error.retryable = retryable
    return error


def too_large(url: str, size: int, max_bytes: int) -> ContextError:
    return ContextError(f"{url} is {size} bytes, more than the {max_bytes}-byte limit")


class LimitedFile:
    """A file being written that refuses to grow beyond `max_bytes` (None: no limit)."""

    def __init__(self, handle: BinaryIO, *, url: str, max_bytes: int | None) -> None:
        self._handle = handle
        self._url = url
        self._max_bytes = max_bytes
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self._max_bytes is not None and self.size > self._max_bytes:
            raise ContextError(f"{self._url} is larger than the {self._max_bytes}-byte limit")
        return self._handle.write(data)

    def flush(self) -> None:
        self._handle.flush()


def write_chunks(chunks: Iterable[bytes], dest: Path, *, url: str,
                 max_bytes: int | None) -> int:
    """Write `chunks` to the new file `dest`; the size written. Removes `dest` on failure."""
    handle = open_new(dest)
    try:
        with handle:
            writer = LimitedFile(handle, url=url, max_bytes=max_bytes)
            for chunk in chunks:
                writer.write(chunk)
    except BaseException:
        discard(dest)
        raise
    return writer.size


def open_new(dest: Path) -> BinaryIO:
    """Open `dest` for writing; it must not exist yet (no symlink or old file is reused)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ContextError(f"cannot create {dest}: {exc.strerror or exc}") from None
    return os.fdopen(fd, "wb")


def discard(path: Path) -> None:
    """Remove a partly written download, if there is one."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)
