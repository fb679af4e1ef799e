"""CloudEvent shape of results, failure details and the size limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from core.build.result import BuildResult, LayerInfo, StepTiming
from core.errors import DeadlineError, DockerfileError, SourceSpan, StepError
from core.service.events import BuildRequest
from core.service.result import (
    MAX_EVENT_BYTES,
    Attempt,
    Failure,
    StepPosition,
    encode,
    failed_event,
    fit,
    parse_status,
    started_event,
    succeeded_event,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
REQUEST = BuildRequest(bucket="b", key="apps/site.tar.gz", store="s3", version="v1",
                       etag="e", size=123, sequencer="00AB", event_time=NOW)
ATTEMPT = Attempt(build_id="0123456789abcdef0123", claim="c" * 32, request=REQUEST,
                  source="bucketbuild/fn", log_url="s3://b/apps/site.tar.gz.log", started_at=NOW)
DIGEST = "sha256:" + "a" * 64


def result(*, steps: int = 2, layers: int = 1) -> BuildResult:
    return BuildResult(
        digest=DIGEST, media_type="application/vnd.docker.distribution.manifest.v2+json",
        config_digest="sha256:" + "c" * 64,
        destinations=("reg.example/site:v1",),
        layers=tuple(LayerInfo(digest=f"sha256:{i:064x}", diff_id=f"sha256:{i:064x}", size=100,
                               media_type="application/vnd.docker.image.rootfs.diff.tar.gzip",
                               created_by=f"COPY {i} /") for i in range(layers)),
        steps=tuple(StepTiming(number=i + 1, instruction=f"RUN step {i}", line=i + 2,
                               seconds=0.25, cached=i == 0) for i in range(steps)),
        sandbox="chroot", warnings=("unused build arg X",))


def test_succeeded_event_shape() -> None:
    event = succeeded_event(ATTEMPT, result(), finished_at=NOW + timedelta(seconds=3))
    assert {k: event[k] for k in ("specversion", "type", "source", "subject",
                                  "datacontenttype")} == {
        "specversion": "1.0", "type": "io.bucketbuild.build.succeeded",
        "source": "bucketbuild/fn", "subject": "reg.example/site:v1",
        "datacontenttype": "application/json"}
    assert event["id"].startswith(ATTEMPT.build_id)
    assert event["time"].endswith("Z")
    data = event["data"]
    assert data["build_id"] == ATTEMPT.build_id and data["state"] == "succeeded"
    assert data["source"] == {"url": "s3://b/apps/site.tar.gz", "store": "s3", "bucket": "b",
                              "key": "apps/site.tar.gz", "version": "v1", "etag": "e",
                              "size": 123, "sequencer": "00AB",
                              "event_time": "2024-05-01T12:00:00.000Z"}
    assert data["digest"] == DIGEST and data["image_size"] == 100
    assert data["references"] == [f"reg.example/site:v1@{DIGEST}"]
    assert data["steps"][0] == {"number": 1, "instruction": "RUN step 0", "line": 2,
                                "seconds": 0.25, "cached": True}
    assert data["cache_hits"] == 1 and data["sandbox"] == "chroot"
    assert data["log"] == "s3://b/apps/site.tar.gz.log"
    assert data["duration_seconds"] == 3.0
    assert json.loads(encode(event)) == event


def test_failure_from_step_error_names_step_and_line() -> None:
    error = StepError("RUN exited with 3", span=SourceSpan("Dockerfile", 4, 4),
                      instruction="RUN exit 3", exit_code=3)
    failure = Failure.from_exception(error, step=StepPosition(3, "RUN exit 3", 4))
    assert failure == Failure(kind="step", message=str(error), file="Dockerfile", line=4, step=3,
                              instruction="RUN exit 3", exit_code=3)
    event = failed_event(ATTEMPT, failure, finished_at=NOW,
                         destinations=("reg.example/site:v1",))
    assert event["type"] == "io.bucketbuild.build.failed"
    assert event["data"]["error"]["class"] == "step"
    assert event["data"]["error"]["line"] == 4
    assert "digest" not in event["data"]


def test_failure_from_dockerfile_and_other_errors() -> None:
    parse = Failure.from_exception(DockerfileError("unknown instruction: FORM", line=1), step=None)
    assert (parse.kind, parse.line, parse.step) == ("dockerfile", 1, None)
    timeout = Failure.from_exception(DeadlineError("out of time"),
                                     step=StepPosition(2, "RUN sleep 99", 3))
    assert (timeout.kind, timeout.line, timeout.step) == ("timeout", 3, 2)
    bug = Failure.from_exception(KeyError("x"), step=None)
    assert bug.kind == "internal" and "KeyError" in bug.message


def test_large_events_are_cut_to_fit() -> None:
    huge = result(steps=20000, layers=3000)
    event = succeeded_event(ATTEMPT, huge, finished_at=NOW)
    assert len(json.dumps(event)) > MAX_EVENT_BYTES
    data = json.loads(encode(event))["data"]
    assert len(encode(event)) <= MAX_EVENT_BYTES
    assert data["truncated"] is True
    assert data["steps_total"] == 20000 and len(data["steps"]) == 100
    assert data["digest"] == DIGEST


def test_huge_error_message_is_cut() -> None:
    failure = Failure(kind="step", message="x" * 600_000)
    event = failed_event(ATTEMPT, failure, finished_at=NOW)
    small = fit(event)
    assert len(json.dumps(small)) <= MAX_EVENT_BYTES
    assert small["data"]["error"]["message"].endswith("[truncated]")
    assert event["data"]["error"]["message"] == "x" * 600_000  # the original is untouched


def test_last_resort_keeps_identity() -> None:
    event = failed_event(ATTEMPT, Failure(kind="step", message="m"), finished_at=NOW)
    event["data"]["extra"] = "y" * 400_000
    small = fit(event)
    assert set(small["data"]) <= {"build_id", "state", "claim", "log", "started_at",
                                  "finished_at", "truncated"}


def test_status_round_trip() -> None:
    event = started_event(ATTEMPT, expires_at=NOW + timedelta(minutes=5))
    status = parse_status(encode(event))
    assert status is not None
    assert (status.build_id, status.claim, status.state) == (ATTEMPT.build_id, "c" * 32,
                                                             "building")
    assert status.expires_at == NOW + timedelta(minutes=5)
    assert (status.version, status.sequencer, status.event_time) == ("v1", "00AB", NOW)
    assert not status.final
    assert parse_status(b"not json") is None
    assert parse_status(b'{"data": {"no": "id"}}') is None
