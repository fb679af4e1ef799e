"""Event normalisation: every envelope, one BuildRequest shape."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from core.service.events import (
    GCS_FINALIZED,
    PUBSUB_PUBLISHED,
    BuildRequest,
    aws_deliveries,
    gcs_delivery,
    is_archive_key,
)


def s3_record(key: str, *, name: str = "ObjectCreated:Put", version: str | None = "v1",
              sequencer: str | None = "0055AED6DCD90281E5", bucket: str = "uploads",
              ) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e"}
    if version is not None:
        obj["versionId"] = version
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2024-05-01T10:00:00.000Z", "eventName": name,
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket,
                                                        "arn": f"arn:aws:s3:::{bucket}"},
                   "object": obj}}


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def sns_record(message: dict[str, Any]) -> dict[str, Any]:
    return {"EventSource": "aws:sns", "EventVersion": "1.0",
            "Sns": {"Type": "Notification", "MessageId": "m-1", "Message": json.dumps(message)}}


def sqs_record(body: Any, message_id: str = "msg-1") -> dict[str, Any]:
    return {"messageId": message_id, "receiptHandle": "rh", "eventSource": "aws:sqs",
            "body": body if isinstance(body, str) else json.dumps(body)}


def eventbridge(key: str, *, detail_type: str = "Object Created",
                source: str = "aws.s3") -> dict[str, Any]:
    return {"version": "0", "id": "e-1", "detail-type": detail_type, "source": source,
            "account": "123456789012", "time": "2024-05-01T10:00:01Z", "region": "us-east-1",
            "resources": ["arn:aws:s3:::uploads"],
            "detail": {"version": "0", "bucket": {"name": "uploads"},
                       "object": {"key": key, "size": 10, "etag": "abc",
                                  "version-id": "v9", "sequencer": "00617F08299329D189"},
                       "reason": "PutObject"}}


EXPECTED = BuildRequest(bucket="uploads", key="apps/my app+v1.tar.gz", store="s3",
                        version="v1", etag="d41d8cd98f00b204e9800998ecf8427e", size=1024,
                        sequencer="0055AED6DCD90281E5",
                        event_time=datetime(2024, 5, 1, 10, 0, tzinfo=UTC))
ENCODED = "apps/my+app%2Bv1.tar.gz"  # how S3 writes "apps/my app+v1.tar.gz" in records


@pytest.mark.parametrize("event", [
    pytest.param(s3_event(s3_record(ENCODED)), id="s3"),
    pytest.param(s3_event(sns_record(s3_event(s3_record(ENCODED)))), id="sns"),
    pytest.param({"Records": [sqs_record(s3_event(s3_record(ENCODED)))]}, id="sqs"),
    pytest.param({"Records": [sqs_record({"Type": "Notification", "MessageId": "x",
                                          "Message": json.dumps(s3_event(s3_record(ENCODED)))})]},
                 id="sns-in-sqs"),
])
def test_every_aws_envelope_gives_the_same_request(event: dict[str, Any]) -> None:
    requests = [r for d in aws_deliveries(event) for r in d.requests]
    assert requests == [EXPECTED]


def test_sqs_deliveries_keep_message_ids() -> None:
    event = {"Records": [sqs_record(s3_event(s3_record("a.tar")), "m1"),
                         sqs_record(s3_event(s3_record("b.tgz"), s3_record("c.tar.zst")), "m2")]}
    deliveries = aws_deliveries(event)
    assert [d.message_id for d in deliveries] == ["m1", "m2"]
    assert [[r.key for r in d.requests] for d in deliveries] == [["a.tar"], ["b.tgz", "c.tar.zst"]]


def test_direct_event_with_several_records_is_one_delivery() -> None:
    event = s3_event(s3_record("a.tar"), s3_record("notes.txt"), s3_record("b.tar.gz"))
    [delivery] = aws_deliveries(event)
    assert delivery.message_id is None
    assert [r.key for r in delivery.requests] == ["a.tar", "b.tar.gz"]
    assert delivery.skipped == ("s3://uploads/notes.txt is not a context archive",)


def test_eventbridge_keys_are_not_url_decoded() -> None:
    [delivery] = aws_deliveries(eventbridge("dir/a+b c.tar"))
    [request] = delivery.requests
    assert (request.key, request.version, request.etag, request.sequencer) == (
        "dir/a+b c.tar", "v9", "abc", "00617F08299329D189")
    assert request.event_time == datetime(2024, 5, 1, 10, 0, 1, tzinfo=UTC)


def test_eventbridge_inside_sqs() -> None:
    [delivery] = aws_deliveries({"Records": [sqs_record(eventbridge("x.tgz"))]})
    assert [r.key for r in delivery.requests] == ["x.tgz"]


def test_eventbridge_epoch_time_from_moto() -> None:
    event = eventbridge("x.tar")
    event["time"] = 1714557601.5
    [delivery] = aws_deliveries(event)
    assert delivery.requests[0].event_time == datetime(2024, 5, 1, 10, 0, 1, 500000, tzinfo=UTC)


@pytest.mark.parametrize("event", [
    pytest.param({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}, id="test"),
    pytest.param({"Records": [sqs_record({"Service": "Amazon S3", "Event": "s3:TestEvent"})]},
                 id="test-in-sqs"),
    pytest.param(s3_event(s3_record("a.tar", name="ObjectRemoved:Delete")), id="removed"),
    pytest.param(eventbridge("a.tar", detail_type="Object Deleted"), id="eb-deleted"),
    pytest.param(eventbridge("a.tar", source="aws.ec2"), id="eb-other-source"),
    pytest.param({"Records": [sqs_record("not json at all")]}, id="sqs-garbage"),
    pytest.param({"hello": "world"}, id="unknown"),
    pytest.param(s3_event({"eventSource": "aws:dynamodb"}), id="other-source"),
])
def test_events_that_are_not_uploads_are_skipped(event: dict[str, Any]) -> None:
    deliveries = aws_deliveries(event)
    assert all(not d.requests for d in deliveries)
    assert all(d.skipped for d in deliveries)


@pytest.mark.parametrize("key", [
    "notes.txt", "a.tar.result.json", "a.tar.gz.log", "a.zip", "dir/", "a.tar.gz.bak",
    "a.tar.bz2",
])
def test_only_context_archives_are_built(key: str) -> None:
    assert not is_archive_key(key)
    [delivery] = aws_deliveries(s3_event(s3_record(key)))
    assert delivery.requests == ()


@pytest.mark.parametrize("key", ["a.tar", "a.tar.gz", "a.tgz", "a.tar.zst", "A.TAR.GZ"])
def test_archive_suffixes(key: str) -> None:
    assert is_archive_key(key)


def test_missing_version_and_sequencer_are_none() -> None:
    [delivery] = aws_deliveries(s3_event(s3_record("a.tar", version=None, sequencer=None)))
    assert delivery.requests[0].version is None
    assert delivery.requests[0].sequencer is None


GCS_OBJECT = {
    "kind": "storage#object", "bucket": "ctx-bucket", "name": "team/app v2.tar.zst",
    "generation": "1714557600123456", "metageneration": "1", "size": "2048",
    "md5Hash": "XUFAKrxLKna5cZ2REBfFkg==", "etag": "CMD2",
    "timeCreated": "2024-05-01T10:00:00.123Z", "updated": "2024-05-01T10:00:00.123Z",
    "metadata": {"BucketBuild-Target": "final"},
}
GCS_EXPECTED = BuildRequest(
    bucket="ctx-bucket", key="team/app v2.tar.zst", store="gs", version="1714557600123456",
    etag="XUFAKrxLKna5cZ2REBfFkg==", size=2048,
    event_time=datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC))


def test_gcs_finalize_cloudevent() -> None:
    delivery = gcs_delivery(GCS_FINALIZED, GCS_OBJECT, event_time="2024-05-01T10:00:00.123Z")
    assert delivery.requests == (GCS_EXPECTED,)
    assert dict(delivery.requests[0].metadata) == {"bucketbuild-target": "final"}


def pubsub_data(resource: dict[str, Any] | None, *, event_type: str = "OBJECT_FINALIZE",
                ) -> dict[str, Any]:
    message: dict[str, Any] = {
        "attributes": {"payloadFormat": "JSON_API_V1" if resource else "NONE",
                       "bucketId": "ctx-bucket", "objectId": "team/app v2.tar.zst",
                       "objectGeneration": "1714557600123456", "eventType": event_type,
                       "eventTime": "2024-05-01T10:00:00.123Z"},
        "messageId": "42", "publishTime": "2024-05-01T10:00:01Z"}
    if resource is not None:
        message["data"] = base64.b64encode(json.dumps(resource).encode()).decode()
    return {"message": message, "subscription": "projects/p/subscriptions/s"}


def test_pubsub_wrapped_storage_notification() -> None:
    delivery = gcs_delivery(PUBSUB_PUBLISHED, pubsub_data(GCS_OBJECT))
    assert delivery.requests == (GCS_EXPECTED,)


def test_pubsub_notification_without_payload_uses_attributes() -> None:
    [request] = gcs_delivery(PUBSUB_PUBLISHED, pubsub_data(None)).requests
    assert (request.bucket, request.key, request.version) == (
        "ctx-bucket", "team/app v2.tar.zst", "1714557600123456")


@pytest.mark.parametrize(("event_type", "data"), [
    (PUBSUB_PUBLISHED, pubsub_data(GCS_OBJECT, event_type="OBJECT_DELETE")),
    (PUBSUB_PUBLISHED, {"nothing": True}),
    ("google.cloud.storage.object.v1.deleted", GCS_OBJECT),
    (GCS_FINALIZED, {**GCS_OBJECT, "name": "team/app v2.tar.zst.result.json"}),
    (GCS_FINALIZED, {**GCS_OBJECT, "name": "team/app v2.tar.zst.log"}),
    (GCS_FINALIZED, "not an object"),
])
def test_gcs_events_that_are_not_uploads(event_type: str, data: Any) -> None:
    delivery = gcs_delivery(event_type, data)
    assert delivery.requests == ()
    assert delivery.skipped
