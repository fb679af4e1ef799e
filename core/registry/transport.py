"""HTTP to one registry host: scheme, TLS, timeouts and retries with backoff.

A `Transport` owns one `requests.Session` for one registry host. Requests are retried on
connection errors, 429 and 5xx with exponential backoff and full jitter (honouring
`Retry-After`), at most `TransportOptions.retries` extra attempts. Bodies that cannot be
replayed are given as a factory that opens a fresh body per attempt. What `requests` would read
from the environment for every request (proxy variables, `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE`,
`~/.netrc`) is read once per origin and passed along, with the same meaning.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies, get_netrc_auth

from core import __version__
from core.registry.errors import RETRYABLE_STATUSES, transport_error

log = logging.getLogger(__name__)

Body = bytes | IO[bytes] | Iterable[bytes] | None
BodyFactory = Callable[[], Body]
SessionFactory = Callable[[], requests.Session]


@dataclass(frozen=True)
class TransportOptions:
    """How to reach registries. Host sets hold `host[:port]` names; `"*"` matches every host."""

    insecure_registries: frozenset[str] = frozenset()
    skip_tls_verify: frozenset[str] = frozenset()
    ca_bundle: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    pool_size: int = 8
    user_agent: str = field(default=f"bucketbuild/{__version__}")

    def scheme_for(self, host: str) -> str:
        return "http" if _matches(host, self.insecure_registries) else "https"

    def verify_for(self, host: str) -> bool | str:
        if _matches(host, self.skip_tls_verify):
            return False
        return self.ca_bundle if self.ca_bundle else True


def _matches(host: str, names: frozenset[str]) -> bool:
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return "*" in names or host in names or bare in names


def backoff_delay(attempt: int, *, base: float, cap: float, retry_after: float | None) -> float:
    """Seconds to wait before retry number `attempt` (0-based): full jitter, capped."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    return random.uniform(0.0, min(cap, base * (2 ** attempt)))


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Transport:
    """Sends requests to one registry host with TLS settings, timeouts and retries."""

    def __init__(self, host: str, options: TransportOptions,
                 session_factory: SessionFactory | None = None) -> None:
        self.host = host
        self.options = options
        self.base_url = f"{options.scheme_for(host)}://{host}"
        self.session = session_factory() if session_factory else requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(2, options.pool_size))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = options.user_agent
        # the environment is read here (and once per origin), not by requests per request
        self._trust_env = self.session.trust_env
        self.session.trust_env = False
        self._env_bundle = (os.environ.get("REQUESTS_CA_BUNDLE")
                            or os.environ.get("CURL_CA_BUNDLE")) if self._trust_env else None
        self._origins: dict[str, tuple[dict[str, str], tuple[str, str] | None]] = {}

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.options.connect_timeout, self.options.read_timeout)

    def url(self, path_or_url: str) -> str:
        """Absolute URL for an API path or a (relative or absolute) `Location`."""
        return urljoin(self.base_url + "/", path_or_url)

    def is_same_host(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.netloc == self.host and parts.scheme == urlsplit(self.base_url).scheme

    def verify_for_url(self, url: str) -> bool | str:
        return self.options.verify_for(urlsplit(url).netloc)

    def environment(self, url: str) -> tuple[dict[str, str], tuple[str, str] | None]:
        """The proxies and `.netrc` credentials `requests` would take from the environment for
        `url`'s origin, read on first use."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        found = self._origins.get(origin)
        if found is None:
            found = (get_environ_proxies(url), get_netrc_auth(url)) if self._trust_env else (
                {}, None)
            self._origins[origin] = found
        return found

    def send_once(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                  body: Body = None, stream: bool = False) -> requests.Response:
        """One request, no retry, no redirects. Connection errors propagate."""
        proxies, netrc = self.environment(url)
        verify = self.verify_for_url(url)
        if verify is True and self._env_bundle:
            verify = self._env_bundle
        return self.session.request(
            method, url, headers=dict(headers or {}), data=body, stream=stream,
            timeout=self.timeout, verify=verify, allow_redirects=False, proxies=proxies,
            auth=netrc if self.session.auth is None else None,
        )

    def send(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
             body: BodyFactory | None = None, stream: bool = False, action: str = "",
             repository: str = "", retries: int | None = None) -> requests.Response:
        """Send with retries on connection errors, 429 and 5xx; return the last response.

        A retryable status on the last attempt is returned (the caller maps it to an error);
        a connection error on the last attempt raises a retryable `RegistryError`.
        """
        attempts = 1 + max(0, self.options.retries if retries is None else retries)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.send_once(method, url, headers=headers,
                                          body=body() if body else None, stream=stream)
            except requests.RequestException as exc:
                if last or isinstance(exc, requests.exceptions.SSLError):
                    raise transport_error(exc, registry=self.host, repository=repository,
                                          action=action or method) from None
                self.pause(attempt, None, f"{method} {action}: {type(exc).__name__}")
                continue
            if response.status_code not in RETRYABLE_STATUSES or last:
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            response.close()
            self.pause(attempt, retry_after, f"{method} {action}: HTTP {response.status_code}")
        raise AssertionError("unreachable")

    def pause(self, attempt: int, retry_after: float | None, why: str) -> None:
        """Sleep the backoff for retry number `attempt` (0-based) and log why."""
        delay = backoff_delay(attempt, base=self.options.backoff_base,
                              cap=self.options.backoff_max, retry_after=retry_after)
        log.info("retrying %s on %s in %.2fs (attempt %d)", why, self.host, delay, attempt + 2)
        time.sleep(delay)

    def close(self) -> None:
        self.session.close()
