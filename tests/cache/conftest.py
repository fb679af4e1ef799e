"""Cache tests: the same context built again and again, with the layer cache on."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from core.build.options import BuildOptions, CacheOptions, OutputOptions
from core.build.pipeline import run_build
from core.build.result import BuildResult
from core.registry import RegistryClient
from tests.build.conftest import Recorder, write_context
from tests.fixtures.images import BaseImages
from tests.fixtures.registry import RegistryServer, make_client


@dataclass
class CachedBuilds:
    """Builds of one context directory (files can change between builds)."""

    tmp: Path
    registry: RegistryServer
    client: RegistryClient
    base: BaseImages
    cache_repo: str
    counter: int = 0

    @property
    def busybox(self) -> str:
        return f"{self.base.host}/{self.base.docker_gzip}"

    @property
    def context(self) -> Path:
        return self.tmp / "ctx"

    def write(self, files: Mapping[str, str | bytes]) -> None:
        write_context(self.context, files)

    def build(self, dockerfile: str | None = None, *, recorder: Recorder | None = None,
              cache: CacheOptions | None = None, **changes: Any) -> BuildResult:
        self.counter += 1
        if dockerfile is not None:
            self.write({"Dockerfile": dockerfile})
        options = BuildOptions(
            context=str(self.context), work_dir=self.tmp / f"work{self.counter}",
            output=OutputOptions(destinations=(
                f"{self.registry.host}/cached/app:{self.counter}",)),
            cache=cache or CacheOptions(enabled=True, repo=self.cache_repo))
        return run_build(replace(options, **changes), events=recorder or Recorder(),
                         registry=self.client)


def cached_steps(result: BuildResult) -> list[bool]:
    """Per step (FROM lines included): whether it came from the cache."""
    return [step.cached for step in result.steps]


@pytest.fixture()
def cached(tmp_path: Path, registry: RegistryServer,
           base_images: BaseImages) -> Iterator[CachedBuilds]:
    client = make_client(registry.host)
    repo = f"{registry.host}/cache/{tmp_path.name.lower()}"
    try:
        yield CachedBuilds(tmp_path, registry, client, base_images, repo)
    finally:
        client.close()
