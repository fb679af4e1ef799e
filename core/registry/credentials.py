"""Registry credentials: the value type, providers, and the docker `config.json` provider.

A provider is any callable `registry host -> Credentials | None`. The docker config provider
reads `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`) at call time: `auths`
(base64 `auth`, `username`/`password`, `identitytoken`, `registrytoken`), `credHelpers` and
`credsStore` through `docker-credential-<name> get`. Secrets are hidden from `repr` and are
never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from core.errors import AuthError

log = logging.getLogger(__name__)

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io",
                        "registry.hub.docker.com"})
_HELPER_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    """A username/password pair, an OAuth2 refresh (identity) token, or a ready bearer token."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)

    @property
    def has_basic(self) -> bool:
        return bool(self.username) and bool(self.password)


class CredentialProvider(Protocol):
    def __call__(self, registry: str) -> Credentials | None: ...


def anonymous(registry: str) -> Credentials | None:
    """The provider that never has credentials."""
    return None


@dataclass(frozen=True)
class ChainProvider:
    """Asks each provider in turn; the first answer wins."""

    providers: tuple[CredentialProvider, ...]

    def __call__(self, registry: str) -> Credentials | None:
        for provider in self.providers:
            found = provider(registry)
            if found is not None:
                return found
        return None


@dataclass(frozen=True)
class StaticProvider:
    """Fixed credentials per registry host (e.g. from flags or settings)."""

    entries: Mapping[str, Credentials]

    def __call__(self, registry: str) -> Credentials | None:
        return self.entries.get(registry)


def registry_key(name: str) -> str:
    """Normalise a config.json key or a registry host to a bare `host[:port]`."""
    text = name.strip()
    if "://" in text:
        text = urlsplit(text).netloc
    text = text.split("/", 1)[0].lower()
    return "docker.io" if text in _HUB_HOSTS else text


HelperRunner = Callable[[str, str], str]


def run_helper(helper: str, registry: str, *, env: Mapping[str, str] | None = None) -> str:
    """Run `docker-credential-<helper> get` with `registry` on stdin; return its stdout.
    `env`: variables set on top of this process's environment (PATH finds the helper)."""
    program = f"docker-credential-{helper}"
    environ = {**os.environ, **env} if env else None
    try:
        proc = subprocess.run([program, "get"], input=registry, capture_output=True,
                              text=True, timeout=_HELPER_TIMEOUT, check=False, env=environ)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuthError(f"credential helper {program} could not run ({type(exc).__name__})",
                        registry=registry) from None
    if proc.returncode != 0:
        if "credentials not found" in (proc.stdout + proc.stderr).lower():
            return ""
        raise AuthError(f"credential helper {program} failed with exit code {proc.returncode}",
                        registry=registry)
    return proc.stdout


@dataclass(frozen=True)
class DockerConfigProvider:
    """Credentials from a docker `config.json`; `config_dir` overrides `$DOCKER_CONFIG`."""

    config_dir: Path | None = None
    helper_runner: HelperRunner = run_helper

    def config_path(self) -> Path:
        if self.config_dir is not None:
            return self.config_dir / "config.json"
        env = os.environ.get("DOCKER_CONFIG")
        base = Path(env) if env else Path.home() / ".docker"
        return base / "config.json"

    def load(self) -> dict[str, Any]:
        path = self.config_path()
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise AuthError(f"cannot read docker config {path}: {type(exc).__name__}") from None
        return doc if isinstance(doc, dict) else {}

    def __call__(self, registry: str) -> Credentials | None:
        config = self.load()
        key = registry_key(registry)
        helpers = config.get("credHelpers") or {}
        for name, helper in helpers.items():
            if registry_key(name) == key and isinstance(helper, str):
                return self._from_helper(helper, key)
        for name, entry in (config.get("auths") or {}).items():
            if registry_key(name) == key and isinstance(entry, dict):
                found = _from_auth_entry(entry, key)
                if found is not None:
                    return found
        store = config.get("credsStore")
        if isinstance(store, str) and store:
            return self._from_helper(store, key)
        return None

    def _from_helper(self, helper: str, key: str) -> Credentials | None:
        server = DOCKER_HUB_KEY if key == "docker.io" else key
        output = self.helper_runner(helper, server)
        if not output.strip():
            return None
        try:
            doc = json.loads(output)
        except ValueError:
            raise AuthError(f"credential helper {helper} returned invalid JSON",
                            registry=key) from None
        username, secret = str(doc.get("Username", "")), str(doc.get("Secret", ""))
        if not secret:
            return None
        if username == "<token>":
            return Credentials(identity_token=secret)
        return Credentials(username=username, password=secret)


def _from_auth_entry(entry: Mapping[str, Any], key: str) -> Credentials | None:
    username = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError("docker config has an invalid 'auth' entry", registry=key) from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError("docker config has an invalid 'auth' entry", registry=key)
    identity = str(entry.get("identitytoken") or "")
    token = str(entry.get("registrytoken") or "")
    if not (password or identity or token):
        return None
    return Credentials(username=username, password=password, identity_token=identity,
                       registry_token=token)
