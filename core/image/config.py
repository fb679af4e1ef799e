"""The image config: platform, run defaults, layer diff_ids and history.

Parsed from and written to the JSON field names Docker and OCI use. Fields we do not model
(`container_config`, `docker_version`, `Hostname`, vendor keys, ...) are kept in `extra` and
written back unchanged, so a config survives a parse/serialise round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from core.errors import ImageError
from core.image.canonical import canonical_json, freeze_json, parse_json_object, thaw_json
from core.image.digest import parse_digest
from core.image.manifest import Platform

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

JsonMap = Mapping[str, Any]


def _empty_map() -> JsonMap:
    return MappingProxyType({})


def _freeze_maps(value: object, *names: str) -> None:
    """Make the mapping fields `names` of a frozen dataclass read-only copies."""
    for name in names:
        current = getattr(value, name)
        if not isinstance(current, MappingProxyType):
            object.__setattr__(value, name, freeze_json(current))


@dataclass(frozen=True)
class Healthcheck:
    """HEALTHCHECK settings; durations in nanoseconds, 0 meaning "inherit/default"."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


#: (JSON key, attribute, kind) of each Healthcheck field
_HEALTHCHECK_FIELDS = (
    ("Test", "test", "list"),
    ("Interval", "interval", "int"),
    ("Timeout", "timeout", "int"),
    ("StartPeriod", "start_period", "int"),
    ("StartInterval", "start_interval", "int"),
    ("Retries", "retries", "int"),
)


@dataclass(frozen=True)
class ContainerConfig:
    """The run defaults (`config` in the image config). `None` Entrypoint/Cmd means unset."""

    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    labels: Mapping[str, str] = field(default_factory=_empty_map)
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    healthcheck: Healthcheck | None = None
    shell: tuple[str, ...] = ()
    on_build: tuple[str, ...] = ()
    args_escaped: bool = False
    extra: JsonMap = field(default_factory=_empty_map)

    def __post_init__(self) -> None:
        _freeze_maps(self, "labels", "extra")
        # JSON objects (sets) in the config: keep them in one order so equal configs compare equal
        object.__setattr__(self, "exposed_ports", tuple(sorted(set(self.exposed_ports))))
        object.__setattr__(self, "volumes", tuple(sorted(set(self.volumes))))

    def get_env(self, name: str) -> str | None:
        """The value of the last `name=...` entry in Env, or None."""
        found = None
        for entry in self.env:
            key, _, value = entry.partition("=")
            if key == name:
                found = value
        return found

    def with_env(self, name: str, value: str) -> ContainerConfig:
        """Set `name`, replacing its entry in place or appending a new one."""
        entry = f"{name}={value}"
        kept = [e if e.partition("=")[0] != name else entry for e in self.env]
        if entry not in kept:
            kept.append(entry)
        return replace(self, env=tuple(dict.fromkeys(kept)))

    def with_default_path(self) -> ContainerConfig:
        """Add `PATH=DEFAULT_PATH` unless PATH is already set."""
        if self.get_env("PATH") is not None:
            return self
        return self.with_env("PATH", DEFAULT_PATH)

    def with_labels(self, labels: Mapping[str, str]) -> ContainerConfig:
        """Merge `labels` over the existing ones."""
        return replace(self, labels=MappingProxyType({**self.labels, **labels}))


#: (JSON key, attribute, kind) of each modelled ContainerConfig field
_CONTAINER_FIELDS = (
    ("User", "user", "str"),
    ("ExposedPorts", "exposed_ports", "keys"),
    ("Env", "env", "list"),
    ("Entrypoint", "entrypoint", "optlist"),
    ("Cmd", "cmd", "optlist"),
    ("Healthcheck", "healthcheck", "healthcheck"),
    ("ArgsEscaped", "args_escaped", "bool"),
    ("Volumes", "volumes", "keys"),
    ("WorkingDir", "working_dir", "str"),
    ("Labels", "labels", "map"),
    ("StopSignal", "stop_signal", "str"),
    ("Shell", "shell", "list"),
    ("OnBuild", "on_build", "list"),
)


