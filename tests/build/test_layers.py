"""What layers hold: whiteouts, opaque directories, hardlinks, symlinked destinations, modes,
and --single-snapshot."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest

from tests.build.conftest import Builder

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the chroot sandbox needs root")

PREPARE = ("RUN /bin/busybox --install -s /bin && mkdir -p /data/old/deep /real && "
           "echo 1 > /data/old/deep/f && echo keep > /data/keep && echo o > /real/old\n")


def _members(builder: Builder, image: str, index: int) -> dict[str, tarfile.TarInfo]:
    digest = builder.manifest(image)["layers"][index]["digest"]
    data = gzip.decompress(builder.registry.blob_data_path(digest).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {m.name: m for m in archive.getmembers()}


def test_deletions_replacements_hardlinks_and_modes(bb: Builder) -> None:
    dockerfile = (
        f"FROM {bb.busybox}\n" + PREPARE +
        "RUN rm -r /data/old && rm /data/keep && echo new > /data/new && "
        "rm -r /real && mkdir /real && echo r > /real/only && "
        "ln /data/new /data/link && chmod 4755 /data/new && "
        "ln -s /data/new /data/sym\n"
    )
    bb.build(dockerfile, tag="test/layers:1")
    members = _members(bb, "test/layers:1", 2)
    assert "data/.wh.old" in members and "data/.wh.keep" in members
    assert "data/old/deep/f" not in members and "data/.wh.deep" not in members
    # a recreated directory: an opaque marker, or (same inode number again) a whiteout
    assert "real/.wh..wh..opq" in members or "real/.wh.old" in members
    # the first name in layer order holds the content, the other links to it
    assert members["data/new"].islnk() and members["data/new"].linkname == "data/link"
    assert members["data/link"].isfile() and members["data/link"].mode == 0o4755
    assert members["data/sym"].issym() and members["data/sym"].linkname == "/data/new"
    rootfs = bb.unpack("test/layers:1")
    assert sorted(os.listdir(rootfs / "data")) == ["link", "new", "sym"]
    assert os.listdir(rootfs / "real") == ["only"]
    assert os.stat(rootfs / "data/link").st_ino == os.stat(rootfs / "data/new").st_ino


def test_copy_into_a_symlinked_directory_and_existing_dirs(bb: Builder) -> None:
    dockerfile = (
        f"FROM {bb.busybox}\n" + PREPARE +
        "RUN ln -s /real /linkdir && chmod 1777 /real\n"
        "COPY file.txt /linkdir/\n"
        "COPY conf/ /etc/\n"
    )
    bb.build(dockerfile, {"file.txt": "f", "conf/app.conf": "c"}, tag="test/symdest:1")
    members = _members(bb, "test/symdest:1", 3)
    assert "real/file.txt" in members and "linkdir/file.txt" not in members
    assert members["real"].mode == 0o1777  # existing directory written as it is
    rootfs = bb.unpack("test/symdest:1")
    assert (rootfs / "real/file.txt").read_text() == "f"
    assert (rootfs / "etc/app.conf").read_text() == "c"
    assert (rootfs / "etc/passwd").exists()
    assert os.stat(rootfs / "real").st_mode & 0o7777 == 0o1777


def test_single_snapshot_makes_one_layer(bb: Builder) -> None:
    dockerfile = (f"FROM {bb.busybox}\n" + PREPARE +
                  "COPY file.txt /file.txt\nENV X=1\nRUN echo y > /y\nUSER 1\n")
    result = bb.build(dockerfile, {"file.txt": "f"}, tag="test/single:1", single_snapshot=True)
    config = bb.config("test/single:1")
    assert len(config["rootfs"]["diff_ids"]) == 2
    flags = [(h["created_by"].split(" ")[0], h.get("empty_layer", False))
             for h in config["history"]]
    assert flags[1:] == [("RUN", True), ("COPY", True), ("ENV", True), ("RUN", False),
                         ("USER", True)]
    assert len(result.layers) == 2
    rootfs = bb.unpack("test/single:1")
    assert (rootfs / "file.txt").read_text() == "f"
    assert (rootfs / "y").read_text() == "y\n"
    assert (rootfs / "data/keep").exists()


def test_copy_onto_a_base_without_extracting_it(bb: Builder) -> None:
    bb.build(f"FROM {bb.busybox}\n" + PREPARE + "RUN ln -s /real /linkdir && chmod 1777 /real\n",
             tag="test/linkbase:1")
    dockerfile = (f"FROM {bb.image('test/linkbase:1')}\n"
                  "COPY --chown=nobody:nogroup file.txt /linkdir/\nWORKDIR /data/new/dir\n")
    work = bb.tmp / "kept-work"
    bb.build(dockerfile, {"file.txt": "f"}, tag="test/noextract:1", cleanup=False,
             work_dir=work)
    assert not (work / "stages/0/rootfs").exists()
    members = _members(bb, "test/noextract:1", 3)
    assert "real/file.txt" in members and members["real"].mode == 0o1777
    assert (members["real/file.txt"].uid, members["real/file.txt"].gid) == (65534, 65534)
    workdir_layer = _members(bb, "test/noextract:1", 4)
    assert sorted(workdir_layer) == ["data", "data/new", "data/new/dir"]
    assert workdir_layer["data"].mode == 0o755 and workdir_layer["data/new"].uid == 0
    rootfs = bb.unpack("test/noextract:1")
    assert (rootfs / "real/file.txt").read_text() == "f"
    assert (rootfs / "data/keep").exists() and (rootfs / "data/new/dir").is_dir()
