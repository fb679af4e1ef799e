"""Digest files in the exact form kaniko writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ImageError
from core.image.reference import parse_reference
from core.layout.digest_files import (
    image_name_with_digest,
    write_digest_file,
    write_image_name_tag_with_digest_file,
    write_image_name_with_digest_file,
)

DIGEST = "sha256:" + "ab" * 32
DESTINATIONS = [parse_reference("gcr.io/foo/bar:123"), parse_reference("bob/image")]


def test_digest_file_has_no_newline(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "digest"
    write_digest_file(path, DIGEST)
    assert path.read_bytes() == DIGEST.encode()


def test_image_name_with_digest(tmp_path: Path) -> None:
    path = tmp_path / "names"
    write_image_name_with_digest_file(path, DESTINATIONS, DIGEST)
    assert path.read_text() == (f"gcr.io/foo/bar@{DIGEST}\n"
                                f"index.docker.io/bob/image@{DIGEST}\n")


def test_image_name_tag_with_digest(tmp_path: Path) -> None:
    path = tmp_path / "names"
    write_image_name_tag_with_digest_file(path, DESTINATIONS, DIGEST)
    assert path.read_text() == (f"gcr.io/foo/bar:123@{DIGEST}\n"
                                f"index.docker.io/bob/image:latest@{DIGEST}\n")


@pytest.mark.parametrize(("reference", "with_tag", "line"), [
    ("busybox", False, f"index.docker.io/library/busybox@{DIGEST}"),
    ("busybox", True, f"index.docker.io/library/busybox:latest@{DIGEST}"),
    ("localhost:5000/a/b:c", True, f"localhost:5000/a/b:c@{DIGEST}"),
    (f"localhost:5000/a/b@{'sha256:' + 'cd' * 32}", True, f"localhost:5000/a/b:latest@{DIGEST}"),
])
def test_lines(reference: str, with_tag: bool, line: str) -> None:
    assert image_name_with_digest(parse_reference(reference), DIGEST, with_tag=with_tag) == line


def test_bad_digest_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError):
        write_digest_file(tmp_path / "d", "sha256:nothex")
    assert not (tmp_path / "d").exists()
