"""Google Cloud Storage through google-cloud-storage, imported when a store is created.

`STORAGE_EMULATOR_HOST` points the client at an emulator (it then needs no credentials);
otherwise Application Default Credentials apply. The SDK's default retry policy covers
throttling and server errors for reads and (since 3.0) for uploads. Objects are read exactly
as stored (`raw_download`: no decompressive transcoding) and pinned to the generation that
was looked at first. Create-only writes use `if_generation_match=0`; writes conditional on a
revision (the generation) use `if_generation_match=<generation>`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.cloud.storage import (
    LimitedFile,
    ObjectInfo,
    discard,
    open_new,
    storage_error,
    too_large,
)
from core.errors import ContextError

log = logging.getLogger(__name__)


def default_client() -> Any:
    """A storage client from the environment (emulator, or default credentials)."""
    from google.cloud import storage

    return storage.Client()


class GcsStore:
    """`ObjectStore` over a `google.cloud.storage.Client` (a default one unless given)."""

    scheme = "gs"

    def __init__(self, *, client: Any = None) -> None:
        from google.api_core import exceptions as api_errors
        from google.auth import exceptions as auth_errors

        self._client = client if client is not None else default_client()
        self._api = api_errors
        self._auth = auth_errors

    def head(self, bucket: str, key: str) -> ObjectInfo:
        return _info(self._blob(bucket, key, None, "head"))

    def find(self, bucket: str, key: str) -> ObjectInfo | None:
        blob = self._lookup(bucket, key, None, "head")
        return None if blob is None else _info(blob)

    def download(self, bucket: str, key: str, dest: Path, *, version: str | None = None,
                 max_bytes: int | None = None) -> ObjectInfo:
        url = f"gs://{bucket}/{key}"
        blob = self._blob(bucket, key, version, "download")
        info = _info(blob)
        if max_bytes is not None and info.size > max_bytes:
            raise too_large(url, info.size, max_bytes)
        handle = open_new(dest)
        try:
            with handle:
                writer = LimitedFile(handle, url=url, max_bytes=max_bytes)
                self._call(url, "download", _pinned(blob).download_to_file, writer,
                           raw_download=True)
        except BaseException:
            discard(dest)
            raise
        log.info("downloaded %s (%d bytes, generation %s)", url, writer.size, info.version)
        return info

    def read_bytes(self, bucket: str, key: str, *, max_bytes: int) -> bytes:
        url = f"gs://{bucket}/{key}"
        blob = self._blob(bucket, key, None, "read")
        if blob.size is not None and blob.size > max_bytes:
            raise too_large(url, int(blob.size), max_bytes)
        data: bytes = self._call(url, "read", _pinned(blob).download_as_bytes,
                                 raw_download=True)
        if len(data) > max_bytes:
            raise too_large(url, len(data), max_bytes)
        return data

    def put_bytes(self, bucket: str, key: str, data: bytes, *, content_type: str,
                  metadata: Mapping[str, str] | None = None,
                  create_only: bool = False, if_version: str | None = None) -> bool:
        url = f"gs://{bucket}/{key}"
        blob = self._client.bucket(bucket).blob(key)
        if metadata:
            blob.metadata = dict(metadata)
        condition = 0 if create_only else _generation(url, if_version)
        try:
            blob.upload_from_string(data, content_type=content_type,
                                    if_generation_match=condition)
        except self._api.PreconditionFailed:
            if condition is None:
                raise storage_error(f"{url}: write refused by a precondition") from None
            log.debug("%s changed or exists; not overwritten", url)
            return False
        except Exception as exc:
            raise self._translate(exc, url, "write") from exc
        return True

    def put_file(self, bucket: str, key: str, path: Path, *, content_type: str) -> None:
        url = f"gs://{bucket}/{key}"
        blob = self._client.bucket(bucket).blob(key)
        self._call(url, "upload", blob.upload_from_filename, str(path),
                   content_type=content_type)

    def _blob(self, bucket: str, key: str, version: str | None, action: str) -> Any:
        blob = self._lookup(bucket, key, version, action)
        if blob is None:
            shown = f" (generation {version})" if version is not None else ""
            raise ContextError(f"gs://{bucket}/{key}{shown}: no such object")
        return blob

    def _lookup(self, bucket: str, key: str, version: str | None, action: str) -> Any:
        url = f"gs://{bucket}/{key}"
        generation = _generation(url, version)
        return self._call(url, action, self._client.bucket(bucket).get_blob, key,
                          generation=generation)

    def _call(self, url: str, action: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """`function(*args, **kwargs)` with SDK and transport errors made ContextErrors."""
        try:
            return function(*args, **kwargs)
        except ContextError:
            raise
        except Exception as exc:
            raise self._translate(exc, url, action) from exc

    def _translate(self, exc: Exception, url: str, action: str) -> ContextError:
        if isinstance(exc, self._api.NotFound):
            return ContextError(f"{url}: no such object or bucket")
        if isinstance(exc, self._api.Forbidden | self._api.Unauthorized):
            return ContextError(f"{url}: {action} refused ({exc.code})")
        if isinstance(exc, self._api.GoogleAPICallError):
            code = int(exc.code or 0)
            retryable = code == 429 or code >= 500
            return storage_error(f"{url}: {action} failed (HTTP {code}): {exc.message}",
                                 retryable=retryable)
        if isinstance(exc, self._auth.DefaultCredentialsError):
            return ContextError(f"{url}: no Google credentials: {exc}")
        # requests' errors derive from OSError
        if isinstance(exc, OSError | self._auth.TransportError | self._api.GoogleAPIError):
            return storage_error(f"{url}: {action} failed: {exc}", retryable=True)
        name = type(exc).__name__
        if name in ("DataCorruption", "InvalidResponse"):  # media transfer errors
            return storage_error(f"{url}: {action} failed ({name}): {exc}", retryable=True)
        raise exc


def _pinned(blob: Any) -> Any:
    """A handle on exactly the generation `blob` describes. (The SDK would otherwise download
    from the server's `mediaLink`, which need not name a generation.)"""
    return blob.bucket.blob(blob.name, generation=blob.generation)


def _generation(url: str, version: str | None) -> int | None:
    if version is None:
        return None
    try:
        return int(version)
    except ValueError:
        raise ContextError(f"{url}: {version!r} is not a GCS generation number") from None


def _info(blob: Any) -> ObjectInfo:
    return ObjectInfo(
        bucket=blob.bucket.name,
        key=blob.name,
        size=int(blob.size or 0),
        etag=str(blob.etag or "").strip('"'),
        version=None if blob.generation is None else str(blob.generation),
        revision=str(blob.generation or ""),
        metadata=dict(blob.metadata or {}),
        content_type=blob.content_type,
        updated=blob.updated,
    )
