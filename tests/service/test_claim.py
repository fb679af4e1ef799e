"""Claims: create-only status objects, duplicates, stale events, expired claims."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.service.claim import Decision, StatusObject, build_id_for, decide, is_older
from core.service.events import BuildRequest
from core.service.result import (
    Attempt,
    Event,
    Failure,
    Recorded,
    failed_event,
    parse_status,
    started_event,
)
from tests.service.conftest import Bucket

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def request_for(bucket: Bucket, *, version: str, sequencer: str | None = None,
                event_time: datetime | None = None) -> BuildRequest:
    return BuildRequest(bucket=bucket.name, key="apps/site.tar.gz", store=bucket.store.scheme,  # type: ignore[arg-type]
                        version=version, etag="etag", size=10, sequencer=sequencer,
                        event_time=event_time)


def attempt_for(request: BuildRequest, claim: str) -> Attempt:
    return Attempt(build_id=build_id_for(request), claim=claim, request=request,
                   source="bucketbuild/test", log_url=request.url + ".log", started_at=NOW)


def started(attempt: Attempt, *, expires_in: float = 600) -> Event:
    return started_event(attempt, expires_at=NOW + timedelta(seconds=expires_in))


def claim(bucket: Bucket, request: BuildRequest, token: str, *,
          expires_in: float = 600, now: datetime = NOW) -> Decision:
    status = StatusObject(bucket.store, bucket.name, request.key)
    attempt = attempt_for(request, token)
    return status.claim(request, build_id=attempt.build_id,
                        started=started(attempt, expires_in=expires_in), now=now).decision


def recorded(bucket: Bucket, key: str = "apps/site.tar.gz") -> Recorded:
    content = bucket.store.read_bytes(bucket.name, key + ".result.json", max_bytes=1 << 20)
    status = parse_status(content)
    assert status is not None
    return status


def test_build_id_depends_on_every_identity_part() -> None:
    base = BuildRequest(bucket="b", key="k.tar", store="s3", version="1")
    ids = {build_id_for(base), build_id_for(BuildRequest(bucket="b", key="k.tar", store="gs",
                                                         version="1")),
           build_id_for(BuildRequest(bucket="c", key="k.tar", store="s3", version="1")),
           build_id_for(BuildRequest(bucket="b", key="k2.tar", store="s3", version="1")),
           build_id_for(BuildRequest(bucket="b", key="k.tar", store="s3", version="2")),
           build_id_for(BuildRequest(bucket="b", key="k.tar", store="s3", etag="x"))}
    assert len(ids) == 6
    assert build_id_for(base) == build_id_for(BuildRequest(bucket="b", key="k.tar", store="s3",
                                                           version="1", etag="other"))
    assert len(build_id_for(base)) == 20


def _recorded(**changes: object) -> Recorded:
    values: dict[str, object] = {"event": {}, "build_id": "other", "claim": "c",
                                 "state": "succeeded", "expires_at": None, "version": None,
                                 "sequencer": None, "event_time": None}
    values.update(changes)
    return Recorded(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("request_", "record", "expected"), [
    (BuildRequest(bucket="b", key="k.tar", store="gs", version="9"),
     _recorded(version="10"), True),
    (BuildRequest(bucket="b", key="k.tar", store="gs", version="11"),
     _recorded(version="10"), False),
    (BuildRequest(bucket="b", key="k.tar", store="s3", version="x", sequencer="00A"),
     _recorded(sequencer="0000FF"), True),  # different lengths compare as numbers
    (BuildRequest(bucket="b", key="k.tar", store="s3", version="x", sequencer="0100"),
     _recorded(sequencer="FF"), False),
    (BuildRequest(bucket="b", key="k.tar", store="s3", version="x", event_time=NOW),
     _recorded(event_time=NOW + timedelta(seconds=1)), True),
    (BuildRequest(bucket="b", key="k.tar", store="s3", version="x"), _recorded(), False),
])
def test_is_older(request_: BuildRequest, record: Recorded, expected: bool) -> None:
    assert is_older(request_, record) is expected


def test_decide_table() -> None:
    req = BuildRequest(bucket="b", key="k.tar", store="gs", version="5")
    own = build_id_for(req)
    live = NOW + timedelta(seconds=60)
    past = NOW - timedelta(seconds=1)
    assert decide(req, build_id=own, recorded=_recorded(build_id=own), now=NOW) is Decision.REPLAY
    assert decide(req, build_id=own, recorded=_recorded(build_id=own, state="failed"),
                  now=NOW) is Decision.REPLAY
    assert decide(req, build_id=own, recorded=_recorded(build_id=own, state="building",
                                                        expires_at=live), now=NOW) is Decision.BUSY
    assert decide(req, build_id=own, recorded=_recorded(build_id=own, state="building",
                                                        expires_at=past),
                  now=NOW) is Decision.TAKE_OVER
    assert decide(req, build_id=own, recorded=_recorded(version="6"), now=NOW) is Decision.STALE
    assert decide(req, build_id=own, recorded=_recorded(version="4", state="building",
                                                        expires_at=live),
                  now=NOW) is Decision.TAKE_OVER


def test_first_claim_builds_and_a_duplicate_leaves_it_alone(bucket: Bucket) -> None:
    req = request_for(bucket, version="100")
    assert claim(bucket, req, "first") is Decision.BUILD
    assert recorded(bucket).state == "building"
    assert claim(bucket, req, "second") is Decision.BUSY
    assert recorded(bucket).claim == "first"


def test_finished_build_is_replayed(bucket: Bucket) -> None:
    req = request_for(bucket, version="100")
    assert claim(bucket, req, "first") is Decision.BUILD
    status = StatusObject(bucket.store, bucket.name, req.key)
    final = failed_event(attempt_for(req, "first"), Failure("step", "boom", line=3),
                         finished_at=NOW)
    assert status.finish(final, claim="first")
    found = status.read()
    assert found is not None and found.recorded is not None
    assert found.recorded.state == "failed"
    result = status.claim(req, build_id=build_id_for(req),
                          started=started(attempt_for(req, "second")), now=NOW)
    assert result.decision is Decision.REPLAY
    assert result.recorded is not None
    assert result.recorded.event["id"] == final["id"]


def test_expired_claim_is_taken_over(bucket: Bucket) -> None:
    req = request_for(bucket, version="100")
    assert claim(bucket, req, "crashed", expires_in=-1) is Decision.BUILD
    assert claim(bucket, req, "retry") is Decision.BUILD
    assert recorded(bucket).claim == "retry"
    status = StatusObject(bucket.store, bucket.name, req.key)
    late = failed_event(attempt_for(req, "crashed"), Failure("timeout", "late"), finished_at=NOW)
    assert not status.finish(late, claim="crashed")  # the old attempt no longer owns it
    assert recorded(bucket).claim == "retry"


def test_two_takeovers_of_one_expired_claim_one_wins(bucket: Bucket) -> None:
    req = request_for(bucket, version="100")
    assert claim(bucket, req, "crashed", expires_in=-1) is Decision.BUILD
    status = StatusObject(bucket.store, bucket.name, req.key)
    found = status.read()  # both attempts read the same expired claim
    assert found is not None
    won = [status.replace(started(attempt_for(req, token)), expected="crashed", found=found)
           for token in ("first", "second")]
    assert won == [True, False]
    assert recorded(bucket).claim == "first"
    # the loser, deciding again, finds a live claim of the same upload
    assert claim(bucket, req, "second") is Decision.BUSY
    assert recorded(bucket).claim == "first"


def test_older_upload_is_dropped_and_newer_one_takes_over(bucket: Bucket) -> None:
    newer = request_for(bucket, version="200", sequencer="0200",
                        event_time=NOW + timedelta(seconds=5))
    older = request_for(bucket, version="100", sequencer="0100", event_time=NOW)
    assert claim(bucket, newer, "new") is Decision.BUILD
    assert claim(bucket, older, "old") is Decision.STALE
    newest = request_for(bucket, version="300", sequencer="0300",
                         event_time=NOW + timedelta(seconds=9))
    assert claim(bucket, newest, "newest") is Decision.BUILD
    assert recorded(bucket).version == "300"


def test_a_foreign_status_object_is_replaced(bucket: Bucket) -> None:
    req = request_for(bucket, version="100")
    bucket.store.put_bytes(bucket.name, req.key + ".result.json", b"someone else's notes",
                           content_type="text/plain")
    assert claim(bucket, req, "mine") is Decision.BUILD
    assert recorded(bucket).claim == "mine"


def test_status_object_is_a_cloudevent(bucket: Bucket) -> None:
    req = request_for(bucket, version="100")
    claim(bucket, req, "first")
    content = bucket.store.read_bytes(bucket.name, req.key + ".result.json", max_bytes=1 << 20)
    event = json.loads(content)
    assert event["specversion"] == "1.0"
    assert event["type"] == "io.bucketbuild.build.started"
    assert event["data"]["state"] == "building"
    assert event["data"]["expires_at"] == "2024-05-01T12:10:00.000Z"
    assert event["data"]["source"]["url"] == req.url
