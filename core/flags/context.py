"""`--context`, `--context-sub-path` and `--dockerfile`: what they name, checked up front.

Local paths are checked and made absolute here, so a typo fails before any work starts;
remote contexts (`s3://`, `gs://`) are only checked for shape.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from core.errors import UsageError

_REMOTE_SCHEMES = ("s3", "gs")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def resolve_context(text: str, *, cwd: Path) -> str:
    """A context for `BuildOptions.context`: an absolute directory, `tar://ABSFILE`, or a bucket
    URL as given."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return _local_directory(text, cwd=cwd, flag_value=text)
    scheme = scheme.lower()
    if scheme == "dir":
        return _local_directory(rest, cwd=cwd, flag_value=text)
    if scheme == "tar":
        path = cwd / Path(rest).expanduser()
        if not rest or not path.is_file():
            raise UsageError(f"--context {text}: {rest or 'FILE'} is not a file")
        return f"tar://{path.resolve()}"
    if scheme in _REMOTE_SCHEMES:
        bucket, _, key = rest.partition("/")
        if not bucket or not key:
            raise UsageError(f"--context {text}: expected {scheme}://BUCKET/OBJECT")
        return f"{scheme}://{rest}"
    if scheme == "git":
        raise UsageError(f"--context {text}: git contexts are not supported; "
                         "clone the repository and pass --context DIR")
    raise UsageError(f"--context {text}: unsupported context type {scheme}:// "
                     "(use a directory, dir://, tar://, s3:// or gs://)")


def _local_directory(text: str, *, cwd: Path, flag_value: str) -> str:
    path = cwd / Path(text or ".").expanduser()
    if not path.is_dir():
        hint = " (use tar://FILE for an archive)" if path.is_file() else ""
        raise UsageError(f"--context {flag_value}: not a directory{hint}")
    return str(path.resolve())


def is_local_context(context: str) -> bool:
    """Whether a resolved context is a directory on this machine."""
    return _URL.match(context) is None


def check_sub_path(sub_path: str) -> str:
    """`--context-sub-path`: a path inside the context (a leading `/` is the context's root),
    normalised to a relative one."""
    normal = posixpath.normpath(sub_path.lstrip("/") or ".")
    if normal == ".." or normal.startswith("../"):
        raise UsageError(f"--context-sub-path {sub_path}: must be a path inside the context")
    return "" if normal == "." else normal


def resolve_dockerfile(dockerfile: str | None, *, context: str, sub_path: str,
                       cwd: Path) -> str:
    """`--dockerfile`, relative to the context (after the sub path) or absolute.

    For a directory context, a relative path that is not in the context but exists relative
    to the current directory is used from there (as kaniko and docker do), made absolute.
    For archive and bucket contexts a relative path always names a file inside the context.
    """
    if dockerfile is None:
        dockerfile = "Dockerfile"
    if _URL.match(dockerfile):
        raise UsageError(f"--dockerfile {dockerfile}: URLs are not supported; "
                         "give a path in the context or a local file")
    path = Path(dockerfile).expanduser()
    if path.is_absolute():
        if not path.is_file():
            raise UsageError(f"--dockerfile {dockerfile}: no such file")
        return str(path)
    if not is_local_context(context):
        return dockerfile
    root = Path(context) / sub_path if sub_path else Path(context)
    if (root / path).is_file():
        return dockerfile
    if (cwd / path).is_file():
        return str((cwd / path).resolve())
    raise UsageError(f"--dockerfile {dockerfile}: not found in the context {root} "
                     "or the current directory")


def check_sub_path_exists(context: str, sub_path: str) -> None:
    """For a directory context, the sub path must be a directory in it."""
    if sub_path and is_local_context(context) and not (Path(context) / sub_path).is_dir():
        raise UsageError(f"--context-sub-path {sub_path}: no such directory in {context}")
