"""fakeroot's state file: seeding it from a metadata map, and reading it back after a step.

`faked --load` reads, and `faked --save-file` writes, one line per inode it knows:
`dev=HEX,ino=DEC,mode=OCT,uid=DEC,gid=DEC,nlink=DEC,rdev=DEC` (`mode` with the file type
bits). An inode it does not know looks root-owned to the step ("unknown is root"), with the mode
the disk has. Seeding writes a line for the inode of every path the map records, so the step
sees the image's owners, modes and device nodes instead of the builder's; after the step the
file holds those and whatever the step changed (chown, chmod, mknod, and the mode of
directories it made).
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path

from core.rootfs.metadata import EntryMetadata
from core.rootfs.tarstream import EntryKind
from core.run.spec import FakeStat

log = logging.getLogger(__name__)

_LINE = re.compile(r"dev=([0-9a-fA-F]+),ino=(\d+),mode=([0-7]+),uid=(\d+),gid=(\d+),"
                   r"nlink=(\d+),rdev=(\d+)")
#: file types a metadata map may give a placeholder on disk
_TYPES = {EntryKind.CHAR: stat.S_IFCHR, EntryKind.BLOCK: stat.S_IFBLK,
          EntryKind.FIFO: stat.S_IFIFO}

Inode = tuple[int, int]


def seed_lines(root: Path, recorded: Mapping[str, EntryMetadata]) -> Iterator[str]:
    """State lines for every recorded path found under `root` (on the root's device; each
    inode once)."""
    device = os.lstat(root).st_dev
    seen: set[Inode] = set()
    prefix = os.fspath(root).rstrip("/") + "/"
    for path, meta in recorded.items():
        try:
            st = os.lstat(prefix + path)
        except OSError:
            continue  # gone, or hidden by an ignored path: nothing to show
        inode = (st.st_dev, st.st_ino)
        if st.st_dev != device or inode in seen:
            continue
        seen.add(inode)
        kind = _TYPES.get(meta.kind, stat.S_IFMT(st.st_mode))
        rdev = os.makedev(meta.devmajor, meta.devminor) if meta.kind in _TYPES else 0
        yield format_line(inode, FakeStat(kind | (meta.mode & 0o7777), meta.uid, meta.gid, rdev),
                          nlink=st.st_nlink)


def format_line(inode: Inode, fake: FakeStat, *, nlink: int = 1) -> str:
    return (f"dev={inode[0]:x},ino={inode[1]},mode={fake.mode:o},uid={fake.uid},"
            f"gid={fake.gid},nlink={nlink},rdev={fake.rdev}\n")


def write_seed(path: Path, root: Path, recorded: Mapping[str, EntryMetadata]) -> int:
    """Write the seed state file for `root`; the number of inodes written."""
    count = 0
    with open(path, "w", encoding="ascii") as out:
        for line in seed_lines(root, recorded):
            out.write(line)
            count += 1
    return count


def parse_state(text: str) -> dict[Inode, FakeStat]:
    """(st_dev, st_ino) -> what fakeroot says of that inode; unreadable lines are skipped."""
    found: dict[Inode, FakeStat] = {}
    for line in text.splitlines():
        match = _LINE.fullmatch(line.strip())
        if match is None:
            if line.strip():
                log.debug("fakeroot state: skipping %r", line[:200])
            continue
        dev, ino, mode, uid, gid, _nlink, rdev = match.groups()
        found[(int(dev, 16), int(ino))] = FakeStat(int(mode, 8), int(uid), int(gid), int(rdev))
    return found


def read_state(path: Path) -> dict[Inode, FakeStat]:
    """The state file fakeroot saved (empty when it saved nothing)."""
    try:
        return parse_state(path.read_text(encoding="ascii", errors="replace"))
    except FileNotFoundError:
        return {}
