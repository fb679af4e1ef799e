"""Helpers for the end-to-end handler tests: context tarballs, a Lambda context, an AWS stack.

`aws_stack` (function) sets up, in moto: a versioned upload bucket whose every object-created
event goes to the `uploads` SQS queue (no suffix filter: a whole-bucket trigger, so our own
result and log objects come back as events too), an EventBridge rule on the default bus that
sends `bucketbuild` events to the `completions` queue, and the `BUCKETBUILD_*` environment
pointing at the no-auth test registry.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.fixtures.images import skopeo_inspect_raw
from tests.fixtures.registry import RegistryServer


def context_tar(files: Mapping[str, str | bytes], *, compress: str = "gz") -> bytes:
    """A build-context archive (gzip by default, or plain with `compress=""`)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0) if compress == "gz" else raw


@dataclass
class LambdaContext:
    """What a Lambda handler receives as `context`: the time left counts down for real."""

    remaining_ms: int = 300_000
    function_name: str = "bucketbuild-test"
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.remaining_ms - int((time.monotonic() - self.started) * 1000))


def manifest_digest(host: str, image: str) -> str:
    """The digest of what the registry serves, read with skopeo (a client we did not write)."""
    return "sha256:" + hashlib.sha256(skopeo_inspect_raw(host, image)).hexdigest()


def image_exists(host: str, image: str) -> bool:
    try:
        skopeo_inspect_raw(host, image)
    except AssertionError:
        return False
    return True


@dataclass
class AwsStack:
    bucket: str
    uploads_url: str
    completions_url: str
    registry: RegistryServer

    def upload(self, key: str, data: bytes, *, metadata: Mapping[str, str] | None = None,
               ) -> str:
        reply = boto3.client("s3").put_object(Bucket=self.bucket, Key=key, Body=data,
                                              Metadata=dict(metadata or {}))
        return str(reply.get("VersionId"))

    def messages(self, url: str | None = None, *, wait: float = 2.0) -> list[dict[str, Any]]:
        """Every message waiting on a queue (the uploads queue by default), deleted."""
        sqs = boto3.client("sqs")
        url = url or self.uploads_url
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait
        while True:
            reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                        WaitTimeSeconds=0)
            batch = reply.get("Messages", [])
            for message in batch:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            found += batch
            if not batch and (found or time.monotonic() > deadline):
                return found
            if not batch:
                time.sleep(0.1)

    def sqs_event(self, messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The Lambda SQS event for `messages` (default: what waits on the uploads queue)."""
        messages = self.messages() if messages is None else messages
        arn = f"arn:aws:sqs:us-east-1:123456789012:{self.uploads_url.rsplit('/', 1)[-1]}"
        return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                             "body": m["Body"], "attributes": {}, "messageAttributes": {},
                             "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                             "eventSourceARN": arn, "awsRegion": "us-east-1"}
                            for m in messages]}

    def completions(self, *, count: int = 1, wait: float = 5.0) -> list[dict[str, Any]]:
        """CloudEvents the EventBridge rule delivered (the `detail` of each)."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait
        while len(found) < count and time.monotonic() < deadline:
            found += [json.loads(m["Body"])["detail"]
                      for m in self.messages(self.completions_url, wait=0.5)]
        return found

    def status(self, key: str) -> dict[str, Any]:
        body = boto3.client("s3").get_object(Bucket=self.bucket, Key=key + ".result.json")
        return json.loads(body["Body"].read())  # type: ignore[no-any-return]

    def exists(self, key: str) -> bool:
        reply = boto3.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=key)
        return any(o["Key"] == key for o in reply.get("Contents", []))

    def read(self, key: str) -> bytes:
        return boto3.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]


def make_queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    return url, arn


@pytest.fixture
def aws_stack(aws_env: str, registry: RegistryServer, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> AwsStack:
    s3 = boto3.client("s3")
    bucket = f"uploads-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    uploads_url, uploads_arn = make_queue("uploads")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": uploads_arn, "Events": ["s3:ObjectCreated:*"]}]})
    completions_url, completions_arn = make_queue("completions")
    events = boto3.client("events")
    events.put_rule(Name="bucketbuild", EventPattern=json.dumps({"source": ["bucketbuild"]}))
    events.put_targets(Rule="bucketbuild", Targets=[{"Id": "q", "Arn": completions_arn}])
    env = {"DESTINATION": f"{registry.host}/aws/{{name}}:{{version}}",
           "ALLOWED_DESTINATIONS": f"{registry.host}/aws/*",
           "INSECURE_REGISTRIES": registry.host, "EVENT_BUS": "default",
           "WORK_ROOT": str(tmp_path / "work"), "TIMEOUT_MARGIN": "5"}
    for name, value in env.items():
        monkeypatch.setenv(f"BUCKETBUILD_{name}", value)
    return AwsStack(bucket, uploads_url, completions_url, registry)
