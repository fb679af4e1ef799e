"""The blob upload protocol: start a session, send the bytes, commit with the digest.

Small blobs go in one `PUT`; larger ones in `PATCH` chunks. Every response's `Location` is the
URL of the next request, followed exactly (relative or absolute, query string kept) with the
digest added to its query on the final `PUT`. After a failed chunk the session asks the
registry how much it has (`GET` → `Range`) and continues from there. Bodies are read from the
source in bounded blocks; nothing holds a whole large blob in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests

from core.errors import DigestMismatchError, RegistryError
from core.image.digest import Hasher
from core.registry.connection import Connection, push_scope

log = logging.getLogger(__name__)

MiB = 1024 * 1024
_BLOCK = MiB
_OCTETS = {"Content-Type": "application/octet-stream"}
_DIGEST_CODES = frozenset({"DIGEST_INVALID", "SIZE_INVALID"})

Opener = Callable[[], BinaryIO]
#: sleeps before retry number N (0-based), logging the reason
Pause = Callable[[int, str], None]


@dataclass(frozen=True)
class UploadOptions:
    """Blobs up to `monolithic_threshold` bytes go in one PUT, larger ones in chunks."""

    monolithic_threshold: int = 32 * MiB
    chunk_size: int = 16 * MiB
    retries: int = 5
    max_concurrent: int = 3

    def __post_init__(self) -> None:
        if self.chunk_size < 1 or self.monolithic_threshold < 0 or self.max_concurrent < 1:
            raise ValueError("upload sizes and concurrency must be positive")


class FileSlice:
    """`length` bytes of a file from `offset`, as an iterable body with a known length."""

    def __init__(self, fileobj: BinaryIO, offset: int, length: int) -> None:
        self._file, self._offset, self._length = fileobj, offset, length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        self._file.seek(self._offset)
        left = self._length
        while left > 0:
            block = self._file.read(min(_BLOCK, left))
            if not block:
                raise OSError(f"source ended {left} bytes early")
            left -= len(block)
            yield block


def with_query(url: str, **params: str) -> str:
    """`url` with `params` appended to its query string (existing parameters kept)."""
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


class UploadSession:
    """One upload session; `location` is always the latest URL the registry gave."""

    def __init__(self, conn: Connection, repository: str, location: str) -> None:
        self.conn = conn
        self.repository = repository
        self.location = location
        self.scopes = push_scope(repository)

    def follow(self, response: requests.Response) -> None:
        location = response.headers.get("Location")
        if location:
            self.location = urljoin(self.location, location)

    def patch(self, offset: int, body: bytes | FileSlice) -> int:
        """Send one chunk at `offset`; return the offset the registry now expects."""
        end = offset + len(body) - 1
        headers = {**_OCTETS, "Content-Range": f"{offset}-{end}",
                   "Content-Length": str(len(body))}
        response = self.conn.request(
            "PATCH", self.location, repository=self.repository, scopes=self.scopes,
            action="upload blob chunk", ok=(202, 204), headers=headers, body=lambda: body,
            retries=0)
        with response:
            self.follow(response)
            return _range_end(response, default=end + 1)

    def status(self, known: int) -> int:
        """Ask the registry how many bytes it holds; follow its Location.

        `known` is the last offset the registry confirmed. distribution answers `0-0` for both
        an empty upload and a one-byte one; since uploads only grow, `known` decides.
        """
        response = self.conn.request(
            "GET", self.location, repository=self.repository, scopes=self.scopes,
            action="query upload status", ok=(204, 200))
        with response:
            self.follow(response)
            held = _range_end(response, default=0)
        return 0 if held == 1 and known == 0 else held

    def finish(self, digest: str, body: FileSlice | bytes | None = None) -> None:
        """The final PUT with `?digest=`, with the remaining body (or none)."""
        size = len(body) if body is not None else 0
        headers = {**_OCTETS, "Content-Length": str(size)}
        try:
            response = self.conn.request(
                "PUT", with_query(self.location, digest=digest), repository=self.repository,
                scopes=self.scopes, action=f"commit blob {digest}", ok=(201, 204, 200),
                headers=headers, body=(lambda: body) if body is not None else None, retries=0)
        except RegistryError as err:
            if _DIGEST_CODES & set(err.codes):
                raise DigestMismatchError(
                    f"registry refused blob {digest}: content does not match",
                    registry=err.registry, repository=err.repository, status=err.status,
                    codes=err.codes) from None
            raise
        with response:
            announced = response.headers.get("Docker-Content-Digest")
        if announced and announced != digest:
            raise DigestMismatchError(f"registry stored {announced} for blob {digest}",
                                      registry=self.conn.host, repository=self.repository)


def _range_end(response: requests.Response, *, default: int) -> int:
    """Next offset from a `Range: 0-N` header (N inclusive)."""
    value = response.headers.get("Range", "").removeprefix("bytes=")
    _, _, last = value.partition("-")
    return int(last) + 1 if last.strip().isdigit() else default


def start_upload(conn: Connection, repository: str, *, mount: str | None = None,
                 mount_from: str | None = None) -> UploadSession | None:
    """POST a new upload (or a cross-repository mount). None means the mount succeeded."""
    path = f"/v2/{repository}/blobs/uploads/"
    scopes = push_scope(repository)
    if mount and mount_from:
        path += "?" + urlencode({"mount": mount, "from": mount_from})
        scopes = push_scope(repository, mount_from)
    response = conn.request("POST", path, repository=repository, scopes=scopes,
                            action="start blob upload", ok=(201, 202),
                            headers={"Content-Length": "0"})
    with response:
        if response.status_code == 201:
            return None
        location = response.headers.get("Location")
    if not location:
        raise RegistryError("upload started without a Location", registry=conn.host,
                            repository=repository, status=202)
    return UploadSession(conn, repository, urljoin(conn.url(path), location))


def upload_chunked(session: UploadSession, source: Opener, size: int, digest: str, *,
                   options: UploadOptions, pause: Pause) -> None:
    """PATCH `source` in chunks, resuming from the registry's Range after a failure."""
    failures = 0
    offset = 0
    with source() as fileobj:
        while offset < size:
            length = min(options.chunk_size, size - offset)
            try:
                offset = session.patch(offset, FileSlice(fileobj, offset, length))
            except RegistryError as err:
                if not (err.retryable or err.status == 416) or failures >= options.retries:
                    raise
                pause(failures, f"chunk at {offset}")
                failures += 1
                offset = session.status(offset)
                log.info("resuming upload of %s at byte %d", digest, offset)
    session.finish(digest)


