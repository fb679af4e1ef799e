"""The blob upload protocol: start a session, send the bytes, commit with the digest.

Small blobs go in one `PUT`; larger ones in `PATCH` chunks. Every response's `Location` is the
URL of the next request, followed exactly (relative or absolute, query string kept) with the
digest added to its query on the final `PUT`. After a failed chunk the session asks the
registry how much it has (`GET` → `Range`) and continues from there. Bodies are read from the
source in bounded blocks; nothing holds a whole large blob in memory. `StreamUpload` takes a
blob as it is produced (its digest known only at the end), one chunk buffered at a time, and
falls back to spooling and one `PUT` when a registry refuses chunks.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
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
#: a first PATCH answered with one of these (and no upload error code) means "no chunks here"
_REFUSED_STATUSES = frozenset({400, 404, 411, 415})
_LOST_CODES = frozenset({"BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
                         "SIZE_INVALID", "RANGE_INVALID"})

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
                if offset == 0 and refuses_chunks(err):
                    raise
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
    upload = StreamUpload(conn, repository, options=options, pause=pause)
    hasher = Hasher()
    try:
        while chunk := read(options.chunk_size):
            upload.write(chunk)
            hasher.update(chunk)
        upload.finish(hasher.digest)
    except BaseException:
        upload.abort()
        raise
    return hasher.digest, hasher.size


def _send_buffered(session: UploadSession, start: int, chunk: bytes,
                   options: UploadOptions, pause: Pause) -> None:
    offset, end = start, start + len(chunk)
    failures = 0
    while offset < end:
        try:
            offset = session.patch(offset, chunk[offset - start:])
        except RegistryError as err:
            if offset == 0 and refuses_chunks(err):
                raise
            if not (err.retryable or err.status == 416) or failures >= options.retries:
                raise
            pause(failures, f"chunk at {offset}")
            failures += 1
            offset = session.status(offset)
            if not start <= offset <= end:
                raise RegistryError(
                    f"registry holds {offset} bytes; cannot resume a streamed upload there",
                    registry=session.conn.host, repository=session.repository) from None


def refuses_chunks(err: RegistryError) -> bool:
    """Whether a failed first PATCH means the registry does not take chunked uploads at all
    (rather than a lost session or a transient failure): 405 or 501 whatever the body says,
    or 400, 404, 411, 415 or an UNSUPPORTED code without an upload error code."""
    if err.status in (405, 501):
        return True
    if _LOST_CODES & set(err.codes) or err.retryable:
        return False
    return err.status in _REFUSED_STATUSES or "UNSUPPORTED" in err.codes


class StreamUpload:
    """A blob upload fed by `write`, its digest given to `finish`; memory is one chunk.

    Bytes are buffered up to `chunk_size`; each full chunk goes out as a PATCH (re-sent from
    the registry's Range after a failure). A blob that ends within its first chunk goes in one
    PUT. When the registry refuses the first PATCH (see `refuses_chunks`) the upload spools to
    a file in `spool_dir` and PUTs it whole at the end (`refused` becomes true); without a
    `spool_dir` the refusal is raised. `chunked` is asked before the first chunk goes out:
    False spools instead (a registry known to refuse). Not thread-safe: one writer.
    """

    def __init__(self, conn: Connection, repository: str, *, options: UploadOptions,
                 pause: Pause, spool_dir: Path | None = None,
                 chunked: Callable[[], bool] | None = None,
                 chunk_size: int | None = None) -> None:
        self.conn = conn
        self.repository = repository
        self.options = options
        self.refused = False
        self._pause = pause
        self._spool_dir = spool_dir
        self._chunk = chunk_size or options.chunk_size
        self._buffer = bytearray()
        self._sent = 0
        self._session: UploadSession | None = None
        self._spool: BinaryIO | None = None
        self._spool_path: Path | None = None
        self._chunked = chunked

    @property
    def size(self) -> int:
        """Bytes taken so far."""
        if self._spool is not None:
            return self._spool.tell()
        return self._sent + len(self._buffer)

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        if self._spool is not None:
            return self._spool.write(data)
        self._buffer += data
        if len(self._buffer) >= self._chunk:
            self._send_chunk()
        return len(data)

    def _send_chunk(self) -> None:
        if self._sent == 0 and self._chunked is not None and not self._chunked():
            self._start_spool()
            return
        chunk = bytes(self._buffer)
        if self._session is None:
            self._session = self._start()
        try:
            _send_buffered(self._session, self._sent, chunk, self.options, self._pause)
        except RegistryError as err:
            if self._sent or self._spool_dir is None or not refuses_chunks(err):
                raise
            log.info("%s refuses chunked uploads (%s); spooling the blob to PUT it whole",
                     self.conn.host, err.message)
            self.refused = True
            self._session = None
            self._start_spool()
            return
        self._sent += len(chunk)
        self._buffer.clear()

    def _start(self) -> UploadSession:
        session = start_upload(self.conn, self.repository)
        assert session is not None
        return session

    def _start_spool(self) -> None:
        if self._spool_dir is None:
            raise RegistryError("a spool directory is needed to upload without chunks",
                                registry=self.conn.host, repository=self.repository)
        fd, name = tempfile.mkstemp(dir=self._spool_dir, prefix=".upload-")
        self._spool_path = Path(name)
        self._spool = os.fdopen(fd, "w+b")
        self._spool.write(self._buffer)
        self._buffer.clear()

    def finish(self, digest: str) -> None:
        """Send what is left and commit the blob under `digest`."""
        try:
            if self._spool is not None:
                self._finish_spooled(digest)
            elif self._sent == 0:
                self._retrying(digest, lambda: self._start().finish(digest,
                                                                    bytes(self._buffer)))
            else:
                if self._buffer:
                    self._send_chunk()
                session = self._session
                assert session is not None
                self._retrying(digest, lambda: session.finish(digest))
        finally:
            self.abort()

    def _finish_spooled(self, digest: str) -> None:
        spool = self._spool
        assert spool is not None
        spool.flush()
        size = spool.tell()
        self._retrying(digest, lambda: self._start().finish(digest, FileSlice(spool, 0, size)))

    def _retrying(self, digest: str, action: Callable[[], None]) -> None:
        for attempt in range(self.options.retries + 1):
            try:
                action()
                return
            except RegistryError as err:
                if isinstance(err, DigestMismatchError) or not err.retryable or \
                        attempt == self.options.retries:
                    raise
                self._pause(attempt, f"commit of {digest}: {err.message}")

    def abort(self) -> None:
        """Drop buffers and the spool file (the registry expires an unfinished session)."""
        self._buffer = bytearray()
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if self._spool_path is not None:
            self._spool_path.unlink(missing_ok=True)
            self._spool_path = None
