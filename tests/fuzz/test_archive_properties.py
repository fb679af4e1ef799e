"""Property tests for archive extraction: random member sequences from the containment grammar.

1. Containment: whatever the sequence (`..`, absolute names, symlinks and hardlinks aimed at a
   sentinel, whiteouts, devices, duplicates), `extract_layer` (privileged or not) and
   `unpack_context` raise nothing but `BuildError` subclasses, the sentinel tree is unchanged
   and nothing appears beside the destination.
2. Faithfulness: for plain files and directories with simple names, the result is exactly what
   a model of the OCI rules says (later entries win, a file replaces a directory and its
   contents, directories merge), or — when a file stands where a later entry needs a parent
   directory — an `ArchiveError`.
More examples: `BUCKETBUILD_FUZZ_EXAMPLES=5000`.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.context.archive import unpack_context
from core.errors import ArchiveError, BuildError
from core.rootfs import extract_layer
from tests.fuzz.grammar import COMPONENTS
from tests.security import tarbytes as tb
from tests.security.guard import Sentinel, remove_tree, snapshot

EXAMPLES = int(os.environ.get("BUCKETBUILD_FUZZ_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
READERS = ("layer", "layer-unprivileged", "context")


class Area:
    """Destinations (one per example) beside which nothing may appear."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.count = 0

    def fresh(self) -> Path:
        self.count += 1
        dest = self.top / f"dest{self.count}"
        dest.mkdir()
        return dest


@pytest.fixture()
def area(tmp_path: Path) -> Iterator[Area]:
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else str(tmp_path)
    top = Path(base) / f"bb-props-{os.getpid()}-{id(tmp_path)}"
    top.mkdir()
    try:
        yield Area(top)
    finally:
        remove_tree(top)


@pytest.fixture()
def sentinel() -> Iterator[Sentinel]:
    made = Sentinel.create()
    try:
        yield made
    finally:
        made.remove()


# --- the containment grammar ----------------------------------------------------------------

components = st.sampled_from(COMPONENTS)


@st.composite
def names(draw: st.DrawFn, sentinel: str) -> str:
    text = "/".join(draw(st.lists(components, min_size=1, max_size=4)))
    prefix = draw(st.sampled_from(["", "", "/", sentinel + "/", "../"]))
    return prefix + text


@st.composite
def members(draw: st.DrawFn, sentinel: str) -> tb.Entry:
    kind = draw(st.sampled_from([tb.FILE, tb.DIR, tb.SYMLINK, tb.HARDLINK, tb.FIFO, tb.CHAR]))
    name = draw(names(sentinel))
    if kind in (tb.SYMLINK, tb.HARDLINK):
        target = draw(st.one_of(st.just(sentinel), st.just(sentinel + "/precious.txt"),
                                names(sentinel)))
        return tb.Entry(name, kind, linkname=target)
    if kind == tb.CHAR:
        return tb.special(name, tb.CHAR, 1, 3)
    if kind == tb.FILE:
        return tb.file(name, draw(st.binary(max_size=16)))
    return tb.Entry(name, kind)


def _extract(reader: str, data: bytes, dest: Path) -> BuildError | None:
    try:
        if reader == "context":
            unpack_context(io.BytesIO(data), dest, max_bytes=1 << 20, max_entries=100)
        else:
            extract_layer(io.BytesIO(data), dest, privileged=reader == "layer",
                          max_bytes=1 << 20)
    except BuildError as error:
        assert str(error)
        return error
    return None


@pytest.mark.parametrize("reader", READERS)
def test_nothing_escapes(reader: str, area: Area, sentinel: Sentinel) -> None:
    before = snapshot(sentinel.path)

    @SETTINGS
    @given(st.lists(members(sentinel.text), min_size=1, max_size=12),
           st.sampled_from(["plain", "gzip"]))
    def check(entries: list[tb.Entry], compression: str) -> None:
        data = tb.archive(entries)
        if compression == "gzip":
            data = tb.gzipped(data, level=1)
        dest = area.fresh()
        _extract(reader, data, dest)
        assert snapshot(sentinel.path) == before
        assert sorted(os.listdir(area.top)) == [dest.name]
        remove_tree(dest)

    check()


# --- faithfulness against a model ---------------------------------------------------------------

simple_paths = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map("/".join)
plain_members = st.lists(st.tuples(st.sampled_from(["file", "dir"]), simple_paths,
                                   st.binary(max_size=8)), min_size=1, max_size=14)

Model = dict[str, bytes | None]  # path -> file content, or None for a directory


def model(entries: list[tuple[str, str, bytes]]) -> Model | None:
    """The tree OCI rules give, or None when an entry's parent is a file (an error)."""
    tree: Model = {}
    for kind, path, data in entries:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if tree.get(parent, None) is not None:
                return None
            tree[parent] = None
        if kind == "dir" and path in tree and tree[path] is None:
            continue
        for key in [k for k in tree if k == path or k.startswith(path + "/")]:
            del tree[key]
        tree[path] = None if kind == "dir" else data
    return tree


def on_disk(dest: Path) -> Model:
    found: Model = {}
    for folder, dirs, files in os.walk(dest):
        for name in dirs:
            found[str(Path(folder, name).relative_to(dest))] = None
        for name in files:
            path = Path(folder, name)
            assert stat.S_ISREG(path.lstat().st_mode)
            found[str(path.relative_to(dest))] = path.read_bytes()
    return found


@pytest.mark.parametrize("reader", READERS)
def test_plain_trees_match_the_model(reader: str, area: Area) -> None:
    @SETTINGS
    @given(plain_members)
    def check(entries: list[tuple[str, str, bytes]]) -> None:
        data = tb.archive(tb.file(p, d) if k == "file" else tb.directory(p)
                          for k, p, d in entries)
        dest = area.fresh()
        error = _extract(reader, data, dest)
        expected = model(entries)
        if expected is None:
            assert isinstance(error, ArchiveError), error
        else:
            assert error is None, error
            assert on_disk(dest) == expected
        remove_tree(dest)

    check()
