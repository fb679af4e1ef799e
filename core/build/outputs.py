"""Where the finished image goes: registries, a docker-archive, an OCI layout, digest files.

Push order keeps a failed build from ever being tagged: every blob goes to every destination
repository first (new layers from their spool files; base layers mounted from their own
repository when it is on the same registry, else fetched once into the spool and uploaded),
and the manifest is put under each tag only after all of them. Local outputs need every layer
on disk, so base layers are fetched for them. The OCI layout gets OCI media types (umoci and
older skopeo read nothing else), so its manifest digest differs from a Docker-format push.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import BinaryIO

from core.build.assemble import AssembledImage
from core.build.events import EventSink, Pushed
from core.build.layers import Layer, LayerSpool
from core.build.options import OutputOptions
from core.image.manifest import descriptor_for, parse_manifest, to_oci_manifest
from core.image.reference import Reference, Repository
from core.layout import digest_files
from core.layout.blobs import Blob
from core.layout.docker_archive import write_docker_archive
from core.layout.oci import write_oci_image
from core.registry import BlobSource, RegistryClient
from core.registry.push import push_blobs

log = logging.getLogger(__name__)


def push(image: AssembledImage, destinations: Sequence[Reference], *, spool: LayerSpool,
         registry: RegistryClient, events: EventSink) -> list[str]:
    """Push to every destination; return the references pushed (`name:tag@digest`)."""
    groups: dict[Repository, list[Reference]] = {}
    for ref in destinations:
        groups.setdefault(ref.context(), []).append(ref)
    for repository in groups:
        _push_blobs(image, repository, spool=spool, registry=registry)
    pushed = []
    for refs in groups.values():
        for ref in refs:
            digest = registry.push_manifest(ref, image.manifest, image.media_type)
            text = f"{ref}@{digest}" if ref.digest is None else str(ref)
            log.info("pushed %s", text)
            events.emit(Pushed(reference=text, digest=digest))
            pushed.append(str(ref))
    return pushed


def _push_blobs(image: AssembledImage, repository: Repository, *, spool: LayerSpool,
                registry: RegistryClient) -> None:
    mount_from = sorted({layer.remote.repository for layer in image.layers
                         if layer.remote is not None
                         and layer.remote.registry == repository.registry})
    sources = [_layer_source(layer, spool) for layer in image.layers]
    sources.append(BlobSource.from_bytes(image.config))
    conn = registry.connection(repository.registry)
    push_blobs(conn, repository.repository, sources, options=registry.upload_options,
               mount_from=mount_from)


def _layer_source(layer: Layer, spool: LayerSpool) -> BlobSource:
    """A blob source that fetches a base layer into the spool only if an upload needs it."""
    def opener() -> BinaryIO:
        local = spool.local(layer)
        assert local.path is not None
        return open(local.path, "rb")

    return BlobSource(layer.digest, layer.size, opener)


def _local_blobs(image: AssembledImage, spool: LayerSpool) -> list[Blob]:
    blobs = []
    for layer in image.layers:
        local = spool.local(layer)
        assert local.path is not None
        blobs.append(Blob(layer.descriptor, local.path))
    return blobs


def write_local(image: AssembledImage, output: OutputOptions, *, spool: LayerSpool,
                tags: Sequence[Reference]) -> None:
    """`--tar-path` and `--oci-layout-path`."""
    if output.tar_path is not None:
        write_docker_archive(output.tar_path, config=image.config,
                             layers=_local_blobs(image, spool), tags=tags)
        log.info("wrote docker archive %s", output.tar_path)
    if output.oci_layout_path is not None:
        manifest = to_oci_manifest(parse_manifest(image.manifest)).to_json()
        oci = parse_manifest(manifest)
        blobs = [Blob(descriptor, blob.source) for descriptor, blob
                 in zip(oci.layers, _local_blobs(image, spool), strict=True)]
        ref_name = next((ref.tag for ref in tags if ref.tag), None) or "latest"
        write_oci_image(output.oci_layout_path, manifest=manifest, config=image.config,
                        layers=blobs, ref_name=ref_name)
        log.info("wrote OCI layout %s (%s, manifest %s)", output.oci_layout_path, ref_name,
                 descriptor_for(manifest, oci.media_type).digest)


def write_digest_files(output: OutputOptions, digest: str, tags: Sequence[Reference]) -> None:
    if output.digest_file is not None:
        digest_files.write_digest_file(output.digest_file, digest)
    if output.image_name_with_digest_file is not None:
        digest_files.write_image_name_with_digest_file(
            output.image_name_with_digest_file, tags, digest)
    if output.image_name_tag_with_digest_file is not None:
        digest_files.write_image_name_tag_with_digest_file(
            output.image_name_tag_with_digest_file, tags, digest)
