"""docker-archive tarballs, as `docker save` writes and `docker load` / `podman load` /
`skopeo copy docker-archive:` read them.

Layout of the tar: `manifest.json` (`[{"Config", "RepoTags", "Layers"}]`), a `repositories`
file for old readers, and the config and layer blobs under `blobs/sha256/<hex>`, the
content-addressed naming Docker itself uses since 25.0. Layers are stored exactly as given
(normally gzip or zstd compressed): all three readers detect compression from the stream,
decompress, and check the result against the config's `rootfs.diff_ids`. Keeping them
compressed saves both the disk space and the time that re-inflating would cost.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, cast

from core.errors import ImageError
from core.image.canonical import canonical_json
from core.image.config import parse_image_config
from core.image.digest import DigestingReader, digest_hex, sha256_digest
from core.image.reference import Reference
from core.layout.blobs import Blob, atomic_file, open_source


def write_docker_archive(path: Path, *, config: bytes, layers: Sequence[Blob],
                         tags: Sequence[Reference] = ()) -> None:
    """Write a docker-archive at `path` (replaced atomically) holding one image.

    `layers` are in manifest order and must be as many as the config's diff_ids; `tags`
    become RepoTags (references without a tag are left out, as `docker save` does).
    """
    image = parse_image_config(config)
    if len(image.diff_ids) != len(layers):
        raise ImageError(f"config lists {len(image.diff_ids)} diff_ids but {len(layers)} "
                         "layers were given")
    config_name = _blob_name(sha256_digest(config))
    layer_names = [_blob_name(layer.descriptor.digest) for layer in layers]
    repo_tags = [_repo_tag(ref) for ref in tags if ref.tag is not None]
    manifest = [{"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names}]
    with atomic_file(path) as stream, tarfile.open(fileobj=stream, mode="w",
                                                   format=tarfile.PAX_FORMAT) as archive:
        _add_bytes(archive, "blobs/", None)
        _add_bytes(archive, "blobs/sha256/", None)
        _add_bytes(archive, config_name, config)
        written = {config_name}
        for layer, name in zip(layers, layer_names, strict=True):
            if name not in written:
                _add_blob(archive, name, layer)
                written.add(name)
        _add_bytes(archive, "manifest.json", canonical_json(manifest))
        if repo_tags and layer_names:
            _add_bytes(archive, "repositories", _repositories(tags, layer_names[-1]))


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{digest_hex(digest)}"


def _repo_tag(ref: Reference) -> str:
    """`docker save` style: Docker Hub names short (`busybox:latest`), others in full."""
    assert ref.tag is not None
    return Reference(ref.registry, ref.repository, ref.tag, None).familiar


def _repositories(tags: Sequence[Reference], top_layer: str) -> bytes:
    """The legacy `{repository: {tag: top layer id}}` map, read only by old loaders."""
    repositories: dict[str, dict[str, str]] = {}
    for ref in tags:
        if ref.tag is not None:
            name = _repo_tag(ref).rpartition(":")[0]
            repositories.setdefault(name, {})[ref.tag] = top_layer.rpartition("/")[2]
    return json.dumps(repositories, sort_keys=True).encode()


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        archive.addfile(info)
        return
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def _add_blob(archive: tarfile.TarFile, name: str, blob: Blob) -> None:
    """Stream one layer into the archive, verifying its digest and size on the way."""
    info = tarfile.TarInfo(name)
    info.size = blob.descriptor.size
    info.mode = 0o644
    info.mtime = 0
    with open_source(blob.source) as stream:
        reader = DigestingReader(stream)
        try:
            # tarfile copies exactly info.size bytes through reader.read()
            archive.addfile(info, cast(BinaryIO, reader))
        except OSError as error:
            if error.errno is not None:  # writing failed (a full disk), not a short layer
                raise
            raise ImageError(f"layer {blob.descriptor.digest}: shorter than the declared "
                             f"{blob.descriptor.size} bytes") from None
        if stream.read(1):
            raise ImageError(f"layer {blob.descriptor.digest}: longer than the declared "
                             f"{blob.descriptor.size} bytes")
    if reader.digest != blob.descriptor.digest:
        raise ImageError(f"layer {blob.descriptor.digest}: content has digest {reader.digest}")
