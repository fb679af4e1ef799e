"""Upload notifications, in every envelope they arrive in, as one `BuildRequest` shape.

AWS delivers the same S3 "object created" fact as a direct notification (`Records[]` with
`eventSource: aws:s3`, keys URL-encoded form-style), wrapped in SNS (`Sns.Message`), in SQS
(`body`, possibly an SNS notification inside), or as an EventBridge event (`detail-type:
Object Created`, keys not encoded). Google delivers a finalize CloudEvent whose data is the
object resource (int64 fields as strings), or a Pub/Sub `messagePublished` CloudEvent carrying
a storage notification. Everything here is pure: parsing only, no I/O.

Only context archives are requests; every other key (our own `<key>.result.json` and
`<key>.log` included) is skipped with a reason, so a trigger on a whole bucket cannot loop.
Nothing here raises: whatever arrives (any JSON value, fields of the wrong type, keys that do
not decode, nesting too deep) becomes a request whose fields are well formed or a skip reason
of at most `MAX_REASON` characters.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
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
#: longest skip reason (reasons go to logs; a hostile event can carry megabytes)
MAX_REASON = 300
#: longest object name, in UTF-8 bytes, S3 and GCS accept
MAX_KEY_BYTES = 1024
#: what a bucket name must be to fit `s3://BUCKET/KEY` unambiguously (the store judges the rest)
_BUCKET_NAME = re.compile(r"[^/\s\x00-\x1f\x7f]{1,255}")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


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


def aws_deliveries(event: Any) -> list[Delivery]:
    """The deliveries in a Lambda event: one per SQS message, else one for the whole event."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if isinstance(records, list) and records and _is_sqs(records[0]):
        return [_sqs_delivery(record) for record in records]
    parsed = _aws_payload(event, depth=0)
    return [Delivery(None, parsed.requests, parsed.skipped)]


def _is_sqs(record: Any) -> bool:
    return isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs"


def _sqs_delivery(record: Any) -> Delivery:
    if not isinstance(record, Mapping):
        return Delivery(None, skipped=("an SQS record that is not an object",))
    message_id = record.get("messageId")
    parsed = _aws_payload(_json_or_none(record.get("body")), depth=1)
    return Delivery(message_id if isinstance(message_id, str) and message_id else None,
                    parsed.requests, parsed.skipped)


def _aws_payload(payload: Any, *, depth: int) -> _Parsed:
    """Requests in an S3 notification, SNS record/notification or EventBridge event."""
    if depth > _MAX_NESTING or not isinstance(payload, Mapping):
        return _skip("not an S3, SNS or EventBridge event")
    if payload.get("Event") == "s3:TestEvent":
        return _skip("s3:TestEvent")
    if payload.get("Type") == "Notification" and "Message" in payload:
        return _aws_payload(_json_or_none(payload["Message"]), depth=depth + 1)
    if "detail-type" in payload:
        return _eventbridge(payload)
    records = payload.get("Records")
    if not isinstance(records, list):
        return _skip("not an S3, SNS or EventBridge event")
    parsed = _Parsed()
    for record in records:
        parsed += _aws_record(record, depth=depth)
    return parsed


def _aws_record(record: Any, *, depth: int) -> _Parsed:
    if not isinstance(record, Mapping):
        return _skip("a record that is not an object")
    if record.get("EventSource") == "aws:sns":
        message = _object(record, "Sns").get("Message")
        return _aws_payload(_json_or_none(message), depth=depth + 1)
    if record.get("eventSource") != "aws:s3":
        return _skip(f"record from {_shown(record.get('eventSource'))}")
    name = record.get("eventName")
    if not isinstance(name, str) or not name.startswith("ObjectCreated:"):
        return _skip(f"S3 event {_shown(name)} is not an upload")
    s3 = _object(record, "s3")
    obj = _object(s3, "object")
    key = obj.get("key")
    try:  # S3 writes keys form-encoded (UTF-8, `+` for a space)
        decoded = unquote_plus(key, errors="strict") if isinstance(key, str) else None
    except UnicodeDecodeError:
        return _skip(f"S3 key {_shown(key)} is not percent-encoded UTF-8")
    return _request(
        "s3", bucket=_object(s3, "bucket").get("name"), key=decoded,
        version=obj.get("versionId"), etag=obj.get("eTag"), size=obj.get("size"),
        sequencer=obj.get("sequencer"), event_time=record.get("eventTime"))


def _eventbridge(event: Mapping[str, Any]) -> _Parsed:
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        return _skip(f"EventBridge {_shown(event.get('source'))} "
                     f"{_shown(event.get('detail-type'))} is not an S3 upload")
    detail = _object(event, "detail")
    obj = _object(detail, "object")
    return _request(
        "s3", bucket=_object(detail, "bucket").get("name"), key=obj.get("key"),
        version=obj.get("version-id"), etag=obj.get("etag", obj.get("eTag")),
        size=obj.get("size"), sequencer=obj.get("sequencer"), event_time=event.get("time"))


