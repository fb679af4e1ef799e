"""ECR and Google registry credentials (core/cloud/registry_auth.py)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.cloud.registry_auth import (
    GOOGLE_USERNAME,
    EcrCredentialProvider,
    GoogleCredentialProvider,
    is_ecr_host,
    is_google_host,
    metadata_token,
)
from core.errors import AuthError
from core.registry import Credentials

ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def test_host_matching() -> None:
    assert is_ecr_host(ECR) and is_ecr_host("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com")
    assert is_ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn")
    assert not is_ecr_host("dkr.ecr.eu-west-1.amazonaws.com.evil.example")
    assert not is_ecr_host("public.ecr.aws")
    for host in ("gcr.io", "eu.gcr.io", "europe-west1-docker.pkg.dev"):
        assert is_google_host(host)
    for host in ("gcr.io.evil.example", "pkg.dev.example", "ghcr.io", "docker.io"):
        assert not is_google_host(host)


class FakeEcr:
    def __init__(self, expires: datetime) -> None:
        self.expires = expires
        self.calls: list[dict[str, Any]] = []

    def get_authorization_token(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        token = base64.b64encode(f"AWS:secret-{len(self.calls)}".encode()).decode()
        return {"authorizationData": [{"authorizationToken": token,
                                       "expiresAt": self.expires}]}


def test_ecr_token_cached_while_valid() -> None:
    fake = FakeEcr(datetime(2030, 1, 1, tzinfo=UTC))
    regions: list[str] = []
    now = [datetime(2029, 12, 31, 12, tzinfo=UTC).timestamp()]

    def factory(region: str) -> FakeEcr:
        regions.append(region)
        return fake

    provider = EcrCredentialProvider(client_factory=factory, clock=lambda: now[0])
    assert provider("ghcr.io") is None and not fake.calls
    assert provider(ECR) == Credentials("AWS", "secret-1")
    assert provider(ECR) == Credentials("AWS", "secret-1")
    assert fake.calls == [{"registryIds": ["123456789012"]}] and regions == ["eu-west-1"]
    now[0] = datetime(2030, 1, 1, tzinfo=UTC).timestamp() - 60  # inside the safety margin
    assert provider(ECR) == Credentials("AWS", "secret-2")


def test_ecr_failure_is_an_auth_error_without_secrets() -> None:
    class Broken:
        def get_authorization_token(self, **kwargs: Any) -> dict[str, Any]:
            raise RuntimeError("AccessDenied for key AKIAEXAMPLESECRET")

    provider = EcrCredentialProvider(client_factory=lambda region: Broken())
    with pytest.raises(AuthError) as info:
        provider(ECR)
    assert info.value.registry == ECR and "AKIA" not in str(info.value)


def test_ecr_through_boto3_and_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_server = pytest.importorskip("moto.moto_server.threaded_moto_server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        creds = EcrCredentialProvider()(ECR)
    finally:
        server.stop()
    assert creds == Credentials("AWS", "123456789012-auth-token")


def test_google_tokens_only_for_google_hosts() -> None:
    calls: list[int] = []
    now = [1000.0]

    def source() -> tuple[str, float]:
        calls.append(1)
        return f"ya29.token-{len(calls)}", now[0] + 3600

    provider = GoogleCredentialProvider(token_source=source, clock=lambda: now[0])
    assert provider("ghcr.io") is None and provider("registry.example:5000") is None
    assert not calls
    first = provider("europe-docker.pkg.dev")
    assert first == Credentials(GOOGLE_USERNAME, "ya29.token-1")
    assert provider("europe-docker.pkg.dev") == first and len(calls) == 1
    now[0] += 3500
    assert provider("europe-docker.pkg.dev") == Credentials(GOOGLE_USERNAME, "ya29.token-2")


def test_google_without_credentials_is_anonymous() -> None:
    def source() -> tuple[str, float]:
        raise OSError("no metadata server")

    assert GoogleCredentialProvider(token_source=source)("gcr.io") is None


@pytest.fixture()
def metadata_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            seen.append({"path": self.path, **dict(self.headers.items())})
            body = json.dumps({"access_token": "ya29.from-metadata", "expires_in": 3599,
                               "token_type": "Bearer"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_metadata_server_token(metadata_server: tuple[str, list[dict[str, str]]],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    host, seen = metadata_server
    monkeypatch.setenv("GCE_METADATA_HOST", host)
    token, expiry = metadata_token()
    assert token == "ya29.from-metadata" and expiry > 0
    assert seen[0]["path"].endswith("/service-accounts/default/token")
    assert seen[0]["Metadata-Flavor"] == "Google"
    creds = GoogleCredentialProvider(token_source=metadata_token)("gcr.io")
    assert creds == Credentials(GOOGLE_USERNAME, "ya29.from-metadata")
