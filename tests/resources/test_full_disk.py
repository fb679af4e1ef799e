"""A full disk: a 48 MiB tmpfs is the work root (TMPDIR) of real CLI builds that overflow it at
different points. Each fails with exit code 1 and a message naming what ran out (never a
traceback), the tmpfs is empty afterwards, nothing half-written is left at the output paths
and nothing is tagged; a small build on the same tmpfs then succeeds."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from core.image.reference import parse_reference
from tests.build.conftest import write_context
from tests.fixtures.images import BaseImages, compose_image, push_built, skopeo_inspect_raw
from tests.fixtures.registry import RegistryServer, make_client
from tests.resources.conftest import (
    CliRun,
    entries,
    mounts_under,
    run_cli,
    unique_tag,
    wait_for,
)

DISK_MB = 48


def check_failed_cleanly(done: CliRun, disk: Path, *, says: str) -> None:
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert says in done.stderr, done.stderr[-3000:]
    assert done.stdout == ""  # no digest: the build did not finish
    wait_for(lambda: entries(disk) == [], timeout=30, what=f"an empty {disk}: {entries(disk)}")
    assert mounts_under(disk) == [disk.as_posix()]  # the tmpfs itself, nothing on it


def not_tagged(registry: RegistryServer, image: str) -> bool:
    try:
        skopeo_inspect_raw(registry.host, image.split("/", 1)[1])
    except AssertionError:
        return True
    return False


def small_build_succeeds(tmp_path: Path, disk: Path, base: BaseImages,
                         registry: RegistryServer) -> None:
    context = write_context(tmp_path / "small", {
        "Dockerfile": f"FROM {base.host}/{base.docker_gzip}\nCOPY a /a\nRUN cat /a > /b\n",
        "a": "small\n"})
    tag = unique_tag(registry.host, "small")
    done = run_cli(["--context", str(context), "-d", tag, "--insecure-registry", registry.host],
                   tmpdir=disk)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().startswith("sha256:")
    assert not not_tagged(registry, tag)
    wait_for(lambda: entries(disk) == [], timeout=30, what=f"an empty {disk}")


@pytest.fixture()
def disk(small_disk: Callable[[int], Path]) -> Path:
    return small_disk(DISK_MB)


def test_context_bigger_than_the_disk(tmp_path: Path, disk: Path, registry: RegistryServer,
                                      base_images: BaseImages) -> None:
    archive = tmp_path / "context.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY . /\n"),
                           ("big", os.urandom(64 << 20))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tag = unique_tag(registry.host, "context")
    done = run_cli(["--context", f"tar://{archive}", "-d", tag,
                    "--insecure-registry", registry.host], tmpdir=disk)
    check_failed_cleanly(done, disk, says="unpacking the context: ")
    assert not_tagged(registry, tag)
    small_build_succeeds(tmp_path, disk, base_images, registry)


def test_base_extraction_for_run_overflows(tmp_path: Path, disk: Path,
                                           registry: RegistryServer,
                                           base_images: BaseImages) -> None:
    base = unique_tag(registry.host, "zeros")  # 64 MiB of zeros: a few KiB compressed
    with make_client(registry.host) as client:
        push_built(client, [parse_reference(base)], compose_image([{"z": bytes(64 << 20)}]))
    context = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM {base}\nRUN true\n"})
    tag = unique_tag(registry.host, "extract")
    done = run_cli(["--context", str(context), "-d", tag, "--insecure-registry", registry.host],
                   tmpdir=disk)
    check_failed_cleanly(done, disk, says="step 2 (RUN true)")
    assert not_tagged(registry, tag)
    small_build_succeeds(tmp_path, disk, base_images, registry)


def test_run_writing_too_much(tmp_path: Path, disk: Path, registry: RegistryServer,
                              base_images: BaseImages) -> None:
    dockerfile = (f"FROM {base_images.host}/{base_images.docker_gzip}\n"
                  "RUN /bin/busybox dd if=/dev/zero of=/big bs=1M count=100\n")
    context = write_context(tmp_path / "ctx", {"Dockerfile": dockerfile})
    tag = unique_tag(registry.host, "run")
    done = run_cli(["--context", str(context), "-d", tag, "--insecure-registry", registry.host],
                   tmpdir=disk)
    check_failed_cleanly(done, disk, says="No space left on device")
    assert "step 2 (RUN" in done.stderr or "dd" in done.stderr
    assert not_tagged(registry, tag)
    small_build_succeeds(tmp_path, disk, base_images, registry)


@pytest.mark.parametrize(("output", "mib"), [("tar", 30), ("oci", 30), ("tar", 16), ("oci", 16)])
def test_layer_spool_and_local_output_overflow(tmp_path: Path, disk: Path,
                                               registry: RegistryServer,
                                               base_images: BaseImages, output: str,
                                               mib: int) -> None:
    # random bytes, so that compression cannot shrink them: 30 MiB fit the disk once (the
    # RUN's tree), not twice (its layer, spooled for the local output); 16 MiB fit twice, not
    # three times (the local output, written to the same disk)
    dockerfile = (f"FROM {base_images.host}/{base_images.docker_gzip}\n"
                  f"RUN /bin/busybox dd if=/dev/urandom of=/big bs=1M count={mib}\n")
    context = write_context(tmp_path / "ctx", {"Dockerfile": dockerfile})
    tag = unique_tag(registry.host, "spool")
    target = disk / "out"
    flag = ["--tar-path", str(target)] if output == "tar" else ["--oci-layout-path", str(target)]
    done = run_cli(["--context", str(context), "-d", tag, "--insecure-registry", registry.host,
                    *flag], tmpdir=disk)
    check_failed_cleanly(done, disk, says="space")
    assert not target.exists()
    assert not_tagged(registry, tag)
    small_build_succeeds(tmp_path, disk, base_images, registry)
