"""The build context as COPY and ADD see it: sources, walks and content digests.

BuildKit is the reference (the Dockerfile frontend's copy action, fsutil's copy and the
content-hash cache), and this view reproduces what it does:

* A source is a path in the context: it is cleaned as if joined to `/`, so `/x`, `./x` and
  `../x` all name `x` at the context root — `..` can never leave the context, it stops at the
  root (BuildKit does the same; it is not an error).
* Wildcards: the path is split at the first component holding `*`, `?` or `[`. The part before
  it is a plain path; the rest is matched with Go's `filepath.Match` against paths below it,
  walked in byte order without following symlinks; a matching directory is not entered.
  `*` and `?` never match `/`; a negated class `[^...]` does, as in Go. A backslash escapes
  the next character in the wildcard part; in the plain part it is an ordinary character.
* Not found: a plain source that does not exist raises `ContextError`
  ("failed to compute cache key: "/x": not found"). A wildcard matching nothing is no error
  in BuildKit (it sets AllowEmptyWildcard); `resolve_sources` returns nothing for it unless
  `allow_empty_wildcard=False`. A wildcard under a missing directory is an error.
* `.dockerignore`: excluded entries are not in the context at all, exactly as if BuildKit had
  never sent them. A source that exists but is excluded is "not found"; a symlink whose target
  is excluded leads nowhere; a directory excluded but holding re-included (`!`) entries exists
  with only those entries.
* Symlinks: the source path itself is resolved with every symlink followed, the last one too
  (FollowSymlinks). Resolution is scoped to the context: an absolute target restarts at the
  context root and `..` stops there. Symlinks found *inside* a copied directory are copied as
  symlinks: `walk` reports them and never follows them.
"""

from __future__ import annotations

import enum
import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from core.context.ignore import IgnoreMatcher
from core.errors import ContextError
from core.rootfs.paths import printable

#: symlinks one source resolution may follow (containerd's continuity uses the same bound)
MAX_LINKS = 255
_WILDCARD = re.compile(r"\\.|[*?\[]", re.DOTALL)


