"""Two builds at once in one process through the service runner (Cloud Run with a concurrency
above 1): each with its own registry credentials, context and build log, and the process's
environment never changes."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from core.cloud.s3 import S3Store
from core.cloud.storage import ObjectInfo
from core.service.events import BuildRequest
from core.service.runner import InstanceProbe, Invocation, Outcome, Services, handle_request
from core.service.settings import ServiceConfig
from tests.fixtures.images import BaseImages, skopeo_inspect_raw
from tests.fixtures.registry import RegistryServer
from tests.handlers.conftest import context_tar

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="RUN uses the chroot sandbox (root)")

#: answers `get` with the credentials in the file next to it; writes down what it saw
HELPER = """#!/bin/sh
read server
here=$(dirname "$0")
echo "HOME=$HOME TMPDIR=$TMPDIR DOCKER_CONFIG=$DOCKER_CONFIG" >> "$here/seen"
cat "$here/answer.json"
"""


class MeetingStore(S3Store):
    """The S3 store, except that each download waits for the other build's: both builds
    then build at the same time."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self._barrier = barrier

    def download(self, bucket: str, key: str, dest: Path, *, version: str | None = None,
                 max_bytes: int | None = None) -> ObjectInfo:
        info = super().download(bucket, key, dest, version=version, max_bytes=max_bytes)
        self._barrier.wait(timeout=60)
        return info


@dataclass
class Side:
    """One of the two builds: its registry, docker config and upload."""

    name: str
    registry: RegistryServer
    config: ServiceConfig
    key: str = ""
    version: str = ""


def _auth(server: RegistryServer) -> str:
    return base64.b64encode(f"{server.username}:{server.password}".encode()).decode()


def _helper_side(tmp_path: Path, registry: RegistryServer, base: str,
                 work_root: Path) -> Side:
    """Credentials from a credential helper found only in this build's tools directory."""
    tools = tmp_path / "tools-a"
    tools.mkdir()
    helper = tools / "docker-credential-isoa"
    helper.write_text(HELPER)
    helper.chmod(0o755)
    (tools / "answer.json").write_text(json.dumps(
        {"ServerURL": registry.host, "Username": registry.username,
         "Secret": registry.password}))
    config = tmp_path / "docker-a"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"credHelpers": {registry.host: "isoa"}}))
    return Side("alpha", registry, _config(registry, base, work_root, config, tools))


def _auths_side(tmp_path: Path, registry: RegistryServer, base: str,
                work_root: Path) -> Side:
    config = tmp_path / "docker-b.json"  # a file: the runner writes it into the workspace
    config.write_text(json.dumps({"auths": {registry.host: {"auth": _auth(registry)}}}))
    return Side("bravo", registry, _config(registry, base, work_root, config, None))


def _config(registry: RegistryServer, base: str, work_root: Path, docker_config: Path,
            tools: Path | None) -> ServiceConfig:
    return ServiceConfig(destination=f"{registry.host}/iso/{{name}}:{{version}}",
                         insecure_registries=(registry.host, base), work_root=work_root,
                         docker_config=str(docker_config), tools_dir=tools,
                         timeout_margin=5.0)


def _context(side: Side, base: str) -> bytes:
    return context_tar({
        "Dockerfile": f"FROM {base}\nCOPY {side.name}.txt /\n"
                      f"RUN echo {side.name}-ran-here && sleep 2 && wc -c /{side.name}.txt\n",
        f"{side.name}.txt": f"only in {side.name}\n" * 2000})


def _environment_watch(stop: threading.Event, changed: list[str]) -> None:
    before = dict(os.environ)
    while not stop.wait(0.02):
        if dict(os.environ) != before:
            changed.append(str(set(os.environ.items()) ^ set(before.items())))
            return


@needs_root
def test_two_builds_at_once_keep_credentials_logs_and_environment_apart(
        s3_bucket: str, htpasswd_registry: RegistryServer, token_registry: RegistryServer,
        base_images: BaseImages, tmp_path: Path) -> None:
    base = f"{base_images.host}/{base_images.docker_gzip}"
    work_root = tmp_path / "work"  # one work root and base cache, as in one instance
    sides = [_helper_side(tmp_path, htpasswd_registry, base_images.host, work_root),
             _auths_side(tmp_path, token_registry, base_images.host, work_root)]
    s3 = boto3.client("s3")
    for side in sides:
        side.key = f"apps/{side.name}.tar.gz"
        side.version = s3.put_object(Bucket=s3_bucket, Key=side.key,
                                     Body=_context(side, base))["VersionId"]
    services = Services(store=MeetingStore(threading.Barrier(len(sides))),
                        prober=InstanceProbe().get(sides[0].config))
    invocation = Invocation(remaining=lambda: 600.0)
    environ_before = dict(os.environ)
    outcomes: dict[str, Outcome | BaseException] = {}

    def build(side: Side) -> None:
        request = BuildRequest(bucket=s3_bucket, key=side.key, store="s3",
                               version=side.version)
        try:
            outcomes[side.name] = handle_request(request, config=side.config,
                                                 services=services, invocation=invocation)
        except BaseException as exc:
            outcomes[side.name] = exc

    stop, changed = threading.Event(), list[str]()
    watch = threading.Thread(target=_environment_watch, args=(stop, changed))
    watch.start()
    threads = [threading.Thread(target=build, args=(side,)) for side in sides]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    stop.set()
    watch.join()

    assert outcomes == {"alpha": Outcome.SUCCEEDED, "bravo": Outcome.SUCCEEDED}, outcomes
    assert time.monotonic() - started < 300
    assert changed == [] and dict(os.environ) == environ_before
    logs = {side.name: s3.get_object(Bucket=s3_bucket, Key=side.key + ".log")["Body"]
            .read().decode() for side in sides}
    alpha, bravo = sides
    _check_side(s3, s3_bucket, alpha, bravo, logs["alpha"])
    _check_side(s3, s3_bucket, bravo, alpha, logs["bravo"])
    seen = (tmp_path / "tools-a" / "seen").read_text().splitlines()
    assert seen and all(line.startswith(f"HOME={work_root}/") for line in seen), seen
    assert all("/home TMPDIR=" in line and "/tmp DOCKER_CONFIG=" in line for line in seen)
    assert all(line.endswith(f"DOCKER_CONFIG={tmp_path}/docker-a") for line in seen)
    assert sorted(p.name for p in work_root.iterdir()) == ["base-cache"]


def _check_side(s3: Any, bucket: str, side: Side, other: Side, log: str) -> None:
    status = json.loads(s3.get_object(Bucket=bucket, Key=side.key + ".result.json")["Body"]
                        .read())
    data = status["data"]
    image = f"iso/{side.name}:{side.version}"
    assert data["destinations"] == [f"{side.registry.host}/{image}"]
    creds = f"{side.registry.username}:{side.registry.password}"
    raw = skopeo_inspect_raw(side.registry.host, image, creds=creds)
    assert json.loads(raw)["layers"]  # pushed, read back with this side's credentials
    # its own steps, RUN output and library records (streamed by a worker thread) only
    assert f"COPY {side.name}.txt /" in log and f"{side.name}-ran-here" in log
    assert "streamed sha256:" in log and f"to {side.registry.host}/iso/{side.name}" in log
    assert f"pushed {side.registry.host}/{image}" in log
    for foreign in (other.name, other.registry.host, other.key):
        assert foreign not in log, (side.name, foreign)
