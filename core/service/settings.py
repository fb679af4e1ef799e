"""The function's own configuration: every `BUCKETBUILD_*` environment variable, parsed once.

Uploaders can change some of these per object (see `core.service.overrides`); the rest —
registries reached insecurely, the allow-list, sinks, credentials, limits — belong to whoever
deploys the function. An unknown `BUCKETBUILD_*` name is refused, so a typo in a deployment is
an error rather than a setting that silently does nothing.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_args

from core.build.options import Compression, ImageFormat, Isolation
from core.build.url_policy import HostRule, parse_host_rule
from core.errors import UsageError
from core.flags.values import parse_bool, parse_duration, parse_size

PREFIX = "BUCKETBUILD_"
DEFAULT_TIMEOUT = 540.0  # Cloud Functions gen2's longest event-driven timeout, in seconds
DEFAULT_MARGIN = 20.0
DEFAULT_CACHE_TTL = 14 * 24 * 3600


class SettingsError(UsageError):
    """A setting (environment, object metadata or bucketbuild.json) has a bad value."""

    kind = "settings"


@dataclass(frozen=True)
class ServiceConfig:
    """The function's configuration (see `NAMES` for the variables and their meaning)."""

    destination: str | None = None
    allowed_destinations: tuple[str, ...] | None = None  # None: only `destination`'s own
    dockerfile: str = "Dockerfile"
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    secret_build_args: frozenset[str] = frozenset()  # names whose values are redacted
    labels: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    cache_repo: str | None = None
    cache_ttl: int = DEFAULT_CACHE_TTL
    insecure_registries: tuple[str, ...] = ()
    skip_tls_verify_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()
    docker_config: str | None = None  # a path, `secretsmanager:ARN` or `sm://projects/...`
    event_bus: str | None = None
    sns_topic_arn: str | None = None
    pubsub_topic: str | None = None
    timeout: float = DEFAULT_TIMEOUT  # GCP: the function's timeout (seconds)
    timeout_margin: float = DEFAULT_MARGIN
    run_isolation: Isolation = "auto"
    work_root: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "bucketbuild")
    tools_dir: Path | None = None
    disk_budget: int | None = None
    max_context_bytes: int | None = None
    image_format: ImageFormat = "docker"
    compression: Compression = "gzip"
    allow_url_hosts: tuple[HostRule, ...] = ()  # ADD <url> hosts reached even on loopback
    allow_private_urls: bool = True
    base_cache: Path | None = None  # None: WORK_ROOT/base-cache
    base_cache_budget: int | None = None  # None: CacheOptions' default; 0: no base cache

    def base_cache_dir(self) -> Path | None:
        """Where pulled base layers stay between warm invocations (None: not kept)."""
        if self.base_cache_budget == 0:
            return None
        return self.base_cache or self.work_root / "base-cache"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ServiceConfig:
        env = os.environ if environ is None else environ
        found = {name.removeprefix(PREFIX): value for name, value in env.items()
                 if name.startswith(PREFIX) and value != ""}
        unknown = sorted(set(found) - set(NAMES))
        if unknown:
            raise SettingsError(f"unknown setting {PREFIX}{unknown[0]} (known: "
                                f"{', '.join(PREFIX + n for n in sorted(NAMES))})")
        values: dict[str, Any] = {}
        for name, text in found.items():
            attribute, parse, _ = NAMES[name]
            try:
                values[attribute] = parse(text)
            except (ValueError, UsageError) as exc:
                raise SettingsError(f"{PREFIX}{name}: {exc}") from None
        return cls(**values)


def parse_list(text: str) -> tuple[str, ...]:
    """Comma-separated values, blanks dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def parse_mapping(text: str) -> Mapping[str, str]:
    """A JSON object of strings, or `k=v,k=v` (a value may contain `=`, not `,`)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            return mapping_from_json(json.loads(stripped))
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON object ({exc.msg})") from None
    pairs: dict[str, str] = {}
    items = parse_list(stripped)
    for position, item in enumerate(items, start=1):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():  # not quoted: a comma inside a secret value splits it
            raise ValueError(f"expected KEY=VALUE, item {position} of {len(items)} is not "
                             "(its text is not shown: it may hold part of a secret)")
        pairs[key.strip()] = value
    return MappingProxyType(pairs)


def mapping_from_json(value: Any) -> Mapping[str, str]:
    """A JSON object whose values are strings, numbers or booleans, as strings."""
    if not isinstance(value, dict):
        raise ValueError("expected an object of names to values")
    pairs: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            pairs[str(key)] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            pairs[str(key)] = str(item)
        else:
            raise ValueError(f"the value of {key!r} must be a string")
    return MappingProxyType(pairs)


