"""The redaction rule and each place that applies it, without a build (fast)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.build.events import Message, StepOutput
from core.build.history import run_text
from core.build.options import BuildOptions
from core.build.secrets import RedactingSink, build_secrets, redact_error, redact_history_text
from core.errors import StepError, UsageError
from core.flags.values import parse_secret_build_args
from core.plan import ArgValue
from core.redaction import REDACTED, Redactor, SecretSet
from core.registry.auth import docker_config_secrets
from core.service.buildlog import BuildLog
from core.service.events import BuildRequest
from core.service.overrides import from_archive_json
from core.service.result import Attempt, Failure, failed_event
from core.service.settings import ServiceConfig, SettingsError

SECRET = "tok-5f0e1d2c3b4a69788796a5b4"


def test_values_and_the_forms_they_take_are_replaced() -> None:
    multi = "first-line-abcdef\nsecond-line-ghijkl\n"
    redactor = Redactor(frozenset({SECRET, multi, "ab"}))
    assert redactor.text(f"x{SECRET}y") == f"x{REDACTED}y"
    assert redactor.text("  | second-line-ghijkl") == f"  | {REDACTED}"  # one line of output
    assert redactor.text(json.dumps(multi)) == f'"{REDACTED}"'  # JSON-escaped whole
    assert redactor.text("ab stays: too short to hide by value") == \
        "ab stays: too short to hide by value"
    assert redactor.data(b"\x00" + SECRET.encode() + b"\x00") == b"\x00****\x00"
    assert Redactor().text(f"no secrets known {SECRET}") == f"no secrets known {SECRET}"


@pytest.mark.parametrize(("text", "shown"), [
    ("Authorization: Basic YWxpY2U6czNjcmV0", "Authorization: Basic ****"),
    ('{"Authorization": "Bearer abc.def"}', '{"Authorization": "Bearer ****"}'),
    ("sent Bearer 0123456789abcdefXYZ", "sent Bearer ****"),
    ('{"token": "x.y.z-long", "expires_in": 300}', '{"token": "****", "expires_in": 300}'),
    ("POST refresh_token=writer-refresh&scope=x", "POST refresh_token=****&scope=x"),
    ("jwt eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3In0.c2ln end", "jwt **** end"),
    ("fetch token: HTTP 401 (basic building blocks)", "fetch token: HTTP 401 (basic building "
                                                      "blocks)"),
])
def test_credential_shaped_text_is_replaced_without_knowing_it(text: str, shown: str) -> None:
    assert Redactor().text(text) == shown


def test_scrub_rebuilds_events_and_keeps_unchanged_ones() -> None:
    redactor = Redactor(frozenset({SECRET}))
    event = StepOutput(3, f"echo {SECRET}")
    assert redactor.scrub(event) == StepOutput(3, "echo ****")
    plain = Message("info", "nothing here")
    assert redactor.scrub(plain) is plain
    assert redactor.scrub({"a": [SECRET, (1, SECRET)]}) == {"a": ["****", (1, "****")]}


def test_run_history_hides_secret_args_and_args_that_hold_secrets() -> None:
    args = (ArgValue("TOKEN", SECRET), ArgValue("DERIVED", f"pre-{SECRET}"),
            ArgValue("VISIBLE", "shown"), ArgValue("EMPTY", None))
    text = run_text(("/bin/sh", "-c", "make"), args, secret_names={"TOKEN"},
                    redactor=Redactor(frozenset({SECRET})))
    assert text == "RUN |4 TOKEN=**** DERIVED=**** VISIBLE=shown EMPTY= /bin/sh -c make # buildkit"
    assert SECRET in run_text(("true",), args)  # without the declaration it is listed


def test_arg_history_entries() -> None:
    redactor = Redactor(frozenset({SECRET}))
    assert redact_history_text(f"ARG TOKEN={SECRET} B=x C", names={"TOKEN"},
                               redactor=redactor) == "ARG TOKEN=**** B=x C"
    assert redact_history_text(f"ARG D=a{SECRET}", names=(), redactor=redactor) == "ARG D=****"
    assert redact_history_text(f"ENV X={SECRET}", names={"X"}, redactor=redactor) == \
        f"ENV X={SECRET}"  # stored on purpose: warned about, not changed


def test_secret_build_arg_flag() -> None:
    environ = {"TOKEN": SECRET, "OTHER": "o"}
    args, names = parse_secret_build_args(["TOKEN", "DIRECT=d-value", "KEPT", "UNSET"],
                                          {"KEPT": "from --build-arg", "V": "v"}, environ)
    assert args == {"TOKEN": SECRET, "DIRECT": "d-value", "KEPT": "from --build-arg",
                    "V": "v"}
    assert names == {"TOKEN", "DIRECT", "KEPT", "UNSET"}
    with pytest.raises(UsageError) as caught:
        parse_secret_build_args([f"bad-name={SECRET}"], {}, {})
    assert SECRET not in str(caught.value) and "bad-name" in str(caught.value)


def test_service_settings_mark_build_args_secret() -> None:
    config = ServiceConfig.from_environ({"BUCKETBUILD_SECRET_BUILD_ARGS": "TOKEN, NPM_TOKEN"})
    assert config.secret_build_args == {"TOKEN", "NPM_TOKEN"}
    with pytest.raises(SettingsError):
        ServiceConfig.from_environ({"BUCKETBUILD_SECRET_BUILD_ARGS": "not-a-name"})
    archive = from_archive_json(b'{"secret-build-args": ["A", "B"]}')
    assert archive.secret_build_args == {"A", "B"}


def test_a_malformed_mapping_item_is_named_by_position_not_quoted() -> None:
    tail = SECRET[12:]  # a comma inside the secret value split it into two items
    environ = {"BUCKETBUILD_BUILD_ARGS": f"A=1,TOKEN={SECRET[:12]},{tail},B=2"}
    with pytest.raises(SettingsError) as caught:
        ServiceConfig.from_environ(environ)
    message = str(caught.value)
    assert tail not in message and SECRET[:12] not in message
    assert "BUCKETBUILD_BUILD_ARGS" in message and "item 3 of 4" in message


def test_docker_config_secrets() -> None:
    import base64

    config = {"auths": {"r1": {"auth": base64.b64encode(b"alice:pw-one-1234").decode()},
                        "r2": {"identitytoken": "id-token-5678"}, "r3": "junk"}}
    found = docker_config_secrets(config)
    assert {"pw-one-1234", "id-token-5678"} <= found
    assert base64.b64encode(b"alice:pw-one-1234").decode() in found


def test_build_secrets_and_the_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.build.options import SecretSource

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text('{"auths": {"r": {"password": "pw-abcdefgh"}}}')
    (tmp_path / "file").write_text("mounted-secret-value\n")
    options = BuildOptions(context=".", build_args={"TOKEN": SECRET, "OPEN": "open-value"},
                           secret_build_args=frozenset({"TOKEN"}),
                           secrets=(SecretSource("f", path=tmp_path / "file"),))
    known = build_secrets(options)
    assert {SECRET, "mounted-secret-value\n", "pw-abcdefgh"} <= known.redactor().secrets
    assert "open-value" not in known.redactor().secrets
    log = BuildLog(tmp_path / "build.log")
    sink = RedactingSink(log, known)  # tells the log the secrets, too
    sink.emit(StepOutput(1, f"{SECRET} mounted-secret-value open-value"))
    log.write("failed: pw-abcdefgh")
    log.close()
    text = (tmp_path / "build.log").read_text()
    assert "**** **** open-value" in text and "failed: ****" in text


def test_errors_leave_without_secrets() -> None:
    error = StepError(f"process said {SECRET}", instruction=f"RUN echo {SECRET}", exit_code=3)
    redact_error(error, SecretSet([SECRET]))
    assert SECRET not in str(error) and SECRET not in error.instruction
    assert error.exit_code == 3 and str(error) == "process said ****"


def test_failed_events_carry_no_credential_shaped_text() -> None:
    request = BuildRequest(store="s3", bucket="b", key="k.tar")
    attempt = Attempt("id", "claim", request, "bucketbuild", "s3://b/k.tar.log",
                      datetime.now(UTC))
    failure = Failure.from_exception(RuntimeError("sent Authorization: Bearer abc.def.ghi"),
                                     step=None)
    event = failed_event(attempt, failure, finished_at=datetime.now(UTC))
    assert event["data"]["error"]["message"] == "RuntimeError: sent Authorization: Bearer ****"
