"""Our extraction against tools we did not write: `umoci unpack` for layered images (whiteouts,
opaque directories) and GNU `tar -x` for a single archive. Both run as root here."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from core.rootfs import MetadataMap, extract_layer
from tests.rootfs.craft import Tar

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="reference tools run as root")
LISTED_BEFORE = 1_700_000_000 * 10**9  # every time written in these layers is older
CAP = bytes.fromhex("0100000200200000000000000000000000000000")


def base_layer() -> Tar:
    return (Tar().dir("etc", mode=0o755, mtime=1_500_000_000)
            .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", mode=0o644)
            .file("etc/shadow", b"root:*:1::::::\n", mode=0o640, gid=42)
            .dir("usr/bin", mode=0o755, mtime=1_500_000_100)
            .file("usr/bin/su", b"su-binary", mode=0o4755)
            .file("usr/bin/wall", b"wall", mode=0o2755, gid=5)
            .file("usr/bin/ping", b"ping", mode=0o755, xattrs={"security.capability": CAP})
            .file("usr/bin/noted", b"n", xattrs={"user.origin": b"test"})
            .hardlink("usr/bin/su2", "usr/bin/su")
            .dir("usr/lib", mode=0o755).file("usr/lib/libc.so", b"libc")
            .symlink("lib", "usr/lib").symlink("bin", "/usr/bin").symlink("dangling", "../none")
            .dir("tmp", mode=0o1777, mtime=1_500_000_200)
            .dir("home/app", mode=0o750, uid=1000, gid=1000, mtime=1_500_000_300)
            .file("home/app/.profile", b"export A=1\n", mode=0o600, uid=1000, gid=1000)
            .add("dev/null", kind=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
            .add("dev/sda", kind=tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660, gid=6)
            .add("run/fifo", kind=tarfile.FIFOTYPE, mode=0o600)
            .dir("opt/data", mode=0o755).file("opt/data/old", b"old").dir("opt/data/sub")
            .file("opt/data/sub/older", b"older").file("var/gone/file", b"x")
            .file("replace-me", b"file").dir("becomes-file").file("becomes-file/x", b"x"))


def upper_layer() -> Tar:
    return (Tar().file("etc/.wh.shadow").file("var/.wh.gone")
            .dir("opt/data", mode=0o700, mtime=1_600_000_000).file("opt/data/.wh..wh..opq")
            .file("opt/data/new", b"new")
            .dir("replace-me", mode=0o711).file("becomes-file", b"now a file")
            .file("lib/libm.so", b"libm", mode=0o755)
            .file("usr/bin/su", b"patched", mode=0o4750, gid=10))


def tree(top: Path) -> dict[str, tuple[object, ...]]:
    """Everything `lstat`, `readlink`, content and xattrs say about a tree (not its top)."""
    found: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, list[str]] = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(folder, name)
            rel = str(path.relative_to(top))
            st = path.lstat()
            inodes.setdefault(st.st_ino, []).append(rel)
            body: object = None
            if stat.S_ISREG(st.st_mode):
                body = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(path)
            xattrs = sorted((k, os.getxattr(path, k, follow_symlinks=False))
                            for k in os.listxattr(path, follow_symlinks=False))
            times: int | str | None = None if stat.S_ISLNK(st.st_mode) else st.st_mtime_ns
            if not stat.S_ISLNK(st.st_mode) and st.st_mtime_ns > LISTED_BEFORE:
                times = "implicit"  # a parent the archive did not list: made just now
            found[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                          st.st_gid, st.st_rdev, body, times, tuple(xattrs))
    for group in inodes.values():
        for rel in group:
            found[rel] += (tuple(sorted(group)),)
    return found


def oci_layout(path: Path, layers: list[bytes]) -> None:
    """A minimal OCI image layout with `layers` (plain tars, stored gzipped) tagged latest."""
    blobs = path / "blobs/sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    packed = [gzip.compress(layer) for layer in layers]
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": [
                  f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": put(json.dumps(config).encode(),
                              "application/vnd.oci.image.config.v1+json"),
                "layers": [put(p, "application/vnd.oci.image.layer.v1.tar+gzip")
                           for p in packed]}
    descriptor = put(json.dumps(manifest).encode(), manifest["mediaType"])  # type: ignore[arg-type]
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def ours(root: Path, layers: list[bytes]) -> MetadataMap:
    root.mkdir()
    metadata = MetadataMap()
    for layer in layers:
        metadata = extract_layer(io.BytesIO(gzip.compress(layer)), root,
                                 metadata=metadata).metadata
    return metadata


@pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is not installed")
def test_two_layers_match_umoci_unpack(tmp_path: Path) -> None:
    layers = [base_layer().bytes(), upper_layer().bytes()]
    oci_layout(tmp_path / "image", layers)
    subprocess.run(["umoci", "unpack", "--image", f"{tmp_path / 'image'}:latest",
                    str(tmp_path / "bundle")], check=True, capture_output=True)
    assert ours(tmp_path / "ours", layers) == MetadataMap()
    theirs, mine = tree(tmp_path / "bundle/rootfs"), tree(tmp_path / "ours")
    assert sorted(mine) == sorted(theirs)
    assert {k: (v, theirs[k]) for k, v in mine.items() if v != theirs[k]} == {}
    assert "opt/data/old" not in mine and (tmp_path / "ours/usr/lib/libm.so").exists()


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is not installed")
def test_one_layer_matches_gnu_tar(tmp_path: Path) -> None:
    layer = base_layer().bytes()
    (tmp_path / "layer.tar").write_bytes(layer)
    (tmp_path / "gnu").mkdir()
    subprocess.run(["tar", "--numeric-owner", "--same-owner", "--same-permissions",
                    "--xattrs", "--xattrs-include=*", "-xf", str(tmp_path / "layer.tar"),
                    "-C", str(tmp_path / "gnu")], check=True, capture_output=True)
    ours(tmp_path / "ours", [layer])
    theirs, mine = tree(tmp_path / "gnu"), tree(tmp_path / "ours")
    assert sorted(mine) == sorted(theirs)
    assert {k: (v, theirs[k]) for k, v in mine.items() if v != theirs[k]} == {}
