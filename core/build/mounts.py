"""`RUN --mount` made concrete: the host paths a sandbox binds, and what must be cleaned up.

- `type=cache`: a directory under the work dir's `cache/`, keyed by `id` (default: the target),
  created with the mount's mode/uid/gid (default 0755 root); never part of a layer.
- `type=secret`: the secret (`--secret id=...,src=FILE|env=VAR`) written to a 0400 file under
  the work dir's `secrets/` (owner from uid/gid), bound read-only at the target (default
  `/run/secrets/<id>`), or exposed as an environment variable with `env=`; a missing secret
  is an error only when `required`. Files are removed when the step ends; contents never reach
  a layer, the history or the step's output (masked).
- `type=bind`: a path of the build context, a stage or an image (default: its root), read-only
  unless `rw` (then a private copy is bound, and its changes are discarded).
- `type=tmpfs`: an empty in-memory file system.
Relative targets are taken against the working directory.
"""

from __future__ import annotations

import os
import posixpath
import secrets as random_names
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.build.copy_sources import match_sources
from core.build.session import BuildSession
from core.dockerfile.mounts import Mount
from core.errors import StepError
from core.plan import Source
from core.run.spec import BindMount, TmpfsMount
from core.run.spec import Mount as SandboxMount

DEFAULT_SECRET_DIR = "/run/secrets"


@dataclass
class PreparedMounts:
    """Mounts for one RUN, plus secret env vars and the files to remove afterwards."""

    mounts: list[SandboxMount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    secret_values: list[str] = field(default_factory=list)
    cleanup: list[Path] = field(default_factory=list)

    def release(self) -> None:
        for path in self.cleanup:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def prepare_mounts(session: BuildSession, mounts: Sequence[Mount],
                   sources: Sequence[Source | None], *, workdir: str) -> PreparedMounts:
    """Turn a RUN's `--mount`s into sandbox mounts (call `release` when the step ends)."""
    prepared = PreparedMounts()
    try:
        for index, mount in enumerate(mounts):
            source = sources[index] if index < len(sources) else None
            _prepare(session, prepared, mount, source, workdir)
    except BaseException:
        prepared.release()
        raise
    return prepared


def _target(mount: Mount, workdir: str) -> str:
    target = mount.target
    if mount.type == "secret" and not target and not mount.env:
        target = f"{DEFAULT_SECRET_DIR}/{mount.id}"
    if target and not target.startswith("/"):
        target = posixpath.join(workdir, target)
    return posixpath.normpath(target) if target else ""


def _prepare(session: BuildSession, prepared: PreparedMounts, mount: Mount,
             source: Source | None, workdir: str) -> None:
    target = _target(mount, workdir)
    if mount.type == "cache":
        if mount.from_:
            raise StepError("cache mounts seeded from another stage or image are not supported")
        path = _cache_dir(session, mount, target)
        prepared.mounts.append(BindMount(source=path, target=target, readonly=mount.readonly))
    elif mount.type == "secret":
        _secret(session, prepared, mount, target)
    elif mount.type == "bind":
        path = _bind_source(session, prepared, mount, source)
        prepared.mounts.append(BindMount(source=path, target=target, readonly=mount.readonly))
    elif mount.type == "tmpfs":
        prepared.mounts.append(TmpfsMount(target=target, size=mount.size or None))
    else:
        raise StepError(f"RUN --mount=type={mount.type} is not supported")


def _cache_dir(session: BuildSession, mount: Mount, target: str) -> Path:
    path = session.workdir.cache_dir(mount.id or target)
    if not path.exists():
        path.mkdir(parents=True)
        os.chmod(path, mount.mode if mount.mode is not None else 0o755)
        if os.geteuid() == 0:
            os.chown(path, mount.uid or 0, mount.gid or 0)
    return path


def _secret(session: BuildSession, prepared: PreparedMounts, mount: Mount,
            target: str) -> None:
    value = _secret_value(session, mount.id)
    if value is None:
        if mount.required:
            raise StepError(f"secret {mount.id} not found (it is required: pass --secret "
                            f"id={mount.id},src=FILE)")
        return
    if value:
        prepared.secret_values.append(value.decode("utf-8", "replace"))
    if mount.env:
        prepared.env[mount.env] = value.decode("utf-8", "surrogateescape")
    if not target:
        return
    path = session.workdir.secrets / random_names.token_hex(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(value)
    prepared.cleanup.append(path)
    if os.geteuid() == 0:
        os.chown(path, mount.uid or 0, mount.gid or 0)
    os.chmod(path, mount.mode if mount.mode is not None else 0o400)
    prepared.mounts.append(BindMount(source=path, target=target, readonly=True))


def _secret_value(session: BuildSession, secret_id: str) -> bytes | None:
    for secret in session.options.secrets:
        if secret.id != secret_id:
            continue
        if secret.path is not None:
            try:
                return secret.path.read_bytes()
            except OSError as error:
                raise StepError(f"cannot read secret {secret_id}: {error.strerror}") from None
        if secret.env is not None:
            value = os.environ.get(secret.env)
            return None if value is None else value.encode("utf-8", "surrogateescape")
    return None


def _bind_source(session: BuildSession, prepared: PreparedMounts, mount: Mount,
                 source: Source | None) -> Path:
    tree = session.context if source is None else session.source_tree(source)
    items = match_sources(tree, mount.source or "/")
    if len(items) != 1:
        raise StepError(f"bind mount source {mount.source!r} must name exactly one path")
    path = items[0].path
    if mount.readonly:
        return path
    copy = session.staging("bind-rw-") / "data"
    if path.is_dir():
        shutil.copytree(path, copy, symlinks=True)
    else:
        shutil.copy2(path, copy, follow_symlinks=False)
    prepared.cleanup.append(copy.parent)
    return copy
