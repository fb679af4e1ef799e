"""Hostile layers: every one either extracts to a contained, correct result or fails clearly,
and nothing outside the destination is created, changed or deleted."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.errors import ArchiveError, BudgetError, BuildError, RootfsError
from core.rootfs import extract_layer
from core.rootfs.prune import remove
from tests.rootfs.craft import Tar, snapshot

Build = Callable[[str], bytes]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A destination `root` with a sentinel tree `outside` beside it."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "target.txt").write_text("precious")
    (outside / "sub/deep.txt").write_text("deep")
    (outside / "link").symlink_to("target.txt")
    root = tmp_path / "root"
    root.mkdir()
    yield root, outside
    top = os.open(tmp_path, os.O_RDONLY)  # deep trees are beyond shutil.rmtree's recursion
    try:
        remove(top, "root", path="root")
    finally:
        os.close(top)


def run(root: Path, data: bytes, **kw: object) -> BuildError | None:
    try:
        extract_layer(io.BytesIO(data), root, **kw)  # type: ignore[arg-type]
    except (ArchiveError, RootfsError, BudgetError) as e:
        assert str(e)  # clear: never an empty message
        return e
    return None


def lower(out: str) -> bytes:
    """A first layer that leaves symlinks pointing at the sentinel, for later layers to abuse."""
    return (Tar().symlink("abs", out).symlink("up", "../" * 12 + out.lstrip("/"))
            .symlink("file", out + "/target.txt").symlink("rel", "../outside").bytes())


CASES: dict[str, tuple[Build, str]] = {
    "dotdot-name": (lambda out: Tar().file("../outside/pwned", b"x").bytes(), "error"),
    "dotdot-middle": (lambda out: Tar().file("a/../../outside/pwned", b"x").bytes(), "error"),
    "dotdot-pax-path": (lambda out: Tar().file("innocent", b"x",
                                               pax={"path": "../outside/pwned"}).bytes(),
                        "error"),
    "dotdot-gnu-longname": (lambda out: _gnu_long("../" * 40 + "outside/pwned"), "error"),
    "absolute-name": (lambda out: Tar().file(out + "/pwned", b"x").bytes(), "ok"),
    "write-through-absolute-symlink": (lambda out: Tar().file("abs/pwned", b"x").bytes(), "ok"),
    "write-through-dotdot-symlink": (lambda out: Tar().file("up/pwned", b"x").bytes(), "ok"),
    "write-through-relative-escape": (lambda out: Tar().file("rel/pwned", b"x").bytes(), "ok"),
    "overwrite-symlink-to-outside-file": (lambda out: Tar().file("file", b"x").bytes(), "ok"),
    "dir-over-symlink": (lambda out: Tar().dir("abs", mode=0o700).bytes(), "ok"),
    "chain-then-write": (lambda out: Tar().symlink("c1", "c2").symlink("c2", "abs")
                         .file("c1/sub/pwned", b"x").bytes(), "ok"),
    "loop-then-write": (lambda out: Tar().symlink("l1", "l2").symlink("l2", "l1")
                        .file("l1/x", b"x").bytes(), "error"),
    "swap-dir-for-symlink": (lambda out: Tar().dir("d").file("d/a", b"1").symlink("d", out)
                             .file("d/b", b"x").bytes(), "ok"),
    "hardlink-dotdot": (lambda out: Tar().hardlink("h", "../outside/target.txt").bytes(),
                        "error"),
    "hardlink-absolute": (lambda out: Tar().hardlink("h", out + "/target.txt").bytes(),
                          "error"),
    "hardlink-through-symlink": (lambda out: Tar().hardlink("h", "abs/target.txt").bytes(),
                                 "error"),
    "hardlink-to-outside-symlink-then-write": (
        lambda out: Tar().hardlink("h", "file").file("h", b"x").bytes(), "ok"),
    "hardlink-not-yet-extracted": (lambda out: Tar().hardlink("h", "later")
                                   .file("later", b"x").bytes(), "error"),
    "whiteout-dotdot": (lambda out: Tar().file("../outside/.wh.target.txt").bytes(), "error"),
    "whiteout-named-dotdot": (lambda out: Tar().file("sub/.wh..").bytes(), "error"),
    "whiteout-through-symlink": (lambda out: Tar().file("abs/.wh.target.txt")
                                 .file("up/.wh.sub").file("rel/.wh.link").bytes(), "ok"),
    "whiteout-of-outside-symlink": (lambda out: Tar().file(".wh.abs").file(".wh.file")
                                    .bytes(), "ok"),
    "opaque-through-symlink": (lambda out: Tar().file("abs/.wh..wh..opq")
                               .file("up/.wh..wh..opq").bytes(), "ok"),
    "devices-and-fifos": (lambda out: Tar().add("abs/null", kind=tarfile.CHRTYPE,
                                                devmajor=1, devminor=3)
                          .add("up/fifo", kind=tarfile.FIFOTYPE).bytes(), "ok"),
    "duplicates": (lambda out: Tar().file("f", b"1").symlink("f", out).file("f", b"2")
                   .dir("f").file("f/x", b"3").bytes(), "ok"),
    "huge-declared-size": (lambda out: Tar().file("big", size=1 << 40).bytes(end=False),
                           "error"),
    "truncated-stream": (lambda out: Tar().file("a", b"x" * 2000).bytes()[:1500], "error"),
    "corrupt-header": (lambda out: Tar().file("a", b"1").bytes(end=False) + b"\x07" * 512,
                       "error"),
    "corrupt-gzip": (lambda out: gzip.compress(Tar().file("a", b"1" * 9000).bytes())[:60],
                     "error"),
    "not-an-archive": (lambda out: b"#!/bin/sh\necho definitely not a tar\n" * 20, "error"),
    "name-4096-bytes-one-component": (lambda out: Tar().file("n" * 4096, b"x").bytes(),
                                      "error"),
    "name-4096-bytes-many-components": (lambda out: Tar().file("d/" * 2047 + "ff", b"x")
                                        .bytes(), "ok"),
    "non-utf8-names": (lambda out: Tar().file(os.fsdecode(b"\xff\xfe/../\xc0"), b"x")
                       .symlink(os.fsdecode(b"\xe9"), out).file(os.fsdecode(b"\xe9/p"), b"x")
                       .bytes(), "ok"),
    "empty-symlink-target": (lambda out: Tar().symlink("s", "").bytes(), "error"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_layer_stays_contained(site: tuple[Path, Path], case: str) -> None:
    root, outside = site
    build, expected = CASES[case]
    assert run(root, lower(str(outside))) is None
    before = snapshot(outside.parent, skip=root)
    error = run(root, build(str(outside)))
    assert snapshot(outside.parent, skip=root) == before
    assert (outside / "target.txt").read_text() == "precious"
    assert (error is None) == (expected == "ok"), error
    assert not any(p.name == "pwned" for p in outside.rglob("*"))


def test_escapes_land_inside_the_root(site: tuple[Path, Path]) -> None:
    root, outside = site
    run(root, lower(str(outside)))
    inside = root / str(outside).lstrip("/")
    assert run(root, Tar().file("abs/a", b"1").file("up/b", b"2").file(str(outside) + "/c", b"3")
               .file("rel/d", b"4").bytes()) is None
    assert sorted(p.name for p in inside.iterdir()) == ["a", "b", "c"]
    assert (root / "outside/d").read_bytes() == b"4"


def test_gzip_bomb_is_stopped_by_the_budget(site: tuple[Path, Path]) -> None:
    root, outside = site
    before = snapshot(outside.parent, skip=root)
    bomb = gzip.compress(Tar().file("zeros", b"\0" * (64 << 20)).bytes(), 9)
    assert len(bomb) < 200_000
    error = run(root, bomb, max_bytes=16 << 20)
    assert isinstance(error, BudgetError)
    assert snapshot(outside.parent, skip=root) == before


class DeepChain(io.RawIOBase):
    """A tar stream of `depth` nested directory entries, generated as it is read."""

    def __init__(self, depth: int) -> None:
        self._entries = self._generate(depth)
        self._pending = b""

    @staticmethod
    def _generate(depth: int) -> Iterator[bytes]:
        for level in range(1, depth + 1):
            yield Tar().dir("d/" * level, mtime=level).bytes(end=False)
        yield Tar().file("d/" * depth + "bottom", b"deep").bytes()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            self._pending = next(self._entries, b"")
            if not self._pending:
                return 0
        count = min(len(buffer), len(self._pending))
        memoryview(buffer).cast("B")[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def _bottom(root: Path, depth: int) -> bytes:
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.stat("bottom", dir_fd=fd).st_size.to_bytes(2, "big")
    finally:
        os.close(fd)


def test_ten_thousand_deep_directories(site: tuple[Path, Path]) -> None:
    root, outside = site
    depth = 10_000
    try:
        implicit = Tar().file("d/" * depth + "bottom", b"deep").bytes()
        assert run(root, implicit) is None
        assert _bottom(root, depth) == (4).to_bytes(2, "big")
        assert run(root, Tar().file(".wh.d").bytes()) is None  # removing it recurses nowhere
        assert not (root / "d").exists()
        stream = io.BufferedReader(DeepChain(depth))
        extract_layer(stream, root)
        assert _bottom(root, depth) == (4).to_bytes(2, "big")
        assert (root / "d").lstat().st_mtime_ns == 10**9
    finally:
        assert (outside / "target.txt").read_text() == "precious"


def _gnu_long(name: str) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape") + b"x" + b"\0" * 1535
