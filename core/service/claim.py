"""Exactly one result per upload: the build id and the `<key>.result.json` status object.

The status object is created create-only (S3 `If-None-Match: *`, GCS `if_generation_match=0`)
in state `building` with an expiry beyond the function's timeout. Whoever creates it builds.
Everyone else reads it and decides (`decide`, pure):
- same upload, final state: re-emit the recorded result (`REPLAY`);
- same upload, live claim: leave it alone (`BUSY`);
- an older upload than the one recorded: drop the event (`STALE`);
- an expired claim, or a newer upload than the one recorded: take the object over.
Take-over and the final write check that the object still holds the claim they expect, and
write only if it is still at the revision they read (S3 `If-Match: <ETag>`, GCS
`if_generation_match`): of two attempts replacing the same record, exactly one succeeds.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from core.cloud.storage import ObjectStore
from core.errors import ContextError
from core.service.events import RESULT_SUFFIX, BuildRequest
from core.service.result import Event, Recorded, encode, parse_status

log = logging.getLogger(__name__)

STATUS_CONTENT_TYPE = "application/cloudevents+json"
MAX_STATUS_BYTES = 1 << 20
_CLAIM_ATTEMPTS = 3


class Decision(enum.StrEnum):
    BUILD = "build"  # this attempt holds the claim
    REPLAY = "replay"  # the upload was built: re-emit the recorded result
    BUSY = "busy"  # a live attempt is building it
    STALE = "stale"  # a newer upload of the key has been recorded
    TAKE_OVER = "take-over"  # an expired claim or an older upload's record: replace it


class ClaimError(ContextError):
    """The status object could not be claimed (a store problem, or a lasting race)."""

    retryable = True


def build_id_for(request: BuildRequest) -> str:
    """A short stable id from the store, bucket, key and version (etag when unversioned)."""
    identity = request.version if request.version is not None else f"etag:{request.etag or ''}"
    text = "\0".join((request.store, request.bucket, request.key, identity))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:20]


def status_key(key: str) -> str:
    return key + RESULT_SUFFIX


def decide(request: BuildRequest, *, build_id: str, recorded: Recorded,
           now: datetime) -> Decision:
    """What to do when `recorded` is already there (pure)."""
    if recorded.build_id == build_id:
        if recorded.final:
            return Decision.REPLAY
        if recorded.expires_at is not None and recorded.expires_at > now:
            return Decision.BUSY
        return Decision.TAKE_OVER
    if is_older(request, recorded):
        return Decision.STALE
    return Decision.TAKE_OVER


def is_older(request: BuildRequest, recorded: Recorded) -> bool:
    """Whether `request` describes an earlier upload of the key than `recorded` does.

    GCS generations are ordered numbers; S3 sequencers compare as hexadecimal numbers (the
    shorter padded with leading zeros); otherwise event times decide. Unknown: not older.
    """
    if request.store == "gs" and _is_number(request.version) and _is_number(recorded.version):
        return int(request.version or 0) < int(recorded.version or 0)
    if request.sequencer and recorded.sequencer:
        try:
            return int(request.sequencer, 16) < int(recorded.sequencer, 16)
        except ValueError:
            pass
    if request.event_time is not None and recorded.event_time is not None:
        return request.event_time < recorded.event_time
    return False


def _is_number(value: str | None) -> bool:
    return value is not None and value.isdigit()


@dataclass(frozen=True)
class Found:
    """The status object as read: its recorded content, or None when it is not ours."""

    recorded: Recorded | None
    revision: str  # the store's version token when it was read (for conditional writes)


@dataclass(frozen=True)
class Claimed:
    decision: Decision
    recorded: Recorded | None = None  # for REPLAY / BUSY / STALE: what was found


class StatusObject:
    """The status object of one archive in one store."""

    def __init__(self, store: ObjectStore, bucket: str, key: str) -> None:
        self.store = store
        self.bucket = bucket
        self.key = status_key(key)

    @property
    def url(self) -> str:
        return f"{self.store.scheme}://{self.bucket}/{self.key}"

    def read(self) -> Found | None:
        """The object, or None. Its revision is the one seen before the content was read, so
        a write conditional on it fails if the content read is newer than that."""
        info = self.store.find(self.bucket, self.key)
        if info is None:
            return None
        try:
            content = self.store.read_bytes(self.bucket, self.key, max_bytes=MAX_STATUS_BYTES)
        except ContextError:
            if self.store.find(self.bucket, self.key) is None:
                return None  # removed between the two calls
            raise
        return Found(parse_status(content), info.revision)

    def create(self, event: Event) -> bool:
        return self.store.put_bytes(self.bucket, self.key, encode(event),
                                    content_type=STATUS_CONTENT_TYPE, create_only=True)

    def replace(self, event: Event, *, expected: str | None,
                found: Found | None = None) -> bool:
        """Overwrite the object if it still holds the claim `expected` (None: holds no claim
        of ours) and is still at the revision of `found` (read now when not given).

        The write is conditional on that revision, so of several attempts replacing the same
        record exactly one wins; the others get False and nothing is written.
        """
        found = found if found is not None else self.read()
        if found is None:
            return self.create(event)
        current = found.recorded.claim if found.recorded else None
        if current != expected:
            return False
        return self.store.put_bytes(self.bucket, self.key, encode(event),
                                    content_type=STATUS_CONTENT_TYPE, if_version=found.revision)

    def claim(self, request: BuildRequest, *, build_id: str, started: Event,
              now: datetime) -> Claimed:
        """Create the status object in state `building`, or decide what else to do."""
        for _ in range(_CLAIM_ATTEMPTS):
            if self.create(started):
                return Claimed(Decision.BUILD)
            found = self.read()
            if found is None:
                continue  # removed since: try to create it again
            if found.recorded is None:
                log.warning("%s is not a bucketbuild status object; replacing it", self.url)
                decision, expected = Decision.TAKE_OVER, None
            else:
                decision = decide(request, build_id=build_id, recorded=found.recorded, now=now)
                expected = found.recorded.claim
            if decision is not Decision.TAKE_OVER:
                return Claimed(decision, found.recorded)
            if self.replace(started, expected=expected, found=found):
                return Claimed(Decision.BUILD)
            # another attempt replaced it first: read what is there and decide again
        raise ClaimError(f"{self.url}: could not claim the build after {_CLAIM_ATTEMPTS} tries")

    def finish(self, event: Event, *, claim: str) -> bool:
        """Record the final event if this attempt still holds the claim; False if another
        attempt has taken the object over (its record is left as it is)."""
        if self.replace(event, expected=claim):
            return True
        log.warning("%s was taken over by another attempt; not overwriting it", self.url)
        return False
