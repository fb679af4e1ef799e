"""Comparing images built by two builders: unpacked trees file by file, configs field by field.

Trees come from `skopeo copy` + `umoci unpack` (tools we did not write) and are compared per
path on type, permission bits, uid, gid, size, content digest, link target and hardlink
group (never mtimes). Configs are compared on the fields a Dockerfile controls, normalised so
that "empty" and "absent" are the same (buildah writes `"Entrypoint": []`, BuildKit omits it).
History is compared as a pattern: one entry per instruction, and whether it made a layer; a
layer holding an empty tar (buildah commits one for a RUN that changed nothing) counts as no
layer, which is what BuildKit's exporter writes for it.

What buildah adds on its own is left out of every comparison: `/dev /proc /run /sys` mount
points, empty `/etc/hostname /etc/hosts /etc/resolv.conf` and the `io.buildah.version` label.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

BUILDAH_EXTRA_PATHS = frozenset({"dev", "proc", "run", "sys", "etc/hostname", "etc/hosts",
                                 "etc/resolv.conf"})
BUILDAH_LABEL = "io.buildah.version"
CONFIG_FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "Labels", "ExposedPorts",
                 "Volumes", "StopSignal", "Healthcheck", "Shell", "OnBuild")
# The diff_id of a layer that is an empty tar archive (two zero blocks).
EMPTY_TAR_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

_KINDS = ((stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink"),
          (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block"), (stat.S_ISFIFO, "fifo"),
          (stat.S_ISSOCK, "socket"))


@dataclass(frozen=True)
class FileEntry:
    """One path of an unpacked tree, as the comparison sees it."""

    kind: str  # dir, file, symlink, char, block, fifo, socket
    mode: int  # permission bits, setuid/setgid/sticky included
    uid: int
    gid: int
    size: int = 0  # regular files only
    sha256: str | None = None  # regular files only
    target: str | None = None  # symlinks only
    links: tuple[str, ...] = ()  # the other paths of the tree sharing this file's inode
    rdev: str | None = None  # devices only: "major:minor"

    def describe(self) -> str:
        text = f"{self.kind} {self.mode:04o} {self.uid}:{self.gid}"
        if self.kind == "file":
            text += f" {self.size}B sha256:{(self.sha256 or '')[:12]}"
        if self.target is not None:
            text += f" -> {self.target}"
        if self.links:
            text += f" links={list(self.links)}"
        if self.rdev is not None:
            text += f" rdev={self.rdev}"
        return text


Tree = dict[str, FileEntry]


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _skipped(relative: str, ignore: Collection[str]) -> bool:
    """Whether `relative` is one of `ignore` or lies below one of them."""
    parts = relative.split("/")
    return any("/".join(parts[:depth]) in ignore for depth in range(1, len(parts) + 1))


def scan_tree(root: Path, *, ignore: Collection[str] = BUILDAH_EXTRA_PATHS) -> Tree:
    """Every path below `root` (relative, `/`-separated) except `ignore`d ones and their
    contents."""
    found: Tree = {}
    inodes: dict[tuple[int, int], list[str]] = defaultdict(list)
    for directory, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if _skipped(relative, ignore):
                continue
            st = os.lstat(path)
            kind = _kind(st.st_mode)
            entry = FileEntry(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            if kind == "file":
                entry = replace(entry, size=st.st_size, sha256=_sha256(path))
                if st.st_nlink > 1:
                    inodes[(st.st_dev, st.st_ino)].append(relative)
            elif kind == "symlink":
                entry = replace(entry, target=os.readlink(path))
            elif kind in ("char", "block"):
                entry = replace(entry, rdev=f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
            found[relative] = entry
    for group in inodes.values():
        for member in group:
            found[member] = replace(found[member], links=tuple(sorted(set(group) - {member})))
    return found


def tree_differences(ours: Tree, theirs: Tree) -> list[str]:
    """Human-readable differences between two trees (empty: the same)."""
    lines = []
    for path in sorted(set(ours) | set(theirs)):
        mine, other = ours.get(path), theirs.get(path)
        if mine == other:
            continue
        left = mine.describe() if mine else "(missing)"
        right = other.describe() if other else "(missing)"
        lines.append(f"/{path}: ours {left} | reference {right}")
    return lines


def without(tree: Tree, paths: Iterable[str]) -> Tree:
    """`tree` without `paths` and everything below them."""
    drop = frozenset(p.strip("/") for p in paths)
    return {path: entry for path, entry in tree.items() if not _skipped(path, drop)}


# --- configs ------------------------------------------------------------------------------


def config_fields(config: Mapping[str, Any], fields: Iterable[str] = CONFIG_FIELDS,
                  ) -> dict[str, Any]:
    """The container-config fields named, normalised: empty values are None, buildah's own
    label dropped."""
    container = config.get("config") or {}
    result: dict[str, Any] = {}
    for name in fields:
        value = container.get(name)
        if name == "Labels" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != BUILDAH_LABEL}
        result[name] = value if value not in ({}, [], "", None) else None
    return result


def config_differences(ours: Mapping[str, Any], theirs: Mapping[str, Any],
                       fields: Iterable[str] = CONFIG_FIELDS) -> list[str]:
    mine, other = config_fields(ours, fields), config_fields(theirs, fields)
    return [f"{name}: ours {mine[name]!r} | reference {other[name]!r}"
            for name in mine if mine[name] != other[name]]


def platform_differences(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """The image's platform (`architecture`, `os`, `variant`) and author."""
    return [f"{name}: ours {ours.get(name)!r} | reference {theirs.get(name)!r}"
            for name in ("architecture", "os", "variant", "author")
            if ours.get(name) != theirs.get(name)]


