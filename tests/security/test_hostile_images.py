"""Hostile base images: the corpus's layers pushed to a real registry, pulled back and applied
the way the engine applies a base image.

Our own crafting code composes each image (an OCI manifest and config around the lower layer
and the hostile one), pushes it with `RegistryClient.push_image`, and the test then does what
the engine does with a base: `pull` (manifest and config, digests verified), `fetch_blob` of
each layer into the work dir's layer spool, `extract_layer` of each onto the root filesystem
with the metadata map carried from layer to layer and a plain-size budget, inside
`pulled_layer_errors` as the engine's tree does. The outcome must be the one the corpus states
for layers — a malformed layer reported as the image's (`ImageError` naming the layer digest,
the extractor's error as its cause), a budget overrun as a `BudgetError` — and nothing outside
the rootfs and spool may change.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from core.build.bases import pulled_layer_errors
from core.build.layers import Layer
from core.errors import BudgetError, BuildError, ImageError
from core.image.digest import sha256_digest
from core.image.reference import Reference
from core.registry import RegistryClient
from core.rootfs import MetadataMap, extract_layer
from tests.fixtures.registry import RegistryServer, make_client
from tests.security.corpus import BUDGET, CASES, Case
from tests.security.guard import Guard, Sentinel
from tests.security.images import PLATFORM, case_names
from tests.security.test_hostile_archives import judge


def pull_and_apply(client: RegistryClient, ref: Reference, work: Path) -> MetadataMap:
    """What the engine does with a base image that a RUN needs: pull, spool, extract."""
    pulled = client.pull(ref, platform=PLATFORM)
    spool, rootfs = work / "layers", work / "rootfs"
    metadata = MetadataMap()
    for layer, diff_id in zip(pulled.manifest.layers, pulled.config.diff_ids, strict=True):
        blob = spool / layer.digest.split(":", 1)[1]
        with blob.open("wb") as sink:
            client.fetch_blob(ref, layer.digest, sink, size=layer.size)
        with (pulled_layer_errors(Layer(layer, diff_id, remote=ref.context())),
              blob.open("rb") as source):
            metadata = extract_layer(source, rootfs, metadata=metadata, max_bytes=BUDGET).metadata
        blob.unlink()
    return metadata


def reported_cause(error: BuildError | None) -> BuildError | None:
    """The extractor's error behind what the engine reports (checked to name the layer)."""
    if error is None or isinstance(error, BudgetError):
        return error
    assert isinstance(error, ImageError), f"{type(error).__name__}: {error}"
    assert re.search(r"^layer sha256:[0-9a-f]{64} of \S+/hostile/\S+ cannot be applied: ",
                     str(error)), error
    assert isinstance(error.__cause__, BuildError)
    return error.__cause__


@pytest.mark.parametrize("name", case_names())
def test_hostile_base_image(name: str, hostile_images: dict[str, Reference],
                            registry: RegistryServer, work: Path,
                            shared_sentinel: Sentinel) -> None:
    case: Case = CASES[name]
    (work / "layers").mkdir()
    (work / "rootfs").mkdir()
    guard = Guard(work.parent, (work / "layers", work / "rootfs"), shared_sentinel)
    guard.arm()
    error: BuildError | None = None
    with make_client(registry.host) as client:
        try:
            pull_and_apply(client, hostile_images[name], work)
        except BuildError as failure:
            error = failure
    guard.check()
    judge(case, reported_cause(error), case.layer)
    if error is None and case.check_layer is not None:
        case.check_layer(work / "rootfs", shared_sentinel)


def test_registry_refuses_nothing_it_should_not_hold(hostile_images: dict[str, Reference],
                                                     registry: RegistryServer) -> None:
    """The registry stored every hostile image byte for byte: what the engine pulls is exactly
    what the attacker pushed (so the outcomes above are the extractor's, not the registry's)."""
    with make_client(registry.host) as client:
        for name in ("absolute-into-sentinel", "gzip-bomb-declared", "not-an-archive-elf"):
            pulled = client.pull(hostile_images[name], platform=PLATFORM)
            layer = pulled.manifest.layers[-1]
            sink = io.BytesIO()
            client.fetch_blob(hostile_images[name], layer.digest, sink, size=layer.size)
            assert sha256_digest(sink.getvalue()) == layer.digest
