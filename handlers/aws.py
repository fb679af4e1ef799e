"""AWS Lambda entry point: `handlers.aws.handler`.

Accepts S3 notifications directly, through SNS, through SQS (SNS inside SQS too) and as
EventBridge "Object Created" events (see `core.service.events`). Each upload in the event is
one build. For SQS batches the answer lists the messages to deliver again
(`batchItemFailures`; enable `ReportBatchItemFailures` on the event source mapping); for any
other event an infrastructure failure is raised after the other uploads were handled, so
Lambda retries the event and the finished uploads answer from their status objects.

Settings and service clients are made per invocation: a boto3 client costs milliseconds, a
build seconds. The one thing an execution environment keeps between warm invocations is the
RUN sandbox probe (0.1-0.6 s a build otherwise): `handler` is a `LambdaHandler`, made once
when Lambda imports this module (the cold start), and it holds the probe (`InstanceProbe`).

The runtime calls the handler in its main thread, so SIGTERM (sent before the execution
environment is shut down) is turned into `Terminated` while an invocation runs: the build
stops, its work directory is removed, a failed result (kind `terminated`) is recorded if time
allows, and `Terminated` leaves the handler (the runtime is going away anyway). The cloud
SDKs' loggers are held at INFO (`handlers.hold_wire_loggers`) from the cold start on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from core.cloud.sinks import open_sinks
from core.cloud.storage import open_store
from core.run import Prober
from core.service.events import Delivery, aws_deliveries
from core.service.runner import InstanceProbe, Invocation, Services, handle_request
from core.service.settings import ServiceConfig
from core.service.shutdown import stopping_on_sigterm
from handlers import hold_wire_loggers

log = logging.getLogger("handlers.aws")
hold_wire_loggers()


class LambdaHandler:
    """The Lambda handler, one per execution environment: it keeps the sandbox probe."""

    def __init__(self, prober: Prober | None = None) -> None:
        self.probe = InstanceProbe(prober)

    def __call__(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Handle one invocation (`context` needs `get_remaining_time_in_millis`)."""
        with stopping_on_sigterm():
            return _invoke(event, context, self.probe)


def _invoke(event: Mapping[str, Any], context: Any, probe: InstanceProbe) -> dict[str, Any]:
    deliveries = aws_deliveries(event)
    answer: dict[str, Any] = {"outcomes": []}
    batch = any(d.message_id is not None for d in deliveries)
    if batch:
        answer["batchItemFailures"] = []
    if not any(d.requests for d in deliveries):
        for delivery in deliveries:
            _log_skipped(delivery)
        return answer
    config = ServiceConfig.from_environ()
    services = Services(store=open_store("s3"), sinks=open_sinks(
        event_bus=config.event_bus, sns_topic_arn=config.sns_topic_arn,
        pubsub_topic=config.pubsub_topic), prober=probe.get(config))
    invocation = Invocation(
        remaining=lambda: float(context.get_remaining_time_in_millis()) / 1000.0,
        source=_source(context), read_secret=read_secret)
    first_error: Exception | None = None
    for delivery in deliveries:
        try:
            answer["outcomes"] += _handle(delivery, config, services, invocation)
        except Exception as exc:
            log.warning("delivery %s failed: %s", delivery.message_id or "(event)", exc)
            if delivery.message_id is None:
                first_error = first_error or exc
            else:
                answer["batchItemFailures"].append({"itemIdentifier": delivery.message_id})
    if first_error is not None:
        raise first_error
    return answer


handler = LambdaHandler()


def _log_skipped(delivery: Delivery) -> None:
    for reason in delivery.skipped:
        log.info("ignored: %s", reason)


def _handle(delivery: Delivery, config: ServiceConfig, services: Services,
            invocation: Invocation) -> list[str]:
    """Every upload of one delivery; the first infrastructure failure is raised after all
    of them were tried."""
    _log_skipped(delivery)
    outcomes: list[str] = []
    first_error: Exception | None = None
    for request in delivery.requests:
        try:
            outcome = handle_request(request, config=config, services=services,
                                     invocation=invocation)
        except Exception as exc:
            log.exception("%s: not handled", request.url)
            first_error = first_error or exc
        else:
            outcomes.append(str(outcome))
    if first_error is not None:
        raise first_error
    return outcomes


def _source(context: Any) -> str:
    name = getattr(context, "function_name", None) or os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    return f"bucketbuild/{name}" if name else "bucketbuild"


def read_secret(reference: str) -> str:
    """A `secretsmanager:ARN-or-name` secret's string value."""
    if not reference.startswith("secretsmanager:"):
        raise ValueError(f"{reference!r}: only secretsmanager: secrets can be read on AWS")
    import boto3

    client = boto3.client("secretsmanager")
    reply = client.get_secret_value(SecretId=reference.removeprefix("secretsmanager:"))
    return str(reply["SecretString"])
