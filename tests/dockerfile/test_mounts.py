"""RUN --mount values: CSV syntax, aliases, per-type defaults and validation errors."""

from __future__ import annotations

import pytest

from core.dockerfile.mounts import Mount, parse_mount, split_csv
from core.errors import DockerfileError


def error_of(spec: str) -> str:
    with pytest.raises(DockerfileError) as caught:
        parse_mount(spec)
    return caught.value.message


# --- CSV syntax -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "fields"), [
    ("a,b,c", ["a", "b", "c"]),
    ("a=1", ["a=1"]),
    ('"a,b",c', ["a,b", "c"]),
    ('"target=/a,b",type=bind', ["target=/a,b", "type=bind"]),
    ('a,"x""y"', ["a", 'x"y']),
    ('""', [""]),
    ("a,,b", ["a", "", "b"]),
    ("a,b,", ["a", "b", ""]),
    (",a", ["", "a"]),
    ("  a, b", ["  a", " b"]),
    ("a,b\n", ["a", "b"]),
    ('"a",b,"c"', ["a", "b", "c"]),
    ('"a,b",', ["a,b", ""]),
])
def test_split_csv(text: str, fields: list[str]) -> None:
    assert split_csv(text, what="mounts") == fields


@pytest.mark.parametrize(("text", "message"), [
    ("", "failed to parse csv mounts: empty value"),
    ('a"b', 'failed to parse csv mounts: bare " in non-quoted field (column 2)'),
    ('foo,aa"bb,cc', 'failed to parse csv mounts: bare " in non-quoted field (column 7)'),
    ('"abc', 'failed to parse csv mounts: missing closing " in quoted field'),
    ('"a "word",b', 'failed to parse csv mounts: extraneous " in quoted field (column 4)'),
])
def test_split_csv_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        split_csv(text, what="mounts")
    assert caught.value.message == message


def test_quoted_value_with_comma() -> None:
    mount = parse_mount('type=bind,"target=/a,b",source=x')
    assert mount.target == "/a,b"
    assert mount.source == "x"


# --- types and defaults ---------------------------------------------------------------------


def test_bind_defaults() -> None:
    mount = parse_mount("target=/src")
    assert mount == Mount(type="bind", target="/src", readonly=True, spec="target=/src")
    assert not mount.readwrite
    assert mount.sharing is None
    assert not mount.needs_expansion


def test_bind_full() -> None:
    mount = parse_mount("type=bind,from=builder,source=/out,target=/in,rw")
    assert (mount.type, mount.from_, mount.source, mount.target) == (
        "bind", "builder", "/out", "/in")
    assert mount.readonly is False
    assert mount.readwrite


def test_cache_defaults() -> None:
    mount = parse_mount("type=cache,target=/root/.cache")
    assert mount.type == "cache"
    assert mount.readonly is False
    assert mount.sharing == "shared"
    assert mount.id == ""
    assert (mount.mode, mount.uid, mount.gid) == (None, None, None)


def test_cache_full() -> None:
    mount = parse_mount(
        "type=cache,id=go,target=/go,sharing=LOCKED,mode=0700,uid=1000,gid=100,from=base,"
        "source=/c,ro")
    assert mount.id == "go"
    assert mount.sharing == "locked"
    assert mount.mode == 0o700
    assert (mount.uid, mount.gid) == (1000, 100)
    assert mount.from_ == "base"
    assert mount.source == "/c"
    assert mount.readonly is True


@pytest.mark.parametrize("sharing", ["shared", "private", "locked"])
def test_cache_sharing_values(sharing: str) -> None:
    assert parse_mount(f"type=cache,target=/c,sharing={sharing}").sharing == sharing


def test_tmpfs_defaults_and_size() -> None:
    mount = parse_mount("type=tmpfs,target=/tmp")
    assert (mount.type, mount.readonly, mount.size) == ("tmpfs", False, 0)
    assert parse_mount("type=tmpfs,target=/t,size=64m").size == 64 * 1024 * 1024
    assert parse_mount("type=tmpfs,target=/t,size=1.5GiB").size == 3 * 1024 ** 3 // 2
    assert parse_mount("type=tmpfs,target=/t,size=100").size == 100
    assert parse_mount("type=tmpfs,target=/t,size=2 kb").size == 2048


