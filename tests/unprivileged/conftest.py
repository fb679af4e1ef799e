"""Fixtures for builds in function-like boxes: base images in the session registry, and the
reference builds (as root, with chroot) that the boxes' builds must equal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.registry import RegistryServer
from tests.unprivileged.boxes import BuildOutcome, build, require_boxes, shared_dir, write_context
from tests.unprivileged.dockerfiles import BUSYBOX, FILES, GLIBC
from tests.unprivileged.images import busybox_entries, glibc_entries, push_base


@dataclass(frozen=True)
class Reference:
    """A context on disk (readable by the box's user) and its build as root with chroot."""

    work: Path
    context: Path
    outcome: BuildOutcome


@pytest.fixture(scope="session")
def unprivileged_work() -> Iterator[Path]:
    with shared_dir("bucketbuild-unprivileged-") as work:
        yield work


@pytest.fixture(scope="session")
def busybox_base(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A static busybox base with owners, modes, setuid/setgid bits, a FIFO, a device."""
    require_boxes()
    if not Path("/bin/busybox").is_file():
        pytest.skip("busybox-static is not installed")
    return push_base(tmp_path_factory.mktemp("busybox-base"), registry.host, "busybox",
                     busybox_entries())


@pytest.fixture(scope="session")
def glibc_base(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same files over dash, bash and coreutils from this machine (glibc, dynamic)."""
    require_boxes()
    return push_base(tmp_path_factory.mktemp("glibc-base"), registry.host, "glibc",
                     glibc_entries())


def _reference(work: Path, name: str, dockerfile: str, host: str) -> Reference:
    context = write_context(work / f"{name}-context", {"Dockerfile": dockerfile, **FILES})
    outcome = build(None, context, work / f"{name}-reference", host, "--run-isolation=chroot")
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.final()["sandbox"] == "chroot"
    return Reference(work, context, outcome)


@pytest.fixture(scope="session")
def busybox_reference(registry: RegistryServer, busybox_base: str,
                      unprivileged_work: Path) -> Reference:
    return _reference(unprivileged_work, "busybox", BUSYBOX.format(base=busybox_base),
                      registry.host)


@pytest.fixture(scope="session")
def glibc_reference(registry: RegistryServer, glibc_base: str,
                    unprivileged_work: Path) -> Reference:
    return _reference(unprivileged_work, "glibc", GLIBC.format(base=glibc_base), registry.host)
