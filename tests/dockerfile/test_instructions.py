"""Typed instructions from parse-tree nodes: every instruction, flag and error path."""

from __future__ import annotations

from typing import Any

import pytest

from core.dockerfile.ast import Heredoc, Node, ParseResult
from core.dockerfile.convert import convert_node, convert_nodes
from core.dockerfile.flags import parse_go_duration
from core.dockerfile.instructions import (
    AddInstruction,
    ArgDefinition,
    ArgInstruction,
    CmdInstruction,
    CopyInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    FromInstruction,
    HealthcheckInstruction,
    Instruction,
    KeyValue,
    LabelInstruction,
    MaintainerInstruction,
    OnbuildInstruction,
    RunInstruction,
    ShellInstruction,
    StopsignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
)
from core.dockerfile.mounts import Mount
from core.dockerfile.parser import parse_dockerfile
from core.errors import DockerfileError, SourceSpan


def node(
    keyword: str, *args: str, flags: tuple[str, ...] = (), json: bool = False,
    original: str | None = None, line: int = 3, end_line: int | None = None,
    heredocs: tuple[Heredoc, ...] = (), child: Node | None = None,
) -> Node:
    if original is None:
        original = " ".join((keyword.upper(), *flags, *args))
    return Node(instruction=keyword, args=args, flags=flags, json=json, original=original,
                start_line=line, end_line=end_line if end_line is not None else line,
                heredocs=heredocs, child=child)


def convert(keyword: str, *args: str, **options: Any) -> Instruction:
    return convert_node(node(keyword, *args, **options), filename="df/Dockerfile")


def error(keyword: str, *args: str, **options: Any) -> DockerfileError:
    with pytest.raises(DockerfileError) as caught:
        convert(keyword, *args, **options)
    return caught.value


def message(keyword: str, *args: str, **options: Any) -> str:
    return error(keyword, *args, **options).message


# --- common ---------------------------------------------------------------------------------


def test_span_and_original() -> None:
    result = convert("workdir", "/app", original="WORKDIR /app", line=7, end_line=9)
    assert result.span == SourceSpan("df/Dockerfile", 7, 9)
    assert result.original == "WORKDIR /app"
    assert result.keyword == "WORKDIR"


def test_error_location() -> None:
    caught = error("user", "a", "b", original="USER a \\\n  b", line=4, end_line=5)
    assert caught.message == "USER requires exactly one argument"
    assert (caught.file, caught.line, caught.end_line) == ("df/Dockerfile", 4, 5)
    assert caught.source_line == "USER a \\"
    assert str(caught).startswith("df/Dockerfile:4: USER requires exactly one argument")


def test_convert_nodes_uses_result_filename() -> None:
    result = ParseResult(
        nodes=(node("from", "alpine", line=1), node("run", "true", line=2)),
        directives=(), escape="\\", filename="build/Containerfile")
    converted = convert_nodes(result)
    assert [type(item) for item in converted] == [FromInstruction, RunInstruction]
    assert converted[1].span == SourceSpan("build/Containerfile", 2, 2)


def test_convert_nodes_error_names_file() -> None:
    result = ParseResult(nodes=(node("from", line=1),), directives=(), escape="\\",
                         filename="x/Dockerfile")
    with pytest.raises(DockerfileError) as caught:
        convert_nodes(result)
    assert (caught.value.file, caught.value.line) == ("x/Dockerfile", 1)


def test_unknown_instruction() -> None:
    assert message("frm", "alpine") == "unknown instruction: FRM (did you mean FROM?)"
    assert message("bogus") == "unknown instruction: BOGUS"


def test_keyword_case_is_ignored() -> None:
    assert isinstance(convert("WorkDir", "/x"), WorkdirInstruction)


# --- flags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("keyword", "args"), [
    ("from", ("alpine",)), ("run", ("true",)), ("cmd", ("x",)), ("entrypoint", ("x",)),
    ("label", ("a", "b", "=")), ("env", ("a", "b", "=")), ("arg", ("A",)),
    ("expose", ("80",)), ("maintainer", ("me",)), ("add", ("a", "b")), ("copy", ("a", "b")),
    ("volume", ("/v",)), ("user", ("u",)), ("workdir", ("/w",)), ("stopsignal", ("9",)),
    ("healthcheck", ("CMD", "true")),
])
def test_unknown_flag(keyword: str, args: tuple[str, ...]) -> None:
    assert message(keyword, *args, flags=("--bogus",)) == "unknown flag: --bogus"


