"""Unpacking build-context archives: faithful for honest archives, refusing for hostile ones,
and never touching anything outside the destination."""

from __future__ import annotations

import gzip
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.context.archive import UnpackedContext, unpack_context
from core.errors import ArchiveError, BudgetError, ContextError
from core.rootfs.prune import remove
from tests.rootfs.craft import Tar, compress, snapshot

KINDS = ["none", "gzip", "zstd", "bzip2", "xz"]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A destination `ctx` with a sentinel tree `outside` beside it."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "target.txt").write_text("precious")
    (outside / "link").symlink_to("sub")
    dest = tmp_path / "ctx"
    dest.mkdir()
    yield dest, outside
    top = os.open(tmp_path, os.O_RDONLY)  # deep trees are beyond shutil.rmtree's recursion
    try:
        remove(top, "ctx", path="ctx")
    finally:
        os.close(top)


def unpack(dest: Path, data: bytes, **kw: int) -> UnpackedContext:
    return unpack_context(io.BytesIO(data), dest, **kw)


def sample() -> Tar:
    return (Tar().file("Dockerfile", b"FROM scratch\nCOPY . /\n", mtime=1_650_000_000)
            .dir("src", mode=0o750, mtime=1_650_000_100)
            .file("src/run.sh", b"#!/bin/sh\n", mode=0o755, uid=1234, gid=1234)
            .symlink("src/abs-link", "/etc/passwd").symlink("latest", "src")
            .hardlink("src/run2.sh", "src/run.sh").file("latest/via-link", b"inside")
            .file(".wh.not-a-whiteout", b"plain file here")
            .file("xattr", b"x", xattrs={"user.a": b"1", "security.capability": b"\1"}))


@pytest.mark.parametrize("kind", KINDS)
def test_unpacks_every_format(site: tuple[Path, Path], kind: str) -> None:
    dest, _ = site
    result = unpack(dest, compress(sample().bytes(), kind))
    assert result.compression == kind and result.entries == 9 and result.skipped == ()
    assert (dest / "Dockerfile").read_bytes().startswith(b"FROM scratch")
    assert (dest / "Dockerfile").stat().st_mtime_ns == 1_650_000_000 * 10**9
    run = (dest / "src/run.sh").lstat()
    assert stat.S_IMODE(run.st_mode) == 0o755
    assert (run.st_uid, run.st_nlink) == (os.geteuid(), 2)  # the builder owns context files
    assert stat.S_IMODE((dest / "src").lstat().st_mode) == 0o750
    assert (dest / "src").lstat().st_mtime_ns == 1_650_000_100 * 10**9
    assert os.readlink(dest / "src/abs-link") == "/etc/passwd"  # kept as a link, not followed
    assert (dest / "src/via-link").read_bytes() == b"inside"  # symlinked parent inside: fine
    assert (dest / ".wh.not-a-whiteout").exists()
    assert os.listxattr(dest / "xattr") == []


def test_matches_the_directory_gnu_tar_packed(site: tuple[Path, Path], tmp_path: Path) -> None:
    dest, _ = site
    src = tmp_path / "src"
    (src / "app/static").mkdir(parents=True)
    (src / "app/main.py").write_text("print('hi')\n")
    (src / "app/static/logo.svg").write_bytes(bytes(range(256)) * 40)
    (src / "app/run").write_text("#!/bin/sh\n")
    (src / "app/run").chmod(0o755)
    (src / "current").symlink_to("app")
    os.link(src / "app/main.py", src / "app/main-again.py")
    archive = subprocess.run(["tar", "-czf", "-", "-C", str(src), "."], check=True,
                             capture_output=True).stdout
    unpack(dest, archive)
    for path in src.rglob("*"):
        mine, theirs = dest / path.relative_to(src), path
        a, b = mine.lstat(), theirs.lstat()
        assert (a.st_mode, a.st_size, a.st_nlink) == (b.st_mode, b.st_size, b.st_nlink), path
        if path.is_file() and not path.is_symlink():
            assert mine.read_bytes() == theirs.read_bytes()
            assert a.st_mtime_ns // 10**9 == b.st_mtime_ns // 10**9


def test_devices_and_fifos_are_left_out(site: tuple[Path, Path]) -> None:
    dest, _ = site
    result = unpack(dest, Tar().add("null", kind=tarfile.CHRTYPE, devmajor=1, devminor=3)
                    .add("fifo", kind=tarfile.FIFOTYPE).file("ok", b"1").bytes())
    assert result.skipped == ("null", "fifo") and result.entries == 1
    assert sorted(p.name for p in dest.iterdir()) == ["ok"]


def test_later_duplicates_win(site: tuple[Path, Path]) -> None:
    dest, _ = site
    unpack(dest, Tar().file("a", b"1").file("a", b"2").dir("b").file("b/x", b"x")
           .file("b", b"file").bytes())
    assert (dest / "a").read_bytes() == b"2" and (dest / "b").read_bytes() == b"file"


def test_read_only_directories_still_get_their_contents(site: tuple[Path, Path]) -> None:
    dest, _ = site
    unpack(dest, Tar().dir("ro", mode=0o555).file("ro/f", b"1", mode=0o444).bytes())
    assert (dest / "ro/f").read_bytes() == b"1"
    assert stat.S_IMODE((dest / "ro").lstat().st_mode) == 0o555
    (dest / "ro").chmod(0o755)


