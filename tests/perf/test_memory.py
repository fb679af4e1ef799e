"""Memory is bounded by buffers, not by layer size: a build that makes a 1 GiB layer (random
bytes, so compression cannot shrink it) keeps the build process's peak RSS under 150 MB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.images import BaseImages
from tests.fixtures.registry import RegistryServer

LIMIT_MB = 150

_SCRIPT = r"""
import json, sys
from core.build.options import BuildOptions, OutputOptions
from core.build.pipeline import run_build
from core.build.events import DiscardEvents
from core.registry import RegistryClient, anonymous

context, work, base, dest, registry = sys.argv[1:6]
open(context + "/Dockerfile", "w").write(
    f"FROM {base}\nRUN head -c 1073741824 /dev/urandom > /big && ls -l /big\n")
client = RegistryClient(insecure_registries=[registry], credentials=anonymous)
result = run_build(BuildOptions(context=context, work_dir=work,
                                output=OutputOptions(destinations=(dest,))),
                   events=DiscardEvents(), registry=client)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({"hwm_kb": int(status["VmHWM"].split()[0]),
                  "layer": max(layer.size for layer in result.layers)}))
"""


def peak_rss_of_build(context: Path, work: Path, base: str, dest: str, registry: str,
                      ) -> dict[str, int]:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, str(context), str(work), base, dest,
                           registry], capture_output=True, text=True, timeout=900,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow
def test_one_gib_layer_stays_under_the_memory_ceiling(tmp_path: Path, registry: RegistryServer,
                                                      base_images: BaseImages) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    measured = peak_rss_of_build(context, tmp_path / "work",
                                 f"{registry.host}/{base_images.docker_gzip}",
                                 f"{registry.host}/perf/big:1", registry.host)
    assert measured["layer"] > 1 << 30
    print(f"peak RSS {measured['hwm_kb'] // 1024} MB for a {measured['layer'] >> 20} MiB layer")
    assert measured["hwm_kb"] < LIMIT_MB * 1024, measured
