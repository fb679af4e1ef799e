"""Layer extraction with OCI semantics (run as root: ownership, devices, xattrs are real)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from core.errors import ArchiveError, BudgetError
from core.rootfs import EntryKind, MetadataMap, extract_layer
from core.rootfs.extract import LayerResult
from tests.rootfs.craft import Tar, compress

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
CAP_NET_RAW = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw=ep


def apply(root: Path, tar: Tar, **kw: object) -> LayerResult:
    return extract_layer(io.BytesIO(tar.bytes()), root, **kw)  # type: ignore[arg-type]


def names(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@root_only
def test_files_modes_owners_and_times(root: Path) -> None:
    apply(root, Tar().dir("bin", mode=0o755, mtime=1000)
          .file("bin/su", b"x", mode=0o4755, uid=0, gid=0, mtime=2000)
          .file("bin/wall", b"y", mode=0o2755, uid=0, gid=5)
          .dir("tmp", mode=0o1777).dir("home/u", mode=0o700, uid=1000, gid=1000, mtime=3000)
          .file("home/u/.profile", b"z", mode=0o600, uid=1000, gid=1000, mtime=4000)
          .dir("ro", mode=0o555).file("ro/f", b"w", mode=0o444))
    st = (root / "bin/su").lstat()
    assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (0o4755, 2000 * 10**9)
    st = (root / "bin/wall").lstat()
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o2755, 5)
    assert stat.S_IMODE((root / "tmp").lstat().st_mode) == 0o1777
    home = (root / "home/u").lstat()
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (1000, 1000, 0o700)
    assert home.st_mtime_ns == 3000 * 10**9  # set after its contents were written
    assert (root / "bin").lstat().st_mtime_ns == 1000 * 10**9
    assert stat.S_IMODE((root / "ro").lstat().st_mode) == 0o555
    assert (root / "ro/f").read_bytes() == b"w"


@root_only
def test_xattrs_including_file_capabilities(root: Path) -> None:
    apply(root, Tar().file("ping", b"elf", mode=0o755, uid=0,
                           xattrs={"security.capability": CAP_NET_RAW, "user.origin": b"t"})
          .dir("d", xattrs={"trusted.overlay.x": b"1"}))
    assert os.getxattr(root / "ping", "security.capability") == CAP_NET_RAW
    assert os.getxattr(root / "ping", "user.origin") == b"t"
    assert os.getxattr(root / "d", "trusted.overlay.x") == b"1"


def test_symlinks_are_written_as_is(root: Path) -> None:
    apply(root, Tar().symlink("abs", "/etc/passwd", mtime=5).symlink("rel", "../../x")
          .symlink("dangling", "nowhere"))
    assert os.readlink(root / "abs") == "/etc/passwd"
    assert os.readlink(root / "rel") == "../../x"
    assert (root / "abs").lstat().st_mtime_ns == 5 * 10**9


def test_hardlinks_share_the_inode(root: Path) -> None:
    apply(root, Tar().file("a/f", b"data", mode=0o640).hardlink("b/g", "a/f")
          .hardlink("b/h", "/a/f").symlink("s", "a/f").hardlink("s2", "s"))
    assert (root / "a/f").stat().st_ino == (root / "b/g").stat().st_ino
    assert (root / "b/h").lstat().st_nlink == 3
    assert (root / "s2").is_symlink() and os.readlink(root / "s2") == "a/f"
    apply(root, Tar().hardlink("lower", "a/f").hardlink("lower", "a/f"))  # from a lower layer
    assert (root / "lower").stat().st_nlink == 4


@pytest.mark.parametrize(("tar", "message"), [
    (Tar().hardlink("l", "missing"), "does not exist yet"),
    (Tar().dir("d").hardlink("l", "d"), "is a directory"),
    (Tar().hardlink("l", "../outside"), "climbs out"),
    (Tar().hardlink("l", ""), "not in the root"),
])
def test_bad_hardlinks(root: Path, tar: Tar, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        apply(root, tar)


@root_only
def test_devices_and_fifos(root: Path) -> None:
    apply(root, Tar().add("dev/null", kind=tarfile.CHRTYPE, devmajor=1, devminor=3,
                          mode=0o666)
          .add("dev/loop0", kind=tarfile.BLKTYPE, devmajor=7, devminor=0, mode=0o660, gid=6)
          .add("run/fifo", kind=tarfile.FIFOTYPE, mode=0o620))
    null = (root / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    loop = (root / "dev/loop0").lstat()
    assert stat.S_ISBLK(loop.st_mode) and loop.st_gid == 6
    fifo = (root / "run/fifo").lstat()
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620


def test_whiteouts_remove_lower_paths(root: Path) -> None:
    apply(root, Tar().file("etc/a", b"1").file("etc/b", b"2").file("opt/x/y/z", b"3"))
    apply(root, Tar().file("etc/.wh.a").file("opt/.wh.x").file("nothing/.wh.here")
          .file("etc/.wh.never-was"))
    assert names(root) == ["etc", "etc/b", "opt"]


def test_whiteout_applies_to_lower_layers_only(root: Path) -> None:
    apply(root, Tar().file("f", b"lower").file("d/old", b"lower"))
    apply(root, Tar().file("f", b"upper").file(".wh.f").file("g", b"new").file(".wh.g")
          .file("d/new", b"upper").file(".wh.d"))
    assert (root / "f").read_bytes() == b"upper"
    assert (root / "g").read_bytes() == b"new"
    assert names(root) == ["d", "d/new", "f", "g"]


def test_opaque_directories_across_two_layers(root: Path) -> None:
    apply(root, Tar().file("d/a", b"1").file("d/sub/b", b"2").file("keep/c", b"3"))
    apply(root, Tar().dir("d").file("d/+early", b"e").file("d/.wh..wh..opq")
          .file("d/late", b"l").dir("d/sub").file("d/sub/new", b"n"))
    assert names(root) == ["d", "d/+early", "d/late", "d/sub", "d/sub/new", "keep", "keep/c"]


def test_opaque_marker_for_a_new_directory(root: Path) -> None:
    apply(root, Tar().file("fresh/.wh..wh..opq").file(".wh..wh.aufs").dir(".wh..wh.plnk"))
    assert names(root) == ["fresh"]


@pytest.mark.parametrize("name", [".wh..", ".wh.", "d/.wh..", "d/.wh.."])
def test_whiteouts_naming_dot_dot_are_refused(root: Path, name: str) -> None:
    apply(root, Tar().file("d/x", b"1"))
    with pytest.raises(ArchiveError, match="whiteout"):
        apply(root, Tar().file(name))
    assert (root / "d/x").exists()


def test_type_changes_between_layers(root: Path) -> None:
    apply(root, Tar().file("d/f", b"1").file("f", b"2").symlink("s", "d"))
    apply(root, Tar().file("d", b"now a file").dir("f").file("f/inner", b"x").dir("s"))
    assert (root / "d").read_bytes() == b"now a file"
    assert (root / "f/inner").read_bytes() == b"x"
    assert (root / "s").is_dir() and not (root / "s").is_symlink()


def test_duplicates_in_one_layer_later_wins(root: Path) -> None:
    apply(root, Tar().file("f", b"first").file("f", b"second").dir("x").file("x/y", b"1")
          .file("x", b"file now").file("z", b"1").dir("z", mode=0o700, mtime=77))
    assert (root / "f").read_bytes() == b"second"
    assert (root / "x").read_bytes() == b"file now"
    assert (root / "z").is_dir() and (root / "z").lstat().st_mtime_ns == 77 * 10**9


def test_merged_usr_symlinked_parents(root: Path) -> None:
    apply(root, Tar().dir("usr/lib").symlink("lib", "usr/lib").symlink("abs", "/usr"))
    apply(root, Tar().file("lib/libc.so", b"c").file("abs/lib/libm.so", b"m"))
    assert (root / "usr/lib/libc.so").read_bytes() == b"c"
    assert (root / "usr/lib/libm.so").read_bytes() == b"m"
    apply(root, Tar().file("lib/.wh.libc.so"))
    assert not (root / "usr/lib/libc.so").exists()
    apply(root, Tar().dir("lib").file("lib/own", b"o"))  # a directory entry replaces the link
    assert (root / "lib").is_dir() and not (root / "lib").is_symlink()
    assert (root / "usr/lib/libm.so").exists()


def test_root_entry_and_absolute_names(root: Path) -> None:
    result = apply(root, Tar().dir("./", mode=0o700).file("/abs/f", b"1").file("./rel", b"2"))
    assert names(root) == ["abs", "abs/f", "rel"]
    assert stat.S_IMODE(root.lstat().st_mode) == 0o755
    assert result.entries == 3


def test_unprivileged_mode_records_the_real_metadata(root: Path) -> None:
    result = apply(root, Tar().file("bin/su", b"x", mode=0o4750, uid=0, gid=5)
                   .dir("secret", mode=0o000).file("secret/k", b"k", mode=0o000)
                   .add("dev/null", kind=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
                   .file("cap", b"c", xattrs={"security.capability": CAP_NET_RAW})
                   .hardlink("bin/su2", "bin/su"), privileged=False)
    meta = result.metadata
    assert meta["bin/su"].mode == 0o4750 and meta["bin/su"].gid == 5
    assert meta["bin/su2"] == meta["bin/su"]
    assert meta["bin"].kind is EntryKind.DIR and meta["bin"].mode == 0o755  # implicit parent
    assert (meta["dev/null"].kind, meta["dev/null"].devmajor) == (EntryKind.CHAR, 1)
    assert dict(meta["cap"].xattrs) == {"security.capability": CAP_NET_RAW}
    assert stat.S_ISREG((root / "dev/null").lstat().st_mode)  # a placeholder
    assert stat.S_IMODE((root / "bin/su").lstat().st_mode) == 0o750 | 0o600
    assert stat.S_IMODE((root / "secret").lstat().st_mode) == 0o700
    assert (root / "secret/k").read_bytes() == b"k"


def test_metadata_map_follows_removals(root: Path) -> None:
    first = apply(root, Tar().file("a/x", b"1", uid=5).file("b", b"2", uid=6),
                  privileged=False)
    assert set(first.metadata) == {"a", "a/x", "b"}
    second = apply(root, Tar().file("a/.wh.x").file("b", b"3", uid=7),
                   metadata=first.metadata, privileged=False)
    assert set(second.metadata) == {"a", "b"} and second.metadata["b"].uid == 7
    assert set(first.metadata) == {"a", "a/x", "b"}  # the input map is not changed
    if os.geteuid() == 0:
        third = apply(root, Tar().file("b", b"4", uid=8), metadata=second.metadata)
        assert set(third.metadata) == {"a"}


def test_result_reports_compression_and_size(root: Path) -> None:
    tar = Tar().file("f", b"x" * 3000)
    result = extract_layer(io.BytesIO(compress(tar.bytes(), "zstd")), root)
    assert (result.compression, result.entries, result.size) == ("zstd", 1, len(tar.bytes()))
    assert isinstance(result.metadata, MetadataMap)


def test_declared_size_over_budget_fails_before_writing(root: Path) -> None:
    tar = Tar().file("big", size=10**12)
    with pytest.raises(BudgetError, match="declares"):
        extract_layer(io.BytesIO(tar.bytes(end=False)), root, max_bytes=1 << 20)
    assert not (root / "big").exists()


def test_huge_declared_size_with_a_short_stream(root: Path) -> None:
    with pytest.raises(ArchiveError, match="archive ends inside 'big'"):
        apply(root, Tar().file("big", b"only this", size=10**10))


def test_non_utf8_names_round_trip(root: Path) -> None:
    name = os.fsdecode(b"caf\xe9/\xff\xfe")
    apply(root, Tar().file(name, b"bytes").symlink(os.fsdecode(b"l\xe9"), name))
    assert (root / os.fsdecode(b"caf\xe9") / os.fsdecode(b"\xff\xfe")).read_bytes() == b"bytes"
    assert os.readlink(root / os.fsdecode(b"l\xe9")) == name