def test_shell_rejects_flags() -> None:
    assert message("shell", "sh", flags=("--x=1",), json=True) == "unknown flag: --x"


def test_unknown_flag_suggestion() -> None:
    assert message("run", "true", flags=("--mout=type=bind",)) == (
        "unknown flag: --mout (did you mean --mount?)")
    assert message("copy", "a", "b", flags=("--form=x",)) == (
        "unknown flag: --form (did you mean --from?)")


def test_flag_must_start_with_dashes() -> None:
    assert message("copy", "a", "b", flags=("-from=x",)) == "arg should start with -- : -from=x"


def test_duplicate_flag() -> None:
    assert message("copy", "a", "b", flags=("--from=x", "--from=y")) == (
        "duplicate flag specified: --from")
    assert message("copy", "a", "b", flags=("--link", "--link=false")) == (
        "duplicate flag specified: --link")


def test_missing_flag_values() -> None:
    assert message("copy", "a", "b", flags=("--from",)) == "missing a value on flag: --from"
    assert message("copy", "a", "b", flags=("--link=",)) == "missing a value on flag: --link"
    assert message("run", "x", flags=("--mount",)) == "missing a value on flag: --mount"


def test_boolean_flag_values() -> None:
    def link(*flags: str) -> bool:
        result = convert("copy", "a", "b", flags=flags)
        assert isinstance(result, CopyInstruction)
        return result.link

    assert link() is False
    assert link("--link") is True
    assert link("--link=true") is True
    assert link("--link=TRUE") is True
    assert link("--link=False") is False
    assert message("copy", "a", "b", flags=("--link=yes",)) == (
        "expecting boolean value for flag --link, not: yes")


def test_double_dash_ends_flags() -> None:
    result = convert("copy", "a", "b", flags=("--link", "--", "--bogus"))
    assert isinstance(result, CopyInstruction)
    assert result.link


def test_empty_string_flag_value_is_kept() -> None:
    result = convert("copy", "a", "b", flags=("--from=",))
    assert isinstance(result, CopyInstruction)
    assert result.from_ == ""


# --- FROM -----------------------------------------------------------------------------------


def test_from() -> None:
    assert convert("from", "alpine:3.20") == FromInstruction(
        span=SourceSpan("df/Dockerfile", 3, 3), original="FROM alpine:3.20", image="alpine:3.20")


def test_from_with_name_and_platform() -> None:
    result = convert("from", "golang", "AS", "Build-Env.1_x", flags=("--platform=$BUILDPLATFORM",))
    assert isinstance(result, FromInstruction)
    assert (result.image, result.stage_name, result.platform) == (
        "golang", "build-env.1_x", "$BUILDPLATFORM")
    lower, mixed = convert("from", "a", "as", "b"), convert("from", "a", "As", "b")
    assert isinstance(lower, FromInstruction) and isinstance(mixed, FromInstruction)
    assert lower.stage_name == mixed.stage_name == "b"


@pytest.mark.parametrize("name", ["1st", "a b", "-x", "_x", "a/b", "a:b", "stage!", ".x", "é"])
def test_from_invalid_stage_name(name: str) -> None:
    assert message("from", "alpine", "AS", name) == (
        f'invalid name for build stage: "{name}", name can\'t start with a number or contain '
        "symbols")


@pytest.mark.parametrize("args", [(), ("a", "AS"), ("a", "b"), ("a", "AS", "b", "c"),
                                  ("a", "to", "b")])
def test_from_argument_count(args: tuple[str, ...]) -> None:
    assert message("from", *args) == "FROM requires either one or three arguments"


def test_from_checks_name_before_flags() -> None:
    assert message("from", "a", "AS", flags=("--bogus",)) == (
        "FROM requires either one or three arguments")
    assert message("from", "a", flags=("--platform",)) == "missing a value on flag: --platform"


# --- RUN, CMD, ENTRYPOINT -------------------------------------------------------------------


def test_run_shell_form() -> None:
    result = convert("run", "apt-get update && apt-get install -y curl")
    assert isinstance(result, RunInstruction)
    assert result.command == ("apt-get update && apt-get install -y curl",)
    assert result.json is False
    assert result.prepend_shell
    assert (result.network, result.security, result.mounts, result.heredocs) == (
        "default", "sandbox", (), ())


