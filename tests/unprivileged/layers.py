"""Comparing two builds of ours: unpacked trees (umoci, as root) and every layer's headers."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from tests.build.compare import scan_tree, tree_differences
from tests.unprivileged.images import unpack_layout

TAG = "latest"


def layer_blobs(layout: Path, tag: str = TAG) -> list[Path]:
    index = json.loads((layout / "index.json").read_text())
    wanted = next(m for m in index["manifests"]
                  if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    manifest = json.loads(_blob(layout, wanted["digest"]).read_text())
    return [_blob(layout, layer["digest"]) for layer in manifest["layers"]]


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexpart = digest.partition(":")
    return layout / "blobs" / algorithm / hexpart


def headers(blob: Path) -> list[str]:
    """Every entry of a layer: name, type, mode, owner, size, link, device, content digest."""
    found = []
    with tarfile.open(blob, "r:*") as tar:
        for member in tar:
            digest = ""
            if member.isfile():
                data = tar.extractfile(member)
                digest = hashlib.sha256(data.read() if data else b"").hexdigest()[:16]
            found.append(f"{member.name} type={member.type!r} mode={member.mode:04o} "
                         f"owner={member.uid}:{member.gid} size={member.size} "
                         f"link={member.linkname} dev={member.devmajor}:{member.devminor} "
                         f"{digest}")
    return found


def layer_differences(ours: Path, reference: Path) -> list[str]:
    """Layer by layer, the entries that differ (empty: the same headers and contents)."""
    mine, theirs = layer_blobs(ours), layer_blobs(reference)
    if len(mine) != len(theirs):
        return [f"{len(mine)} layers | reference {len(theirs)}"]
    lines = []
    for number, (left, right) in enumerate(zip(mine, theirs, strict=True)):
        a, b = headers(left), headers(right)
        lines += [f"layer {number}: ours {x} | reference {y}"
                  for x, y in zip(a, b, strict=False) if x != y]
        if len(a) != len(b):
            lines.append(f"layer {number}: {len(a)} entries | reference {len(b)}: "
                         f"{sorted(set(a) ^ set(b))}")
    return lines


def tree_comparison(ours: Path, reference: Path, work: Path) -> list[str]:
    """Differences between the unpacked trees (type, mode, owner, size, content, link)."""
    mine = scan_tree(unpack_layout(ours, TAG, work / "ours"), ignore=())
    theirs = scan_tree(unpack_layout(reference, TAG, work / "reference"), ignore=())
    return tree_differences(mine, theirs)
