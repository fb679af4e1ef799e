"""Secret build arg values in layer cache keys: replaced by a slow, salted hash first.

A key is public (a tag in the cache repository) and deterministic, so whoever knows a step's
other inputs could test guesses of a secret against it offline, one sha256 per guess. Before a
step's inputs are hashed into its key, every occurrence of a secret value in them (inside a
longer value too, e.g. `ARG DERIVED=pre-$TOKEN`) is replaced by `scrypt(value, salt)`; the
salt names the key format and the cache repository, so no table of guesses serves two caches.
Cost: `SCRYPT_N`, `SCRYPT_R`, `SCRYPT_P` (16 MiB, about 0.08 s of CPU), paid once per secret
value per build, and only when a key holds it; every guess costs an attacker the same. The
same secret and cache give the same replacement in every build, so keys still hit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

from core.cache.keys import KEY_FORMAT, stable

#: scrypt's cost (2**14, 8, 1: the scrypt paper's interactive-login setting)
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_MAXMEM = 64 * 1024 * 1024


def secret_salt(cache: str) -> bytes:
    """The salt for secrets in the keys of one cache (`cache`: its repository, "" for a local
    OCI layout, whose path may change between builds)."""
    return f"{KEY_FORMAT}\0secret build arg\0{cache}".encode()


def slow_digest(value: str, salt: bytes) -> str:
    """scrypt of `value` (64 hex digits)."""
    return hashlib.scrypt(value.encode("utf-8", "surrogateescape"), salt=salt, n=SCRYPT_N,
                          r=SCRYPT_R, p=SCRYPT_P, maxmem=_MAXMEM, dklen=32).hex()


class SecretInputs:
    """Replaces secret values in a step's inputs (one per build: digests are kept)."""

    def __init__(self, values: Iterable[str], *, salt: bytes) -> None:
        texts = sorted({value for value in values if value}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, texts))) if texts else None
        self._salt = salt
        self._digests: dict[str, str] = {}

    def hide(self, inputs: Mapping[str, object]) -> Mapping[str, object]:
        """`inputs` as plain data (`core.cache.keys.stable`) with each secret value replaced
        by `<secret:DIGEST>`; `inputs` itself when there are no secrets."""
        if self._pattern is None:
            return inputs
        hidden = self._walk(stable(inputs))
        assert isinstance(hidden, dict)
        return hidden

    def _walk(self, value: object) -> object:
        if isinstance(value, str):
            assert self._pattern is not None
            return self._pattern.sub(self._replace, value)
        if isinstance(value, dict):
            return {self._walk(k): self._walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(item) for item in value]
        return value

    def _replace(self, match: re.Match[str]) -> str:
        value = match.group(0)
        digest = self._digests.get(value)
        if digest is None:
            digest = self._digests[value] = slow_digest(value, self._salt)
        return f"<secret:{digest}>"
