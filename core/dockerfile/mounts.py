"""`RUN --mount=...` values: the comma-separated `key=value` syntax and the typed `Mount`.

A mount spec is one CSV record (fields split on commas, a field may be double-quoted with `""`
for a literal quote), each field `key=value` or one of the bare keys `ro`, `readonly`, `rw`,
`readwrite`, `required`. Keys are case-insensitive. Validation follows BuildKit's Dockerfile
frontend: which keys each mount type accepts, value syntax, and per-type defaults.

Variables are not expanded here. `parse_mount` takes an optional `expand` callable applied to
every value (the planner passes the word expander); without it values are kept as written, a
typed value that holds a variable reference is left unresolved and the mount is flagged
`needs_expansion`, to be parsed again from `spec` once the variables are known.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from core.dockerfile.flags import did_you_mean
from core.dockerfile.records import fast_init
from core.errors import DockerfileError

MountType = Literal["bind", "cache", "tmpfs", "secret", "ssh"]
Sharing = Literal["shared", "private", "locked"]

MOUNT_TYPES: Final[tuple[MountType, ...]] = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES: Final[tuple[Sharing, ...]] = ("shared", "private", "locked")
KNOWN_KEYS: Final[tuple[str, ...]] = (
    "type", "from", "source", "src", "target", "dst", "destination", "readonly", "ro",
    "readwrite", "rw", "id", "sharing", "required", "mode", "uid", "gid", "size", "env",
)
_TARGET_KEYS: Final = frozenset({"target", "dst", "destination"})
_SOURCE_KEYS: Final = frozenset({"source", "src"})
_STRING_KEYS: Final = _TARGET_KEYS | _SOURCE_KEYS | {"id", "env"}
_FILE_INFO_TYPES: Final = frozenset({"secret", "ssh", "cache"})
_GO_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_SIZE_RE: Final = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_SIZE_UNITS: Final = MappingProxyType(
    {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50})
_UINT32_MAX: Final = (1 << 32) - 1


@fast_init
@dataclass(frozen=True, kw_only=True)
class Mount:
    """One `--mount` of a RUN, with BuildKit's defaults filled in.

    `id` is the cache id (cache), the secret id (secret: `id=` or `source=`, else the target's
    base name) or the agent id (ssh, "default"). `sharing` is set for cache mounts only.
    `mode`/`uid`/`gid` are None when not given (the runtime default applies). `size` is the tmpfs
    limit in bytes, 0 for none. `env` names the variable a secret is exposed as.
    """

    type: MountType = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool = True
    id: str = ""
    sharing: Sharing | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    env: str | None = None
    size: int = 0
    spec: str = ""  # the flag value as written, to parse again after expansion
    needs_expansion: bool = False  # some value refers to a variable

    @property
    def readwrite(self) -> bool:
        """The opposite of `readonly`."""
        return not self.readonly


def parse_mount(spec: str, *, expand: Callable[[str], str] | None = None) -> Mount:
    """Parse one `--mount` value; raises DockerfileError (without a location) when invalid."""
    draft = _Draft(spec=spec)
    for field in split_csv(spec, what="mounts"):
        _apply_field(draft, field, expand)
    if not draft.type_deferred:
        _validate(draft)
    _fill_defaults(draft)
    return draft.build()


@dataclass
class _Draft:
    """The mount being read, field by field (local to one `parse_mount` call)."""

    spec: str
    type: MountType = "bind"
    target: str = ""
    source: str = ""
    from_: str = ""
    readonly: bool | None = None
    id: str = ""
    sharing: Sharing | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    env: str | None = None
    size: int = 0
    deferred: bool = False
    type_deferred: bool = False

    def build(self) -> Mount:
        readonly = self.readonly
        if readonly is None:
            readonly = self.type not in ("cache", "tmpfs")
        return Mount(
            type=self.type, target=self.target, source=self.source, from_=self.from_,
            readonly=readonly, id=self.id, sharing=self.sharing, mode=self.mode, uid=self.uid,
            gid=self.gid, required=self.required, env=self.env, size=self.size, spec=self.spec,
            needs_expansion=self.deferred,
        )


def _apply_field(draft: _Draft, field: str, expand: Callable[[str], str] | None) -> None:
    key, sep, value = field.partition("=")
    key = key.lower()
    if not sep:
        _apply_bare_key(draft, key, field)
        return
    if key == "from" and expand is None and _has_variable(value):
        raise DockerfileError(
            f"'{key}' doesn't support variable expansion, define alias stage instead")
    if expand is not None:
        value = expand(value)
    elif _has_variable(value) and key != "from":
        draft.deferred = True
        if key not in _STRING_KEYS:  # cannot be checked before expansion
            _check_known_key(key, field)
            draft.type_deferred = draft.type_deferred or key == "type"
            return
    _apply_value(draft, key, value, field)


def _apply_bare_key(draft: _Draft, key: str, field: str) -> None:
    if key in ("readonly", "ro"):
        draft.readonly = True
    elif key in ("readwrite", "rw"):
        draft.readonly = False
    elif key == "required":
        _require_type(draft, key, ("secret", "ssh"))
        draft.required = True
    else:
        raise DockerfileError(f"invalid field '{field}' must be a key=value pair")


def _apply_value(draft: _Draft, key: str, value: str, field: str) -> None:
    if key == "type":
        draft.type = _mount_type(value)
    elif key == "from":
        draft.from_ = value
    elif key in _SOURCE_KEYS:
        draft.source = value
    elif key in _TARGET_KEYS:
        draft.target = value
    elif key == "id":
        draft.id = value
    elif key == "env":
        draft.env = value
    elif key in ("readonly", "ro"):
        draft.readonly = _go_bool(key, value)
    elif key in ("readwrite", "rw"):
        draft.readonly = not _go_bool(key, value)
    else:
        _apply_typed_value(draft, key, value, field)


def _apply_typed_value(draft: _Draft, key: str, value: str, field: str) -> None:
    if key == "required":
        _require_type(draft, key, ("secret", "ssh"))
        draft.required = _go_bool(key, value)
    elif key == "size":
        _require_type(draft, key, ("tmpfs",))
        draft.size = _ram_in_bytes(key, value)
    elif key == "sharing":
        draft.sharing = _sharing(value)
    elif key == "mode":
        draft.mode = _go_uint32(key, value, base=8)
    elif key == "uid":
        draft.uid = _go_uint32(key, value, base=10)
    elif key == "gid":
        draft.gid = _go_uint32(key, value, base=10)
    else:
        _check_known_key(key, field)


def _check_known_key(key: str, field: str) -> None:
    if key not in KNOWN_KEYS:
        message = f"unexpected key '{key}' in '{field}'"
        raise DockerfileError(message + did_you_mean(key, KNOWN_KEYS))


def _require_type(draft: _Draft, key: str, types: tuple[str, ...]) -> None:
    if draft.type not in types and not draft.type_deferred:
        raise DockerfileError(f"unexpected key '{key}' for mount type '{draft.type}'")


def _validate(draft: _Draft) -> None:
    if draft.type not in _FILE_INFO_TYPES:
        for name, value in (("mode", draft.mode), ("uid", draft.uid), ("gid", draft.gid)):
            if value is not None:
                raise DockerfileError(f'{name} not allowed for "{draft.type}" type mounts')
    if draft.type == "secret":
        if draft.from_:
            raise DockerfileError("secret mount should not have a from")
        if draft.sharing is not None:
            raise DockerfileError("secret mount should not define sharing")
        if not (draft.source or draft.target or draft.id):
            raise DockerfileError("invalid secret mount. one of source, target required")
        if draft.source and draft.id:
            raise DockerfileError("both source and id can't be set")
    if draft.sharing is not None and draft.type != "cache":
        raise DockerfileError(f"invalid cache sharing set for {draft.type} mount")


def _fill_defaults(draft: _Draft) -> None:
    if draft.type == "cache" and draft.sharing is None:
        draft.sharing = "shared"
    elif draft.type == "ssh" and not draft.id:
        draft.id = "default"
    elif draft.type == "secret":
        draft.id = draft.source or draft.id or posixpath.basename(draft.target)
        if not draft.target and draft.env is None:
            draft.target = "/run/secrets/" + posixpath.basename(draft.id)


def split_csv(value: str, *, what: str) -> list[str]:
    """Split one CSV record like Go's encoding/csv (strict quotes, no space trimming)."""
    if value.endswith("\n"):
        value = value[:-2] if value.endswith("\r\n") else value[:-1]
    if not value:
        raise DockerfileError(f"failed to parse csv {what}: empty value")
    fields: list[str] = []
    pos = 0
    while True:
        if value.startswith('"', pos):
            field, pos = _quoted_field(value, pos + 1, what)
        else:
            end = value.find(",", pos)
            field = value[pos:] if end < 0 else value[pos:end]
            if '"' in field:
                column = pos + field.index('"') + 1
                raise DockerfileError(f'failed to parse csv {what}: bare " in non-quoted field '
                                      f"(column {column})")
            pos = len(value) if end < 0 else end
        fields.append(field)
        if pos >= len(value):
            return fields
        pos += 1  # the comma