def test_run_exec_form() -> None:
    result = convert("run", "echo", "a b", json=True)
    assert isinstance(result, RunInstruction)
    assert result.command == ("echo", "a b")
    assert result.json and not result.prepend_shell


def test_run_empty_is_allowed() -> None:
    result = convert("run")
    assert isinstance(result, RunInstruction)
    assert result.command == ("",)


def test_run_heredocs() -> None:
    body = Heredoc(name="EOF", content="echo hi\n", expand=True, chomp=False)
    result = convert("run", "<<EOF", heredocs=(body,))
    assert isinstance(result, RunInstruction)
    assert result.heredocs == (body,)
    assert result.command == ("<<EOF",)


def test_run_mounts() -> None:
    result = convert("run", "make", flags=(
        "--mount=type=cache,target=/root/.cache", "--mount=type=secret,id=tok,env=TOKEN"))
    assert isinstance(result, RunInstruction)
    assert [mount.type for mount in result.mounts] == ["cache", "secret"]
    assert result.mounts[0] == Mount(type="cache", target="/root/.cache", readonly=False,
                                     sharing="shared", spec="type=cache,target=/root/.cache")
    assert result.mounts[1].env == "TOKEN"


def test_run_mount_error_is_located() -> None:
    caught = error("run", "make", flags=("--mount=type=nope",), line=12)
    assert caught.message == 'unsupported mount type "nope"'
    assert caught.line == 12


@pytest.mark.parametrize("network", ["default", "none", "host"])
def test_run_network(network: str) -> None:
    result = convert("run", "x", flags=(f"--network={network}",))
    assert isinstance(result, RunInstruction)
    assert result.network == network


@pytest.mark.parametrize("security", ["sandbox", "insecure"])
def test_run_security(security: str) -> None:
    result = convert("run", "x", flags=(f"--security={security}",))
    assert isinstance(result, RunInstruction)
    assert result.security == security


def test_run_network_and_security_errors() -> None:
    assert message("run", "x", flags=("--network=bridge",)) == 'invalid network mode "bridge"'
    assert message("run", "x", flags=("--network=",)) == 'invalid network mode ""'
    assert message("run", "x", flags=("--network=NONE",)) == 'invalid network mode "NONE"'
    assert message("run", "x", flags=("--security=root",)) == 'security "root" is not valid'
    assert message("run", "x", flags=("--network",)) == "missing a value on flag: --network"
    assert message("run", "x", flags=("--network=host", "--network=none")) == (
        "duplicate flag specified: --network")


def test_cmd_forms() -> None:
    shell = convert("cmd", "nginx -g 'daemon off;'")
    assert shell == CmdInstruction(span=shell.span, original=shell.original,
                                   command=("nginx -g 'daemon off;'",), json=False)
    assert isinstance(shell, CmdInstruction) and shell.prepend_shell
    exec_form = convert("cmd", "nginx", "-g", "daemon off;", json=True)
    assert isinstance(exec_form, CmdInstruction)
    assert exec_form.command == ("nginx", "-g", "daemon off;")
    assert not exec_form.prepend_shell
    empty = convert("cmd", json=True)
    assert isinstance(empty, CmdInstruction) and empty.command == ()


def test_entrypoint_forms() -> None:
    result = convert("entrypoint", "/bin/app", "--serve", json=True)
    assert isinstance(result, EntrypointInstruction)
    assert (result.command, result.json) == (("/bin/app", "--serve"), True)
    reset = convert("entrypoint", json=True)
    assert isinstance(reset, EntrypointInstruction) and reset.command == ()
    shell = convert("entrypoint", "exec app")
    assert isinstance(shell, EntrypointInstruction)
    assert shell.command == ("exec app",) and shell.prepend_shell


def test_cmd_entrypoint_reject_flags() -> None:
    assert message("cmd", "x", flags=("--mount=a",)) == "unknown flag: --mount"
    assert message("entrypoint", "x", flags=("--x",)) == "unknown flag: --x"


# --- SHELL ----------------------------------------------------------------------------------


def test_shell() -> None:
    result = convert("shell", "/bin/bash", "-o", "pipefail", "-c", json=True)
    assert isinstance(result, ShellInstruction)
    assert result.shell == ("/bin/bash", "-o", "pipefail", "-c")


