"""Benchmark: whole builds (push included) next to `buildah build --layers`, in one run.

Run: `.venv/bin/python tests/bench/bench_build.py [--quick] [--only 1 2 3 4] [--no-buildah]`.
Not collected by pytest. It starts its own no-auth `docker-registry`, generates and pushes the
base images, then for each workload times our build (a fresh `python` process per build, so
that its peak RSS, `VmHWM`, is the build's) and buildah's (vfs storage, chroot isolation, a
fresh storage root per workload, `buildah push` included):
1. COPY of a 2,000-file application (a `tar://` context, unpacked into the work dir) onto a
   250 MB base of 8,000 files in 4 layers; also how much our `/tmp` grew at its peak (a tmpfs
   mounted for the build, as a function's memory-backed /tmp; a sampled walk without root);
2. one RUN creating 100,000 small files on busybox; also the RUN's own run time (read from
   /proc/uptime inside the RUN);
3. RUN steps touching a few files of the 250 MB base and adding a 64 MB file;
4. an unchanged 5-step Dockerfile built twice with `--cache` (registry cache repository).
`--quick` shrinks every size tenfold. Each workload prints PASS/FAIL per target, and a profile
of our build's steps says where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.image.config import ContainerConfig, History, ImageConfig
from core.image.digest import Hasher
from core.image.manifest import Descriptor, Manifest, descriptor_for
from core.image.mediatypes import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST
from core.image.reference import parse_reference
from core.registry import BlobSource, RegistryClient, anonymous
from tests.fixtures.registry import RegistryServer, run_registry

MB = 1 << 20
BUSYBOX = "/bin/busybox"
ROOT = Path(__file__).resolve().parents[2]

_BUILD_SCRIPT = r"""
import json, sys, time
started = time.monotonic()
from core.build.events import StepOutput, StepFinished
from core.build.options import BuildOptions, CacheOptions, OutputOptions
from core.build.pipeline import run_build
from core.registry import RegistryClient, anonymous

imported = time.monotonic() - started
spec = json.loads(sys.argv[1])
lines, steps = [], []
class Sink:
    def emit(self, event):
        if isinstance(event, StepOutput):
            lines.append(event.text)
        elif isinstance(event, StepFinished):
            steps.append([event.instruction, round(event.duration, 3), event.cached])
cache = CacheOptions(enabled=True, repo=spec["cache"]) if spec.get("cache") else CacheOptions()
client = RegistryClient(insecure_registries=[spec["registry"]], credentials=anonymous)
options = BuildOptions(context=spec["context"], cache=cache,
                       output=OutputOptions(destinations=(spec["dest"],)))
run_build(options, events=Sink(), registry=client)
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
own = __import__("resource").getrusage(__import__("resource").RUSAGE_SELF)
print(json.dumps({"hwm_kb": int(status["VmHWM"].split()[0]), "lines": lines, "steps": steps,
                  "inner": time.monotonic() - started, "imported": imported,
                  "cpu": own.ru_utime + own.ru_stime}))
"""


@dataclass
class Measured:
    """One build: wall seconds, and what our build reported."""

    seconds: float
    hwm_mb: float = 0.0
    run_seconds: float | None = None  # the RUN's own time (from /proc/uptime)
    steps: list[tuple[str, float, bool]] = field(default_factory=list)
    work_peak_mb: float | None = None
    cpu: float | None = None  # our process's own CPU seconds (RUN processes not included)
    imports: float | None = None  # seconds from interpreter start-up to the imports done


@dataclass
class Row:
    workload: str
    ours: Measured
    theirs: Measured | None
    checks: list[tuple[str, bool, str]]


# --- images --------------------------------------------------------------------------------


class LayerFile:
    """A gzip layer written to disk while its tar is hashed (diff_id)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._hasher = Hasher()
        self._gzip = _gzip_writer(path)
        self.tar = tarfile.open(  # type: ignore[call-overload]  # noqa: SIM115 - closed by `close`
            fileobj=self, mode="w|", format=tarfile.PAX_FORMAT)

    def write(self, data: bytes) -> int:
        self._hasher.update(data)
        self._gzip.write(data)
        return len(data)

    def add(self, name: str, data: bytes = b"", *, mode: int = 0o644, kind: bytes = b"0",
            link: str = "") -> None:
        info = tarfile.TarInfo(name)
        info.mode, info.mtime, info.type, info.linkname = mode, 1_700_000_000, kind, link
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        self.tar.addfile(info, io.BytesIO(data) if info.size else None)

    def close(self) -> tuple[BlobSource, str]:
        self.tar.close()
        self._gzip.close()
        return BlobSource.from_path(self.path), self._hasher.digest


