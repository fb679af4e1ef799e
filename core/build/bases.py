"""Base images: what FROM and `--from` name, resolved to a manifest and config (no layers).

Layers are not fetched here: a stage's tree is extracted only when a step needs it, and a base
layer on the destination's registry is mounted there instead of downloaded. FROM scratch
starts from BuildKit's empty image (WorkingDir `/`, the default PATH); FROM an earlier stage
starts from that stage's result.

A pulled layer (a base image's, or the layer cache's) that cannot be applied is the image's
fault, not the step's that needed the tree: `pulled_layer_errors` reports it as an
`ImageError` naming the layer's digest and repository, with the extractor's error as cause.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from core.build.layers import Layer
from core.errors import ArchiveError, ImageError, RegistryError, RootfsError
from core.image.config import DEFAULT_PATH, ContainerConfig, ImageConfig
from core.image.manifest import Platform
from core.image.reference import DOCKER_HUB, Reference, parse_reference
from core.plan import ImageBase
from core.registry import PulledImage, RegistryClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedImage:
    """An image resolved for one platform: its reference and what the registry returned."""

    ref: Reference
    pulled: PulledImage

    @property
    def config(self) -> ImageConfig:
        return self.pulled.config

    @property
    def digest(self) -> str:
        return self.pulled.digest

    def layers(self) -> list[Layer]:
        """The image's layers, to be fetched from (or mounted from) its repository."""
        descriptors = self.pulled.manifest.layers
        diff_ids = self.config.diff_ids
        if len(descriptors) != len(diff_ids):
            raise ImageError(f"{self.ref}: manifest has {len(descriptors)} layers but the "
                             f"config lists {len(diff_ids)} diff_ids")
        repository = self.ref.context()
        return [Layer(descriptor, diff_id, remote=repository)
                for descriptor, diff_id in zip(descriptors, diff_ids, strict=True)]


@contextmanager
def pulled_layer_errors(layer: Layer) -> Iterator[None]:
    """Around reading or applying `layer`: a malformed pulled layer becomes an `ImageError`
    (a layer this build made keeps its error; budget errors stay budget errors)."""
    try:
        yield
    except (ArchiveError, RootfsError) as error:
        if layer.remote is None:
            raise
        raise ImageError(f"layer {layer.digest} of {layer.remote} cannot be applied: "
                         f"{error}") from error


def scratch_config(platform: Platform) -> ImageConfig:
    """BuildKit's empty image for `FROM scratch`."""
    return ImageConfig(
        architecture=platform.architecture, os=platform.os, variant=platform.variant,
        config=ContainerConfig(env=(f"PATH={DEFAULT_PATH}",), working_dir="/"))


class ImageResolver:
    """Resolves image references once per build (references and platforms are cached)."""

    def __init__(self, registry: RegistryClient, *, mirrors: Sequence[str] = ()) -> None:
        self.registry = registry
        self.mirrors = tuple(mirrors)
        self._resolved: dict[tuple[str, Platform], ResolvedImage] = {}

    def resolve(self, base: ImageBase) -> ResolvedImage:
        key = (base.ref, base.platform)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = self._pull(base)
        return found

    def resolve_all(self, bases: Iterable[ImageBase]) -> dict[ImageBase, ResolvedImage]:
        return {base: self.resolve(base) for base in bases}

    def _pull(self, base: ImageBase) -> ResolvedImage:
        ref = parse_reference(base.ref)
        for mirror in self._mirrors_for(ref):
            try:
                return self._pull_ref(base, mirror)
            except RegistryError as error:
                log.warning("mirror %s failed for %s: %s; trying the next source",
                            mirror.registry, base.ref, error)
        return self._pull_ref(base, ref)

    def _mirrors_for(self, ref: Reference) -> list[Reference]:
        if ref.registry != DOCKER_HUB:
            return []
        return [Reference(mirror.rstrip("/"), ref.repository, ref.tag, ref.digest)
                for mirror in self.mirrors]

    def _pull_ref(self, base: ImageBase, ref: Reference) -> ResolvedImage:
        try:
            pulled = self.registry.pull(ref, platform=base.platform)
        except RegistryError as error:
            error.message = f"{base.ref}: {error.message}"
            raise
        except ImageError as error:
            raise ImageError(f"{base.ref}: {error}") from None
        log.info("resolved %s to %s@%s (%d layers)", base.ref, ref.name, pulled.digest,
                 len(pulled.manifest.layers))
        return ResolvedImage(ref, pulled)
