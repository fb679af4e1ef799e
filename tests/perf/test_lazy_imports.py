"""A rebuild whose steps all come from the layer cache imports only what it uses: not the RUN
sandboxes, the snapshot and tar writers, rootfs extraction, local output writers, archive or
bucket contexts, nor any cloud SDK (imports are most of a cached rebuild's time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.build.conftest import write_context
from tests.fixtures.images import BaseImages
from tests.fixtures.registry import RegistryServer

ROOT = Path(__file__).resolve().parents[2]

#: what only a step that executes, a local output or a bucket/archive context needs
NOT_ON_THE_CACHED_PATH = (
    "core.run", "core.snapshot", "core.layout.oci", "core.layout.docker_archive",
    "core.layout.blobs", "core.context.archive", "core.cloud.storage", "core.cloud.s3",
    "core.cloud.gcs", "core.build.run", "core.build.copy", "core.build.add",
    "core.build.sandbox", "core.build.workdir_step", "core.build.copy_plan", "boto3",
    "botocore", "google.cloud.storage", "google.auth", "google.api_core",
)

_SCRIPT = """
import json, sys
from core.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _cli_build(args: list[str]) -> tuple[int, list[str], str]:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["code"], report["modules"], done.stderr


def _loaded(modules: list[str]) -> list[str]:
    return [name for name in modules
            if any(name == top or name.startswith(top + ".") for top in NOT_ON_THE_CACHED_PATH)]


@pytest.mark.skipif(os.geteuid() != 0, reason="the first build's RUN needs chroot (root)")
def test_a_cached_cli_rebuild_imports_no_step_code(registry: RegistryServer,
                                                   base_images: BaseImages,
                                                   tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", {
        "Dockerfile": f"FROM {registry.host}/{base_images.docker_gzip}\nCOPY a /a\n"
                      "RUN cat /a > /b\nENV X=1\nCOPY d/ /d/\n",
        "a": "a\n", "d/e": "e\n"})
    args = ["build", "-c", str(context), "-d", f"{registry.host}/lazy/imports:1",
            "--insecure-registry", registry.host, "--cache",
            "--cache-repo", f"{registry.host}/lazy/imports-cache"]
    code, first, errors = _cli_build(args)
    assert code == 0, errors
    assert "core.run.probe" in first and "core.snapshot.tarwriter" in first  # steps ran
    code, second, errors = _cli_build(args)
    assert code == 0, errors
    assert errors.count("cached in") == 3, errors  # COPY, RUN, COPY
    assert _loaded(second) == [], errors
