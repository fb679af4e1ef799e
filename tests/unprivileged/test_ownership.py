"""The metadata map after a RUN (`core.build.ownership`), from stat indexes of a real tree and
what a sandbox reports; and `effective`, the index the diff and the layer writer see."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.build.ownership import effective, updated_metadata
from core.rootfs import EntryKind, EntryMetadata, MetadataMap
from core.run import FakeStat, Ownership
from core.snapshot.index import StatIndex

ROOT_0644 = EntryMetadata(EntryKind.FILE, 0o644, 0, 0)
APP_DIR = EntryMetadata(EntryKind.DIR, 0o2775, 1000, 50)


def _tree(root: Path) -> MetadataMap:
    """A tree as an unprivileged extraction leaves it, and its map."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root\n")
    (root / "srv").mkdir()
    (root / "old").write_text("x")
    (root / "gone").write_text("x")
    return MetadataMap({"etc": EntryMetadata(EntryKind.DIR, 0o755, 0, 0),
                        "etc/passwd": ROOT_0644, "srv": APP_DIR,
                        "old": EntryMetadata(EntryKind.FILE, 0o600, 1000, 1000),
                        "gone": ROOT_0644})


def truth(metadata: MetadataMap, root: Path, path: str) -> EntryMetadata:
    """What the image says of `path`: its record, else what the disk shows."""
    if path in metadata:
        return metadata[path]
    st = os.lstat(root / path)
    kind = EntryKind.DIR if stat.S_ISDIR(st.st_mode) else EntryKind.FILE
    return EntryMetadata(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def _inode(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_dev, st.st_ino


def test_a_fake_root_step_without_records(tmp_path: Path) -> None:
    old = _tree(tmp_path)
    before = StatIndex.scan(str(tmp_path))
    (tmp_path / "gone").unlink()
    (tmp_path / "new").write_text("n")
    (tmp_path / "srv" / "made").mkdir()
    (tmp_path / "old-link").hardlink_to(tmp_path / "old")
    (tmp_path / "etc" / "passwd").chmod(0o600)  # chmod works on the builder's own files
    after = StatIndex.scan(str(tmp_path))
    new = updated_metadata(old, before, after, Ownership(creator=(1000, 1000)))
    assert "gone" not in new
    assert truth(new, tmp_path, "etc/passwd") == EntryMetadata(EntryKind.FILE, 0o600, 0, 0)
    assert new["new"] == EntryMetadata(EntryKind.FILE, 0o644, 1000, 1000)
    assert new["srv/made"] == EntryMetadata(EntryKind.DIR, 0o2755, 1000, 50)  # setgid dir
    assert new["old-link"] == new["old"] == old["old"]
    assert new["srv"] == APP_DIR


def test_fakeroot_records_win(tmp_path: Path) -> None:
    old = _tree(tmp_path)
    before = StatIndex.scan(str(tmp_path))
    (tmp_path / "dev").write_text("")
    (tmp_path / "mine").mkdir()
    recorded = {_inode(tmp_path / "etc" / "passwd"): FakeStat(0o100640, 0, 42),
                _inode(tmp_path / "dev"): FakeStat(0o20600, 0, 0, os.makedev(1, 3)),
                _inode(tmp_path / "mine"): FakeStat(0o40700, 0, 0)}
    after = StatIndex.scan(str(tmp_path))
    as_root = updated_metadata(old, before, after, Ownership(
        creator=(0, 0), recorded=recorded, captures_chown=True))
    assert as_root["etc/passwd"] == EntryMetadata(EntryKind.FILE, 0o640, 0, 42)
    assert as_root["dev"] == EntryMetadata(EntryKind.CHAR, 0o600, 0, 0, devmajor=1,
                                           devminor=3)
    assert truth(as_root, tmp_path, "mine") == EntryMetadata(EntryKind.DIR, 0o700, 0, 0)
    as_app = updated_metadata(old, before, after, Ownership(
        creator=(1000, 1000), recorded=recorded, captures_chown=True))
    assert as_app["mine"] == EntryMetadata(EntryKind.DIR, 0o700, 1000, 1000)  # "unknown": 0:0


def test_real_owners_keep_only_untouched_records(tmp_path: Path) -> None:
    old = _tree(tmp_path)
    before = StatIndex.scan(str(tmp_path))
    (tmp_path / "old").chmod(0o640)
    (tmp_path / "made").mkdir()
    after = StatIndex.scan(str(tmp_path), ignore=["etc"])
    new = updated_metadata(old, before, after, None, made_by_builder=["made"])
    assert "old" not in new  # the disk is right for what the step touched
    assert new["srv"] == APP_DIR and new["etc/passwd"] == ROOT_0644  # ignored paths stay
    assert truth(new, tmp_path, "made") == EntryMetadata(EntryKind.DIR, 0o755, 0, 0)


def test_effective_index_shows_the_map(tmp_path: Path) -> None:
    old = _tree(tmp_path)
    index = StatIndex.scan(str(tmp_path))
    shown = effective(index, old)
    srv = shown.get("srv")
    assert srv is not None and (srv.mode, srv.uid, srv.gid) == (0o2775, 1000, 50)
    assert stat.S_ISDIR(os.lstat(tmp_path / "srv").st_mode)
    assert shown.get("etc/passwd") is not None and index.get("new") is None
    assert effective(index, MetadataMap()) is index
