"""Archive contexts through the real CLI (`python -m core build`): gzip bombs are refused within
the disk budget and leave nothing behind; an archive's Dockerfile stays inside the archive."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.context.test_source import make_tar

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20


def cli(*args: str, tmp: Path) -> tuple[int, str, float]:
    """Run a build with `tmp` as the temp dir (its work dir goes there): code, stderr, seconds."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "core", "build", "--no-push", *args],
                          cwd=REPO, env={**os.environ, "TMPDIR": str(tmp)}, timeout=300,
                          capture_output=True, text=True, check=False)
    return done.returncode, done.stderr, time.monotonic() - started


def left_in(tmp: Path, *, wait: float = 15.0) -> list[str]:
    """What remains in `tmp` once a detached removal had `wait` seconds to finish."""
    deadline = time.monotonic() + wait
    while os.listdir(tmp) and time.monotonic() < deadline:
        time.sleep(0.1)
    return sorted(os.listdir(tmp))


def tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o644
    return info.tobuf(format=tarfile.GNU_FORMAT)


def write_bomb(path: Path, *, files: int, size: int, written: int | None = None) -> None:
    """A gzip'd tar of `files` files of `size` zero bytes (only `written` bytes of each are
    actually there when given: a header may declare more than the stream holds)."""
    zeros = bytes(MiB)
    with gzip.open(path, "wb", compresslevel=6) as sink:
        sink.write(tar_header("Dockerfile", 13) + b"FROM scratch\n" + bytes(512 - 13))
        for index in range(files):
            sink.write(tar_header(f"bomb/{index:04d}", size))
            left = size if written is None else written
            while left > 0:
                sink.write(zeros[:min(left, MiB)])
                left -= MiB
        if written is None:
            sink.write(bytes(1024))


@pytest.fixture()
def tmp(tmp_path: Path) -> Path:
    path = tmp_path / "tmp"
    path.mkdir()
    return path


def test_gzip_bomb_is_refused_within_the_disk_budget(tmp_path: Path, tmp: Path) -> None:
    bomb = tmp_path / "bomb.tar.gz"
    write_bomb(bomb, files=64, size=16 * MiB)  # 1 GiB plain, about 1 MiB compressed
    assert bomb.stat().st_size < 4 * MiB
    code, stderr, seconds = cli("--context", f"tar://{bomb}", "--disk-budget", "40M", tmp=tmp)
    print(f"refused in {seconds:.1f}s: {stderr.strip()[-300:]}")
    assert code != 0
    assert "declares 16777216 bytes" in stderr and "disk budget" in stderr
    assert seconds < 60
    assert left_in(tmp) == []


def test_declared_bomb_is_refused_by_free_space(tmp_path: Path, tmp: Path) -> None:
    """Without --disk-budget the limit is what the work dir's file system can spare: a file
    declaring more is refused at its header, before a byte of it is written."""
    st = os.statvfs(tmp)
    huge = max(st.f_bavail * st.f_frsize * 2, 1 << 40)
    bomb = tmp_path / "declared.tar.gz"
    write_bomb(bomb, files=1, size=huge, written=4 * MiB)
    code, stderr, seconds = cli("--context", f"tar://{bomb}", tmp=tmp)
    assert code != 0
    assert f"declares {huge} bytes" in stderr
    assert seconds < 60
    assert left_in(tmp) == []


def test_archive_dockerfile_symlink_to_a_host_file_is_refused(tmp_path: Path,
                                                              tmp: Path) -> None:
    host = tmp_path / "host-Dockerfile"
    host.write_text("FROM scratch\nLABEL secret=host-only\n")
    archive = tmp_path / "ctx.tar"
    archive.write_bytes(make_tar({"a": b"a\n"}, links={"Dockerfile": str(host)}))
    code, stderr, _ = cli("--context", f"tar://{archive}", tmp=tmp)
    assert code != 0
    assert "leads outside the build context" in stderr and "host-only" not in stderr
    code, stderr, _ = cli("--context", f"tar://{archive}", "--dockerfile", str(host), tmp=tmp)
    assert code != 0
    assert "absolute path outside the build context" in stderr
    assert left_in(tmp) == []
