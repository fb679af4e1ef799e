"""One upload, one build, one result: the function both cloud handlers call.

claim the status object -> download the archive (the announced version) and read its settings
-> `started` event -> `run_build` in a private workspace -> `<key>.log` next to the archive ->
final status object + `succeeded`/`failed` event.

A build that fails for any reason of its own (bad Dockerfile, failing RUN, disallowed
destination, corrupt archive, deadline) ends as a `failed` result and is not retried.
`handle_request` raises only for infrastructure failures — the bucket, the sinks, a secret —
after giving its claim up, so the platform's retry can take over.

Two things outlive a build in a warm instance, both on purpose: the RUN sandbox probe
(`Services.prober`, held by the handler object made at cold start, see `InstanceProbe`) and
the base layer cache (`BUCKETBUILD_BASE_CACHE`, by default `WORK_ROOT/base-cache`, outside
the per-build workspace): blobs named by digest, verified when read, bounded by a budget.

Builds may run in one process at once (threads of one server): nothing here changes
process-wide state. Each build's registry credentials (docker config directory), helper
environment (HOME, TMPDIR, DOCKER_CONFIG, PATH) and tools directory reach the engine in its
options and its prober, and its log capture follows the build's own context (threads the
engine starts for the build included).

SIGTERM (`core.service.shutdown.Terminated`, raised where the handler could install a
signal handler) unwinds the build, which removes its work dir; the failed result (kind
`terminated`) and the log are recorded if the platform leaves the time, the claim is given
up if it fails earlier, and `Terminated` is raised again.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from core.build.options import BuildOptions
from core.build.pipeline import run_build
from core.cloud.sinks import EventPublisher, publish_all
from core.cloud.storage import ObjectStore
from core.errors import BuildError, ContextError, DeadlineError
from core.run import Prober
from core.service.archive import check_dockerfile, scan_archive
from core.service.buildlog import BuildLog, LogCapture
from core.service.claim import Decision, StatusObject, build_id_for
from core.service.events import LOG_SUFFIX, BuildRequest, parse_time
from core.service.overrides import (
    Overrides,
    Placement,
    build_options,
    from_archive_json,
    from_metadata,
)
from core.service.result import (
    FAILED,
    Attempt,
    Event,
    Failure,
    Recorded,
    failed_event,
    started_event,
    succeeded_event,
)
from core.service.settings import ServiceConfig
from core.service.shutdown import Terminated, TerminatedError
from core.service.workspace import (
    SecretReader,
    Workspace,
    docker_config_dir,
    helper_environment,
)

log = logging.getLogger(__name__)

#: how much longer than the invocation can last a claim stays valid
CLAIM_SLACK = timedelta(seconds=120)
LOG_CONTENT_TYPE = "text/plain; charset=utf-8"


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REPLAYED = "replayed"  # built before: the recorded result was sent again
    BUSY = "busy"  # another attempt is building it now
    STALE = "stale"  # a newer upload of the key was recorded already
    SUPERSEDED = "superseded"  # the object changed or went away before it could be built


@dataclass(frozen=True)
class Invocation:
    """What the platform says about this call."""

    remaining: Callable[[], float]  # seconds until the platform ends the invocation
    source: str = "bucketbuild"  # CloudEvent source
    read_secret: SecretReader | None = None


@dataclass(frozen=True)
class Services:
    """What builds talk to. The handlers open the store and sinks per invocation; `prober` is
    the function instance's own (`InstanceProbe`), so that warm invocations reuse its RUN
    sandbox probe instead of probing again (None: a fresh one per build)."""

    store: ObjectStore
    sinks: tuple[EventPublisher, ...] = ()
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    prober: Prober | None = None


class InstanceProbe:
    """The RUN sandbox probe a function instance keeps between builds: made for the first
    build, with the tools directory its settings name (`BUCKETBUILD_TOOLS_DIR`)."""

    def __init__(self, prober: Prober | None = None) -> None:
        self._prober = prober
        self._lock = threading.Lock()  # two first builds at once make one prober

    def get(self, config: ServiceConfig) -> Prober:
        with self._lock:
            if self._prober is None:
                self._prober = Prober(tools_dir=config.tools_dir)
            return self._prober


@dataclass(frozen=True)
class _Run:
    """Everything one attempt needs, passed along as one value."""

    attempt: Attempt
    config: ServiceConfig
    services: Services
    invocation: Invocation
    status: StatusObject
    started: Event  # the `building` status / started event of this attempt


def handle_request(request: BuildRequest, *, config: ServiceConfig, services: Services,
                   invocation: Invocation) -> Outcome:
    """Build `request` unless it was built, is being built or is stale; see the module doc."""
    current = complete_request(request, services.store)
    if current is None:
        log.info("%s changed or went away since the event; skipping it", request.url)
        return Outcome.SUPERSEDED
    run = _start(current, config=config, services=services, invocation=invocation)
    claimed = run.status.claim(current, build_id=run.attempt.build_id, started=run.started,
                               now=services.clock())
    if claimed.decision is not Decision.BUILD:
        return _not_building(claimed.decision, claimed.recorded, run)
    log.info("building %s as %s", current.url, run.attempt.build_id)
    try:
        final, stopped = _attempt(run)
        run.status.finish(final, claim=run.attempt.claim)
    except BaseException:  # Terminated too: the platform's retry can take over at once
        _release(run)
        raise
    publish_all(services.sinks, final)
    if stopped is not None:
        raise stopped
    return Outcome.FAILED if final["type"] == FAILED else Outcome.SUCCEEDED


def complete_request(request: BuildRequest, store: ObjectStore) -> BuildRequest | None:
    """`request` with the version filled in when the event had none (S3 records do not always
    carry it); None when the object is gone or no longer the one the event announced."""
    if request.version is not None:
        return request
    info = store.find(request.bucket, request.key)
    if info is None or (request.etag is not None and info.etag != request.etag):
        return None
    return replace(request, version=info.version, etag=info.etag, size=info.size)


def _start(request: BuildRequest, *, config: ServiceConfig, services: Services,
           invocation: Invocation) -> _Run:
    now = services.clock()
    build_id = build_id_for(request)
    attempt = Attempt(build_id=build_id, claim=uuid.uuid4().hex, request=request,
                      source=invocation.source, log_url=request.url + LOG_SUFFIX,
                      started_at=now)
    lifetime = timedelta(seconds=max(invocation.remaining(), 0.0)) + CLAIM_SLACK
    started = started_event(attempt, expires_at=now + lifetime)
    status = StatusObject(services.store, request.bucket, request.key)
    return _Run(attempt, config, services, invocation, status, started)


def _not_building(decision: Decision, recorded: Recorded | None, run: _Run) -> Outcome:
    url = run.attempt.request.url
    if decision is Decision.REPLAY and recorded is not None:
        log.info("%s was built already (%s); sending the recorded result again", url,
                 recorded.state)
        publish_all(run.services.sinks, dict(recorded.event))
        return Outcome.REPLAYED
    if decision is Decision.BUSY:
        log.info("%s is being built by another attempt; leaving it alone", url)
        return Outcome.BUSY
    log.info("%s: a newer upload of the key was recorded; dropping this event", url)
    return Outcome.STALE


def _release(run: _Run) -> None:
    """Give the claim up (expire it now) so that the platform's retry can take over."""
    expired = dict(run.started)
    expired["data"] = {**run.started["data"], "expires_at": _iso(run.services.clock())}
    try:
        run.status.replace(expired, expected=run.attempt.claim)
    except Exception as exc:  # the store is what failed, most likely: the claim then expires
        log.warning("could not release the claim on %s: %s", run.status.url, exc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _attempt(run: _Run) -> tuple[Event, Terminated | None]:
    """Build in a fresh workspace; upload the log; the final event, and the `Terminated`
    that stopped the build, if one did. Removes the workspace."""
    workspace = Workspace.create(run.config.work_root, run.attempt.build_id)
    try:
        build_log = BuildLog(workspace.log_path)
        try:
            with LogCapture(build_log):
                final, stopped = _build(run, workspace, build_log)
        finally:
            build_log.close()
        request = run.attempt.request
        run.services.store.put_file(request.bucket, request.key + LOG_SUFFIX,
                                    workspace.log_path, content_type=LOG_CONTENT_TYPE)
        return final, stopped
    finally:
        workspace.remove()


def _build(run: _Run, workspace: Workspace,
           build_log: BuildLog) -> tuple[Event, Terminated | None]:
    deadline = time.monotonic() + run.invocation.remaining() - run.config.timeout_margin
    try:
        options = _prepare(run, workspace, deadline)
    except BuildError as exc:
        if isinstance(exc, ContextError) and exc.retryable:
            raise  # the bucket, not the upload: let the platform retry
        return _failed(run, exc, build_log, destinations=()), None
    destinations = options.output.destinations
    started = started_event(run.attempt, destinations=destinations,
                            expires_at=_expiry(run.started))
    publish_all(run.services.sinks, started)
    options = _with_credentials(options, run, workspace)  # a failing secret read is raised
    prober = run.services.prober or Prober(tools_dir=run.config.tools_dir)
    try:
        result = run_build(options, events=build_log, prober=prober)
    except Exception as exc:
        return _failed(run, exc, build_log, destinations=destinations), None
    except Terminated as stop:  # the work dir is gone; record the failure if time allows
        return _failed(run, TerminatedError(str(stop)), build_log,
                       destinations=destinations), stop
    build_log.write(f"built {result.digest}")
    return succeeded_event(run.attempt, result, finished_at=run.services.clock()), None


def _prepare(run: _Run, workspace: Workspace, deadline: float) -> BuildOptions:
    """Download the announced version, read its settings, and resolve the build options."""
    if deadline <= time.monotonic():
        raise DeadlineError(f"too little time left to build (BUCKETBUILD_TIMEOUT_MARGIN is "
                            f"{run.config.timeout_margin:g}s)")
    request = run.attempt.request
    info = run.services.store.download(request.bucket, request.key, workspace.archive,
                                       version=request.version,
                                       max_bytes=run.config.max_context_bytes)
    scan = scan_archive(workspace.archive)
    archive = from_archive_json(scan.settings) if scan.settings is not None else Overrides()
    metadata = from_metadata(info.metadata or request.metadata)
    placement = Placement(context=f"tar://{workspace.archive}", work_dir=workspace.build,
                          deadline=deadline, build_id=run.attempt.build_id)
    options = build_options(request, config=run.config, metadata=metadata,
                            archive=archive, placement=placement)
    check_dockerfile(scan, sub_path=options.context_sub_path, dockerfile=options.dockerfile)
    return options


def _with_credentials(options: BuildOptions, run: _Run, workspace: Workspace) -> BuildOptions:
    """`options` reading this build's docker config, its credential helpers running with the
    workspace's HOME, TMPDIR and DOCKER_CONFIG and the tools directory first on PATH."""
    docker_config = docker_config_dir(run.config.docker_config, workspace,
                                      read_secret=run.invocation.read_secret)
    env = helper_environment(workspace, docker_config=docker_config,
                             tools_dir=run.config.tools_dir, environ=os.environ)
    return replace(options, registry=replace(options.registry, docker_config=docker_config,
                                             helper_env=env))


def _expiry(started: Event) -> datetime:
    moment = parse_time(started["data"].get("expires_at"))
    assert moment is not None
    return moment


def _failed(run: _Run, exc: BaseException, build_log: BuildLog, *,
            destinations: tuple[str, ...]) -> Event:
    if isinstance(exc, BuildError):
        log.info("build %s failed: %s: %s", run.attempt.build_id, exc.kind, exc)
    else:
        log.exception("build %s failed unexpectedly", run.attempt.build_id)
    failure = Failure.from_exception(exc, step=build_log.current_step)
    build_log.write(f"failed ({failure.kind}): {failure.message}")
    return failed_event(run.attempt, failure, finished_at=run.services.clock(),
                        destinations=destinations, steps=build_log.timings)
