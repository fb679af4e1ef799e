"""Eight builds at once: their contexts, their shared caches and the checks on what they pushed.

Every build has its own Dockerfile (its own ENV and LABEL lines), context (an `own/` directory
with a file named after the build) and destinations, and all share a registry, a layer cache
(a registry repository or an `oci:DIR` layout) and a base layer cache directory. The first two
file steps are the same in every build, so their cache entries are written by eight builds at
once (the ARG comes after them: a RUN's key holds the ARGs in scope); the next two are each
build's own.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from core.image.digest import sha256_digest
from core.image.manifest import parse_manifest
from core.layout.oci import REF_NAME, OciLayout
from tests.build.conftest import write_context
from tests.fixtures.images import BaseImages, skopeo_inspect_raw, skopeo_unpack
from tests.fixtures.registry import RegistryServer

BUILDS = 8
DOCKERFILE = """\
FROM {base}
COPY shared.txt /shared/shared.txt
RUN echo shared-run > /shared/run.txt
ARG ID
COPY own/ /own/
RUN cat /own/id.txt > /own-copy.txt && echo "build $ID" > /own-env.txt
ENV BUILD_ID={number}
LABEL build.id={number}
"""
#: per step (FROM and config steps included): whether a full cache round hits it
ALL_HIT = [False, True, True, False, True, True, False, False]
#: the steps only one build has: always a miss the first time
OWN_STEPS = (4, 5)


@dataclass(frozen=True)
class Job:
    """One of the eight builds."""

    number: int
    context: Path
    destinations: tuple[str, ...]  # its own repository, and a tag in a shared repository

    @property
    def build_arg(self) -> str:
        return str(self.number)


def make_jobs(root: Path, registry: RegistryServer, base: BaseImages, *, kind: str,
              round_: int) -> list[Job]:
    """The eight builds of one round (contexts are written once per root)."""
    jobs = []
    for number in range(BUILDS):
        context = root / f"ctx{number}"
        if not context.exists():
            write_context(context, {
                "Dockerfile": DOCKERFILE.format(base=f"{base.host}/{base.docker_gzip}",
                                                number=number),
                "shared.txt": "the same in every build\n",
                "own/id.txt": f"{number}\n",
                f"own/n{number}.txt": f"only in build {number}\n",
            })
        destinations = (f"{registry.host}/conc-{kind}/app{number}:r{round_}",
                        f"{registry.host}/conc-{kind}/all:b{number}-r{round_}")
        jobs.append(Job(number, context, destinations))
    return jobs


@dataclass(frozen=True)
class Pushed:
    """What one build reported: its manifest and config digests and per-step cache hits."""

    digest: str
    config_digest: str
    cached: list[bool]


def check_tags(registry: RegistryServer, job: Job, pushed: Pushed) -> None:
    """Every tag of `job` names exactly the manifest the build reported (read by skopeo)."""
    for destination in job.destinations:
        image = destination.split("/", 1)[1]
        raw = skopeo_inspect_raw(registry.host, image)
        assert sha256_digest(raw) == pushed.digest, destination
        assert json.loads(raw)["config"]["digest"] == pushed.config_digest, destination


def check_image(registry: RegistryServer, job: Job, workdir: Path) -> None:
    """The image holds this build's files and config, and nothing of another build's."""
    image = job.destinations[0].split("/", 1)[1]
    config = json.loads(subprocess.run(
        ["skopeo", "inspect", "--config", "--raw", "--tls-verify=false",
         f"docker://{registry.host}/{image}"], capture_output=True, check=True,
        timeout=120).stdout)
    n = job.number
    assert f"BUILD_ID={n}" in config["config"]["Env"]
    assert config["config"]["Labels"]["build.id"] == str(n)
    assert len(config["rootfs"]["diff_ids"]) == 5  # the base and four steps
    rootfs = skopeo_unpack(registry.host, image, workdir / f"unpack{n}")
    assert sorted(p.name for p in (rootfs / "own").iterdir()) == ["id.txt", f"n{n}.txt"]
    assert (rootfs / "own-copy.txt").read_text() == f"{n}\n"
    assert (rootfs / "own-env.txt").read_text() == f"build {n}\n"
    assert (rootfs / "shared" / "shared.txt").read_text() == "the same in every build\n"
    assert (rootfs / "shared" / "run.txt").read_text() == "shared-run\n"
    strays = sorted(str(p.relative_to(rootfs)) for p in rootfs.rglob("n*.txt"))
    assert strays == [f"own/n{n}.txt"]


def check_round(registry: RegistryServer, jobs: list[Job], pushed: dict[int, Pushed],
                workdir: Path, *, unpack: bool) -> None:
    assert sorted(pushed) == list(range(BUILDS))
    assert len({p.digest for p in pushed.values()}) == BUILDS  # every image its own
    for job in jobs:
        check_tags(registry, job, pushed[job.number])
        if unpack:
            check_image(registry, job, workdir)


def check_cache_round(first: dict[int, Pushed], second: dict[int, Pushed]) -> None:
    """The first round missed each build's own steps; the second hit every step and gave
    the very same images."""
    for number in range(BUILDS):
        assert not any(first[number].cached[i] for i in OWN_STEPS), first[number].cached
        assert second[number].cached == ALL_HIT, (number, second[number].cached)
        assert second[number].digest == first[number].digest, number


def check_base_cache(root: Path, registry: RegistryServer, job: Job) -> None:
    """The shared base layer cache holds the base image's layer (and perhaps layers pulled
    from a registry layer cache), each whole, and no partial file."""
    blobs = root / "blobs" / "sha256"
    names = sorted(p.name for p in blobs.iterdir())
    assert [n for n in names if n.startswith(".")] == []
    for name in names:
        assert hashlib.sha256((blobs / name).read_bytes()).hexdigest() == name
    manifest = json.loads(skopeo_inspect_raw(registry.host,
                                             job.destinations[0].split("/", 1)[1]))
    assert manifest["layers"][0]["digest"].split(":")[1] in names


#: cache entries the eight builds write: the two shared steps once, each build's two steps
CACHE_ENTRIES = 2 + 2 * BUILDS


def check_layer_cache(repo: str, registry: RegistryServer) -> None:
    """Each of the entries is named once and leads to a whole manifest, config and layer."""
    if repo.startswith("oci:"):
        layout = OciLayout(Path(repo[4:]))
        entries = layout.read_index().manifests
        names = {(d.annotations or {}).get(REF_NAME) for d in entries}
        assert len(entries) == len(names) == CACHE_ENTRIES
        for descriptor in entries:
            manifest = parse_manifest(layout.read_blob(descriptor), descriptor.media_type)
            layout.read_blob(manifest.config)
            layer = manifest.layers[0]
            data = layout.blob_path(layer.digest).read_bytes()
            assert sha256_digest(data) == layer.digest
        return
    repository = repo.split("/", 1)[1]
    tags = requests.get(f"{registry.url}/v2/{repository}/tags/list", timeout=30).json()["tags"]
    assert len(tags) == CACHE_ENTRIES
    for tag in tags:
        manifest = json.loads(skopeo_inspect_raw(registry.host, f"{repository}:{tag}"))
        for blob in (manifest["config"], *manifest["layers"]):
            head = requests.head(f"{registry.url}/v2/{repository}/blobs/{blob['digest']}",
                                 timeout=30)
            assert head.status_code == 200, (tag, blob)


def cache_repo(kind: str, registry: RegistryServer, tmp_path: Path) -> str:
    if kind == "oci":
        return f"oci:{tmp_path / 'layer-cache'}"
    return f"{registry.host}/conc-cache/{tmp_path.name.lower()}"


@pytest.fixture(params=["registry", "oci"])
def cache_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)
