"""Helpers for the streaming, lazy-base, budget and memory tests: builds through a counting
proxy, synthetic base images pushed in-test, and a look at the work dir a build leaves."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from core.build.options import BuildOptions, OutputOptions
from core.build.pipeline import run_build
from core.build.result import BuildResult
from core.image.reference import parse_reference
from core.registry import RegistryClient
from tests.build.conftest import Recorder, write_context
from tests.fixtures.images import BaseImages, BuiltImage, blob_sources, compose_image
from tests.fixtures.proxy import FaultProxy, fault_proxy
from tests.fixtures.registry import RegistryServer, make_client


@dataclass
class ProxiedBuilds:
    """Builds whose every registry request goes through `proxy` (to the session registry)."""

    tmp: Path
    registry: RegistryServer
    proxy: FaultProxy
    base: BaseImages
    client_options: dict[str, Any] = field(default_factory=dict)
    counter: int = 0

    @property
    def host(self) -> str:
        return self.proxy.host

    @property
    def busybox(self) -> str:
        return f"{self.proxy.host}/{self.base.docker_gzip}"

    def client(self, *extra_hosts: str) -> RegistryClient:
        return make_client(self.proxy.host, self.registry.host, *extra_hosts,
                           **self.client_options)

    def options(self, dockerfile: str, files: Mapping[str, str | bytes] | None = None, *,
                destinations: tuple[str, ...] | None = None, **changes: Any) -> BuildOptions:
        self.counter += 1
        context = write_context(self.tmp / f"ctx{self.counter}",
                                {"Dockerfile": dockerfile, **(files or {})})
        if destinations is None:
            destinations = (f"{self.proxy.host}/perf/build{self.counter}:latest",)
        options = BuildOptions(context=str(context),
                               output=OutputOptions(destinations=destinations),
                               work_dir=self.tmp / f"work{self.counter}")
        return replace(options, **changes)

    def build(self, dockerfile: str, files: Mapping[str, str | bytes] | None = None, *,
              client: RegistryClient | None = None, **changes: Any) -> BuildResult:
        options = self.options(dockerfile, files, **changes)
        own = client is None
        client = client or self.client()
        try:
            return run_build(options, events=Recorder(), registry=client)
        finally:
            if own:
                client.close()

    def blob_gets(self, digests: list[str]) -> int:
        return sum(self.proxy.count("GET", f"/blobs/{digest}") for digest in digests)


@pytest.fixture()
def proxied(tmp_path: Path, registry: RegistryServer,
            base_images: BaseImages) -> Iterator[ProxiedBuilds]:
    with fault_proxy(registry.host) as proxy:
        yield ProxiedBuilds(tmp_path, registry, proxy, base_images)


def executable_layer(files: Mapping[str, tuple[bytes, int]]) -> bytes:
    """A plain tar of regular files with their modes (parents 0755)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()
        for path in sorted(files):
            parts = path.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                directory = "/".join(parts[:depth])
                if directory not in made:
                    made.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            data, mode = files[path]
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def push_composed(client: RegistryClient, reference: str,
                  layers: list[Mapping[str, bytes]]) -> BuiltImage:
    """Push an in-test image (gzip layers of regular files) and return it."""
    image = compose_image(layers)
    client.push_image([parse_reference(reference)], blobs=blob_sources(image),
                      manifest=image.manifest, media_type=image.media_type)
    return image


def leftovers(work: Path) -> list[str]:
    """Files left under a work dir's layers/ (spooled blobs)."""
    layers = work / "layers"
    return sorted(p.name for p in layers.iterdir()) if layers.exists() else []
