"""Memory is bounded by buffers: a CLI build of an image holding a 300 MiB file (random
bytes, so compression cannot shrink it) succeeds with its address space limited to 200 MiB,
and a limit too small for the build fails cleanly (a message, exit code 1, work dir removed).

The ceiling is RLIMIT_AS, set in the build process before it starts (inherited by its RUN
sandboxes). An address-space limit is stricter than the memory cgroup of a function: it counts
mapped-but-untouched memory too (thread stacks, glibc's per-thread malloc arenas, which is why
`MALLOC_ARENA_MAX=2` is set), so fitting under it means fitting under a cgroup limit of the
same size. The build process's peak resident size (its VmHWM, sampled) is checked too.
"""

from __future__ import annotations

import json
import os
import resource
from collections.abc import Callable
from pathlib import Path

from tests.build.conftest import write_context
from tests.fixtures.images import BaseImages, skopeo_inspect_raw
from tests.fixtures.registry import RegistryServer
from tests.resources.conftest import (
    entries,
    run_cli,
    start_cli,
    unique_tag,
    wait_for,
)

MIB = 1 << 20
BIG = 300 * MIB
LIMIT = 200 * MIB
TOO_SMALL = 64 * MIB  # the interpreter starts; the build's threads get no stack
ENV = {"MALLOC_ARENA_MAX": "2"}


def address_space(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def big_context(root: Path, dockerfile: str) -> Path:
    context = write_context(root, {"Dockerfile": dockerfile})
    with open(context / "big", "wb") as out:
        for _ in range(BIG // (4 * MIB)):
            out.write(os.urandom(4 * MIB))
    return context


def test_300_mib_file_builds_in_200_mib(tmp_path: Path, registry: RegistryServer,
                                        base_images: BaseImages) -> None:
    base = f"{base_images.host}/{base_images.docker_gzip}"
    context = big_context(tmp_path / "ctx", f"FROM {base}\nCOPY big /big\n"
                                            "RUN /bin/busybox wc -c /big > /size\n")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    tag = unique_tag(registry.host, "big")
    build = start_cli(["--context", str(context), "-d", tag, "--insecure-registry",
                       registry.host], tmpdir=tmpdir, env=ENV, preexec=address_space(LIMIT))
    done, peak = build.wait_with_peak()
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"peak RSS {peak // MIB} MiB for a {BIG // MIB} MiB file under a "
          f"{LIMIT // MIB} MiB address-space limit")
    assert peak < LIMIT
    manifest = json.loads(skopeo_inspect_raw(registry.host, tag.split("/", 1)[1]))
    assert max(layer["size"] for layer in manifest["layers"]) > BIG
    wait_for(lambda: entries(tmpdir) == [], timeout=30, what="the work dir removed")


def test_too_little_memory_fails_cleanly(tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", {"Dockerfile": "FROM scratch\nCOPY a /a\n",
                                               "a": os.urandom(8 * MIB)})
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    done = run_cli(["--context", str(context), "--no-push"], tmpdir=tmpdir, env=ENV,
                   preexec=address_space(TOO_SMALL))
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "error: out of memory" in done.stderr
    wait_for(lambda: entries(tmpdir) == [], timeout=30, what="the work dir removed")
