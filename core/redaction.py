"""Keeping secrets out of what a build writes: one redaction rule for text, bytes and data.

A `Redactor` is a value: a set of secret strings, each replaced by `REDACTED` wherever it
occurs, together with the forms a secret takes in output (each line of a multi-line secret,
the text without its final newline, its JSON-escaped form). Text shaped like a credential is
replaced whether or not its value is known: the value of an `Authorization` header, a
`Bearer` token, a JSON Web Token, and the `token` / `access_token` / `refresh_token` /
`identitytoken` / `registrytoken` / `password` fields of JSON or form bodies.

Values shorter than `MIN_LENGTH` characters are not replaced by value (a one-letter secret
would mask every occurrence of that letter); the names of secret build args still hide them
in the image history. `SecretSet` is the growing set one build or one process owns (registry
tokens become known while the build runs); output edges redact with its current contents.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

REDACTED = "****"
MIN_LENGTH = 4

T = TypeVar("T")

_FIELDS = "(?:access_token|refresh_token|id_token|identitytoken|registrytoken|token|password)"
_SHAPES = (
    # Authorization: Basic dXNlcjpwYXNz / "Authorization": "Bearer eyJ..."
    re.compile(r"""(?i)(authorization["']?\s*[:=]\s*["']?(?:basic|bearer)?\s*)[^\s"',;]+"""),
    re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/-]{16,}=*"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    # JSON fields and form / query parameters that carry credentials
    re.compile(rf"""(?i)("{_FIELDS}"\s*:\s*")(?:[^"\\]|\\.){{4,}}(?=")"""),
    re.compile(rf"""(?i)(\b{_FIELDS}=)[^\s&"',;]{{4,}}"""),
)


#: a cheap test that a text may hold one of `_SHAPES` (most lines do not)
_HINT = re.compile(r"(?i)authorization|bearer|eyJ|token|password")


def _replace_shape(match: re.Match[str]) -> str:
    prefix = match.group(1) if match.re.groups else ""
    return f"{prefix}{REDACTED}"


def forms(value: str) -> set[str]:
    """The strings that stand for `value` in output (those of `MIN_LENGTH` or more)."""
    found = {value, value.rstrip("\r\n"), value.strip()}
    found.update(line.strip() for line in value.splitlines())
    found.update(json.dumps(text, ensure_ascii=False)[1:-1] for text in list(found))
    return {text for text in found if len(text) >= MIN_LENGTH}


def basic_forms(username: str, password: str) -> set[str]:
    """What a username/password pair looks like on the wire: the password, and the base64
    `user:password` of a Basic header."""
    raw = f"{username}:{password}".encode()
    return {password, base64.b64encode(raw).decode("ascii")} if password else set()


@dataclass(frozen=True)
class Redactor:
    """Replaces the given secrets (see `forms`) and credential-shaped text by `REDACTED`."""

    secrets: frozenset[str] = frozenset()
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _bytes: re.Pattern[bytes] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        texts = sorted({f for s in self.secrets for f in forms(s)}, key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, texts))) if texts else None
        data = sorted({t.encode("utf-8", "surrogateescape") for t in texts}, key=len,
                      reverse=True)
        raw = re.compile(b"|".join(map(re.escape, data))) if data else None
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_bytes", raw)

    def text(self, text: str) -> str:
        """`text` with every secret and credential-shaped part replaced."""
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        if _HINT.search(text) is None:
            return text
        for shape in _SHAPES:
            text = shape.sub(_replace_shape, text)
        return text

    def data(self, data: bytes) -> bytes:
        """`data` with every secret replaced (by value only: bytes have no shapes)."""
        return self._bytes.sub(REDACTED.encode(), data) if self._bytes is not None else data

    def found(self, text: str) -> bool:
        """Whether `text` holds one of the secrets (by value)."""
        return self._pattern is not None and self._pattern.search(text) is not None

    def scrub(self, value: T) -> T:
        """`value` with every string inside it redacted: strings, lists, tuples, dicts
        (keys too) and dataclass instances (rebuilt with `dataclasses.replace`)."""
        scrubbed: T = _scrub(self, value)
        return scrubbed


def _scrub(redactor: Redactor, value: Any) -> Any:
    if isinstance(value, str):
        return redactor.text(value)
    if isinstance(value, list):
        return [_scrub(redactor, item) for item in value]
    if isinstance(value, tuple):
        return tuple(_scrub(redactor, item) for item in value)
    if isinstance(value, Mapping):
        return {_scrub(redactor, k): _scrub(redactor, v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _scrub(redactor, getattr(value, f.name))
                   for f in dataclasses.fields(value) if f.init}
        changed = {k: v for k, v in changes.items() if v is not getattr(value, k)
                   and v != getattr(value, k)}
        return dataclasses.replace(value, **changed) if changed else value
    return value


class SecretSet:
    """The secrets known so far (thread-safe; grows while a build runs)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._redactor = Redactor()
        self.add(*values)

    def add(self, *values: str) -> None:
        """Remember more secrets (empty and known values are ignored)."""
        new = {value for value in values if value and value not in self._values}
        if not new:
            return
        with self._lock:
            self._values |= new
            self._redactor = Redactor(frozenset(self._values))

    def redactor(self) -> Redactor:
        with self._lock:
            return self._redactor

    def text(self, text: str) -> str:
        return self.redactor().text(text)

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)


__all__ = ["MIN_LENGTH", "REDACTED", "Redactor", "SecretSet", "basic_forms", "forms"]
