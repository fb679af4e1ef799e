"""The `bucketbuild build` flag table: kaniko executor's flags, with kaniko's names and meanings,
plus bucketbuild's own. Kaniko flags we do not implement are registered too, so that they are
rejected by name instead of failing as unknown (or, worse, being ignored).

Flags that are not given stay `None` in the namespace, so the conversion can tell "not given"
from "given the default value".
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.flags.values import VERBOSITY_LEVELS, parse_bool

ISOLATIONS = ("auto", "chroot", "userns", "proot", "fakechroot", "none")
SNAPSHOT_MODES = ("redo", "full", "time")


@dataclass(frozen=True)
class RejectedFlag:
    """A kaniko flag bucketbuild does not implement, and what to do instead."""

    names: tuple[str, ...]
    hint: str = ""


REJECTED_FLAGS: tuple[RejectedFlag, ...] = (
    RejectedFlag(("--bucket", "-b"), "use --context gs://BUCKET/OBJECT"),
    RejectedFlag(("--cache-dir",), "use --base-cache DIR to keep pulled base layers; kaniko "
                                   "warmer directories are not read"),
    RejectedFlag(("--compressed-caching",)),
    RejectedFlag(("--credential-helpers",), "registry credentials come from the docker config, "
                                            "ECR and Google automatically"),
    RejectedFlag(("--dryrun",)),
    RejectedFlag(("--force",), "bucketbuild never builds in / and needs no --force; drop it"),
    RejectedFlag(("--force-build-metadata",)),
    RejectedFlag(("--git",), "clone the repository and pass --context DIR"),
    RejectedFlag(("--ignore-var-run", "--whitelist-var-run"),
                 "RUN steps never see the builder's /var/run; use --ignore-path for others"),
    RejectedFlag(("--image-download-retry",), "registry requests are always retried"),
    RejectedFlag(("--image-fs-extract-retry",)),
    RejectedFlag(("--kaniko-dir",), "use --work-dir"),
    RejectedFlag(("--materialize",)),
    RejectedFlag(("--no-push-cache",)),
    RejectedFlag(("--pre-cleanup",)),
    RejectedFlag(("--preserve-context",)),
    RejectedFlag(("--push-ignore-immutable-tag-errors",)),
    RejectedFlag(("--registry-certificate",),
                 "use --ca-bundle FILE, one CA bundle trusted for every registry"),
    RejectedFlag(("--registry-client-cert",)),
    RejectedFlag(("--registry-map",), "use --registry-mirror for docker.io"),
    RejectedFlag(("--skip-default-registry-fallback",)),
    RejectedFlag(("--skip-push-permission-check",), "bucketbuild does not pre-check push access"),
    RejectedFlag(("--use-new-run",)),
    RejectedFlag(("--annotation",)),
)


def rejection_message(flag: str) -> str:
    """`--git is a kaniko flag bucketbuild does not implement (...)`."""
    hint = next((r.hint for r in REJECTED_FLAGS if flag in r.names), "")
    text = f"{flag} is a kaniko flag bucketbuild does not implement"
    return f"{text} ({hint})" if hint else text


class _Rejected(argparse.Action):
    """Remember that a rejected flag was given; the conversion refuses it by name."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        seen: list[str] = list(getattr(namespace, self.dest, None) or [])
        seen.append(self.option_strings[0] if option_string is None else option_string)
        setattr(namespace, self.dest, seen)


