"""From parsed `bucketbuild build` flags to one `BuildOptions` (and the CLI's own settings).

Every check that needs only the flags (and the local files they name) happens here, so a bad
command line fails with a `UsageError` before the build starts.
"""

from __future__ import annotations

import argparse
import logging
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.build.options import (
    BuildOptions,
    CacheOptions,
    Compression,
    ImageFormat,
    LogFormat,
    OutputOptions,
    RegistryOptions,
    SecretSource,
    SnapshotMode,
)
from core.build.url_policy import UrlPolicy
from core.errors import ImageError, UsageError
from core.flags.context import (
    check_sub_path,
    check_sub_path_exists,
    resolve_context,
    resolve_dockerfile,
)
from core.flags.table import rejection_message
from core.flags.values import (
    parse_build_args,
    parse_duration,
    parse_labels,
    parse_secret,
    parse_secret_build_args,
    parse_size,
    parse_verbosity,
)
from core.image.platform import parse_platform
from core.image.reference import parse_reference, parse_repository

#: valid --compression-level values per algorithm (-1 always means the default)
_LEVELS = MappingProxyType({"gzip": range(0, 10), "zstd": range(1, 23)})


@dataclass(frozen=True)
class BuildInvocation:
    """What `bucketbuild build` was asked: the build, and how to report on it."""

    options: BuildOptions
    log_level: int = logging.INFO
    log_format: LogFormat = "text"
    log_timestamp: bool = False
    warnings: tuple[str, ...] = ()


def invocation_from_args(args: argparse.Namespace, *, environ: Mapping[str, str], cwd: Path,
                         clock: Callable[[], float]) -> BuildInvocation:
    """Check and convert the flags; `clock` (time.monotonic) anchors `--timeout`."""
    rejected: list[str] | None = getattr(args, "rejected_flags", None)
    if rejected:
        raise UsageError(rejection_message(rejected[0]))
    if getattr(args, "skip_unused_stages", None) is False:
        raise UsageError("--skip-unused-stages=false is not supported: bucketbuild builds only "
                         "the stages the target needs, as BuildKit does")
    warnings: list[str] = []
    output = _output_options(args, cwd=cwd, warnings=warnings)
    options = BuildOptions(
        **_input_fields(args, environ=environ, cwd=cwd, warnings=warnings),
        **_layer_fields(args, environ=environ, warnings=warnings),
        **_runtime_fields(args, cwd=cwd, clock=clock),
        registry=_registry_options(args, cwd=cwd),
        cache=_cache_options(args, output=output, cwd=cwd, warnings=warnings),
        output=output,
    )
    log_format: LogFormat = "json" if args.log_format == "json" else "text"
    return BuildInvocation(
        options=options, log_level=parse_verbosity(args.verbosity or "info"),
        log_format=log_format, log_timestamp=bool(args.log_timestamp),
        warnings=tuple(warnings))


def _deprecated(args: argparse.Namespace, new: str, old: str, warnings: list[str]) -> Any:
    """The value of flag `new`, or of its deprecated camelCase spelling `old`."""
    value = getattr(args, new.lstrip("-").replace("-", "_"))
    old_value = getattr(args, f"{new.lstrip('-').replace('-', '_')}_deprecated")
    if old_value is None:
        return value
    warnings.append(f"{old} is deprecated; use {new}")
    return old_value if value is None else value


def _input_fields(args: argparse.Namespace, *, environ: Mapping[str, str], cwd: Path,
                  warnings: list[str]) -> dict[str, Any]:
    context = resolve_context(args.context or ".", cwd=cwd)
    sub_path = check_sub_path(args.context_sub_path or "")
    check_sub_path_exists(context, sub_path)
    platform = _deprecated(args, "--custom-platform", "--customPlatform", warnings)
    return {
        "context": context,
        "context_sub_path": sub_path,
        "dockerfile": resolve_dockerfile(args.dockerfile, context=context, sub_path=sub_path,
                                         cwd=cwd),
        **_build_arg_fields(args, environ),
        "target": args.target or None,
        "labels": parse_labels(args.label or ()),
        "platform": _platform(platform) if platform else None,
        "secrets": _secrets(args.secret or (), environ=environ, cwd=cwd),
        "add_urls": _add_urls(args),
    }


