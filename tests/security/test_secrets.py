"""Secrets never leave the build: registry passwords and tokens, `--secret` contents and secret
build args are searched for, byte by byte, in everything a build writes.

The builds run at the most verbose log level, through the CLI (a subprocess: stdout and stderr
captured) and through the Lambda handler (moto: status objects, completion events, the build
log in the bucket, captured log records). The search covers the pushed image (every blob,
copied by skopeo, layers decompressed and tar members opened), `--tar-path`,
`--oci-layout-path`, the digest files, the layer cache, and the work directory left behind.
Each search also looks for a control value that is not secret and must be found by the same
search, so a search that sees nothing cannot pass.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from handlers.aws import handler
from tests.fixtures.images import BaseImages
from tests.fixtures.registry import RegistryServer
from tests.handlers.conftest import AwsStack, LambdaContext, aws_stack, context_tar
from tests.security.secretscan import Needles, blobs, oci_copy

__all__ = ["aws_stack"]  # the fixture, imported to be used here

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
needs_tools = pytest.mark.skipif(shutil.which("skopeo") is None or os.geteuid() != 0,
                                 reason="needs skopeo, and root for the chroot RUN sandbox")


def _hex(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


@dataclass(frozen=True)
class Values:
    """One test's distinctive values."""

    token: str  # --secret-build-arg TOKEN (value from the environment)
    direct: str  # --secret-build-arg DIRECT=value
    mount: str  # --secret id=mnt,src=FILE: two lines
    control: str  # --build-arg VISIBLE: not secret, must be found

    @classmethod
    def fresh(cls) -> Values:
        return cls(_hex("tok"), _hex("direct"),
                   f"{_hex('mount-line-one')}\n{_hex('mount-line-two')}\n", _hex("control"))


def secret_needles(values: Values, *registries: RegistryServer) -> Needles:
    found = {"token": values.token, "direct": values.direct, "mount": values.mount}
    for server in registries:
        assert server.username and server.password
        pair = f"{server.username}:{server.password}"
        found[f"{server.flavour} password"] = server.password
        found[f"{server.flavour} basic"] = base64.b64encode(pair.encode()).decode()
    return Needles(found)


def docker_config(path: Path, *registries: RegistryServer) -> Path:
    auths = {}
    for server in registries:
        pair = f"{server.username}:{server.password}"
        auths[server.host] = {"auth": base64.b64encode(pair.encode()).decode()}
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"auths": auths}))
    return path


DOCKERFILE = """\
FROM {base}
ARG TOKEN
ARG DIRECT
ARG VISIBLE
ARG DERIVED=pre-$TOKEN
RUN echo "token=$TOKEN direct=$DIRECT visible=$VISIBLE derived=$DERIVED" && echo ok > /made
RUN --mount=type=secret,id=mnt cat /run/secrets/mnt && echo "$VISIBLE" > /visible
RUN --mount=type=secret,id=mnt,env=MNT sh -c 'echo "from env: $MNT"'
LABEL visible=$VISIBLE
"""
FAILING = DOCKERFILE + 'RUN echo "failing with $TOKEN $DIRECT" && cat /run/secrets/x; exit 3\n'


def cli_build(tmp_path: Path, dockerfile: str, values: Values, destination: str, *,
              config: Path, log_format: str) -> subprocess.CompletedProcess[bytes]:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    secret_file = tmp_path / "mount-secret"
    secret_file.write_text(values.mount)
    out = tmp_path / "out"
    out.mkdir()
    args = ["--context", str(context), "--destination", destination,
            "--insecure", "--insecure-pull",
            "--build-arg", f"VISIBLE={values.control}",
            "--secret-build-arg", "TOKEN", "--secret-build-arg", f"DIRECT={values.direct}",
            "--secret", f"id=mnt,src={secret_file}", "--verbosity", "trace",
            "--log-format", log_format, "--tar-path", str(out / "image.tar"),
            "--oci-layout-path", str(out / "layout"), "--digest-file", str(out / "digest"),
            "--image-name-with-digest-file", str(out / "names"),
            "--cache", "--cache-repo", f"oci:{out / 'cache'}",
            "--work-dir", str(out / "work"), "--cleanup=false"]
    env = {**os.environ, "TOKEN": values.token, "DOCKER_CONFIG": str(config)}
    return subprocess.run([str(PYTHON), "-m", "core", "build", *args], cwd=tmp_path,
                          env=env, capture_output=True, timeout=300, check=False)


