"""The ADD URL policy (pure) and its enforcement when connecting (`url_fetch`, `add.download`).

The connection tests use real loopback servers, real TLS and the real download; only name
resolution is given as a function where a test needs a name that resolves to loopback (there
is no DNS server here), and the test then checks it was asked once per hop.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable
from pathlib import Path

import pytest

from core.build import add
from core.build.url_fetch import open_url
from core.build.url_policy import (
    HostRule,
    IPAddress,
    UrlPolicy,
    UrlRefusedError,
    address_refusal,
    parse_host_rule,
    parse_target,
)
from core.errors import StepError, UsageError
from core.flags import add_build_flags, invocation_from_args
from core.service.events import BuildRequest
from core.service.overrides import Overrides, Placement, build_options
from core.service.settings import ServiceConfig, SettingsError
from tests.security.urlservers import serve, tls_pair

PAYLOAD = b"payload over a pinned connection\n"


@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "loopback"), ("127.255.0.9", "loopback"), ("::1", "loopback"),
    ("0.0.0.0", "unspecified"), ("0.1.2.3", "unspecified"), ("::", "unspecified"),
    ("169.254.169.254", "metadata"), ("169.254.170.2", "metadata"),
    ("fd00:ec2::254", "metadata"), ("100.100.100.200", "metadata"),
    ("169.254.10.10", "link-local"), ("fe80::abcd", "link-local"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "metadata"),
    ("::127.0.0.1", "loopback"), ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "metadata"), ("2002:a9fe:a9fe::1", "metadata"),
    ("224.0.0.251", "multicast"), ("ff02::1", "multicast"),
    ("255.255.255.255", "reserved"), ("240.0.0.1", "reserved"),
])
def test_refused_addresses(address: str, reason: str) -> None:
    found = address_refusal(ipaddress.ip_address(address))
    assert found is not None and reason in found


@pytest.mark.parametrize("address", ["10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1",
                                     "fd12:3456::1", "::ffff:10.0.0.1"])
def test_private_addresses_are_allowed_unless_switched_off(address: str) -> None:
    parsed = ipaddress.ip_address(address)
    assert address_refusal(parsed) is None
    found = address_refusal(parsed, allow_private=False)
    assert found is not None and "private" in found


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111",
                                     "::ffff:8.8.8.8", "172.32.0.1", "192.169.0.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), allow_private=False) is None


@pytest.mark.parametrize(("url", "host", "port", "path"), [
    ("http://Example.COM/a/b?c=d#frag", "example.com", 80, "/a/b?c=d"),
    ("https://example.com.:8443", "example.com", 8443, "/"),
    ("http://[::FFFF:127.0.0.1]:81/x", "::ffff:7f00:1", 81, "/x"),
    ("http://b\u00fccher.example/\u00e9", "xn--bcher-kva.example", 80, "/%C3%A9"),
    ("https://1.2.3.4/", "1.2.3.4", 443, "/"),
])
def test_targets_are_normalised(url: str, host: str, port: int, path: str) -> None:
    target = parse_target(url)
    assert (target.host, target.port, target.path) == (host, port, path)


@pytest.mark.parametrize(("url", "words"), [
    ("ftp://example.com/x", "only http"), ("HTTP://example.com/x", "only http"),
    ("http:example.com", "only http"), ("http:///x", "no host"),
    ("http://2130706433/", "dotted-decimal"), ("http://0x7f.1/", "dotted-decimal"),
    ("http://1.2.3.04/", "dotted-decimal"), ("http://example.123/", "dotted-decimal"),
    ("http://a b/", "spaces"), ("http://a\\@b/", "backslashes"), ("http://a\x00b/", "control"),
    ("http://exa%6dple.com/", "not a valid name"), ("http://a:99999/", "invalid URL"),
    ("http://[fe80::1%25eth0]/", "zone"),
])
def test_bad_urls_are_refused(url: str, words: str) -> None:
    with pytest.raises(UrlRefusedError, match="refused") as caught:
        parse_target(url)
    assert words in str(caught.value)


def test_host_rules() -> None:
    assert parse_host_rule("LocalHost") == HostRule("localhost")
    assert parse_host_rule("127.0.0.1:8080") == HostRule("127.0.0.1", 8080)
    assert parse_host_rule("[::1]:9") == HostRule("::1", 9)
    assert str(HostRule("::1", 9)) == "[::1]:9"
    policy = UrlPolicy.parse(["localhost", "127.0.0.1:8080"])
    assert policy.host_allowed("localhost", 1) and policy.host_allowed("127.0.0.1", 8080)
    assert not policy.host_allowed("127.0.0.1", 8081)
    for bad in ("http://x", "x/y", "user@x", "x:port", "0x7f.1", ""):
        with pytest.raises(ValueError, match="invalid host"):
            parse_host_rule(bad)


# --- settings and flags reach the build -------------------------------------------------------

def test_settings_reach_the_build_options() -> None:
    config = ServiceConfig.from_environ({
        "BUCKETBUILD_DESTINATION": "127.0.0.1:5000/{name}:1",
        "BUCKETBUILD_ALLOW_URL_HOSTS": "files.internal, 127.0.0.1:8080,[::1]",
        "BUCKETBUILD_ALLOW_PRIVATE_URLS": "false"})
    request = BuildRequest(bucket="b", key="app.tar.gz", store="s3", version="1", etag="e")
    placement = Placement(context="tar:///tmp/x", work_dir=Path("/tmp/x"), deadline=None,
                          build_id="0" * 20)
    options = build_options(request, config=config, metadata=Overrides(), archive=Overrides(),
                            placement=placement)
    assert options.add_urls == UrlPolicy(
        (HostRule("files.internal"), HostRule("127.0.0.1", 8080), HostRule("::1")),
        allow_private=False)
    assert ServiceConfig.from_environ({}).allow_private_urls is True
    with pytest.raises(SettingsError, match="BUCKETBUILD_ALLOW_URL_HOSTS"):
        ServiceConfig.from_environ({"BUCKETBUILD_ALLOW_URL_HOSTS": "http://x/"})


def test_flags_reach_the_build_options(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")

    def parse(*argv: str) -> UrlPolicy:
        parser = argparse.ArgumentParser()
        add_build_flags(parser)
        args = parser.parse_args(["--context", str(tmp_path), "--no-push", *argv])
        return invocation_from_args(args, environ={}, cwd=tmp_path,
                                    clock=lambda: 0.0).options.add_urls

    assert parse() == UrlPolicy()
    assert parse("--allow-url-host", "localhost", "--allow-url-host=[::1]:81",
                 "--allow-private-urls=false") == UrlPolicy(
        (HostRule("localhost"), HostRule("::1", 81)), allow_private=False)
    with pytest.raises(UsageError, match="--allow-url-host"):
        parse("--allow-url-host", "a/b")


# --- enforcement when connecting ---------------------------------------------------------------

def resolver_to(*answers: str) -> tuple[Callable[[str, int], list[IPAddress]], list[str]]:
    """A name resolver answering `answers` for any name, and the names it was asked."""
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        return [ipaddress.ip_address(a) for a in answers]

    return resolve, asked


def test_https_connects_to_the_pinned_address_and_verifies_the_name(tmp_path: Path) -> None:
    context, ca = tls_pair(tmp_path / "good", names=("files.test",))
    with serve({"/p": PAYLOAD}, tls=context) as server:
        resolve, asked = resolver_to("127.0.0.1")
        policy = UrlPolicy.parse(["files.test"])
        with open_url(f"https://files.test:{server.port}/p", policy, ca_certs=str(ca),
                      resolver=resolve) as response:
            assert response.status == 200 and response.read() == PAYLOAD
    assert asked == ["files.test"]
    assert server.server_names == ["files.test"]
    assert server.requests == [("/p", f"files.test:{server.port}")]


def test_https_refuses_a_certificate_for_another_name(tmp_path: Path) -> None:
    """The certificate is valid for the address connected to, not for the URL's name."""
    context, ca = tls_pair(tmp_path / "other", names=("other.test", "127.0.0.1", "::1"))
    with serve({"/p": PAYLOAD}, tls=context) as server:
        with pytest.raises(StepError, match=r"(?i)hostname mismatch|doesn't match"):
            add.download(f"https://localhost:{server.port}/p", tmp_path,
                         policy=UrlPolicy.parse(["localhost"]), ca_certs=str(ca))
        assert server.requests == []
        got = add.download(f"https://127.0.0.1:{server.port}/p", tmp_path,
                           policy=UrlPolicy.parse(["127.0.0.1"]), ca_certs=str(ca))
    assert got.path.read_bytes() == PAYLOAD