def test_secret_defaults() -> None:
    mount = parse_mount("type=secret,id=npmrc")
    assert mount.type == "secret"
    assert mount.readonly is True
    assert mount.id == "npmrc"
    assert mount.target == "/run/secrets/npmrc"
    assert mount.required is False
    assert mount.env is None


def test_secret_id_from_source_or_target() -> None:
    assert parse_mount("type=secret,source=aws").id == "aws"
    assert parse_mount("type=secret,source=aws").target == "/run/secrets/aws"
    from_target = parse_mount("type=secret,target=/root/.npmrc")
    assert (from_target.id, from_target.target) == (".npmrc", "/root/.npmrc")


def test_secret_env_and_required() -> None:
    mount = parse_mount("type=secret,id=tok,env=TOKEN,required")
    assert mount.env == "TOKEN"
    assert mount.target == ""  # exposed as a variable only
    assert mount.required is True
    assert parse_mount("type=secret,id=t,required=false").required is False
    both = parse_mount("type=secret,id=t,env=T,target=/t")
    assert (both.env, both.target) == ("T", "/t")


def test_secret_file_info() -> None:
    mount = parse_mount("type=secret,id=a,mode=0440,uid=1,gid=2")
    assert (mount.mode, mount.uid, mount.gid) == (0o440, 1, 2)


def test_ssh_defaults() -> None:
    mount = parse_mount("type=ssh")
    assert (mount.type, mount.id, mount.readonly, mount.required) == ("ssh", "default", True, False)
    custom = parse_mount("type=ssh,id=github,target=/agent,required=true,mode=0600")
    assert (custom.id, custom.target, custom.required, custom.mode) == (
        "github", "/agent", True, 0o600)


# --- aliases and case -----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["target", "dst", "destination", "TARGET", "Dst"])
def test_target_aliases(key: str) -> None:
    assert parse_mount(f"{key}=/x").target == "/x"


@pytest.mark.parametrize("key", ["source", "src", "SRC"])
def test_source_aliases(key: str) -> None:
    assert parse_mount(f"target=/x,{key}=/y").source == "/y"


@pytest.mark.parametrize(("field", "readonly"), [
    ("ro", True), ("readonly", True), ("rw", False), ("readwrite", False),
    ("ro=true", True), ("ro=false", False), ("readonly=1", True), ("readonly=F", False),
    ("rw=true", False), ("rw=FALSE", True), ("readwrite=t", False), ("RW", False),
])
def test_readonly_aliases(field: str, readonly: bool) -> None:
    assert parse_mount(f"type=cache,target=/x,{field}").readonly is readonly


def test_type_is_case_insensitive() -> None:
    assert parse_mount("type=CACHE,target=/c").type == "cache"


def test_last_readonly_wins() -> None:
    assert parse_mount("target=/x,ro,rw").readonly is False


def test_spec_is_kept() -> None:
    spec = "type=cache,target=/c"
    assert parse_mount(spec).spec == spec


# --- variables ------------------------------------------------------------------------------


def test_variables_are_kept_raw() -> None:
    mount = parse_mount("type=cache,target=$HOME/.cache,id=${TARGETPLATFORM}")
    assert mount.target == "$HOME/.cache"
    assert mount.id == "${TARGETPLATFORM}"
    assert mount.needs_expansion


def test_typed_values_with_variables_are_deferred() -> None:
    mount = parse_mount("type=cache,target=/c,uid=$UID,sharing=${S}")
    assert mount.needs_expansion
    assert mount.uid is None
    assert mount.sharing == "shared"


def test_deferred_type_skips_type_checks() -> None:
    mount = parse_mount("type=$T,target=/c,required,size=1m,uid=1")
    assert mount.needs_expansion
    assert (mount.uid, mount.size, mount.required) == (1, 1048576, True)


def test_trailing_dollar_is_not_a_variable() -> None:
    mount = parse_mount("target=/a$")
    assert not mount.needs_expansion
    assert parse_mount("from=stage$,target=/x").from_ == "stage$"


