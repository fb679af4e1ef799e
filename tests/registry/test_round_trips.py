"""Fewer round trips, same meaning: a blob already in the target costs one HEAD and no mount,
a missing one is mounted from a repository known to hold it, and what `requests` would read from the
environment per request (proxy variables, `.netrc`) is read once and still honoured."""

from __future__ import annotations

import http.client
import random
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core.image.manifest import Platform
from core.image.reference import Reference, parse_reference
from core.registry.push import mount_or_find
from tests.fixtures.images import BuiltImage, compose_image, push_built
from tests.fixtures.registry import RegistryServer, RequestLog, make_client


def _ref(server: RegistryServer, name: str) -> Reference:
    return parse_reference(f"{server.host}/{name}")


def _image() -> BuiltImage:
    data = random.Random(uuid.uuid4().int).randbytes(4096)
    return compose_image([{"data/layer0.bin": data, "etc/id": uuid.uuid4().bytes}])


def test_a_present_blob_costs_one_head_and_a_missing_one_is_mounted(
        registry: RegistryServer) -> None:
    # HEAD first, mount second: mounting before the HEAD saves a request, but under eight
    # concurrent writers distribution's registry then refused manifests (DIGEST_INVALID)
    image = _image()
    layer = image.blobs[-1].digest
    with make_client(registry.host) as client:
        push_built(client, [_ref(registry, "trips/holder:v1")], image)
    log = RequestLog()
    with make_client(registry.host, log=log) as client:
        conn = client.connection(registry.host)
        assert mount_or_find(conn, "trips/target", layer,
                             mount_from=["trips/holder"]) == "mounted"
        assert log.count("HEAD") == 1 and log.count("POST", "mount=") == 1
        log.clear()
        # now present: the HEAD alone answers, and nothing is mounted
        assert mount_or_find(conn, "trips/target", layer,
                             mount_from=["trips/holder"]) == "exists"
        assert log.count("HEAD") == 1 and log.count("POST") == 0
        log.clear()
        # a holder that lost the blob: the HEAD, then the refused mount
        assert mount_or_find(conn, "trips/other", layer,
                             mount_from=["trips/never-pushed"]) is None
        assert log.count("POST", "mount=") == 1 and log.count("HEAD") == 1
    with make_client(registry.host) as client:
        pulled = client.pull(_ref(registry, "trips/holder:v1"), platform=Platform("linux",
                                                                                  "amd64"))
        assert pulled.manifest.layers[0].digest == layer


class _ForwardProxy:
    """A plain-HTTP forward proxy on loopback that records the URLs it forwards."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                with proxy.lock:
                    proxy.seen.append(self.path)
                target = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("proxy-connection", "connection")}
                upstream = http.client.HTTPConnection(target.netloc, timeout=30)
                path = target.path + (f"?{target.query}" if target.query else "")
                upstream.request(self.command, path, body=body, headers=headers)
                reply = upstream.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                for key, value in reply.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _forward

            def log_message(self, format: str, *args: object) -> None:
                return None

        return Handler


@contextmanager
def _forward_proxy() -> Iterator[_ForwardProxy]:
    proxy = _ForwardProxy()
    proxy.thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()


def test_proxy_variables_are_still_honoured(registry: RegistryServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    image = _image()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with _forward_proxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        with make_client(registry.host) as client:
            push_built(client, [_ref(registry, "trips/proxied:v1")], image)
        assert any(url.startswith(f"http://{registry.host}/v2/trips/proxied/")
                   for url in proxy.seen)
        proxy.seen.clear()
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with make_client(registry.host) as client:
            served = client.fetch_manifest(_ref(registry, "trips/proxied:v1"))
        assert served.data == image.manifest and proxy.seen == []


def test_netrc_credentials_are_still_used(htpasswd_registry: RegistryServer, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    server = htpasswd_registry
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {server.username} password {server.password}\n")
    netrc.chmod(0o600)
    image = _image()
    log = RequestLog()
    monkeypatch.setenv("NETRC", str(netrc))
    with make_client(server.host, log=log) as client:  # no credentials of its own
        push_built(client, [_ref(server, "trips/netrc:v1")], image)
        assert client.fetch_manifest(_ref(server, "trips/netrc:v1")).data == image.manifest
    assert log.auth_schemes("/v2/trips/") == {"Basic"}
