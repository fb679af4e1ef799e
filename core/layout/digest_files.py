"""The digest files kaniko's executor writes after a build.

- `--digest-file`: the manifest digest alone, no newline.
- `--image-name-with-digest-file`: `registry/repository@digest`, one line per destination.
- `--image-name-tag-with-digest-file`: `registry/repository:tag@digest`, one line each.

Docker Hub destinations are written as `index.docker.io/...`, the registry name kaniko
(through go-containerregistry) uses, so scripts that read kaniko's files read ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.image.digest import parse_digest
from core.image.reference import DEFAULT_TAG, DOCKER_HUB, Reference

KANIKO_DOCKER_HUB = "index.docker.io"


def image_name_with_digest(destination: Reference, digest: str, *, with_tag: bool) -> str:
    """One line's content: `name[:tag]@digest` for a destination."""
    parse_digest(digest)
    registry = KANIKO_DOCKER_HUB if destination.registry == DOCKER_HUB else destination.registry
    name = f"{registry}/{destination.repository}"
    if with_tag:
        name += f":{destination.tag or DEFAULT_TAG}"
    return f"{name}@{digest}"


def write_digest_file(path: Path, digest: str) -> None:
    """Write the image digest (`sha256:...`, no trailing newline)."""
    parse_digest(digest)
    _write(path, digest)


def write_image_name_with_digest_file(path: Path, destinations: Sequence[Reference],
                                      digest: str) -> None:
    """Write `registry/repository@digest` for each destination, one per line."""
    _write(path, "".join(image_name_with_digest(d, digest, with_tag=False) + "\n"
                         for d in destinations))


def write_image_name_tag_with_digest_file(path: Path, destinations: Sequence[Reference],
                                          digest: str) -> None:
    """Write `registry/repository:tag@digest` for each destination, one per line."""
    _write(path, "".join(image_name_with_digest(d, digest, with_tag=True) + "\n"
                         for d in destinations))


def _write(path: Path, text: str) -> None:
    """Write in place, not through a rename: the path may be a special file such as
    Kubernetes' `/dev/termination-log`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as stream:
        stream.write(text)
