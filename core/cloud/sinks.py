"""Where completion events go: Amazon EventBridge, Amazon SNS and Google Pub/Sub.

Each sink publishes one CloudEvent (already cut to size by `core.service.result`) and raises
`SinkError` (retryable) when the service does not take it, so the function fails and the
platform delivers the upload again; the status object then makes the retry re-send the
recorded event instead of building again.
- EventBridge: `put_events` with source `bucketbuild`, detail-type = the event type, detail =
  the whole CloudEvent. boto3 is imported when the sink is made (`AWS_ENDPOINT_URL` honoured).
- SNS: `publish` of the CloudEvent JSON, with `type` as a message attribute for filters.
- Pub/Sub: the REST API (`POST {base}/v1/projects/P/topics/T:publish`) through requests, no
  gRPC: `base` is `http://$PUBSUB_EMULATOR_HOST` when set (no credentials), else Google's
  endpoint with an access token from the function's identity.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from core.errors import BuildError

log = logging.getLogger(__name__)

EVENT_SOURCE = "bucketbuild"
PUBSUB_ENDPOINT = "https://pubsub.googleapis.com"
CLOUDEVENTS_JSON = "application/cloudevents+json"
_TOPIC = re.compile(r"projects/(?P<project>[^/]+)/topics/(?P<topic>[^/]+)")

TokenSource = Callable[[], tuple[str, float]]


class SinkError(BuildError):
    """An event could not be delivered."""

    kind = "sink"
    retryable = True


class EventPublisher(Protocol):
    """Something completion events are sent to."""

    @property
    def name(self) -> str: ...

    def publish(self, event: Mapping[str, Any]) -> None: ...


def _json(event: Mapping[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


class EventBridgeSink:
    """`put_events` on one bus (`default` or a name/ARN)."""

    def __init__(self, bus: str, *, client: Any = None, source: str = EVENT_SOURCE) -> None:
        if client is None:
            import boto3

            client = boto3.client("events")
        self._client = client
        self._bus = bus
        self._source = source

    @property
    def name(self) -> str:
        return f"eventbridge:{self._bus}"

    def publish(self, event: Mapping[str, Any]) -> None:
        entry = {"Source": self._source, "DetailType": str(event.get("type", "")),
                 "Detail": _json(event), "EventBusName": self._bus}
        try:
            reply = self._client.put_events(Entries=[entry])
        except Exception as exc:  # botocore's errors: network, throttling, denied
            raise SinkError(f"{self.name}: put_events failed: {exc}") from exc
        if reply.get("FailedEntryCount"):
            failed = (reply.get("Entries") or [{}])[0]
            raise SinkError(f"{self.name}: event refused ({failed.get('ErrorCode')}: "
                            f"{failed.get('ErrorMessage')})")


class SnsSink:
    """`publish` to one SNS topic."""

    def __init__(self, topic_arn: str, *, client: Any = None) -> None:
        if client is None:
            import boto3

            region = topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else None
            client = boto3.client("sns", region_name=region or None)
        self._client = client
        self._topic = topic_arn

    @property
    def name(self) -> str:
        return f"sns:{self._topic}"

    def publish(self, event: Mapping[str, Any]) -> None:
        attributes = {"type": {"DataType": "String", "StringValue": str(event.get("type"))}}
        try:
            self._client.publish(TopicArn=self._topic, Message=_json(event),
                                 MessageAttributes=attributes)
        except Exception as exc:  # botocore's errors
            raise SinkError(f"{self.name}: publish failed: {exc}") from exc


class PubSubSink:
    """Publish to one Pub/Sub topic over REST (`projects/P/topics/T`)."""

    def __init__(self, topic: str, *, session: Any = None,
                 token_source: TokenSource | None = None, timeout: float = 30.0) -> None:
        import requests

        if not _TOPIC.fullmatch(topic):
            raise SinkError(f"Pub/Sub topic {topic!r} is not projects/PROJECT/topics/TOPIC")
        self._topic = topic
        self._session = session if session is not None else requests.Session()
        emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
        self._base = f"http://{emulator}" if emulator else PUBSUB_ENDPOINT
        self._token_source = None if emulator else (token_source or _google_token)
        self._token: tuple[str, float] | None = None
        self._timeout = timeout
        self._errors: tuple[type[BaseException], ...] = (requests.RequestException,)

    @property
    def name(self) -> str:
        return f"pubsub:{self._topic}"

    def publish(self, event: Mapping[str, Any]) -> None:
        data = base64.b64encode(_json(event).encode("utf-8")).decode("ascii")
        attributes = {"content-type": CLOUDEVENTS_JSON, "bucketbuild-type": str(event.get("type")),
                      "bucketbuild-id": str(event.get("id"))}
        body = {"messages": [{"data": data, "attributes": attributes}]}
        url = f"{self._base}/v1/{self._topic}:publish"
        try:
            reply = self._session.post(url, json=body, headers=self._headers(),
                                       timeout=self._timeout)
        except self._errors as exc:
            raise SinkError(f"{self.name}: publish failed: {exc}") from exc
        if reply.status_code != 200:
            raise SinkError(f"{self.name}: publish refused (HTTP {reply.status_code}: "
                            f"{reply.text[:300]})")

    def _headers(self) -> dict[str, str]:
        if self._token_source is None:
            return {}
        if self._token is None or self._token[1] - 60 < time.time():
            self._token = self._token_source()
        return {"Authorization": f"Bearer {self._token[0]}"}


def _google_token() -> tuple[str, float]:
    from core.cloud.registry_auth import google_default_token

    return google_default_token()


def pubsub_topic_path(topic: str, *, project: str | None) -> str:
    """`projects/P/topics/T` from a full path, or from a bare topic name and `project`."""
    if topic.startswith("projects/"):
        return topic
    if not project:
        raise SinkError(f"Pub/Sub topic {topic!r} needs a project (GOOGLE_CLOUD_PROJECT) or "
                        "the form projects/PROJECT/topics/TOPIC")
    return f"projects/{project}/topics/{topic}"


def open_sinks(*, event_bus: str | None = None, sns_topic_arn: str | None = None,
               pubsub_topic: str | None = None,
               environ: Mapping[str, str] | None = None) -> tuple[EventPublisher, ...]:
    """The sinks that are configured, in the order EventBridge, SNS, Pub/Sub."""
    env = os.environ if environ is None else environ
    sinks: list[EventPublisher] = []
    if event_bus:
        sinks.append(EventBridgeSink(event_bus))
    if sns_topic_arn:
        sinks.append(SnsSink(sns_topic_arn))
    if pubsub_topic:
        project = env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCP_PROJECT")
        sinks.append(PubSubSink(pubsub_topic_path(pubsub_topic, project=project)))
    return tuple(sinks)


def publish_all(sinks: tuple[EventPublisher, ...], event: Mapping[str, Any]) -> None:
    """Send `event` to every sink; try them all, then raise the first failure."""
    failures: list[SinkError] = []
    for sink in sinks:
        try:
            sink.publish(event)
        except SinkError as exc:
            log.error("%s", exc)
            failures.append(exc)
        else:
            log.info("sent %s %s to %s", event.get("type"), event.get("id"), sink.name)
    if failures:
        raise failures[0]
