"""Fixtures of the security suite: a sentinel tree in /tmp and a work area.

The work area lives on tmpfs (`/dev/shm`) when there is one: that is what a Cloud Function's
`/tmp` is, and deep hostile trees are created and removed there ten to thirty times faster than
on a loaded virtual disk. Both are removed without recursion (trees can be 10,000 levels deep).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.image.reference import Reference
from tests.fixtures.registry import RegistryServer
from tests.security.guard import Sentinel, remove_tree
from tests.security.images import push_corpus

_TMPFS = "/dev/shm"


@pytest.fixture()
def sentinel() -> Iterator[Sentinel]:
    made = Sentinel.create()
    try:
        yield made
    finally:
        made.remove()


@pytest.fixture()
def work(tmp_path: Path) -> Iterator[Path]:
    """`<area>/work`, with a neighbour directory beside it that `..` attacks would reach."""
    base = _TMPFS if os.access(_TMPFS, os.W_OK) else str(tmp_path)
    area = Path(tempfile.mkdtemp(prefix="bb-security-", dir=base))
    (area / "neighbour").mkdir()
    (area / "neighbour/keep.txt").write_text("neighbour\n")
    path = area / "work"
    path.mkdir()
    try:
        yield path
    finally:
        remove_tree(area)


@pytest.fixture(scope="session")
def shared_sentinel() -> Iterator[Sentinel]:
    """A sentinel for the pushed images (their symlinks name it, so it outlives one test)."""
    made = Sentinel.create()
    try:
        yield made
    finally:
        made.remove()


@pytest.fixture(scope="session")
def hostile_images(registry: RegistryServer, shared_sentinel: Sentinel) -> dict[str, Reference]:
    """Every (not slow) corpus case pushed once as `hostile/<case>:v1`."""
    return push_corpus(registry, shared_sentinel)
