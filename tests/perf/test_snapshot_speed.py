"""The fast paths of change detection and tar writing give exactly what the careful paths give."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from core.snapshot.diff import ChangeKind, diff, snapshot, whole_tree
from core.snapshot.index import StatIndex
from core.snapshot.paths import layer_order_key
from core.snapshot.tarwriter import LayerTarWriter, MetadataOverride, write_diff


def _tree(root: Path) -> None:
    for name in ("a", "a-b", "a/b", "a/b/c", "z", "é", "b\udcff".encode(
            "utf-8", "surrogateescape").decode("utf-8", "surrogateescape")):
        (root / name).mkdir(parents=True, exist_ok=True)
    for directory in ("a", "a/b", "a-b", "z", "é"):
        for i in range(5):
            (root / directory / f"f{i}").write_bytes(b"x" * (i * 700))
    (root / "big").write_bytes(os.urandom(300 * 1024))  # beyond the short path
    (root / "a" / "link").symlink_to("b/c")
    os.link(root / "a" / "f1", root / "z" / "hard")


def test_scan_is_in_layer_order(tmp_path: Path) -> None:
    _tree(tmp_path)
    index = StatIndex.scan(str(tmp_path))
    paths = [path for path, _ in index.records()]
    assert index.ordered and paths == sorted(paths, key=layer_order_key)
    assert not index.refreshed(["a/b"]).ordered


def _careful(diff_: object, root: Path, overrides: dict[str, MetadataOverride]) -> bytes:
    """The same layer written entry by entry through `add_recorded`/`add`."""
    from core.snapshot.diff import LayerDiff

    assert isinstance(diff_, LayerDiff)
    out = io.BytesIO()
    writer = LayerTarWriter(out, root=str(root), overrides=overrides)
    assert diff_.index is not None
    for name, change in diff_.entries():
        path = name if change is None else change.path
        if change is not None and change.kind is ChangeKind.DELETE:
            writer.add_whiteout(path)
            continue
        record = diff_.index.record(path)
        assert record is not None
        writer.add_recorded(path, record, hardlink_to=change.hardlink_to if change else None)
    writer.close()
    return out.getvalue()


def test_short_path_writes_the_same_bytes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _tree(root)
    layer = whole_tree(StatIndex.scan(str(root)))
    overrides = {"a/f2": MetadataOverride(uid=7, gid=8, mode=0o600)}
    fast = io.BytesIO()
    writer = LayerTarWriter(fast, root=str(root), overrides=overrides)
    write_diff(writer, layer)
    writer.close()
    assert fast.getvalue() == _careful(layer, root, overrides)
    with tarfile.open(fileobj=io.BytesIO(fast.getvalue())) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert members["a/f2"].uid == 7 and members["a/f2"].mode == 0o600
    assert members["z/hard"].islnk() and members["a/link"].issym()


def test_diff_without_deletions_keeps_walk_order(tmp_path: Path) -> None:
    _tree(tmp_path)
    before = StatIndex.scan(str(tmp_path))
    (tmp_path / "a" / "new").write_text("n")
    (tmp_path / "a-b" / "f1").write_text("changed")
    (tmp_path / "z" / "f0").unlink()
    changes, _ = snapshot(before)
    names = [name for name, _ in changes.entries()]
    assert names == sorted(names, key=layer_order_key)
    assert "z/.wh.f0" in names and "a/new" in names and "a" in names  # parent kept
    again = diff(before, before.refreshed(["a/new", "a-b/f1", "z/f0"]))
    assert [c.path for c in again.changes] == [c.path for c in changes.changes]
