"""Eight `python -m core build` processes started together, sharing the layer cache and the
base layer cache directory; then the same eight again, all from the cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.concurrency.conftest import (
    Job,
    Pushed,
    cache_repo,
    check_base_cache,
    check_cache_round,
    check_layer_cache,
    check_round,
    make_jobs,
)
from tests.fixtures.images import BaseImages
from tests.fixtures.registry import RegistryServer

REPO = Path(__file__).resolve().parents[2]


def _command(job: Job, *, registry: RegistryServer, cache: str, base_cache: Path,
             work: Path) -> list[str]:
    command = [sys.executable, "-m", "core", "build", "--context", str(job.context),
               "--build-arg", f"ID={job.build_arg}", "--reproducible",
               "--run-isolation", "chroot", "--insecure-registry", registry.host,
               "--cache", "--cache-repo", cache, "--base-cache", str(base_cache),
               "--work-dir", str(work / f"w{job.number}"), "--log-format", "json"]
    for destination in job.destinations:
        command += ["--destination", destination]
    return command


def _parse(done: tuple[int, str, str]) -> Pushed:
    code, stdout, stderr = done
    assert code == 0, stderr
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    finished = records[-1]
    assert finished["type"] == "build_succeeded", stderr
    assert finished["warnings"] == [], finished["warnings"]
    assert stdout.strip() == finished["digest"]
    cached = [bool(r["cached"]) for r in records if r["type"] == "step_finished"]
    return Pushed(finished["digest"], finished["config_digest"], cached)


def _build_all(jobs: list[Job], **settings: object) -> dict[int, Pushed]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO),
           "HOME": str(settings["work"])}
    procs = [subprocess.Popen(_command(job, **settings),  # type: ignore[arg-type]
                              cwd=job.context, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for job in jobs]
    outcomes = {}
    try:
        for job, proc in zip(jobs, procs, strict=True):
            stdout, stderr = proc.communicate(timeout=300)
            outcomes[job.number] = (proc.returncode, stdout, stderr)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return {number: _parse(done) for number, done in outcomes.items()}


def test_eight_build_processes(tmp_path: Path, registry: RegistryServer,
                               base_images: BaseImages, cache_kind: str) -> None:
    settings = {"registry": registry, "cache": cache_repo(cache_kind, registry, tmp_path),
                "base_cache": tmp_path / "base-cache"}
    kind = f"p-{cache_kind}"
    first_jobs = make_jobs(tmp_path, registry, base_images, kind=kind, round_=1)
    first = _build_all(first_jobs, work=tmp_path / "r1", **settings)
    second_jobs = make_jobs(tmp_path, registry, base_images, kind=kind, round_=2)
    second = _build_all(second_jobs, work=tmp_path / "r2", **settings)
    check_round(registry, first_jobs, first, tmp_path, unpack=True)
    check_round(registry, second_jobs, second, tmp_path, unpack=False)
    check_cache_round(first, second)
    check_base_cache(tmp_path / "base-cache", registry, first_jobs[0])
    check_layer_cache(str(settings["cache"]), registry)
