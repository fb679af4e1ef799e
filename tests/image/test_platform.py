"""Platforms: parsing, normalisation, the running machine, choosing from an index."""

from __future__ import annotations

import pytest

from core.errors import ImageError, PlatformMismatchError
from core.image import mediatypes as mt
from core.image.manifest import Descriptor, Index, Platform
from core.image.platform import (
    default_platform,
    normalize_platform,
    parse_platform,
    platform_matches,
    select_manifest,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("linux/amd64", Platform("linux", "amd64")),
    ("linux/arm64", Platform("linux", "arm64", "v8")),
    ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
    ("linux/aarch64", Platform("linux", "arm64", "v8")),
    ("linux/arm", Platform("linux", "arm", "v7")),
    ("linux/arm/v6", Platform("linux", "arm", "v6")),
    ("linux/armhf", Platform("linux", "arm", "v7")),
    ("linux/x86_64", Platform("linux", "amd64")),
    ("linux/amd64/v1", Platform("linux", "amd64")),
    ("linux/amd64/v3", Platform("linux", "amd64", "v3")),
    ("Linux/AMD64", Platform("linux", "amd64")),
    ("linux/i686", Platform("linux", "386")),
    ("windows/amd64", Platform("windows", "amd64")),
    ("linux/s390x", Platform("linux", "s390x")),
])
def test_parse_platform(text: str, expected: Platform) -> None:
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text", ["", "linux", "linux/", "/amd64", "linux/arm/v7/x", "a//b"])
def test_parse_platform_invalid(text: str) -> None:
    with pytest.raises(ImageError, match="expected OS/ARCH"):
        parse_platform(text)


@pytest.mark.parametrize(("machine", "system", "expected"), [
    ("x86_64", "Linux", "linux/amd64"),
    ("aarch64", "Linux", "linux/arm64/v8"),
    ("arm64", "Darwin", "darwin/arm64/v8"),
    ("armv7l", "Linux", "linux/arm/v7"),
    ("armv6l", "Linux", "linux/arm/v6"),
    ("ppc64le", "Linux", "linux/ppc64le"),
    ("riscv64", "Linux", "linux/riscv64"),
    ("AMD64", "Windows", "windows/amd64"),
])
def test_default_platform(machine: str, system: str, expected: str) -> None:
    assert str(default_platform(machine, system)) == expected


def test_default_platform_needs_a_machine() -> None:
    with pytest.raises(ImageError, match="--custom-platform"):
        default_platform("")


def test_normalize_keeps_os_version() -> None:
    platform = Platform("windows", "x86_64", os_version="10.0", os_features=("win32k",))
    assert normalize_platform(platform) == Platform("windows", "amd64", None, "10.0",
                                                    ("win32k",))


def _entry(digest_char: str, platform: Platform | None, **annotations: str) -> Descriptor:
    return Descriptor(mt.OCI_MANIFEST, "sha256:" + digest_char * 64, 100, platform=platform,
                      annotations=annotations or None)


INDEX = Index(mt.OCI_INDEX, (
    _entry("0", Platform("unknown", "unknown")),
    _entry("1", Platform("linux", "amd64")),
    _entry("2", Platform("linux", "arm64")),
    _entry("3", Platform("linux", "arm", "v7")),
    _entry("4", Platform("linux", "arm", "v6")),
    _entry("5", Platform("linux", "arm64", "v8"), **{"vnd.docker.reference.type": "x"}),
    _entry("6", None),
    _entry("7", Platform("windows", "amd64", os_version="10.0.20348.1")),
))


@pytest.mark.parametrize(("want", "digest_char"), [
    ("linux/amd64", "1"),
    ("linux/x86_64", "1"),
    ("linux/arm64", "2"),
    ("linux/arm64/v8", "2"),
    ("linux/aarch64", "2"),
    ("linux/arm", "3"),
    ("linux/arm/v7", "3"),
    ("linux/arm/v6", "4"),
    ("windows/amd64", "7"),
])
def test_select_manifest(want: str, digest_char: str) -> None:
    assert select_manifest(INDEX, parse_platform(want)).digest == "sha256:" + digest_char * 64


def test_select_manifest_os_version() -> None:
    want = Platform("windows", "amd64", os_version="10.0.20348.1")
    assert select_manifest(INDEX, want).digest == "sha256:" + "7" * 64
    with pytest.raises(PlatformMismatchError):
        select_manifest(INDEX, Platform("windows", "amd64", os_version="10.0.17763.1"))


def test_no_match_lists_what_exists() -> None:
    with pytest.raises(PlatformMismatchError) as raised:
        select_manifest(INDEX, parse_platform("linux/s390x"))
    assert str(raised.value) == (
        "no image for platform linux/s390x in the index; available: linux/amd64, "
        "linux/arm/v6, linux/arm/v7, linux/arm64/v8, windows/amd64")
    assert raised.value.kind == "image"


def test_no_match_in_attestation_only_index() -> None:
    index = Index(mt.OCI_INDEX, (_entry("0", Platform("unknown", "unknown")),))
    with pytest.raises(PlatformMismatchError, match="available: none"):
        select_manifest(index, parse_platform("linux/amd64"))


def test_platform_matches_variants() -> None:
    assert platform_matches(Platform("linux", "arm64"), Platform("linux", "arm64", "v8"))
    assert not platform_matches(Platform("linux", "arm", "v6"), Platform("linux", "arm"))
    assert not platform_matches(Platform("linux", "amd64", "v3"), Platform("linux", "amd64"))
