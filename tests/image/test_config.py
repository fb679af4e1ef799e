"""Image configs: parsing Docker's fields, keeping unknown ones, and building new values."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from core.errors import ImageError
from core.image.config import (
    DEFAULT_PATH,
    ContainerConfig,
    Healthcheck,
    History,
    ImageConfig,
    format_created,
    parse_image_config,
)
from core.image.manifest import Platform

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64

DOCKER_CONFIG: dict[str, Any] = {
    "architecture": "arm64",
    "variant": "v8",
    "os": "linux",
    "created": "2023-05-19T20:19:21.123456789Z",
    "author": "someone",
    "docker_version": "20.10.23",
    "container": "0d4f",
    "container_config": {"Hostname": "0d4f", "Cmd": ["/bin/sh", "-c", "#(nop) CMD [\"sh\"]"]},
    "config": {
        "Hostname": "",
        "AttachStdin": False,
        "User": "app:app",
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
        "Entrypoint": ["/entry.sh"],
        "Cmd": None,
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000, "Retries": 3},
        "ArgsEscaped": True,
        "Image": "sha256:" + "9" * 64,
        "Volumes": {"/data": {}},
        "WorkingDir": "/srv",
        "Labels": {"maintainer": "me", "org.opencontainers.image.version": "1"},
        "StopSignal": "SIGTERM",
        "Shell": ["/bin/bash", "-c"],
        "OnBuild": ["RUN echo child"],
    },
    "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
    "history": [
        {"created": "2023-05-19T20:19:20Z", "created_by": "ADD file:abc in /"},
        {"created": "2023-05-19T20:19:21Z", "created_by": "CMD [\"sh\"]", "empty_layer": True,
         "comment": "buildkit.dockerfile.v0"},
        {"created": "2023-05-19T20:19:21Z", "created_by": "RUN x", "author": "a",
         "vendor.extension": {"k": [1, 2]}},
    ],
    "moby.buildkit.buildinfo.v1": "eyJmcm9udGVuZCI6ImRvY2tlcmZpbGUudjAifQ==",
}


def test_parse_known_fields() -> None:
    image = parse_image_config(json.dumps(DOCKER_CONFIG).encode())
    assert image.platform == Platform("linux", "arm64", "v8")
    assert (image.created, image.author) == ("2023-05-19T20:19:21.123456789Z", "someone")
    config = image.config
    assert config.user == "app:app"
    assert config.exposed_ports == ("53/udp", "80/tcp")  # kept sorted
    assert config.env == ("PATH=/usr/bin:/bin", "LANG=C.UTF-8")
    assert (config.entrypoint, config.cmd) == (("/entry.sh",), None)
    assert config.healthcheck == Healthcheck(("CMD-SHELL", "true"), interval=30_000_000_000,
                                             retries=3)
    assert config.args_escaped is True
    assert config.volumes == ("/data",)
    assert config.working_dir == "/srv"
    assert dict(config.labels) == DOCKER_CONFIG["config"]["Labels"]
    assert (config.stop_signal, config.shell, config.on_build) == (
        "SIGTERM", ("/bin/bash", "-c"), ("RUN echo child",))
    assert image.diff_ids == (D1, D2)
    assert [h.empty_layer for h in image.history] == [False, True, False]
    assert image.history[1].comment == "buildkit.dockerfile.v0"


def test_round_trip_keeps_unknown_fields() -> None:
    image = parse_image_config(json.dumps(DOCKER_CONFIG).encode())
    written = json.loads(image.to_json())
    expected = json.loads(json.dumps(DOCKER_CONFIG))
    del expected["config"]["Cmd"]  # null is written as absent
    assert written == expected
    assert parse_image_config(image.to_json()) == image
    assert image.extra["container_config"]["Hostname"] == "0d4f"
    assert image.config.extra["Image"] == "sha256:" + "9" * 64
    assert image.history[2].extra == {"vendor.extension": {"k": (1, 2)}}


def test_minimal_config() -> None:
    image = parse_image_config(b'{"architecture":"amd64","os":"linux","rootfs":'
                               b'{"type":"layers","diff_ids":[]}}')
    assert image == ImageConfig("amd64", "linux")
    assert image.to_json() == (b'{"architecture":"amd64","os":"linux",'
                               b'"rootfs":{"diff_ids":[],"type":"layers"}}')


def test_explicit_empty_cmd_is_kept() -> None:
    image = ImageConfig("amd64", "linux", config=ContainerConfig(entrypoint=("/x",), cmd=()))
    written = json.loads(image.to_json())
    assert written["config"] == {"Entrypoint": ["/x"], "Cmd": []}
    assert parse_image_config(image.to_json()).config.cmd == ()


def test_string_cmd_accepted() -> None:
    doc = {"architecture": "amd64", "os": "linux", "config": {"Cmd": "echo hi"}}
    assert parse_image_config(json.dumps(doc).encode()).config.cmd == ("echo hi",)


def test_append_layer_and_history() -> None:
    base = ImageConfig("amd64", "linux")
    step = base.with_layer(D1, History(created_by="COPY a /", empty_layer=True))
    step = step.with_history(History(created_by="ENV A=1"))
    assert base.diff_ids == () and base.history == ()
    assert step.diff_ids == (D1,)
    assert [(h.created_by, h.empty_layer) for h in step.history] == [
        ("COPY a /", False), ("ENV A=1", True)]
    with pytest.raises(ImageError):
        base.with_layer("sha256:nope", History())


def test_replace_container_config_and_platform() -> None:
    image = ImageConfig("amd64", "linux")
    changed = image.with_container_config(ContainerConfig(user="1000"))
    assert changed.config.user == "1000" and image.config.user == ""
    moved = image.with_platform(Platform("linux", "arm64", "v8"))
    assert moved.platform == Platform("linux", "arm64", "v8")


def test_env_helpers() -> None:
    config = ContainerConfig(env=("A=1", "B=2", "NOVALUE"))
    assert config.get_env("A") == "1"
    assert config.get_env("NOVALUE") == ""
    assert config.get_env("C") is None
    assert config.with_env("A", "x=y").env == ("A=x=y", "B=2", "NOVALUE")
    assert config.with_env("C", "3").env == ("A=1", "B=2", "NOVALUE", "C=3")
    assert config.with_default_path().env[-1] == f"PATH={DEFAULT_PATH}"
    with_path = ContainerConfig(env=("PATH=/bin",))
    assert with_path.with_default_path() is with_path


def test_labels_merge_and_are_read_only() -> None:
    config = ContainerConfig(labels={"a": "1"}).with_labels({"b": "2", "a": "3"})
    assert dict(config.labels) == {"a": "3", "b": "2"}
    with pytest.raises(TypeError):
        config.labels["c"] = "4"  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        config.user = "root"  # type: ignore[misc]


@pytest.mark.parametrize(("change", "message"), [
    ({"architecture": None}, "architecture has the wrong type"),
    ({"os": 3}, "os has the wrong type"),
    ({"rootfs": {"type": "other", "diff_ids": []}}, "rootfs must be"),
    ({"rootfs": {"type": "layers", "diff_ids": ["nope"]}}, "rootfs.diff_ids: invalid digest"),
    ({"config": []}, "config must be an object"),
    ({"config": {"Env": "A=1"}}, "config.Env has the wrong type"),
    ({"config": {"Labels": {"a": 1}}}, "config.Labels has the wrong type"),
    ({"config": {"ExposedPorts": ["80"]}}, "config.ExposedPorts has the wrong type"),
    ({"config": {"ArgsEscaped": "yes"}}, "config.ArgsEscaped has the wrong type"),
    ({"config": {"Healthcheck": {"Retries": "3"}}}, "Healthcheck.Retries has the wrong type"),
    ({"history": [1]}, "history has the wrong type"),
    ({"history": [{"empty_layer": "true"}]}, "history.empty_layer has the wrong type"),
])
def test_invalid(change: dict[str, Any], message: str) -> None:
    doc = {"architecture": "amd64", "os": "linux", **change}
    with pytest.raises(ImageError, match=message):
        parse_image_config(json.dumps(doc).encode())


@pytest.mark.parametrize(("moment", "text"), [
    (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
    (datetime(2024, 1, 2, 3, 4, 5, 120000), "2024-01-02T03:04:05.120000Z"),
    (datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))), "2024-01-02T03:04:05Z"),
    (datetime(1970, 1, 1, tzinfo=UTC), "1970-01-01T00:00:00Z"),
])
def test_format_created(moment: datetime, text: str) -> None:
    assert format_created(moment) == text