def everything(tmp_path: Path, proc: subprocess.CompletedProcess[bytes]) -> list[tuple[str,
                                                                                      bytes]]:
    found = [("stdout", proc.stdout), ("stderr", proc.stderr)]
    found += list(blobs(tmp_path / "out"))
    return found


@pytest.fixture()
def values() -> Values:
    return Values.fresh()


@needs_tools
def test_cli_build_keeps_every_secret_out_of_every_output(
        tmp_path: Path, values: Values, base_images: BaseImages,
        htpasswd_registry: RegistryServer, token_registry: RegistryServer) -> None:
    base = f"{token_registry.host}/{base_images.token_image}"
    destination = f"{htpasswd_registry.host}/secrets/cli:ok"
    config = docker_config(tmp_path / "docker", htpasswd_registry, token_registry)
    issued_before = len(_issued(token_registry))
    proc = cli_build(tmp_path, DOCKERFILE.format(base=base), values, destination,
                     config=config, log_format="text")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    tokens = _issued(token_registry)[issued_before:]  # what the build was given
    assert tokens, "the build fetched no token: the token search below would prove nothing"
    creds = f"{htpasswd_registry.username}:{htpasswd_registry.password}"
    pushed = oci_copy(destination, tmp_path / "pushed", creds=creds)
    searched = [*everything(tmp_path, proc), *blobs(pushed)]

    needles = secret_needles(values, htpasswd_registry, token_registry)
    needles = Needles({**needles.values, **{f"token {i}": t for i, t in enumerate(tokens)}})
    assert needles.hits(searched) == []
    control = Needles({"control": values.control}).hits(searched, jwt=False)
    places = {where.split("|")[0].split("!")[0] for _, where in control}
    assert "stderr" in places  # the RUN printed it
    assert any(str(pushed) in place for place in places)  # history, label, /visible
    assert any("image.tar" in place for place in places)
    text = proc.stderr.decode()
    assert "token=**** direct=**** visible=" + values.control in text
    assert "derived=pre-****" in text and "from env: ****" in text
    assert "debug " in text  # the most verbose level really was on


@needs_tools
def test_image_history_names_secret_args_without_their_values(
        tmp_path: Path, values: Values, base_images: BaseImages,
        htpasswd_registry: RegistryServer, token_registry: RegistryServer) -> None:
    base = f"{token_registry.host}/{base_images.token_image}"
    destination = f"{htpasswd_registry.host}/secrets/history:ok"
    config = docker_config(tmp_path / "docker", htpasswd_registry, token_registry)
    proc = cli_build(tmp_path, DOCKERFILE.format(base=base), values, destination,
                     config=config, log_format="json")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    index = json.loads((tmp_path / "out/layout/index.json").read_text())
    blob_dir = tmp_path / "out/layout/blobs/sha256"
    manifest = json.loads((blob_dir / index["manifests"][0]["digest"][7:]).read_text())
    image = json.loads((blob_dir / manifest["config"]["digest"][7:]).read_text())
    history = [entry.get("created_by", "") for entry in image["history"]]
    assert "ARG TOKEN=****" in history and "ARG DIRECT=****" in history
    assert "ARG DERIVED=****" in history  # its value holds the secret
    assert f"ARG VISIBLE={values.control}" in history
    run = next(text for text in history if "token=$TOKEN" in text)
    assert run.startswith(f"RUN |4 TOKEN=**** DIRECT=**** VISIBLE={values.control} "
                          "DERIVED=**** /bin/sh -c")
    assert image["config"]["Labels"]["visible"] == values.control
    for line in proc.stderr.decode().splitlines():
        json.loads(line)  # the JSON log stays JSON after redaction


@needs_tools
def test_cli_failing_run_keeps_secrets_out_of_its_error(
        tmp_path: Path, values: Values, base_images: BaseImages,
        htpasswd_registry: RegistryServer, token_registry: RegistryServer) -> None:
    base = f"{token_registry.host}/{base_images.token_image}"
    destination = f"{htpasswd_registry.host}/secrets/cli:failed"
    config = docker_config(tmp_path / "docker", htpasswd_registry, token_registry)
    proc = cli_build(tmp_path, FAILING.format(base=base), values, destination, config=config,
                     log_format="json")
    assert proc.returncode == 3, proc.stderr.decode()[-3000:]
    searched = everything(tmp_path, proc)
    assert secret_needles(values, htpasswd_registry, token_registry).hits(searched) == []
    assert Needles({"control": values.control}).hits(searched, jwt=False)
    failed = [json.loads(line) for line in proc.stderr.decode().splitlines()
              if '"build_failed"' in line]
    assert failed and failed[0]["exit_code"] == 3
    assert any("failing with **** ****" in line for line in proc.stderr.decode().splitlines())


