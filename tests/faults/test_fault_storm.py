"""A batch of pushes (and pulls) under a 20% random fault rate, then an audit of the registry.

Twenty small distinct images go through the fault proxy with `RegistryClient.push_image`; each
tag already names a previous complete image (pushed straight to the registry). Faults are
seeded (`BUCKETBUILD_FAULT_SEED` picks another seed), drawn from every kind the proxy has —
connection resets, dropped connections, timeouts, 500/502/503, 429 with `Retry-After`, lost
responses (the registry did the work, the client saw 502), truncated and corrupted bodies — and
bounded in number; the client retries once, with tiny backoff, so some pushes fail. Half the
layers are large enough to go up in chunks.

The audit, made with skopeo and a fault-free client straight to the registry:
- a push that returned a digest: the tag serves exactly that digest and the image is whole;
  a sample is copied by skopeo and unpacked by umoci and its file compared byte for byte;
- a push that failed: the error is a `RegistryError` (anything else fails the test), and the
  tag names either the previous image or — when only the answer to a manifest PUT that did land
  was lost — the new one; whichever it names is whole.
Pulls of the pushed tags under the same storm return verified content or raise
`RegistryError`, and a few whole builds (`run_build`, context to pushed image) under the storm
end the same two ways. The counts are printed (run with `-rA` or `-s`) and recorded as
properties.
"""

from __future__ import annotations

import io
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.errors import BuildError, RegistryError
from core.image.manifest import Platform
from core.image.reference import parse_reference
from core.registry import RegistryClient
from tests.faults.verify import (
    assert_complete,
    assert_unpacks_to,
    report,
    small_image,
    tag_digest,
)
from tests.fixtures.images import BuiltImage, push_built
from tests.fixtures.proxy import ChaosFaults, fault_proxy
from tests.fixtures.registry import RegistryServer, make_client

PUSHES = 20
RATE = 0.2
SEED = int(os.environ.get("BUCKETBUILD_FAULT_SEED", "20260815"))
UNPACK_SAMPLE = 3
KiB = 1024


@dataclass
class Attempt:
    name: str
    previous: BuiltImage
    image: BuiltImage
    data: bytes
    digest: str | None = None
    error: RegistryError | None = None


def _attempts(seed: int) -> list[Attempt]:
    attempts = []
    for i in range(PUSHES):
        name = f"storm/image{i}:latest"
        previous, _ = small_image(name, seed=-seed - i)
        size = 40 * KiB if i % 2 else 6 * KiB  # odd ones are pushed in 16 KiB chunks
        image, data = small_image(name, seed=seed + i, size=size)
        attempts.append(Attempt(name, previous, image, data))
    return attempts


RecordProperty = Callable[[str, object], None]


def _storm_client(host: str) -> RegistryClient:
    return make_client(host, retries=1, read_timeout=0.5, connect_timeout=1.0,
                       backoff_base=0.005, backoff_max=0.02, max_concurrent_uploads=1,
                       monolithic_threshold=16 * KiB, chunk_size=16 * KiB)


def test_pushes_under_a_fault_storm(registry: RegistryServer, tmp_path: Path,
                                    record_property: RecordProperty) -> None:
    attempts = _attempts(SEED)
    with make_client(registry.host) as client:
        for attempt in attempts:
            push_built(client, [parse_reference(f"{registry.host}/{attempt.name}")],
                       attempt.previous)
    chaos = ChaosFaults(rate=RATE, seed=SEED, max_faults=400, stall=0.8)
    started = time.monotonic()
    with fault_proxy(registry.host) as proxy:
        proxy.chaos = chaos
        for attempt in attempts:
            with _storm_client(proxy.host) as client:
                try:
                    attempt.digest = push_built(
                        client, [parse_reference(f"{proxy.host}/{attempt.name}")],
                        attempt.image)
                except RegistryError as error:
                    attempt.error = error
                except BuildError as error:  # pragma: no cover - reported as a failure below
                    pytest.fail(f"{attempt.name}: {type(error).__name__} is not a "
                                f"RegistryError: {error}")
        requests = chaos.requests
    elapsed = time.monotonic() - started

    failures = Counter(type(a.error).__name__ for a in attempts if a.error is not None)
    landed_anyway = 0
    for attempt in attempts:
        served = tag_digest(registry, attempt.name)
        if attempt.error is None:
            assert attempt.digest == attempt.image.digest == served, attempt.name
        else:
            assert str(attempt.error), attempt.name
            assert served in (attempt.previous.digest, attempt.image.digest), (
                f"{attempt.name}: tag names {served} after a failed push ({attempt.error})")
            landed_anyway += served == attempt.image.digest
        assert served is not None
        assert_complete(registry, attempt.name, served)
    succeeded = [a for a in attempts if a.error is None]
    for attempt in succeeded[:UNPACK_SAMPLE]:
        assert_unpacks_to(registry, attempt.name, attempt.name, attempt.data,
                          tmp_path / attempt.name.replace("/", "_").replace(":", "_"))

    counts: dict[str, object] = {
        "seed": SEED, "rate": RATE, "pushes": PUSHES, "succeeded": len(succeeded),
        "failed": sum(failures.values()), "failed_by_error": dict(failures),
        "failed_but_tag_updated": landed_anyway, "requests": requests,
        "faults_injected": dict(chaos.injected), "faults_total": sum(chaos.injected.values()),
        "seconds": round(elapsed, 1),
    }
    record_property("fault_storm_push", report("fault storm (push)", counts))
    for attempt in attempts:
        if attempt.error is not None:
            print(f"  {attempt.name}: {attempt.error}")
    assert sum(chaos.injected.values()) > 0
    assert elapsed < 90


