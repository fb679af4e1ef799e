"""Push: blobs (skip existing, cross-repository mount, upload), manifests, whole images.

`push_image` uploads the config and layers with a small thread pool (each blob once, whatever
the number of tags), then puts the manifest under every tag, last, with its exact media type.
"""

from __future__ import annotations

import contextvars
import hashlib
import io
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.errors import AuthError, DigestMismatchError, RegistryError
from core.image.digest import sha256_digest
from core.registry.connection import Connection, push_scope
from core.registry.pull import fetch_blob
from core.registry.upload import (
    Opener,
    Pause,
    StreamUpload,
    UploadOptions,
    UploadSession,
    refuses_chunks,
    start_upload,
    upload_chunked,
    upload_monolithic,
)

log = logging.getLogger(__name__)

BlobAction = Literal["exists", "mounted", "uploaded"]
#: the registry lost or no longer accepts the upload session: start a new one
_LOST_SESSION = frozenset({"BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN"})


@dataclass(frozen=True)
class BlobSource:
    """Content to upload: its digest, size and a way to open it (again) as a stream."""

    digest: str
    size: int
    opener: Opener

    @classmethod
    def from_bytes(cls, data: bytes) -> BlobSource:
        return cls(sha256_digest(data), len(data), lambda: io.BytesIO(data))

    @classmethod
    def from_path(cls, path: Path, *, digest: str | None = None) -> BlobSource:
        """A file on disk; its digest is computed by streaming it when not given."""
        if digest is None:
            hasher = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1024 * 1024), b""):
                    hasher.update(block)
            digest = "sha256:" + hasher.hexdigest()
        return cls(digest, path.stat().st_size, lambda: open(path, "rb"))


@dataclass(frozen=True)
class BlobPushResult:
    digest: str
    size: int
    action: BlobAction


def blob_exists(conn: Connection, repository: str, digest: str) -> bool:
    """HEAD the blob in `repository` (asks for a push scope, which a push needs anyway)."""
    response = conn.request("HEAD", f"/v2/{repository}/blobs/{digest}", repository=repository,
                            scopes=push_scope(repository), action=f"check blob {digest}",
                            ok=(200, 404))
    response.close()
    return response.status_code == 200


def push_blob(conn: Connection, repository: str, source: BlobSource, *,
              options: UploadOptions, mount_from: Sequence[str] = ()) -> BlobPushResult:
    """Make `source` present in `repository`: skip, mount from a sibling, or upload."""
    if blob_exists(conn, repository, source.digest):
        log.debug("%s/%s: blob %s exists", conn.host, repository, source.digest)
        return BlobPushResult(source.digest, source.size, "exists")
    session: UploadSession | None = None
    for other in (r for r in mount_from if r != repository):
        try:
            session = start_upload(conn, repository, mount=source.digest, mount_from=other)
        except AuthError as err:
            log.info("mount of %s from %s not allowed (%s); uploading", source.digest, other,
                     err.message)
            continue
        if session is None:
            log.debug("%s/%s: mounted %s from %s", conn.host, repository, source.digest, other)
            return BlobPushResult(source.digest, source.size, "mounted")
        break
    _upload_with_retries(conn, repository, source, options, session)
    return BlobPushResult(source.digest, source.size, "uploaded")


def _upload_with_retries(conn: Connection, repository: str, source: BlobSource,
                         options: UploadOptions, session: UploadSession | None) -> None:
    transport = conn.transport

    def pause(attempt: int, why: str) -> None:
        transport.pause(attempt, None, f"upload {source.digest}: {why}")

    monolithic = source.size <= options.monolithic_threshold
    for attempt in range(options.retries + 1):
        try:
            session = session or start_upload(conn, repository)
            assert session is not None
            if monolithic:
                upload_monolithic(session, source.opener, source.size, source.digest)
            else:
                upload_chunked(session, source.opener, source.size, source.digest,
                               options=options, pause=pause)
            return
        except RegistryError as err:
            if not monolithic and refuses_chunks(err):
                log.info("%s refuses chunked uploads (%s); sending %s in one PUT", conn.host,
                         err.message, source.digest)
                monolithic, session = True, None
                continue
            restartable = err.retryable or bool(_LOST_SESSION & set(err.codes))
            if isinstance(err, DigestMismatchError) or not restartable:
                raise
            if attempt == options.retries:
                raise
            pause(attempt, f"restarting after: {err.message}")
            session = None


