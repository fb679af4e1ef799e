"""A short atheris run of `fuzz_extract.py` in CI; longer on demand.

By default 600 inputs (at most eight seconds of fuzzing) from a seed corpus made of the hostile
corpus. For a
long run set `BUCKETBUILD_FUZZ_SECONDS` (e.g. 3600) and run this test with `-m slow`, or call
the target directly (see its docstring). Skipped when atheris is not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.guard import remove_tree

pytest.importorskip("atheris")

TARGET = Path(__file__).with_name("fuzz_extract.py")
ROOT = Path(__file__).resolve().parents[2]


def _fuzz(tmp_path: Path, *flags: str, timeout: float) -> None:
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, str(TARGET), "--seed-corpus", str(corpus)], check=True,
                   cwd=ROOT, timeout=120)
    area = tmp_path / "area"
    area.mkdir()
    proc = subprocess.run(
        [sys.executable, str(TARGET), *flags, f"-artifact_prefix={tmp_path}/",
         "-rss_limit_mb=4096", str(corpus)],
        cwd=tmp_path, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "BUCKETBUILD_FUZZ_AREA": str(area)})
    remove_tree(area)
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "oom-",
                                                                               "timeout-")))
    tail = "\n".join(proc.stderr.splitlines()[-40:])
    assert proc.returncode == 0 and not crashes, f"fuzzer found {crashes}:\n{tail}"


def test_fuzz_extract_briefly(tmp_path: Path) -> None:
    _fuzz(tmp_path, "-runs=600", "-max_total_time=8", timeout=120)


@pytest.mark.slow
def test_fuzz_extract_long(tmp_path: Path) -> None:
    seconds = int(os.environ.get("BUCKETBUILD_FUZZ_SECONDS", "300"))
    _fuzz(tmp_path, f"-max_total_time={seconds}", timeout=seconds + 300)