def test_every_resolved_address_is_checked(tmp_path: Path) -> None:
    with serve({"/p": PAYLOAD}) as server:
        resolve, asked = resolver_to("192.0.2.10", "127.0.0.1")
        with pytest.raises(UrlRefusedError, match=r"rebind\.test resolves to 127\.0\.0\.1"), \
                open_url(f"http://rebind.test:{server.port}/p", UrlPolicy(), resolver=resolve):
            pass
    assert asked == ["rebind.test"] and server.requests == []


def test_a_redirect_is_resolved_and_checked_again(tmp_path: Path) -> None:
    with serve({"/p": PAYLOAD}) as inner, \
            serve({"/start": ("redirect", f"http://inner.test:{inner.port}/p")}) as outer:
        resolve, asked = resolver_to("127.0.0.1")
        policy = UrlPolicy.parse([f"outer.test:{outer.port}"])
        with pytest.raises(UrlRefusedError, match=r"redirect from.*inner\.test resolves to"), \
                open_url(f"http://outer.test:{outer.port}/start", policy, resolver=resolve):
            pass
        assert asked == ["outer.test", "inner.test"]
        both = UrlPolicy.parse([f"outer.test:{outer.port}", "inner.test"])
        with open_url(f"http://outer.test:{outer.port}/start", both,
                      resolver=resolve) as response:
            assert response.read() == PAYLOAD
    assert inner.requests == [("/p", f"inner.test:{inner.port}")]


def test_the_default_policy_refuses_loopback_in_download(tmp_path: Path) -> None:
    with serve({"/p": PAYLOAD}) as server:
        with pytest.raises(UrlRefusedError, match=r"^ADD URL .* loopback"):
            add.download(f"http://127.0.0.1:{server.port}/p", tmp_path)
        got = add.download(f"http://127.0.0.1:{server.port}/p", tmp_path,
                           policy=UrlPolicy.parse([f"127.0.0.1:{server.port}"]))
    assert got.path.read_bytes() == PAYLOAD and got.name == "p"
    assert len(server.requests) == 1


def test_a_redirect_loop_fails_cleanly(tmp_path: Path) -> None:
    with serve({"/loop": ("redirect", "/loop")}) as server, \
            pytest.raises(StepError, match=r"^ADD http://\S+/loop: more than 10 redirects$"):
        add.download(f"http://{server.authority}/loop", tmp_path,
                     policy=UrlPolicy.parse([server.authority]))
    assert len(server.requests) == 11
