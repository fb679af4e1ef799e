"""SIGTERM (what Cloud Run, Fargate and CI runners send before SIGKILL) stops a CLI build
cleanly: its RUN step is killed, its work dir removed, nothing tagged, exit code 143."""

from __future__ import annotations

import secrets
import signal
from pathlib import Path

import pytest

from tests.build.conftest import write_context
from tests.fixtures.images import BaseImages, skopeo_inspect_raw
from tests.fixtures.registry import RegistryServer
from tests.resources.conftest import (
    entries,
    mounts_under,
    processes_with,
    start_cli,
    unique_tag,
    wait_for,
)


@pytest.mark.parametrize("work_dir", ["given", "temp"])
def test_sigterm_mid_run_cleans_up(tmp_path: Path, registry: RegistryServer,
                                   base_images: BaseImages, work_dir: str) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    work = tmp_path / "work" if work_dir == "given" else tmpdir
    token = f"sleep {600 + secrets.randbelow(10000)}"
    context = write_context(tmp_path / "ctx", {"Dockerfile": (
        f"FROM {base_images.host}/{base_images.docker_gzip}\n"
        f"RUN echo step-\"\"started && /bin/busybox {token}\n")})
    tag = unique_tag(registry.host, "terminated")
    args = ["--context", str(context), "-d", tag, "--insecure-registry", registry.host]
    if work_dir == "given":
        args += ["--work-dir", str(work)]
    build = start_cli(args, tmpdir=tmpdir)
    try:
        wait_for(lambda: "step-started" in build.stderr, timeout=120, what="the RUN step")
        build.process.send_signal(signal.SIGTERM)  # the CLI alone, as a platform does
        done = build.wait(timeout=60)
    finally:
        if build.process.poll() is None:
            build.kill()
    assert done.returncode == 143, done.stderr[-3000:]
    assert "terminated by SIGTERM" in done.stderr
    assert "Traceback" not in done.stderr
    assert processes_with(token) == []
    wait_for(lambda: entries(work) in ([], ["cache"]), timeout=30,
             what=f"a clean work root: {entries(work)}")
    assert mounts_under(work) == []
    with pytest.raises(AssertionError):
        skopeo_inspect_raw(registry.host, tag.split("/", 1)[1])
