"""The build's own directory: every path the engine writes lives under one `WorkDir`.

Layout under the root:
- `context/`   an unpacked context archive (a directory context is used where it is)
- `stages/N/`  one directory per stage: `rootfs/` (its tree, extracted only when needed) and
               `metadata.json` (what the file system could not carry)
- `images/`    trees of images used by `COPY --from=image` / `RUN --mount=from=image`
- `layers/`    spooled layer blobs: new layers, and base layers that had to be fetched
- `cache/`     `RUN --mount=type=cache` directories, keyed by cache id (kept across builds
               when the work dir is given and not cleaned)
- `secrets/`   secret files for `RUN --mount=type=secret` (0400, removed after each step)
- `tmp/`       scratch space (staging directories, downloads)

Nothing is created at import or by constructing the value; `create` makes the directories (in
a reused work dir, after removing everything an earlier build left there except the cache).

A build holds an flock on `.bucketbuild.lock` in its work dir for its whole life (`BuildLock`);
the kernel drops it when the process dies, however it dies (SIGKILL, OOM kill). So a reused
work dir is never cleaned while another live build uses it (that is an error), and `create`
of a fresh directory first removes the `bucketbuild-*` directories of dead builds under the
temp dir: those with a lock file nobody holds. A directory without a lock file (kept with
`--cleanup=false`, or not ours) is never touched. Trees are removed iteratively (any depth,
`core.rootfs.prune`), without following links and never through a mount point.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import BuildError
from core.rootfs import prune

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SUBDIRS = ("stages", "images", "layers", "cache", "secrets", "tmp")
LOCK_NAME = ".bucketbuild.lock"
#: names of work dirs made under the temp dir, and of those being removed (`.NAME.removing`)
OWNED_PREFIXES = ("bucketbuild-", ".bucketbuild-")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class WorkDirError(BuildError):
    """The work directory cannot be created or used."""

    kind = "workdir"


@dataclass(frozen=True)
class WorkDir:
    """Paths of one build. `owned`: the root was made for this build (removed by cleanup)."""

    root: Path
    owned: bool
    lock: BuildLock | None = field(default=None, compare=False, repr=False)

    @classmethod
    def create(cls, base: Path | None) -> WorkDir:
        """Use `base` (created if missing; `WorkDirError` when a live build uses it) or a
        fresh directory under the system temp dir (after removing those of dead builds)."""
        lock = None
        try:
            if base is None:
                remove_stale(Path(tempfile.gettempdir()), prefixes=OWNED_PREFIXES)
                root, owned = Path(tempfile.mkdtemp(prefix=OWNED_PREFIXES[0])), True
                lock = BuildLock.acquire(root)
            else:
                root, owned = Path(os.path.abspath(base)), False
                root.mkdir(parents=True, exist_ok=True)
                lock = BuildLock.acquire(root)
                cls(root=root, owned=False).cleanup()  # what an earlier build left, but cache
            for name in _SUBDIRS:
                (root / name).mkdir(exist_ok=True)
            os.chmod(root / "secrets", 0o700)
        except OSError as exc:
            if lock is not None:
                lock.release()
            raise WorkDirError(f"cannot create work directory: {exc}") from None
        return cls(root=root, owned=owned, lock=lock)

    @property
    def context(self) -> Path:
        return self.root / "context"

    @property
    def layers(self) -> Path:
        return self.root / "layers"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    def stage_dir(self, index: int) -> Path:
        return self.root / "stages" / str(index)

    def image_dir(self, digest: str) -> Path:
        return self.root / "images" / digest.replace(":", "-")

    def cache_dir(self, cache_id: str) -> Path:
        """The directory of one cache mount id (a readable prefix plus a hash of the id)."""
        digest = hashlib.sha256(cache_id.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        readable = _SAFE.sub("_", cache_id).strip("._")[:40] or "cache"
        return self.cache / f"{readable}-{digest}"

    def new_temp_dir(self, prefix: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.tmp))

    def cleanup(self) -> None:
        """Remove what this build made: everything when owned, else all but the cache."""
        if self.owned:
            remove_tree(self.root)
            return
        for name in (*_SUBDIRS, "context", "downloads"):
            if name != "cache":
                remove_tree(self.root / name)

    def release(self) -> None:
        """End the build's claim on the directory (its lock file goes, when it is still there:
        a kept work dir is then never taken for a dead build's)."""
        if self.lock is not None:
            self.lock.release()




