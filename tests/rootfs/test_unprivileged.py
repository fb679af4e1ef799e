"""Extraction by an unprivileged user (uid 65534, no capabilities), as in a cloud function:
the metadata map carries what the file system cannot."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from core.rootfs import EntryKind, MetadataMap
from tests.rootfs.craft import Tar, snapshot

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
           "--inh-caps=-all"]
CAP = bytes.fromhex("0100000200200000000000000000000000000000")
SCRIPT = """
import sys
from core.rootfs import MetadataMap, extract_layer
root, out, *layers = sys.argv[1:]
metadata = MetadataMap()
for layer in layers:
    with open(layer, "rb") as source:
        metadata = extract_layer(source, root, metadata=metadata).metadata
metadata.save(out)
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="needs root and setpriv to drop to another user")


def _env() -> dict[str, str]:
    site = os.path.dirname(os.path.dirname(zstandard.__file__))
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": f"{REPO}{os.pathsep}{site}"}


@pytest.fixture(scope="module")
def python() -> str:
    """An interpreter user 65534 may run (a venv under /root is out of its reach)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run([*SETPRIV, candidate, "-c", "import core.rootfs"],
                               env=_env(), capture_output=True, cwd="/")
        if probe.returncode == 0:
            return candidate
    pytest.skip("no Python interpreter that user 65534 can run with our packages")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A scratch directory both root and user 65534 can write."""
    path = Path(tempfile.mkdtemp(prefix="bucketbuild-nobody-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def extract_as_nobody(python: str, shared: Path, *layers: Tar) -> MetadataMap:
    root = shared / "root"
    root.mkdir()
    os.chown(root, NOBODY, NOBODY)
    paths = []
    for i, layer in enumerate(layers):
        paths.append(shared / f"layer{i}.tar")
        paths[-1].write_bytes(layer.bytes())
    out = shared / "metadata.json"
    done = subprocess.run([*SETPRIV, python, "-c", SCRIPT, str(root), str(out), *map(str, paths)],
                          env=_env(), capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stderr
    return MetadataMap.load(out)


def test_nobody_records_owners_modes_devices_and_xattrs(python: str, shared: Path) -> None:
    lower = (Tar().dir("etc", mode=0o755).file("etc/shadow", b"s", mode=0o640, gid=42)
             .file("usr/bin/passwd", b"p", mode=0o4755)
             .add("dev/null", kind=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
             .add("dev/sda", kind=tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660, gid=6)
             .add("run/initctl", kind=tarfile.FIFOTYPE, mode=0o600)
             .file("usr/bin/ping", b"elf", mode=0o755,
                   xattrs={"security.capability": CAP, "user.note": b"kept"})
             .dir("proc", mode=0o555).file("proc/stale", b"x", mode=0o000, uid=12)
             .dir("home/app", mode=0o750, uid=1000, gid=1000)
             .hardlink("usr/bin/passwd2", "usr/bin/passwd"))
    upper = Tar().file("proc/.wh.stale").file("etc/.wh.shadow").file("home/app/f", b"1",
                                                                      uid=1000)
    meta = extract_as_nobody(python, shared, lower, upper)
    root = shared / "root"
    passwd = meta["usr/bin/passwd"]
    assert (passwd.kind, passwd.mode, passwd.uid, passwd.gid) == (EntryKind.FILE, 0o4755, 0, 0)
    assert meta["usr/bin/passwd2"] == passwd
    assert meta["usr/bin"] == meta["usr"] and meta["usr"].mode == 0o755  # implicit parents
    null, sda = meta["dev/null"], meta["dev/sda"]
    assert (null.kind, null.devmajor, null.devminor, null.mode) == (EntryKind.CHAR, 1, 3, 0o666)
    assert (sda.kind, sda.devmajor, sda.gid) == (EntryKind.BLOCK, 8, 6)
    assert meta["run/initctl"].kind is EntryKind.FIFO
    assert dict(meta["usr/bin/ping"].xattrs)["security.capability"] == CAP
    assert (meta["proc"].mode, meta["home/app"].uid) == (0o555, 1000)
    assert meta["home/app/f"].uid == 1000
    assert "etc/shadow" not in meta and "proc/stale" not in meta
    # on disk: everything belongs to nobody and stays usable by it
    for path in root.rglob("*"):
        assert path.lstat().st_uid == NOBODY, path
    assert stat.S_ISREG((root / "dev/null").lstat().st_mode)
    assert stat.S_ISFIFO((root / "run/initctl").lstat().st_mode)
    assert stat.S_IMODE((root / "usr/bin/passwd").lstat().st_mode) == 0o755
    assert stat.S_IMODE((root / "proc").lstat().st_mode) == 0o755
    assert sorted(p.name for p in (root / "proc").iterdir()) == []
    assert "security.capability" not in os.listxattr(root / "usr/bin/ping")


def test_nobody_stays_contained(python: str, shared: Path) -> None:
    outside = shared / "outside"
    outside.mkdir()
    (outside / "target").write_text("precious")
    outside.chmod(0o777)
    (outside / "target").chmod(0o666)
    before = snapshot(outside)
    hostile = (Tar().symlink("evil", str(outside)).file("evil/pwned", b"x")
               .symlink("file", str(outside / "target")).file("file", b"overwritten")
               .symlink("up", "../../../..").file(f"up/{str(outside).lstrip('/')}/p2", b"x"))
    meta = extract_as_nobody(python, shared, hostile)
    assert snapshot(outside) == before
    inside = shared / "root" / str(outside).lstrip("/")
    assert sorted(p.name for p in inside.iterdir()) == ["p2", "pwned"]
    assert meta["file"].kind is EntryKind.FILE
