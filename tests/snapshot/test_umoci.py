"""A snapshot layer applied by umoci (Go's archive/tar, OCI whiteout and opaque semantics) on top
of a base layer gives back exactly the tree after the step."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from core.snapshot.compress import Compression, LayerWriter
from core.snapshot.diff import LayerDiff, snapshot, whole_tree
from core.snapshot.index import StatIndex
from core.snapshot.tarwriter import LayerTarWriter, XattrPolicy, write_diff
from tests.snapshot.trees import IS_ROOT, describe, rich_tree


def oci_layout(layout: Path, blobs: list[tuple[bytes, str]]) -> None:
    """An OCI image layout holding layers given as (gzip blob, diff_id)."""
    (layout / "blobs" / "sha256").mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (layout / "blobs" / "sha256" / digest).write_bytes(data)
        return "sha256:" + digest

    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [d for _, d in blobs]}})
    layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(blob),
               "digest": put(blob)} for blob, _ in blobs]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "size": len(config), "digest": put(config.encode())},
        "layers": layers}).encode()
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": len(manifest),
        "digest": put(manifest), "annotations": {"org.opencontainers.image.ref.name": "t"}}]}))


def gzip_layer(root: Path, changes: LayerDiff, index: StatIndex) -> tuple[bytes, str]:
    out = io.BytesIO()
    compressor = LayerWriter(out, compression=Compression.GZIP)
    writer = LayerTarWriter(compressor, root=str(root), xattrs=XattrPolicy.ALL)
    write_diff(writer, changes, index=index)
    writer.close()
    digests = compressor.close()
    return out.getvalue(), digests.diff_id


@pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is not installed")
def test_umoci_applies_a_diff_layer_to_the_tree_after_the_step(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    rich_tree(root)
    (root / "gone-dir" / "sub").mkdir(parents=True)
    (root / "gone-dir" / "sub" / "f").write_text("x")
    (root / "recreated" / "old-child").mkdir(parents=True)
    time.sleep(0.02)
    before = StatIndex.scan(str(root))
    base = gzip_layer(root, whole_tree(before), before)
    shutil.rmtree(root / "gone-dir")
    (root / "etc" / "size-512").unlink()
    os.rename(root / "recreated", tmp_path / "trash")  # the new directory gets a new inode
    (root / "recreated").mkdir()
    (root / "recreated" / "new-child").write_text("new")
    os.link(root / "shared" / "hard-a", root / "tmp" / "third-link")
    (root / "etc" / "size-1").write_bytes(b"changed")
    (root / "rel-link").unlink()
    (root / "rel-link").mkdir()
    changes, after = snapshot(before)
    assert any(c.kind.value == "opaque" for c in changes.changes)
    top = gzip_layer(root, changes, after)
    oci_layout(tmp_path / "layout", [base, top])
    flags = [] if IS_ROOT else ["--rootless"]
    subprocess.run(["umoci", "unpack", *flags, "--image", f"{tmp_path / 'layout'}:t",
                    str(tmp_path / "bundle")], check=True, capture_output=True)
    unpacked = describe(tmp_path / "bundle" / "rootfs", times=False)
    expected = describe(root, times=False)
    if not IS_ROOT:  # rootless umoci cannot keep owners
        unpacked = {k: v[:2] + v[4:] for k, v in unpacked.items()}
        expected = {k: v[:2] + v[4:] for k, v in expected.items()}
    assert unpacked == expected