class BuildLock:
    """The flock a build holds on `<dir>/.bucketbuild.lock` (working state, not a value)."""

    def __init__(self, directory: Path, fd: int) -> None:
        self.directory = directory
        self._fd = fd

    @classmethod
    def acquire(cls, directory: Path) -> BuildLock:
        """Lock `directory` for this build; `WorkDirError` when a live build holds it."""
        path = directory / LOCK_NAME
        for _ in range(8):
            fd = _open_lock(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                os.close(fd)
                shown = f" (pid {holder})" if holder.isdigit() else ""
                raise WorkDirError(f"work directory {directory} is in use by another "
                                   f"build{shown}") from None
            if _is_current(fd, path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return cls(directory, fd)
            os.close(fd)  # its owner removed that lock file meanwhile: take the new one
        raise WorkDirError(f"cannot lock work directory {directory}")

    def release(self) -> None:
        if self._fd < 0:
            return
        path = self.directory / LOCK_NAME
        with contextlib.suppress(OSError):
            if _is_current(self._fd, path):
                path.unlink()
        os.close(self._fd)
        self._fd = -1


def _open_lock(path: Path) -> int:
    """The lock file's descriptor; a new lock file appears already locked (made under a
    temporary name, locked, then linked), so no one can take it for a dead build's."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    with contextlib.suppress(FileNotFoundError):
        return os.open(path, flags)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".lock-")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
        os.link(temporary, path)
    except FileExistsError:
        os.close(fd)
        return os.open(path, flags)
    finally:
        os.unlink(temporary)
    return fd


def _is_current(fd: int, path: Path) -> bool:
    """Whether `fd` is still the file at `path` (not one unlinked by its owner)."""
    try:
        named, held = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except OSError:
        return False
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def remove_stale(root: Path, *, prefixes: tuple[str, ...]) -> list[Path]:
    """Remove the directories under `root` named with one of `prefixes` that belong to dead
    builds: their lock file exists and nobody holds it. Returns what was removed."""
    try:
        names = sorted(n for n in os.listdir(root) if n.startswith(prefixes))
    except OSError:
        return []
    removed = []
    for name in names:
        path = root / name
        fd = _take_dead(path)
        if fd is None:
            continue
        try:
            log.warning("removing %s, left by a build that is gone", path)
            if remove_tree(path):
                removed.append(path)
        finally:
            os.close(fd)
    return removed


def _take_dead(path: Path) -> int | None:
    """The locked descriptor of `path`'s lock file when its build is dead, else None."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return None
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None  # no lock file: a kept work dir, or not a build's
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None  # a live build
    return fd


def remove_tree(path: Path, *, strict: bool = False) -> bool:
    """Remove a file or a directory tree of any depth, without following links; read-only
    directories (unprivileged trees) are opened up first. A tree with a mount point in it is
    left alone. Failures are logged (raised with `strict`); returns whether it is gone."""
    if not os.path.lexists(path):
        return True
    mounts = mounts_under(path)
    if mounts:
        message = f"not removing {path}: {mounts[0]} is mounted in it"
        if strict:
            raise WorkDirError(message)
        log.warning("%s", message)
        return False
    for attempt in range(3):
        try:
            _unlink_tree(path)
            return True
        except PermissionError:
            if attempt == 0:
                _open_up(path)
        except FileNotFoundError:
            continue  # part of it went meanwhile (a concurrent removal): go again
        except OSError as exc:
            if strict:
                raise
            log.warning("cannot remove %s: %s", path, exc)
            return False
    if strict:
        raise WorkDirError(f"cannot remove {path}")
    log.warning("could not remove all of %s", path)
    return False


def _unlink_tree(path: Path) -> None:
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        prune.remove(parent, path.name, path=path.name)
    finally:
        os.close(parent)


def _open_up(path: Path) -> None:
    """Give the owner rwx on every directory of the tree: depth first, one descriptor held,
    back up through `..` (a tree can be thousands of levels deep)."""
    try:
        os.chmod(path, 0o700, follow_symlinks=False)
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        return
    levels: list[list[str]] = []
    pending = _subdirs(fd)
    try:
        while pending or levels:
            if not pending:
                fd = _move(fd, "..")
                pending = levels.pop()
                continue
            name = pending.pop()
            with contextlib.suppress(OSError):
                os.chmod(name, 0o700, dir_fd=fd)
                fd = _move(fd, name)
                levels.append(pending)
                pending = _subdirs(fd)
    except OSError as exc:
        log.debug("opening up %s: %s", path, exc)
    finally:
        os.close(fd)


def _subdirs(fd: int) -> list[str]:
    with os.scandir(fd) as listing:
        return [e.name for e in listing if e.is_dir(follow_symlinks=False)]


def _move(fd: int, name: str) -> int:
    moved = os.open(name, _DIR_FLAGS, dir_fd=fd)
    os.close(fd)
    return moved


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path` in this process's mount namespace."""
    root = os.path.realpath(path)
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                point = _unescape(fields[4]) if len(fields) > 4 else ""
                if point == root or point.startswith(root.rstrip("/") + "/"):
                    found.append(point)
    except OSError:
        return []
    return found


def _unescape(text: str) -> str:
    """mountinfo's octal escapes (`\\040` for a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)