def _quoted_field(value: str, pos: int, what: str) -> tuple[str, int]:
    parts: list[str] = []
    while True:
        end = value.find('"', pos)
        if end < 0:
            raise DockerfileError(f'failed to parse csv {what}: missing closing " in quoted field')
        parts.append(value[pos:end])
        pos = end + 1
        if value.startswith('"', pos):
            parts.append('"')
            pos += 1
            continue
        if pos == len(value) or value[pos] == ",":
            return "".join(parts), pos
        raise DockerfileError(f'failed to parse csv {what}: extraneous " in quoted field '
                              f"(column {pos})")


def _has_variable(value: str) -> bool:
    return "$" in value[:-1]


def _mount_type(value: str) -> MountType:
    for choice in MOUNT_TYPES:
        if value.lower() == choice:
            return choice
    raise DockerfileError(f'unsupported mount type "{value}"' + did_you_mean(value, MOUNT_TYPES))


def _sharing(value: str) -> Sharing:
    for choice in SHARING_MODES:
        if value.lower() == choice:
            return choice
    raise DockerfileError(f'unsupported sharing value "{value}"'
                          + did_you_mean(value, SHARING_MODES))


def _go_bool(key: str, value: str) -> bool:
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE:
        return False
    raise DockerfileError(f"invalid value for {key}: {value}")


def _go_uint32(key: str, value: str, *, base: int) -> int:
    digits = "01234567" if base == 8 else "0123456789"
    if not value or any(c not in digits for c in value) or int(value, base) > _UINT32_MAX:
        raise DockerfileError(f"invalid value {value} for {key}")
    return int(value, base)


def _ram_in_bytes(key: str, value: str) -> int:
    match = _SIZE_RE.match(value)
    if match is None:
        raise DockerfileError(f"invalid value for {key}: {value}")
    number = float(match.group(1)) if match.group(1).count(".") <= 1 else None
    if number is None:
        raise DockerfileError(f"invalid value for {key}: {value}")
    return int(number * _SIZE_UNITS[(match.group(2) or "").lower()])