def _gzip_writer(path: Path) -> io.BufferedWriter:
    import gzip

    return gzip.GzipFile(path, "wb", compresslevel=1, mtime=0)  # type: ignore[return-value]


def busybox_layer(path: Path) -> tuple[BlobSource, str]:
    layer = LayerFile(path)
    for directory in ("bin", "etc", "tmp", "root", "proc", "dev", "sys"):
        layer.add(directory, kind=tarfile.DIRTYPE, mode=0o1777 if directory == "tmp" else 0o755)
    layer.add("bin/busybox", Path(BUSYBOX).read_bytes(), mode=0o755)
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            layer.add(f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox")
    layer.add("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    layer.add("etc/group", b"root:x:0:\n")
    return layer.close()


def data_layer(path: Path, index: int, files: int, total: int) -> tuple[BlobSource, str]:
    """`files` files of random-ish content (half random, half text) totalling ~`total`."""
    rng = random.Random(index)
    layer = LayerFile(path)
    layer.add("data", kind=tarfile.DIRTYPE, mode=0o755)
    layer.add(f"data/l{index}", kind=tarfile.DIRTYPE, mode=0o755)
    text = b"the quick brown fox jumps over the lazy dog " * 4096
    for number in range(files):
        size = max(64, int(rng.expovariate(files / total)))
        half = size // 2
        data = rng.randbytes(half) + text[: size - half]
        if number % 100 == 0:
            layer.add(f"data/l{index}/d{number // 100:03}", kind=tarfile.DIRTYPE, mode=0o755)
        layer.add(f"data/l{index}/d{number // 100:03}/f{number:05}", data)
    return layer.close()


def push_image(client: RegistryClient, reference: str,
               layers: list[tuple[BlobSource, str]]) -> None:
    config = ImageConfig(architecture="amd64", os="linux",
                         config=ContainerConfig(env=("PATH=/bin",), cmd=("/bin/sh",)),
                         diff_ids=tuple(diff_id for _, diff_id in layers),
                         history=tuple(History(created_by="bench base") for _ in layers))
    config_bytes = config.to_json()
    manifest = Manifest(DOCKER_MANIFEST, descriptor_for(config_bytes, DOCKER_CONFIG),
                        tuple(Descriptor(DOCKER_LAYER, source.digest, source.size)
                              for source, _ in layers))
    client.push_image([parse_reference(reference)],
                      blobs=[*(source for source, _ in layers),
                             BlobSource.from_bytes(config_bytes)],
                      manifest=manifest.to_json(), media_type=DOCKER_MANIFEST)


def make_bases(server: RegistryServer, root: Path, scale: float) -> dict[str, str]:
    client = RegistryClient(insecure_registries=[server.host], credentials=anonymous)
    blobs = root / "blobs"
    blobs.mkdir()
    busybox = busybox_layer(blobs / "busybox.tgz")
    push_image(client, f"{server.host}/bench/busybox:1", [busybox])
    files, total = int(8000 * scale), int(250 * MB * scale)
    data = [data_layer(blobs / f"data{i}.tgz", i, files // 4, total // 4) for i in range(4)]
    push_image(client, f"{server.host}/bench/base250:1", [busybox, *data])
    client.close()
    shutil.rmtree(blobs)
    return {"busybox": f"{server.host}/bench/busybox:1",
            "base250": f"{server.host}/bench/base250:1"}


# --- running builds ------------------------------------------------------------------------


def ours(context: str, tmp: Path, dest: str, registry: str, *, cache: str | None = None,
         watch: bool = False) -> Measured:
    """Our build in a fresh process whose temp dir (its work dir's parent) is `tmp`."""
    spec = {"context": context, "dest": dest, "registry": registry, "cache": cache}
    _wait_removed(tmp)
    peak = _Watcher(tmp) if watch else None
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _BUILD_SCRIPT, json.dumps(spec)],
                          capture_output=True, text=True, cwd=ROOT, check=False,
                          env={**os.environ, "TMPDIR": str(tmp)})
    seconds = time.monotonic() - started
    if peak is not None:
        peak.stop()
    if proc.returncode != 0:
        raise SystemExit(f"our build failed:\n{proc.stderr[-4000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    steps = [(str(text), float(took), bool(cached)) for text, took, cached
             in report["steps"]]
    return Measured(seconds, report["hwm_kb"] / 1024, _run_seconds(report["lines"]), steps,
                    peak.peak / MB if peak is not None else None, report.get("cpu"),
                    report.get("imported"))


def buildah(context: Path, dockerfile: Path, storage: Path, dest: str, *,
            build_args: tuple[str, ...] = ()) -> Measured:
    base = ["buildah", "--storage-driver", "vfs", "--root", str(storage / "root"),
            "--runroot", str(storage / "run")]
    started = time.monotonic()
    built = subprocess.run([*base, "build", "--layers", "--isolation", "chroot",
                            "--tls-verify=false", "-f", str(dockerfile), "-t", "localhost/b:1",
                            *build_args, str(context)], capture_output=True, text=True,
                           check=False)
    if built.returncode != 0:
        raise SystemExit(f"buildah build failed:\n{built.stderr[-4000:]}")
    subprocess.run([*base, "push", "--quiet", "--tls-verify=false", "localhost/b:1",
                    f"docker://{dest}"], check=True, capture_output=True)
    return Measured(time.monotonic() - started, run_seconds=_run_seconds(
        built.stdout.splitlines()))


def _run_seconds(lines: list[str]) -> float | None:
    for line in lines:
        if line.startswith("runtime "):
            start, end = line.split()[1:3]
            return float(end) - float(start)
    return None


def _wait_removed(tmp: Path) -> None:
    """Start on a quiet disk: wait for an earlier build's detached removal to end."""
    deadline = time.monotonic() + 120
    while any(p.name.endswith(".removing") for p in tmp.iterdir()) and \
            time.monotonic() < deadline:
        time.sleep(0.2)


class _Watcher:
    """The peak size of what a build writes under `path`: the used space of a tmpfs mounted
    there (one statvfs per sample), or, when mounting is not possible, a walk every 100 ms."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.peak = 0
        self._base = _used(path) if _is_mount(path) else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        period = 0.01 if self._base is not None else 0.1
        while not self._stop.wait(period):
            size = _used(self.path) - self._base if self._base is not None else _du(self.path)
            self.peak = max(self.peak, size)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _is_mount(path: Path) -> bool:
    return os.path.ismount(path)


def _used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def tmpfs(path: Path) -> bool:
    """Mount a tmpfs at `path` (root only), as a function's memory-backed /tmp."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4g", "tmpfs", str(path)],
                          capture_output=True, check=False)
    return done.returncode == 0


def _du(path: Path) -> int:
    total = 0
    for directory, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total


# --- workloads -----------------------------------------------------------------------------


@dataclass
class Bench:
    root: Path
    server: RegistryServer
    bases: dict[str, str]
    scale: float
    with_buildah: bool

    def context(self, name: str, files: dict[str, bytes]) -> Path:
        directory = self.root / name
        for relative, data in files.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return directory

    @property
    def tmp(self) -> Path:
        """Our builds' temp dir (on the same disk as buildah's storage)."""
        path = self.root / "tmp"
        path.mkdir(exist_ok=True)
        return path

    def dest(self, who: str, name: str) -> str:
        return f"{self.server.host}/{who}/{name}:1"

    def theirs(self, context: Path, name: str) -> Measured | None:
        if not self.with_buildah:
            return None
        return buildah(context, context / "Dockerfile", self.root / f"buildah-{name}",
                       self.dest("buildah", name))


def workload_copy(bench: Bench) -> Row:
    rng = random.Random(7)
    count = 2000 if bench.scale >= 1 else 200
    files = {f"app/m{i // 100:02}/file{i:04}.py": rng.randbytes(rng.randint(200, 12000))
             for i in range(count)}
    files["Dockerfile"] = f"FROM {bench.bases['base250']}\nCOPY app /app\n".encode()
    context = bench.context("w1", files)
    archive = bench.root / "w1.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(context, arcname=".")
    context_mb = archive.stat().st_size / MB
    tmp = bench.root / "w1-tmp"
    mounted = tmpfs(tmp)
    try:
        mine = ours(f"tar://{archive}", tmp, bench.dest("ours", "w1"), bench.server.host,
                    watch=True)
    finally:
        if mounted:
            _wait_removed(tmp)
            subprocess.run(["umount", str(tmp)], check=False)
    theirs = bench.theirs(context, "w1")
    growth = mine.work_peak_mb or 0.0
    checks = [_ratio_check(mine, theirs, 0.15),
              ("/tmp growth < context + 10 MB", growth < context_mb + 10,
               f"{growth:.1f} MB (context {context_mb:.1f} MB)"), _rss_check(mine)]
    return Row(f"1. COPY {count:,} files onto a {250 * bench.scale:.0f} MB base", mine,
               theirs, checks)


def workload_many_files(bench: Bench) -> Row:
    dirs = 100 if bench.scale >= 1 else 10
    script = ("read t0 x < /proc/uptime; mkdir /data; for d in $(seq " + str(dirs) + "); do "
              "mkdir /data/$d; for f in $(seq 1000); do echo \"$d $f\" > /data/$d/$f; done; "
              "done; read t1 x < /proc/uptime; echo \"runtime $t0 $t1\"")
    dockerfile = f"FROM {bench.bases['busybox']}\nRUN {script}\n"
    context = bench.context("w2", {"Dockerfile": dockerfile.encode()})
    mine = ours(str(context), bench.tmp, bench.dest("ours", "w2"), bench.server.host)
    theirs = bench.theirs(context, "w2")
    overhead = mine.seconds - (mine.run_seconds or 0.0)
    theirs_run = f", buildah's RUN {theirs.run_seconds:.2f} s" if theirs and \
        theirs.run_seconds else ""
    checks = [("total within 3 s of the RUN's own time", overhead < 3.0,
               f"RUN {mine.run_seconds or 0:.2f} s, overhead {overhead:.2f} s{theirs_run}"),
              _ratio_check(mine, theirs, 0.15), _rss_check(mine)]
    return Row(f"2. one RUN creating {dirs * 1000:,} files", mine, theirs, checks)


def workload_touch(bench: Bench) -> Row:
    size = int(64 * MB * bench.scale)
    dockerfile = (f"FROM {bench.bases['base250']}\n"
                  "RUN echo tweak >> /data/l0/d000/f00001 && touch /data/l1/d000/f00002 "
                  "&& rm /data/l2/d000/f00003\n"
                  f"RUN head -c {size} /dev/urandom > /blob\n"
                  "RUN echo done > /done\n")
    context = bench.context("w3", {"Dockerfile": dockerfile.encode()})
    mine = ours(str(context), bench.tmp, bench.dest("ours", "w3"), bench.server.host)
    theirs = bench.theirs(context, "w3")
    return Row(f"3. RUNs on the {250 * bench.scale:.0f} MB base + {size // MB} MB file", mine,
               theirs, [_ratio_check(mine, theirs, 0.5), _rss_check(mine)])


def workload_cache(bench: Bench) -> Row:
    generated = int(10000 * bench.scale)
    size = int(64 * MB * bench.scale)
    rng = random.Random(3)
    files = {f"app/f{i:03}.txt": rng.randbytes(2000) for i in range(100)}
    files["conf/app.ini"] = b"[app]\n"
    files["Dockerfile"] = (
        f"FROM {bench.bases['busybox']}\nCOPY app /app\n"
        f"RUN for i in $(seq {generated}); do echo $i > /app/gen-$i; done\n"
        f"RUN head -c {size} /dev/urandom > /blob\nCOPY conf/ /etc/app/\n"
        "RUN ls /app | wc -l > /count\n").encode()
    context = bench.context("w4", files)
    cache = f"{bench.server.host}/ours/w4-cache"
    first = ours(str(context), bench.tmp, bench.dest("ours", "w4"), bench.server.host,
                 cache=cache)
    second = ours(str(context), bench.tmp, bench.dest("ours", "w4b"), bench.server.host,
                  cache=cache)
    hits = sum(1 for step in second.steps if step[2])
    checks = [("second build >= 10x faster", first.seconds >= 10 * second.seconds,
               f"{first.seconds:.2f} s -> {second.seconds:.2f} s "
               f"({first.seconds / second.seconds:.1f}x, {hits} steps cached)"),
              _rss_check(first), _rss_check(second)]
    return Row("4. 5-step Dockerfile, second build with --cache", second, first, checks)


def _ratio_check(mine: Measured, theirs: Measured | None, limit: float) -> tuple[str, bool, str]:
    if theirs is None:
        return (f"< {limit}x buildah", True, "buildah not run")
    ratio = mine.seconds / theirs.seconds
    return (f"< {limit}x buildah", ratio < limit,
            f"{mine.seconds:.2f} s / {theirs.seconds:.2f} s = {ratio:.3f}x")


def _rss_check(mine: Measured) -> tuple[str, bool, str]:
    return ("peak RSS < 150 MB", mine.hwm_mb < 150, f"{mine.hwm_mb:.0f} MB")


# --- report --------------------------------------------------------------------------------


def render(rows: list[Row]) -> Iterator[str]:
    yield f"| {'workload':<48} | {'ours s':>7} | {'ref s':>7} | {'ratio':>6} | {'RSS MB':>6} |"
    yield f"|{'-' * 50}|{'-' * 9}|{'-' * 9}|{'-' * 8}|{'-' * 8}|"
    for row in rows:
        ref = f"{row.theirs.seconds:7.2f}" if row.theirs else f"{'-':>7}"
        ratio = f"{row.ours.seconds / row.theirs.seconds:6.3f}" if row.theirs else f"{'-':>6}"
        yield (f"| {row.workload:<48} | {row.ours.seconds:7.2f} | {ref} | {ratio} | "
               f"{row.ours.hwm_mb:6.0f} |")
    yield ""
    yield "ref = buildah build --layers (vfs, chroot) + push; for 4: our first build"
    for row in rows:
        yield f"{row.workload}"
        for name, ok, detail in row.checks:
            yield f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}"
        profile = ", ".join(f"{step[0][:28]} {step[1]:.2f}s{' (cached)' if step[2] else ''}"
                            for step in row.ours.steps)
        outside = row.ours.seconds - sum(step[1] for step in row.ours.steps)
        yield f"  ours by step: {profile}; outside the steps (interpreter start, imports, " \
              f"context, push) {outside:.2f}s"
        if row.ours.cpu is not None:  # CPU is what to compare when the machine is busy
            yield f"  ours: own CPU {row.ours.cpu:.2f}s (RUN processes excluded); imports " \
                  f"done {row.ours.imports or 0:.2f}s after start"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every size / 10")
    parser.add_argument("--only", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--no-buildah", action="store_true")
    parser.add_argument("--dir", default=None, help="scratch directory (default: tmp)")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    workloads = {1: workload_copy, 2: workload_many_files, 3: workload_touch,
                 4: workload_cache}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-build-") as scratch:
        root = Path(scratch)
        with run_registry(root / "registry") as server:
            bench = Bench(root, server, make_bases(server, root, scale), scale,
                          not args.no_buildah)
            rows = []
            for number in args.only:
                rows.append(workloads[number](bench))
                print(f"workload {number} done", file=sys.stderr, flush=True)
            for line in render(rows):
                print(line)


if __name__ == "__main__":
    main()
