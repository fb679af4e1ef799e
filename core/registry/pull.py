"""Pull: manifests (with media type negotiation and platform selection), configs and blobs.

Blobs stream into a sink and are verified by size and sha256 as they pass; a mismatch raises
`DigestMismatchError` and the caller must discard what the sink received. An interrupted
download resumes with `Range` (a server that ignores it is handled by skipping what was already
received). Redirects to blob storage are followed by hand; the `Authorization` header is only
sent to the registry host itself.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

import requests
import urllib3

from core.errors import DigestMismatchError, RegistryError
from core.image.config import ImageConfig, parse_image_config
from core.image.digest import Hasher, Writable, is_digest, sha256_digest
from core.image.manifest import (
    Descriptor,
    Index,
    Manifest,
    Platform,
    parse_manifest,
    parse_manifest_or_index,
)
from core.image.mediatypes import ACCEPT_HEADER
from core.image.platform import select_manifest
from core.registry.connection import Connection, pull_scope

log = logging.getLogger(__name__)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 32 * 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_READ_SIZE = 1024 * 1024


@dataclass(frozen=True)
class ManifestResponse:
    """Manifest bytes exactly as served, with their media type and digest."""

    data: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class PulledImage:
    """A resolved single-platform image: manifest and config, no layers yet."""

    repository: str
    digest: str
    manifest: Manifest
    manifest_bytes: bytes
    config: ImageConfig
    config_bytes: bytes
    index_digest: str | None = None


def fetch_manifest(conn: Connection, repository: str, identifier: str, *,
                   accept: str = ACCEPT_HEADER) -> ManifestResponse:
    """GET a manifest by tag or digest; verify it against the digest asked for or announced.

    A body cut off mid-way is fetched again (as often as the transport retries)."""
    action = f"fetch manifest {identifier}"
    retries = conn.transport.options.retries
    for attempt in range(retries + 1):
        response = conn.request(
            "GET", f"/v2/{repository}/manifests/{identifier}", repository=repository,
            scopes=pull_scope(repository), action=action, headers={"Accept": accept},
            stream=True)
        try:
            with response:
                data = _read_limited(response, MAX_MANIFEST_BYTES, conn.host, repository)
            break
        except _Interrupted as broken:
            if attempt == retries:
                raise RegistryError(f"{action}: the response was cut off ({broken})",
                                    registry=conn.host, repository=repository,
                                    retryable=True) from None
            conn.transport.pause(attempt, None, f"{action}: {broken}")
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    digest = sha256_digest(data)
    expected = identifier if is_digest(identifier) else response.headers.get(
        "Docker-Content-Digest", "")
    if expected.startswith("sha256:") and expected != digest:
        raise DigestMismatchError(
            f"manifest {identifier} has digest {digest}, expected {expected}",
            registry=conn.host, repository=repository)
    return ManifestResponse(data, media_type, digest)


def head_manifest(conn: Connection, repository: str, identifier: str, *,
                  accept: str = ACCEPT_HEADER) -> Descriptor | None:
    """HEAD a manifest: its descriptor (from the headers), or None when there is none."""
    response = conn.request(
        "HEAD", f"/v2/{repository}/manifests/{identifier}", repository=repository,
        scopes=pull_scope(repository), action=f"check manifest {identifier}",
        headers={"Accept": accept}, ok=(200, 404))
    response.close()
    if response.status_code == 404:
        return None
    digest = response.headers.get("Docker-Content-Digest", "")
    if not digest and is_digest(identifier):
        digest = identifier
    size = response.headers.get("Content-Length", "")
    if not is_digest(digest) or not size.isdigit():
        raise RegistryError(f"check manifest {identifier}: registry sent no digest or size",
                            registry=conn.host, repository=repository, status=200)
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    return Descriptor(media_type, digest, int(size))


def resolve_image(conn: Connection, repository: str, identifier: str, *,
                  platform: Platform) -> PulledImage:
    """The manifest and config of `identifier`; an index is resolved to `platform`."""
    fetched = fetch_manifest(conn, repository, identifier)
    parsed = parse_manifest_or_index(fetched.data, fetched.media_type or None)
    index_digest = None
    if isinstance(parsed, Index):
        chosen = select_manifest(parsed, platform)
        log.debug("%s/%s: %s selected %s", conn.host, repository, platform, chosen.digest)
        index_digest = fetched.digest
        fetched = fetch_manifest(conn, repository, chosen.digest)
        if len(fetched.data) != chosen.size:
            raise DigestMismatchError(
                f"manifest {chosen.digest} is {len(fetched.data)} bytes, index says "
                f"{chosen.size}", registry=conn.host, repository=repository)
        parsed = parse_manifest(fetched.data, fetched.media_type or chosen.media_type)
    assert isinstance(parsed, Manifest)
    config_bytes = fetch_blob_bytes(conn, repository, parsed.config.digest,
                                    size=parsed.config.size, limit=MAX_CONFIG_BYTES)
    return PulledImage(repository=repository, digest=fetched.digest, manifest=parsed,
                       manifest_bytes=fetched.data, config=parse_image_config(config_bytes),
                       config_bytes=config_bytes, index_digest=index_digest)


def fetch_blob_bytes(conn: Connection, repository: str, digest: str, *, size: int | None,
                     limit: int) -> bytes:
    """A small blob (a config) in memory, verified."""
    if size is not None and size > limit:
        raise RegistryError(f"blob {digest} is {size} bytes, more than {limit} allowed here",
                            registry=conn.host, repository=repository)
    sink = io.BytesIO()
    fetch_blob(conn, repository, digest, sink, size=size)
    return sink.getvalue()


def fetch_blob(conn: Connection, repository: str, digest: str, sink: Writable, *,
               size: int | None = None, max_resumes: int = 5) -> int:
    """Stream a blob into `sink`, verifying size and digest; return the byte count.

    On a broken connection the download continues from the last byte received, at most
    `max_resumes` times.
    """
    if not digest.startswith("sha256:"):
        raise RegistryError(f"cannot verify blob {digest}: only sha256 digests are supported",
                            registry=conn.host, repository=repository)
    hasher = Hasher()
    resumes = 0
    while True:
        try:
            with _open_blob(conn, repository, digest, hasher.size) as response:
                _copy(response, hasher, sink, size=size, conn=conn, repository=repository,
                      digest=digest)
        except _Interrupted as interrupted:
            resumes += 1
            if resumes > max_resumes:
                raise RegistryError(f"download of blob {digest} kept failing ({interrupted})",
                                    registry=conn.host, repository=repository,
                                    retryable=True) from None
            log.info("resuming blob %s at byte %d (%s)", digest, hasher.size, interrupted)
            continue
        break
    _verify(hasher, digest, size, conn.host, repository)
    return hasher.size


class _Interrupted(Exception):
    """The body ended early or the connection broke; resume from what was received."""


def _open_blob(conn: Connection, repository: str, digest: str,
               offset: int) -> requests.Response:
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    url = conn.url(f"/v2/{repository}/blobs/{digest}")
    ok = (200, 206, *_REDIRECTS)
    action = f"fetch blob {digest}"
    try:
        response = conn.request("GET", url, repository=repository, action=action, ok=ok,
                                scopes=pull_scope(repository), headers=headers, stream=True)
        for _ in range(_MAX_REDIRECTS):
            if response.status_code not in _REDIRECTS:
                return _check_range(response, offset, conn, repository)
            url = urljoin(url, response.headers.get("Location", ""))
            response.close()
            if conn.transport.is_same_host(url):
                response = conn.request("GET", url, repository=repository, action=action,
                                        ok=ok, scopes=pull_scope(repository), headers=headers,
                                        stream=True)
            else:
                response = _get_foreign(conn, url, headers, repository, action)
    except RegistryError as err:
        if err.retryable and offset:
            raise _Interrupted(str(err)) from None
        raise
    raise RegistryError(f"{action}: too many redirects", registry=conn.host,
                        repository=repository)


def _get_foreign(conn: Connection, url: str, headers: dict[str, str], repository: str,
                 action: str) -> requests.Response:
    """GET blob storage on another host: no registry credentials go there."""
    response = conn.transport.send("GET", url, headers=headers, stream=True, action=action,
                                   repository=repository)
    if response.status_code in (200, 206, *_REDIRECTS):
        return response
    with response:
        raise conn.error(response, repository=repository, scopes=(), action=action)


def _check_range(response: requests.Response, offset: int, conn: Connection,
                 repository: str) -> requests.Response:
    if response.status_code == 206:
        start = response.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
        if not start.isdigit() or int(start) != offset:
            response.close()
            raise RegistryError(f"registry resumed a download at {start!r}, not {offset}",
                                registry=conn.host, repository=repository)
    return response


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """Body blocks as they arrive (`read1`), so bytes before a broken connection are kept."""
    raw = response.raw
    blocks = (response.iter_content(_READ_SIZE) if not hasattr(raw, "read1") else
              iter(lambda: raw.read1(_READ_SIZE, decode_content=False), b""))
    while True:
        try:
            block = next(blocks, b"")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Interrupted(type(exc).__name__) from None
        if not block:
            return
        yield block


def _copy(response: requests.Response, hasher: Hasher, sink: Writable, *, size: int | None,
          conn: Connection, repository: str, digest: str) -> None:
    skip = hasher.size if response.status_code == 200 else 0
    for chunk in _chunks(response):
        if skip:
            dropped = min(skip, len(chunk))
            chunk, skip = chunk[dropped:], skip - dropped
            if not chunk:
                continue
        if size is not None and hasher.size + len(chunk) > size:
            raise DigestMismatchError(
                f"blob {digest} is longer than its declared {size} bytes",
                registry=conn.host, repository=repository)
        sink.write(chunk)
        hasher.update(chunk)
    if size is not None and hasher.size < size:
        raise _Interrupted(f"body ended at {hasher.size} of {size} bytes")


def _verify(hasher: Hasher, digest: str, size: int | None, host: str, repository: str) -> None:
    if size is not None and hasher.size != size:
        raise DigestMismatchError(f"blob {digest} is {hasher.size} bytes, expected {size}",
                                  registry=host, repository=repository)
    if digest.startswith("sha256:") and hasher.digest != digest:
        raise DigestMismatchError(f"blob {digest} has content with digest {hasher.digest}",
                                  registry=host, repository=repository)


def _read_limited(response: requests.Response, limit: int, host: str,
                  repository: str) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RegistryError(f"manifest of {declared} bytes is larger than {limit}",
                            registry=host, repository=repository)
    buf = bytearray()
    try:
        for chunk in response.iter_content(64 * 1024):
            buf += chunk
            if len(buf) > limit:
                raise RegistryError(f"manifest is larger than {limit} bytes",
                                    registry=host, repository=repository)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise _Interrupted(type(exc).__name__) from None
    return bytes(buf)