@dataclass(frozen=True)
class History:
    """One history entry; `empty_layer` entries have no layer in rootfs."""

    created: str | None = None
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False
    extra: JsonMap = field(default_factory=_empty_map)

    def __post_init__(self) -> None:
        _freeze_maps(self, "extra")


_HISTORY_FIELDS = (
    ("created", "created", "optstr"),
    ("created_by", "created_by", "str"),
    ("author", "author", "str"),
    ("comment", "comment", "str"),
    ("empty_layer", "empty_layer", "bool"),
)


@dataclass(frozen=True)
class ImageConfig:
    """An image config. `created` is kept as the RFC 3339 text it was written with."""

    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()
    created: str | None = None
    author: str | None = None
    config: ContainerConfig = field(default_factory=ContainerConfig)
    diff_ids: tuple[str, ...] = ()
    history: tuple[History, ...] = ()
    extra: JsonMap = field(default_factory=_empty_map)

    def __post_init__(self) -> None:
        _freeze_maps(self, "extra")

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant, self.os_version,
                        self.os_features)

    def with_layer(self, diff_id: str, history: History) -> ImageConfig:
        """Append a layer (its uncompressed digest) and the history entry that made it."""
        parse_digest(diff_id)
        entry = replace(history, empty_layer=False)
        return replace(self, diff_ids=(*self.diff_ids, diff_id),
                       history=(*self.history, entry))

    def with_history(self, history: History) -> ImageConfig:
        """Append a history entry for a step that changed only the config."""
        return replace(self, history=(*self.history, replace(history, empty_layer=True)))

    def with_container_config(self, config: ContainerConfig) -> ImageConfig:
        return replace(self, config=config)

    def with_platform(self, platform: Platform) -> ImageConfig:
        return replace(self, os=platform.os, architecture=platform.architecture,
                       variant=platform.variant, os_version=platform.os_version,
                       os_features=platform.os_features)

    def to_dict(self) -> dict[str, Any]:
        return _image_config_to_dict(self)

    def to_json(self) -> bytes:
        return canonical_json(self.to_dict())


