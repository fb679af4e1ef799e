"""Image references: `[registry/]repository[:tag][@digest]`, normalised the way Docker does."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import ImageError, ImageReferenceError
from core.image.digest import is_digest as is_digest
from core.image.digest import parse_digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io"})
_MAX_NAME = 255

_TAG = re.compile(r"[\w][\w.-]{0,127}")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
    r"|\[[a-fA-F0-9:]+\])"
    r"(?::[0-9]+)?"
)


@dataclass(frozen=True)
class Repository:
    """A repository in a registry, without tag or digest (the scope of auth and blob mounts)."""

    registry: str
    repository: str

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference. `tag` and `digest` may both be set."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    def __post_init__(self) -> None:
        _check_registry(self.registry, str(self))
        _check_repository(self.repository, str(self))
        if self.tag is None and self.digest is None:
            raise ImageReferenceError(f"invalid reference {str(self)!r}: needs a tag or digest")
        if self.tag is not None:
            _check_tag(self.tag, str(self))
        if self.digest is not None:
            _check_digest(self.digest, str(self))

    @property
    def name(self) -> str:
        """`registry/repository`."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What to ask the registry for: the digest when there is one, else the tag."""
        if self.digest is not None:
            return self.digest
        assert self.tag is not None
        return self.tag

    @property
    def api_host(self) -> str:
        """The host serving the registry API (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def familiar(self) -> str:
        """The short form Docker shows (`busybox:latest`, `user/app:1`, `host/x:y`)."""
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository.removeprefix("library/")
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return name + tag + digest

    def context(self, repository: str | None = None) -> Repository:
        """This reference's repository, or another `repository` of the same registry."""
        if repository is None:
            return Repository(self.registry, self.repository)
        _check_repository(repository, repository)
        return Repository(self.registry, repository)

    def with_tag(self, tag: str) -> Reference:
        """The same repository at `tag` (any digest is dropped)."""
        return Reference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> Reference:
        """The same repository and tag, pinned to `digest`."""
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str, *, default_registry: str = DOCKER_HUB) -> Reference:
    """Parse and normalise an image reference.

    `busybox` becomes `docker.io/library/busybox:latest`; a first path component with a `.`
    or `:` or equal to `localhost` is a registry; a reference with neither tag nor digest
    gets the tag `latest`.
    """
    if not text or text != text.strip():
        raise ImageReferenceError(f"invalid reference {text!r}: empty or surrounded by spaces")
    remainder, at, digest = text.partition("@")
    if at:
        _check_digest(digest, text)
    name, tag = _split_tag(remainder)
    if tag is not None:
        _check_tag(tag, text)
    registry, repository = _split_registry(name, default_registry, text)
    if tag is None and not at:
        tag = DEFAULT_TAG
    return Reference(registry, repository, tag, digest if at else None)


def parse_repository(text: str, *, default_registry: str = DOCKER_HUB) -> Repository:
    """Parse `[registry/]repository` with no tag or digest (e.g. a `--cache-repo`)."""
    ref = parse_reference(text, default_registry=default_registry)
    if ref.digest is not None or text.endswith(f":{ref.tag}"):
        raise ImageReferenceError(f"invalid repository {text!r}: must not have a tag or digest")
    return ref.context()


def _split_tag(name: str) -> tuple[str, str | None]:
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        return name[:colon], name[colon + 1:]
    return name, None


def _split_registry(name: str, default_registry: str, text: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if slash and (any(c in first for c in ".:") or first == "localhost" or first != first.lower()):
        registry, repository = first, rest
    else:
        registry, repository = default_registry, name
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
    _check_registry(registry, text)
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    _check_repository(repository, text)
    if len(registry) + 1 + len(repository) > _MAX_NAME:
        raise ImageReferenceError(
            f"invalid reference {text!r}: name longer than {_MAX_NAME} characters")
    return registry, repository


def _check_registry(registry: str, text: str) -> None:
    if not _DOMAIN.fullmatch(registry):
        raise ImageReferenceError(f"invalid reference {text!r}: bad registry {registry!r}")


def _check_repository(repository: str, text: str) -> None:
    if not repository:
        raise ImageReferenceError(f"invalid reference {text!r}: empty repository name")
    if repository != repository.lower():
        raise ImageReferenceError(
            f"invalid reference {text!r}: repository name must be lowercase")
    for component in repository.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise ImageReferenceError(
                f"invalid reference {text!r}: bad repository path component {component!r} "
                "(lowercase letters, digits and single separators . _ __ - only)")


def _check_tag(tag: str, text: str) -> None:
    if not _TAG.fullmatch(tag):
        raise ImageReferenceError(
            f"invalid reference {text!r}: bad tag {tag!r} "
            "(letters, digits, _ . -, not starting with . or -, at most 128)")


def _check_digest(digest: str, text: str) -> None:
    try:
        parse_digest(digest)
    except ImageError as err:
        raise ImageReferenceError(f"invalid reference {text!r}: {err}") from None