@needs_tools
def test_persisting_a_secret_on_purpose_warns(tmp_path: Path, values: Values,
                                              base_images: BaseImages,
                                              htpasswd_registry: RegistryServer,
                                              token_registry: RegistryServer) -> None:
    base = f"{token_registry.host}/{base_images.token_image}"
    destination = f"{htpasswd_registry.host}/secrets/persisted:ok"
    config = docker_config(tmp_path / "docker", htpasswd_registry, token_registry)
    dockerfile = DOCKERFILE.format(base=base) + "ENV KEPT=$TOKEN\n"
    proc = cli_build(tmp_path, dockerfile, values, destination, config=config,
                     log_format="text")
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert "Dockerfile:10: ENV uses the secret build arg TOKEN" in proc.stderr.decode()
    layout = list(blobs(tmp_path / "out/layout"))
    assert Needles({"token": values.token}).hits(layout, jwt=False)  # the user's choice


# --- the service path -------------------------------------------------------------------


@pytest.fixture()
def secret_stack(aws_stack: AwsStack, htpasswd_registry: RegistryServer, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch, values: Values) -> Iterator[AwsStack]:
    host = htpasswd_registry.host
    config = docker_config(tmp_path / "function-docker", htpasswd_registry)
    settings = {"DESTINATION": f"{host}/svc/{{name}}:{{version}}",
                "ALLOWED_DESTINATIONS": f"{host}/svc/*",
                "INSECURE_REGISTRIES": f"{host},{aws_stack.registry.host}",
                "DOCKER_CONFIG": str(config),
                "BUILD_ARGS": json.dumps({"TOKEN": values.token, "DIRECT": values.direct}),
                "SECRET_BUILD_ARGS": "TOKEN,DIRECT"}
    for name, value in settings.items():
        monkeypatch.setenv(f"BUCKETBUILD_{name}", value)
    yield aws_stack


SERVICE_DOCKERFILE = """\
FROM {base}
ARG TOKEN
ARG DIRECT
ARG VISIBLE
RUN echo "visible=$VISIBLE" > /made && echo "$VISIBLE:$TOKEN direct=$DIRECT"
"""


