"""A build's private directory under the work root, and the environment the build runs in.

Layout of `<work root>/<build id>-<random>/`: `home/` (HOME), `tmp/` (TMPDIR), `docker/`
(DOCKER_CONFIG: registry credentials, 0700), `build/` (the engine's work dir), `context.archive`
(the downloaded upload) and `build.log`. Everything is removed when the build ends, whatever
happened, so a warm function instance starts each build with a clean `/tmp`.

`build_environment` points HOME, TMPDIR and DOCKER_CONFIG there (and puts the sandbox tools
directory first on PATH) for the duration of one build and restores the previous values after:
a function instance runs one build at a time, and the engine's registry credentials and RUN
sandboxes read these variables.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.errors import ContextError
from core.service.settings import SettingsError

log = logging.getLogger(__name__)

SECRET_SCHEMES = ("secretsmanager:", "sm://")

#: reads a secret by its reference (`secretsmanager:ARN`, `sm://projects/...`) as text
SecretReader = Callable[[str], str]


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def create(cls, work_root: Path, build_id: str) -> Workspace:
        try:
            work_root.mkdir(parents=True, exist_ok=True)
            root = Path(tempfile.mkdtemp(prefix=f"{build_id}-", dir=work_root))
            for name in ("home", "tmp", "build"):
                (root / name).mkdir()
            (root / "docker").mkdir(mode=0o700)
        except OSError as exc:
            error = ContextError(f"cannot create a work directory under {work_root}: {exc}")
            error.retryable = True
            raise error from None
        return cls(root)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def docker(self) -> Path:
        return self.root / "docker"

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def archive(self) -> Path:
        return self.root / "context.archive"

    @property
    def log_path(self) -> Path:
        return self.root / "build.log"

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        if self.root.exists():
            log.warning("could not remove all of %s", self.root)


def docker_config_dir(setting: str | None, workspace: Workspace, *,
                      read_secret: SecretReader | None) -> Path:
    """The directory to use as DOCKER_CONFIG for `BUCKETBUILD_DOCKER_CONFIG`'s value: an
    empty one when unset, the file's directory (or a copy) for a path, and a fresh
    `config.json` for a secret reference."""
    if not setting:
        return workspace.docker
    if setting.startswith(SECRET_SCHEMES):
        if read_secret is None:
            raise SettingsError(f"BUCKETBUILD_DOCKER_CONFIG: {setting.split(':')[0]} secrets "
                                "cannot be read on this platform")
        _write_private(workspace.docker / "config.json", read_secret(setting))
        return workspace.docker
    path = Path(setting)
    if path.is_dir():
        return path
    if path.is_file() and path.name == "config.json":
        return path.parent
    if path.is_file():
        _write_private(workspace.docker / "config.json", path.read_text(encoding="utf-8"))
        return workspace.docker
    raise SettingsError(f"BUCKETBUILD_DOCKER_CONFIG: {setting} does not exist")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


@contextmanager
def build_environment(workspace: Workspace, *, docker_config: Path,
                      tools_dir: Path | None) -> Iterator[None]:
    """HOME, TMPDIR, DOCKER_CONFIG (and PATH) for one build; restored afterwards."""
    changes = {"HOME": str(workspace.home), "TMPDIR": str(workspace.tmp),
               "DOCKER_CONFIG": str(docker_config)}
    if tools_dir is not None:
        path = os.environ.get("PATH", os.defpath)
        changes["PATH"] = os.pathsep.join((str(tools_dir), str(tools_dir / "bin"), path))
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
