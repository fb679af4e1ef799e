"""The pre-build pass over a context archive: bucketbuild.json, links, corrupt archives."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from core.errors import ContextError
from core.service.archive import ArchiveScan, check_dockerfile, entry_name, scan_archive
from core.service.settings import SettingsError


def make_tar(path: Path, files: dict[str, bytes], *, links: dict[str, str] | None = None,
             compress: str = "") -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    data = buffer.getvalue()
    if compress == "gz":
        data = gzip.compress(data)
    elif compress == "zst":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("compress", ["", "gz", "zst"])
def test_finds_settings_at_the_root(tmp_path: Path, compress: str) -> None:
    archive = make_tar(tmp_path / "a", {"Dockerfile": b"FROM scratch\n",
                                        "./bucketbuild.json": b'{"target": "x"}',
                                        "sub/bucketbuild.json": b"ignored"}, compress=compress)
    scan = scan_archive(archive)
    assert scan.settings == b'{"target": "x"}'
    assert scan.entries == 3


def test_no_settings(tmp_path: Path) -> None:
    assert scan_archive(make_tar(tmp_path / "a", {"Dockerfile": b""})).settings is None


@pytest.mark.parametrize("content", [b"", b"this is not a tar archive at all" * 40,
                                     gzip.compress(b"x" * 100)[:-8]])
def test_corrupt_archives(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(ContextError):
        scan_archive(path)


def test_settings_must_be_small_and_regular(tmp_path: Path) -> None:
    big = make_tar(tmp_path / "a", {"bucketbuild.json": b" " * 70_000})
    with pytest.raises(SettingsError, match="limit"):
        scan_archive(big)
    linked = make_tar(tmp_path / "b", {"x": b"{}"}, links={"bucketbuild.json": "/etc/passwd"})
    with pytest.raises(SettingsError, match="regular file"):
        scan_archive(linked)


def test_dockerfile_through_links_is_refused(tmp_path: Path) -> None:
    scan = scan_archive(make_tar(tmp_path / "a", {"app/Dockerfile": b"FROM scratch"},
                                 links={"Dockerfile": "/proc/self/environ", "etc": "/etc"}))
    with pytest.raises(ContextError, match="link"):
        check_dockerfile(scan, sub_path="", dockerfile="Dockerfile")
    with pytest.raises(ContextError, match="link"):
        check_dockerfile(scan, sub_path="etc", dockerfile="passwd")
    check_dockerfile(scan, sub_path="app", dockerfile="Dockerfile")
    check_dockerfile(ArchiveScan(None, frozenset(), 1), sub_path="./", dockerfile="Dockerfile")


def test_entry_names_are_normalised() -> None:
    assert entry_name("./a//b/") == "a/b"
    assert entry_name("/abs/x") == "abs/x"
    assert entry_name("./") == "."
