"""`--context` sources: directories used in place, local archives, S3 and GCS objects."""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from core.cloud.storage import open_store
from core.context.files import ContextFiles
from core.context.ignore import parse_ignore
from core.context.source import ContextLimits, resolve_context
from core.errors import BudgetError, ContextError

FILES = {
    "Dockerfile": b"FROM scratch\nCOPY . /\n",
    "app/main.py": b"print('hi')\n",
    "app/lib/util.txt": b"x" * 5000,
    "docs/readme.md": b"# readme\n",
}


def make_tar(files: dict[str, bytes] = FILES, *, links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "tar": lambda data: data,
    "tar.gz": lambda data: __import__("gzip").compress(data),
    "tar.zst": lambda data: zstandard.ZstdCompressor().compress(data),
    "tar.bz2": bz2.compress,
    "tar.xz": lzma.compress,
}


def tree_state(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under `root`: (mode, mtime_ns, sha256 or link target)."""
    state: dict[str, tuple[int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            if path.is_symlink():
                content = "-> " + os.readlink(path)
            elif path.is_file():
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = "dir"
            state[str(path.relative_to(root))] = (info.st_mode, info.st_mtime_ns, content)
    return state


def write_tree(root: Path, files: dict[str, bytes] = FILES) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def read_tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- directories ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", "dir://"])
def test_directory_used_in_place_and_never_modified(tmp_path: Path, prefix: str) -> None:
    source = tmp_path / "src"
    write_tree(source)
    (source / ".dockerignore").write_text("docs\n")
    (source / "link").symlink_to("app/main.py")
    before = tree_state(source)
    work = tmp_path / "work"
    context = resolve_context(f"{prefix}{source}", work_dir=work)
    assert context.root == source and context.object_info is None
    files = ContextFiles(context.root, parse_ignore((source / ".dockerignore").read_bytes()))
    assert [m.path.as_posix() for m in files.resolve_sources(["app/*", "link"])] == [
        "app/lib", "app/main.py", "link"]
    list(files.walk("."))
    files.digest("app/main.py")
    assert tree_state(source) == before
    assert not work.exists()


def test_relative_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    context = resolve_context("src", work_dir=tmp_path / "work")
    assert context.root == tmp_path / "src" and context.source == "src"


def test_directory_errors(tmp_path: Path) -> None:
    (tmp_path / "ctx.tar").write_bytes(make_tar())
    with pytest.raises(ContextError, match=r"not a directory \(an archive needs tar://\)"):
        resolve_context(str(tmp_path / "ctx.tar"), work_dir=tmp_path / "w")
    with pytest.raises(ContextError, match="does not exist"):
        resolve_context(str(tmp_path / "missing"), work_dir=tmp_path / "w")
    with pytest.raises(ContextError, match="unsupported context source git://"):
        resolve_context("git://github.com/x/y.git", work_dir=tmp_path / "w")
    with pytest.raises(ContextError, match="no build context"):
        resolve_context("", work_dir=tmp_path / "w")


# --- local archives -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_tar_sources(tmp_path: Path, suffix: str) -> None:
    archive = tmp_path / f"ctx.{suffix}"
    archive.write_bytes(COMPRESSORS[suffix](make_tar(links={"app/link": "main.py"})))
    work = tmp_path / "work"
    context = resolve_context(f"tar://{archive}", work_dir=work)
    assert context.root == work / "context"
    assert read_tree(context.root) == {**FILES, "app/link": FILES["app/main.py"]}
    assert os.readlink(context.root / "app/link") == "main.py"
    assert context.unpacked is not None and context.unpacked.entries >= len(FILES)
    assert archive.exists()  # a local archive is the user's: left alone


def test_tar_errors(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="cannot read context archive"):
        resolve_context(f"tar://{tmp_path / 'missing.tar'}", work_dir=tmp_path / "w1")
    (tmp_path / "junk.tar").write_bytes(b"this is not an archive at all" * 40)
    with pytest.raises(ContextError):
        resolve_context(f"tar://{tmp_path / 'junk.tar'}", work_dir=tmp_path / "w2")
    escape = make_tar({"../evil": b"x"})
    (tmp_path / "evil.tar").write_bytes(escape)
    with pytest.raises(ContextError):
        resolve_context(f"tar://{tmp_path / 'evil.tar'}", work_dir=tmp_path / "w3")
    assert not (tmp_path / "w3" / "evil").exists() and not (tmp_path / "evil").exists()


def test_work_dir_context_must_be_fresh(tmp_path: Path) -> None:
    archive = tmp_path / "ctx.tar"
    archive.write_bytes(make_tar())
    resolve_context(f"tar://{archive}", work_dir=tmp_path / "w")
    with pytest.raises(ContextError, match="not an empty directory"):
        resolve_context(f"tar://{archive}", work_dir=tmp_path / "w")


def test_unpack_limits(tmp_path: Path) -> None:
    archive = tmp_path / "ctx.tar.gz"
    archive.write_bytes(COMPRESSORS["tar.gz"](make_tar()))
    with pytest.raises(BudgetError, match="more than 1 entries"):
        resolve_context(f"tar://{archive}", work_dir=tmp_path / "w",
                        limits=ContextLimits(entries=1))
    with pytest.raises(BudgetError):
        resolve_context(f"tar://{archive}", work_dir=tmp_path / "w2",
                        limits=ContextLimits(unpacked_bytes=4096))


# --- object stores ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_bucket_sources(tmp_path: Path, request: pytest.FixtureRequest, scheme: str) -> None:
    bucket = request.getfixturevalue("s3_bucket" if scheme == "s3" else "gcs_bucket")
    store = open_store(scheme)
    data = COMPRESSORS["tar.gz"](make_tar())
    store.put_bytes(bucket, "uploads/app.tar.gz", data, content_type="application/gzip",
                    metadata={"bucketbuild-target": "final"})
    work = tmp_path / "work"
    context = resolve_context(f"{scheme}://{bucket}/uploads/app.tar.gz", work_dir=work,
                              sub_path="app")
    assert context.root == work / "context" / "app"
    assert read_tree(context.root) == {"main.py": FILES["app/main.py"],
                                       "lib/util.txt": FILES["app/lib/util.txt"]}
    info = context.object_info
    assert info is not None and info.size == len(data) and info.version
    assert info.metadata == {"bucketbuild-target": "final"}
    assert list((work / "downloads").iterdir()) == []  # the download is gone after unpacking


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_bucket_source_errors(tmp_path: Path, request: pytest.FixtureRequest,
                              scheme: str) -> None:
    bucket = request.getfixturevalue("s3_bucket" if scheme == "s3" else "gcs_bucket")
    work = tmp_path / "work"
    with pytest.raises(ContextError, match="no such object"):
        resolve_context(f"{scheme}://{bucket}/missing.tar.gz", work_dir=work)
    open_store(scheme).put_bytes(bucket, "big.tar", make_tar(), content_type="application/x-tar")
    with pytest.raises(ContextError, match="limit"):
        resolve_context(f"{scheme}://{bucket}/big.tar", work_dir=work,
                        limits=ContextLimits(download_bytes=100))
    downloads = work / "downloads"
    assert not downloads.exists() or list(downloads.iterdir()) == []


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_bucket_source_pinned_to_a_version(tmp_path: Path, request: pytest.FixtureRequest,
                                           scheme: str) -> None:
    bucket = request.getfixturevalue("s3_bucket" if scheme == "s3" else "gcs_bucket")
    store = open_store(scheme)
    store.put_bytes(bucket, "app.tar", make_tar({"v": b"1"}), content_type="application/x-tar")
    first = store.head(bucket, "app.tar")
    store.put_bytes(bucket, "app.tar", make_tar({"v": b"2"}), content_type="application/x-tar")
    context = resolve_context(f"{scheme}://{bucket}/app.tar", work_dir=tmp_path / "w1",
                              version=first.version)
    assert read_tree(context.root) == {"v": b"1"}
    assert context.object_info is not None and context.object_info.version == first.version
    latest = resolve_context(f"{scheme}://{bucket}/app.tar", work_dir=tmp_path / "w2")
    assert read_tree(latest.root) == {"v": b"2"}


def test_version_needs_a_bucket_source(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="s3:// and gs:// contexts only"):
        resolve_context(str(tmp_path), work_dir=tmp_path / "w", version="3")


def test_bucket_url_errors(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="names no object"):
        resolve_context("s3://bucket", work_dir=tmp_path)


# --- sub-paths -------------------------------------------------------------------------------


def test_sub_path(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write_tree(source)
    (source / "inside").symlink_to("app")
    for sub in ("app", "/app", "docs/../app", "./app/", "inside"):
        context = resolve_context(str(source), work_dir=tmp_path / "w", sub_path=sub)
        assert context.root == source / "app", sub
    context = resolve_context(str(source), work_dir=tmp_path / "w", sub_path="app/lib")
    assert context.root == source / "app" / "lib"


@pytest.mark.parametrize("sub", ["..", "../src", "app/../../x", "../../../etc"])
def test_sub_path_escape_is_refused(tmp_path: Path, sub: str) -> None:
    source = tmp_path / "src"
    write_tree(source)
    with pytest.raises(ContextError, match="leaves the build context"):
        resolve_context(str(source), work_dir=tmp_path / "w", sub_path=sub)


def test_sub_path_symlink_escape_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write_tree(source)
    (tmp_path / "outside").mkdir()
    (source / "out").symlink_to(tmp_path / "outside")
    (source / "up").symlink_to("..")
    for sub in ("out", "up", "app/../up"):
        with pytest.raises(ContextError, match="leads outside"):
            resolve_context(str(source), work_dir=tmp_path / "w", sub_path=sub)
    # a detour through the parent that comes back inside is fine
    context = resolve_context(str(source), work_dir=tmp_path / "w", sub_path="up/src/app")
    assert context.root == source / "app"


def test_sub_path_must_be_a_directory(tmp_path: Path) -> None:
    source = tmp_path / "src"
    write_tree(source)
    for sub in ("Dockerfile", "missing"):
        with pytest.raises(ContextError, match="not a directory"):
            resolve_context(str(source), work_dir=tmp_path / "w", sub_path=sub)


def test_sub_path_in_archive(tmp_path: Path) -> None:
    archive = tmp_path / "ctx.tar.zst"
    archive.write_bytes(COMPRESSORS["tar.zst"](make_tar()))
    context = resolve_context(f"tar://{archive}", work_dir=tmp_path / "w", sub_path="docs")
    assert read_tree(context.root) == {"readme.md": FILES["docs/readme.md"]}
    with pytest.raises(ContextError, match="leaves"):
        resolve_context(f"tar://{archive}", work_dir=tmp_path / "w2", sub_path="../..")
