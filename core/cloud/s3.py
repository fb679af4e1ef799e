"""Amazon S3 (and S3-compatible endpoints) through boto3, imported when a store is created.

`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` and the usual credential chain configure the
client. botocore retries throttling and 5xx answers itself (adaptive mode, `MAX_ATTEMPTS`).
Create-only writes use `If-None-Match: *`: S3 answers 412 when the key exists, and 409 when a
concurrent conditional write to the same key is in flight — both mean another writer won.
Writes conditional on a revision use `If-Match: <ETag>` (412 when the object has changed, 404
when it is gone). An ETag names content, not a write: identical bytes written again keep it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from core.cloud.storage import (
    CHUNK_SIZE,
    MAX_ATTEMPTS,
    ObjectInfo,
    discard,
    storage_error,
    too_large,
    write_chunks,
)
from core.errors import ContextError

log = logging.getLogger(__name__)

_MISSING = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NoSuchBucket", "NotFound"})
_DENIED = frozenset({"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId",
                     "SignatureDoesNotMatch", "ExpiredToken", "AllAccessDisabled"})
_LOST_RACE = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_THROTTLED = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                        "RequestLimitExceeded", "TooManyRequestsException"})


def default_client() -> Any:
    """An S3 client from the environment, with adaptive SDK retries."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "adaptive", "max_attempts": MAX_ATTEMPTS},
                    connect_timeout=10, read_timeout=60)
    return boto3.client("s3", config=config)


class S3Store:
    """`ObjectStore` over an S3 client (a boto3 `client("s3")` unless one is given)."""

    scheme = "s3"

    def __init__(self, *, client: Any = None) -> None:
        import botocore.exceptions
        from boto3.exceptions import S3UploadFailedError

        self._client = client if client is not None else default_client()
        self._errors = botocore.exceptions
        self._upload_failed = S3UploadFailedError

    def head(self, bucket: str, key: str) -> ObjectInfo:
        info = self.find(bucket, key)
        if info is None:
            raise ContextError(f"s3://{bucket}/{key}: no such object")
        return info

    def find(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            reply = self._client.head_object(Bucket=bucket, Key=key)
        except self._errors.ClientError as exc:
            if _code(exc) in _MISSING and _code(exc) != "NoSuchBucket":
                return None
            raise self._translate(exc, bucket, key, "head") from exc
        except self._errors.BotoCoreError as exc:
            raise self._translate(exc, bucket, key, "head") from exc
        return _info(bucket, key, reply)

    def download(self, bucket: str, key: str, dest: Path, *, version: str | None = None,
                 max_bytes: int | None = None) -> ObjectInfo:
        url = f"s3://{bucket}/{key}"
        try:
            reply = self._get(bucket, key, version)
            info = _info(bucket, key, reply)
            body = reply["Body"]
            with body:
                if max_bytes is not None and info.size > max_bytes:
                    raise too_large(url, info.size, max_bytes)
                size = write_chunks(_chunks(body), dest, url=url, max_bytes=max_bytes)
        except (self._errors.ClientError, self._errors.BotoCoreError) as exc:
            raise self._translate(exc, bucket, key, "download") from exc
        if size != info.size:
            discard(dest)
            raise storage_error(f"{url}: received {size} of {info.size} bytes", retryable=True)
        log.info("downloaded %s (%d bytes, version %s)", url, size, info.version or "-")
        return info

    def read_bytes(self, bucket: str, key: str, *, max_bytes: int) -> bytes:
        url = f"s3://{bucket}/{key}"
        try:
            reply = self._get(bucket, key, None)
            with reply["Body"] as body:
                size = int(reply.get("ContentLength", 0))
                if size > max_bytes:
                    raise too_large(url, size, max_bytes)
                data: bytes = body.read(max_bytes + 1)
        except (self._errors.ClientError, self._errors.BotoCoreError) as exc:
            raise self._translate(exc, bucket, key, "read") from exc
        if len(data) > max_bytes:
            raise too_large(url, len(data), max_bytes)
        return data

    def put_bytes(self, bucket: str, key: str, data: bytes, *, content_type: str,
                  metadata: Mapping[str, str] | None = None,
                  create_only: bool = False, if_version: str | None = None) -> bool:
        options: dict[str, Any] = {"ContentType": content_type, "Metadata": dict(metadata or {})}
        if create_only:
            options["IfNoneMatch"] = "*"
        if if_version is not None:
            options["IfMatch"] = f'"{if_version}"'
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=data, **options)
        except self._errors.ClientError as exc:
            if _lost_race(exc, create_only=create_only, if_version=if_version):
                log.debug("s3://%s/%s changed or exists; not overwritten", bucket, key)
                return False
            raise self._translate(exc, bucket, key, "write") from exc
        except self._errors.BotoCoreError as exc:
            raise self._translate(exc, bucket, key, "write") from exc
        return True

    def put_file(self, bucket: str, key: str, path: Path, *, content_type: str) -> None:
        try:
            self._client.upload_file(str(path), bucket, key,
                                     ExtraArgs={"ContentType": content_type})
        except (self._errors.ClientError, self._errors.BotoCoreError) as exc:
            raise self._translate(exc, bucket, key, "upload") from exc
        except self._upload_failed as exc:
            raise self._translate(exc, bucket, key, "upload") from exc

    def _get(self, bucket: str, key: str, version: str | None) -> Any:
        options = {"VersionId": version} if version is not None else {}
        return self._client.get_object(Bucket=bucket, Key=key, **options)

    def _translate(self, exc: Exception, bucket: str, key: str, action: str) -> ContextError:
        """A ContextError naming the object and what went wrong, without SDK details."""
        url = f"s3://{bucket}/{key}"
        if not isinstance(exc, self._errors.ClientError):
            retryable = not isinstance(exc, self._errors.NoCredentialsError)
            return storage_error(f"{url}: {action} failed: {exc}", retryable=retryable)
        code, status = _code(exc), _status(exc)
        if code == "NoSuchBucket":
            return ContextError(f"{url}: no such bucket")
        if code in _MISSING:
            return ContextError(f"{url}: no such object")
        if code in _DENIED:
            return ContextError(f"{url}: {action} refused ({code})")
        retryable = code in _THROTTLED or status >= 500
        return storage_error(f"{url}: {action} failed ({code}, HTTP {status})",
                             retryable=retryable)


def _chunks(body: Any) -> Iterator[bytes]:
    yield from body.iter_chunks(CHUNK_SIZE)


def _lost_race(exc: Any, *, create_only: bool, if_version: str | None) -> bool:
    """Whether a refused conditional write means another writer got there first (a changed
    or removed object for `If-Match`, an existing one for `If-None-Match`)."""
    code = _code(exc)
    if if_version is not None and code in _MISSING and code != "NoSuchBucket":
        return True
    return (create_only or if_version is not None) and code in _LOST_RACE


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _info(bucket: str, key: str, reply: Mapping[str, Any]) -> ObjectInfo:
    version = reply.get("VersionId")
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=int(reply.get("ContentLength", 0)),
        etag=str(reply.get("ETag", "")).strip('"'),
        version=None if version in (None, "", "null") else str(version),
        revision=str(reply.get("ETag", "")).strip('"'),
        metadata=dict(reply.get("Metadata") or {}),
        content_type=reply.get("ContentType"),
        updated=reply.get("LastModified"),
    )
