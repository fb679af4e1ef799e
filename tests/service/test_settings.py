"""Settings: environment parsing, metadata > bucketbuild.json > environment, the allow-list."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.service.events import BuildRequest
from core.service.overrides import (
    DestinationMissingError,
    DestinationNotAllowedError,
    Overrides,
    Placement,
    build_options,
    expand,
    from_archive_json,
    from_metadata,
    template_fields,
)
from core.service.settings import ServiceConfig, SettingsError, parse_mapping

REQUEST = BuildRequest(bucket="Team.Uploads", key="apps/Web App/site.tar.gz", store="s3",
                       version="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", etag="e")
PLACEMENT = Placement(context="tar:///tmp/x/context.archive", work_dir=Path("/tmp/x/build"),
                      deadline=123.0, build_id="0123456789abcdef0123")


def config(**env: str) -> ServiceConfig:
    return ServiceConfig.from_environ({f"BUCKETBUILD_{k}": v for k, v in env.items()})


def test_environment_defaults() -> None:
    cfg = ServiceConfig.from_environ({"PATH": "/bin", "BUCKETBUILD_EMPTY_IS_UNSET": ""})
    assert cfg.destination is None and cfg.allowed_destinations is None
    assert cfg.dockerfile == "Dockerfile" and cfg.run_isolation == "auto"
    assert cfg.timeout == 540.0 and cfg.timeout_margin == 20.0
    assert cfg.work_root.name == "bucketbuild"


def test_environment_values_are_parsed() -> None:
    cfg = config(DESTINATION="reg.example/{name}:{version}",
                 ALLOWED_DESTINATIONS="reg.example/*, other.example/app",
                 BUILD_ARGS='{"A": "1", "B": 2, "C": true}', LABELS="team=web,tier=a=b",
                 INSECURE_REGISTRIES="127.0.0.1:5000,localhost:5001", TIMEOUT="9m",
                 TIMEOUT_MARGIN="30", RUN_ISOLATION="proot", DISK_BUDGET="2G",
                 CACHE_TTL="24h", IMAGE_FORMAT="oci", COMPRESSION="zstd",
                 DOCKER_CONFIG="secretsmanager:arn:aws:secretsmanager:us-east-1:1:secret:x")
    assert cfg.allowed_destinations == ("reg.example/*", "other.example/app")
    assert dict(cfg.build_args) == {"A": "1", "B": "2", "C": "true"}
    assert dict(cfg.labels) == {"team": "web", "tier": "a=b"}
    assert cfg.insecure_registries == ("127.0.0.1:5000", "localhost:5001")
    assert (cfg.timeout, cfg.timeout_margin, cfg.cache_ttl) == (540.0, 30.0, 86400)
    assert cfg.run_isolation == "proot" and cfg.disk_budget == 2 << 30
    assert (cfg.image_format, cfg.compression) == ("oci", "zstd")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("RUN_ISOLATION", "docker", "expected one of auto"),
    ("TIMEOUT", "soon", "invalid duration"),
    ("BUILD_ARGS", "{not json", "invalid JSON"),
    ("LABELS", "novalue", "expected KEY=VALUE"),
    ("DISK_BUDGET", "lots", "invalid size"),
    ("DESTNATION", "x", "unknown setting BUCKETBUILD_DESTNATION"),
    ("BASE_CACHE", "base-cache", "must be an absolute path"),
    ("BASE_CACHE_BUDGET", "big", "invalid size"),
    ("BASE_CACHE_BUDGET", "-1G", "invalid size"),
    ("BASE_CACHE_BUDGE", "1G", "unknown setting BUCKETBUILD_BASE_CACHE_BUDGE"),
])
def test_bad_environment_values_are_refused_by_name(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        config(**{name: value})
    assert f"BUCKETBUILD_{name}" in str(caught.value)


def test_base_layer_cache_settings_reach_the_build_options() -> None:
    def cache(**env: str) -> tuple[Path | None, int]:
        cfg = config(DESTINATION="127.0.0.1:5000/{name}:1", WORK_ROOT="/srv/work", **env)
        options = build_options(REQUEST, config=cfg, metadata=Overrides(),
                                archive=Overrides(), placement=PLACEMENT)
        return options.cache.base_dir, options.cache.base_budget

    assert cache() == (Path("/srv/work/base-cache"), 2 << 30)  # on by default, under the root
    assert cache(BASE_CACHE="/mnt/bases", BASE_CACHE_BUDGET="300M") == (Path("/mnt/bases"),
                                                                        300 << 20)
    assert cache(BASE_CACHE_BUDGET="512k") == (Path("/srv/work/base-cache"), 512 << 10)
    for off in ("0", "off", "OFF"):
        assert cache(BASE_CACHE="/mnt/bases", BASE_CACHE_BUDGET=off)[0] is None


def test_parse_mapping_forms() -> None:
    assert dict(parse_mapping("a=1, b = 2 ,c=")) == {"a": "1", "b": " 2", "c": ""}
    assert dict(parse_mapping('{"x": 1.5}')) == {"x": "1.5"}
    with pytest.raises(ValueError, match="must be a string"):
        parse_mapping('{"x": [1]}')


def test_template_fields_are_valid_reference_parts() -> None:
    fields = template_fields(REQUEST, build_id="abc")
    assert dict(fields) == {"bucket": "team.uploads", "key": "apps/web-app/site",
                            "name": "site", "version": "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY"}
    unversioned = BuildRequest(bucket="b", key="x.tgz", store="s3")
    assert template_fields(unversioned, build_id="abc")["version"] == "abc"


def test_expand_refuses_unknown_fields() -> None:
    assert expand("r/{bucket}/{key}:{version}", {"bucket": "b", "key": "k", "name": "n",
                                                  "version": "v"}) == "r/b/k:v"
    with pytest.raises(SettingsError, match="unknown field"):
        expand("r/{user}:1", {})
    with pytest.raises(SettingsError, match="destination template"):
        expand("r/{name:1", {"name": "n"})


def test_precedence_metadata_over_archive_over_environment() -> None:
    cfg = config(DESTINATION="reg.example/{key}:{version}", ALLOWED_DESTINATIONS="reg.example/*",
                 DOCKERFILE="env.Dockerfile", TARGET="env-target", PLATFORM="linux/amd64",
                 BUILD_ARGS="A=env,B=env,C=env", LABELS="l1=env")
    metadata = from_metadata({"bucketbuild-dockerfile": "meta.Dockerfile",
                              "Bucketbuild-Build-Args": "A=meta", "other": "ignored"})
    archive = from_archive_json(b'{"dockerfile": "json.Dockerfile", "target": "json-target",'
                                b' "build-args": {"A": "json", "B": "json"},'
                                b' "labels": "l2=json", "context-sub-path": "svc"}')
    options = build_options(REQUEST, config=cfg, metadata=metadata, archive=archive,
                            placement=PLACEMENT)
    assert options.dockerfile == "meta.Dockerfile"
    assert options.target == "json-target"
    assert options.platform == "linux/amd64"
    assert dict(options.build_args) == {"A": "meta", "B": "json", "C": "env"}
    assert dict(options.labels) == {"l1": "env", "l2": "json"}
    assert options.context_sub_path == "svc"
    assert options.output.destinations == (
        "reg.example/apps/web-app/site:3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY",)
    assert (options.context, options.work_dir, options.deadline) == (
        PLACEMENT.context, PLACEMENT.work_dir, PLACEMENT.deadline)


def test_service_only_settings_reach_the_build_options() -> None:
    cfg = config(DESTINATION="127.0.0.1:5000/{name}:1", INSECURE_REGISTRIES="127.0.0.1:5000",
                 CACHE_REPO="127.0.0.1:5000/cache", RUN_ISOLATION="none", DISK_BUDGET="1G")
    options = build_options(REQUEST, config=cfg, metadata=Overrides(), archive=Overrides(),
                            placement=PLACEMENT)
    assert options.registry.insecure_registries == ("127.0.0.1:5000",)
    assert options.cache.enabled and options.cache.repo == "127.0.0.1:5000/cache"
    assert options.run_isolation == "none" and options.disk_budget == 1 << 30


def test_several_destinations_from_metadata() -> None:
    cfg = config(ALLOWED_DESTINATIONS="reg.example/apps/*")
    metadata = from_metadata({"bucketbuild-destination":
                              "reg.example/apps/{name}:latest, reg.example/apps/{name}:{version}"})
    options = build_options(REQUEST, config=cfg, metadata=metadata, archive=Overrides(),
                            placement=PLACEMENT)
    assert options.output.destinations == (
        "reg.example/apps/site:latest",
        "reg.example/apps/site:3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY")


@pytest.mark.parametrize(("allowed", "destination", "ok"), [
    ("reg.example/apps/*", "reg.example/apps/site:1", True),
    ("reg.example/apps/*", "reg.example/other/site:1", False),
    ("reg.example/apps/site", "reg.example/apps/site:any-tag", True),
    ("reg.example/apps/site:1", "reg.example/apps/site:2", False),
    ("busybox", "busybox", True),
    ("docker.io/library/*", "busybox:1", True),
    ("*", "anything.example/x:y", True),
])
def test_allow_list(allowed: str, destination: str, ok: bool) -> None:
    cfg = config(ALLOWED_DESTINATIONS=allowed)
    metadata = from_metadata({"bucketbuild-destination": destination})

    def build() -> object:
        return build_options(REQUEST, config=cfg, metadata=metadata, archive=Overrides(),
                             placement=PLACEMENT)

    if ok:
        build()
    else:
        with pytest.raises(DestinationNotAllowedError, match="not allowed"):
            build()


def test_without_allow_list_only_the_configured_destination_is_allowed() -> None:
    cfg = config(DESTINATION="reg.example/{name}:{version}")
    build_options(REQUEST, config=cfg, metadata=Overrides(), archive=Overrides(),
                  placement=PLACEMENT)
    metadata = from_metadata({"bucketbuild-destination": "evil.example/x:1"})
    with pytest.raises(DestinationNotAllowedError) as caught:
        build_options(REQUEST, config=cfg, metadata=metadata, archive=Overrides(),
                      placement=PLACEMENT)
    assert caught.value.kind == "destination"


def test_no_destination_anywhere() -> None:
    with pytest.raises(DestinationMissingError, match="no destination"):
        build_options(REQUEST, config=config(), metadata=Overrides(), archive=Overrides(),
                      placement=PLACEMENT)


@pytest.mark.parametrize("metadata", [
    {"bucketbuild-dockerfile": "/proc/self/environ"},
    {"bucketbuild-dockerfile": "../outside/Dockerfile"},
    {"bucketbuild-context-sub-path": "a/../../b"},
    {"bucketbuild-destination": "Not A Reference"},
])
def test_unsafe_or_invalid_uploader_values(metadata: dict[str, str]) -> None:
    cfg = config(DESTINATION="reg.example/x:1", ALLOWED_DESTINATIONS="*")
    with pytest.raises(SettingsError):
        build_options(REQUEST, config=cfg, metadata=from_metadata(metadata),
                      archive=Overrides(), placement=PLACEMENT)


@pytest.mark.parametrize(("document", "message"), [
    (b"{", "not valid JSON"),
    (b"[]", "must hold a JSON object"),
    (b'{"destinaton": "x"}', "unknown setting destinaton"),
    (b'{"target": 3}', "expected a string"),
    (b'{"destination": [1]}', "list of strings"),
])
def test_bad_archive_settings(document: bytes, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        from_archive_json(document)


def test_unknown_metadata_setting_is_refused() -> None:
    with pytest.raises(SettingsError, match="bucketbuild-taget"):
        from_metadata({"bucketbuild-taget": "x"})
