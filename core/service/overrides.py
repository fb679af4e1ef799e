"""What one upload asks for: object metadata > `bucketbuild.json` > the function's settings.

Uploaders may set the fields in `FIELDS`, as object metadata (`bucketbuild-<field>`) or as keys
of a `bucketbuild.json` at the archive root. Single values take the first source that sets
them; build arguments and labels merge name by name with the same precedence. Destinations are
templates (`{bucket} {key} {name} {version}`) and must match the allow-list before anything is
built. Everything here is pure.
"""

from __future__ import annotations

import fnmatch
import json
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.build.options import BuildOptions, CacheOptions, OutputOptions, RegistryOptions
from core.build.url_policy import UrlPolicy
from core.errors import ImageReferenceError
from core.image.reference import Reference, parse_reference
from core.service.events import ARCHIVE_SUFFIXES, BuildRequest
from core.service.settings import (
    ServiceConfig,
    SettingsError,
    mapping_from_json,
    parse_list,
    parse_mapping,
    parse_names,
)

METADATA_PREFIX = "bucketbuild-"
ARCHIVE_SETTINGS = "bucketbuild.json"
FIELDS = ("destination", "dockerfile", "target", "build-args", "labels", "platform",
          "context-sub-path", "secret-build-args")
_EMPTY: Mapping[str, str] = MappingProxyType({})
_TEMPLATE_FIELDS = frozenset({"bucket", "key", "name", "version"})
_COMPONENT_JUNK = re.compile(r"[^a-z0-9._-]+")
_TAG_JUNK = re.compile(r"[^A-Za-z0-9_.-]+")


class DestinationNotAllowedError(SettingsError):
    """A destination outside `BUCKETBUILD_ALLOWED_DESTINATIONS`."""

    kind = "destination"


class DestinationMissingError(SettingsError):
    """Nothing says where the image goes."""

    kind = "destination"


@dataclass(frozen=True)
class Overrides:
    """Per-upload settings from one source; None / empty means "not set here"."""

    destinations: tuple[str, ...] | None = None
    dockerfile: str | None = None
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    context_sub_path: str | None = None
    secret_build_args: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Placement:
    """Where this build works and how long it may take."""

    context: str  # the `--context` value: the downloaded archive
    work_dir: Path
    deadline: float | None  # a time.monotonic() value
    build_id: str


def from_metadata(metadata: Mapping[str, str]) -> Overrides:
    """The `bucketbuild-*` object metadata (names compared case-insensitively)."""
    values: dict[str, Any] = {}
    for name, value in metadata.items():
        lowered = name.lower()
        if lowered.startswith(METADATA_PREFIX):
            values[lowered.removeprefix(METADATA_PREFIX)] = value
    return _overrides(values, source="object metadata", prefix=METADATA_PREFIX)