def test_pulls_under_a_fault_storm(registry: RegistryServer,
                                   record_property: RecordProperty) -> None:
    images = []
    with make_client(registry.host) as client:
        for i in range(PUSHES):
            name = f"storm/pull{i}:v1"
            image, _ = small_image(name, seed=SEED + 1000 + i, size=(60 if i % 2 else 4) * KiB)
            push_built(client, [parse_reference(f"{registry.host}/{name}")], image)
            images.append((name, image))
    chaos = ChaosFaults(rate=RATE, seed=SEED + 1, max_faults=400, stall=0.8)
    outcomes: Counter[str] = Counter()
    with fault_proxy(registry.host) as proxy:
        proxy.chaos = chaos
        for name, image in images:
            ref = parse_reference(f"{proxy.host}/{name}")
            with _storm_client(proxy.host) as client:
                try:
                    pulled = client.pull(ref, platform=Platform("linux", "amd64"))
                    layer = pulled.manifest.layers[0]
                    sink = io.BytesIO()
                    client.fetch_blob(ref, layer.digest, sink, size=layer.size)
                except RegistryError as error:
                    outcomes[type(error).__name__] += 1
                    continue
            assert pulled.digest == image.digest
            assert pulled.config_bytes == image.config.data
            assert sink.getvalue() == image.layers[0].data
            outcomes["verified"] += 1
    counts = {"seed": SEED + 1, "pulls": len(images), "outcomes": dict(outcomes),
              "requests": chaos.requests, "faults_injected": dict(chaos.injected)}
    record_property("fault_storm_pull", report("fault storm (pull)", counts))
    assert sum(outcomes.values()) == len(images)


BUILDS = 6


def test_builds_under_a_fault_storm(registry: RegistryServer, tmp_path: Path,
                                    record_property: RecordProperty) -> None:
    """`run_build` end to end (context -> layer -> push) with the registry behind the storm:
    each build pushes a correct image or fails with a `RegistryError`; a failed build's tag
    still names the previous complete image (or the new one, when only a lost answer failed)."""
    from core.build.options import BuildOptions, OutputOptions
    from core.build.pipeline import run_build

    previous: dict[str, str] = {}
    with make_client(registry.host) as client:
        for i in range(BUILDS):
            name = f"storm/build{i}:latest"
            image, _ = small_image(name, seed=-SEED - 500 - i)
            previous[name] = push_built(client, [parse_reference(f"{registry.host}/{name}")],
                                        image)
    chaos = ChaosFaults(rate=RATE, seed=SEED + 2, max_faults=400, stall=0.8)
    outcomes: Counter[str] = Counter()
    with fault_proxy(registry.host) as proxy:
        proxy.chaos = chaos
        for i in range(BUILDS):
            name = f"storm/build{i}:latest"
            context = tmp_path / f"ctx{i}"
            context.mkdir()
            (context / "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n")
            (context / "payload").write_bytes(os.urandom(20 * KiB))
            options = BuildOptions(context=str(context), work_dir=tmp_path / f"work{i}",
                                   output=OutputOptions(destinations=(f"{proxy.host}/{name}",)))
            with _storm_client(proxy.host) as client:
                try:
                    result = run_build(options, events=_Ignore(), registry=client)
                except RegistryError as error:
                    outcomes[type(error).__name__] += 1
                    served = tag_digest(registry, name)
                    assert served is not None, f"{name}: the failed build removed the tag"
                    assert_complete(registry, name, served)  # previous, or new and whole
                    outcomes["failed_but_tag_updated"] += served != previous[name]
                    continue
            assert tag_digest(registry, name) == result.digest
            assert_complete(registry, name, result.digest)
            outcomes["pushed"] += 1
    counts = {"seed": SEED + 2, "builds": BUILDS, "outcomes": dict(outcomes),
              "requests": chaos.requests, "faults_injected": dict(chaos.injected)}
    record_property("fault_storm_build", report("fault storm (run_build)", counts))
    assert outcomes["pushed"] + sum(v for k, v in outcomes.items() if k.endswith("Error")) == BUILDS


class _Ignore:
    def emit(self, event: object) -> None:
        return
