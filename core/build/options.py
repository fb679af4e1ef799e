"""What a build is asked to do: every setting, as one frozen value.

The CLI (kaniko's executor flags) and the cloud handlers (object metadata, bucketbuild.json,
environment) both produce a `BuildOptions`; the pipeline consumes only this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.build.url_policy import UrlPolicy

SnapshotMode = Literal["redo", "full", "time"]
Compression = Literal["gzip", "zstd"]
ImageFormat = Literal["docker", "oci"]
Isolation = Literal["auto", "chroot", "userns", "proot", "fakechroot", "none"]
LogFormat = Literal["text", "json"]


@dataclass(frozen=True)
class SecretSource:
    """`--secret id=ID,src=FILE` or `--secret id=ID,env=VAR`: exactly one of path/env is set."""

    id: str
    path: Path | None = None
    env: str | None = None


@dataclass(frozen=True)
class RegistryOptions:
    """How to talk to registries (kaniko's --insecure*, --skip-tls-verify*, mirrors)."""

    insecure: bool = False  # push over plain HTTP
    insecure_pull: bool = False  # pull over plain HTTP
    insecure_registries: tuple[str, ...] = ()  # hosts reached over plain HTTP
    skip_tls_verify: bool = False  # push without TLS verification
    skip_tls_verify_pull: bool = False
    skip_tls_verify_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()  # mirrors for docker.io, tried in order
    ca_bundle: Path | None = None
    push_retry: int = 3
    #: the directory of the docker `config.json` (None: `$DOCKER_CONFIG`, else `~/.docker`)
    docker_config: Path | None = None
    #: variables credential helpers get on top of this process's environment (a service
    #: gives each build its own HOME, TMPDIR, DOCKER_CONFIG and PATH this way)
    helper_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CacheOptions:
    """--cache, --cache-repo, --cache-ttl; --base-cache, --base-cache-budget."""

    enabled: bool = False
    repo: str | None = None  # a registry repository or "oci:DIR"
    ttl_seconds: int = 14 * 24 * 3600  # kaniko's default: two weeks
    run_layers: bool = True
    copy_layers: bool = True
    base_dir: Path | None = None  # keep pulled base layers here between builds
    base_budget: int = 2 << 30  # bytes it may hold (at most a quarter of the free space)


@dataclass(frozen=True)
class OutputOptions:
    """Where the image goes besides (or instead of) the registry."""

    destinations: tuple[str, ...] = ()
    no_push: bool = False
    tar_path: Path | None = None
    oci_layout_path: Path | None = None
    digest_file: Path | None = None
    image_name_with_digest_file: Path | None = None
    image_name_tag_with_digest_file: Path | None = None
    image_format: ImageFormat = "docker"
    compression: Compression = "gzip"
    compression_level: int | None = None  # None: the compressor's chosen default


@dataclass(frozen=True)
class BuildOptions:
    """One build, fully specified."""

    context: str  # a directory, dir://, tar://FILE, s3://bucket/key or gs://bucket/object
    dockerfile: str = "Dockerfile"  # relative to the context (or absolute)
    context_sub_path: str = ""
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None  # --custom-platform, e.g. "linux/arm64/v8"
    secrets: tuple[SecretSource, ...] = ()
    #: names of build args whose values are secret: usable by RUN, shown as `****` in the
    #: image history, logs, errors, events and results (see `core.build.secrets`)
    secret_build_args: frozenset[str] = frozenset()
    snapshot_mode: SnapshotMode = "redo"
    single_snapshot: bool = False
    reproducible: bool = False
    source_date_epoch: int | None = None  # SOURCE_DATE_EPOCH
    ignore_paths: tuple[str, ...] = ()
    run_isolation: Isolation = "auto"
    work_dir: Path | None = None  # None: a fresh directory under the system temp dir
    cleanup: bool = True  # remove the work dir afterwards
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    cache: CacheOptions = field(default_factory=CacheOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    add_urls: UrlPolicy = field(default_factory=UrlPolicy)  # hosts ADD <url> may reach
    disk_budget: int | None = None  # bytes; None: what the filesystem can spare
    deadline: float | None = None  # time.monotonic() value by which the build must end
