"""Benchmark: stat index, snapshot diff and layer tar writing next to GNU tar and find.

Run: .venv/bin/python tests/bench/bench_snapshot.py [--sizes 10000 100000] [--repeat 3]
Not collected by pytest. Each measurement is the best of --repeat runs on a warm page cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.snapshot.compress import Compression, LayerWriter, available_cpus
from core.snapshot.diff import SnapshotMode, snapshot, whole_tree
from core.snapshot.index import StatIndex
from core.snapshot.tarwriter import LayerTarWriter, XattrPolicy, write_diff

FILES_PER_DIR = 100


@dataclass(frozen=True)
class Row:
    name: str
    files: int
    seconds: float

    def render(self) -> str:
        per_file = self.seconds / self.files * 1e6
        return f"| {self.name:<44} | {self.files:>8,} | {self.seconds:>8.3f} | {per_file:>7.2f} |"


class NullSink:
    def write(self, data: bytes, /) -> int:
        return len(data)


def make_tree(root: Path, count: int, *, prefix: str = "f") -> None:
    """`count` small files (10-300 bytes), 100 per directory, two directory levels."""
    payload = bytes(range(256)) * 2
    for index in range(count):
        directory = root / f"d{index // (FILES_PER_DIR * 100):03}" / f"s{index // FILES_PER_DIR:05}"
        if index % FILES_PER_DIR == 0:
            directory.mkdir(parents=True, exist_ok=True)
        size = 10 + index * 7 % 290
        fd = os.open(directory / f"{prefix}{index:07}.txt", os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, payload[:size])
        os.close(fd)


def best(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def write_tar(root: Path, sink_path: str | None, *,
              xattrs: XattrPolicy = XattrPolicy.CAPABILITY) -> None:
    index = StatIndex.scan(str(root))
    if sink_path is None:
        writer = LayerTarWriter(NullSink(), root=str(root), xattrs=xattrs)
        write_diff(writer, whole_tree(index), index=index)
        writer.close()
        return
    with open(sink_path, "wb") as sink:
        writer = LayerTarWriter(sink, root=str(root), xattrs=xattrs)
        write_diff(writer, whole_tree(index), index=index)
        writer.close()


def python_tarfile(root: Path, sink_path: str) -> None:
    with tarfile.open(sink_path, "w", format=tarfile.PAX_FORMAT) as archive:
        archive.add(str(root), arcname=".")


def write_gzip(root: Path, sink_path: str) -> None:
    index = StatIndex.scan(str(root))
    with open(sink_path, "wb") as sink:
        compressor = LayerWriter(sink, compression=Compression.GZIP)
        writer = LayerTarWriter(compressor, root=str(root))
        write_diff(writer, whole_tree(index), index=index)
        writer.close()
        compressor.close()


def shell(command: str) -> Callable[[], object]:
    return lambda: subprocess.run(command, shell=True, check=True)


def measure(count: int, repeat: int, work: Path) -> list[Row]:
    root = work / f"tree-{count}"
    make_tree(root, count)
    out = str(work / "out.tar")
    total = count + count // FILES_PER_DIR + count // (FILES_PER_DIR * 100) + 1
    rows = [
        Row("find -printf (stat walk, reference)", total,
            best(repeat, shell(f"find {root} -printf '%s %m %i %T@\\n' > /dev/null"))),
        Row("StatIndex.scan", total, best(repeat, lambda: StatIndex.scan(str(root)))),
    ]
    before = StatIndex.scan(str(root))
    before_hashed = StatIndex.scan(str(root), hash_content=True)
    rows.append(Row("StatIndex.scan(hash_content=True)", total,
                    best(1, lambda: StatIndex.scan(str(root), hash_content=True))))
    make_tree(root / "added", count // 10, prefix="n")
    added = count // 10
    rows.append(Row(f"snapshot (redo) after adding {added:,} files", total + added,
                    best(repeat, lambda: snapshot(before, mode=SnapshotMode.REDO))))
    rows.append(Row(f"snapshot (full) after adding {added:,} files", total + added,
                    best(repeat, lambda: snapshot(before_hashed, mode=SnapshotMode.FULL))))
    total += added + added // FILES_PER_DIR + 2
    rows += [
        Row("our tar -> null sink (scan included)", total,
            best(repeat, lambda: write_tar(root, None))),
        Row("our tar -> file (scan included)", total, best(repeat, lambda: write_tar(root, out))),
        Row("our tar, no xattr reads -> file", total,
            best(repeat, lambda: write_tar(root, out, xattrs=XattrPolicy.NONE))),
        Row("GNU tar -cf file", total, best(repeat, shell(f"tar -cf {out} -C {root} ."))),
        Row("GNU tar --sort=name -cf file", total,
            best(repeat, shell(f"tar --sort=name -cf {out} -C {root} ."))),
        Row(f"our tar+gzip-4, {available_cpus()} threads -> file", total,
            best(repeat, lambda: write_gzip(root, out))),
        Row("GNU tar | gzip -4 -> file", total,
            best(repeat, shell(f"tar -cf - -C {root} . | gzip -4 > {out}"))),
    ]
    if count <= 20_000:
        rows.append(Row("python tarfile.add -> file (reference)", total,
                        best(1, lambda: python_tarfile(root, out))))
    shutil.rmtree(root)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to build the trees (default: tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-snapshot-") as work:
        print(f"| {'operation':<44} | {'entries':>8} | {'seconds':>8} | {'µs/ent':>7} |")
        print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
        for count in args.sizes:
            for row in measure(count, args.repeat, Path(work)):
                print(row.render(), flush=True)


if __name__ == "__main__":
    main()
