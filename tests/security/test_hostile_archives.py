"""Every case of the hostile corpus, through every reader of archives we have.

Readers: `unpack_context` and `resolve_context("tar://...")` (build contexts), and
`extract_layer` as root (privileged: owners, device nodes) and unprivileged (metadata map),
on top of a lower layer whose symlinks point at the sentinel and at /etc, /root and /tmp.
Each run must either succeed with the contained result the case describes or raise the
`BuildError` subclass it names, with a readable message; any other exception fails the test.
The guard then proves that nothing outside the destination was created, changed or deleted.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core.context.archive import unpack_context
from core.context.source import ContextLimits, resolve_context
from core.errors import BudgetError, BuildError
from core.rootfs import MetadataMap, Root, extract_layer
from core.rootfs.apply import MAX_BOOKKEEPING, Applier
from core.rootfs.nodes import WritePolicy
from core.rootfs.tarstream import TarReader
from tests.security import tarbytes as tb
from tests.security.corpus import BUDGET, CASES, MAX_ENTRIES, Case, context_archive, lower_layer
from tests.security.guard import Guard, Sentinel

READERS = ("unpack_context", "resolve_context", "extract_layer", "extract_layer_unprivileged")


def outcome(call: Callable[[], object]) -> BuildError | None:
    """None on success, the `BuildError` on a clean failure (anything else propagates)."""
    try:
        call()
    except BuildError as error:
        return error
    return None


def assert_clear(error: BuildError) -> None:
    text = str(error)
    assert text.strip(), f"{type(error).__name__} without a message"
    text.encode("utf-8")  # printable: raw name bytes are escaped, never lone surrogates
    assert len(text) < 1000, f"message of {len(text)} characters"


def judge(case: Case, error: BuildError | None, expected: type[BuildError] | None) -> None:
    if expected is None:
        assert error is None, f"{case.name}: expected success, got {type(error).__name__}: {error}"
    else:
        assert error is not None, f"{case.name}: expected {expected.__name__}, got success"
        assert isinstance(error, expected), (
            f"{case.name}: expected {expected.__name__}, got {type(error).__name__}: {error}")
        assert_clear(error)


def run_context(case: Case, reader: str, work: Path, sentinel: Sentinel) -> Path:
    data = context_archive(case, sentinel)
    dest = work / "context"
    dest.mkdir()
    upload = work.parent / "upload.tar"
    upload.write_bytes(data)
    guard = Guard(work.parent, (dest,), sentinel)
    guard.arm()
    if reader == "unpack_context":
        error = outcome(lambda: unpack_context(io.BytesIO(data), dest, max_bytes=BUDGET,
                                               max_entries=MAX_ENTRIES))
    else:
        limits = ContextLimits(unpacked_bytes=BUDGET, entries=MAX_ENTRIES)
        error = outcome(lambda: resolve_context(f"tar://{upload}", work_dir=work,
                                                limits=limits))
    guard.check()
    judge(case, error, case.context)
    if error is None and case.check_context is not None:
        case.check_context(dest, sentinel)
    return dest


def run_layer(case: Case, work: Path, sentinel: Sentinel, *, privileged: bool) -> Path:
    rootfs = work / "rootfs"
    rootfs.mkdir()
    lower = extract_layer(io.BytesIO(lower_layer(sentinel)), rootfs, privileged=privileged)
    data = case.build(sentinel)
    guard = Guard(work.parent, (rootfs,), sentinel)
    guard.arm()
    error = outcome(lambda: extract_layer(io.BytesIO(data), rootfs, metadata=lower.metadata,
                                          privileged=privileged, max_bytes=BUDGET))
    guard.check()
    judge(case, error, case.layer)
    if error is None and case.check_layer is not None:
        case.check_layer(rootfs, sentinel)
    return rootfs


def case_params() -> list[object]:
    """(case, reader) pairs; slow ones (10,000-deep trees, 12,000 entries) need `-m slow`."""
    params: list[object] = []
    for name in sorted(CASES):
        case = CASES[name]
        for reader in READERS:
            slow = case.slow or (case.heavy and reader != "extract_layer")
            marks = (pytest.mark.slow,) if slow else ()
            params.append(pytest.param(name, reader, marks=marks, id=f"{name}-{reader}"))
    return params


@pytest.mark.parametrize(("name", "reader"), case_params())
def test_hostile_archive(name: str, reader: str, work: Path, sentinel: Sentinel) -> None:
    case = CASES[name]
    started = time.monotonic()
    if reader.startswith("extract_layer"):
        run_layer(case, work, sentinel, privileged=reader == "extract_layer")
    else:
        run_context(case, reader, work, sentinel)
    assert time.monotonic() - started < 60, "a hostile archive must not take this long"


def test_unprivileged_layer_records_what_disk_cannot_hold(work: Path,
                                                          sentinel: Sentinel) -> None:
    """Devices written through an outside link become placeholders inside the root, and the
    metadata map holds their real kind under the path they really have."""
    rootfs = work / "rootfs"
    rootfs.mkdir()
    case = CASES["devices-through-outside-link"]
    lower = extract_layer(io.BytesIO(lower_layer(sentinel)), rootfs, privileged=False)
    result = extract_layer(io.BytesIO(case.build(sentinel)), rootfs, privileged=False,
                           metadata=lower.metadata)
    where = sentinel.relative
    assert isinstance(result.metadata, MetadataMap)
    assert result.metadata[f"{where}/null"].kind == "char"
    assert result.metadata[f"{where}/disk"].kind == "block"
    assert (rootfs / where / "null").stat().st_size == 0


def test_bookkeeping_of_deep_names_is_bounded(work: Path, sentinel: Sentinel) -> None:
    """A short name nested thousands of levels deep makes the extractor remember every parent
    (about N²/2 bytes of paths): past the limit that is a `BudgetError`, not an exhausted
    memory. Full scale (a 200,000-deep name) is the `deep-200000-name` case (`-m slow`)."""
    rootfs = work / "rootfs"
    rootfs.mkdir()
    data = tb.archive([tb.file("d/" * 3000 + "x", b"1")])
    guard = Guard(work.parent, (rootfs,), sentinel)
    guard.arm()
    with Root(rootfs) as root:
        applier = Applier(root, WritePolicy(privileged=False), whiteouts=True, metadata={},
                          max_bookkeeping=4 << 20)
        reader = TarReader(io.BufferedReader(io.BytesIO(data)))
        with pytest.raises(BudgetError, match="remembering them needs more than"):
            for entry in reader:
                applier.apply(entry, reader.read_payload)
    guard.check()
    assert MAX_BOOKKEEPING >= 100 << 20  # a 10,000-deep tree (about 96 MiB) still fits