def from_archive_json(data: bytes) -> Overrides:
    """The settings in a `bucketbuild.json` (a JSON object with keys from `FIELDS`)."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SettingsError(f"{ARCHIVE_SETTINGS} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SettingsError(f"{ARCHIVE_SETTINGS} must hold a JSON object")
    return _overrides(document, source=ARCHIVE_SETTINGS, prefix="")


def _overrides(values: Mapping[str, Any], *, source: str, prefix: str) -> Overrides:
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise SettingsError(f"{source}: unknown setting {prefix}{unknown[0]} "
                            f"(known: {', '.join(prefix + f for f in FIELDS)})")
    def parsed(name: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(values.get(name))
        except ValueError as exc:
            raise SettingsError(f"{source}: {prefix}{name}: {exc}") from None

    return Overrides(
        destinations=parsed("destination", _destinations),
        dockerfile=parsed("dockerfile", _string),
        target=parsed("target", _string),
        build_args=parsed("build-args", _pairs),
        labels=parsed("labels", _pairs),
        platform=parsed("platform", _string),
        context_sub_path=parsed("context-sub-path", _string),
        secret_build_args=parsed("secret-build-args", _secret_names))


def _destinations(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_list(value) or None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(item.strip() for item in value if item.strip()) or None
    raise ValueError("destination must be a string or a list of strings")


def _string(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value.strip() or None


def _secret_names(value: Any) -> frozenset[str]:
    """Build arg names marked secret: a comma list, or a JSON list of names."""
    if value is None:
        return frozenset()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise ValueError("secret-build-args must be a string or a list of names")
    return parse_names(value)


def _pairs(value: Any) -> Mapping[str, str]:
    if value is None:
        return _EMPTY
    return parse_mapping(value) if isinstance(value, str) else mapping_from_json(value)


def build_options(request: BuildRequest, *, config: ServiceConfig, metadata: Overrides,
                  archive: Overrides, placement: Placement) -> BuildOptions:
    """The `BuildOptions` for `request`; SettingsError (or a subclass) when it may not build."""
    layers = (metadata, archive)
    dockerfile = _first(layers, "dockerfile") or config.dockerfile
    sub_path = _first(layers, "context_sub_path") or ""
    check_relative(dockerfile, what="dockerfile")
    check_relative(sub_path, what="context-sub-path")
    destinations = resolve_destinations(request, config=config, layers=layers,
                                        build_id=placement.build_id)
    return BuildOptions(
        context=placement.context, dockerfile=dockerfile, context_sub_path=sub_path,
        build_args=_merged(config.build_args, archive.build_args, metadata.build_args),
        secret_build_args=(config.secret_build_args | archive.secret_build_args
                           | metadata.secret_build_args),
        target=_first(layers, "target") or config.target,
        labels=_merged(config.labels, archive.labels, metadata.labels),
        platform=_first(layers, "platform") or config.platform,
        run_isolation=config.run_isolation, work_dir=placement.work_dir,
        registry=RegistryOptions(insecure_registries=config.insecure_registries,
                                 skip_tls_verify_registries=config.skip_tls_verify_registries,
                                 registry_mirrors=config.registry_mirrors),
        cache=CacheOptions(enabled=config.cache_repo is not None, repo=config.cache_repo,
                           ttl_seconds=config.cache_ttl, base_dir=config.base_cache_dir(),
                           base_budget=config.base_cache_budget or CacheOptions().base_budget),
        output=OutputOptions(destinations=destinations, image_format=config.image_format,
                             compression=config.compression),
        add_urls=UrlPolicy(config.allow_url_hosts, config.allow_private_urls),
        disk_budget=config.disk_budget, deadline=placement.deadline)


def _first(layers: tuple[Overrides, ...], name: str) -> Any:
    for layer in layers:
        value = getattr(layer, name)
        if value is not None:
            return value
    return None


def _merged(*mappings: Mapping[str, str]) -> Mapping[str, str]:
    """Later mappings win, name by name."""
    merged: dict[str, str] = {}
    for mapping in mappings:
        merged.update(mapping)
    return MappingProxyType(merged)


def check_relative(path: str, *, what: str) -> None:
    """Uploader-chosen paths stay inside the context: relative, no `..` component."""
    if path.startswith("/") or ".." in path.split("/") or "\\" in path or "\0" in path:
        raise SettingsError(f"{what} {path!r} must be a relative path inside the context")


def resolve_destinations(request: BuildRequest, *, config: ServiceConfig,
                         layers: tuple[Overrides, ...], build_id: str) -> tuple[str, ...]:
    """Expanded, validated and allowed destinations (metadata > archive > environment)."""
    chosen = _first(layers, "destinations")
    if chosen is None and config.destination is not None:
        chosen = (config.destination,)
    if not chosen:
        raise DestinationMissingError(
            "no destination: set BUCKETBUILD_DESTINATION, the bucketbuild-destination "
            "metadata or destination in bucketbuild.json")
    fields = template_fields(request, build_id=build_id)
    references = tuple(_reference(expand(text, fields)) for text in chosen)
    patterns = config.allowed_destinations
    if patterns is None:
        own = expand(config.destination, fields) if config.destination else None
        patterns = (str(_reference(own)),) if own else ()
    for reference in references:
        if not is_allowed(reference, patterns):
            raise DestinationNotAllowedError(
                f"destination {reference} is not allowed (BUCKETBUILD_ALLOWED_DESTINATIONS: "
                f"{', '.join(patterns) or 'unset, so only BUCKETBUILD_DESTINATION'})")
    return tuple(str(reference) for reference in references)


def _reference(text: str) -> Reference:
    try:
        return parse_reference(text)
    except ImageReferenceError as exc:
        raise SettingsError(f"destination {text!r}: {exc}") from None


def is_allowed(reference: Reference, patterns: tuple[str, ...]) -> bool:
    """Whether a glob pattern matches the reference (normalised or as Docker shows it), or its
    repository alone (any tag). `*` matches across `/`."""
    candidates = {str(reference), reference.familiar, reference.name,
                  reference.familiar.split("@")[0].rsplit(":", 1)[0]}
    return any(fnmatch.fnmatchcase(candidate, pattern)
               for pattern in patterns for candidate in candidates)


def template_fields(request: BuildRequest, *, build_id: str) -> Mapping[str, str]:
    """The values a destination template may use, made valid for their place in a reference."""
    stem = _strip_suffix(request.key)
    components = [_component(part) for part in stem.split("/") if part]
    version = _TAG_JUNK.sub("-", request.version or "")[:128].lstrip(".-") or build_id
    return MappingProxyType({
        "bucket": _component(request.bucket),
        "key": "/".join(components) or "context",
        "name": components[-1] if components else "context",
        "version": version,
    })


def expand(template: str, fields: Mapping[str, str]) -> str:
    """`template` with `{bucket}`, `{key}`, `{name}`, `{version}` filled in."""
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise SettingsError(f"destination template {template!r}: {exc}") from None
    unknown = sorted(used - _TEMPLATE_FIELDS)
    if unknown:
        raise SettingsError(f"destination template {template!r}: unknown field {{{unknown[0]}}}"
                            " (use {bucket}, {key}, {name} or {version})")
    try:
        return template.format_map(fields)
    except (ValueError, IndexError, KeyError) as exc:
        raise SettingsError(f"destination template {template!r}: {exc}") from None


def _strip_suffix(key: str) -> str:
    lowered = key.lower()
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix):
            return key[: -len(suffix)]
    return key


def _component(text: str) -> str:
    """A repository path component: lowercase `[a-z0-9]` runs joined by `.`, `_` or `-`."""
    cleaned = _COMPONENT_JUNK.sub("-", text.lower())
    cleaned = re.sub(r"[._-]{2,}", "-", cleaned).strip("._-")
    return cleaned or "x"