def gcs_delivery(event_type: str, data: Any, *, event_time: Any = None) -> Delivery:
    """The request in a GCS finalize CloudEvent or a Pub/Sub-wrapped storage notification."""
    if event_type == GCS_FINALIZED:
        parsed = _gcs_object(data, event_time=event_time)
    elif event_type == PUBSUB_PUBLISHED:
        parsed = _pubsub_notification(data)
    else:
        parsed = _skip(f"CloudEvent type {_shown(event_type)} is not an upload")
    return Delivery(None, parsed.requests, parsed.skipped)


def _pubsub_notification(data: Any) -> _Parsed:
    message = data.get("message") if isinstance(data, Mapping) else None
    if not isinstance(message, Mapping):
        return _skip("Pub/Sub event without a message")
    attributes = _object(message, "attributes")
    kind = attributes.get("eventType")
    if kind != "OBJECT_FINALIZE":
        return _skip(f"storage notification {_shown(kind)} is not an upload")
    resource = _decoded_json(message.get("data"))
    if not isinstance(resource, Mapping):  # payload format NONE: attributes only
        resource = {"bucket": attributes.get("bucketId"), "name": attributes.get("objectId"),
                    "generation": attributes.get("objectGeneration")}
    return _gcs_object(resource, event_time=attributes.get("eventTime"))


def _gcs_object(resource: Any, *, event_time: Any) -> _Parsed:
    if not isinstance(resource, Mapping):
        return _skip("storage event without an object resource")
    metadata = resource.get("metadata")
    return _request(
        "gs", bucket=resource.get("bucket"), key=resource.get("name"),
        version=resource.get("generation"), etag=resource.get("md5Hash") or resource.get("etag"),
        size=resource.get("size"), sequencer=None,
        event_time=event_time or resource.get("updated") or resource.get("timeCreated"),
        metadata=metadata if isinstance(metadata, Mapping) else None)


def _request(store: StoreScheme, *, bucket: Any, key: Any, version: Any, etag: Any,
             size: Any, sequencer: Any, event_time: Any,
             metadata: Mapping[Any, Any] | None = None) -> _Parsed:
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        return _skip("an event that names no bucket or key")
    where = _cut(f"{store}://{bucket}/{key}")
    if not _BUCKET_NAME.fullmatch(bucket) or _utf8_size(bucket) > 255:
        return _skip(f"{where}: not a bucket name")
    if not is_archive_key(key):
        return _skip(f"{where} is not a context archive")
    if _utf8_size(key) > MAX_KEY_BYTES:
        return _skip(f"{where}: not an object name (longer than {MAX_KEY_BYTES} bytes of UTF-8)")
    texts = _texts(version, etag, sequencer)
    if texts is None:
        return _skip(f"{where}: its version, etag or sequencer is not a text")
    request = BuildRequest(
        bucket=bucket, key=key, store=store, version=texts[0],
        etag=(texts[1] or "").strip('"') or None, size=_integer(size),
        sequencer=texts[2], event_time=parse_time(event_time),
        metadata=MappingProxyType({k.lower(): str(v) for k, v in (metadata or {}).items()
                                   if isinstance(k, str) and isinstance(v, str | int)}))
    return _Parsed(requests=(request,))


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (`Z` allowed) or epoch seconds, as an aware datetime; None if neither."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _skip(reason: str) -> _Parsed:
    return _Parsed(skipped=(reason,))


def _shown(value: Any) -> str:
    """`value` for a skip reason: a scalar quoted and cut short, anything else by its type."""
    if value is None or isinstance(value, str | int | float):
        return _cut(repr(value))
    return f"a JSON {'object' if isinstance(value, Mapping) else type(value).__name__}"


def _cut(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _object(parent: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The object `parent[name]`, or an empty one when it is missing or not an object."""
    child = parent.get(name)
    return child if isinstance(child, Mapping) else _EMPTY


def _utf8_size(text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate (JSON allows `\ud800`): no object has it
        return MAX_KEY_BYTES + 1


def _texts(*values: Any) -> tuple[str | None, ...] | None:
    """Text fields (None when absent or empty), or None when one is not a text or number."""
    texts: list[str | None] = []
    for value in values:
        if value is None or value == "" or value == "null":
            texts.append(None)
        elif isinstance(value, str | int) and not isinstance(value, bool):
            texts.append(str(value))
        else:
            return None
    return tuple(texts)


def _integer(value: Any) -> int | None:
    """A size: a non-negative integer, or a decimal text of one (GCS int64 fields)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _json_or_none(text: Any) -> Any:
    if isinstance(text, Mapping):
        return text
    if not isinstance(text, str | bytes):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting thousands deep
        return None


def _decoded_json(data: Any) -> Any:
    if not isinstance(data, str) or not data:
        return None
    try:
        return _json_or_none(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None
