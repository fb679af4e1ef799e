"""Protocol pieces without a server: challenges, error JSON, backoff, config.json, URLs."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests

from core.errors import AuthError, RegistryError
from core.registry.auth import parse_www_authenticate, repository_scope
from core.registry.connection import push_scope
from core.registry.credentials import (
    ChainProvider,
    Credentials,
    DockerConfigProvider,
    StaticProvider,
    registry_key,
)
from core.registry.errors import error_from_response, parse_error_body, transport_error
from core.registry.transport import TransportOptions, backoff_delay, parse_retry_after
from core.registry.upload import FileSlice, UploadOptions, with_query


def test_parse_bearer_challenge() -> None:
    header = ('Bearer realm="https://auth.example.com/token",service="registry.example.com",'
              'scope="repository:library/busybox:pull,push",error="insufficient_scope"')
    (challenge,) = parse_www_authenticate(header)
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example.com/token"
    assert challenge.service == "registry.example.com"
    assert challenge.params["scope"] == "repository:library/busybox:pull,push"
    assert challenge.error == "insufficient_scope"


def test_parse_several_challenges_and_escapes() -> None:
    header = 'Basic realm="a \\"quoted\\" realm", charset=UTF-8, Bearer realm=https://t/x'
    basic, bearer = parse_www_authenticate(header)
    assert basic.scheme == "basic" and basic.realm == 'a "quoted" realm'
    assert basic.params["charset"] == "UTF-8"
    assert bearer.scheme == "bearer" and bearer.realm == "https://t/x"


def test_parse_empty_and_odd_headers() -> None:
    assert parse_www_authenticate("") == ()
    (only,) = parse_www_authenticate("Negotiate")
    assert only.scheme == "negotiate" and only.params == {}


def test_scopes() -> None:
    assert repository_scope("a/b", "pull") == "repository:a/b:pull"
    assert push_scope("x", "y", "x") == ("repository:x:pull,push", "repository:y:pull")


def _response(status: int, body: object, headers: dict[str, str] | None = None
              ) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    response.headers.update(headers or {})
    return response


def test_error_body_parsing() -> None:
    body = {"errors": [{"code": "manifest_unknown", "message": "manifest unknown",
                        "detail": {"Tag": "x"}}, {"code": "DENIED"}]}
    parsed = parse_error_body(json.dumps(body).encode())
    assert parsed.codes == ("MANIFEST_UNKNOWN", "DENIED") and parsed.message == "manifest unknown"
    assert parse_error_body(b"<html>bad gateway</html>").codes == ()
    assert parse_error_body(b'{"errors": "nope"}').codes == ()


def test_error_mapping() -> None:
    err = error_from_response(_response(404, {"errors": [{"code": "BLOB_UNKNOWN",
                                                          "message": "blob unknown"}]}),
                              registry="r.example", repository="a/b", action="fetch blob")
    assert type(err) is RegistryError and err.status == 404 and not err.retryable
    assert str(err) == "r.example/a/b: fetch blob failed [BLOB_UNKNOWN]: blob unknown (HTTP 404)"
    busy = error_from_response(_response(429, {"errors": [{"code": "TOOMANYREQUESTS"}]}),
                               registry="r", action="push")
    assert busy.retryable
    gateway = error_from_response(_response(502, b"<html/>"), registry="r", action="x")
    assert gateway.retryable and gateway.codes == ()
    denied = error_from_response(_response(403, {"errors": [{"code": "DENIED"}]}),
                                 registry="r.example", repository="a", action="push",
                                 scope="repository:a:pull,push")
    assert isinstance(denied, AuthError) and "repository:a:pull,push" in str(denied)
    assert "r.example" in str(denied) and not denied.retryable


def test_transport_errors() -> None:
    err = transport_error(requests.ConnectionError("refused http://x"), registry="r",
                          action="ping")
    assert err.retryable and "ConnectionError" in str(err)
    tls = transport_error(requests.exceptions.SSLError("bad cert"), registry="r", action="ping")
    assert not tls.retryable and "TLS" in str(tls)


def test_backoff_is_bounded_and_honours_retry_after() -> None:
    for attempt in range(10):
        delay = backoff_delay(attempt, base=0.5, cap=4.0, retry_after=None)
        assert 0.0 <= delay <= min(4.0, 0.5 * 2 ** attempt)
    assert backoff_delay(0, base=0.5, cap=4.0, retry_after=3.0) == 3.0
    assert backoff_delay(0, base=0.5, cap=4.0, retry_after=100.0) == 4.0
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25.0 < (parse_retry_after(later) or 0.0) <= 30.0


def test_transport_options() -> None:
    opts = TransportOptions(insecure_registries=frozenset({"reg.local:5000", "plain"}),
                            skip_tls_verify=frozenset({"self-signed.example"}),
                            ca_bundle="/etc/ca.pem")
    assert opts.scheme_for("reg.local:5000") == "http"
    assert opts.scheme_for("plain:8080") == "http"
    assert opts.scheme_for("reg.local:5001") == "https"
    assert opts.verify_for("self-signed.example:443") is False
    assert opts.verify_for("other.example") == "/etc/ca.pem"
    assert TransportOptions().verify_for("x") is True
    assert TransportOptions(insecure_registries=frozenset({"*"})).scheme_for("any") == "http"


def test_with_query_keeps_existing_parameters() -> None:
    url = "https://r.example/v2/a/blobs/uploads/u1?_state=abc%3D&x=1"
    assert with_query(url, digest="sha256:00") == url + "&digest=sha256%3A00"
    assert with_query("/v2/a/blobs/uploads/u1", digest="d") == "/v2/a/blobs/uploads/u1?digest=d"


def test_file_slice_streams_a_window() -> None:
    part = FileSlice(io.BytesIO(b"0123456789"), 3, 4)
    assert len(part) == 4 and b"".join(part) == b"3456"
    assert b"".join(part) == b"3456"  # iterable again (for a retry after 401)
    with pytest.raises(ValueError):
        UploadOptions(chunk_size=0)


def test_credentials_hide_secrets() -> None:
    creds = Credentials("user", "hunter2", identity_token="idtok", registry_token="regtok")
    text = repr(creds)
    assert "user" in text and "hunter2" not in text and "idtok" not in text
    assert "regtok" not in text


def test_registry_keys() -> None:
    assert registry_key("https://index.docker.io/v1/") == "docker.io"
    assert registry_key("registry-1.docker.io") == "docker.io"
    assert registry_key("http://Reg.Example:5000/v2/") == "reg.example:5000"
    assert registry_key("ghcr.io") == "ghcr.io"


def _config(tmp_path: Path, doc: object) -> DockerConfigProvider:
    (tmp_path / "config.json").write_text(json.dumps(doc))
    return DockerConfigProvider(config_dir=tmp_path)


def test_docker_config_entries(tmp_path: Path) -> None:
    encoded = base64.b64encode(b"hub-user:hub:pass").decode()
    provider = _config(tmp_path, {"auths": {
        "https://index.docker.io/v1/": {"auth": encoded},
        "ghcr.io": {"username": "u", "password": "p"},
        "quay.io": {"registrytoken": "bearer-token"},
        "empty.example": {}}})
    assert provider("docker.io") == Credentials("hub-user", "hub:pass")
    assert provider("ghcr.io") == Credentials("u", "p")
    assert provider("quay.io") == Credentials(registry_token="bearer-token")
    assert provider("empty.example") is None and provider("nowhere.example") is None


def test_docker_config_errors_and_absence(tmp_path: Path) -> None:
    assert DockerConfigProvider(config_dir=tmp_path / "missing")("x") is None
    bad = _config(tmp_path, {"auths": {"x": {"auth": base64.b64encode(b"no-colon").decode()}}})
    with pytest.raises(AuthError) as info:
        bad("x")
    assert "no-colon" not in str(info.value)


def test_docker_config_helpers_are_called_with_server(tmp_path: Path) -> None:
    calls: list[tuple[str, str]] = []

    def runner(helper: str, server: str) -> str:
        calls.append((helper, server))
        if helper == "store":
            return json.dumps({"Username": "<token>", "Secret": "refresh"})
        return json.dumps({"Username": "ecr", "Secret": "pw"})

    (tmp_path / "config.json").write_text(json.dumps(
        {"credHelpers": {"1.dkr.example": "ecr-login"}, "credsStore": "store"}))
    provider = DockerConfigProvider(config_dir=tmp_path, helper_runner=runner)
    assert provider("1.dkr.example") == Credentials("ecr", "pw")
    assert provider("docker.io") == Credentials(identity_token="refresh")
    assert calls == [("ecr-login", "1.dkr.example"), ("store", "https://index.docker.io/v1/")]


def test_chain_and_static_providers() -> None:
    first = StaticProvider({"a": Credentials("1", "x")})
    second = StaticProvider({"a": Credentials("2", "y"), "b": Credentials("3", "z")})
    chain = ChainProvider((first, second))
    assert chain("a") == Credentials("1", "x") and chain("b") == Credentials("3", "z")
    assert chain("c") is None
