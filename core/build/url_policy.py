"""Which URLs `ADD` may fetch, decided without I/O.

Only `http://` and `https://` URLs are fetched. A host is a DNS name or an IP literal in its
canonical spelling: numeric forms that resolvers read as IPv4 (`2130706433`, `0x7f.1`,
`0177.0.0.1`, `127.1`) are refused outright, so what is checked is what is reached.

Every address a host resolves to is checked (by the fetcher, which then connects to that very
address). Refused: loopback, unspecified (`0.0.0.0/8`, `::`), link-local (`169.254.0.0/16`,
`fe80::/10`), the cloud metadata endpoints, multicast, broadcast and reserved ranges, also when
written inside an IPv6 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo).
Private ranges (RFC 1918, `100.64.0.0/10`, `fc00::/7`) are allowed, as BuildKit allows them (a
function in a VPC may fetch from a private host), unless `allow_private` is off.
A host given in `allowed_hosts` (`HOST` or `HOST:PORT`, as written in the URL) skips the address
checks: that is how a build reaches a server on loopback on purpose.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from core.errors import StepError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_PATH_SAFE = "/%?=&;:@!$'()*+,~-._[]"
_UNSAFE_TEXT = re.compile(r"[\x00-\x20\x7f\\]")

_METADATA = frozenset(ipaddress.ip_address(text) for text in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack instance metadata
    "169.254.170.2",  # ECS task credentials
    "169.254.170.23",  # EKS pod identity
    "fd00:ec2::254",  # AWS instance metadata over IPv6
    "fd00:ec2::23",  # EKS pod identity over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud
))
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_PRIVATE = tuple(ipaddress.ip_network(text) for text in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7", "fec0::/10"))
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_V4_COMPATIBLE = ipaddress.ip_network("::/96")


class UrlRefusedError(StepError):
    """An `ADD` URL (or a redirect) that the URL policy does not allow."""


@dataclass(frozen=True)
class HostRule:
    """One `--allow-url-host` entry: a host as written in URLs, on one port or any."""

    host: str  # lowercase name or canonical IP text (no brackets)
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


@dataclass(frozen=True)
class UrlPolicy:
    """What `ADD <url>` may reach besides public addresses."""

    allowed_hosts: tuple[HostRule, ...] = ()
    allow_private: bool = True

    @classmethod
    def parse(cls, hosts: Iterable[str], *, allow_private: bool = True) -> UrlPolicy:
        """From `HOST[:PORT]` texts; ValueError names a bad one."""
        return cls(tuple(parse_host_rule(text) for text in hosts), allow_private)

    def host_allowed(self, host: str, port: int) -> bool:
        return any(rule.host == host and rule.port in (None, port)
                   for rule in self.allowed_hosts)


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect and what to ask for."""

    url: str
    scheme: str  # "http" or "https"
    host: str  # lowercase ASCII name, or canonical IP text without brackets
    port: int
    path: str  # the request target: path and query, never empty
    userinfo: str = ""  # `user:password` when the URL carries one

    @property
    def literal(self) -> IPAddress | None:
        """The host as an address, when the URL names one."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    @property
    def authority(self) -> str:
        """The `Host` header: the host (bracketed when IPv6), with a non-default port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def parse_host_rule(text: str) -> HostRule:
    """`HOST`, `HOST:PORT`, `[IPV6]` or `[IPV6]:PORT`."""
    stripped = text.strip()
    try:
        parts = urlsplit(f"http://{stripped}")
        port = parts.port
        host = parts.hostname or ""
    except ValueError as error:
        raise ValueError(f"invalid host {text!r}: {error}") from None
    if not host or parts.path or parts.query or parts.fragment or parts.username is not None:
        raise ValueError(f"invalid host {text!r}: expected HOST or HOST:PORT")
    try:
        return HostRule(_canonical_host(host), port)
    except ValueError as error:
        raise ValueError(f"invalid host {text!r}: {error}") from None


def parse_target(url: str) -> Target:
    """Check the form of `url` (scheme, host spelling, port) and split it."""
    if _UNSAFE_TEXT.search(url):
        raise _refused(url, "it contains spaces, control characters or backslashes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise _refused(url, f"invalid URL ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or not url.startswith(f"{parts.scheme}://"):
        raise _refused(url, "only http:// and https:// URLs can be fetched")
    if not parts.hostname:
        raise _refused(url, "it has no host")
    try:
        host = _canonical_host(parts.hostname)
    except ValueError as error:
        raise _refused(url, str(error)) from None
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += f"?{quote(parts.query, safe=_PATH_SAFE)}"
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    return Target(url, scheme, host, port or _DEFAULT_PORTS[scheme], path, userinfo)


def redirect_target(current: Target, location: str) -> Target:
    """Where a redirect from `current` leads, checked like the first URL."""
    return parse_target(urljoin(current.url, location.strip()))


def _canonical_host(host: str) -> str:
    """A lowercase ASCII name or canonical address; ValueError for ambiguous spellings."""
    name = host.lower()
    name = name[:-1] if name.endswith(".") else name
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            raise ValueError(f"host {host!r}: IPv6 zone identifiers are not supported")
        return str(address)
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"host {host!r} is not a valid name") from None
    if _NUMERIC_LABEL.match(name.rsplit(".", 1)[-1]):
        raise ValueError(f"host {host!r} is not an IPv4 address in dotted-decimal "
                         "form (decimal, octal, hex and short forms are refused)")
    if not _NAME.match(name):
        raise ValueError(f"host {host!r} is not a valid name")
    return name


def address_refusal(address: IPAddress, *, allow_private: bool = True) -> str | None:
    """Why a connection to `address` is refused, or None when it is allowed."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = address_refusal(inner, allow_private=allow_private)
            return f"{reason} (IPv4 {inner} inside IPv6)" if reason else None
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified or address in _THIS_NETWORK:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved or address == ipaddress.IPv4Address("255.255.255.255"):
        return "a reserved address"
    if not allow_private and any(address in network for network in _PRIVATE):
        return "a private address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in network for network in _NAT64):
        return low
    if address in _V4_COMPATIBLE and int(address) > 1:
        return low
    return None


def check_addresses(target: Target, addresses: Iterable[IPAddress], policy: UrlPolicy) -> None:
    """Refuse `target` if any address it resolved to is refused (and the host is not allowed)."""
    if policy.host_allowed(target.host, target.port):
        return
    for address in addresses:
        reason = address_refusal(address, allow_private=policy.allow_private)
        if reason is not None:
            shown = "" if target.literal is not None else f"{target.host} resolves to "
            raise _refused(target.url, f"{shown}{address} is {reason} (allow it with "
                           f"--allow-url-host {HostRule(target.host, target.port)} or "
                           "BUCKETBUILD_ALLOW_URL_HOSTS)")


def _refused(url: str, why: str) -> UrlRefusedError:
    shown = url if len(url) <= 300 else url[:300] + "..."
    return UrlRefusedError(f"URL {shown!r} refused: {why}")
