"""Fetching an `ADD` URL with the URL policy enforced when connecting, not only when parsing.

For the URL and every redirect (at most ten): the URL is checked (`url_policy.parse_target`),
its host resolved once, every address checked, and the connection made to a checked address,
never to a second lookup, so a name whose answer changes (DNS rebinding) cannot slip past.
HTTPS still verifies the certificate against the host name of the URL: only the TCP connection
uses the pinned address, SNI and the hostname check use the name. Proxy variables, `.netrc` and
cookies are not used.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterator, Sequence
from urllib.parse import unquote

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.response import BaseHTTPResponse

from core.build.url_policy import (
    IPAddress,
    Target,
    UrlPolicy,
    UrlRefusedError,
    check_addresses,
    parse_target,
    redirect_target,
)
from core.errors import StepError

MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)
_CONNECT_ERRORS = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)

Resolver = Callable[[str, int], Sequence[IPAddress]]


class FetchError(StepError):
    """A URL that could not be fetched: no address, no connection, endless redirects."""


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, once, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError(f"cannot resolve {host}: {error}") from None
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError(f"cannot resolve {host}: no IPv4 or IPv6 address")
    return addresses


@contextlib.contextmanager
def open_url(url: str, policy: UrlPolicy, *, ca_certs: str | None = None,
             resolver: Resolver = resolve) -> Iterator[BaseHTTPResponse]:
    """The final (non-redirect) response to GET `url`, its body not read yet."""
    target = parse_target(url)
    previous: Target | None = None
    location = ""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            if previous is not None:
                target = redirect_target(previous, location)
            response, pool = _request(target, policy, ca_certs, resolver)
        except UrlRefusedError as error:
            if previous is None:
                raise
            raise UrlRefusedError(f"redirect from {previous.url}: {error.message}") from None
        location = response.headers.get("Location") or ""
        if response.status not in _REDIRECTS or not location:
            try:
                yield response
            finally:
                _discard(response, pool)
            return
        _discard(response, pool)
        previous = target
    raise FetchError(f"more than {MAX_REDIRECTS} redirects")


def _request(target: Target, policy: UrlPolicy, ca_certs: str | None,
             resolver: Resolver) -> tuple[BaseHTTPResponse, urllib3.HTTPConnectionPool]:
    """GET one hop from the first checked address that accepts a connection."""
    literal = target.literal
    addresses = [literal] if literal is not None else list(resolver(target.host, target.port))
    check_addresses(target, addresses, policy)
    failure: Exception | None = None
    for address in addresses:
        pool = _pool(target, address, ca_certs)
        try:
            response = pool.urlopen("GET", target.path, headers=_headers(target), retries=False,
                                    redirect=False, preload_content=False,
                                    assert_same_host=False)
        except _CONNECT_ERRORS as error:
            pool.close()
            failure = error
            continue
        except BaseException:
            pool.close()
            raise
        return response, pool
    raise FetchError(f"cannot connect to {target.authority}: {failure}")


def _pool(target: Target, address: IPAddress,
          ca_certs: str | None) -> urllib3.HTTPConnectionPool:
    """A one-connection pool to the pinned address; TLS checks the URL's host name."""
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            str(address), target.port, timeout=_TIMEOUT, maxsize=1, retries=False,
            cert_reqs="CERT_REQUIRED", ca_certs=ca_certs or DEFAULT_CA_BUNDLE_PATH,
            server_hostname=target.host)
    return urllib3.HTTPConnectionPool(str(address), target.port, timeout=_TIMEOUT, maxsize=1,
                                      retries=False)


def _headers(target: Target) -> dict[str, str]:
    headers = {"Host": target.authority, "User-Agent": "bucketbuild",
               "Accept-Encoding": "gzip, deflate"}
    if target.userinfo:
        user, _, password = target.userinfo.partition(":")
        token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return headers


def _discard(response: BaseHTTPResponse, pool: urllib3.HTTPConnectionPool) -> None:
    response.close()
    pool.close()
