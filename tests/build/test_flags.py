"""kaniko executor flags -> `BuildOptions`: every flag, its default, and its bad values."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from core.build.options import BuildOptions, SecretSource
from core.errors import UsageError
from core.flags import REJECTED_FLAGS, BuildInvocation, add_build_flags, invocation_from_args
from core.flags.values import TRACE, parse_bool, parse_duration, parse_size

CLOCK = 1000.0


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a Dockerfile, a sub-context `app/` and a secret file."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile.app").write_text("FROM scratch\n")
    (tmp_path / "npmrc").write_text("token\n")
    (tmp_path / "ctx.tar").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(cwd: Path, *argv: str, environ: Mapping[str, str] | None = None) -> BuildInvocation:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    add_build_flags(parser)
    args = parser.parse_args(list(argv))
    return invocation_from_args(args, environ=environ or {}, cwd=cwd, clock=lambda: CLOCK)


def build(cwd: Path, *argv: str, environ: Mapping[str, str] | None = None) -> BuildOptions:
    return invoke(cwd, *argv, environ=environ).options


def usage_error(cwd: Path, *argv: str, environ: Mapping[str, str] | None = None) -> str:
    with pytest.raises(UsageError) as info:
        invoke(cwd, *argv, environ=environ)
    assert info.value.exit_code == 2
    return str(info.value)


def test_defaults(cwd: Path) -> None:
    got = invoke(cwd, "--no-push")
    o = got.options
    assert o.context == str(cwd.resolve())
    assert (o.dockerfile, o.context_sub_path, o.target, o.platform) == ("Dockerfile", "", None,
                                                                       None)
    assert (o.snapshot_mode, o.single_snapshot, o.reproducible) == ("redo", False, False)
    assert (o.run_isolation, o.work_dir, o.cleanup, o.disk_budget, o.deadline) == (
        "auto", None, True, None, None)
    assert o.output.destinations == () and o.output.no_push
    assert (o.output.image_format, o.output.compression, o.output.compression_level) == (
        "docker", "gzip", None)
    assert o.registry.push_retry == 3 and not o.registry.insecure
    assert not o.cache.enabled and o.cache.ttl_seconds == 14 * 24 * 3600
    assert o.cache.run_layers and o.cache.copy_layers
    assert (got.log_level, got.log_format, got.log_timestamp, got.warnings) == (
        logging.INFO, "text", False, ())


Getter = Callable[[BuildOptions], Any]

FIELD_CASES: list[tuple[list[str], Getter, Any]] = [
    (["--target", "builder"], lambda o: o.target, "builder"),
    (["--label", "a=1", "--label", "b=x=y", "--label", "a=2", "--label", "e="],
     lambda o: dict(o.labels), {"a": "2", "b": "x=y", "e": ""}),
    (["--custom-platform", "linux/arm64"], lambda o: o.platform, "linux/arm64/v8"),
    (["--custom-platform=linux/amd64"], lambda o: o.platform, "linux/amd64"),
    (["--snapshot-mode", "full"], lambda o: o.snapshot_mode, "full"),
    (["--snapshot-mode=time"], lambda o: o.snapshot_mode, "time"),
    (["--single-snapshot"], lambda o: o.single_snapshot, True),
    (["--reproducible"], lambda o: o.reproducible, True),
    (["--ignore-path", "/var/cache/", "--ignore-path=/tmp/x/../y"], lambda o: o.ignore_paths,
     ("/var/cache", "/tmp/y")),
    (["--compression", "zstd", "--image-format", "oci"],
     lambda o: (o.output.compression, o.output.image_format), ("zstd", "oci")),
    (["--compression-level", "9"], lambda o: o.output.compression_level, 9),
    (["--compression-level=-1"], lambda o: o.output.compression_level, None),
    (["--compression=zstd", "--image-format=oci", "--compression-level=19"],
     lambda o: o.output.compression_level, 19),
    (["--image-format", "oci"], lambda o: o.output.image_format, "oci"),
    (["--run-isolation", "proot"], lambda o: o.run_isolation, "proot"),
    (["--cleanup=false"], lambda o: o.cleanup, False),
    (["--cleanup"], lambda o: o.cleanup, True),
    (["--disk-budget", "2G"], lambda o: o.disk_budget, 2 << 30),
    (["--timeout", "15m"], lambda o: o.deadline, CLOCK + 900),
    (["--insecure"], lambda o: o.registry.insecure, True),
    (["--insecure-pull"], lambda o: o.registry.insecure_pull, True),
    (["--insecure-registry", "a:5000", "--insecure-registry", "b"],
     lambda o: o.registry.insecure_registries, ("a:5000", "b")),
    (["--skip-tls-verify"], lambda o: o.registry.skip_tls_verify, True),
    (["--skip-tls-verify-pull"], lambda o: o.registry.skip_tls_verify_pull, True),
    (["--skip-tls-verify-registry=r1", "--skip-tls-verify-registry", "r2"],
     lambda o: o.registry.skip_tls_verify_registries, ("r1", "r2")),
    (["--registry-mirror", "mirror.gcr.io", "--registry-mirror", "m2/path"],
     lambda o: o.registry.registry_mirrors, ("mirror.gcr.io", "m2/path")),
    (["--push-retry", "0"], lambda o: o.registry.push_retry, 0),
    (["--push-retry=7"], lambda o: o.registry.push_retry, 7),
    (["--cache-repo", "oci:cache", "--cache"], lambda o: o.cache.repo, "oci:{cwd}/cache"),
    (["--cache-repo", "reg:5000/proj/cache", "--cache=true"],
     lambda o: (o.cache.enabled, o.cache.repo), (True, "reg:5000/proj/cache")),
    (["--cache-ttl", "6h"], lambda o: o.cache.ttl_seconds, 6 * 3600),
    (["--cache-ttl=1h30m"], lambda o: o.cache.ttl_seconds, 5400),
    (["--cache-run-layers=false"], lambda o: o.cache.run_layers, False),
    (["--cache-copy-layers=false"], lambda o: o.cache.copy_layers, False),
    (["--cache-copy-layers"], lambda o: o.cache.copy_layers, True),
    (["--skip-unused-stages"], lambda o: o.target, None),
    (["--skip-unused-stages=true"], lambda o: o.target, None),
]


@pytest.mark.parametrize(("argv", "getter", "expected"), FIELD_CASES,
                         ids=[" ".join(c[0]) for c in FIELD_CASES])
def test_flag_sets_field(cwd: Path, argv: list[str], getter: Getter, expected: Any) -> None:
    if isinstance(expected, str):
        expected = expected.format(cwd=cwd)
    assert getter(build(cwd, "--no-push", *argv)) == expected


def test_context_forms(cwd: Path) -> None:
    assert build(cwd, "--no-push", "-c", "app", "-f", "Dockerfile.app").context == str(
        cwd / "app")
    assert build(cwd, "--no-push", "--context=dir://app", "-f", "Dockerfile.app").context == \
        str(cwd / "app")
    assert build(cwd, "--no-push", "-c", "tar://ctx.tar").context == f"tar://{cwd}/ctx.tar"
    assert build(cwd, "--no-push", "-c", "s3://bucket/dir/ctx.tgz").context == \
        "s3://bucket/dir/ctx.tgz"
    assert build(cwd, "--no-push", "-c", "gs://bucket/ctx.tar.gz").context == \
        "gs://bucket/ctx.tar.gz"


@pytest.mark.parametrize(("value", "message"), [
    ("missing", "not a directory"),
    ("ctx.tar", "use tar://FILE"),
    ("tar://nope.tar", "is not a file"),
    ("s3://bucket", "s3://BUCKET/OBJECT"),
    ("git://github.com/x/y", "git contexts are not supported"),
    ("https://example.com/ctx.tar", "unsupported context type https://"),
])
def test_bad_context(cwd: Path, value: str, message: str) -> None:
    assert message in usage_error(cwd, "--no-push", "--context", value)


def test_context_sub_path(cwd: Path) -> None:
    o = build(cwd, "--no-push", "--context-sub-path", "/app/", "-f", "Dockerfile.app")
    assert (o.context_sub_path, o.dockerfile) == ("app", "Dockerfile.app")
    assert build(cwd, "--no-push", "-c", "s3://b/k", "--context-sub-path", "x/y"
                 ).context_sub_path == "x/y"
    assert "inside the context" in usage_error(cwd, "--no-push", "--context-sub-path", "../x")
    assert "no such directory" in usage_error(cwd, "--no-push", "--context-sub-path", "nope")


def test_dockerfile_resolution(cwd: Path) -> None:
    # relative to the context first
    assert build(cwd, "--no-push", "-c", "app", "-f", "Dockerfile.app").dockerfile == \
        "Dockerfile.app"
    # then relative to the current directory (kaniko and docker compatible), made absolute
    assert build(cwd, "--no-push", "-c", "app", "--dockerfile", "Dockerfile").dockerfile == \
        str(cwd / "Dockerfile")
    absolute = str(cwd / "app" / "Dockerfile.app")
    assert build(cwd, "--no-push", "-f", absolute).dockerfile == absolute
    # archives and buckets: a relative path names a file inside the context
    assert build(cwd, "--no-push", "-c", "s3://b/k", "-f", "sub/Dockerfile").dockerfile == \
        "sub/Dockerfile"
    assert "not found in the context" in usage_error(cwd, "--no-push", "-f", "Nope")
    assert "no such file" in usage_error(cwd, "--no-push", "-f", str(cwd / "nope"))
    assert "URLs are not supported" in usage_error(cwd, "--no-push", "-f", "https://x/Df")


def test_destinations_repeat_and_validate(cwd: Path) -> None:
    o = build(cwd, "-d", "reg:5000/a/b:1", "--destination", "busybox", "--destination=x/y:z")
    assert o.output.destinations == ("reg:5000/a/b:1", "busybox", "x/y:z")
    assert not o.output.no_push
    assert "--destination" in usage_error(cwd, "-d", "Not A Ref")


def test_push_needs_destination_or_no_push(cwd: Path) -> None:
    assert "--no-push" in usage_error(cwd)
    assert "--no-push" in usage_error(cwd, "--no-push=false")
    assert build(cwd, "--no-push=true").output.no_push


def test_output_files_resolve_against_cwd(cwd: Path) -> None:
    o = build(cwd, "-d", "r/a:1", "--tar-path", "out/img.tar", "--oci-layout-path", "oci",
              "--digest-file", "/abs/digest", "--image-name-with-digest-file", "names",
              "--image-name-tag-with-digest-file", "tags").output
    assert o.tar_path == cwd / "out/img.tar" and o.oci_layout_path == cwd / "oci"
    assert o.digest_file == Path("/abs/digest")
    assert (o.image_name_with_digest_file, o.image_name_tag_with_digest_file) == (
        cwd / "names", cwd / "tags")


@pytest.mark.parametrize("flag", ["--image-name-with-digest-file",
                                  "--image-name-tag-with-digest-file"])
def test_name_digest_files_need_destination(cwd: Path, flag: str) -> None:
    assert "needs a --destination" in usage_error(cwd, "--no-push", flag, "f")


def test_build_args(cwd: Path) -> None:
    environ = {"FROM_ENV": "env value", "EMPTY": ""}
    o = build(cwd, "--no-push", "--build-arg", "A=1", "--build-arg=B=x=y", "--build-arg",
              "FROM_ENV", "--build-arg", "UNSET", "--build-arg", "EMPTY", "--build-arg", "A=2",
              "--build-arg", "C=", environ=environ)
    assert dict(o.build_args) == {"A": "2", "B": "x=y", "FROM_ENV": "env value", "EMPTY": "",
                                  "C": ""}
    assert "invalid argument name" in usage_error(cwd, "--no-push", "--build-arg", "=v")
    assert "invalid argument name" in usage_error(cwd, "--no-push", "--build-arg", "A B=1")


def test_labels_need_a_key(cwd: Path) -> None:
    assert "KEY=VALUE" in usage_error(cwd, "--no-push", "--label", "novalue")
    assert "KEY=VALUE" in usage_error(cwd, "--no-push", "--label", "=v")


def test_secrets(cwd: Path) -> None:
    o = build(cwd, "--no-push", "--secret", "id=npm,src=npmrc", "--secret", "id=tok,env=TOKEN",
              "--secret", "id=AWS_KEY", "--secret", "type=env,id=x,src=VAR",
              "--secret", "id=f,type=file,source=npmrc", environ={"AWS_KEY": "k"})
    assert o.secrets == (
        SecretSource("npm", path=cwd / "npmrc"), SecretSource("tok", env="TOKEN"),
        SecretSource("AWS_KEY", env="AWS_KEY"), SecretSource("x", env="VAR"),
        SecretSource("f", path=cwd / "npmrc"))


@pytest.mark.parametrize(("value", "message"), [
    ("src=npmrc", "expected id=ID"),
    ("id=a,src=npmrc,env=X", "expected id=ID"),
    ("id=a,type=ssh,src=npmrc", "expected id=ID"),
    ("id=a,bogus=1", "expected id=ID"),
    ("id=a,id=b", "comma-separated"),
    ("id", "comma-separated"),
    ("id=a,src=missing", "not a readable file"),
    ("id=NOT_SET", "give src=FILE or env=VAR"),
])
def test_bad_secrets(cwd: Path, value: str, message: str) -> None:
    assert message in usage_error(cwd, "--no-push", "--secret", value)


def test_duplicate_secret_ids(cwd: Path) -> None:
    assert "given twice" in usage_error(cwd, "--no-push", "--secret", "id=a,env=X",
                                        "--secret", "id=a,src=npmrc")


def test_source_date_epoch(cwd: Path) -> None:
    assert build(cwd, "--no-push", environ={"SOURCE_DATE_EPOCH": "1700000000"}
                 ).source_date_epoch == 1700000000
    assert "SOURCE_DATE_EPOCH" in usage_error(cwd, "--no-push",
                                              environ={"SOURCE_DATE_EPOCH": "yesterday"})


def test_work_dir_and_ca_bundle_paths(cwd: Path) -> None:
    o = build(cwd, "--no-push", "--work-dir", "wd", "--ca-bundle", "npmrc")
    assert o.work_dir == cwd / "wd" and o.registry.ca_bundle == cwd / "npmrc"
    assert "no such file" in usage_error(cwd, "--no-push", "--ca-bundle", "missing.pem")


@pytest.mark.parametrize(("argv", "message"), [
    (["--compression", "zstd"], "needs --image-format oci"),
    (["--compression", "zstd", "--image-format", "docker"], "needs --image-format oci"),
    (["--compression-level", "10"], "gzip levels are 0-9"),
    (["--compression", "zstd", "--image-format", "oci", "--compression-level", "0"],
     "zstd levels are 1-22"),
    (["--custom-platform", "linux"], "invalid platform"),
    (["--ignore-path", "var/cache"], "absolute path"),
    (["--push-retry", "-1"], "0 or more"),
    (["--disk-budget", "lots"], "invalid size"),
    (["--disk-budget", "0"], "must be positive"),
    (["--timeout", "15"], "invalid duration"),
    (["--timeout", "0"], "must be positive"),
    (["--cache-ttl", "2d"], "invalid duration"),
    (["--cache"], "needs --cache-repo"),
    (["--cache-repo", "oci:", "--cache"], "directory is missing"),
    (["--cache-repo", "reg/repo:tag", "--cache"], "must not have a tag"),
    (["--skip-unused-stages=false"], "not supported"),
])
def test_bad_values(cwd: Path, argv: list[str], message: str) -> None:
    assert message in usage_error(cwd, "--no-push", *argv)


def test_cache_repo_inferred_from_destination(cwd: Path) -> None:
    cache = build(cwd, "-d", "reg:5000/team/app:v1", "--cache").cache
    assert (cache.enabled, cache.repo) == (True, "reg:5000/team/app/cache")


def test_cache_repo_without_cache_warns(cwd: Path) -> None:
    got = invoke(cwd, "--no-push", "--cache-repo", "reg/cache")
    assert not got.options.cache.enabled
    assert got.warnings == ("--cache-repo has no effect without --cache",)


@pytest.mark.parametrize(("old", "new", "getter", "value"), [
    ("--snapshotMode", "--snapshot-mode", lambda o: o.snapshot_mode, "time"),
    ("--customPlatform", "--custom-platform", lambda o: o.platform, "linux/386"),
    ("--tarPath", "--tar-path", lambda o: o.output.tar_path, "img.tar"),
])
def test_deprecated_spellings(cwd: Path, old: str, new: str, getter: Getter,
                              value: str) -> None:
    got = invoke(cwd, "--no-push", old, value)
    expected: Any = cwd / value if new == "--tar-path" else value
    assert getter(got.options) == expected
    assert got.warnings == (f"{old} is deprecated; use {new}",)


@pytest.mark.parametrize(("argv", "level"), [
    (["--verbosity", "panic"], logging.CRITICAL), (["-v", "fatal"], logging.CRITICAL),
    (["-v", "error"], logging.ERROR), (["-v", "warn"], logging.WARNING),
    (["-v", "INFO"], logging.INFO), (["--verbosity=debug"], logging.DEBUG),
    (["-v", "trace"], TRACE),
])
def test_verbosity(cwd: Path, argv: list[str], level: int) -> None:
    assert invoke(cwd, "--no-push", *argv).log_level == level


@pytest.mark.parametrize(("argv", "fmt", "stamp"), [
    (["--log-format", "text"], "text", False), (["--log-format=color"], "text", False),
    (["--log-format", "json"], "json", False), (["--log-timestamp"], "text", True),
    (["--log-timestamp=false"], "text", False),
])
def test_log_format(cwd: Path, argv: list[str], fmt: str, stamp: bool) -> None:
    got = invoke(cwd, "--no-push", *argv)
    assert (got.log_format, got.log_timestamp) == (fmt, stamp)


@pytest.mark.parametrize(("spelling", "value"), [
    ("", True), ("=true", True), ("=True", True), ("=TRUE", True), ("=1", True), ("=t", True),
    ("=false", False), ("=False", False), ("=0", False), ("=f", False), ("=F", False),
])
def test_go_style_booleans(cwd: Path, spelling: str, value: bool) -> None:
    o = build(cwd, "--no-push", f"--reproducible{spelling}", f"--cache{spelling}",
              "--cache-repo", "r/c")
    assert (o.reproducible, o.cache.enabled) == (value, value)


@pytest.mark.parametrize("argv", [
    ["--no-push", "--reproducible=yes"], ["--no-push", "--cache=maybe"],
    ["--no-push", "--snapshot-mode", "nope"], ["--no-push", "--compression", "brotli"],
    ["--no-push", "--run-isolation", "docker"], ["--no-push", "--image-format", "v1"],
    ["--no-push", "-v", "loud"], ["--no-push", "--log-format", "xml"],
    ["--no-push", "--push-retry", "many"], ["--no-push", "--compression-level", "high"],
    ["--no-push", "--unknown-flag"], ["--no-push", "--dest", "x"],  # no abbreviations
])
def test_argparse_rejects(cwd: Path, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        invoke(cwd, *argv)
    assert info.value.code == 2


@pytest.mark.parametrize("name", [name for flag in REJECTED_FLAGS for name in flag.names])
def test_unimplemented_kaniko_flags_are_refused_by_name(cwd: Path, name: str) -> None:
    for argv in ([name], [f"{name}=value"] if name.startswith("--") else [name, "v"],
                 [name, "value"]):
        message = usage_error(cwd, "--no-push", *argv)
        assert message.startswith(f"{name} is a kaniko flag bucketbuild does not implement")


def test_refusal_hints() -> None:
    from core.flags import rejection_message

    assert rejection_message("--git") == (
        "--git is a kaniko flag bucketbuild does not implement "
        "(clone the repository and pass --context DIR)")
    assert rejection_message("--use-new-run") == (
        "--use-new-run is a kaniko flag bucketbuild does not implement")


@pytest.mark.parametrize(("text", "seconds"), [
    ("336h", 336 * 3600.0), ("1h30m", 5400.0), ("90s", 90.0), ("1.5h", 5400.0),
    ("300ms", 0.3), ("2h45m0s", 9900.0), ("1m0.5s", 60.5), (".5s", 0.5), ("10us", 1e-5),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, flag="--x") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "0", "15", "h", "1d", "1h 30m", "-5m", "1.h2", "5 s"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text, flag="--x")


@pytest.mark.parametrize(("text", "size"), [
    ("1048576", 1 << 20), ("2G", 2 << 30), ("2g", 2 << 30), ("512M", 512 << 20),
    ("512MB", 512 << 20), ("1.5GiB", 3 << 29), ("10k", 10240), ("1T", 1 << 40),
    ("100b", 100), ("4Gi", 4 << 30),
])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text, flag="--x") == size


@pytest.mark.parametrize("text", ["", "G", "2X", "-1G", "0", "1.2.3G"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text, flag="--x")


def test_parse_bool_matches_go() -> None:
    assert [parse_bool(t) for t in ("1", "t", "T", "true", "TRUE", "True")] == [True] * 6
    assert [parse_bool(t) for t in ("0", "f", "F", "false", "FALSE", "False")] == [False] * 6
    with pytest.raises(ValueError):
        parse_bool("yes")