@needs_tools
def test_service_build_keeps_secrets_out_of_results_events_logs_and_image(
        secret_stack: AwsStack, values: Values, base_images: BaseImages,
        htpasswd_registry: RegistryServer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(1)  # everything, from every logger
    base = f"{base_images.host}/{base_images.docker_gzip}"
    good = SERVICE_DOCKERFILE.format(base=base)
    bad = good + 'RUN echo "failing: $TOKEN" && exit 5\n'
    secret_stack.messages()
    for key, text in (("apps/good.tar.gz", good), ("apps/bad.tar.gz", bad)):
        settings = json.dumps({"build-args": {"VISIBLE": values.control}})
        secret_stack.upload(key, context_tar({"Dockerfile": text, "bucketbuild.json": settings}))
    outcome = handler(secret_stack.sqs_event(), LambdaContext())
    status = {key: secret_stack.status(key) for key in ("apps/good.tar.gz", "apps/bad.tar.gz")}
    assert sorted(outcome["outcomes"]) == ["failed", "succeeded"], status
    assert status["apps/bad.tar.gz"]["data"]["error"]["exit_code"] == 5
    logs = {key: secret_stack.read(key + ".log") for key in status}
    events = secret_stack.completions(count=4)
    image = status["apps/good.tar.gz"]["data"]["destinations"][0]
    creds = f"{htpasswd_registry.username}:{htpasswd_registry.password}"
    pushed = oci_copy(image, tmp_path / "pushed", creds=creds)
    searched: list[tuple[str, bytes]] = [
        *((f"status {k}", json.dumps(v).encode()) for k, v in status.items()),
        *((f"log {k}", v) for k, v in logs.items()),
        *((f"event {i}", json.dumps(e).encode()) for i, e in enumerate(events)),
        ("log records", "\n".join(r.getMessage() for r in caplog.records).encode()),
        ("log text", caplog.text.encode()), *blobs(pushed)]
    work = tmp_path / "work"
    if work.exists():
        searched += list(blobs(work))

    needles = Needles({"token": values.token, "direct": values.direct,
                       "password": htpasswd_registry.password or "?"})
    assert needles.hits(searched) == []
    control = Needles({"control": values.control}).hits(searched, jwt=False)
    assert {where.split(" ")[0] for _, where in control} >= {"status", "log", "event"}
    assert f"{values.control}:****" in logs["apps/good.tar.gz"].decode()
    assert "failing: ****" in logs["apps/bad.tar.gz"].decode()


# --- the parts, one at a time -----------------------------------------------------------


def _issued(server: RegistryServer) -> list[str]:
    """Every token `server`'s token server has issued (taken on the server's side)."""
    assert server.token_server is not None
    return server.token_server.log.tokens()


def test_a_build_learns_each_token_its_registry_client_fetches(
        tmp_path: Path, token_registry: RegistryServer, base_images: BaseImages) -> None:
    """No RUN (no root needed): pull from and push to the token registry."""
    import io

    from core.build.options import BuildOptions, OutputOptions, RegistryOptions
    from core.build.pipeline import run_build
    from core.progress import TextProgress
    from core.redaction import SecretSet

    context = tmp_path / "context"
    context.mkdir()
    base = f"{token_registry.host}/{base_images.token_image}"
    (context / "Dockerfile").write_text(f"FROM {base}\nLABEL made=by-test\n")
    options = BuildOptions(
        context=str(context), work_dir=tmp_path / "work",
        output=OutputOptions(destinations=(f"{token_registry.host}/secrets/tokens:ok",)),
        registry=RegistryOptions(insecure=True, insecure_pull=True,
                                 docker_config=docker_config(tmp_path / "docker",
                                                             token_registry)))
    before = len(_issued(token_registry))
    reporter_secrets, caller_secrets = SecretSet(), SecretSet()
    reporter = TextProgress(io.StringIO(), level=5, secrets=reporter_secrets)
    run_build(options, events=reporter, secrets=caller_secrets)
    tokens = _issued(token_registry)[before:]
    assert tokens  # pull and push scopes
    for heard in (caller_secrets, reporter_secrets):  # the build's set, the reporter's lines
        known = heard.redactor()
        assert all(token in known.secrets for token in tokens)
        assert token_registry.password in known.secrets  # looked up for the token requests
        assert known.text(f"x{tokens[-1]}x") == "x****x"  # by value, not by its shape


def test_the_registry_client_reports_each_token_it_obtains(
        token_registry: RegistryServer, base_images: BaseImages) -> None:
    from core.image.platform import default_platform
    from core.image.reference import parse_reference
    from core.redaction import SecretSet
    from core.registry import Credentials
    from core.registry.auth import Authenticator
    from core.registry.transport import Transport, TransportOptions

    assert token_registry.username and token_registry.password
    heard = SecretSet()
    creds = Credentials(token_registry.username, token_registry.password)
    transport = Transport(token_registry.host,
                          TransportOptions(insecure_registries=frozenset({token_registry.host})))
    auth = Authenticator(transport, lambda: creds, on_secret=heard.add)
    ref = parse_reference(f"{token_registry.host}/{base_images.token_image}")
    header = auth.authorization((f"repository:{ref.repository}:pull",))
    assert header is not None and header.startswith("Bearer ")
    redactor = heard.redactor()
    assert header.split(" ", 1)[1] in redactor.secrets
    assert token_registry.password in redactor.secrets
    assert redactor.text(f"sent {header}") == "sent Bearer ****"
    assert default_platform("x86_64")  # the import above is the one the client uses


def test_wire_loggers_stay_quiet_at_trace(tmp_path: Path) -> None:
    import io

    from core.progress import WIRE_LOGGERS, configure_logging
    from core.redaction import SecretSet

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    stream = io.StringIO()
    secret = _hex("wire")
    try:
        configure_logging(level=5, log_format="text", timestamps=False, stream=stream,
                          secrets=SecretSet([secret]))
        logging.getLogger("botocore.endpoint").debug("Response body: %s", secret)
        logging.getLogger("core.registry").debug("token %s", secret)
        logging.getLogger("urllib3.connectionpool").debug("GET /v2/ 200")
    finally:
        root.handlers[:] = saved[1]
        root.setLevel(saved[0])
        for name in WIRE_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
    text = stream.getvalue()
    assert "Response body" not in text and secret not in text
    assert "token ****" in text and "GET /v2/ 200" in text