def test_shell_errors() -> None:
    assert message("shell", "/bin/bash -c") == "SHELL requires the arguments to be in JSON form"
    assert message("shell") == "SHELL requires the arguments to be in JSON form"
    assert message("shell", json=True) == "SHELL requires at least one argument"


# --- LABEL, ENV, MAINTAINER, EXPOSE, ARG ----------------------------------------------------


def test_label() -> None:
    result = convert("label", "a", "1", "=", "b c", "two words", "=")
    assert isinstance(result, LabelInstruction)
    assert result.labels == (KeyValue("a", "1"), KeyValue("b c", "two words"))


def test_env_both_forms() -> None:
    modern = convert("env", "A", "1", "=", "B", "$A/x", "=")
    assert isinstance(modern, EnvInstruction)
    assert modern.env == (KeyValue("A", "1"), KeyValue("B", "$A/x"))
    legacy = convert("env", "PATH", "/usr/bin:$PATH", "")
    assert isinstance(legacy, EnvInstruction)
    assert legacy.env == (KeyValue("PATH", "/usr/bin:$PATH", legacy=True),)


@pytest.mark.parametrize("keyword", ["env", "label"])
def test_key_value_errors(keyword: str) -> None:
    upper = keyword.upper()
    assert message(keyword) == f"{upper} requires at least one argument"
    assert message(keyword, "a", "b") == f"Bad input to {upper}, too many arguments"
    assert message(keyword, "", "b", "=") == f"{upper} names can not be blank"


def test_maintainer() -> None:
    result = convert("maintainer", "Jane Doe <jane@example.com>")
    assert isinstance(result, MaintainerInstruction)
    assert result.maintainer == "Jane Doe <jane@example.com>"
    assert message("maintainer") == "MAINTAINER requires exactly one argument"
    assert message("maintainer", "a", "b") == "MAINTAINER requires exactly one argument"


def test_expose() -> None:
    result = convert("expose", "8080", "53/udp", "$PORT")
    assert isinstance(result, ExposeInstruction)
    assert result.ports == ("8080", "53/udp", "$PORT")
    assert message("expose") == "EXPOSE requires at least one argument"


def test_arg() -> None:
    result = convert("arg", "VERSION=1.2", "DEBUG", "EMPTY=", "URL=http://x?a=b")
    assert isinstance(result, ArgInstruction)
    assert result.args == (
        ArgDefinition("VERSION", "1.2"), ArgDefinition("DEBUG", None),
        ArgDefinition("EMPTY", ""), ArgDefinition("URL", "http://x?a=b"))


def test_arg_errors() -> None:
    assert message("arg") == "ARG requires at least one argument"
    assert message("arg", "=1") == "ARG names can not be blank"
    assert message("arg", "A", "=x") == "ARG names can not be blank"


# --- ADD, COPY ------------------------------------------------------------------------------


def test_copy() -> None:
    result = convert("copy", "a.txt", "dir/", "/app/")
    assert isinstance(result, CopyInstruction)
    assert (result.sources, result.dest, result.inline_sources) == (("a.txt", "dir/"), "/app/", ())
    assert (result.from_, result.chown, result.chmod, result.link, result.parents,
            result.excludes) == ("", "", "", False, False, ())


def test_copy_flags() -> None:
    result = convert("copy", "src", "/dst", flags=(
        "--from=builder", "--chown=1000:1000", "--chmod=0755", "--link", "--parents",
        "--exclude=*.md", "--exclude=.git"))
    assert isinstance(result, CopyInstruction)
    assert result.from_ == "builder"
    assert (result.chown, result.chmod) == ("1000:1000", "0755")
    assert result.link and result.parents
    assert result.excludes == ("*.md", ".git")


def test_copy_rejects_add_flags() -> None:
    assert message("copy", "a", "b", flags=("--checksum=sha256:x",)) == (
        "unknown flag: --checksum")
    assert message("copy", "a", "b", flags=("--keep-git-dir",)) == "unknown flag: --keep-git-dir"


def test_add_flags() -> None:
    result = convert("add", "https://x/a.tgz", "/opt/", flags=(
        "--checksum=sha256:abc", "--keep-git-dir=true", "--chown=app", "--chmod=u+rx",
        "--link=false", "--exclude=x", "--unpack"))
    assert isinstance(result, AddInstruction)
    assert result.checksum == "sha256:abc"
    assert result.keep_git_dir is True
    assert (result.chown, result.chmod, result.link, result.excludes) == (
        "app", "u+rx", False, ("x",))
    assert result.unpack is True


