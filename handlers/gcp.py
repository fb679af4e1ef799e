"""Google Cloud Functions (gen2) / Cloud Run entry point: `on_finalize(cloud_event)`.

Registered with functions-framework for CloudEvents: the Eventarc storage trigger
(`google.cloud.storage.object.v1.finalized`, binary or structured mode) and Pub/Sub
`messagePublished` events that carry a storage notification. GCP tells a function nothing
about its deadline, so the time left is `BUCKETBUILD_TIMEOUT` (the function's configured
timeout) minus the time since the event arrived. Infrastructure failures are raised: the
framework answers 500 and Eventarc delivers the event again (when retries are enabled).
"""

from __future__ import annotations

import base64
import logging
import os
import time
from typing import Any

import functions_framework

from core.cloud.sinks import open_sinks
from core.cloud.storage import open_store
from core.service.events import gcs_delivery
from core.service.runner import Invocation, Services, handle_request
from core.service.settings import ServiceConfig

log = logging.getLogger("handlers.gcp")

SECRET_MANAGER = "https://secretmanager.googleapis.com/v1"


@functions_framework.cloud_event
def on_finalize(cloud_event: Any) -> None:
    """Build the uploaded context archive the event announces (others are ignored)."""
    arrived = time.monotonic()
    config = ServiceConfig.from_environ()
    delivery = gcs_delivery(str(cloud_event["type"]), cloud_event.data,
                            event_time=cloud_event.get("time"))
    for reason in delivery.skipped:
        log.info("ignored: %s", reason)
    if not delivery.requests:
        return
    services = Services(store=open_store("gs"), sinks=open_sinks(
        event_bus=config.event_bus, sns_topic_arn=config.sns_topic_arn,
        pubsub_topic=config.pubsub_topic))
    invocation = Invocation(remaining=lambda: config.timeout - (time.monotonic() - arrived),
                            source=_source(), read_secret=read_secret)
    for request in delivery.requests:
        outcome = handle_request(request, config=config, services=services,
                                 invocation=invocation)
        log.info("%s: %s", request.url, outcome)


def _source() -> str:
    name = os.environ.get("K_SERVICE") or os.environ.get("FUNCTION_TARGET")
    return f"bucketbuild/{name}" if name else "bucketbuild"


def read_secret(reference: str) -> str:
    """An `sm://projects/P/secrets/S[/versions/V]` secret's payload (Secret Manager REST)."""
    if not reference.startswith("sm://"):
        raise ValueError(f"{reference!r}: only sm:// secrets can be read on Google Cloud")
    import requests

    from core.cloud.registry_auth import google_default_token

    name = reference.removeprefix("sm://")
    if "/versions/" not in name:
        name += "/versions/latest"
    token, _ = google_default_token()
    reply = requests.get(f"{SECRET_MANAGER}/{name}:access", timeout=30,
                         headers={"Authorization": f"Bearer {token}"})
    reply.raise_for_status()
    return base64.b64decode(reply.json()["payload"]["data"]).decode("utf-8")