def test_expand_is_applied_to_values() -> None:
    env = {"UID": "1000", "T": "cache", "DIR": "/cache"}

    def expand(word: str) -> str:
        for name, value in env.items():
            word = word.replace("$" + name, value)
        return word

    mount = parse_mount("type=$T,target=$DIR,uid=$UID", expand=expand)
    assert (mount.type, mount.target, mount.uid) == ("cache", "/cache", 1000)
    assert not mount.needs_expansion
    with pytest.raises(DockerfileError, match="uid not allowed"):
        parse_mount("type=bind,target=/x,uid=$UID", expand=expand)


def test_from_does_not_support_variables() -> None:
    assert error_of("from=$STAGE,target=/x") == (
        "'from' doesn't support variable expansion, define alias stage instead")


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "message"), [
    ("type=foo", 'unsupported mount type "foo"'),
    ("type=cahce,target=/x", 'unsupported mount type "cahce" (did you mean cache?)'),
    ("type=cache,target=/x,sharing=everyone", 'unsupported sharing value "everyone"'),
    ("type=cache,target=/x,sharing=privte",
     'unsupported sharing value "privte" (did you mean private?)'),
    ("target=/x,foo=bar", "unexpected key 'foo' in 'foo=bar'"),
    ("target=/x,tagret=/y", "unexpected key 'tagret' in 'tagret=/y' (did you mean target?)"),
    ("target=/x,foo", "invalid field 'foo' must be a key=value pair"),
    ("target=/x,required", "unexpected key 'required' for mount type 'bind'"),
    ("type=cache,target=/x,required=true", "unexpected key 'required' for mount type 'cache'"),
    ("required,type=secret,id=x", "unexpected key 'required' for mount type 'bind'"),
    ("type=cache,target=/x,size=10m", "unexpected key 'size' for mount type 'cache'"),
    ("type=tmpfs,target=/x,size=lots", "invalid value for size: lots"),
    ("type=tmpfs,target=/x,size=1.2.3m", "invalid value for size: 1.2.3m"),
    ("target=/x,ro=maybe", "invalid value for ro: maybe"),
    ("target=/x,readwrite=yes", "invalid value for readwrite: yes"),
    ("type=secret,id=a,required=2", "invalid value for required: 2"),
    ("type=cache,target=/x,mode=0800", "invalid value 0800 for mode"),
    ("type=cache,target=/x,mode=0o755", "invalid value 0o755 for mode"),
    ("type=cache,target=/x,uid=-1", "invalid value -1 for uid"),
    ("type=cache,target=/x,gid=abc", "invalid value abc for gid"),
    ("type=cache,target=/x,uid=4294967296", "invalid value 4294967296 for uid"),
    ("type=bind,target=/x,mode=0755", 'mode not allowed for "bind" type mounts'),
    ("type=tmpfs,target=/x,uid=0", 'uid not allowed for "tmpfs" type mounts'),
    ("type=bind,target=/x,gid=0", 'gid not allowed for "bind" type mounts'),
    ("type=secret,id=a,from=stage", "secret mount should not have a from"),
    ("type=secret,id=a,sharing=locked", "secret mount should not define sharing"),
    ("type=secret", "invalid secret mount. one of source, target required"),
    ("type=secret,source=a,id=b", "both source and id can't be set"),
    ("type=bind,target=/x,sharing=shared", "invalid cache sharing set for bind mount"),
    ("type=tmpfs,target=/x,sharing=private", "invalid cache sharing set for tmpfs mount"),
    ('target="/x"', 'failed to parse csv mounts: bare " in non-quoted field (column 8)'),
])
def test_errors(spec: str, message: str) -> None:
    assert error_of(spec) == message


def test_deferred_unknown_key_is_still_an_error() -> None:
    assert error_of("target=/x,bogus=$X") == "unexpected key 'bogus' in 'bogus=$X'"


def test_uid_max() -> None:
    assert parse_mount("type=cache,target=/x,uid=4294967295").uid == 4294967295