class EntryKind(enum.StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    OTHER = "other"  # FIFOs, sockets, devices


@dataclass(frozen=True)
class SourceMatch:
    """One thing a COPY source names. `path` is the match as found (the destination takes its
    base name); `resolved` is where its content is, after following symlinks. Both are
    relative to the context root (`.` is the root itself)."""

    pattern: str
    path: PurePosixPath
    resolved: PurePosixPath
    is_dir: bool


@dataclass(frozen=True)
class ContextEntry:
    """An entry met by `walk`: `path` from the context root, `subpath` from the walked
    directory; `stat` is the entry's own (lstat); `link_target` is set for symlinks."""

    path: PurePosixPath
    subpath: PurePosixPath
    kind: EntryKind
    stat: os.stat_result
    link_target: str | None = None


@dataclass(frozen=True)
class _Glob:
    """The wildcard part of a source, compiled to a regex with Go `filepath.Match` rules."""

    regex: re.Pattern[str]
    depth: int | None  # components every match has; None when a class may match "/"


def file_digest(path: Path) -> str:
    """`sha256:<hex>` of a file's content, read in fixed-size pieces."""
    with path.open("rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class ContextFiles:
    """The files of the context under `root`, filtered by `ignore`. Only ever reads."""

    root: Path
    ignore: IgnoreMatcher = field(default_factory=IgnoreMatcher)

    def absolute(self, path: PurePosixPath | str) -> Path:
        """The real location of a context-relative path (already resolved by this view)."""
        return self.root.joinpath(_clean(str(path)).lstrip("/"))

    def digest(self, path: PurePosixPath | str) -> str:
        """The content digest of the regular file a source path resolves to."""
        resolved = self._resolve(_clean(str(path)).lstrip("/"), follow_final=True)
        if resolved is None or not self._is_file(resolved):
            raise ContextError(f'"/{_clean(str(path)).lstrip("/")}" is not a file in the '
                               f"build context")
        return file_digest(self.absolute(resolved))

    def resolve_sources(self, patterns: Sequence[str], *,
                        allow_empty_wildcard: bool = True) -> list[SourceMatch]:
        """Every match of every pattern, in order (see the module notes for the rules)."""
        matches: list[SourceMatch] = []
        for pattern in patterns:
            found = self._resolve_one(pattern)
            if not found and not allow_empty_wildcard:
                raise ContextError(f"no source files were specified: {pattern!r} matches "
                                   f"nothing in the build context")
            matches.extend(found)
        return matches

    def walk(self, directory: PurePosixPath | str = ".") -> Iterator[ContextEntry]:
        """Entries below `directory` in pre-order, names in byte order, excluded ones left
        out (excluded directories entered only when an exception may re-include something).
        `directory` itself is resolved as a source is; symlinks below it are not followed."""
        name = _clean(str(directory)).lstrip("/")
        top = self._resolve(name, follow_final=True)
        if top is None or not self._is_dir(top):
            raise ContextError(f'"/{name}" is not a directory in the build context')
        top_path = PurePosixPath(top or ".")
        stack = [self._children(top, top_path)]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            yield entry
            if entry.kind is EntryKind.DIR:
                stack.append(self._children(str(entry.path), top_path))

    # --- sources --------------------------------------------------------------------------

    def _resolve_one(self, pattern: str) -> list[SourceMatch]:
        cleaned = _clean(pattern)
        parts = [part for part in cleaned.split("/") if part]
        split = next((i for i, part in enumerate(parts) if _has_wildcard(part)), len(parts))
        plain = "/".join(parts[:split])
        if split == len(parts):
            return [self._match(pattern, plain)]
        glob = _compile_glob(pattern, parts[split:])
        base = self._resolve(plain, follow_final=True)
        if base is None:
            raise self._not_found(pattern, plain)
        return [self._match(pattern, found) for found in self._glob(base, glob)]

    def _match(self, pattern: str, name: str) -> SourceMatch:
        """`name` (a plain source, or a wildcard match that may be a dangling symlink)."""
        resolved = self._resolve(name, follow_final=True)
        if resolved is None:
            raise self._not_found(pattern, name)
        return SourceMatch(pattern, PurePosixPath(name or "."), PurePosixPath(resolved or "."),
                           self._is_dir(resolved))

    def _glob(self, base: str, glob: _Glob) -> Iterator[str]:
        """Paths below `base` (relative to the root) whose part below `base` matches."""
        if not self._is_dir(base):
            return
        stack = [iter(self._listing(base))]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                continue
            name, is_dir = item
            below = name[len(base) + 1:] if base else name
            if glob.regex.fullmatch(below):
                yield name
            elif is_dir and (glob.depth is None or below.count("/") + 1 < glob.depth):
                stack.append(iter(self._listing(name)))

    def _listing(self, directory: str) -> list[tuple[str, bool]]:
        """Visible children of `directory`: (path from the root, is a real directory)."""
        return [(str(entry.path), entry.kind is EntryKind.DIR)
                for entry in self._children(directory, PurePosixPath(directory or "."))]

    def _not_found(self, pattern: str, name: str) -> ContextError:
        message = f'failed to compute cache key: "/{name}": not found'
        if pattern not in (name, "/" + name):
            message += f" (source {pattern!r})"
        if name and self.ignore.matches(name) and self._lstat(name) is not None:
            message += f"; it is excluded by {self.ignore.source or 'the ignore rules'}"
        return ContextError(message)

    # --- the filtered tree ------------------------------------------------------------------

    def _resolve(self, name: str, *, follow_final: bool) -> str | None:
        """Where `name` leads inside the context with symlinks followed (scoped to the root),
        or None when it leads to nothing visible. "" is the root."""
        todo = [part for part in reversed(name.split("/")) if part]
        current: list[str] = []
        links = 0
        while todo:
            part = todo.pop()
            if part in (".", ".."):
                if part == ".." and current:
                    current.pop()
                continue
            here = "/".join([*current, part])
            info = self._lstat(here)
            if info is None or (todo and not stat.S_ISDIR(info.st_mode)
                                and not stat.S_ISLNK(info.st_mode)):
                return None
            if stat.S_ISLNK(info.st_mode) and (todo or follow_final):
                if self.ignore.matches(here):
                    return None
                links += 1
                if links > MAX_LINKS:
                    raise ContextError(f'"/{name}": too many levels of symbolic links')
                target = os.readlink(self.root / here)
                if target.startswith("/"):
                    current = []
                todo.extend(p for p in reversed(target.split("/")) if p)
                continue
            current.append(part)
        resolved = "/".join(current)
        return resolved if self._visible(resolved) else None

    def _lstat(self, name: str) -> os.stat_result | None:
        try:
            return os.lstat(self.root / name)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise ContextError(f'cannot read "/{name}" in the build context: '
                               f"{exc.strerror or exc}") from None

    def _visible(self, name: str) -> bool:
        """Whether an existing entry is part of the filtered context."""
        if not name or not self.ignore.matches(name):
            return True
        return self._is_dir(name) and self._has_visible_descendant(name)

    def _has_visible_descendant(self, directory: str) -> bool:
        if not self.ignore.must_walk(directory):
            return False
        pending = [directory]
        while pending:
            current = pending.pop()
            for child in self._scan(current):
                path = f"{current}/{child.name}"
                if not self.ignore.matches(path):
                    return True
                if child.is_dir(follow_symlinks=False) and self.ignore.must_walk(path):
                    pending.append(path)
        return False

    def _children(self, directory: str, top: PurePosixPath) -> Iterator[ContextEntry]:
        for child in self._scan(directory):
            path = f"{directory}/{child.name}" if directory else child.name
            try:  # paths past PATH_MAX (a hostile archive's) fail here, not only in _scan
                info = child.stat(follow_symlinks=False)
                if self.ignore.matches(path) and not (
                    stat.S_ISDIR(info.st_mode) and self._has_visible_descendant(path)
                ):
                    continue
                entry = _entry(self.root, PurePosixPath(path), top, info)
            except OSError as exc:
                raise ContextError(f'cannot read "/{printable(path)}" in the build context: '
                                   f"{exc.strerror or exc}") from None
            yield entry

    def _scan(self, directory: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.root / directory) as entries:
                return sorted(entries, key=lambda entry: os.fsencode(entry.name))
        except OSError as exc:
            raise ContextError(f'cannot list "/{directory}" in the build context: '
                               f"{exc.strerror or exc}") from None

    def _is_dir(self, name: str) -> bool:
        info = self._lstat(name)
        return info is not None and stat.S_ISDIR(info.st_mode)

    def _is_file(self, name: str) -> bool:
        info = self._lstat(name)
        return info is not None and stat.S_ISREG(info.st_mode)


def _entry(root: Path, path: PurePosixPath, top: PurePosixPath,
           info: os.stat_result) -> ContextEntry:
    mode = info.st_mode
    kind = (EntryKind.DIR if stat.S_ISDIR(mode) else EntryKind.FILE if stat.S_ISREG(mode)
            else EntryKind.SYMLINK if stat.S_ISLNK(mode) else EntryKind.OTHER)
    target = os.readlink(root / path) if kind is EntryKind.SYMLINK else None
    subpath = path.relative_to(top) if top != PurePosixPath(".") else path
    return ContextEntry(path, subpath, kind, info, target)


def _clean(pattern: str) -> str:
    """The source as BuildKit sees it: joined to "/" and cleaned (Go's path.Join)."""
    cleaned = posixpath.normpath("/" + pattern)
    return "/" + cleaned.lstrip("/")


def _has_wildcard(part: str) -> bool:
    return any(token.group() in ("*", "?", "[") for token in _WILDCARD.finditer(part))


def _compile_glob(pattern: str, parts: Sequence[str]) -> _Glob:
    text = "/".join(parts)
    try:
        body, crosses = _translate(text)
    except ValueError as exc:
        raise ContextError(f"invalid source pattern {pattern!r}: {exc}") from None
    return _Glob(re.compile(body, re.DOTALL), None if crosses else len(parts))


def _translate(text: str) -> tuple[str, bool]:
    """A regex for Go's filepath.Match `text`, and whether a class in it can match "/"."""
    out: list[str] = []
    crosses = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            if i + 1 == len(text):
                raise ValueError("trailing backslash")
            i += 1
            out.append(re.escape(text[i]))
        elif char == "[":
            regex, negated, i = _char_class(text, i + 1)
            crosses = crosses or negated
            out.append(regex)
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out), crosses


def _char_class(text: str, i: int) -> tuple[str, bool, int]:
    """Parse a class after its `[`: (regex, negated, index after `]`). Reversed ranges
    never match, as in Go."""
    negated = text.startswith("^", i)
    i += negated
    ranges: list[tuple[str, str]] = []
    count = 0
    while not (count and text.startswith("]", i)):
        lo, i = _class_char(text, i)
        hi = lo
        if text.startswith("-", i):
            hi, i = _class_char(text, i + 1)
        count += 1
        if lo <= hi:
            ranges.append((lo, hi))
    body = "".join(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}"
                   for lo, hi in ranges)
    if not ranges:
        return ("." if negated else "(?!)"), negated, i + 1
    return f"[{'^' if negated else ''}{body}]", negated, i + 1


def _class_char(text: str, i: int) -> tuple[str, int]:
    if i >= len(text) or text[i] in "-]":
        raise ValueError("malformed character class")
    if text[i] == "\\":
        i += 1
        if i >= len(text):
            raise ValueError("malformed character class")
    return text[i], i + 1