def format_created(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as Docker writes `created` (naive times are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def parse_image_config(data: bytes) -> ImageConfig:
    """Parse image config JSON, keeping fields we do not model in `extra`."""
    doc = parse_json_object(data, "image config")
    rootfs = doc.get("rootfs", {"type": "layers", "diff_ids": []})
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise ImageError("image config rootfs must be {\"type\": \"layers\", ...}")
    diff_ids = _value(rootfs.get("diff_ids"), "list", "rootfs.diff_ids") or ()
    for diff_id in diff_ids:
        _check_digest(diff_id, "rootfs.diff_ids")
    history = _value(doc.get("history"), "objects", "history") or ()
    return ImageConfig(
        architecture=_value(doc.get("architecture"), "str", "architecture"),
        os=_value(doc.get("os"), "str", "os"),
        variant=_value(doc.get("variant"), "optstr", "variant") or None,
        os_version=_value(doc.get("os.version"), "optstr", "os.version") or None,
        os_features=_value(doc.get("os.features"), "list", "os.features") or (),
        created=_value(doc.get("created"), "optstr", "created"),
        author=_value(doc.get("author"), "optstr", "author"),
        config=_parse_container_config(doc.get("config")),
        diff_ids=diff_ids,
        history=tuple(_parse_history(entry) for entry in history),
        extra=_extra(doc, _IMAGE_KEYS),
    )


_IMAGE_KEYS = frozenset({"architecture", "os", "variant", "os.version", "os.features",
                         "created", "author", "config", "rootfs", "history"})


def _image_config_to_dict(image: ImageConfig) -> dict[str, Any]:
    doc: dict[str, Any] = thaw_json(image.extra)
    doc.update(architecture=image.architecture, os=image.os)
    optional = {"variant": image.variant, "os.version": image.os_version,
                "created": image.created, "author": image.author}
    doc.update({key: value for key, value in optional.items() if value is not None})
    if image.os_features:
        doc["os.features"] = list(image.os_features)
    container = _fields_to_dict(image.config, _CONTAINER_FIELDS, image.config.extra)
    if container:
        doc["config"] = container
    doc["rootfs"] = {"type": "layers", "diff_ids": list(image.diff_ids)}
    if image.history:
        doc["history"] = [_fields_to_dict(h, _HISTORY_FIELDS, h.extra) for h in image.history]
    return doc


def _parse_container_config(doc: object) -> ContainerConfig:
    if doc is None:
        return ContainerConfig()
    if not isinstance(doc, dict):
        raise ImageError("image config: config must be an object")
    values = _fields_from_dict(doc, _CONTAINER_FIELDS, "config")
    keys = {key for key, _, _ in _CONTAINER_FIELDS}
    return ContainerConfig(**values, extra=_extra(doc, keys))


def _parse_history(doc: dict[str, Any]) -> History:
    values = _fields_from_dict(doc, _HISTORY_FIELDS, "history")
    return History(**values, extra=_extra(doc, {key for key, _, _ in _HISTORY_FIELDS}))


def _parse_healthcheck(doc: object, where: str) -> Healthcheck:
    if not isinstance(doc, dict):
        raise ImageError(f"image config: {where} must be an object")
    return Healthcheck(**_fields_from_dict(doc, _HEALTHCHECK_FIELDS, where))


def _fields_from_dict(doc: dict[str, Any], fields: tuple[tuple[str, str, str], ...],
                      where: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, attr, kind in fields:
        if doc.get(key) is not None:
            values[attr] = _value(doc[key], kind, f"{where}.{key}")
        elif kind == "optlist" and key in doc:
            values[attr] = None
    return values


def _value(value: Any, kind: str, where: str) -> Any:
    """Check one JSON value against its kind and convert it to the model's type."""
    if kind in ("str", "optstr"):
        if value is None and kind == "optstr":
            return None
        if isinstance(value, str):
            return value
    elif kind in ("int", "bool"):
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind == "bool" and isinstance(value, bool):
            return value
    elif kind in ("list", "optlist"):
        if value is None:
            return None
        if kind == "optlist" and isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif kind in ("keys", "map", "objects", "healthcheck"):
        return _container_value(value, kind, where)
    raise ImageError(f"image config: {where} has the wrong type ({value!r}), expected {kind}")


def _container_value(value: Any, kind: str, where: str) -> Any:
    if kind == "healthcheck":
        return _parse_healthcheck(value, where)
    if kind == "objects":
        if value is None:
            return None
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return value
    elif isinstance(value, dict):
        if kind == "keys":
            return tuple(value)
        if all(isinstance(v, str) for v in value.values()):
            return MappingProxyType(dict(value))
    raise ImageError(f"image config: {where} has the wrong type ({value!r}), expected {kind}")


def _fields_to_dict(value: object, fields: tuple[tuple[str, str, str], ...],
                    extra: JsonMap) -> dict[str, Any]:
    doc: dict[str, Any] = thaw_json(extra)
    for key, attr, kind in fields:
        item = getattr(value, attr)
        if kind == "optlist" and item is not None:
            doc[key] = list(item)
        elif kind == "optstr" and item is not None:
            doc[key] = item
        elif item:
            doc[key] = _json_value(item, kind)
    return doc


def _json_value(item: Any, kind: str) -> Any:
    if kind == "list":
        return list(item)
    if kind == "keys":
        return {key: {} for key in item}
    if kind == "map":
        return dict(item)
    if kind == "healthcheck":
        return _fields_to_dict(item, _HEALTHCHECK_FIELDS, _empty_map())
    return item


def _extra(doc: dict[str, Any], known: set[str] | frozenset[str]) -> JsonMap:
    extra = freeze_json({key: value for key, value in doc.items() if key not in known})
    assert isinstance(extra, MappingProxyType)
    return extra


def _check_digest(value: str, where: str) -> None:
    try:
        parse_digest(value)
    except ImageError as err:
        raise ImageError(f"image config: {where}: {err}") from None