def _add_urls(args: argparse.Namespace) -> UrlPolicy:
    try:
        return UrlPolicy.parse(args.allow_url_host or (),
                               allow_private=args.allow_private_urls is not False)
    except ValueError as e:
        raise UsageError(f"--allow-url-host: {e}") from None


def _build_arg_fields(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """`build_args` and `secret_build_args` from --build-arg and --secret-build-arg."""
    build_args, secret = parse_secret_build_args(
        getattr(args, "secret_build_arg", None) or (),
        parse_build_args(args.build_arg or (), environ), environ)
    return {"build_args": build_args, "secret_build_args": secret}


def _platform(text: str) -> str:
    try:
        return str(parse_platform(text))
    except ImageError as e:
        raise UsageError(f"--custom-platform: {e}") from None


def _secrets(items: Any, *, environ: Mapping[str, str], cwd: Path) -> tuple[SecretSource, ...]:
    secrets = tuple(parse_secret(item, environ=environ, cwd=cwd) for item in items)
    ids = [s.id for s in secrets]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        raise UsageError(f"--secret: id {duplicate!r} given twice")
    return secrets


def _layer_fields(args: argparse.Namespace, *, environ: Mapping[str, str],
                  warnings: list[str]) -> dict[str, Any]:
    mode: SnapshotMode = _deprecated(args, "--snapshot-mode", "--snapshotMode", warnings) or "redo"
    return {
        "snapshot_mode": mode,
        "single_snapshot": bool(args.single_snapshot),
        "reproducible": bool(args.reproducible),
        "source_date_epoch": _source_date_epoch(environ),
        "ignore_paths": tuple(_ignore_path(p) for p in args.ignore_path or ()),
    }


def _source_date_epoch(environ: Mapping[str, str]) -> int | None:
    text = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH must be a number of seconds, got {text!r}")
    return int(text)


def _ignore_path(text: str) -> str:
    if not text.startswith("/"):
        raise UsageError(f"--ignore-path {text}: must be an absolute path in the image")
    return posixpath.normpath(text)


def _runtime_fields(args: argparse.Namespace, *, cwd: Path,
                    clock: Callable[[], float]) -> dict[str, Any]:
    timeout = parse_duration(args.timeout, flag="--timeout") if args.timeout else None
    return {
        "run_isolation": args.run_isolation or "auto",
        "work_dir": cwd / Path(args.work_dir).expanduser() if args.work_dir else None,
        "cleanup": args.cleanup is not False,
        "disk_budget": parse_size(args.disk_budget, flag="--disk-budget")
        if args.disk_budget else None,
        "deadline": clock() + timeout if timeout is not None else None,
    }


def _registry_options(args: argparse.Namespace, *, cwd: Path) -> RegistryOptions:
    retries = RegistryOptions().push_retry if args.push_retry is None else args.push_retry
    if retries < 0:
        raise UsageError(f"--push-retry: must be 0 or more, got {retries}")
    ca_bundle = cwd / Path(args.ca_bundle).expanduser() if args.ca_bundle else None
    if ca_bundle is not None and not ca_bundle.is_file():
        raise UsageError(f"--ca-bundle {args.ca_bundle}: no such file")
    return RegistryOptions(
        insecure=bool(args.insecure), insecure_pull=bool(args.insecure_pull),
        insecure_registries=tuple(args.insecure_registry or ()),
        skip_tls_verify=bool(args.skip_tls_verify),
        skip_tls_verify_pull=bool(args.skip_tls_verify_pull),
        skip_tls_verify_registries=tuple(args.skip_tls_verify_registry or ()),
        registry_mirrors=tuple(args.registry_mirror or ()),
        ca_bundle=ca_bundle, push_retry=retries)


def _output_options(args: argparse.Namespace, *, cwd: Path,
                    warnings: list[str]) -> OutputOptions:
    destinations = tuple(_destination(d) for d in args.destination or ())
    no_push = bool(args.no_push)
    if not destinations and not no_push:
        raise UsageError("give --destination, or --no-push to build without pushing")
    for flag in ("image_name_with_digest_file", "image_name_tag_with_digest_file"):
        if getattr(args, flag) and not destinations:
            raise UsageError(f"--{flag.replace('_', '-')} needs a --destination")
    image_format: ImageFormat = args.image_format or "docker"
    compression: Compression = args.compression or "gzip"
    if compression == "zstd" and image_format != "oci":
        raise UsageError("--compression zstd needs --image-format oci "
                         "(Docker manifests have no zstd layer type)")
    tar_path = _deprecated(args, "--tar-path", "--tarPath", warnings)

    def path(value: str | None) -> Path | None:
        return cwd / Path(value).expanduser() if value else None

    return OutputOptions(
        destinations=destinations, no_push=no_push, tar_path=path(tar_path),
        oci_layout_path=path(args.oci_layout_path), digest_file=path(args.digest_file),
        image_name_with_digest_file=path(args.image_name_with_digest_file),
        image_name_tag_with_digest_file=path(args.image_name_tag_with_digest_file),
        image_format=image_format, compression=compression,
        compression_level=_compression_level(args.compression_level, compression))


def _destination(text: str) -> str:
    try:
        parse_reference(text)
    except ImageError as e:
        raise UsageError(f"--destination: {e}") from None
    return text


def _compression_level(level: int | None, compression: Compression) -> int | None:
    if level is None or level == -1:
        return None
    allowed = _LEVELS[compression]
    if level not in allowed:
        raise UsageError(f"--compression-level {level}: {compression} levels are "
                         f"{allowed.start}-{allowed.stop - 1} (or -1 for the default)")
    return level


def _cache_options(args: argparse.Namespace, *, output: OutputOptions, cwd: Path,
                   warnings: list[str]) -> CacheOptions:
    enabled = bool(args.cache)
    repo = _cache_repo(args.cache_repo, cwd=cwd) if args.cache_repo else None
    if repo is not None and not enabled:
        warnings.append("--cache-repo has no effect without --cache")
    if enabled and repo is None:
        if output.no_push or not output.destinations:
            raise UsageError("--cache with --no-push needs --cache-repo")
        repo = f"{parse_reference(output.destinations[0]).context()}/cache"
    ttl = parse_duration(args.cache_ttl, flag="--cache-ttl") if args.cache_ttl else None
    return CacheOptions(
        enabled=enabled, repo=repo,
        ttl_seconds=max(1, round(ttl)) if ttl is not None else CacheOptions().ttl_seconds,
        run_layers=args.cache_run_layers is not False,
        copy_layers=args.cache_copy_layers is not False,
        **_base_cache_fields(args, cwd=cwd, warnings=warnings))


def _base_cache_fields(args: argparse.Namespace, *, cwd: Path,
                       warnings: list[str]) -> dict[str, Any]:
    """--base-cache DIR and --base-cache-budget SIZE (independent of --cache)."""
    fields: dict[str, Any] = {}
    if args.base_cache_budget:
        fields["base_budget"] = parse_size(args.base_cache_budget, flag="--base-cache-budget")
        if not args.base_cache:
            warnings.append("--base-cache-budget has no effect without --base-cache")
    if args.base_cache:
        directory = cwd / Path(args.base_cache).expanduser()
        if directory.exists() and not directory.is_dir():
            raise UsageError(f"--base-cache {args.base_cache}: not a directory")
        fields["base_dir"] = directory
    return fields


def _cache_repo(text: str, *, cwd: Path) -> str:
    if text.startswith("oci:"):
        if not text[4:]:
            raise UsageError("--cache-repo oci:DIR: the directory is missing")
        return f"oci:{cwd / Path(text[4:]).expanduser()}"
    try:
        parse_repository(text)
    except ImageError as e:
        raise UsageError(f"--cache-repo: {e}") from None
    return text
