"""Where the finished image goes: registries, a docker-archive, an OCI layout, digest files.

Push order keeps a failed build from ever being tagged: every blob goes to every destination
repository first, and the manifest is put under each tag only after all of them. New layers
were streamed to the first destination repository of each registry while the build ran; the
push waits for those uploads, then places each blob in each repository moving as few bytes as
possible (`place_blob`): already there, found by HEAD, mounted from a repository of the same
registry (the base image's own, or the one a layer was streamed to), uploaded from a local
file, or copied from another registry as a stream (one chunk in memory, nothing on disk).
Local outputs need every layer on disk, so layers are fetched for them. The OCI layout gets OCI
media types (umoci and older skopeo read nothing else), so its manifest digest differs from a
Docker-format push.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from pathlib import Path
from typing import TYPE_CHECKING

from core.build.assemble import AssembledImage
from core.build.events import EventSink, Pushed
from core.build.layers import Layer, LayerSpool
from core.build.options import OutputOptions
from core.image.manifest import descriptor_for, parse_manifest, to_oci_manifest
from core.image.reference import Reference, Repository
from core.layout import digest_files
from core.registry import BlobSource, RegistryClient
from core.registry.push import copy_blob, mount_or_find, push_blob

if TYPE_CHECKING:  # the local output writers are imported by `write_local` when asked for
    from core.layout.blobs import Blob

log = logging.getLogger(__name__)


def push(image: AssembledImage, destinations: Sequence[Reference], *, spool: LayerSpool,
         registry: RegistryClient, events: EventSink) -> list[str]:
    """Push to every destination; return the references pushed (`name:tag@digest`)."""
    if spool.uploads is not None:
        spool.uploads.wait()  # streamed layers are in place (or their error is raised here)
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
    """Every layer and the config into one repository, a few at a time."""
    unique = list({layer.digest: layer for layer in image.layers}.values())
    conn = registry.connection(repository.registry)
    options = registry.upload_options
    with ThreadPoolExecutor(max_workers=options.max_concurrent,
                            thread_name_prefix="blob-push") as pool:
        # each task runs in a copy of the build's context: its log records stay the build's
        futures: list[Future[object]] = [
            pool.submit(copy_context().run, place_blob, layer, repository, spool=spool,
                        registry=registry)
            for layer in unique]
        futures.append(pool.submit(copy_context().run, push_blob, conn, repository.repository,
                                   BlobSource.from_bytes(image.config), options=options))
        try:
            for future in futures:
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def place_blob(layer: Layer, repository: Repository, *, spool: LayerSpool,
               registry: RegistryClient) -> str:
    """Make a layer present in `repository` with as few bytes moved as possible: already
    there (streamed, or found by HEAD), mounted from a repository of the same registry that
    has it, uploaded from a local file, or copied from another registry as a stream."""
    known = spool.uploads.locations.where(layer.digest) if spool.uploads else []
    if layer.remote is not None and layer.remote not in known:
        known.append(layer.remote)
    if repository in known:
        return "exists"
    conn = registry.connection(repository.registry)
    siblings = [where.repository for where in known if where.registry == repository.registry]
    action: str | None = mount_or_find(conn, repository.repository, layer.digest,
                                       mount_from=siblings)
    if action is None:
        action = _send(layer, repository, known, spool=spool, registry=registry)
    log.info("layer %s in %s: %s", layer.digest, repository, action)
    if spool.uploads is not None:
        spool.uploads.locations.add(layer.digest, repository)
    return action


def _send(layer: Layer, repository: Repository, known: list[Repository], *,
          spool: LayerSpool, registry: RegistryClient) -> str:
    conn = registry.connection(repository.registry)
    local = local_blob(layer, spool)
    if local is not None or not known:
        path = local if local is not None else spool.local(layer).path
        assert path is not None
        source = BlobSource.from_path(path, digest=layer.digest)
        return push_blob(conn, repository.repository, source,
                         options=registry.upload_options).action
    origin = known[0]

    def pause(attempt: int, why: str) -> None:
        conn.transport.pause(attempt, None, why)

    copy_blob(registry.connection(origin.registry), origin.repository, conn,
              repository.repository, layer.digest, layer.size,
              options=registry.upload_options, pause=pause, spool_dir=spool.directory)
    return f"copied from {origin}"


def local_blob(layer: Layer, spool: LayerSpool) -> Path | None:
    """A file of the build's own holding the layer's blob: its spool file, or the base layer
    cache's copy hard-linked into the spool (None: neither exists). Never the cache's own
    name, which another build's eviction may remove before the push opens it."""
    for path in (layer.path, spool.blob_path(layer.digest)):
        if path is not None and path.exists():
            return path
    cache = spool.base_cache
    if cache is None or not cache.has(layer.digest, layer.size):
        return None
    target = spool.blob_path(layer.digest)
    try:
        os.link(cache.path(layer.digest), target)
    except FileExistsError:
        pass
    except OSError:  # another file system, or evicted meanwhile: copy it (or fetch it)
        return spool.local(layer).path
    return target


def _local_blobs(image: AssembledImage, spool: LayerSpool) -> list[Blob]:
    from core.layout.blobs import Blob

    blobs = []
    for layer in image.layers:
        local = spool.local(layer)
        assert local.path is not None
        blobs.append(Blob(layer.descriptor, local.path))
    return blobs


def write_local(image: AssembledImage, output: OutputOptions, *, spool: LayerSpool,
                tags: Sequence[Reference]) -> None:
    """`--tar-path` and `--oci-layout-path`."""
    if output.tar_path is None and output.oci_layout_path is None:
        return
    from core.layout.blobs import Blob
    from core.layout.docker_archive import write_docker_archive
    from core.layout.oci import write_oci_image

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
        fresh = not output.oci_layout_path.exists()
        try:
            write_oci_image(output.oci_layout_path, manifest=manifest, config=image.config,
                            layers=blobs, ref_name=ref_name)
        except BaseException:
            if fresh:  # a layout this build started: no half-written one is left
                shutil.rmtree(output.oci_layout_path, ignore_errors=True)
            raise
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
