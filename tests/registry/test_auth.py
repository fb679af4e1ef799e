"""Every auth path against real registries: anonymous, Basic (htpasswd) and Bearer tokens."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import uuid
from pathlib import Path

import pytest

from core.errors import AuthError
from core.image.manifest import Platform
from core.image.reference import Reference, parse_reference
from core.registry import Credentials, DockerConfigProvider, StaticProvider
from core.registry.auth import Token
from tests.fixtures.images import (
    BaseImages,
    compose_image,
    push_built,
    skopeo_inspect_raw,
    skopeo_unpack,
)
from tests.fixtures.registry import (
    RegistryServer,
    RequestLog,
    basic_credentials,
    make_client,
)

AMD64 = Platform("linux", "amd64")



def _ref(server: RegistryServer, name: str) -> Reference:
    return parse_reference(f"{server.host}/{name}")


def _creds(server: RegistryServer, user: str, password: str) -> StaticProvider:
    return StaticProvider({server.host: Credentials(user, password)})


# --- no auth and Basic ----------------------------------------------------------------------


def test_anonymous_pull_sends_no_authorization(registry: RegistryServer,
                                               base_images: BaseImages) -> None:
    log = RequestLog()
    with make_client(registry.host, log=log) as client:
        client.pull(_ref(registry, base_images.oci_gzip), platform=AMD64)
    assert log.auth_schemes() == {""}


def test_basic_auth_push_and_pull(htpasswd_registry: RegistryServer) -> None:
    log = RequestLog()
    image = compose_image([{"basic.txt": b"pushed with basic auth\n"}])
    ref = _ref(htpasswd_registry, "auth/basic:v1")
    with make_client(htpasswd_registry.host, credentials=basic_credentials(htpasswd_registry),
                     log=log) as client:
        digest = push_built(client, [ref], image)
        pulled = client.pull(ref, platform=AMD64)
    assert pulled.digest == digest
    assert log.auth_schemes("/v2/auth/") == {"Basic"}
    creds = f"{htpasswd_registry.username}:{htpasswd_registry.password}"
    assert skopeo_inspect_raw(htpasswd_registry.host, "auth/basic:v1", creds=creds) == \
        image.manifest


def test_basic_wrong_password_names_registry(htpasswd_registry: RegistryServer,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "definitely-wrong-" + uuid.uuid4().hex
    creds = _creds(htpasswd_registry, "alice", secret)
    with make_client(htpasswd_registry.host, credentials=creds) as client, \
            pytest.raises(AuthError) as info:
        client.fetch_manifest(_ref(htpasswd_registry, "auth/basic:v1"))
    err = info.value
    assert err.status == 401 and err.registry == htpasswd_registry.host
    assert htpasswd_registry.host in str(err) and "repository:auth/basic:pull" in str(err)
    assert secret not in str(err) and secret not in repr(err) and secret not in caplog.text


def test_basic_without_credentials(htpasswd_registry: RegistryServer) -> None:
    with make_client(htpasswd_registry.host) as client, pytest.raises(AuthError) as info:
        client.fetch_manifest(_ref(htpasswd_registry, "auth/basic:v1"))
    assert info.value.status == 401 and not info.value.retryable


# --- Bearer tokens --------------------------------------------------------------------------


def test_token_anonymous_pull(token_registry: RegistryServer, base_images: BaseImages) -> None:
    assert token_registry.token_server is not None
    before = token_registry.token_server.log.count()
    log = RequestLog()
    with make_client(token_registry.host, log=log) as client:
        client.pull(_ref(token_registry, base_images.token_image), platform=AMD64)
    asked = token_registry.token_server.log.snapshot()[before:]
    assert [entry["user"] for entry in asked] == [None]
    assert asked[0]["scopes"] == [f"repository:{base_images.token_image.split(':')[0]}:pull"]
    assert log.auth_schemes("/v2/library/") == {"Bearer"}


def test_token_push_reuses_cached_token(token_registry: RegistryServer,
                                        tmp_path: Path) -> None:
    server = token_registry.token_server
    assert server is not None
    before = server.log.count()
    image = compose_image([{"a.txt": uuid.uuid4().bytes}, {"b.txt": uuid.uuid4().bytes}])
    refs = [_ref(token_registry, "auth/token:one"), _ref(token_registry, "auth/token:two")]
    with make_client(token_registry.host, credentials=basic_credentials(token_registry),
                     max_concurrent_uploads=1) as client:
        push_built(client, refs, image)
        push_built(client, refs, image)
        assert client.connection(token_registry.host).auth.cached_token_count() == 1
    asked = server.log.snapshot()[before:]
    assert len(asked) == 1, asked
    assert asked[0]["user"] == "writer"
    assert asked[0]["scopes"] == ["repository:auth/token:pull,push"]
    creds = f"{token_registry.username}:{token_registry.password}"
    for tag in ("one", "two"):
        assert skopeo_inspect_raw(token_registry.host, f"auth/token:{tag}", creds=creds) == \
            image.manifest
    rootfs = skopeo_unpack(token_registry.host, "auth/token:two", tmp_path, creds=creds)
    assert (rootfs / "b.txt").is_file()


def test_token_expiry_fetches_a_new_token(token_registry: RegistryServer,
                                          base_images: BaseImages) -> None:
    server = token_registry.token_server
    assert server is not None
    now = [1000.0]
    with make_client(token_registry.host) as client:
        auth = client.connection(token_registry.host).auth
        auth._clock = lambda: now[0]
        ref = _ref(token_registry, base_images.token_image)
        client.fetch_manifest(ref)
        before = server.log.count()
        client.fetch_manifest(ref)
        assert server.log.count() == before
        now[0] += server.policy.lifetime
        client.fetch_manifest(ref)
        assert server.log.count() == before + 1


def test_token_rejected_by_registry_is_refreshed(token_registry: RegistryServer,
                                                 base_images: BaseImages) -> None:
    ref = _ref(token_registry, base_images.token_image)
    log = RequestLog()
    with make_client(token_registry.host, log=log) as client:
        client.fetch_manifest(ref)
        auth = client.connection(token_registry.host).auth
        for key in list(auth._tokens):
            auth._tokens[key] = Token("not-a-valid-token", float("inf"))
        client.fetch_manifest(ref)
    statuses = [status for method, url, status, _ in log.entries if "/manifests/" in url]
    assert statuses == [200, 401, 200]


def test_anonymous_push_names_scope(token_registry: RegistryServer) -> None:
    image = compose_image([{"x": b"anonymous push"}])
    with make_client(token_registry.host) as client, pytest.raises(AuthError) as info:
        push_built(client, [_ref(token_registry, "auth/anon:v1")], image)
    assert info.value.status == 401 and "not granted" in str(info.value)
    assert "repository:auth/anon:pull,push" in str(info.value)
    assert token_registry.host in str(info.value)


def test_partial_grant_push_is_refused(token_registry: RegistryServer) -> None:
    assert token_registry.token_server is not None
    user, password = token_registry.token_server.policy.reader
    image = compose_image([{"x": b"reader push"}])
    with make_client(token_registry.host,
                     credentials=_creds(token_registry, user, password)) as client:
        with pytest.raises(AuthError) as info:
            push_built(client, [_ref(token_registry, "auth/reader:v1")], image)
        client.fetch_manifest(_ref(token_registry, "library/busybox:docker"))
    assert "repository:auth/reader:pull,push" in str(info.value)
    assert "insufficient_scope" in str(info.value) and info.value.status == 401


def test_denied_account_gets_403(token_registry: RegistryServer) -> None:
    assert token_registry.token_server is not None
    user, password = token_registry.token_server.policy.blocked
    with make_client(token_registry.host,
                     credentials=_creds(token_registry, user, password)) as client, \
            pytest.raises(AuthError) as info:
        client.fetch_manifest(_ref(token_registry, "library/busybox:docker"))
    assert info.value.status == 403 and "DENIED" in info.value.codes
    assert "access denied" in str(info.value)
    assert "repository:library/busybox:pull" in str(info.value)


def test_token_wrong_password(token_registry: RegistryServer,
                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "nope-" + uuid.uuid4().hex
    with make_client(token_registry.host,
                     credentials=_creds(token_registry, "writer", secret)) as client, \
            pytest.raises(AuthError) as info:
        client.fetch_manifest(_ref(token_registry, "library/busybox:docker"))
    assert info.value.status == 401 and token_registry.host in str(info.value)
    assert secret not in str(info.value) and secret not in caplog.text


def test_tokens_never_logged(token_registry: RegistryServer,
                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    image = compose_image([{"secret-free.txt": uuid.uuid4().bytes}])
    with make_client(token_registry.host,
                     credentials=basic_credentials(token_registry)) as client:
        push_built(client, [_ref(token_registry, "auth/logs:v1")], image)
        auth = client.connection(token_registry.host).auth
        tokens = [token.value for token in auth._tokens.values()]
    assert tokens and all(token not in caplog.text for token in tokens)
    assert str(token_registry.password) not in caplog.text


# --- docker config.json ---------------------------------------------------------------------


def _write_config(directory: Path, doc: dict[str, object]) -> DockerConfigProvider:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(doc))
    return DockerConfigProvider(config_dir=directory)


def test_docker_config_auth_entry(htpasswd_registry: RegistryServer, tmp_path: Path) -> None:
    pair = f"{htpasswd_registry.username}:{htpasswd_registry.password}".encode()
    provider = _write_config(tmp_path, {"auths": {
        f"http://{htpasswd_registry.host}/v2/": {"auth": base64.b64encode(pair).decode()}}})
    image = compose_image([{"cfg.txt": b"from docker config\n"}])
    with make_client(htpasswd_registry.host, credentials=provider) as client:
        push_built(client, [_ref(htpasswd_registry, "auth/config:v1")], image)


def test_docker_config_identity_token(token_registry: RegistryServer, tmp_path: Path) -> None:
    server = token_registry.token_server
    assert server is not None
    refresh = server.policy.refresh_tokens[0][0]
    provider = _write_config(tmp_path, {"auths": {token_registry.host: {
        "auth": base64.b64encode(b"<token>:").decode(), "identitytoken": refresh}}})
    before = server.log.count()
    image = compose_image([{"idtoken.txt": uuid.uuid4().bytes}])
    with make_client(token_registry.host, credentials=provider) as client:
        push_built(client, [_ref(token_registry, "auth/idtoken:v1")], image)
    asked = server.log.snapshot()[before:]
    assert [(e["method"], e["grant_type"]) for e in asked] == [("POST", "refresh_token")]


def _helper(bin_dir: Path, name: str, registry: RegistryServer) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    answer = json.dumps({"ServerURL": registry.host, "Username": registry.username,
                         "Secret": registry.password})
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = get ] || exit 2\n'
        "read server\n"
        f'if [ "$server" = "{registry.host}" ]; then echo \'{answer}\'; exit 0; fi\n'
        'echo "credentials not found in native keychain"; exit 1\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("style", ["credHelpers", "credsStore"])
def test_docker_config_credential_helpers(htpasswd_registry: RegistryServer, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, style: str) -> None:
    _helper(tmp_path / "bin", "bbtest", htpasswd_registry)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    doc: dict[str, object] = ({"credHelpers": {htpasswd_registry.host: "bbtest"}}
                              if style == "credHelpers" else {"credsStore": "bbtest"})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    _write_config(tmp_path / "cfg", doc)
    provider = DockerConfigProvider()
    assert provider("other.example:5000") is None
    image = compose_image([{"helper.txt": style.encode()}])
    with make_client(htpasswd_registry.host, credentials=provider) as client:
        push_built(client, [_ref(htpasswd_registry, f"auth/{style.lower()}:v1")], image)
