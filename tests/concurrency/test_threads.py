"""Eight `run_build` calls at once in one process, sharing a registry client, the layer cache
and the base layer cache; then the same eight again, all from the cache."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.build.options import BuildOptions, CacheOptions, OutputOptions
from core.build.pipeline import run_build
from core.registry import RegistryClient
from tests.build.conftest import Recorder
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
from tests.fixtures.registry import RegistryServer, make_client


def _build_all(jobs: list[Job], *, client: RegistryClient,
               cache: CacheOptions) -> dict[int, Pushed]:
    start = threading.Barrier(len(jobs))

    def one(job: Job) -> Pushed:
        options = BuildOptions(
            context=str(job.context), build_args={"ID": job.build_arg}, reproducible=True,
            run_isolation="auto", cache=cache,  # work dirs of their own, in the temp dir
            output=OutputOptions(destinations=job.destinations))
        start.wait(timeout=60)
        result = run_build(options, events=Recorder(), registry=client)
        assert result.warnings == (), result.warnings
        return Pushed(result.digest, result.config_digest, [s.cached for s in result.steps])

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(one, jobs, timeout=300))
    return {job.number: pushed for job, pushed in zip(jobs, results, strict=True)}


def test_eight_builds_in_threads(tmp_path: Path, registry: RegistryServer,
                                 base_images: BaseImages, cache_kind: str) -> None:
    cache = CacheOptions(enabled=True, repo=cache_repo(cache_kind, registry, tmp_path),
                         base_dir=tmp_path / "base-cache")
    client = make_client(registry.host)
    try:
        first_jobs = make_jobs(tmp_path, registry, base_images, kind=f"t-{cache_kind}",
                               round_=1)
        first = _build_all(first_jobs, client=client, cache=cache)
        second_jobs = make_jobs(tmp_path, registry, base_images, kind=f"t-{cache_kind}",
                                round_=2)
        second = _build_all(second_jobs, client=client, cache=cache)
    finally:
        client.close()
    check_round(registry, first_jobs, first, tmp_path, unpack=True)
    check_round(registry, second_jobs, second, tmp_path, unpack=False)
    check_cache_round(first, second)
    check_base_cache(tmp_path / "base-cache", registry, first_jobs[0])
    check_layer_cache(str(cache.repo), registry)
