"""Object stores against real stand-ins: moto_server (S3) and fake-gcs-server (GCS)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from core.cloud.storage import ObjectInfo, ObjectStore, ObjectURL, open_store
from core.errors import ContextError

SCHEMES = ["s3", "gs"]


@pytest.fixture(params=SCHEMES)
def store_bucket(request: pytest.FixtureRequest) -> tuple[ObjectStore, str]:
    """A store and a fresh bucket in its stand-in (versioned on S3, generations on GCS)."""
    scheme = request.param
    bucket = request.getfixturevalue("s3_bucket" if scheme == "s3" else "gcs_bucket")
    return open_store(scheme), bucket


def test_put_head_metadata_round_trip(store_bucket: tuple[ObjectStore, str]) -> None:
    store, bucket = store_bucket
    metadata = {"bucketbuild-destination": "registry.example/app:1", "owner": "ci"}
    assert store.put_bytes(bucket, "ctx/app.tar.gz", b"payload", content_type="application/gzip",
                           metadata=metadata)
    info = store.head(bucket, "ctx/app.tar.gz")
    assert isinstance(info, ObjectInfo)
    assert (info.bucket, info.key, info.size) == (bucket, "ctx/app.tar.gz", 7)
    assert dict(info.metadata) == metadata
    assert info.content_type == "application/gzip"
    assert info.etag and '"' not in info.etag
    assert info.version
    assert info.updated is not None and info.updated.tzinfo is not None
    assert store.find(bucket, "ctx/app.tar.gz") == info


def test_download_streams_to_disk(store_bucket: tuple[ObjectStore, str], tmp_path: Path) -> None:
    store, bucket = store_bucket
    data = os.urandom(3 * 1024 * 1024 + 17)
    assert store.put_bytes(bucket, "big.bin", data, content_type="application/octet-stream")
    dest = tmp_path / "sub" / "big.bin"
    info = store.download(bucket, "big.bin", dest)
    assert info.size == len(data)
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert store.read_bytes(bucket, "big.bin", max_bytes=len(data)) == data


def test_versions_and_generations(store_bucket: tuple[ObjectStore, str], tmp_path: Path) -> None:
    store, bucket = store_bucket
    store.put_bytes(bucket, "k", b"first", content_type="text/plain")
    first = store.head(bucket, "k")
    store.put_bytes(bucket, "k", b"second!", content_type="text/plain")
    second = store.head(bucket, "k")
    assert first.version and second.version and first.version != second.version
    old = store.download(bucket, "k", tmp_path / "old", version=first.version)
    assert (tmp_path / "old").read_bytes() == b"first"
    assert old.version == first.version and old.size == 5
    new = store.download(bucket, "k", tmp_path / "new")
    assert (tmp_path / "new").read_bytes() == b"second!" and new.version == second.version


def test_create_only(store_bucket: tuple[ObjectStore, str]) -> None:
    store, bucket = store_bucket
    key = "ctx/app.tar.gz.result.json"
    assert store.put_bytes(bucket, key, b'{"state":"building"}', content_type="application/json",
                           create_only=True) is True
    assert store.put_bytes(bucket, key, b'{"state":"other"}', content_type="application/json",
                           create_only=True) is False
    assert store.read_bytes(bucket, key, max_bytes=1024) == b'{"state":"building"}'
    # a plain write overwrites (the final state replaces the claim)
    assert store.put_bytes(bucket, key, b'{"state":"succeeded"}',
                           content_type="application/json") is True
    assert store.read_bytes(bucket, key, max_bytes=1024) == b'{"state":"succeeded"}'


def test_write_if_version(store_bucket: tuple[ObjectStore, str]) -> None:
    store, bucket = store_bucket
    store.put_bytes(bucket, "k", b"one", content_type="text/plain")
    first = store.head(bucket, "k")
    assert first.revision
    assert store.put_bytes(bucket, "k", b"two", content_type="text/plain",
                           if_version=first.revision) is True
    second = store.head(bucket, "k")
    assert second.revision and second.revision != first.revision
    # a stale revision is refused and nothing is written
    assert store.put_bytes(bucket, "k", b"three", content_type="text/plain",
                           if_version=first.revision) is False
    assert store.read_bytes(bucket, "k", max_bytes=100) == b"two"
    assert store.head(bucket, "k").revision == second.revision
    # the object being gone counts as changed
    assert store.put_bytes(bucket, "gone", b"x", content_type="text/plain",
                           if_version=second.revision) is False
    assert store.find(bucket, "gone") is None


def test_size_limits(store_bucket: tuple[ObjectStore, str], tmp_path: Path) -> None:
    store, bucket = store_bucket
    store.put_bytes(bucket, "k", b"x" * 100, content_type="text/plain")
    dest = tmp_path / "k"
    with pytest.raises(ContextError, match=r"100 bytes.*99-byte limit"):
        store.download(bucket, "k", dest, max_bytes=99)
    assert not dest.exists()
    with pytest.raises(ContextError, match="limit"):
        store.read_bytes(bucket, "k", max_bytes=10)
    assert store.download(bucket, "k", dest, max_bytes=100).size == 100


def test_missing_object(store_bucket: tuple[ObjectStore, str], tmp_path: Path) -> None:
    store, bucket = store_bucket
    scheme = "s3" if store.scheme == "s3" else "gs"
    with pytest.raises(ContextError, match=f"{scheme}://{bucket}/nope: no such object"):
        store.head(bucket, "nope")
    assert store.find(bucket, "nope") is None
    with pytest.raises(ContextError, match="no such object"):
        store.download(bucket, "nope", tmp_path / "nope")
    assert not (tmp_path / "nope").exists()
    with pytest.raises(ContextError, match="no such object"):
        store.read_bytes(bucket, "nope", max_bytes=10)


def test_missing_bucket(store_bucket: tuple[ObjectStore, str], tmp_path: Path) -> None:
    store, _ = store_bucket
    with pytest.raises(ContextError, match="no such"):
        store.download("bb-no-such-bucket", "k", tmp_path / "k")


def test_download_never_overwrites(store_bucket: tuple[ObjectStore, str],
                                   tmp_path: Path) -> None:
    store, bucket = store_bucket
    store.put_bytes(bucket, "k", b"new", content_type="text/plain")
    dest = tmp_path / "existing"
    dest.write_bytes(b"keep me")
    with pytest.raises(ContextError, match="cannot create"):
        store.download(bucket, "k", dest)
    assert dest.read_bytes() == b"keep me"


def test_put_file(store_bucket: tuple[ObjectStore, str], tmp_path: Path) -> None:
    store, bucket = store_bucket
    source = tmp_path / "build.log"
    data = os.urandom(9 * 1024 * 1024)  # above both SDKs' single-request thresholds
    source.write_bytes(data)
    store.put_file(bucket, "ctx/app.tar.gz.log", source, content_type="text/plain")
    info = store.head(bucket, "ctx/app.tar.gz.log")
    assert info.size == len(data) and info.content_type == "text/plain"
    store.download(bucket, "ctx/app.tar.gz.log", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == data


def test_gcs_bad_generation(gcs_bucket: str, tmp_path: Path) -> None:
    store = open_store("gs")
    with pytest.raises(ContextError, match="not a GCS generation"):
        store.download(gcs_bucket, "k", tmp_path / "k", version="abc")


def test_s3_client_uses_adaptive_retries(aws_env: str) -> None:
    store: Any = open_store("s3")
    retries = store._client.meta.config.retries
    assert retries["mode"] == "adaptive" and retries["total_max_attempts"] >= 3
    assert store._client.meta.endpoint_url == aws_env


def test_s3_unreachable_endpoint_is_retryable(aws_env: str, tmp_path: Path) -> None:
    import boto3
    from botocore.config import Config

    from core.cloud.s3 import S3Store
    from tests.fixtures.registry import free_port

    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    with pytest.raises(ContextError) as caught:
        S3Store(client=client).download("b", "k", tmp_path / "k")
    assert caught.value.retryable
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize(("code", "status", "text", "retryable"), [
    ("SlowDown", 503, "failed (SlowDown, HTTP 503)", True),
    ("InternalError", 500, "failed (InternalError, HTTP 500)", True),
    ("AccessDenied", 403, "refused (AccessDenied)", False),
    ("NoSuchBucket", 404, "no such bucket", False),
    ("InvalidArgument", 400, "failed (InvalidArgument, HTTP 400)", False),
])
def test_s3_error_translation(code: str, status: int, text: str, retryable: bool) -> None:
    from botocore.exceptions import ClientError

    from core.cloud.s3 import S3Store

    error = ClientError({"Error": {"Code": code, "Message": "m"},
                         "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")
    translated = S3Store(client=object())._translate(error, "b", "k", "download")
    assert text in str(translated) and str(translated).startswith("s3://b/k: ")
    assert translated.retryable is retryable


def test_open_store_rejects_other_schemes() -> None:
    with pytest.raises(ContextError, match="no object store for 'ftp'"):
        open_store("ftp")


@pytest.mark.parametrize(("url", "parsed"), [
    ("s3://bucket/key.tar.gz", ("s3", "bucket", "key.tar.gz")),
    ("gs://my.bucket/a/b/c.tar", ("gs", "my.bucket", "a/b/c.tar")),
    ("s3://b-1/k with space", ("s3", "b-1", "k with space")),
])
def test_object_url_parse(url: str, parsed: tuple[str, str, str]) -> None:
    result = ObjectURL.parse(url)
    assert (result.scheme, result.bucket, result.key) == parsed
    assert str(result) == url


@pytest.mark.parametrize("url", ["s3://bucket", "s3://bucket/", "gs:///key", "http://b/k",
                                 "s3://a/k", "bucket/key", "s3://bucket/dir/"])
def test_object_url_rejects(url: str) -> None:
    with pytest.raises(ContextError):
        ObjectURL.parse(url)