Build = Callable[[str], bytes]
REFUSED: dict[str, tuple[Build, str]] = {
    "dotdot": (lambda out: Tar().file("../outside/pwned", b"x").bytes(), "climbs out"),
    "dotdot-middle": (lambda out: Tar().file("a/../../x", b"x").bytes(), "climbs out"),
    "absolute": (lambda out: Tar().file(out + "/pwned", b"x").bytes(), "absolute"),
    "pax-path": (lambda out: Tar().file("fine", b"x", pax={"path": "../../pwned"}).bytes(),
                 "climbs out"),
    "write-through-absolute-link": (lambda out: Tar().symlink("evil", out)
                                    .file("evil/pwned", b"x").bytes(), "leaves the root"),
    "write-through-dotdot-link": (lambda out: Tar().symlink("evil", "../outside")
                                  .file("evil/pwned", b"x").bytes(), "out of the root"),
    "write-through-chain": (lambda out: Tar().symlink("a", "b").symlink("b", "../../..")
                            .file("a/pwned", b"x").bytes(), "out of the root"),
    "link-loop": (lambda out: Tar().symlink("a", "b").symlink("b", "a").file("a/x", b"x")
                  .bytes(), "too many levels"),
    "hardlink-dotdot": (lambda out: Tar().hardlink("h", "../outside/target.txt").bytes(),
                        "climbs out"),
    "hardlink-absolute": (lambda out: Tar().hardlink("h", out + "/target.txt").bytes(),
                          "absolute"),
    "hardlink-through-link": (lambda out: Tar().symlink("evil", out)
                              .hardlink("h", "evil/target.txt").bytes(), "leaves the root"),
    "hardlink-not-yet-there": (lambda out: Tar().hardlink("h", "later").file("later", b"x")
                               .bytes(), "does not exist yet"),
    "name-too-long": (lambda out: Tar().file("n" * 4096, b"x").bytes(), "name too long"),
    "truncated": (lambda out: Tar().file("a", b"x" * 3000).bytes()[:2000], "ends inside 'a'"),
    "huge-size": (lambda out: Tar().file("a", size=1 << 50).bytes(end=False), "ends inside"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_archives_are_refused(site: tuple[Path, Path], case: str) -> None:
    dest, outside = site
    build, message = REFUSED[case]
    before = snapshot(outside.parent, skip=dest)
    with pytest.raises(ArchiveError, match=message):
        unpack(dest, build(str(outside)))
    assert snapshot(outside.parent, skip=dest) == before


def test_overwriting_a_link_to_outside_replaces_the_link(site: tuple[Path, Path]) -> None:
    dest, outside = site
    before = snapshot(outside.parent, skip=dest)
    unpack(dest, Tar().symlink("f", str(outside / "target.txt")).file("f", b"mine")
           .symlink("d", str(outside)).dir("d").file("d/x", b"x").bytes())
    assert snapshot(outside.parent, skip=dest) == before
    assert (dest / "f").read_bytes() == b"mine" and (dest / "d/x").exists()


def test_non_utf8_and_deep_names(site: tuple[Path, Path]) -> None:
    dest, _ = site
    odd = os.fsdecode(b"caf\xe9/\xff")
    deep = "d/" * 3000 + "bottom"
    unpack(dest, Tar().file(odd, b"1").file(deep, b"2").bytes())
    assert (dest / os.fsdecode(b"caf\xe9") / os.fsdecode(b"\xff")).read_bytes() == b"1"


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"),
    (b"FROM scratch\n" * 100, "not a tar archive"),
    (b"\x1f\x8b" + b"\0" * 100, "not a tar archive"),
    (gzip.compress(b"just some text, compressed" * 50), "not a tar archive"),
    (b"PK\x03\x04" + b"\0" * 600, "not a tar archive"),
])
def test_not_an_archive(site: tuple[Path, Path], data: bytes, message: str) -> None:
    dest, _ = site
    with pytest.raises(ContextError, match=message) as caught:
        unpack(dest, data)
    assert not isinstance(caught.value, ArchiveError)
    assert list(dest.iterdir()) == []


def test_empty_archive_is_an_empty_context(site: tuple[Path, Path]) -> None:
    dest, _ = site
    assert unpack(dest, Tar().bytes()).entries == 0


def test_limits(site: tuple[Path, Path]) -> None:
    dest, outside = site
    many = Tar()
    for i in range(20):
        many.file(f"f{i}", b"x")
    with pytest.raises(BudgetError, match="more than 10 entries"):
        unpack(dest, many.bytes(), max_entries=10)
    assert unpack(dest, many.bytes(), max_entries=20).entries == 20
    with pytest.raises(BudgetError, match="declares"):
        unpack(dest, Tar().file("big", size=1 << 40).bytes(end=False), max_bytes=1 << 20)
    bomb = gzip.compress(Tar().file("zeros", b"\0" * (32 << 20)).bytes(), 9)
    before = snapshot(outside.parent, skip=dest)
    with pytest.raises(BudgetError):
        unpack(dest, bomb, max_bytes=4 << 20)
    assert snapshot(outside.parent, skip=dest) == before
