"""Registry authentication: `WWW-Authenticate` challenges, Basic, and the Bearer token flow.

An `Authenticator` serves one registry host. It learns the challenge from `GET /v2/`, answers
Basic challenges with the provider's credentials, and for Bearer challenges fetches tokens from
the realm (GET with Basic credentials, or POST with a refresh token for identity tokens),
caching them per scope set until shortly before they expire. After a 401 the caller hands the
response to `refresh_after_unauthorized` and retries once. Credentials and tokens are never
logged; `on_secret` hears each one as it becomes known, so that a build can redact it.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from core.errors import AuthError, RegistryError
from core.redaction import basic_forms
from core.registry.credentials import Credentials
from core.registry.errors import auth_error, error_from_response
from core.registry.transport import Transport

log = logging.getLogger(__name__)

Clock = Callable[[], float]
DEFAULT_TOKEN_LIFETIME = 60
_CLIENT_ID = "bucketbuild"
_PARAM = re.compile(
    r"""\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?\s*,?"""
)


@dataclass(frozen=True)
class Challenge:
    """One challenge of a `WWW-Authenticate` header; `scheme` is lower case."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def error(self) -> str:
        return self.params.get("error", "")


def parse_www_authenticate(header: str) -> tuple[Challenge, ...]:
    """Parse `WWW-Authenticate` (several challenges, quoted or token parameter values)."""
    challenges: list[tuple[str, dict[str, str]]] = []
    pos = 0
    while pos < len(header):
        match = _PARAM.match(header, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
        name, value = match.group(1), match.group(2)
        if value is None:
            challenges.append((name.lower(), {}))
        elif challenges:
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            challenges[-1][1][name.lower()] = value
    return tuple(Challenge(scheme, params) for scheme, params in challenges)


def repository_scope(repository: str, actions: str) -> str:
    """`repository:NAME:ACTIONS`, e.g. `repository:library/busybox:pull,push`."""
    return f"repository:{repository}:{actions}"


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: float


def credential_secrets(credentials: Credentials) -> set[str]:
    """Every secret string of `credentials`, in the forms they take on the wire."""
    found = {credentials.identity_token, credentials.registry_token}
    found |= basic_forms(credentials.username, credentials.password)
    return {value for value in found if value}


def docker_config_secrets(config: Mapping[str, Any]) -> set[str]:
    """The secrets in a loaded docker `config.json`: each `auths` entry's `auth` (and the
    password inside it), `password`, `identitytoken` and `registrytoken`."""
    found: set[str] = set()
    entries = config.get("auths")
    for entry in entries.values() if isinstance(entries, dict) else ():
        if not isinstance(entry, dict):
            continue
        for name in ("auth", "password", "identitytoken", "registrytoken"):
            value = entry.get(name)
            if isinstance(value, str) and value:
                found.add(value)
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            try:
                decoded = base64.b64decode(encoded, validate=False).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                continue
            found.add(decoded.partition(":")[2])
    return {value for value in found if value}


def basic_header(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class Authenticator:
    """Authorization headers for one registry, with a per-scope token cache."""

    def __init__(self, transport: Transport,
                 credentials: Callable[[], Credentials | None], *,
                 clock: Clock = time.monotonic,
                 on_secret: Callable[[str], None] | None = None) -> None:
        self._transport = transport
        self._on_secret = on_secret
        self._lookup = credentials
        self._clock = clock
        self._lock = threading.RLock()
        self._pinged = False
        self._challenge: Challenge | None = None
        self._credentials: Credentials | None = None
        self._looked_up = False
        self._tokens: dict[tuple[str, ...], Token] = {}

    @property
    def registry(self) -> str:
        return self._transport.host

    def authorization(self, scopes: tuple[str, ...]) -> str | None:
        """The `Authorization` header value for a request needing `scopes` (None: anonymous)."""
        with self._lock:
            if not self._pinged:
                self._ping()
            challenge = self._challenge
            if challenge is None:
                return None
            if challenge.scheme == "basic":
                creds = self._creds()
                return basic_header(creds) if creds and creds.has_basic else None
            if challenge.scheme == "bearer":
                return "Bearer " + self._token(challenge, scopes).value
            return None

    def refresh_after_unauthorized(self, response: requests.Response,
                                   scopes: tuple[str, ...]) -> bool:
        """Learn from a 401: update the challenge, drop the cached token. True: retry once."""
        with self._lock:
            self._tokens.pop(_key(scopes), None)
            found = _usable(parse_www_authenticate(response.headers.get("WWW-Authenticate", "")))
            if found is None:
                return False
            self._challenge, self._pinged = found, True
            if found.scheme == "basic":
                creds = self._creds()
                return creds is not None and creds.has_basic
            return True

    def cached_token_count(self) -> int:
        with self._lock:
            return len(self._tokens)

    def _creds(self) -> Credentials | None:
        if not self._looked_up:
            self._credentials = self._lookup()
            self._looked_up = True
            if self._credentials is not None:
                self._reveal(*credential_secrets(self._credentials))
        return self._credentials

    def _reveal(self, *values: str) -> None:
        """Tell the build's redaction about secrets it could not know in advance."""
        if self._on_secret is not None:
            for value in values:
                if value:
                    self._on_secret(value)

    def _ping(self) -> None:
        response = self._transport.send("GET", self._transport.url("/v2/"), action="ping")
        response.close()
        self._pinged = True
        if response.status_code == 401:
            self._challenge = _usable(
                parse_www_authenticate(response.headers.get("WWW-Authenticate", "")))
        log.debug("registry %s challenge: %s", self.registry,
                  self._challenge.scheme if self._challenge else "none")

    def _token(self, challenge: Challenge, scopes: tuple[str, ...]) -> Token:
        key = _key(scopes)
        cached = self._tokens.get(key)
        if cached is not None and cached.expires_at > self._clock():
            return cached
        token = self._fetch_token(challenge, key)
        self._reveal(token.value)
        self._tokens[key] = token
        return token

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> Token:
        creds = self._creds()
        if creds is not None and creds.registry_token:
            return Token(creds.registry_token, self._clock() + DEFAULT_TOKEN_LIFETIME)
        if not challenge.realm:
            raise AuthError("bearer challenge without a realm", registry=self.registry)
        if creds is not None and creds.identity_token:
            response = self._post_refresh_token(challenge, scopes, creds.identity_token)
        else:
            response = self._get_token(challenge, scopes, creds)
        return self._read_token(response, scopes)

    def _get_token(self, challenge: Challenge, scopes: tuple[str, ...],
                   creds: Credentials | None) -> requests.Response:
        query: list[tuple[str, str]] = []
        if challenge.service:
            query.append(("service", challenge.service))
        query += [("scope", s) for s in scopes]
        headers = {}
        if creds is not None and creds.has_basic:
            query.append(("account", creds.username))
            headers["Authorization"] = basic_header(creds)
        sep = "&" if "?" in challenge.realm else "?"
        url = challenge.realm + (sep + urlencode(query) if query else "")
        return self._transport.send("GET", url, headers=headers, action="fetch token")

    def _post_refresh_token(self, challenge: Challenge, scopes: tuple[str, ...],
                            refresh_token: str) -> requests.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": _CLIENT_ID, "service": challenge.service, "scope": " ".join(scopes)}
        body = urlencode(form).encode()
        return self._transport.send(
            "POST", challenge.realm, body=lambda: body, action="fetch token",
            headers={"Content-Type": "application/x-www-form-urlencoded"})

    def _read_token(self, response: requests.Response, scopes: tuple[str, ...]) -> Token:
        scope = " ".join(scopes)
        if response.status_code != 200:
            err = error_from_response(response, registry=self.registry, scope=scope,
                                      action="token request")
            if response.status_code in (401, 403):
                raise auth_error(registry=self.registry, scope=scope,
                                 status=response.status_code, codes=err.codes,
                                 reason="token server refused the credentials")
            raise err
        try:
            doc = response.json()
            value = str(doc.get("token") or doc.get("access_token") or "")
            lifetime = int(doc.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            raise RegistryError("token server sent an invalid response",
                                registry=self.registry, status=200) from None
        if not value:
            raise RegistryError("token server sent no token", registry=self.registry, status=200)
        margin = min(30.0, lifetime / 5)
        log.debug("registry %s: new token for %s, %ds", self.registry, scope, lifetime)
        return Token(value, self._clock() + lifetime - margin)


def _key(scopes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(scopes)))


def _usable(challenges: tuple[Challenge, ...]) -> Challenge | None:
    """Prefer Bearer, then Basic; other schemes are not supported."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None