def layer_pattern(config: Mapping[str, Any]) -> list[bool]:
    """For each history entry: whether it made a (non-empty) layer."""
    diff_ids = iter(config.get("rootfs", {}).get("diff_ids", []))
    pattern = []
    for entry in config.get("history", []):
        if entry.get("empty_layer"):
            pattern.append(False)
            continue
        diff_id = next(diff_ids, None)
        pattern.append(diff_id is not None and diff_id != EMPTY_TAR_DIFF_ID)
    return pattern


def history_differences(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """Entry count and layer pattern (created_by texts differ between builders by design)."""
    mine, other = layer_pattern(ours), layer_pattern(theirs)
    if mine == other:
        return []
    texts = [entry.get("created_by", "") for entry in ours.get("history", [])]
    return [f"history layer pattern: ours {mine} | reference {other} (ours: {texts})"]


# --- layers -------------------------------------------------------------------------------


def layer_blobs(layout: Path, tag: str = "t") -> list[Path]:
    """The layer blobs of the image `tag` in an OCI layout (as skopeo wrote it), in order."""
    index = json.loads((layout / "index.json").read_text())
    wanted = next(m for m in index["manifests"]
                  if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    manifest = json.loads(_blob(layout, wanted["digest"]).read_text())
    return [_blob(layout, descriptor["digest"]) for descriptor in manifest["layers"]]


def layer_entries(blob: Path) -> list[str]:
    """The entry names of a (gzip or plain) layer, normalised: no leading `./` or `/`, no
    trailing `/`."""
    with tarfile.open(blob, "r:*") as tar:
        return [_clean(member.name) for member in tar.getmembers()]


def layer_holds(blob: Path, needle: bytes) -> list[str]:
    """The entries of a layer whose name, link target or content contains `needle`."""
    found = []
    with tarfile.open(blob, "r:*") as tar:
        for member in tar:
            data = b""
            if member.isfile():
                extracted = tar.extractfile(member)
                data = extracted.read() if extracted is not None else b""
            headers = "".join(member.pax_headers.values()).encode()
            if needle in member.name.encode() + member.linkname.encode() + headers + data:
                found.append(member.name)
    return found


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexpart = digest.partition(":")
    return layout / "blobs" / algorithm / hexpart


def _clean(name: str) -> str:
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name.rstrip("/")
