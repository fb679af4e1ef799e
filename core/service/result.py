"""Completion events: CloudEvents 1.0 in JSON, the same document as the status object.

`io.bucketbuild.build.started` (state `building`, with the claim's expiry), `.succeeded` and
`.failed`. The subject is the image reference; the data carries the build id, the source
object, destinations, digest, sizes, layers, per-step timings, cache hits, the sandbox, the
error (class = `BuildError.kind`, message, Dockerfile line and step) and the log link.
Encoded events stay under `MAX_EVENT_BYTES` (EventBridge and SNS take 256 KB): long lists and
messages are cut, and `data.truncated` says so. Text shaped like a credential (an
`Authorization` value, a bearer token, a JWT, a token or password field) is redacted from the
data (the build itself already took its known secrets out of errors and results). Pure: no I/O.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.build.result import BuildResult, StepTiming
from core.errors import BuildError, DockerfileError, StepError
from core.redaction import Redactor
from core.service.events import BuildRequest, parse_time

TYPE_PREFIX = "io.bucketbuild.build."
STARTED, SUCCEEDED, FAILED = (TYPE_PREFIX + s for s in ("started", "succeeded", "failed"))
STATE_BUILDING, STATE_SUCCEEDED, STATE_FAILED = "building", "succeeded", "failed"
FINAL_STATES = frozenset({STATE_SUCCEEDED, STATE_FAILED})
MAX_EVENT_BYTES = 250 * 1024  # leaves room for the EventBridge / SNS envelope
CONTENT_TYPE = "application/json"

Event = dict[str, Any]
_SHAPES = Redactor()  # no known values: credential-shaped text only


@dataclass(frozen=True)
class Attempt:
    """One attempt at building one upload: what every event of it shares."""

    build_id: str
    claim: str  # random token naming this attempt's claim
    request: BuildRequest
    source: str  # the CloudEvent source, e.g. `bucketbuild/<function name>`
    log_url: str
    started_at: datetime


@dataclass(frozen=True)
class StepPosition:
    """The step that was running when a build stopped."""

    number: int
    instruction: str
    line: int


@dataclass(frozen=True)
class Failure:
    kind: str  # BuildError.kind ("timeout", "step", "dockerfile", ...) or "internal"
    message: str
    file: str | None = None
    line: int | None = None
    step: int | None = None
    instruction: str | None = None
    exit_code: int | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, *, step: StepPosition | None) -> Failure:
        kind = exc.kind if isinstance(exc, BuildError) else "internal"
        message = str(exc) if isinstance(exc, BuildError) else f"{type(exc).__name__}: {exc}"
        file = line = None
        if isinstance(exc, DockerfileError):
            file, line = exc.file, exc.line or None
        elif isinstance(exc, StepError) and exc.span is not None:
            file, line = exc.span.file, exc.span.start_line
        if line is None and step is not None:
            line = step.line or None
        return cls(kind=kind, message=message, file=file, line=line,
                   step=step.number if step else None,
                   instruction=(exc.instruction if isinstance(exc, StepError) and
                                exc.instruction else (step.instruction if step else None)),
                   exit_code=exc.exit_code if isinstance(exc, StepError) else None)


def started_event(attempt: Attempt, *, expires_at: datetime,
                  destinations: tuple[str, ...] = ()) -> Event:
    data = _common(attempt, STATE_BUILDING, destinations)
    data["expires_at"] = _time(expires_at)
    return _envelope(attempt, STARTED, data, subject=_subject(destinations), suffix="started")


def succeeded_event(attempt: Attempt, result: BuildResult, *, finished_at: datetime) -> Event:
    data = _common(attempt, STATE_SUCCEEDED, result.destinations)
    data.update({
        "digest": result.digest,
        "media_type": result.media_type,
        "config_digest": result.config_digest,
        "references": [f"{d.split('@')[0]}@{result.digest}" for d in result.destinations],
        "image_size": result.image_size,
        "layers": [{"digest": layer.digest, "size": layer.size, "media_type": layer.media_type,
                    "created_by": layer.created_by} for layer in result.layers],
        "steps": [_step(step) for step in result.steps],
        "cache_hits": sum(1 for step in result.steps if step.cached),
        "sandbox": result.sandbox,
        "warnings": list(result.warnings),
    })
    _finish(data, attempt, finished_at)
    return _envelope(attempt, SUCCEEDED, data, subject=_subject(result.destinations),
                     suffix="succeeded")


def failed_event(attempt: Attempt, failure: Failure, *, finished_at: datetime,
                 destinations: tuple[str, ...] = (),
                 steps: tuple[StepTiming, ...] = ()) -> Event:
    data = _common(attempt, STATE_FAILED, destinations)
    data["error"] = {"class": failure.kind, "message": failure.message, "file": failure.file,
                     "line": failure.line, "step": failure.step,
                     "instruction": failure.instruction, "exit_code": failure.exit_code}
    data["steps"] = [_step(step) for step in steps]
    data["cache_hits"] = sum(1 for step in steps if step.cached)
    _finish(data, attempt, finished_at)
    return _envelope(attempt, FAILED, data, subject=_subject(destinations), suffix="failed")


def _common(attempt: Attempt, state: str, destinations: tuple[str, ...]) -> Event:
    request = attempt.request
    return {
        "build_id": attempt.build_id,
        "state": state,
        "claim": attempt.claim,
        "source": {"url": request.url, "store": request.store, "bucket": request.bucket,
                   "key": request.key, "version": request.version, "etag": request.etag,
                   "size": request.size, "sequencer": request.sequencer,
                   "event_time": _time(request.event_time) if request.event_time else None},
        "destinations": list(destinations),
        "log": attempt.log_url,
        "started_at": _time(attempt.started_at),
    }


def _finish(data: Event, attempt: Attempt, finished_at: datetime) -> None:
    data["finished_at"] = _time(finished_at)
    data["duration_seconds"] = round((finished_at - attempt.started_at).total_seconds(), 3)


def _envelope(attempt: Attempt, event_type: str, data: Event, *, subject: str | None,
              suffix: str) -> Event:
    event: Event = {
        "specversion": "1.0",
        "type": event_type,
        "source": attempt.source,
        "id": f"{attempt.build_id}-{attempt.claim[:8]}-{suffix}",
        "time": _time(datetime.now(UTC)),
        "datacontenttype": CONTENT_TYPE,
    }
    if subject:
        event["subject"] = subject
    event["data"] = _SHAPES.scrub(data)
    return event


def _subject(destinations: tuple[str, ...]) -> str | None:
    return destinations[0] if destinations else None


def _step(step: StepTiming) -> Event:
    return {"number": step.number, "instruction": step.instruction, "line": step.line,
            "seconds": round(step.seconds, 3), "cached": step.cached}


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(event: Mapping[str, Any], *, limit: int = MAX_EVENT_BYTES) -> bytes:
    """The event as compact UTF-8 JSON, cut down to fit `limit` bytes."""
    return _dumps(fit(event, limit=limit))


def _dumps(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def fit(event: Mapping[str, Any], *, limit: int = MAX_EVENT_BYTES) -> Event:
    """`event`, or a copy with long parts shortened so that it encodes within `limit` bytes."""
    if len(_dumps(event)) <= limit:
        return dict(event)
    smaller = copy.deepcopy(dict(event))
    data = smaller.setdefault("data", {})
    data["truncated"] = True
    for keep in (50, 10, 0):
        for cut in _CUTS:
            cut(data, keep)
            if len(_dumps(smaller)) <= limit:
                return smaller
    return _skeleton(smaller)


def _cut_list(name: str) -> Callable[[Event, int], None]:
    def cut(data: Event, keep: int) -> None:
        items = data.get(name)
        if isinstance(items, list) and len(items) > 2 * keep:
            data.setdefault(f"{name}_total", len(items))
            data[name] = items[:keep] + items[len(items) - keep:] if keep else []

    return cut


def _cut_message(data: Event, keep: int) -> None:
    error = data.get("error")
    limit = 200 * keep if keep else 500
    if isinstance(error, dict) and len(str(error.get("message", ""))) > limit:
        error["message"] = str(error["message"])[:limit] + " [truncated]"
    if isinstance(error, dict) and len(str(error.get("instruction") or "")) > limit:
        error["instruction"] = str(error["instruction"])[:limit] + " [truncated]"


_CUTS = (_cut_message, _cut_list("warnings"), _cut_list("steps"), _cut_list("layers"),
         _cut_list("references"))


def _skeleton(event: Event) -> Event:
    """Identity fields only: what is left when even the cut-down data is too large."""
    data = event.get("data", {})
    keep = ("build_id", "state", "claim", "digest", "log", "started_at", "finished_at",
            "expires_at")
    event["data"] = {name: data[name] for name in keep if name in data}
    event["data"]["truncated"] = True
    event.pop("subject", None)
    return event


@dataclass(frozen=True)
class Recorded:
    """A status object as read back: whose it is, its state and the upload it describes."""

    event: Mapping[str, Any]
    build_id: str
    claim: str
    state: str
    expires_at: datetime | None
    version: str | None
    sequencer: str | None
    event_time: datetime | None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def parse_status(content: bytes) -> Recorded | None:
    """A status object's content as `Recorded`; None when it is not one of ours."""
    try:
        event = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("build_id"), str):
        return None
    found = data.get("source")
    source: dict[str, Any] = found if isinstance(found, dict) else {}
    return Recorded(event=event, build_id=data["build_id"], claim=str(data.get("claim", "")),
                    state=str(data.get("state", "")),
                    expires_at=parse_time(data.get("expires_at")),
                    version=_optional(source.get("version")),
                    sequencer=_optional(source.get("sequencer")),
                    event_time=parse_time(source.get("event_time")))


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)
