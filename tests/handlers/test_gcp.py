"""GCP end to end: fake-gcs-server, a real functions-framework process, registry, Pub/Sub.

The module runs its own fake-gcs-server that publishes storage notifications to the Pub/Sub
emulator (the `messagePublished` path), and one functions-framework server with the GCP
handler. CloudEvents are posted over HTTP the way Eventarc sends them (binary and structured
mode); completion events are pulled from the emulator.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.fixtures.functions import FunctionsServer, run_functions
from tests.fixtures.images import BaseImages, skopeo_inspect_raw
from tests.fixtures.proxy import fault_proxy
from tests.fixtures.pubsub import PROJECT, Message, PubSub
from tests.fixtures.registry import RegistryServer
from tests.handlers.conftest import context_tar, image_exists, manifest_digest

FINALIZED = "google.cloud.storage.object.v1.finalized"
SCRATCH = {"Dockerfile": "FROM scratch\nCOPY app.txt /app.txt\n", "app.txt": "gcp\n"}


@dataclass(frozen=True)
class GcpStack:
    gcs: str  # fake-gcs-server URL
    pubsub: PubSub
    completions: str  # topic the function publishes to
    notifications: str  # topic fake-gcs-server publishes storage notifications to
    function: FunctionsServer
    registry: RegistryServer
    env: dict[str, str]  # the function's environment

    def bucket(self) -> str:
        name = f"ctx-{uuid.uuid4().hex[:10]}"
        requests.post(f"{self.gcs}/storage/v1/b", json={"name": name},
                      timeout=10).raise_for_status()
        return name

    def upload(self, bucket: str, name: str, data: bytes,
               metadata: dict[str, str] | None = None) -> dict[str, Any]:
        """Upload like a client would (multipart with metadata); the object resource."""
        boundary = "bucketbuild-boundary"
        resource = json.dumps({"name": name, "metadata": metadata or {}})
        body = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{resource}\r\n"
                f"--{boundary}\r\nContent-Type: application/gzip\r\n\r\n").encode()
        body += data + f"\r\n--{boundary}--\r\n".encode()
        reply = requests.post(f"{self.gcs}/upload/storage/v1/b/{bucket}/o?uploadType=multipart",
                              data=body, timeout=10, headers={
                                  "Content-Type": f"multipart/related; boundary={boundary}"})
        reply.raise_for_status()
        return reply.json()  # type: ignore[no-any-return]

    def read(self, bucket: str, name: str) -> bytes:
        reply = requests.get(f"{self.gcs}/storage/v1/b/{bucket}/o/{quote(name, safe='')}",
                             params={"alt": "media"}, timeout=10)
        reply.raise_for_status()
        return reply.content

    def status(self, bucket: str, name: str) -> dict[str, Any]:
        return json.loads(self.read(bucket, name + ".result.json"))  # type: ignore[no-any-return]

    def notification(self, name: str) -> Message:
        """The storage notification fake-gcs-server published about object `name`."""
        for _ in range(10):
            for message in self.pubsub.pull(self.notifications, count=1, timeout=2):
                if message.attributes.get("objectId") == name:
                    return message
        raise AssertionError(f"fake-gcs-server published no notification about {name}")

    def events(self, key: str, count: int, *, wait: float = 10.0) -> list[dict[str, Any]]:
        """Completion events about `key` (others in the topic are dropped)."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait
        while len(found) < count and time.monotonic() < deadline:
            found += [m.json() for m in self.pubsub.pull(self.completions, count=1, timeout=1)
                      if m.json()["data"].get("source", {}).get("key") == key]
        return found


def binary_headers(resource: dict[str, Any], *, event_type: str = FINALIZED) -> dict[str, str]:
    return {"ce-id": uuid.uuid4().hex, "ce-specversion": "1.0", "ce-type": event_type,
            "ce-source": f"//storage.googleapis.com/projects/_/buckets/{resource['bucket']}",
            "ce-subject": f"objects/{resource['name']}", "ce-time": resource["updated"],
            "Content-Type": "application/json"}


def post_binary(stack: GcpStack, resource: dict[str, Any]) -> requests.Response:
    return stack.function.post(headers=binary_headers(resource),
                               body=json.dumps(resource).encode())


def _notifying_gcs(workdir: Path, topic: str,
                   pubsub: PubSub) -> contextlib.AbstractContextManager[str]:
    """A fake-gcs-server of our own that publishes finalize notifications to `topic`."""
    from tests.fixtures.gcs import run_fake_gcs

    return run_fake_gcs(workdir / "fake-gcs.log", "-event.pubsub-project-id", PROJECT,
                        "-event.pubsub-topic", topic.rsplit("/", 1)[-1], "-event.list",
                        "finalize", env={"PUBSUB_EMULATOR_HOST": pubsub.host})