def test_add_unpack_is_tristate() -> None:
    def unpack(*flags: str) -> bool | None:
        result = convert("add", "a", "b", flags=flags)
        assert isinstance(result, AddInstruction)
        return result.unpack

    assert unpack() is None
    assert unpack("--unpack=false") is False
    assert unpack("--unpack=true") is True


def test_add_rejects_copy_flags() -> None:
    assert message("add", "a", "b", flags=("--from=x",)) == "unknown flag: --from"
    assert message("add", "a", "b", flags=("--parents",)) == "unknown flag: --parents"


@pytest.mark.parametrize("keyword", ["add", "copy"])
@pytest.mark.parametrize("args", [(), ("only",)])
def test_copy_needs_two_arguments(keyword: str, args: tuple[str, ...]) -> None:
    assert message(keyword, *args, flags=("--bogus",)) == (
        f"{keyword.upper()} requires at least two arguments, but only one was provided. "
        "Destination could not be determined")


def test_copy_json_form() -> None:
    result = convert("copy", "a b", "c", "/d e/", json=True)
    assert isinstance(result, CopyInstruction)
    assert (result.sources, result.dest) == (("a b", "c"), "/d e/")


def test_copy_heredoc_sources() -> None:
    one = Heredoc(name="EOF", content="hello\n", expand=True, chomp=False)
    two = Heredoc(name="END", content="x=$y\n", expand=False, chomp=True)
    result = convert("copy", "<<EOF", "file.txt", "<<-'END'", "/dest/",
                     heredocs=(one, two), end_line=9)
    assert isinstance(result, CopyInstruction)
    assert result.inline_sources == (one, two)
    assert result.sources == ("file.txt",)
    assert result.dest == "/dest/"
    assert result.span.end_line == 9


def test_heredoc_word_without_body_is_a_path() -> None:
    result = convert("add", "<<EOF", "/d")
    assert isinstance(result, AddInstruction)
    assert (result.sources, result.inline_sources) == (("<<EOF",), ())


@pytest.mark.parametrize("keyword", ["add", "copy"])
def test_heredoc_destination(keyword: str) -> None:
    body = Heredoc(name="EOF", content="x\n", expand=True, chomp=False)
    assert message(keyword, "a", "<<EOF", heredocs=(body,)) == (
        f"{keyword.upper()} cannot accept a heredoc as a destination")


# --- VOLUME, USER, WORKDIR, STOPSIGNAL ------------------------------------------------------


def test_volume() -> None:
    result = convert("volume", "/data", " /logs ")
    assert isinstance(result, VolumeInstruction)
    assert result.volumes == ("/data", "/logs")
    json_form = convert("volume", "/a", "/b", json=True)
    assert isinstance(json_form, VolumeInstruction) and json_form.volumes == ("/a", "/b")
    assert message("volume") == "VOLUME requires at least one argument"
    assert message("volume", "/a", "  ", json=True) == (
        "VOLUME specified can not be an empty string")


def test_user() -> None:
    result = convert("user", "app:staff")
    assert isinstance(result, UserInstruction) and result.user == "app:staff"
    assert message("user") == "USER requires exactly one argument"


def test_workdir() -> None:
    result = convert("workdir", "$HOME/src")
    assert isinstance(result, WorkdirInstruction) and result.path == "$HOME/src"
    assert message("workdir", "a", "b") == "WORKDIR requires exactly one argument"


def test_stopsignal() -> None:
    result = convert("stopsignal", "SIGQUIT")
    assert isinstance(result, StopsignalInstruction) and result.signal == "SIGQUIT"
    assert message("stopsignal") == "STOPSIGNAL requires exactly one argument"


# --- HEALTHCHECK ----------------------------------------------------------------------------


def test_healthcheck_none() -> None:
    result = convert("healthcheck", "NONE")
    assert isinstance(result, HealthcheckInstruction)
    assert result.test == ("NONE",) and result.disabled
    assert convert("healthcheck", "none") == HealthcheckInstruction(
        span=result.span, original="HEALTHCHECK none", test=("NONE",))


