"""How paths are spelled inside a layer: root-relative names, their order, whiteout names.

A layer path is a root-relative `str` (undecodable bytes kept with surrogateescape, as
`os.fsdecode` gives them), `/`-separated, with no leading `/` or `./`: `etc/passwd`. The root
itself is the empty string and never appears as an entry.
"""

from __future__ import annotations

import posixpath
import sys

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


def encode_path(path: str) -> bytes:
    """The on-disk bytes of a path (`os.fsencode` without its type checks)."""
    return path.encode(_FS_ENCODING, _FS_ERRORS)


def normalize_path(path: str) -> str:
    """`/a//b/` and `./a/b` -> `a/b`; the root (`/`, `.`, ``) -> ``."""
    norm = posixpath.normpath("/" + path).lstrip("/")
    return "" if norm == "." else norm


def parent_of(path: str) -> str:
    """`a/b/c` -> `a/b`; a top-level name -> `` (the root)."""
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else ""


def whiteout_name(path: str) -> str:
    """The entry that deletes `path` from lower layers: `a/b` -> `a/.wh.b`."""
    cut = path.rfind("/") + 1
    return path[:cut] + WHITEOUT_PREFIX + path[cut:]


def opaque_name(directory: str) -> str:
    """The marker that hides everything lower layers hold under `directory`."""
    return f"{directory}/{OPAQUE_MARKER}" if directory else OPAQUE_MARKER


def layer_order_key(name: str) -> bytes:
    """Sort key of a layer entry name: byte order compared component by component, so a
    directory comes right before its subtree and the subtree before the next sibling (`a`,
    `a/b`, `a-b`); an opaque marker sorts right after its directory, before its children.
    A trailing `/` is ignored."""
    if name.endswith(OPAQUE_MARKER) and (name == OPAQUE_MARKER
                                         or name.endswith("/" + OPAQUE_MARKER)):
        directory = name[: -len(OPAQUE_MARKER) - 1] if name != OPAQUE_MARKER else ""
        return encode_path(directory).replace(b"/", b"\0") + (b"\0" if directory else b"")
    return encode_path(name.rstrip("/")).replace(b"/", b"\0")
