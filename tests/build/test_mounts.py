"""RUN --mount: cache, secret, bind and tmpfs; nothing of them ends up in a layer."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from core.build.options import SecretSource
from core.errors import StepError
from tests.build.conftest import Builder, Recorder

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the chroot sandbox needs root")
SECRET = "s3cr3t-value-1f9e"


def _layers_text(builder: Builder, image: str) -> bytes:
    manifest = builder.manifest(image)
    blobs = b""
    for layer in manifest["layers"]:
        blobs += gzip.decompress(builder.registry.blob_data_path(layer["digest"]).read_bytes())
    return blobs


def test_cache_secret_bind_and_tmpfs_mounts(bb: Builder, tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text(SECRET)
    recorder = Recorder()
    dockerfile = (
        f"FROM {bb.busybox}\n"
        "RUN --mount=type=cache,target=/var/cache/app echo cached > /var/cache/app/c\n"
        "RUN --mount=type=cache,target=/var/cache/app cat /var/cache/app/c\n"
        "RUN --mount=type=secret,id=token cat /run/secrets/token && "
        "cat /run/secrets/token > /dev/null && echo secret-ok\n"
        "RUN --mount=type=secret,id=token,env=TOKEN echo length=${#TOKEN}\n"
        "RUN --mount=type=bind,source=ctx.txt,target=/mnt/ctx.txt cat /mnt/ctx.txt\n"
        "RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && cat /scratch/t\n"
        "RUN echo done > /done\n"
    )
    result = bb.build(dockerfile, {"ctx.txt": "from-context"}, tag="test/mounts:1",
                      recorder=recorder, secrets=(SecretSource("token", path=secret_file),))
    out = recorder.output()
    assert out == ["cached", "****secret-ok", f"length={len(SECRET)}", "from-context", "t"]
    data = _layers_text(bb, "test/mounts:1")
    assert SECRET.encode() not in data
    assert b"var/cache/app" not in data and b"mnt/ctx.txt" not in data
    assert b"run/secrets" not in data and b"scratch/t" not in data
    config = bb.config("test/mounts:1")
    assert SECRET not in str(config)
    rootfs = bb.unpack("test/mounts:1")
    assert (rootfs / "done").exists() and not (rootfs / "scratch").exists()
    assert len(result.layers) == 2  # the base and the last RUN: the others changed nothing


def test_missing_required_secret(bb: Builder) -> None:
    with pytest.raises(StepError, match="secret nope not found"):
        bb.build(f"FROM {bb.busybox}\nRUN --mount=type=secret,id=nope,required cat x\n")
