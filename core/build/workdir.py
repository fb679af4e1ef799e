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
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import BuildError

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SUBDIRS = ("stages", "images", "layers", "cache", "secrets", "tmp")


class WorkDirError(BuildError):
    """The work directory cannot be created or used."""

    kind = "workdir"


@dataclass(frozen=True)
class WorkDir:
    """Paths of one build. `owned`: the root was made for this build (removed by cleanup)."""

    root: Path
    owned: bool

    @classmethod
    def create(cls, base: Path | None) -> WorkDir:
        """Use `base` (created if missing) or a fresh directory under the system temp dir."""
        try:
            if base is None:
                root, owned = Path(tempfile.mkdtemp(prefix="bucketbuild-")), True
            else:
                root, owned = Path(os.path.abspath(base)), False
                root.mkdir(parents=True, exist_ok=True)
                cls(root=root, owned=False).cleanup()  # what an earlier build left, but cache
            for name in _SUBDIRS:
                (root / name).mkdir(exist_ok=True)
            os.chmod(root / "secrets", 0o700)
        except OSError as exc:
            raise WorkDirError(f"cannot create work directory: {exc}") from None
        return cls(root=root, owned=owned)

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
            _remove(self.root)
            return
        for name in (*_SUBDIRS, "context", "downloads"):
            if name != "cache":
                _remove(self.root / name)


def _remove(path: Path) -> None:
    """Remove a file or tree; read-only directories (unprivileged trees) are opened up first."""

    def retry_writable(function: object, name: str, info: object) -> None:
        try:
            os.chmod(os.path.dirname(name), 0o700)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, 0o700)
                shutil.rmtree(name, ignore_errors=True)
            else:
                os.unlink(name)
        except OSError as exc:
            log.warning("cannot remove %s: %s", name, exc)

    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, onerror=retry_writable)
