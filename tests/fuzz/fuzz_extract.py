"""atheris fuzz target for the archive readers: bytes in, `extract_layer` or `unpack_context`
into a fresh directory, and two properties checked on every input:
- only `BuildError` subclasses come out (anything else is a crash, which atheris reports with
  the input that caused it);
- nothing escapes: a sentinel tree beside the destination, which the grammar's absolute
  symlinks, hardlinks and whiteouts aim at, is unchanged, and no entry appears next to the
  destination.

The first input byte picks the reader, privileges and format: raw bytes (as a decompressor and
tar parser see them), or entries decoded from the grammar in `tests.fuzz.grammar`, plain or
gzip-compressed. Runs:
    .venv/bin/python tests/fuzz/fuzz_extract.py -runs=2000          # what CI does (a test)
    .venv/bin/python tests/fuzz/fuzz_extract.py -max_total_time=3600 CORPUS_DIR   # long run
libFuzzer flags apply (`-jobs`, `-workers`, `-artifact_prefix=DIR/`); a `CORPUS_DIR` keeps the
inputs that found new coverage between runs. `--seed-corpus DIR` writes starting inputs made
from the hostile corpus into DIR and exits.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import atheris

with atheris.instrument_imports(include=["core"]):
    from core.context.archive import unpack_context
    from core.errors import BuildError
    from core.rootfs import extract_layer

from tests.fuzz.grammar import decode
from tests.security import tarbytes as tb
from tests.security.guard import remove_tree, snapshot

BUDGET = 4 << 20
MAX_ENTRIES = 2000


class Site:
    """A work area: `sentinel/` (watched) and `roots/` (one destination per input), under
    `BUCKETBUILD_FUZZ_AREA` when set, else on tmpfs. libFuzzer ends the process without
    unwinding, so areas of fuzzers no longer running are removed when the next one starts."""

    def __init__(self) -> None:
        base = os.environ.get("BUCKETBUILD_FUZZ_AREA") or (
            "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir())
        _remove_stale(Path(base))
        self.area = Path(tempfile.mkdtemp(prefix=f"bb-fuzz-{os.getpid()}-", dir=base))
        self.sentinel = self.area / "sentinel"
        (self.sentinel / "sub").mkdir(parents=True)
        (self.sentinel / "precious").write_bytes(b"precious\n")
        (self.sentinel / "link").symlink_to("precious")
        self.roots = self.area / "roots"
        self.roots.mkdir()
        self.before = snapshot(self.sentinel)
        self.count = 0

    def destination(self) -> Path:
        self.count += 1
        path = self.roots / f"r{self.count}"
        path.mkdir()
        return path

    def check(self, dest: Path) -> None:
        assert snapshot(self.sentinel) == self.before, "the sentinel tree changed"
        assert sorted(os.listdir(self.area)) == ["roots", "sentinel"], os.listdir(self.area)
        assert os.listdir(self.roots) == [dest.name], os.listdir(self.roots)


SITE: Site | None = None


def _remove_stale(base: Path) -> None:
    for area in base.glob("bb-fuzz-*-*"):
        pid = area.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            remove_tree(area)


def archive_bytes(data: bytes, sentinel: str) -> bytes:
    mode, rest = (data[0] if data else 0), data[1:]
    form = mode % 4
    if form < 2:
        return rest
    plain = decode(rest, sentinel)
    return tb.gzipped(plain, level=1) if form == 3 else plain


def one_input(data: bytes) -> None:
    assert SITE is not None
    dest = SITE.destination()
    mode = data[0] if data else 0
    source = io.BytesIO(archive_bytes(data, str(SITE.sentinel)))
    try:
        if mode & 0x08:
            unpack_context(source, dest, max_bytes=BUDGET, max_entries=MAX_ENTRIES)
        else:
            extract_layer(source, dest, privileged=bool(mode & 0x04), max_bytes=BUDGET)
    except BuildError as error:
        assert str(error)
    SITE.check(dest)
    remove_tree(dest)


def seed_corpus(directory: Path) -> None:
    """Starting inputs: corpus cases as raw archives, a few grammar strings."""
    from tests.security.corpus import CASES
    from tests.security.guard import Sentinel

    directory.mkdir(parents=True, exist_ok=True)
    sentinel = Sentinel.create()
    try:
        for name, case in CASES.items():
            if case.slow or name.startswith(("gzip-bomb", "zstd-bomb", "deep")):
                continue
            data = case.build(sentinel)
            if len(data) < 64 * 1024:
                (directory / f"raw-{name}").write_bytes(bytes([0]) + data)
                (directory / f"ctx-{name}").write_bytes(bytes([8]) + data)
        for i in range(16):
            (directory / f"grammar-{i}").write_bytes(bytes([2 + 4 * (i % 4)]) + os.urandom(40))
    finally:
        sentinel.remove()


def main() -> None:
    global SITE
    if len(sys.argv) == 3 and sys.argv[1] == "--seed-corpus":
        seed_corpus(Path(sys.argv[2]))
        return
    SITE = Site()
    try:
        atheris.Setup(sys.argv, one_input)
        atheris.Fuzz()
    finally:
        remove_tree(SITE.area)


if __name__ == "__main__":
    main()