def upload_monolithic(session: UploadSession, source: Opener, size: int, digest: str) -> None:
    with source() as fileobj:
        session.finish(digest, FileSlice(fileobj, 0, size))


def upload_stream(conn: Connection, repository: str, read: Callable[[int], bytes], *,
                  options: UploadOptions, pause: Pause) -> tuple[str, int]:
    """Upload bytes of unknown digest in chunks while hashing them; return (digest, size).

    Only the current chunk is buffered, so a failed chunk is re-sent from the registry's
    Range when that still falls inside it.
    """
    session = start_upload(conn, repository)
    assert session is not None
    hasher = Hasher()
    while True:
        chunk = read(options.chunk_size)
        if not chunk:
            break
        _send_buffered(session, hasher.size, chunk, options, pause)
        hasher.update(chunk)
    session.finish(hasher.digest)
    return hasher.digest, hasher.size


def _send_buffered(session: UploadSession, start: int, chunk: bytes,
                   options: UploadOptions, pause: Pause) -> None:
    offset, end = start, start + len(chunk)
    failures = 0
    while offset < end:
        try:
            offset = session.patch(offset, chunk[offset - start:])
        except RegistryError as err:
            if not (err.retryable or err.status == 416) or failures >= options.retries:
                raise
            pause(failures, f"chunk at {offset}")
            failures += 1
            offset = session.status(offset)
            if not start <= offset <= end:
                raise RegistryError(
                    f"registry holds {offset} bytes; cannot resume a streamed upload there",
                    registry=session.conn.host, repository=session.repository) from None
