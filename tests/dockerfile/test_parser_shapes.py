"""Argument shapes per instruction, flags and the JSON (exec) form, as BuildKit's parser."""

from __future__ import annotations

import pytest

from core.dockerfile import Node, dump_buildkit, parse_dockerfile
from core.dockerfile.jsonform import is_valid_json, parse_json_array
from core.errors import DockerfileError


def node(line: str | bytes) -> Node:
    data = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
    return parse_dockerfile(b"FROM a\n" + data + b"\n").nodes[1]


def dumped(line: str) -> str:
    return dump_buildkit(parse_dockerfile("FROM a\n" + line + "\n")).splitlines()[1]


def error(line: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile("FROM a\n" + line + "\n")
    return info.value


# --- ENV, LABEL, ARG ---------------------------------------------------------------------

@pytest.mark.parametrize(("line", "args"), [
    ("ENV a b c", ("a", "b c", "")),
    ("ENV a   b  c  ", ("a", "b  c", "")),
    ("ENV a=b", ("a", "b", "=")),
    ("ENV a=b c=d", ("a", "b", "=", "c", "d", "=")),
    ('ENV a="b c" d=\'e f\'', ("a", '"b c"', "=", "d", "'e f'", "=")),
    ("ENV a=b\\ c", ("a", "b\\ c", "=")),
    ("ENV a=", ("a", "", "=")),
    ('ENV a=""', ("a", '""', "=")),
    ("ENV a=b=c", ("a", "b=c", "=")),
    ('ENV "a=b" c=d', ('"a', 'b"', "=", "c", "d", "=")),
    ("ENV a\\ b c", ("a\\", "b c", "")),
    ("LABEL maintainer Jo <jo@x>", ("maintainer", "Jo <jo@x>", "")),
    ('LABEL "com.x.y"="v 1" k=v', ('"com.x.y"', '"v 1"', "=", "k", "v", "=")),
])
def test_key_value_shapes(line: str, args: tuple[str, ...]) -> None:
    assert node(line).args == args


@pytest.mark.parametrize(("line", "message"), [
    ("ENV PATH", "ENV must have two arguments"),
    ("LABEL x", "LABEL must have two arguments"),
    ("ENV a=b c", "Syntax error - can't find = in \"c\". Must be of the form: name=value"),
    ("LABEL a=b \"c d\"",
     "Syntax error - can't find = in \"\\\"c d\\\"\". Must be of the form: name=value"),
])
def test_key_value_errors(line: str, message: str) -> None:
    err = error(line)
    assert (err.message, err.line) == (message, 2)


def test_env_without_arguments_has_no_args() -> None:
    # BuildKit's parser accepts it; typing the instruction rejects it later.
    assert node("ENV").args == ()


def test_env_words_follow_the_escape_directive() -> None:
    result = parse_dockerfile("# escape=`\nFROM a\nENV a=x` y b=\"q`\"r\"\n")
    assert result.nodes[1].args == ("a", "x` y", "=", "b", '"q`"r"', "=")


def test_invalid_utf8_in_env_words_becomes_replacement_characters() -> None:
    assert node(b"ENV a=\xff\"x\"").args == ("a", '\ufffd"x"', "=")


@pytest.mark.parametrize(("line", "args"), [
    ("ARG foo", ("foo",)),
    ("ARG foo bar=baz", ("foo", "bar=baz")),
    ('ARG abc="123 456" def', ('abc="123 456"', "def")),
    ("ARG", ()),
])
def test_arg_shapes(line: str, args: tuple[str, ...]) -> None:
    assert node(line).args == args


# --- whitespace-delimited, strings ---------------------------------------------------------

@pytest.mark.parametrize(("line", "args"), [
    ("EXPOSE 80 443/tcp\t8080", ("80", "443/tcp", "8080")),
    ("FROM --platform=$BUILDPLATFORM golang:1.22 AS build", ("golang:1.22", "AS", "build")),
    ("VOLUME /a /b", ("/a", "/b")),
    ("COPY a b /c/", ("a", "b", "/c/")),
    ("ADD 'a b' c", ("'a", "b'", "c")),
    ("USER app:app", ("app:app",)),
    ("USER a b", ("a b",)),
    ("WORKDIR /my dir", ("/my dir",)),
    ("STOPSIGNAL SIGKILL", ("SIGKILL",)),
    ("MAINTAINER Jo <jo@example.com>", ("Jo <jo@example.com>",)),
    ("WORKDIR", ()),
    ("EXPOSE 80\u00a0443", ("80\u00a0443",)),
])
def test_plain_shapes(line: str, args: tuple[str, ...]) -> None:
    assert node(line).args == args


# --- JSON and shell forms ------------------------------------------------------------------

@pytest.mark.parametrize(("line", "args", "is_json"), [
    ('RUN ["echo", "hi"]', ("echo", "hi"), True),
    ("RUN echo hi", ("echo hi",), False),
    ('CMD [ "a" , "b" ]', ("a", "b"), True),
    ("CMD []", (), True),
    ("CMD", (), False),
    ('ENTRYPOINT ["/bin/sh", "-c"]', ("/bin/sh", "-c"), True),
    ('SHELL ["powershell", "-command"]', ("powershell", "-command"), True),
    ('COPY ["a b", "/c"]', ("a b", "/c"), True),
    ('ADD ["a"]', ("a",), True),
    ('VOLUME ["/v"]', ("/v",), True),
    ("CMD ['a']", ("['a']",), False),
    ('CMD ["a",]', ('["a",]',), False),
    ('CMD ["a"] x', ('["a"] x',), False),
    ("CMD [NaN]", ("[NaN]",), False),
    ("CMD [1e999]", ("[1e999]",), False),
    ('CMD ["\\u00e9\\ud83d\\ude00\\ud800"]', ("é😀\ufffd",), True),
    ('COPY [ "a" /b', ('[', '"a"', "/b"), False),
    ('CMD ["\\t\\n\\/"]', ("\t\n/",), True),
])
def test_json_or_shell_form(line: str, args: tuple[str, ...], is_json: bool) -> None:
    parsed = node(line)
    assert (parsed.args, parsed.json) == (args, is_json)


@pytest.mark.parametrize("line", [
    'CMD ["a", ["b"]]', "RUN [1]", 'COPY ["a", {"b": 1}]', "ENTRYPOINT [null]",
    "VOLUME [true]", 'HEALTHCHECK CMD ["a", 2]', "CMD [1e308]",
])
def test_json_with_non_strings_is_an_error(line: str) -> None:
    assert error(line).message == (
        "when using JSON array syntax, arrays must be comprised of strings only")


def test_invalid_utf8_in_json_strings_becomes_replacement_characters() -> None:
    assert node(b'CMD ["\xff\xe2\x82"]').args == ("\ufffd\ufffd\ufffd",)


def test_deeply_nested_json() -> None:
    deep = "[" * 3000 + "]" * 3000
    assert is_valid_json(deep)
    with pytest.raises(DockerfileError):
        parse_json_array(deep)
    too_deep = "[" * 10001 + "]" * 10001
    assert not is_valid_json(too_deep)
    assert parse_json_array(too_deep) is None
    assert parse_json_array("[" * 3000 + "]" * 2999) is None


@pytest.mark.parametrize(("text", "valid"), [
    ('["a", 1, -2.5e3, true, false, null, {"k": [{}]}]', True),
    ("[1.]", False), ("[01]", False), ("[.5]", False), ('["\\x"]', False),
    ('["a"', False), ("[] x", False), ('{"a" 1}', False), ("[1e400]", False),
    ('["\x01"]', False), ("  [ ]  ", True), ("[,]", False), ('{"a":1,}', False),
])
def test_json_validator(text: str, valid: bool) -> None:
    assert is_valid_json(text) is valid


# --- SHELL, HEALTHCHECK, ONBUILD -----------------------------------------------------------

@pytest.mark.parametrize(("line", "message"), [
    ("SHELL /bin/bash -c", "SHELL requires the arguments to be in JSON form"),
    ("SHELL", "SHELL requires the arguments to be in JSON form"),
    ("SHELL []", "SHELL requires at least one argument"),
])
def test_shell_must_be_json(line: str, message: str) -> None:
    assert error(line).message == message


@pytest.mark.parametrize(("line", "args", "is_json"), [
    ("HEALTHCHECK NONE", ("NONE",), False),
    ("HEALTHCHECK CMD curl -f http://x/ || exit 1", ("CMD", "curl -f http://x/ || exit 1"), False),
    ('HEALTHCHECK CMD ["curl", "x"]', ("CMD", "curl", "x"), True),
    ("HEALTHCHECK", (), False),
    ("HEALTHCHECK\tCMD\t\ta", ("CMD", "a"), False),
])
def test_healthcheck_shapes(line: str, args: tuple[str, ...], is_json: bool) -> None:
    parsed = node(line)
    assert (parsed.args, parsed.json) == (args, is_json)


def test_healthcheck_flags() -> None:
    parsed = node("HEALTHCHECK --interval=5s --retries=3 CMD check")
    assert parsed.flags == ("--interval=5s", "--retries=3")


def test_onbuild_keeps_a_child() -> None:
    parsed = node("ONBUILD COPY --from=x a b")
    assert parsed.args == ()
    assert parsed.child is not None
    assert (parsed.child.instruction, parsed.child.flags, parsed.child.args) == (
        "copy", ("--from=x",), ("a", "b"))
    assert parsed.child.original == "COPY --from=x a b"
    assert (parsed.child.start_line, parsed.child.end_line) == (2, 2)
    assert dumped("ONBUILD COPY --from=x a b") == '(onbuild (copy ["--from=x"] "a" "b"))'
    assert dumped("ONBUILD") == "(onbuild)"


@pytest.mark.parametrize(("line", "message"), [
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("ONBUILD onbuild", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
    ("ONBUILD maintainer me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("ONBUILD RUNN x", "unknown instruction: RUNN (did you mean RUN?)"),
    ("ONBUILD SHELL sh", "SHELL requires the arguments to be in JSON form"),
])
def test_forbidden_onbuild_triggers(line: str, message: str) -> None:
    assert error(line).message == message


def test_onbuild_chain_does_not_recurse() -> None:
    assert "Chaining" in error("ONBUILD " * 5000 + "RUN x").message


# --- flags ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "flags", "args"), [
    ("COPY --from=build /a /b", ("--from=build",), ("/a", "/b")),
    ("COPY --link --chmod=755 a b", ("--link", "--chmod=755"), ("a", "b")),
    ("COPY -- --weird b", (), ("--weird", "b")),
    ("COPY --x=1 -- --weird b", ("--x=1",), ("--weird", "b")),
    ("COPY --x -a b", ("--x",), ("-a", "b")),
    ('RUN --mount="type=bind,src=a b" echo', ("--mount=type=bind,src=a b",), ("echo",)),
    ("RUN --mount='a\\'' echo", ("--mount=a'",), ("echo",)),
    ("RUN --a=x\\ y echo", ("--a=x y",), ("echo",)),
    ("RUN --a=\"\" echo", ("--a=",), ("echo",)),
    ('RUN --"" echo', (), ("echo",)),  # `--` spelt with quotes still ends the flags
    ("RUN --network=none", ("--network=none",), ()),
    ("RUN --", (), ()),
    ("RUN -- ", (), ()),
    ("RUN --a\\", ("--a",), ()),  # a continuation at the end of the file
    ("RUN --a\\\\ x", ("--a\\",), ("x",)),
    ('CMD --doit=true -- [ "a" ]', ("--doit=true",), ("a",)),
    ("RUN echo --not-a-flag", (), ("echo --not-a-flag",)),
])
def test_flags(line: str, flags: tuple[str, ...], args: tuple[str, ...]) -> None:
    parsed = node(line)
    assert (parsed.flags, parsed.args) == (flags, args)


def test_non_ascii_flag_values_keep_their_text() -> None:
    # BuildKit would turn each byte into the Latin-1 rune of the same value ("jÃ¼rgen");
    # we keep what the user wrote so that the name resolves to the intended user.
    assert node("COPY --chown=jürgen a b").flags == ("--chown=jürgen",)
    assert dumped("COPY --chown=jürgen a b") == '(copy ["--chown=jürgen"] "a" "b")'


def test_dump_of_flags() -> None:
    assert dumped('COPY --a=1 --b="x y" c d') == '(copy ["--a=1" "--b=x y"] "c" "d")'