def test_healthcheck_shell_form() -> None:
    result = convert("healthcheck", "CMD", "curl -f http://localhost/ || exit 1")
    assert isinstance(result, HealthcheckInstruction)
    assert result.test == ("CMD-SHELL", "curl -f http://localhost/ || exit 1")
    assert not result.disabled
    assert (result.interval_ns, result.timeout_ns, result.start_period_ns,
            result.start_interval_ns, result.retries) == (0, 0, 0, 0, 0)


def test_healthcheck_exec_form_and_flags() -> None:
    result = convert("healthcheck", "cmd", "/bin/check", "--quick", json=True, flags=(
        "--interval=1m30s", "--timeout=500ms", "--start-period=2s", "--start-interval=1.5s",
        "--retries=3"))
    assert isinstance(result, HealthcheckInstruction)
    assert result.test == ("CMD", "/bin/check", "--quick")
    assert result.interval_ns == 90 * 10**9
    assert result.timeout_ns == 500 * 10**6
    assert result.start_period_ns == 2 * 10**9
    assert result.start_interval_ns == 1_500_000_000
    assert result.retries == 3


def test_healthcheck_zero_values() -> None:
    result = convert("healthcheck", "CMD", "true", flags=("--interval=0s", "--retries=0"))
    assert isinstance(result, HealthcheckInstruction)
    assert (result.interval_ns, result.retries) == (0, 0)


@pytest.mark.parametrize(("args", "flags", "text"), [
    ((), (), "HEALTHCHECK requires at least one argument"),
    (("NONE", "x"), (), "HEALTHCHECK NONE takes no arguments"),
    (("CHECK", "x"), (), 'Unknown type "CHECK" in HEALTHCHECK (try CMD)'),
    (("CMD",), (), "Missing command after HEALTHCHECK CMD"),
    (("CMD", "x"), ("--interval=500us",), 'Interval "interval" cannot be less than 1ms'),
    (("CMD", "x"), ("--timeout=-1s",), 'Interval "timeout" cannot be less than 1ms'),
    (("CMD", "x"), ("--start-period=10",),
     'invalid value for --start-period: missing unit in duration "10"'),
    (("CMD", "x"), ("--start-interval=5x",),
     'invalid value for --start-interval: unknown unit "x" in duration "5x"'),
    (("CMD", "x"), ("--interval=abc",), 'invalid value for --interval: invalid duration "abc"'),
    (("CMD", "x"), ("--retries=-1",), "--retries cannot be negative (-1)"),
    (("CMD", "x"), ("--retries=three",), 'invalid value for --retries: "three"'),
    (("CMD", "x"), ("--retries=2147483648",), 'invalid value for --retries: "2147483648"'),
    (("CMD", "x"), ("--retries",), "missing a value on flag: --retries"),
    (("CMD", "x"), ("--interval",), "missing a value on flag: --interval"),
    (("CMD", "x"), ("--every=1s",), "unknown flag: --every"),
])
def test_healthcheck_errors(args: tuple[str, ...], flags: tuple[str, ...], text: str) -> None:
    assert message("healthcheck", *args, flags=flags) == text


def test_healthcheck_exec_form_needs_a_command() -> None:
    assert message("healthcheck", "CMD", json=True) == "Missing command after HEALTHCHECK CMD"


@pytest.mark.parametrize(("text", "nanoseconds"), [
    ("0", 0), ("+0", 0), ("1ns", 1), ("1us", 1000), ("1µs", 1000), ("1μs", 1000),
    ("1ms", 10**6), ("1s", 10**9), ("1m", 60 * 10**9), ("1h", 3600 * 10**9),
    ("1h2m3s4ms", (3723 * 10**9) + 4 * 10**6), ("1.5s", 1_500_000_000), (".5s", 500_000_000),
    ("1.s", 10**9), ("-2m", -120 * 10**9), ("0.000000001s", 1), ("10.75ms", 10_750_000),
])
def test_go_durations(text: str, nanoseconds: int) -> None:
    assert parse_go_duration(text) == nanoseconds


