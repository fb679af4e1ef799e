"""Google Cloud Functions (gen2) / Cloud Run entry point: `on_finalize(cloud_event)`.

Registered with functions-framework for CloudEvents: the Eventarc storage trigger
(`google.cloud.storage.object.v1.finalized`, binary or structured mode) and Pub/Sub
`messagePublished` events that carry a storage notification. GCP tells a function nothing
about its deadline, so the time left is `BUCKETBUILD_TIMEOUT` (the function's configured
timeout) minus the time since the event arrived. Infrastructure failures are raised: the
framework answers 500 and Eventarc delivers the event again (when retries are enabled).

The framework wants a plain function as its target, so `on_finalize` hands each event to the
module's `GcpHandler`, made once when the framework imports this module (the instance's cold
start). It keeps the RUN sandbox probe between warm invocations; settings and clients are
made per event. The cloud SDKs' loggers are held at INFO (`handlers.hold_wire_loggers`).

SIGTERM is left alone here, on purpose. functions-framework serves through gunicorn: the
module is imported in the master process, the worker's main thread then installs gunicorn's
own SIGTERM handler (its graceful shutdown: stop accepting, wait for requests in flight), and
each event is handled in a request thread, where Python cannot deliver a signal as an
exception. Replacing gunicorn's handler would break its shutdown, and nothing can stop a
build in another thread from a signal handler. What happens instead: Cloud Run kills the
instance 10 s after SIGTERM; its `/tmp` (the work root) is memory that goes with it (a work
root on a volume is swept by the next build, `Workspace.create`); the status object's claim
expires at its `expires_at` and Eventarc's retry builds the upload again. A build that does
get a `Terminated` (a caller running the runner in its main thread) is recorded as failed by
the runner, as on Lambda.
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
from core.run import Prober
from core.service.events import gcs_delivery
from core.service.runner import InstanceProbe, Invocation, Services, handle_request
from core.service.settings import ServiceConfig
from handlers import hold_wire_loggers

log = logging.getLogger("handlers.gcp")
hold_wire_loggers()

SECRET_MANAGER = "https://secretmanager.googleapis.com/v1"


class GcpHandler:
    """The CloudEvent handler, one per instance (process): it keeps the sandbox probe."""

    def __init__(self, prober: Prober | None = None) -> None:
        self.probe = InstanceProbe(prober)

    def __call__(self, cloud_event: Any) -> None:
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
            pubsub_topic=config.pubsub_topic), prober=self.probe.get(config))
        invocation = Invocation(
            remaining=lambda: config.timeout - (time.monotonic() - arrived),
            source=_source(), read_secret=read_secret)
        for request in delivery.requests:
            outcome = handle_request(request, config=config, services=services,
                                     invocation=invocation)
            log.info("%s: %s", request.url, outcome)


_INSTANCE = GcpHandler()


@functions_framework.cloud_event
def on_finalize(cloud_event: Any) -> None:
    """Build the uploaded context archive the event announces (others are ignored)."""
    _INSTANCE(cloud_event)


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
