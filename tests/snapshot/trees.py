"""Sample trees for the layer tests, and a description of a tree to compare extractions by."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

IS_ROOT = os.geteuid() == 0
CAPABILITY = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_bind_service
LONG_DIRS = "/".join(c * 100 for c in "abc")  # a 302-byte directory path


def rich_tree(root: Path) -> None:
    """Every kind of node and every header field that needs care."""
    root.mkdir(exist_ok=True)
    (root / "etc").mkdir()
    for size in (0, 1, 511, 512, 513):
        (root / "etc" / f"size-{size}").write_bytes(os.urandom(size))
    (root / "big").write_bytes(os.urandom(3 * 1024 * 1024 + 7))  # more than one read chunk
    (root / "suid").write_bytes(b"#!/bin/sh\n")
    (root / "suid").chmod(0o4755)
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "shared").mkdir()
    (root / "shared").chmod(0o2755)
    (root / "shared" / "hard-a").write_text("linked")
    os.link(root / "shared" / "hard-a", root / "etc" / "hard-b")
    (root / "rel-link").symlink_to("etc/size-1")
    (root / "long-link").symlink_to("x" * 200)
    (root / LONG_DIRS).mkdir(parents=True)
    (root / LONG_DIRS / ("f" * 150)).write_text("deep")
    (root / "café").mkdir()
    (root / "café" / "日本語.txt").write_text("unicode")
    with open(os.fsencode(str(root)) + b"/latin1-\xe9", "wb") as handle:
        handle.write(b"undecodable name")
    os.mkfifo(root / "fifo")
    os.setxattr(root / "etc" / "size-1", "user.note", b"hello")
    if IS_ROOT:
        os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(root / "loop0", 0o660 | stat.S_IFBLK, os.makedev(7, 0))
        os.chmod(root / "null", 0o666)
        os.chmod(root / "loop0", 0o660)
        os.setxattr(root / "suid", "security.capability", CAPABILITY)
        os.chown(root / "etc" / "size-0", 1234, 5678)
        os.chown(root / "etc" / "size-511", 3_000_000, 3_000_001)  # beyond ustar's 7 digits
        os.chown(root / "rel-link", 42, 43, follow_symlinks=False)


def describe(root: Path, *, times: bool = True) -> dict[bytes, tuple[object, ...]]:
    """Everything an extraction must reproduce, per path (bytes, relative)."""
    out: dict[bytes, tuple[object, ...]] = {}
    inodes: dict[int, list[bytes]] = {}
    base = os.fsencode(str(root))
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = full[len(base) + 1:]
            st = os.lstat(full)
            kind = stat.S_IFMT(st.st_mode)
            content = link = xattrs = None
            if kind == stat.S_IFREG:
                content = hashlib.sha256(Path(os.fsdecode(full)).read_bytes()).hexdigest()
                inodes.setdefault(st.st_ino, []).append(rel)
            if kind == stat.S_IFLNK:
                link = os.readlink(full)
            else:
                xattrs = sorted((n, os.getxattr(full, n)) for n in os.listxattr(full))
            rdev = st.st_rdev if kind in (stat.S_IFCHR, stat.S_IFBLK) else 0
            mtime = int(st.st_mtime) if times and kind != stat.S_IFLNK else None
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, content, link,
                        rdev, xattrs, mtime)
    for group in inodes.values():
        for rel in group:
            out[rel] += (tuple(sorted(group)),)
    return out
