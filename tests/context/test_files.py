"""The context file view: COPY source rules (BuildKit's), ignore files, symlinks, walks."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path, PurePosixPath

import pytest

from core.context.files import ContextFiles, EntryKind, SourceMatch, file_digest
from core.context.ignore import IgnoreMatcher, parse_ignore
from core.errors import ContextError

TREE = {
    "a.txt": b"a",
    "b.txt": b"b",
    "c.md": b"c",
    "!x": b"bang",
    "*star": b"star",
    "data/one.txt": b"1",
    "data/two.txt": b"2",
    "data/deep/three.txt": b"3",
    "docs/guide.md": b"guide",
    "docs/keep.md": b"keep",
    "secret.key": b"s3cr3t",
    "node_modules/pkg/index.js": b"js",
    "node_modules/pkg/README": b"readme",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "ctx"
    for name, data in TREE.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(data)
    (base / "empty").mkdir()
    (base / "link-file").symlink_to("a.txt")
    (base / "link-dir").symlink_to("data")
    (base / "link-abs").symlink_to("/data/one.txt")
    (base / "link-out").symlink_to("../../../../etc/passwd")
    (base / "dangling").symlink_to("nowhere")
    (base / "loop1").symlink_to("loop2")
    (base / "loop2").symlink_to("loop1")
    (base / "data" / "up").symlink_to("../b.txt")
    return base


def names(matches: list[SourceMatch]) -> list[str]:
    return [m.path.as_posix() for m in matches]


def view(root: Path, ignore: str = "") -> ContextFiles:
    return ContextFiles(root, parse_ignore(ignore) if ignore else IgnoreMatcher())


# --- plain sources ---------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "expected"), [
    ("a.txt", "a.txt"), ("/a.txt", "a.txt"), ("./a.txt", "a.txt"), ("../a.txt", "a.txt"),
    ("../../data/../a.txt", "a.txt"), ("data/", "data"), ("data/.", "data"),
    (".", "."), ("/", "."), ("..", "."),
])
def test_paths_are_clamped_to_the_context(root: Path, pattern: str, expected: str) -> None:
    [match] = view(root).resolve_sources([pattern])
    assert match.path == PurePosixPath(expected) and match.pattern == pattern
    assert match.is_dir == (root / expected).is_dir()


def test_plain_source_not_found(root: Path) -> None:
    with pytest.raises(ContextError, match='failed to compute cache key: "/missing": not found'):
        view(root).resolve_sources(["a.txt", "missing"])
    with pytest.raises(ContextError, match=r'"/missing": not found \(source \'\.\./missing\'\)'):
        view(root).resolve_sources(["../missing"])
    with pytest.raises(ContextError, match=r'"/a\.txt/x": not found'):
        view(root).resolve_sources(["a.txt/x"])


# --- wildcards -------------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "expected"), [
    ("*.txt", ["a.txt", "b.txt"]),
    ("?.md", ["c.md"]),
    ("[ab].txt", ["a.txt", "b.txt"]),
    ("[^a].txt", ["b.txt"]),
    ("[a-b]*", ["a.txt", "b.txt"]),
    ("[!]x", ["!x"]),  # Go has no `!` negation: the class holds `!`
    ("\\**", ["*star"]),  # an escaped star in the wildcard part is literal
    ("data/*.txt", ["data/one.txt", "data/two.txt"]),
    ("*/*.txt", ["data/one.txt", "data/two.txt"]),
    ("dat*", ["data"]),  # a matching directory is not entered
    ("do*", ["docs"]),
    ("data/*/*.txt", ["data/deep/three.txt"]),
    ("/../*.md", ["c.md"]),
    ("link-dir/*.txt", ["data/one.txt", "data/two.txt"]),  # the base is followed
    ("nomatch*", []),
    ("data/deep/*", ["data/deep/three.txt"]),
])
def test_wildcards(root: Path, pattern: str, expected: list[str]) -> None:
    assert names(view(root).resolve_sources([pattern])) == expected


def test_negated_class_crosses_slashes_like_go(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").write_bytes(b"")
    (tmp_path / "axb").write_bytes(b"")
    assert names(view(tmp_path).resolve_sources(["a[^x]b"])) == ["a/b"]


def test_wildcard_order_is_byte_order(tmp_path: Path) -> None:
    for name in ("b", "B", "a", "\u00e9", "_"):
        (tmp_path / f"f{name}").write_bytes(b"")
    assert names(view(tmp_path).resolve_sources(["f*"])) == ["fB", "f_", "fa", "fb", "f\u00e9"]


def test_several_patterns_keep_their_order(root: Path) -> None:
    matches = view(root).resolve_sources(["c.md", "*.txt", "data"])
    assert names(matches) == ["c.md", "a.txt", "b.txt", "data"]
    assert [m.pattern for m in matches] == ["c.md", "*.txt", "*.txt", "data"]


def test_empty_wildcard(root: Path) -> None:
    files = view(root)
    assert files.resolve_sources(["*.nothing"]) == []
    with pytest.raises(ContextError, match=r"no source files were specified: '\*\.nothing'"):
        files.resolve_sources(["a.txt", "*.nothing"], allow_empty_wildcard=False)
    with pytest.raises(ContextError, match='"/missing": not found'):
        files.resolve_sources(["missing/*.txt"])


@pytest.mark.parametrize("pattern", ["[", "a[", "[]", "x[a-]", "*\\", "[\\"])
def test_bad_patterns(root: Path, pattern: str) -> None:
    with pytest.raises(ContextError, match="invalid source pattern"):
        view(root).resolve_sources([pattern])


def test_reversed_range_matches_nothing(root: Path) -> None:
    assert view(root).resolve_sources(["[z-a].txt"]) == []
    assert names(view(root).resolve_sources(["[^z-a].txt"])) == ["a.txt", "b.txt"]


# --- ignore files ----------------------------------------------------------------------------


IGNORE = "*.key\nnode_modules\ndocs\n!docs/keep.md\n"


def test_ignored_sources_are_not_found(root: Path) -> None:
    files = view(root, IGNORE)
    with pytest.raises(ContextError, match='"/secret.key": not found; it is excluded by '
                                           r"\.dockerignore"):
        files.resolve_sources(["secret.key"])
    with pytest.raises(ContextError, match="not found"):
        files.resolve_sources(["node_modules/pkg/index.js"])
    assert names(files.resolve_sources(["*.key", "node*"])) == []
    assert names(files.resolve_sources(["docs/*"])) == ["docs/keep.md"]
    [docs] = files.resolve_sources(["docs"])
    assert docs.is_dir


def test_symlink_to_ignored_target_leads_nowhere(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_bytes(b"k")
    (tmp_path / "innocent").symlink_to("secret.key")
    with pytest.raises(ContextError, match='"/innocent": not found'):
        view(tmp_path, "*.key").resolve_sources(["innocent"])
    (tmp_path / "hidden-link").symlink_to("innocent")
    with pytest.raises(ContextError, match="not found"):
        view(tmp_path, "innocent").resolve_sources(["hidden-link"])


def test_walk_applies_ignore_rules(root: Path) -> None:
    entries = list(view(root, IGNORE).walk("."))
    paths = [e.path.as_posix() for e in entries]
    assert "secret.key" not in paths
    assert not any(p.startswith("node_modules") for p in paths)
    assert "docs" in paths and "docs/keep.md" in paths and "docs/guide.md" not in paths
    for index, path in enumerate(paths):  # pre-order: a directory comes before its entries
        parent = path.rpartition("/")[0]
        assert not parent or parent in paths[:index]


def test_reincluded_entry_deep_in_excluded_dir(root: Path) -> None:
    files = view(root, "node_modules\n!node_modules/pkg/README\n")
    paths = [e.path.as_posix() for e in files.walk(".")]
    assert [p for p in paths if p.startswith("node_modules")] == [
        "node_modules", "node_modules/pkg", "node_modules/pkg/README"]
    [pkg] = files.resolve_sources(["node_modules/pkg"])
    assert pkg.is_dir
    assert [e.subpath.as_posix() for e in files.walk("node_modules")] == ["pkg", "pkg/README"]
    with pytest.raises(ContextError, match="excluded by"):
        files.resolve_sources(["node_modules/pkg/index.js"])


def test_walk_skips_excluded_dirs_without_exceptions(root: Path) -> None:
    files = view(root, "docs\nnode_modules\n!node_modules/nothing-here\n")
    paths = [e.path.as_posix() for e in files.walk(".")]
    assert "docs" not in paths  # no exception can re-include anything below docs
    assert "node_modules" not in paths  # walked (must_walk) but nothing survived


# --- symlinks --------------------------------------------------------------------------------


def test_symlink_sources_are_followed(root: Path) -> None:
    files = view(root)
    [link_file] = files.resolve_sources(["link-file"])
    assert (link_file.path, link_file.resolved, link_file.is_dir) == (
        PurePosixPath("link-file"), PurePosixPath("a.txt"), False)
    [link_dir] = files.resolve_sources(["link-dir"])
    assert (link_dir.resolved, link_dir.is_dir) == (PurePosixPath("data"), True)
    [absolute] = files.resolve_sources(["link-abs"])  # "/" is the context root
    assert absolute.resolved == PurePosixPath("data/one.txt")
    [through] = files.resolve_sources(["link-dir/up"])
    assert through.resolved == PurePosixPath("b.txt")
    matched = files.resolve_sources(["link-[adf]*"])
    assert names(matched) == ["link-abs", "link-dir", "link-file"]
    assert [m.resolved.as_posix() for m in matched] == ["data/one.txt", "data", "a.txt"]


@pytest.mark.parametrize(("pattern", "name"), [("link-o*", "link-out"), ("dang*", "dangling")])
def test_wildcard_match_that_is_a_dangling_link(root: Path, pattern: str, name: str) -> None:
    # BuildKit fails too: the matched link is followed and its target has no checksum
    with pytest.raises(ContextError, match=f'"/{name}": not found'):
        view(root).resolve_sources([pattern])


@pytest.mark.parametrize("pattern", ["link-out", "dangling"])
def test_links_leading_nowhere(root: Path, pattern: str) -> None:
    with pytest.raises(ContextError, match="not found"):
        view(root).resolve_sources([pattern])


def test_symlink_escape_is_clamped_to_the_context(root: Path) -> None:
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_bytes(b"context's own")
    [match] = view(root).resolve_sources(["link-out"])
    assert match.resolved == PurePosixPath("etc/passwd")
    assert view(root).digest("link-out") == file_digest(root / "etc" / "passwd")


def test_symlink_loop(root: Path) -> None:
    with pytest.raises(ContextError, match="too many levels of symbolic links"):
        view(root).resolve_sources(["loop1"])


def test_walk_reports_symlinks_without_following(root: Path) -> None:
    entries = {e.subpath.as_posix(): e for e in view(root).walk("link-dir")}
    assert set(entries) == {"one.txt", "two.txt", "deep", "deep/three.txt", "up"}
    up = entries["up"]
    assert up.kind is EntryKind.SYMLINK and up.link_target == "../b.txt"
    assert up.path == PurePosixPath("data/up")
    assert entries["deep"].kind is EntryKind.DIR
    assert entries["one.txt"].kind is EntryKind.FILE and entries["one.txt"].stat.st_size == 1


def test_walk_order_and_errors(root: Path) -> None:
    paths = [e.path.as_posix() for e in view(root).walk("data")]
    assert paths == ["data/deep", "data/deep/three.txt", "data/one.txt", "data/two.txt",
                     "data/up"]
    assert list(view(root).walk("empty")) == []
    for bad in ("a.txt", "missing", "link-file"):
        with pytest.raises(ContextError, match="not a directory"):
            list(view(root).walk(bad))


def test_walk_deep_tree_is_not_recursive(tmp_path: Path) -> None:
    path = tmp_path
    for _ in range(400):
        path = path / "d"
        path.mkdir()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(250)  # a walk that recursed per directory would hit this
    try:
        count = sum(1 for _ in view(tmp_path).walk("."))
    finally:
        sys.setrecursionlimit(limit)
    assert count == 400


def test_walk_other_kinds(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    [entry] = view(tmp_path).walk(".")
    assert entry.kind is EntryKind.OTHER


# --- digests ---------------------------------------------------------------------------------


def test_digests(root: Path, tmp_path: Path) -> None:
    big = tmp_path / "big"
    data = os.urandom(3 * 1024 * 1024 + 5)
    big.write_bytes(data)
    assert file_digest(big) == "sha256:" + hashlib.sha256(data).hexdigest()
    files = view(root)
    assert files.digest("a.txt") == "sha256:" + hashlib.sha256(b"a").hexdigest()
    assert files.digest("link-file") == files.digest("a.txt")
    with pytest.raises(ContextError, match="is not a file"):
        files.digest("data")
    assert files.absolute("../data/one.txt") == root / "data" / "one.txt"