@pytest.fixture(scope="module")
def gcp(pubsub: PubSub, registry: RegistryServer,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpStack]:
    workdir = tmp_path_factory.mktemp("gcp")
    completions, notifications = pubsub.topic("builds"), pubsub.topic("gcs")
    with _notifying_gcs(workdir, notifications, pubsub) as gcs_url:
        env = {"STORAGE_EMULATOR_HOST": gcs_url, "PUBSUB_EMULATOR_HOST": pubsub.host,
               "GOOGLE_CLOUD_PROJECT": PROJECT,
               "BUCKETBUILD_DESTINATION": f"{registry.host}/gcp/{{name}}:{{version}}",
               "BUCKETBUILD_ALLOWED_DESTINATIONS": f"{registry.host}/gcp/*",
               "BUCKETBUILD_INSECURE_REGISTRIES": registry.host,
               "BUCKETBUILD_PUBSUB_TOPIC": completions, "BUCKETBUILD_TIMEOUT": "300",
               "BUCKETBUILD_TIMEOUT_MARGIN": "5",
               "BUCKETBUILD_WORK_ROOT": str(workdir / "work")}
        with run_functions(env=env, workdir=workdir / "function") as function:
            yield GcpStack(gcs_url, pubsub, completions, notifications, function, registry,
                           env)


def test_binary_finalize_event_builds_and_publishes(gcp: GcpStack) -> None:
    bucket = gcp.bucket()
    resource = gcp.upload(bucket, "web/site.tar.gz", context_tar(SCRATCH),
                          metadata={"bucketbuild-labels": "via=metadata"})
    assert isinstance(resource["generation"], str) and isinstance(resource["size"], str)
    reply = post_binary(gcp, resource)
    assert reply.status_code == 200, gcp.function.log()
    started, succeeded = gcp.events("web/site.tar.gz", count=2)
    assert started["type"] == "io.bucketbuild.build.started"
    assert succeeded["type"] == "io.bucketbuild.build.succeeded", succeeded["data"].get("error")
    assert succeeded == gcp.status(bucket, "web/site.tar.gz")
    data = succeeded["data"]
    image = f"gcp/site:{resource['generation']}"
    assert data["destinations"] == [f"{gcp.registry.host}/{image}"]
    assert data["digest"] == manifest_digest(gcp.registry.host, image)
    assert data["source"]["version"] == resource["generation"]
    assert data["log"] == f"gs://{bucket}/web/site.tar.gz.log"
    assert "COPY app.txt /app.txt" in gcp.read(bucket, "web/site.tar.gz.log").decode()
    assert succeeded["source"] == "bucketbuild/on_finalize"


def test_structured_event_and_duplicate(gcp: GcpStack) -> None:
    bucket = gcp.bucket()
    resource = gcp.upload(bucket, "structured.tgz", context_tar(SCRATCH))
    event = {"specversion": "1.0", "type": FINALIZED, "id": uuid.uuid4().hex,
             "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
             "subject": "objects/structured.tgz", "time": resource["updated"],
             "datacontenttype": "application/json", "data": resource}
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/cloudevents+json"}
    assert gcp.function.post(headers=headers, body=body).status_code == 200
    first = gcp.status(bucket, "structured.tgz")
    assert first["type"] == "io.bucketbuild.build.succeeded"
    assert gcp.function.post(headers=headers, body=body).status_code == 200
    assert gcp.status(bucket, "structured.tgz") == first
    types = [e["type"].rsplit(".", 1)[1] for e in gcp.events("structured.tgz", count=3)]
    assert types == ["started", "succeeded", "succeeded"]


def test_pubsub_wrapped_storage_notification(gcp: GcpStack) -> None:
    bucket = gcp.bucket()
    resource = gcp.upload(bucket, "notified.tar", context_tar(SCRATCH, compress=""))
    message = gcp.notification("notified.tar")
    data = {"message": {"data": base64.b64encode(message.data).decode(),
                        "attributes": message.attributes, "messageId": message.message_id},
            "subscription": f"projects/{PROJECT}/subscriptions/eventarc-sub"}
    headers = {"ce-id": message.message_id, "ce-specversion": "1.0",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
               "ce-source": f"//pubsub.googleapis.com/{gcp.notifications}",
               "Content-Type": "application/json"}
    reply = gcp.function.post(headers=headers, body=json.dumps(data).encode())
    assert reply.status_code == 200, gcp.function.log()
    status = gcp.status(bucket, "notified.tar")
    assert status["type"] == "io.bucketbuild.build.succeeded"
    assert status["data"]["source"]["version"] == resource["generation"]


def test_failing_dockerfile_is_reported_on_pubsub(gcp: GcpStack) -> None:
    bucket = gcp.bucket()
    files = {"Dockerfile": "FROM scratch\nCOPY nope.txt /\n"}
    resource = gcp.upload(bucket, "broken.tar.gz", context_tar(files))
    assert post_binary(gcp, resource).status_code == 200
    started, failed = gcp.events("broken.tar.gz", count=2)
    assert started["type"] == "io.bucketbuild.build.started"
    assert failed["type"] == "io.bucketbuild.build.failed"
    assert failed["data"]["error"]["line"] == 2
    assert not image_exists(gcp.registry.host, f"gcp/broken:{resource['generation']}")


