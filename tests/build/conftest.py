"""Helpers for build-engine tests: contexts on disk, event recording, one-call builds."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from core.build.events import Event, StepOutput
from core.build.options import BuildOptions, OutputOptions
from core.build.pipeline import run_build
from core.build.result import BuildResult
from core.registry import RegistryClient
from tests.fixtures.images import BaseImages, skopeo_inspect_raw, skopeo_unpack
from tests.fixtures.registry import RegistryServer, make_client


@dataclass
class Recorder:
    """An EventSink keeping every event."""

    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def output(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, StepOutput)]


def write_context(root: Path, files: Mapping[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    return root


@dataclass
class Builder:
    """Builds Dockerfiles from a temp context and checks what was pushed."""

    tmp: Path
    registry: RegistryServer
    client: RegistryClient
    base: BaseImages | None = None
    counter: int = 0

    def image(self, name: str) -> str:
        return f"{self.registry.host}/{name}"

    @property
    def busybox(self) -> str:
        assert self.base is not None
        return f"{self.base.host}/{self.base.docker_gzip}"

    def build(self, text: str, files: Mapping[str, str | bytes] | None = None, *,
              tag: str | None = None, recorder: Recorder | None = None,
              **changes: Any) -> BuildResult:
        self.counter += 1
        context = write_context(self.tmp / f"ctx{self.counter}",
                                {"Dockerfile": text, **(files or {})})
        destination = self.image(tag or f"test/build{self.counter}:latest")
        output = changes.pop("output", OutputOptions(destinations=(destination,)))
        options = BuildOptions(context=str(context), output=output,
                               work_dir=self.tmp / f"work{self.counter}")
        options = replace(options, **changes)
        return run_build(options, events=recorder or Recorder(), registry=self.client)

    def manifest(self, image: str) -> dict[str, Any]:
        return json.loads(skopeo_inspect_raw(self.registry.host, image))  # type: ignore[no-any-return]

    def config(self, image: str) -> dict[str, Any]:
        proc = subprocess.run(["skopeo", "inspect", "--config", "--raw", "--tls-verify=false",
                               f"docker://{self.registry.host}/{image}"],
                              capture_output=True, check=True)
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    def unpack(self, image: str) -> Path:
        self.counter += 1
        return skopeo_unpack(self.registry.host, image, self.tmp / f"unpack{self.counter}")


@pytest.fixture()
def builder(tmp_path: Path, registry: RegistryServer) -> Iterator[Builder]:
    client = make_client(registry.host)
    try:
        yield Builder(tmp_path, registry, client)
    finally:
        client.close()


@pytest.fixture()
def bb(tmp_path: Path, registry: RegistryServer, base_images: BaseImages) -> Iterator[Builder]:
    """A builder whose registry holds the busybox base images."""
    client = make_client(registry.host)
    try:
        yield Builder(tmp_path, registry, client, base_images)
    finally:
        client.close()
