"""Build arguments: the automatic platform args, global ARGs, proxy args and unused-arg warnings.

BuildKit's rules: the automatic platform args (`BUILDPLATFORM`, `TARGETARCH`, ...) and the
ARGs written before the first FROM form the global scope, seen by FROM lines only; a stage sees
one of them only after redeclaring it (`ARG NAME`). A `--build-arg` overrides any ARG's default
(and the automatic values). The proxy args need no declaration: a RUN gets them in its
environment, but they are not written to the image history or config.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from core.dockerfile.instructions import ArgInstruction
from core.dockerfile.shell import Lexer
from core.errors import DockerfileError
from core.image.manifest import Platform
from core.plan.expansion import located

PROXY_ARGS: Final = frozenset({
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
    "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
})
PLATFORM_ARGS: Final = (
    "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
    "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
)
_PROXY_KINDS: Final = ("http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy")


def platform_args(
    *, build_platform: Platform, target_platform: Platform, build_args: Mapping[str, str],
) -> Mapping[str, str]:
    """The automatic platform args, as BuildKit formats them, with `--build-arg` overrides."""
    values: dict[str, str] = {}
    for prefix, platform in (("BUILD", build_platform), ("TARGET", target_platform)):
        os_name, arch, variant = _platform_parts(platform)
        joined = "/".join(part for part in (os_name, arch, variant) if part)
        values.update({f"{prefix}PLATFORM": joined, f"{prefix}OS": os_name,
                       f"{prefix}ARCH": arch, f"{prefix}VARIANT": variant})
    for name in PLATFORM_ARGS:
        if name in build_args:
            values[name] = build_args[name]
    return MappingProxyType(values)


def _platform_parts(platform: Platform) -> tuple[str, str, str]:
    """(os, arch, variant) normalised like containerd: arm64's default variant is empty."""
    variant = platform.variant or ""
    if platform.architecture == "arm64" and variant in ("8", "v8"):
        variant = ""
    return platform.os, platform.architecture, variant


def global_args(
    declarations: Iterable[ArgInstruction], *, automatic: Mapping[str, str],
    build_args: Mapping[str, str], lexer: Lexer, filename: str,
) -> Mapping[str, str]:
    """The global scope: automatic args, then each global ARG in order.

    A `--build-arg` value is taken as given; a default is expanded with the args before it;
    an ARG with neither leaves the name as it was (unset, or the automatic value).
    """
    scope = dict(automatic)
    for instruction in declarations:
        for definition in instruction.args:
            if definition.name in build_args:
                scope[definition.name] = build_args[definition.name]
            elif definition.default is not None:
                scope[definition.name] = _expand(lexer, definition.default, scope,
                                                 instruction, filename)
    return MappingProxyType(scope)


def _expand(lexer: Lexer, word: str, scope: Mapping[str, str], instruction: ArgInstruction,
            filename: str) -> str:
    try:
        return lexer.expand_word(word, scope)
    except DockerfileError as error:
        raise located(error, instruction, filename) from None


def proxy_env(build_args: Mapping[str, str]) -> Mapping[str, str]:
    """The proxy variables a RUN gets from `--build-arg`s (both spellings, non-empty only).

    When both spellings are given the lower-case one wins, as BuildKit reads them in sorted
    order.
    """
    chosen: dict[str, str] = {}
    for key in sorted(build_args):
        kind = key.lower()
        if kind in _PROXY_KINDS:
            chosen[kind] = build_args[key]
    env: dict[str, str] = {}
    for kind, value in chosen.items():
        if value:
            env[kind.upper()] = value
            env[kind] = value
    return MappingProxyType(env)


def unconsumed_warning(build_args: Iterable[str], declared: Iterable[str]) -> str | None:
    """The warning for `--build-arg`s no ARG declares (proxy and platform args excepted)."""
    known = set(declared) | PROXY_ARGS | set(PLATFORM_ARGS)
    unused = sorted(name for name in build_args if name not in known)
    if not unused:
        return None
    return f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed"
