"""Property tests for upload-event normalisation (`core.service.events`).

1. Totality: for any JSON-like value (random trees whose keys are often the real field names)
   and for mutations of valid events at every envelope level (a key removed, a value replaced
   by another type, a JSON string garbled, nesting deeper than allowed), `aws_deliveries` and
   `gcs_delivery` return deliveries whose requests are well formed and whose skip reasons are
   short texts; they raise nothing (a `BuildError` with a message would be the only excuse).
2. Round trip: an archive key (spaces, `+`, `%`, unicode) encoded the way S3 writes it in a
   notification, in every AWS envelope, and as Google sends it, comes back exactly.
More examples: `BUCKETBUILD_FUZZ_EXAMPLES=5000` (these are cheap: five times that many run).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import BuildError
from core.service.events import (
    ARCHIVE_SUFFIXES,
    GCS_FINALIZED,
    PUBSUB_PUBLISHED,
    BuildRequest,
    Delivery,
    aws_deliveries,
    gcs_delivery,
    is_archive_key,
)
from tests.service.test_events import eventbridge, s3_event, s3_record, sns_record, sqs_record

EXAMPLES = 5 * int(os.environ.get("BUCKETBUILD_FUZZ_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: longest skip reason a delivery may carry (reasons go to logs)
MAX_REASON = 400
_BUCKET = re.compile(r"[^/\s\x00-\x1f\x7f]{1,255}")  # fits `s3://BUCKET/KEY`

FIELDS = ("Records", "eventSource", "EventSource", "eventName", "s3", "bucket", "name",
          "object", "key", "size", "eTag", "etag", "versionId", "version-id", "sequencer",
          "eventTime", "Sns", "Message", "Type", "body", "messageId", "detail-type", "source",
          "detail", "time", "Event", "message", "attributes", "data", "eventType", "bucketId",
          "objectId", "objectGeneration", "generation", "md5Hash", "metadata", "updated")
VALUES = ("aws:s3", "aws:sqs", "aws:sns", "ObjectCreated:Put", "Notification", "Object Created",
          "aws.s3", "OBJECT_FINALIZE", "s3:TestEvent", "a.tar", "a+b%20c.tar.gz", "b",
          "2024-05-01T10:00:00Z", "")

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.sampled_from(VALUES), st.integers(min_value=10**20, max_value=10**40),
    st.sampled_from([float("inf"), -1e300, 1e300, -(2**63)]))
json_like = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), children,
                        max_size=5),
        children.map(json.dumps)),  # a JSON document inside a string, as SNS and SQS nest
    max_leaves=25)


# --- checks ------------------------------------------------------------------------------------


def well_formed(request: BuildRequest) -> None:
    assert request.store in ("s3", "gs")
    assert isinstance(request.bucket, str) and _BUCKET.fullmatch(request.bucket)
    assert len(request.bucket.encode("utf-8")) <= 255
    assert isinstance(request.key, str) and is_archive_key(request.key)
    assert len(request.key.encode("utf-8")) <= 1024
    for text in (request.version, request.etag, request.sequencer):
        assert text is None or (isinstance(text, str) and text)
    assert request.size is None or (type(request.size) is int and request.size >= 0)
    assert request.event_time is None or (isinstance(request.event_time, datetime)
                                          and request.event_time.tzinfo is not None)
    assert isinstance(request.metadata, Mapping)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in request.metadata.items())
    assert request.url == f"{request.store}://{request.bucket}/{request.key}"


def checked(deliveries: Callable[[], list[Delivery]]) -> list[BuildRequest]:
    """The requests of `deliveries()`, after checking the totality property on them."""
    try:
        made = deliveries()
    except BuildError as error:  # the only excuse, and it must say something
        assert str(error)
        return []
    requests = []
    for delivery in made:
        assert delivery.message_id is None or isinstance(delivery.message_id, str)
        for reason in delivery.skipped:
            assert isinstance(reason, str) and 0 < len(reason) <= MAX_REASON, reason[:500]
        for request in delivery.requests:
            well_formed(request)
            requests.append(request)
    return requests


def aws(event: Any) -> list[BuildRequest]:
    return checked(lambda: aws_deliveries(event))


def gcs(event_type: Any, data: Any) -> list[BuildRequest]:
    return checked(lambda: [gcs_delivery(event_type, data, event_time=None)])


# --- valid events and their mutations ---------------------------------------------------------

key_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)
archive_keys = st.tuples(key_text, st.sampled_from(ARCHIVE_SUFFIXES)).map("".join)


def s3_encodings(key: str) -> list[str]:
    """The ways a notification may spell `key`: form encoding with and without `/` kept."""
    return [quote_plus(key), quote_plus(key, safe="/"), quote(key, safe="/").replace("%20", "+")]


Wrap = Callable[[Any], Any]
AWS_ENVELOPES: dict[str, Wrap] = {
    "direct": lambda e: e,
    "sns": lambda e: s3_event(sns_record(e)),
    "sqs": lambda e: {"Records": [sqs_record(e)]},
    "sns-in-sqs": lambda e: {"Records": [sqs_record(
        {"Type": "Notification", "MessageId": "x", "Message": json.dumps(e)})]},
    "sns-record-in-sqs": lambda e: {"Records": [sqs_record(s3_event(sns_record(e)))]},
}


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """`value` with zero to three random changes somewhere in its tree."""
    for _ in range(draw(st.integers(0, 3))):
        paths = list(_paths(value, ()))
        path = draw(st.sampled_from(paths))
        value = _change(value, path, draw(st.sampled_from(("delete", "replace", "text"))),
                        draw(json_like))
    return value


def _paths(value: Any, here: tuple[Any, ...]) -> Any:
    yield here
    if isinstance(value, dict):
        for name, child in value.items():
            yield from _paths(child, (*here, name))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*here, index))


def _change(value: Any, path: tuple[Any, ...], how: str, other: Any) -> Any:
    if not path:
        return json.dumps(value)[:-1] if how == "text" else other
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    if not rest and how == "delete":
        del copy[head]
    else:
        copy[head] = _change(copy[head], rest, how, other)
    return copy


@st.composite
def mutated_aws_events(draw: st.DrawFn) -> Any:
    key = draw(st.sampled_from(s3_encodings(draw(archive_keys))))
    inner = draw(st.sampled_from([s3_event(s3_record(key)), eventbridge(key)]))
    inner = draw(mutated(inner))
    wrap = AWS_ENVELOPES[draw(st.sampled_from(sorted(AWS_ENVELOPES)))]
    return draw(mutated(wrap(inner)))


GCS_OBJECT = {"bucket": "ctx-bucket", "name": "a.tar", "generation": "17", "size": "2048",
              "md5Hash": "XUFAKrxLKna5cZ2REBfFkg==", "updated": "2024-05-01T10:00:00.123Z",
              "metadata": {"BucketBuild-Target": "final"}}


def pubsub(resource: Any, *, attributes_only: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {"attributes": {
        "bucketId": "ctx-bucket", "objectId": "a.tar", "objectGeneration": "17",
        "eventType": "OBJECT_FINALIZE", "eventTime": "2024-05-01T10:00:00Z"}}
    if isinstance(resource, Mapping):
        message["attributes"]["objectId"] = resource.get("name")
    if not attributes_only:
        message["data"] = base64.b64encode(json.dumps(resource).encode()).decode()
    return {"message": message, "subscription": "projects/p/subscriptions/s"}


# --- properties --------------------------------------------------------------------------------


@SETTINGS
@given(json_like)
def test_any_json_value_is_an_aws_event_or_skipped(event: Any) -> None:
    aws(event)
    aws({"Records": [event]})
    aws({"Records": [sqs_record(json.dumps(event))]})


@SETTINGS
@given(st.one_of(st.sampled_from([GCS_FINALIZED, PUBSUB_PUBLISHED]), json_like), json_like)
def test_any_json_value_is_a_gcs_event_or_skipped(event_type: Any, data: Any) -> None:
    gcs(event_type, data)
    gcs(PUBSUB_PUBLISHED, {"message": {"attributes": {"eventType": "OBJECT_FINALIZE"},
                                       "data": base64.b64encode(json.dumps(data).encode())
                                       .decode()}})


@SETTINGS
@given(mutated_aws_events())
def test_mutated_aws_events(event: Any) -> None:
    aws(event)


@SETTINGS
@given(st.data())
def test_mutated_gcs_events(data: st.DataObject) -> None:
    resource = data.draw(mutated({**GCS_OBJECT, "name": data.draw(archive_keys)}))
    gcs(GCS_FINALIZED, resource)
    gcs(PUBSUB_PUBLISHED, data.draw(mutated(pubsub(resource))))
    gcs(PUBSUB_PUBLISHED, data.draw(mutated(pubsub(resource, attributes_only=True))))


@SETTINGS
@given(archive_keys, st.data())
def test_s3_keys_round_trip_through_every_aws_envelope(key: str, data: st.DataObject) -> None:
    encoded = data.draw(st.sampled_from(s3_encodings(key)))
    for name, wrap in AWS_ENVELOPES.items():
        [request] = aws(wrap(s3_event(s3_record(encoded, bucket="uploads"))))
        assert (request.bucket, request.key, request.store) == ("uploads", key, "s3"), name
    for wrap in (AWS_ENVELOPES["direct"], AWS_ENVELOPES["sqs"], AWS_ENVELOPES["sns-in-sqs"]):
        [request] = aws(wrap(eventbridge(key)))  # EventBridge does not encode keys
        assert (request.bucket, request.key) == ("uploads", key)


@SETTINGS
@given(archive_keys)
def test_gcs_names_round_trip(key: str) -> None:
    resource = {**GCS_OBJECT, "name": key}
    for event_type, data in ((GCS_FINALIZED, resource), (PUBSUB_PUBLISHED, pubsub(resource)),
                             (PUBSUB_PUBLISHED, pubsub(resource, attributes_only=True))):
        [request] = gcs(event_type, data)
        assert (request.bucket, request.key, request.store) == ("ctx-bucket", key, "gs")


# --- shapes random trees rarely reach ----------------------------------------------------------

HUGE = "x" * (4 << 20)


def nested_sns(depth: int) -> Any:
    event: Any = s3_event(s3_record("a.tar"))
    for _ in range(depth):
        event = {"Type": "Notification", "Message": json.dumps(event)}
    return {"Records": [sqs_record(event)]}


@pytest.mark.parametrize(("event", "built"), [
    pytest.param(s3_event(s3_record(HUGE + ".tar")), False, id="huge-key"),
    pytest.param(s3_event(s3_record("a.tar", name=HUGE)), False, id="huge-event-name"),
    pytest.param(s3_event({**s3_record("a.tar"), "eventSource": HUGE}), False, id="huge-source"),
    pytest.param(s3_event(s3_record("a.tar", bucket=HUGE)), False, id="huge-bucket"),
    pytest.param({"Records": [sqs_record("[" * 200_000 + "]" * 200_000)]}, False,
                 id="json-nested-200000-deep"),
    pytest.param(s3_event(s3_record("%ff%fe.tar")), False, id="key-not-utf8"),
    pytest.param(s3_event(s3_record("%ED%A0%80.tar")), False, id="key-encoded-surrogate"),
    pytest.param(eventbridge("\ud800.tar"), False, id="key-lone-surrogate"),
    pytest.param(s3_event(s3_record("a.tar", bucket="up/loads")), False, id="bucket-slash"),
    pytest.param(s3_event(s3_record("a.tar", bucket="up\nloads")), False, id="bucket-newline"),
    pytest.param(eventbridge("a.tar") | {"detail": {"bucket": {"name": "\udc80"},
                                                    "object": {"key": "a.tar"}}}, False,
                 id="bucket-lone-surrogate"),
    pytest.param(s3_event({**s3_record("a.tar"), "s3": ["not", "an", "object"]}), False,
                 id="s3-list"),
    pytest.param(s3_event({"EventSource": "aws:sns", "Sns": "text"}), False, id="sns-text"),
    pytest.param({"Records": [sqs_record(s3_event(s3_record("a.tar"))), 7, None]}, True,
                 id="sqs-batch-with-garbage"),
    pytest.param(nested_sns(3), True, id="sns-nested-3"),
    pytest.param(nested_sns(8), False, id="sns-nested-8"),
    pytest.param(s3_event(s3_record("a%2Bb%25c%20d+e.tar")), True, id="percent-and-plus"),
])
def test_hostile_shapes(event: Any, built: bool) -> None:
    requests = aws(event)
    assert bool(requests) is built
    if built:
        assert all(r.key in ("a.tar", "a+b%c d e.tar") for r in requests)


@pytest.mark.parametrize("value", [None, 7, "text", [1, 2], True, 1.5])
def test_lambda_events_that_are_not_objects(value: Any) -> None:
    [delivery] = aws_deliveries(value)
    assert delivery.requests == () and delivery.skipped


@pytest.mark.parametrize(("size", "time", "expected"), [
    ("2048", "2024-05-01T10:00:00Z", 2048),
    (float("inf"), float("inf"), None),
    (-5, 1e300, None),
    ("1_000", 10**30, None),
    ("٣", "not a time", None),
    ({"a": 1}, ["2024"], None),
])
def test_odd_sizes_and_times_are_dropped(size: Any, time: Any, expected: int | None) -> None:
    event = s3_event(s3_record("a.tar"))
    event["Records"][0]["s3"]["object"]["size"] = size
    event["Records"][0]["eventTime"] = time
    [request] = aws(event)
    assert request.size == expected
    assert (request.event_time is not None) is (expected is not None)
