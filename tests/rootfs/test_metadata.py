"""The metadata map: read-only, and JSON that round-trips any path and any xattr value."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core.errors import RootfsError
from core.rootfs import EntryKind, EntryMetadata, MetadataMap

ODD = os.fsdecode(b"bin/caf\xe9-\xff")
SAMPLE = MetadataMap({
    "bin/su": EntryMetadata(EntryKind.FILE, 0o4755, 0, 0),
    "dev/null": EntryMetadata(EntryKind.CHAR, 0o666, 0, 0, devmajor=1, devminor=3),
    ODD: EntryMetadata(EntryKind.FILE, 0o644, 1000, 1000,
                       xattrs=(("security.capability", b"\x01\x00\xff\x00"),
                               ("user.x", b""))),
    "run": EntryMetadata(EntryKind.DIR, 0o1777, 0, 0),
})


def test_json_round_trip() -> None:
    text = SAMPLE.to_json()
    json.loads(text)  # plain JSON
    assert text.isascii()
    again = MetadataMap.from_json(text)
    assert again == SAMPLE
    assert again[ODD].xattrs[0][1] == b"\x01\x00\xff\x00"
    assert os.fsencode(next(p for p in again if p.startswith("bin/caf"))) == os.fsencode(ODD)


def test_save_and_load(tmp_path: Path) -> None:
    target = tmp_path / "metadata.json"
    SAMPLE.save(target)
    SAMPLE.save(target)  # replaced atomically, no temporary files left behind
    assert [p.name for p in tmp_path.iterdir()] == ["metadata.json"]
    assert MetadataMap.load(target) == SAMPLE


def test_mapping_is_read_only_and_copied() -> None:
    source = {"a": EntryMetadata(EntryKind.FILE, 0o644, 1, 1)}
    mapping = MetadataMap(source)
    source.clear()
    assert len(mapping) == 1 and "a" in mapping
    assert not hasattr(mapping, "__setitem__")
    assert repr(mapping) == "MetadataMap(1 paths)"


@pytest.mark.parametrize("text", ["not json", '{"version": 9, "entries": {}}',
                                  '{"version": 1, "entries": {"a": {"kind": "nope"}}}',
                                  '{"version": 1}', "[]"])
def test_unreadable_maps(text: str) -> None:
    with pytest.raises(RootfsError, match="unreadable metadata map"):
        MetadataMap.from_json(text)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RootfsError, match="cannot read"):
        MetadataMap.load(tmp_path / "none.json")
