"""Upload notifications, in every envelope they arrive in, as one `BuildRequest` shape.

AWS delivers the same S3 "object created" fact as a direct notification (`Records[]` with
`eventSource: aws:s3`, keys URL-encoded form-style), wrapped in SNS (`Sns.Message`), in SQS
(`body`, possibly an SNS notification inside), or as an EventBridge event (`detail-type:
Object Created`, keys not encoded). Google delivers a finalize CloudEvent whose data is the
object resource (int64 fields as strings), or a Pub/Sub `messagePublished` CloudEvent carrying
a storage notification. Everything here is pure: parsing only, no I/O.

Only context archives are requests; every other key (our own `<key>.result.json` and
`<key>.log` included) is skipped with a reason, so a trigger on a whole bucket cannot loop.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import unquote_plus

StoreScheme = Literal["s3", "gs"]

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.zst")
RESULT_SUFFIX = ".result.json"
LOG_SUFFIX = ".log"
GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
_MAX_NESTING = 4


@dataclass(frozen=True)
class BuildRequest:
    """One uploaded object version that should become an image."""

    bucket: str
    key: str
    store: StoreScheme
    version: str | None = None  # S3 VersionId or GCS generation
    etag: str | None = None  # S3 ETag or GCS md5Hash/etag, without quotes
    size: int | None = None
    sequencer: str | None = None  # S3's per-key ordering hint (hex)
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False)
    event_time: datetime | None = None

    @property
    def url(self) -> str:
        return f"{self.store}://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Delivery:
    """One unit the platform retries as a whole (an SQS message, or the whole event)."""

    message_id: str | None
    requests: tuple[BuildRequest, ...] = ()
    skipped: tuple[str, ...] = ()  # why parts of it were ignored, for the log


@dataclass(frozen=True)
class _Parsed:
    requests: tuple[BuildRequest, ...] = ()
    skipped: tuple[str, ...] = ()

    def __add__(self, other: _Parsed) -> _Parsed:
        return _Parsed(self.requests + other.requests, self.skipped + other.skipped)


def is_archive_key(key: str) -> bool:
    """Whether `key` names a context archive (never one of our own result or log objects)."""
    lowered = key.lower()
    return not key.endswith("/") and lowered.endswith(ARCHIVE_SUFFIXES)


def aws_deliveries(event: Mapping[str, Any]) -> list[Delivery]:
    """The deliveries in a Lambda event: one per SQS message, else one for the whole event."""
    records = event.get("Records")
    if isinstance(records, list) and records and _is_sqs(records[0]):
        return [_sqs_delivery(record) for record in records]
    parsed = _aws_payload(event, depth=0)
    return [Delivery(None, parsed.requests, parsed.skipped)]


def _is_sqs(record: Any) -> bool:
    return isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs"


def _sqs_delivery(record: Mapping[str, Any]) -> Delivery:
    message_id = str(record.get("messageId") or "") or None
    parsed = _aws_payload(_json_or_none(record.get("body")), depth=1)
    return Delivery(message_id, parsed.requests, parsed.skipped)


def _aws_payload(payload: Any, *, depth: int) -> _Parsed:
    """Requests in an S3 notification, SNS record/notification or EventBridge event."""
    if depth > _MAX_NESTING or not isinstance(payload, Mapping):
        return _Parsed(skipped=("not an S3, SNS or EventBridge event",))
    if payload.get("Event") == "s3:TestEvent":
        return _Parsed(skipped=("s3:TestEvent",))
    if payload.get("Type") == "Notification" and "Message" in payload:
        return _aws_payload(_json_or_none(payload["Message"]), depth=depth + 1)
    if "detail-type" in payload:
        return _eventbridge(payload)
    records = payload.get("Records")
    if not isinstance(records, list):
        return _Parsed(skipped=("not an S3, SNS or EventBridge event",))
    parsed = _Parsed()
    for record in records:
        parsed += _aws_record(record, depth=depth)
    return parsed


def _aws_record(record: Any, *, depth: int) -> _Parsed:
    if not isinstance(record, Mapping):
        return _Parsed(skipped=("a record that is not an object",))
    if record.get("EventSource") == "aws:sns":
        message = (record.get("Sns") or {}).get("Message")
        return _aws_payload(_json_or_none(message), depth=depth + 1)
    if record.get("eventSource") != "aws:s3":
        return _Parsed(skipped=(f"record from {record.get('eventSource')!r}",))
    name = str(record.get("eventName", ""))
    if not name.startswith("ObjectCreated:"):
        return _Parsed(skipped=(f"S3 event {name!r} is not an upload",))
    s3 = record.get("s3") or {}
    obj = s3.get("object") or {}
    return _request(
        "s3", bucket=(s3.get("bucket") or {}).get("name"),
        key=unquote_plus(str(obj.get("key", ""))), version=obj.get("versionId"),
        etag=obj.get("eTag"), size=obj.get("size"), sequencer=obj.get("sequencer"),
        event_time=record.get("eventTime"))


def _eventbridge(event: Mapping[str, Any]) -> _Parsed:
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        return _Parsed(skipped=(f"EventBridge {event.get('source')!r} "
                                f"{event.get('detail-type')!r} is not an S3 upload",))
    detail = event.get("detail") or {}
    obj = detail.get("object") or {}
    return _request(
        "s3", bucket=(detail.get("bucket") or {}).get("name"), key=str(obj.get("key", "")),
        version=obj.get("version-id"), etag=obj.get("etag", obj.get("eTag")),
        size=obj.get("size"), sequencer=obj.get("sequencer"), event_time=event.get("time"))


def gcs_delivery(event_type: str, data: Any, *, event_time: str | None = None) -> Delivery:
    """The request in a GCS finalize CloudEvent or a Pub/Sub-wrapped storage notification."""
    if event_type == GCS_FINALIZED:
        parsed = _gcs_object(data, event_time=event_time)
    elif event_type == PUBSUB_PUBLISHED:
        parsed = _pubsub_notification(data)
    else:
        parsed = _Parsed(skipped=(f"CloudEvent type {event_type!r} is not an upload",))
    return Delivery(None, parsed.requests, parsed.skipped)


def _pubsub_notification(data: Any) -> _Parsed:
    message = data.get("message") if isinstance(data, Mapping) else None
    if not isinstance(message, Mapping):
        return _Parsed(skipped=("Pub/Sub event without a message",))
    attributes = message.get("attributes") or {}
    kind = attributes.get("eventType")
    if kind != "OBJECT_FINALIZE":
        return _Parsed(skipped=(f"storage notification {kind!r} is not an upload",))
    resource = _decoded_json(message.get("data"))
    if not isinstance(resource, Mapping):  # payload format NONE: attributes only
        resource = {"bucket": attributes.get("bucketId"), "name": attributes.get("objectId"),
                    "generation": attributes.get("objectGeneration")}
    return _gcs_object(resource, event_time=attributes.get("eventTime"))


def _gcs_object(resource: Any, *, event_time: str | None) -> _Parsed:
    if not isinstance(resource, Mapping):
        return _Parsed(skipped=("storage event without an object resource",))
    metadata = resource.get("metadata")
    return _request(
        "gs", bucket=resource.get("bucket"), key=str(resource.get("name", "")),
        version=resource.get("generation"), etag=resource.get("md5Hash") or resource.get("etag"),
        size=resource.get("size"), sequencer=None,
        event_time=event_time or resource.get("updated") or resource.get("timeCreated"),
        metadata=metadata if isinstance(metadata, Mapping) else None)


def _request(store: StoreScheme, *, bucket: Any, key: str, version: Any, etag: Any,
             size: Any, sequencer: Any, event_time: Any,
             metadata: Mapping[str, Any] | None = None) -> _Parsed:
    if not bucket or not key:
        return _Parsed(skipped=("an event that names no bucket or key",))
    if not is_archive_key(key):
        return _Parsed(skipped=(f"{store}://{bucket}/{key} is not a context archive",))
    request = BuildRequest(
        bucket=str(bucket), key=key, store=store, version=_text(version),
        etag=_text(etag, strip='"'), size=_integer(size), sequencer=_text(sequencer),
        metadata=MappingProxyType({str(k).lower(): str(v) for k, v in (metadata or {}).items()}),
        event_time=parse_time(event_time))
    return _Parsed(requests=(request,))


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (`Z` allowed) or epoch seconds, as an aware datetime; None if neither."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(value: Any, *, strip: str = "") -> str | None:
    if value is None or value == "" or value == "null":
        return None
    return str(value).strip(strip) or None


def _integer(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _json_or_none(text: Any) -> Any:
    if isinstance(text, Mapping):
        return text
    if not isinstance(text, str | bytes):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _decoded_json(data: Any) -> Any:
    if not isinstance(data, str) or not data:
        return None
    try:
        return _json_or_none(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None
