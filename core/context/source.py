"""Where the build context comes from: `--context` and `--context-sub-path`.

Accepted forms (kaniko's, minus the ones we do not serve):
- `PATH` or `dir://PATH`: a local directory, used where it is. The build only reads it: nothing
  is ever created, changed or removed inside it.
- `tar://FILE`: a local archive (plain tar, gzip, bzip2, xz or zstd; detected from its bytes),
  unpacked with `core.context.archive` into `<work_dir>/context`.
- `s3://BUCKET/KEY`, `gs://BUCKET/OBJECT`: an archive in a bucket, streamed to
  `<work_dir>/downloads/` by the object store, unpacked into `<work_dir>/context`, and the
  download removed right after (on a function `/tmp` is scarce, on GCP it is memory).
The sub-path selects a directory inside the context as the root. It is relative to the
context (a leading `/` too); a `..` that climbs above the context, or a symlink that leads out
of it, is a `ContextError`.

The Dockerfile (`locate_dockerfile`) of a directory context is relative to the root or, as
in kaniko, an absolute path on the builder's machine (the CLI user's own file). An archive's
Dockerfile comes from whoever made the archive: it must be a regular file inside the unpacked
archive, reached without leaving it (no absolute path elsewhere, no symlink out).
Archives are unpacked within `ContextLimits`; `ContextLimits.for_space` derives them from the
bytes a build may write and the inodes its file system has free.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import BudgetError, ContextError

if TYPE_CHECKING:  # archive and bucket sources import their modules when used
    from core.cloud.storage import ObjectInfo, ObjectStore, ObjectURL
    from core.context.archive import UnpackedContext

log = logging.getLogger(__name__)

CONTEXT_DIR = "context"
DOWNLOADS_DIR = "downloads"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_OTHER_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

StoreFactory = Callable[[str], "ObjectStore"]


@dataclass(frozen=True)
class Context:
    """A context ready to read: `root` is a directory the build treats as read-only."""

    root: Path
    source: str  # the `--context` value as given
    object_info: ObjectInfo | None = None  # the object downloaded, for bucket sources
    unpacked: UnpackedContext | None = None  # what unpacking did, for archive sources
    archive_root: Path | None = None  # where an archive was unpacked (`root` before sub-path)


@dataclass(frozen=True)
class ContextLimits:
    """Budgets for archive sources (None: unlimited)."""

    download_bytes: int | None = None  # size of the (compressed) archive object
    unpacked_bytes: int | None = None  # plain tar bytes
    entries: int | None = None
    origin: str = ""  # where the limits come from, for messages ("the disk budget")

    @classmethod
    def for_space(cls, available: int, where: Path) -> ContextLimits:
        """Limits for a build that may write `available` bytes under `where`: the archive and
        its plain bytes within them, and no more entries than the file system has inodes free
        (less 5 %; no entry limit when it does not count inodes)."""
        try:
            st = os.statvfs(where)
            entries = st.f_favail - st.f_favail // 20 if st.f_files > 0 else None
        except OSError:
            entries = None
        return cls(download_bytes=available, unpacked_bytes=available, entries=entries,
                   origin="the disk budget: --disk-budget, else the free space of the work dir")


def _open_store(url_scheme: str) -> ObjectStore:
    """`core.cloud.storage.open_store`, imported only for a bucket context."""
    from core.cloud.storage import open_store

    return open_store(url_scheme)


def resolve_context(source: str, *, work_dir: Path, sub_path: str = "",
                    version: str | None = None, limits: ContextLimits | None = None,
                    store_factory: StoreFactory = _open_store) -> Context:
    """Make `source` (a `--context` value) available as a local directory.

    Archives are unpacked into `<work_dir>/context`, which must not exist yet or be empty.
    `version` pins a bucket source to one S3 version / GCS generation (the one an upload
    event announced), so a newer upload of the same key cannot slip in.
    """
    limits = limits if limits is not None else ContextLimits()
    if not source:
        raise ContextError("no build context given")
    if version is not None and not source.startswith(("s3://", "gs://")):
        raise ContextError(f"a version applies to s3:// and gs:// contexts only, not {source!r}")
    if source.startswith(("s3://", "gs://")):
        context = _from_bucket(source, work_dir=work_dir, version=version, limits=limits,
                               store_factory=store_factory)
    elif source.startswith("tar://"):
        context = _from_archive(source, Path(source.removeprefix("tar://")),
                                work_dir=work_dir, limits=limits)
    elif source.startswith("dir://"):
        context = _from_directory(source, Path(source.removeprefix("dir://")))
    elif _OTHER_SCHEME.match(source):
        scheme = source.split("://", 1)[0]
        raise ContextError(f"unsupported context source {scheme}:// (use a directory, "
                           f"dir://, tar://, s3:// or gs://)")
    else:
        context = _from_directory(source, Path(source))
    if sub_path:
        context = _with_sub_path(context, sub_path)
    log.info("build context %s at %s", source, context.root)
    return context


def _from_directory(source: str, path: Path) -> Context:
    if not str(path):
        raise ContextError(f"{source!r} names no directory")
    root = Path(os.path.abspath(path))
    if not root.is_dir():
        hint = " (an archive needs tar://)" if root.is_file() else ""
        raise ContextError(f"context directory {str(path)!r} does not exist or is not a "
                           f"directory{hint}")
    return Context(root=root, source=source)


def _from_archive(source: str, path: Path, *, work_dir: Path, limits: ContextLimits,
                  object_info: ObjectInfo | None = None) -> Context:
    if not str(path):
        raise ContextError(f"{source!r} names no archive")
    from core.context.archive import unpack_context

    root = _fresh_context_dir(work_dir)
    try:
        with path.open("rb") as handle:
            unpacked = unpack_context(handle, root, max_bytes=limits.unpacked_bytes,
                                      max_entries=limits.entries)
    except OSError as exc:
        raise ContextError(f"cannot read context archive {str(path)!r}: "
                           f"{exc.strerror or exc}") from None
    except BudgetError as exc:
        if not limits.origin:
            raise
        raise BudgetError(f"{exc} (limits from {limits.origin})") from None
    log.info("unpacked %s: %d entries, %d bytes (%s)", source, unpacked.entries, unpacked.size,
             unpacked.compression)
    return Context(root=root, source=source, object_info=object_info, unpacked=unpacked,
                   archive_root=root)


def _from_bucket(source: str, *, work_dir: Path, version: str | None, limits: ContextLimits,
                 store_factory: StoreFactory) -> Context:
    from core.cloud.storage import ObjectURL, discard

    url = ObjectURL.parse(source)
    store = store_factory(url.scheme)
    download = work_dir / DOWNLOADS_DIR / _download_name(url)
    try:
        info = store.download(url.bucket, url.key, download, version=version,
                              max_bytes=limits.download_bytes)
        return _from_archive(source, download, work_dir=work_dir, limits=limits,
                             object_info=info)
    finally:
        discard(download)


def _download_name(url: ObjectURL) -> str:
    base = _UNSAFE_NAME.sub("_", url.key.rsplit("/", 1)[-1]).strip("._") or "context"
    return f"{url.scheme}-{base[:100]}"


def _fresh_context_dir(work_dir: Path) -> Path:
    root = Path(os.path.abspath(work_dir / CONTEXT_DIR))
    try:
        root.mkdir(parents=True, exist_ok=True)
        if root.is_symlink() or any(root.iterdir()):
            raise ContextError(f"{root} is not an empty directory; use a fresh work dir")
    except OSError as exc:
        raise ContextError(f"cannot create {root}: {exc.strerror or exc}") from None
    return root


def _with_sub_path(context: Context, sub_path: str) -> Context:
    """The context rooted at `sub_path`, which must stay inside the context."""
    parts: list[str] = []
    for part in sub_path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise ContextError(f"context sub-path {sub_path!r} leaves the build context")
            parts.pop()
        else:
            parts.append(part)
    real_top = Path(os.path.realpath(context.root))
    real_root = Path(os.path.realpath(context.root.joinpath(*parts)))
    if not real_root.is_relative_to(real_top):
        raise ContextError(f"context sub-path {sub_path!r} leads outside the build context")
    if not real_root.is_dir():
        raise ContextError(f"context sub-path {sub_path!r} is not a directory in the context")
    return Context(root=real_root, source=context.source, object_info=context.object_info,
                   unpacked=context.unpacked, archive_root=context.archive_root)


def locate_dockerfile(context: Context, dockerfile: str) -> Path:
    """The Dockerfile's path: `dockerfile` relative to the context root, or absolute.

    For an archive context it must be a regular file inside the unpacked archive, symlinks
    followed only while they stay inside; anything else is a `ContextError`.
    """
    path = Path(dockerfile)
    candidate = path if path.is_absolute() else context.root / path
    if context.archive_root is None:
        return candidate
    top = os.path.realpath(context.archive_root)
    real = Path(os.path.realpath(candidate))
    if not real.is_relative_to(top):
        how = ("is an absolute path outside the build context" if path.is_absolute()
               else "leads outside the build context (through `..` or a symlink)")
        raise ContextError(f"Dockerfile {dockerfile!r} {how}: the Dockerfile of an archive "
                           f"context must be a file inside the archive")
    try:
        mode = real.stat().st_mode
    except OSError:
        raise ContextError(f"no Dockerfile {dockerfile!r} in the build context") from None
    if not stat.S_ISREG(mode):
        raise ContextError(f"Dockerfile {dockerfile!r} in the build context is not a "
                           f"regular file")
    return candidate