def parse_seconds(text: str) -> float:
    """Seconds as a plain number (`540`) or a Go duration (`9m`)."""
    try:
        value = float(text)
    except ValueError:
        return parse_duration(text, flag="duration")
    if value < 0:
        raise ValueError(f"must not be negative, got {text!r}")
    return value


def _choice(options: Any) -> Callable[[str], Any]:
    allowed = get_args(options)

    def parse(text: str) -> Any:
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return text

    return parse


def _size(text: str) -> int:
    return parse_size(text, flag="size")


def _text(text: str) -> str:
    return text.strip()


def _path(text: str) -> Path:
    return Path(text)


def _absolute(text: str) -> Path:
    path = Path(text.strip())
    if not path.is_absolute():
        raise ValueError(f"must be an absolute path, got {text!r}")
    return path


def _budget(text: str) -> int:
    """A size, or `0` / `off` for none."""
    return 0 if text.strip().lower() in ("0", "off") else _size(text)


def _ttl(text: str) -> int:
    return int(parse_seconds(text))


def _allow_list(text: str) -> tuple[str, ...]:
    return parse_list(text)


def parse_names(text: str) -> frozenset[str]:
    """Comma-separated build arg names."""
    names = parse_list(text)
    bad = next((n for n in names if not n.isidentifier() or not n.isascii()), None)
    if bad is not None:
        raise ValueError(f"invalid build arg name {bad[:40]!r}")
    return frozenset(names)


def _url_hosts(text: str) -> tuple[HostRule, ...]:
    return tuple(parse_host_rule(item) for item in parse_list(text))


#: environment name (without the prefix) -> (attribute, parser, meaning)
NAMES: Mapping[str, tuple[str, Callable[[str], Any], str]] = MappingProxyType({
    "DESTINATION": ("destination", _text, "image reference template"),
    "ALLOWED_DESTINATIONS": ("allowed_destinations", _allow_list, "destination patterns"),
    "DOCKERFILE": ("dockerfile", _text, "Dockerfile path in the context"),
    "TARGET": ("target", _text, "stage to build"),
    "BUILD_ARGS": ("build_args", parse_mapping, "build arguments"),
    "SECRET_BUILD_ARGS": ("secret_build_args", parse_names, "build args whose values are secret"),
    "LABELS": ("labels", parse_mapping, "image labels"),
    "PLATFORM": ("platform", _text, "target platform"),
    "CACHE_REPO": ("cache_repo", _text, "layer cache repository"),
    "CACHE_TTL": ("cache_ttl", _ttl, "layer cache lifetime"),
    "INSECURE_REGISTRIES": ("insecure_registries", parse_list, "plain-HTTP registries"),
    "SKIP_TLS_VERIFY_REGISTRIES": ("skip_tls_verify_registries", parse_list, "no TLS check"),
    "REGISTRY_MIRRORS": ("registry_mirrors", parse_list, "Docker Hub mirrors"),
    "DOCKER_CONFIG": ("docker_config", _text, "registry credentials"),
    "EVENT_BUS": ("event_bus", _text, "EventBridge bus"),
    "SNS_TOPIC_ARN": ("sns_topic_arn", _text, "SNS topic"),
    "PUBSUB_TOPIC": ("pubsub_topic", _text, "Pub/Sub topic"),
    "TIMEOUT": ("timeout", parse_seconds, "function timeout on GCP"),
    "TIMEOUT_MARGIN": ("timeout_margin", parse_seconds, "time kept for reporting"),
    "RUN_ISOLATION": ("run_isolation", _choice(Isolation), "RUN sandbox"),
    "WORK_ROOT": ("work_root", _path, "where builds work"),
    "TOOLS_DIR": ("tools_dir", _path, "sandbox tools"),
    "DISK_BUDGET": ("disk_budget", _size, "disk a build may use"),
    "MAX_CONTEXT_BYTES": ("max_context_bytes", _size, "largest archive accepted"),
    "IMAGE_FORMAT": ("image_format", _choice(ImageFormat), "manifest format"),
    "COMPRESSION": ("compression", _choice(Compression), "layer compression"),
    "ALLOW_URL_HOSTS": ("allow_url_hosts", _url_hosts, "ADD URL hosts allowed on any address"),
    "ALLOW_PRIVATE_URLS": ("allow_private_urls", parse_bool, "ADD from private addresses"),
    "BASE_CACHE": ("base_cache", _absolute, "base layers kept between invocations"),
    "BASE_CACHE_BUDGET": ("base_cache_budget", _budget, "base layer cache size (0: off)"),
})
