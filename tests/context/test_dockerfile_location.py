"""Where the Dockerfile is read from (`locate_dockerfile`), and the limits archives unpack in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.context.source import ContextLimits, locate_dockerfile, resolve_context
from core.errors import ContextError
from tests.context.test_source import FILES, make_tar

SECRET = b"FROM scratch\nLABEL secret=host-only\n"


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    """A Dockerfile-shaped file of the builder's machine, outside any context."""
    path = tmp_path / "host" / "Dockerfile"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def archive_context(tmp_path: Path, outside: Path) -> Path:
    """An archive whose symlinks lead to the outside file, inside it, and nowhere."""
    links = {"escape": str(outside), "up": "../../host/Dockerfile", "inner": "Dockerfile",
             "docs-link": "docs", "loop": "loop", "app/updir": ".."}
    archive = tmp_path / "ctx.tar"
    archive.write_bytes(make_tar(FILES, links=links))
    return archive


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "inner", "app/updir/Dockerfile",
                                        "./docs/../Dockerfile"])
def test_archive_dockerfile_inside_is_found(tmp_path: Path, outside: Path,
                                            dockerfile: str) -> None:
    archive = archive_context(tmp_path, outside)
    context = resolve_context(f"tar://{archive}", work_dir=tmp_path / "w")
    path = locate_dockerfile(context, dockerfile)
    assert path.read_bytes() == FILES["Dockerfile"]


def test_archive_dockerfile_above_the_sub_path_but_inside_the_archive(
        tmp_path: Path, outside: Path) -> None:
    archive = archive_context(tmp_path, outside)
    context = resolve_context(f"tar://{archive}", work_dir=tmp_path / "w", sub_path="app")
    assert locate_dockerfile(context, "../Dockerfile").read_bytes() == FILES["Dockerfile"]


@pytest.mark.parametrize(("dockerfile", "message"), [
    ("escape", "leads outside the build context"),
    ("up", "leads outside the build context"),
    ("../../host/Dockerfile", "leads outside the build context"),
    ("ABSOLUTE", "absolute path outside the build context"),
    ("docs-link", "not a regular file"),
    ("docs", "not a regular file"),
    ("missing", "no Dockerfile 'missing'"),
    ("loop", "no Dockerfile 'loop'"),
])
def test_archive_dockerfile_outside_or_odd_is_refused(tmp_path: Path, outside: Path,
                                                      dockerfile: str, message: str) -> None:
    archive = archive_context(tmp_path, outside)
    context = resolve_context(f"tar://{archive}", work_dir=tmp_path / "w")
    dockerfile = str(outside) if dockerfile == "ABSOLUTE" else dockerfile
    with pytest.raises(ContextError, match=message) as info:
        locate_dockerfile(context, dockerfile)
    assert "host-only" not in str(info.value)


def test_archive_dockerfile_absolute_inside_the_unpacked_archive(tmp_path: Path,
                                                                 outside: Path) -> None:
    archive = archive_context(tmp_path, outside)
    context = resolve_context(f"tar://{archive}", work_dir=tmp_path / "w")
    inside = context.root / "docs" / "readme.md"
    assert locate_dockerfile(context, str(inside)) == inside


def test_directory_context_keeps_kaniko_semantics(tmp_path: Path, outside: Path) -> None:
    """The CLI user's own files: an absolute path anywhere, symlinks followed."""
    root = tmp_path / "dir"
    root.mkdir()
    (root / "link").symlink_to(outside)
    context = resolve_context(str(root), work_dir=tmp_path / "w")
    assert context.archive_root is None
    assert locate_dockerfile(context, str(outside)).read_bytes() == SECRET
    assert locate_dockerfile(context, "link").read_bytes() == SECRET
    assert locate_dockerfile(context, "Dockerfile") == root / "Dockerfile"


def test_limits_for_space(tmp_path: Path) -> None:
    limits = ContextLimits.for_space(12345, tmp_path)
    assert limits.unpacked_bytes == limits.download_bytes == 12345
    st = os.statvfs(tmp_path)
    if st.f_files > 0:
        assert limits.entries is not None and 0 < limits.entries <= st.f_favail
    else:
        assert limits.entries is None
    assert "disk budget" in limits.origin