def mount_or_find(conn: Connection, repository: str, digest: str, *,
                  mount_from: Sequence[str] = ()) -> BlobAction | None:
    """Make a blob present without sending it: found by HEAD, or mounted from a repository of
    the same registry (`mount_from`: repositories known to hold it). None when neither worked
    (an upload session a refused mount opened is left to expire)."""
    if blob_exists(conn, repository, digest):
        return "exists"
    for other in (r for r in mount_from if r != repository):
        try:
            session = start_upload(conn, repository, mount=digest, mount_from=other)
        except AuthError as err:
            log.info("mount of %s from %s not allowed (%s)", digest, other, err.message)
            continue
        if session is None:
            log.debug("%s/%s: mounted %s from %s", conn.host, repository, digest, other)
            return "mounted"
    return None


def copy_blob(source: Connection, source_repository: str, target: Connection,
              repository: str, digest: str, size: int, *, options: UploadOptions,
              pause: Pause, mount_from: Sequence[str] = (), spool_dir: Path | None = None,
              max_resumes: int = 5) -> BlobPushResult:
    """Make a blob of another repository present in `repository`: found, mounted (when both
    are on one registry, `source_repository` is tried first) or streamed from the source
    registry into a chunked upload, one chunk in memory, never staged whole on disk (unless
    the target refuses chunks and `spool_dir` is given)."""
    siblings = list(mount_from)
    if source.host == target.host:
        siblings.insert(0, source_repository)
    action = mount_or_find(target, repository, digest, mount_from=siblings)
    if action is not None:
        return BlobPushResult(digest, size, action)
    upload = StreamUpload(target, repository, options=options, pause=pause,
                          spool_dir=spool_dir)
    try:
        fetch_blob(source, source_repository, digest, upload, size=size,
                   max_resumes=max_resumes)
        upload.finish(digest)
    finally:
        upload.abort()
    log.info("copied blob %s from %s/%s to %s/%s", digest, source.host, source_repository,
             target.host, repository)
    return BlobPushResult(digest, size, "uploaded")


def push_manifest(conn: Connection, repository: str, identifier: str, data: bytes,
                  media_type: str) -> str:
    """PUT a manifest under a tag or its digest; return its digest (checked if announced)."""
    digest = sha256_digest(data)
    response = conn.request(
        "PUT", f"/v2/{repository}/manifests/{identifier}", repository=repository,
        scopes=push_scope(repository), action=f"push manifest {identifier}",
        ok=(200, 201, 202, 204), headers={"Content-Type": media_type}, body=lambda: data)
    with response:
        announced = response.headers.get("Docker-Content-Digest")
    if announced and announced != digest:
        raise DigestMismatchError(f"registry computed {announced} for manifest {digest}",
                                  registry=conn.host, repository=repository)
    return digest


def push_blobs(conn: Connection, repository: str, blobs: Sequence[BlobSource], *,
               options: UploadOptions, mount_from: Sequence[str] = ()) -> list[BlobPushResult]:
    """Push distinct blobs concurrently (at most `options.max_concurrent` at a time)."""
    unique = list({blob.digest: blob for blob in blobs}.values())
    if len(unique) <= 1 or options.max_concurrent == 1:
        return [push_blob(conn, repository, b, options=options, mount_from=mount_from)
                for b in unique]
    with ThreadPoolExecutor(max_workers=min(options.max_concurrent, len(unique)),
                            thread_name_prefix="blob-push") as pool:
        futures = [pool.submit(contextvars.copy_context().run, push_blob, conn, repository,
                               blob, options=options, mount_from=mount_from)
                   for blob in unique]  # in the caller's context: its log records stay its
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def push_image(conn: Connection, repository: str, *, blobs: Sequence[BlobSource],
               manifest: bytes, media_type: str, tags: Sequence[str],
               options: UploadOptions, mount_from: Sequence[str] = ()) -> str:
    """Push blobs, then the manifest under each tag (or by digest if no tag); return digest."""
    push_blobs(conn, repository, blobs, options=options, mount_from=mount_from)
    digest = sha256_digest(manifest)
    for identifier in tags or (digest,):
        push_manifest(conn, repository, identifier, manifest, media_type)
    return digest