@pytest.mark.parametrize(("text", "reason"), [
    ("", 'invalid duration ""'), ("-", 'invalid duration "-"'), ("s", 'invalid duration "s"'),
    (".s", 'invalid duration ".s"'), ("1", 'missing unit in duration "1"'),
    ("1h2", 'missing unit in duration "1h2"'), ("1d", 'unknown unit "d" in duration "1d"'),
    ("1 s", 'unknown unit " s" in duration "1 s"'),
    ("9999999999h", 'invalid duration "9999999999h"'),
])
def test_go_duration_errors(text: str, reason: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        parse_go_duration(text)
    assert caught.value.message == reason


# --- ONBUILD --------------------------------------------------------------------------------


def test_onbuild() -> None:
    child = node("run", "make install", original="RUN make install", line=4)
    result = convert("onbuild", child=child, original="ONBUILD RUN make install", line=4)
    assert isinstance(result, OnbuildInstruction)
    assert result.expression == "RUN make install"
    assert isinstance(result.trigger, RunInstruction)
    assert result.trigger.command == ("make install",)


def test_onbuild_expression_strips_keyword_case_insensitively() -> None:
    child = node("copy", ".", "/src", original="COPY . /src")
    result = convert("onbuild", child=child, original="  onbuild   COPY . /src")
    assert isinstance(result, OnbuildInstruction)
    assert result.expression == "COPY . /src"
    assert isinstance(result.trigger, CopyInstruction)


def test_onbuild_heredoc_bodies_are_appended() -> None:
    body = Heredoc(name="EOF", content="echo hi\n", expand=True, chomp=False)
    child = node("run", "<<EOF", original="RUN <<EOF", heredocs=(body,))
    result = convert("onbuild", child=child, original="ONBUILD RUN <<EOF")
    assert isinstance(result, OnbuildInstruction)
    assert result.expression == "RUN <<EOF\necho hi\nEOF"


@pytest.mark.parametrize(("keyword", "text"), [
    ("onbuild", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("from", "FROM isn't allowed as an ONBUILD trigger"),
    ("maintainer", "MAINTAINER isn't allowed as an ONBUILD trigger"),
])
def test_onbuild_forbidden_triggers(keyword: str, text: str) -> None:
    assert message("onbuild", child=node(keyword, "x")) == text


def test_onbuild_errors() -> None:
    assert message("onbuild") == "ONBUILD requires at least one argument"
    assert message("onbuild", child=node("run", "x"), flags=("--x",)) == "unknown flag: --x"
    caught = error("onbuild", child=node("copy", "a", line=8), line=8)
    assert caught.message.startswith("COPY requires at least two arguments")
    assert caught.line == 8


# --- text -> parse -> typed -----------------------------------------------------------------


def typed(text: str) -> tuple[Instruction, ...]:
    return convert_nodes(parse_dockerfile(text, filename="ctx/Dockerfile"))


def typed_error(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as caught:
        typed(text)
    return caught.value


def test_parsed_dockerfile() -> None:
    result = typed(
        "ARG BASE=alpine VERSION\n"
        "FROM --platform=$BUILDPLATFORM ${BASE} AS Builder\n"
        'ENV A=1 B="two words"\n'
        "ENV LEGACY value with spaces\n"
        "LABEL org.opencontainers.image.title=app\n"
        "RUN --mount=type=cache,target=/root/.cache \\\n"
        "    --network=none \\\n"
        "    make build\n"
        'CMD ["app", "--serve"]\n'
        "ENTRYPOINT exec app\n"
        "EXPOSE 8080/tcp 53/udp\n"
        "VOLUME /data\n"
        "USER app:app\n"
        "WORKDIR /srv\n"
        "STOPSIGNAL SIGTERM\n"
        "MAINTAINER Jane Doe\n"
        'SHELL ["/bin/bash", "-c"]\n'
        "HEALTHCHECK --interval=30s --retries=2 CMD curl -f http://localhost/\n"
        "COPY --from=Builder --chmod=0644 /out/app /usr/bin/app\n"
        "ADD --checksum=sha256:00 https://example.com/a.tgz /opt/\n"
        "ONBUILD RUN echo triggered\n")
    kinds = [type(item).__name__ for item in result]
    assert kinds == [
        "ArgInstruction", "FromInstruction", "EnvInstruction", "EnvInstruction",
        "LabelInstruction", "RunInstruction", "CmdInstruction", "EntrypointInstruction",
        "ExposeInstruction", "VolumeInstruction", "UserInstruction", "WorkdirInstruction",
        "StopsignalInstruction", "MaintainerInstruction", "ShellInstruction",
        "HealthcheckInstruction", "CopyInstruction", "AddInstruction", "OnbuildInstruction"]
    arg, stage, env, legacy, _label, run, cmd, entrypoint = result[:8]
    assert isinstance(arg, ArgInstruction)
    assert arg.args == (ArgDefinition("BASE", "alpine"), ArgDefinition("VERSION"))
    assert isinstance(stage, FromInstruction)
    assert (stage.image, stage.stage_name, stage.platform) == (
        "${BASE}", "builder", "$BUILDPLATFORM")
    assert isinstance(env, EnvInstruction)
    assert env.env == (KeyValue("A", "1"), KeyValue("B", '"two words"'))
    assert isinstance(legacy, EnvInstruction)
    assert legacy.env == (KeyValue("LEGACY", "value with spaces", legacy=True),)
    assert isinstance(run, RunInstruction)
    assert run.span == SourceSpan("ctx/Dockerfile", 6, 8)
    assert run.network == "none"
    assert run.mounts[0].target == "/root/.cache"
    assert run.command[0].strip() == "make build"
    assert isinstance(cmd, CmdInstruction) and cmd.command == ("app", "--serve") and cmd.json
    assert isinstance(entrypoint, EntrypointInstruction)
    assert entrypoint.command == ("exec app",) and not entrypoint.json
    health = result[15]
    assert isinstance(health, HealthcheckInstruction)
    assert health.test == ("CMD-SHELL", "curl -f http://localhost/")
    assert (health.interval_ns, health.retries) == (30 * 10**9, 2)
    onbuild = result[-1]
    assert isinstance(onbuild, OnbuildInstruction)
    assert onbuild.expression == "RUN echo triggered"
    assert isinstance(onbuild.trigger, RunInstruction)
    assert onbuild.trigger.span.start_line == 21


def test_parsed_heredocs() -> None:
    result = typed(
        "FROM alpine\n"
        "RUN <<EOF\n"
        "echo hi\n"
        "EOF\n"
        'COPY <<-"END" <<X /dest/\n'
        "\thello $name\n"
        "\tEND\n"
        "x\n"
        "X\n"
        "ONBUILD RUN <<EOF\n"
        "echo later\n"
        "EOF\n")
    run, copy, onbuild = result[1:]
    assert isinstance(run, RunInstruction)
    assert [doc.name for doc in run.heredocs] == ["EOF"]
    assert run.span == SourceSpan("ctx/Dockerfile", 2, 4)
    assert isinstance(copy, CopyInstruction)
    assert copy.sources == ()
    assert [(doc.name, doc.content, doc.expand) for doc in copy.inline_sources] == [
        ("END", "hello $name\n", False), ("X", "x\n", True)]
    assert copy.dest == "/dest/"
    assert isinstance(onbuild, OnbuildInstruction)
    assert onbuild.expression == "RUN <<EOF\necho later\nEOF"


def test_parsed_errors_carry_lines() -> None:
    caught = typed_error("FROM alpine\nRUN --mount=type=cache,target=/c,uid=x true\n")
    assert caught.message == "invalid value x for uid"
    assert (caught.file, caught.line) == ("ctx/Dockerfile", 2)
    assert caught.source_line == "RUN --mount=type=cache,target=/c,uid=x true"
    caught = typed_error("FROM alpine\n\nCOPY \\\n  --chmod=644 \\\n  onlyone\n")
    assert caught.message.startswith("COPY requires at least two arguments")
    assert (caught.line, caught.end_line) == (3, 5)
    assert typed_error("FROM a AS\n").message == "FROM requires either one or three arguments"
    assert typed_error("FROM a AS 9lives\n").message.startswith(
        'invalid name for build stage: "9lives"')
    assert typed_error("FROM a\nCOPY --frm=x a b\n").message == (
        "unknown flag: --frm (did you mean --from?)")
    assert typed_error("FROM a\nHEALTHCHECK --timeout=1us CMD true\n").message == (
        'Interval "timeout" cannot be less than 1ms')
    assert typed_error("FROM a\nONBUILD COPY --bogus a b\n").message == "unknown flag: --bogus"


def test_parsed_empty_commands() -> None:
    run, cmd, entrypoint = typed("RUN\nCMD\nENTRYPOINT []\n")
    assert isinstance(run, RunInstruction) and run.command == ("",)
    assert isinstance(cmd, CmdInstruction) and cmd.command == ("",)
    assert isinstance(entrypoint, EntrypointInstruction)
    assert entrypoint.command == () and entrypoint.json
