"""Platforms: parsing `os/arch[/variant]`, normalising machine names, picking from an index."""

from __future__ import annotations

from core.errors import ImageError, PlatformMismatchError
from core.image.manifest import Descriptor, Index, Platform

#: machine or architecture names -> (OCI architecture, variant implied by the name)
_ARCH_ALIASES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv8l": ("arm", "v8"),
    "armv7l": ("arm", "v7"),
    "armv7": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv6": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "arm": ("arm", None),
    "i386": ("386", None),
    "i486": ("386", None),
    "i586": ("386", None),
    "i686": ("386", None),
    "x86": ("386", None),
    "386": ("386", None),
    "ppc64le": ("ppc64le", None),
    "ppc64el": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "mips64le": ("mips64le", None),
    "mips64el": ("mips64le", None),
    "loongarch64": ("loong64", None),
    "loong64": ("loong64", None),
}
#: variant assumed when an image or a request names none
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}
#: platforms of attestation manifests in BuildKit's indexes, never a runnable image
_UNKNOWN = "unknown"
_REFERENCE_TYPE = "vnd.docker.reference.type"


def normalize_platform(platform: Platform) -> Platform:
    """Canonical names: `x86_64` -> amd64, `aarch64` -> arm64 (variant v8), `armhf` -> arm/v7."""
    os_name = platform.os.lower()
    raw = platform.architecture.lower()
    architecture, implied = _ARCH_ALIASES.get(raw, (raw, None))
    variant = (platform.variant or "").lower() or implied
    if architecture == "arm64" and variant == "8":
        variant = "v8"
    if variant is None:
        variant = _DEFAULT_VARIANT.get(architecture)
    if architecture == "amd64" and variant == "v1":
        variant = None
    return Platform(os_name, architecture, variant, platform.os_version, platform.os_features)


def parse_platform(text: str) -> Platform:
    """Parse `os/arch[/variant]` (e.g. `linux/arm64/v8`) and normalise it."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageError(f"invalid platform {text!r}: expected OS/ARCH[/VARIANT], "
                         "e.g. linux/amd64 or linux/arm/v7")
    variant = parts[2] if len(parts) == 3 else None
    return normalize_platform(Platform(parts[0], parts[1], variant))


def default_platform(machine: str, system: str = "Linux") -> Platform:
    """The platform of a machine as `platform.machine()` / `platform.system()` name it."""
    if not machine:
        raise ImageError("cannot tell the machine architecture; pass --custom-platform")
    return normalize_platform(Platform(system.lower(), machine))


def platform_matches(candidate: Platform, want: Platform) -> bool:
    """True if an image built for `candidate` satisfies a request for `want`.

    Both sides are normalised first, so an arm64 image with no variant matches `linux/arm64/v8`.
    A requested OS version must match exactly.
    """
    have, need = normalize_platform(candidate), normalize_platform(want)
    if (have.os, have.architecture, have.variant) != (need.os, need.architecture, need.variant):
        return False
    return not need.os_version or have.os_version == need.os_version


def select_manifest(index: Index, want: Platform) -> Descriptor:
    """The first manifest of `index` that runs on `want`.

    Attestation manifests (`unknown/unknown`) are never chosen. With no match the error lists
    the platforms the index does offer.
    """
    runnable = [d for d in index.manifests if _is_runnable(d)]
    for descriptor in runnable:
        assert descriptor.platform is not None
        if platform_matches(descriptor.platform, want):
            return descriptor
    offered = sorted({str(normalize_platform(d.platform)) for d in runnable
                      if d.platform is not None})
    listing = ", ".join(offered) if offered else "none"
    raise PlatformMismatchError(
        f"no image for platform {normalize_platform(want)} in the index; available: {listing}")


def _is_runnable(descriptor: Descriptor) -> bool:
    platform = descriptor.platform
    if platform is None:
        return False
    if descriptor.annotations and _REFERENCE_TYPE in descriptor.annotations:
        return False
    return _UNKNOWN not in (platform.os, platform.architecture)
