"""A build's private directory under the work root, and the environment the build runs in.

Layout of `<work root>/<build id>-<random>/`: `home/` (HOME), `tmp/` (TMPDIR), `docker/`
(DOCKER_CONFIG: registry credentials, 0700), `build/` (the engine's work dir), `context.archive`
(the downloaded upload) and `build.log`. Everything is removed when the build ends, whatever
happened, so a warm function instance starts each build with a clean `/tmp`. The workspace is
locked for the build's life (`core.build.workdir.BuildLock`): a build killed on the way (the
platform's SIGKILL, an out-of-memory kill) leaves an unlocked one behind, which the next
`create` under the same work root removes; workspaces of live builds are never touched.

Nothing here changes the process's environment: several builds may run in one process at
once (Cloud Run with a concurrency above 1). `helper_environment` gives the variables a
build's own helper processes (docker credential helpers) get on top of the process's
environment — HOME, TMPDIR and DOCKER_CONFIG in the workspace, the tools directory first on
PATH — and the runner passes them, with the docker config directory, in the build's options.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.build.workdir import BuildLock, remove_stale, remove_tree
from core.errors import BuildError, ContextError
from core.service.settings import SettingsError

log = logging.getLogger(__name__)

SECRET_SCHEMES = ("secretsmanager:", "sm://")

#: reads a secret by its reference (`secretsmanager:ARN`, `sm://projects/...`) as text
SecretReader = Callable[[str], str]


@dataclass(frozen=True)
class Workspace:
    root: Path
    lock: BuildLock | None = field(default=None, compare=False, repr=False)

    @classmethod
    def create(cls, work_root: Path, build_id: str) -> Workspace:
        """A fresh workspace under `work_root`, after removing those of dead builds."""
        try:
            work_root.mkdir(parents=True, exist_ok=True)
            remove_stale(work_root, prefixes=("",))
            root = Path(tempfile.mkdtemp(prefix=f"{build_id}-", dir=work_root))
            lock = BuildLock.acquire(root)
            for name in ("home", "tmp", "build"):
                (root / name).mkdir()
            (root / "docker").mkdir(mode=0o700)
        except (OSError, BuildError) as exc:
            error = ContextError(f"cannot create a work directory under {work_root}: {exc}")
            error.retryable = True
            raise error from None
        return cls(root, lock)

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
        remove_tree(self.root)  # iterative, never through a mount point; failures are logged
        if self.lock is not None:
            self.lock.release()


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


def helper_environment(workspace: Workspace, *, docker_config: Path, tools_dir: Path | None,
                       environ: Mapping[str, str]) -> dict[str, str]:
    """HOME, TMPDIR, DOCKER_CONFIG (and PATH, the tools directory first) for the helper
    processes of one build; `environ` (the process's environment) is only read."""
    changes = {"HOME": str(workspace.home), "TMPDIR": str(workspace.tmp),
               "DOCKER_CONFIG": str(docker_config)}
    if tools_dir is not None:
        path = environ.get("PATH", os.defpath)
        changes["PATH"] = os.pathsep.join((str(tools_dir), str(tools_dir / "bin"), path))
    return changes