def test_disallowed_destination(gcp: GcpStack) -> None:
    bucket = gcp.bucket()
    resource = gcp.upload(bucket, "evil.tar.gz", context_tar(SCRATCH),
                          metadata={"bucketbuild-destination": "docker.io/evil/app:1"})
    assert post_binary(gcp, resource).status_code == 200
    [failed] = gcp.events("evil.tar.gz", count=1)
    assert failed["data"]["error"]["class"] == "destination"


def test_own_objects_and_other_files_are_ignored(gcp: GcpStack) -> None:
    bucket = gcp.bucket()
    resource = gcp.upload(bucket, "own.tar.gz", context_tar(SCRATCH))
    assert post_binary(gcp, resource).status_code == 200
    gcp.events("own.tar.gz", count=2)
    for name in ("own.tar.gz.result.json", "own.tar.gz.log"):
        own = requests.get(f"{gcp.gcs}/storage/v1/b/{bucket}/o/{quote(name, safe='')}",
                           timeout=10).json()
        assert post_binary(gcp, own).status_code == 200
    other = gcp.upload(bucket, "readme.md", b"# hi")
    assert post_binary(gcp, other).status_code == 200
    assert gcp.events("own.tar.gz", count=1, wait=1.0) == []
    assert gcp.status(bucket, "own.tar.gz")["type"] == "io.bucketbuild.build.succeeded"
    listing = requests.get(f"{gcp.gcs}/storage/v1/b/{bucket}/o", timeout=10).json()
    assert sorted(item["name"] for item in listing["items"]) == [
        "own.tar.gz", "own.tar.gz.log", "own.tar.gz.result.json", "readme.md"]


def test_infrastructure_failure_answers_500_for_a_retry(gcp: GcpStack) -> None:
    bucket = gcp.bucket()
    resource = gcp.upload(bucket, "lost.tar.gz", context_tar(SCRATCH))
    resource["bucket"] = "bucket-that-does-not-exist"
    assert post_binary(gcp, resource).status_code == 500


def test_missing_cloudevent_headers_are_refused(gcp: GcpStack) -> None:
    reply = gcp.function.post(headers={"Content-Type": "application/json"}, body=b"{}")
    assert reply.status_code == 400


def test_older_generation_after_a_newer_build_is_stale(gcp: GcpStack) -> None:
    bucket = gcp.bucket()
    old = gcp.upload(bucket, "gen.tar.gz", context_tar(SCRATCH))
    new = gcp.upload(bucket, "gen.tar.gz", context_tar({**SCRATCH, "app.txt": "new"}))
    assert int(new["generation"]) > int(old["generation"])
    assert post_binary(gcp, new).status_code == 200
    assert post_binary(gcp, old).status_code == 200
    status = gcp.status(bucket, "gen.tar.gz")
    assert status["data"]["source"]["version"] == new["generation"]
    assert [e["type"].rsplit(".", 1)[1] for e in gcp.events("gen.tar.gz", count=2)] == [
        "started", "succeeded"]


@pytest.mark.skipif(os.geteuid() != 0, reason="RUN uses the chroot sandbox (root)")
def test_a_warm_instance_reuses_base_layers_and_the_sandbox_probe(
        gcp: GcpStack, base_images: BaseImages, tmp_path: Path,
        functions_server: Callable[..., FunctionsServer]) -> None:
    manifest = json.loads(skopeo_inspect_raw(base_images.host, base_images.docker_gzip))
    layers = [layer["digest"] for layer in manifest["layers"]]
    bucket = gcp.bucket()
    with fault_proxy(base_images.host) as proxy:
        function = functions_server({  # an instance of its own: its cold start is ours
            **gcp.env, "BUCKETBUILD_WORK_ROOT": str(tmp_path / "work"),
            "BUCKETBUILD_INSECURE_REGISTRIES": f"{gcp.registry.host},{proxy.host}"})
        logs, gets = [], []
        for name in ("warm/one.tar.gz", "warm/two.tar.gz"):
            files = {"Dockerfile": f"FROM {proxy.host}/{base_images.docker_gzip}\n"
                                   f"RUN echo {name} > /made\n"}
            resource = gcp.upload(bucket, name, context_tar(files))
            reply = function.post(headers=binary_headers(resource),
                                  body=json.dumps(resource).encode())
            assert reply.status_code == 200, function.log()
            data = gcp.status(bucket, name)["data"]
            assert data["sandbox"] == "chroot", data.get("error")
            logs.append(gcp.read(bucket, name + ".log").decode())
            gets.append(sum(proxy.count("GET", f"/blobs/{digest}") for digest in layers))
    assert gets == [len(layers), len(layers)]  # the second build read the cache
    kept = tmp_path / "work" / "base-cache" / "blobs" / "sha256"
    assert sorted(p.name for p in kept.iterdir()) == sorted(d.split(":")[1] for d in layers)
    assert "RUN sandbox chosen: chroot" in logs[0]  # the cold start probed
    assert "RUN sandbox chosen" not in logs[1]  # the warm invocation did not