def _bool_value(text: str) -> bool:
    try:
        return parse_bool(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_bool(group: argparse._ArgumentGroup, name: str, help_text: str) -> None:
    """A Go-style boolean: `--flag`, `--flag=true`, `--flag=false`."""
    group.add_argument(name, nargs="?", const=True, default=None, type=_bool_value,
                       metavar="BOOL", help=help_text)


def add_build_flags(parser: argparse.ArgumentParser) -> None:
    """Register every `bucketbuild build` flag (and the rejected kaniko ones) on `parser`."""
    _add_input_flags(parser.add_argument_group("input"))
    _add_output_flags(parser.add_argument_group("output"))
    _add_registry_flags(parser.add_argument_group("registries"))
    _add_layer_flags(parser.add_argument_group("layers and snapshots"))
    _add_cache_flags(parser.add_argument_group("layer cache"))
    _add_runtime_flags(parser.add_argument_group("execution and logging"))
    rejected = parser.add_argument_group("kaniko flags that are refused by name")
    for flag in REJECTED_FLAGS:
        rejected.add_argument(*flag.names, dest="rejected_flags", nargs="?",
                              action=_Rejected, help=argparse.SUPPRESS)


def _add_input_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("-c", "--context", metavar="CONTEXT",
                   help="build context: a directory (default: the current directory), dir://DIR, "
                        "tar://FILE (.tar, .tar.gz, .tar.zst), s3://BUCKET/KEY or "
                        "gs://BUCKET/OBJECT")
    g.add_argument("--context-sub-path", metavar="PATH",
                   help="a directory inside the context to use as the context")
    g.add_argument("-f", "--dockerfile", metavar="PATH",
                   help="the Dockerfile, relative to the context or absolute "
                        "(default: Dockerfile)")
    g.add_argument("--build-arg", action="append", metavar="NAME[=VALUE]",
                   help="a build argument; NAME alone takes the value from the environment "
                        "(repeatable)")
    g.add_argument("--secret-build-arg", action="append", metavar="NAME[=VALUE]",
                   help="a build argument whose value is secret: RUN sees it, history, logs "
                        "and results show ****; NAME alone takes the --build-arg NAME value, "
                        "else the environment variable NAME (repeatable)")
    g.add_argument("--target", metavar="STAGE", help="build this stage and stop")
    g.add_argument("--label", action="append", metavar="KEY=VALUE",
                   help="an image label (repeatable)")
    g.add_argument("--secret", action="append", metavar="id=ID,src=FILE|env=VAR",
                   help="a secret for RUN --mount=type=secret (repeatable)")
    g.add_argument("--allow-url-host", action="append", metavar="HOST[:PORT]",
                   help="let ADD fetch from this URL host even on a loopback, link-local or "
                        "metadata address (repeatable)")
    _add_bool(g, "--allow-private-urls",
              "let ADD fetch from private addresses: 10/8, 172.16/12, 192.168/16, 100.64/10, "
              "fc00::/7 (default: true)")
    g.add_argument("--custom-platform", metavar="OS/ARCH[/VARIANT]",
                   help="the platform to build for (default: this machine's)")
    g.add_argument("--customPlatform", dest="custom_platform_deprecated",
                   help=argparse.SUPPRESS)


def _add_output_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("-d", "--destination", action="append", metavar="IMAGE",
                   help="push the image to this reference (repeatable)")
    _add_bool(g, "--no-push", "build without pushing")
    g.add_argument("--tar-path", metavar="FILE", help="also write a docker-archive tarball")
    g.add_argument("--tarPath", dest="tar_path_deprecated", help=argparse.SUPPRESS)
    g.add_argument("--oci-layout-path", metavar="DIR", help="also write an OCI image layout")
    g.add_argument("--digest-file", metavar="FILE", help="write the image digest to FILE")
    g.add_argument("--image-name-with-digest-file", metavar="FILE",
                   help="write NAME@DIGEST of every destination to FILE")
    g.add_argument("--image-name-tag-with-digest-file", metavar="FILE",
                   help="write NAME:TAG@DIGEST of every destination to FILE")
    g.add_argument("--image-format", choices=("docker", "oci"),
                   help="manifest format (default: docker)")


def _add_registry_flags(g: argparse._ArgumentGroup) -> None:
    _add_bool(g, "--insecure", "push over plain HTTP")
    _add_bool(g, "--insecure-pull", "pull over plain HTTP")
    g.add_argument("--insecure-registry", action="append", metavar="HOST",
                   help="reach this registry over plain HTTP (repeatable)")
    _add_bool(g, "--skip-tls-verify", "push without verifying TLS certificates")
    _add_bool(g, "--skip-tls-verify-pull", "pull without verifying TLS certificates")
    g.add_argument("--skip-tls-verify-registry", action="append", metavar="HOST",
                   help="do not verify this registry's TLS certificate (repeatable)")
    g.add_argument("--registry-mirror", action="append", metavar="HOST[/PATH]",
                   help="pull docker.io images through this mirror first (repeatable)")
    g.add_argument("--ca-bundle", metavar="FILE",
                   help="CA certificates (PEM) to trust instead of the system's")
    g.add_argument("--push-retry", type=int, metavar="N",
                   help="retries of a failed registry request (default: 3)")


def _add_layer_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--snapshot-mode", choices=SNAPSHOT_MODES,
                   help="how changes are found after RUN (default: redo)")
    g.add_argument("--snapshotMode", dest="snapshot_mode_deprecated", choices=SNAPSHOT_MODES,
                   help=argparse.SUPPRESS)
    _add_bool(g, "--single-snapshot", "one layer per stage")
    _add_bool(g, "--reproducible", "normalise timestamps for identical digests")
    g.add_argument("--ignore-path", action="append", metavar="PATH",
                   help="leave this absolute path out of snapshots (repeatable)")
    g.add_argument("--compression", choices=("gzip", "zstd"),
                   help="layer compression (default: gzip; zstd needs --image-format oci)")
    g.add_argument("--compression-level", type=int, metavar="N",
                   help="compression level (gzip 0-9, zstd 1-22; -1: default)")
    _add_bool(g, "--skip-unused-stages",
              "accepted for kaniko compatibility: unused stages are never built")


def _add_cache_flags(g: argparse._ArgumentGroup) -> None:
    _add_bool(g, "--cache", "reuse and store layers in the layer cache")
    g.add_argument("--cache-repo", metavar="REPO",
                   help="cache repository, or oci:DIR (default: DESTINATION/cache)")
    g.add_argument("--cache-ttl", metavar="DURATION",
                   help="how long cached layers stay valid (default: 336h)")
    _add_bool(g, "--cache-run-layers", "cache RUN layers (default: true)")
    _add_bool(g, "--cache-copy-layers", "cache COPY/ADD layers (default: true)")
    g.add_argument("--base-cache", metavar="DIR",
                   help="keep pulled base image layers in DIR and reuse them in later builds")
    g.add_argument("--base-cache-budget", metavar="SIZE",
                   help="most the base layer cache may hold, e.g. 1G (default: 2G, and never "
                        "more than a quarter of the free space)")


def _add_runtime_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--work-dir", metavar="DIR",
                   help="where the build keeps its files (default: a new temporary directory)")
    _add_bool(g, "--cleanup", "remove the work directory afterwards (default: true)")
    g.add_argument("--run-isolation", choices=ISOLATIONS,
                   help="RUN sandbox (default: auto, the first that works here)")
    g.add_argument("--disk-budget", metavar="SIZE",
                   help="most disk the build may use, e.g. 2G (default: what is free)")
    g.add_argument("--timeout", metavar="DURATION",
                   help="fail the build after this long, e.g. 15m (default: none)")
    g.add_argument("-v", "--verbosity", type=str.lower, choices=tuple(VERBOSITY_LEVELS),
                   metavar="LEVEL", help="panic|fatal|error|warn|info|debug|trace "
                                         "(default: info)")
    g.add_argument("--log-format", choices=("text", "color", "json"),
                   help="progress and log format (default: text; color is text)")
    _add_bool(g, "--log-timestamp", "timestamps on text progress and log lines")
