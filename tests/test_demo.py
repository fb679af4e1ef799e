"""The README's main-job command runs end to end (upload -> Lambda handler -> image -> event)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_demo_builds_the_uploaded_example_and_reports_it() -> None:
    done = subprocess.run([sys.executable, str(REPO / "infra" / "dev" / "demo.py")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    reference = lines[-1]
    assert re.fullmatch(r"127\.0\.0\.1:\d+/demo/hello:latest@sha256:[0-9a-f]{64}", reference)
    assert lines[-2] == "hello from bucketbuild"
    event = json.loads("\n".join(lines[:-2]))
    assert event["type"] == "io.bucketbuild.build.succeeded"
    assert reference.endswith(event["data"]["digest"])
    assert "event io.bucketbuild.build.started" in done.stderr
