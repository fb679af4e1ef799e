"""A killed build leaves nothing that breaks the next one.

A CLI build is SIGKILLed with its process group in the middle of a RUN (a `sleep`) and in the
middle of its push (the registry proxy holds the manifest PUT); then: no process of the build
lives on (the RUN's sandbox has a session of its own), nothing is mounted under the work dir,
nothing is tagged, and the next build with the same work dir, base layer cache, layer cache
and destination succeeds and pushes a correct image (checked with skopeo and umoci).
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest

from tests.build.conftest import write_context
from tests.fixtures.images import BaseImages, skopeo_inspect_raw, skopeo_unpack
from tests.fixtures.proxy import Fault, fault_proxy
from tests.fixtures.registry import RegistryServer
from tests.resources.conftest import (
    entries,
    mounts_under,
    processes_under,
    processes_with,
    run_cli,
    start_cli,
    unique_tag,
    wait_for,
)


def dockerfile(base: str, run: str) -> str:
    return f"FROM {base}\nCOPY a /a\nRUN {run}\n"


def assert_nothing_lives_on(work: Path, token: str) -> None:
    """No process of the build is left (the RUN's, found by a token in its command line, or
    any with its root or working directory in the work dir), nothing is mounted there."""
    wait_for(lambda: not processes_with(token) and not processes_under(work), timeout=10,
             what=f"no process of the build: {processes_with(token)} {processes_under(work)}")
    assert mounts_under(work) == []


def check_next_build(tmp_path: Path, args: list[str], *, tag: str, host: str,
                     tmpdir: Path) -> None:
    done = run_cli(args, tmpdir=tmpdir)
    assert done.returncode == 0, done.stderr[-3000:]
    digest = done.stdout.strip()
    manifest = skopeo_inspect_raw(host, tag.split("/", 1)[1])
    assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
    rootfs = skopeo_unpack(host, tag.split("/", 1)[1], tmp_path / "unpacked")
    assert (rootfs / "a").read_text() == "payload\n"
    assert (rootfs / "made").read_text() == "made by RUN\n"


@pytest.mark.parametrize("work_dir", ["given", "temp"])
def test_killed_mid_run(tmp_path: Path, registry: RegistryServer, base_images: BaseImages,
                        work_dir: str) -> None:
    base = f"{base_images.host}/{base_images.docker_gzip}"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    work = tmp_path / "work" if work_dir == "given" else tmpdir
    tag = unique_tag(registry.host, "killed")
    common = ["-d", tag, "--insecure-registry", registry.host, "--cache",
              "--cache-repo", f"oci:{tmp_path / 'layer-cache'}"]
    if work_dir == "given":
        common += ["--work-dir", str(work)]
    env = {"BUCKETBUILD_BASE_CACHE": str(tmp_path / "base-cache")}
    token = f"{600 + secrets.randbelow(10000)}"  # the sleep's length: found by its cmdline
    slow = write_context(tmp_path / "slow", {
        "Dockerfile": dockerfile(base, "echo made by RUN > /made && echo step-\"\"started && "
                                       f"/bin/busybox sleep {token}"),
        "a": "payload\n"})
    build = start_cli(["--context", str(slow), *common], tmpdir=tmpdir, env=env)
    try:
        wait_for(lambda: "step-started" in build.stderr, timeout=120, what="the RUN step")
        assert processes_with(f"sleep {token}")
    finally:
        status = build.kill()
    assert status == -9
    assert_nothing_lives_on(work, f"sleep {token}")
    quick = write_context(tmp_path / "quick", {
        "Dockerfile": dockerfile(base, "echo made by RUN > /made"), "a": "payload\n"})
    check_next_build(tmp_path, ["--context", str(quick), *common], tag=tag,
                     host=registry.host, tmpdir=tmpdir)
    wait_for(lambda: entries(work) in ([], ["cache"]), timeout=30,
             what=f"a clean work root: {entries(work)}")


def test_killed_mid_push(tmp_path: Path, registry: RegistryServer,
                         base_images: BaseImages) -> None:
    base = f"{base_images.host}/{base_images.docker_gzip}"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    work = tmp_path / "work"
    context = write_context(tmp_path / "ctx", {
        "Dockerfile": dockerfile(base, "echo made by RUN > /made"), "a": "payload\n"})
    with fault_proxy(registry.host) as proxy:
        tag = unique_tag(proxy.host, "pushed")
        args = ["--context", str(context), "-d", tag, "--insecure-registry", proxy.host,
                "--insecure-registry", registry.host, "--work-dir", str(work)]
        hold = proxy.add(Fault(method="PUT", path_contains="/manifests/", delay=30, drop=True))
        build = start_cli(args, tmpdir=tmpdir)
        try:
            wait_for(lambda: hold.hits > 0, timeout=120, what="the manifest PUT")
        finally:
            status = build.kill()
        assert status == -9
        assert_nothing_lives_on(work, str(work))
        with pytest.raises(AssertionError):  # not tagged
            skopeo_inspect_raw(registry.host, tag.split("/", 1)[1])
        # checked at the registry itself: the proxy keeps one of skopeo's Accept headers
        check_next_build(tmp_path, args, tag=tag, host=registry.host, tmpdir=tmpdir)
    assert entries(work) == ["cache"]
