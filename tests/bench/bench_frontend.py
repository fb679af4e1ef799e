"""Benchmark of the Dockerfile front end: parse, type, plan and expand a 10,000-instruction file.

Run with `.venv/bin/python tests/bench/bench_frontend.py [--runs N] [--instructions N]
[--profile]`. The generated multi-stage Dockerfile mixes every instruction, ARG/ENV expansion,
here-documents, line continuations and cross-stage copies. Prints best and median times per
phase, as CPU time of this process (`time.process_time`, steadier than the wall clock on a
shared machine) and, for the whole front end, wall-clock time too, with the part spent in
garbage collection; then PASS/FAIL of the median CPU time against the 0.5 s target. The load
average is printed as well: on a busy machine every number grows. `--profile` adds the
functions where the time goes (cProfile). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.dockerfile.ast import ParseResult
from core.dockerfile.convert import convert_nodes
from core.dockerfile.parser import parse_dockerfile
from core.image.config import ContainerConfig, ImageConfig
from core.image.platform import parse_platform
from core.plan import BuildPlan, StageBase, StageProgram, expand_planned, plan_build

TARGET_SECONDS = 0.5
PLATFORM = parse_platform("linux/amd64")
BUILD_ARGS = {"VERSION": "2.1.0", "HTTP_PROXY": "http://proxy:3128"}
BASE_CONFIG = ImageConfig(architecture="amd64", os="linux", config=ContainerConfig(
    env=("PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"), working_dir="/srv",
    on_build=("ENV TRIGGERED=1", "ARG VERSION")))

# One instruction each; {i} is a running number, {d} its last digit.
_TEMPLATES: tuple[str, ...] = (
    "ENV APP_{i}=/opt/app-{i} PATH_{i}=${{VERSION}}/bin:$PATH",
    "ENV LEGACY_{i} value with ${{APP_{i}}} spaces",
    "ARG OPT_{i}=${{VERSION:-0}}-{i}",
    "RUN set -eux; \\\n    echo \"$OPT_{i}\" > /tmp/{i} && \\\n    make -C /src target-{i}",
    "RUN --mount=type=cache,target=/root/.cache/{i},id=c$OPT_{i} --network=none \\\n"
    "    pip install p{i}",
    "COPY --chown=${{VERSION}}:0 --chmod=644 src/{i}/ ${{APP_{i}}}/",
    "ADD --checksum=sha256:${{VERSION}} https://example.com/{i}.tgz /opt/",
    "COPY <<EOF /etc/conf-{i}.ini\n[main]\nversion=${{VERSION}}\nopt=$OPT_{i}\nEOF",
    "RUN <<'EOT' bash\nset -e\necho $OPT_{i}\nEOT",
    "WORKDIR sub-{i}",
    "LABEL org.example.v{i}=\"${{VERSION}}\" \\\n      org.example.n{i}=n-{i}",
    "EXPOSE 80{d} ${{PORT_{i}:-90{d}}}/udp",
    "USER ${{USER_{i}:-app}}:app",
    "VOLUME [\"/data/{i}\", \"/cache/{i}\"]",
    "STOPSIGNAL SIGTERM",
    "HEALTHCHECK --interval=30s --retries=3 CMD curl -f http://localhost/{i} || exit 1",
    "SHELL [\"/bin/sh\", \"-c\"]",
    "ONBUILD RUN echo child {i}",
    "MAINTAINER team-{i}@example.com",
    "ENTRYPOINT [\"/usr/bin/app-{i}\"]",
    "CMD [\"--serve\", \"{i}\"]",
)
_STAGE_BODY_REPEAT = 4


def generate(instructions: int) -> tuple[str, int]:
    """A multi-stage Dockerfile of about `instructions` instructions, and its exact count."""
    lines = ["# syntax=docker/dockerfile:1", "# escape=\\", "ARG VERSION=1.0",
             "ARG BASE=debian:12-slim", "ARG FINAL_BASE=${BASE}"]
    count = 3
    stage = 0
    while count < instructions:
        lines.extend(_stage_lines(stage))
        count += 2 + len(_TEMPLATES) * _STAGE_BODY_REPEAT + (1 if stage else 0)
        stage += 1
    lines.append("FROM $FINAL_BASE AS final")
    lines.extend(f"COPY --from=s{index} /out/{index} /in/{index}" for index in range(stage))
    return "\n".join(lines) + "\n", count + 1 + stage


def _stage_lines(stage: int) -> list[str]:
    base = "$BASE" if stage % 3 == 0 else f"s{stage - 1}"
    lines = [f"FROM {base} AS s{stage}", "ARG VERSION"]
    if stage:
        lines.append(f"COPY --from={stage - 1} /out /prev")
    for repeat in range(_STAGE_BODY_REPEAT):
        for offset, template in enumerate(_TEMPLATES):
            number = (stage * _STAGE_BODY_REPEAT + repeat) * len(_TEMPLATES) + offset
            lines.append(template.format(i=number, d=number % 10))
    return lines


def expand_all(plan: BuildPlan) -> list[StageProgram]:
    """Expand every planned stage in build order, as the builder will."""
    programs: dict[int, StageProgram] = {}
    for index in plan.order:
        stage = plan.stage(index)
        if isinstance(stage.base, StageBase):
            parent = programs[stage.base.index]
            programs[index] = expand_planned(plan, index, base_config=None, parent=parent)
        else:
            programs[index] = expand_planned(plan, index, base_config=BASE_CONFIG)
    return list(programs.values())


def _plan(parsed: ParseResult) -> BuildPlan:
    return plan_build(parsed, build_args=BUILD_ARGS, target=None, build_platform=PLATFORM,
                      target_platform=PLATFORM)


def _timed(function: Callable[[], object]) -> tuple[float, object]:
    """Seconds of CPU time `function` took (steadier than wall time on a shared machine)."""
    start = time.process_time()
    result = function()
    return time.process_time() - start, result


class _CollectorClock:
    """CPU time spent in the garbage collector while installed (`gc.callbacks`)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            self.seconds += time.process_time() - self._start


def run_once(text: str) -> dict[str, float]:
    """Seconds per phase for one pass: CPU time, and the wall clock of parse + plan + expand.

    Typing alone is timed afterwards, apart: planning includes it.
    """
    collector = _CollectorClock()
    gc.callbacks.append(collector)
    try:
        wall = time.perf_counter()
        parse_s, parsed = _timed(lambda: parse_dockerfile(text))
        assert isinstance(parsed, ParseResult)
        plan_s, plan = _timed(lambda: _plan(parsed))
        assert isinstance(plan, BuildPlan)
        expand_s, programs = _timed(lambda: expand_all(plan))
        wall = time.perf_counter() - wall
        collected = collector.seconds
    finally:
        gc.callbacks.remove(collector)
    convert_s, _ = _timed(lambda: convert_nodes(parsed))
    assert isinstance(programs, list) and len(programs) == len(plan.order)
    return {"parse": parse_s, "convert (alone)": convert_s, "plan (incl. convert)": plan_s,
            "expand all stages": expand_s, "total (CPU)": parse_s + plan_s + expand_s,
            "  of which GC": collected, "total (wall clock)": wall}


def report(samples: list[dict[str, float]], instructions: int, size: int) -> bool:
    """Print the table and the verdict; True when the median CPU time meets the target."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"front end: {instructions} instructions, {size} bytes, {len(samples)} runs "
          f"(Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load})")
    print(f"{'phase':<24}{'best (s)':>12}{'median (s)':>12}")
    for phase in samples[0]:
        values = [sample[phase] for sample in samples]
        print(f"{phase:<24}{min(values):>12.4f}{statistics.median(values):>12.4f}")
    best = min(sample["total (CPU)"] for sample in samples)
    median = statistics.median(sample["total (CPU)"] for sample in samples)
    passed = median < TARGET_SECONDS
    print(f"target: parse + plan + expand < {TARGET_SECONDS} s of CPU time (median) -> "
          f"{'PASS' if passed else 'FAIL'} (median {median:.3f} s, best {best:.3f} s)")
    return passed


def profile(text: str, limit: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    run_once(text)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--instructions", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="show where the time goes")
    parser.add_argument("--top", type=int, default=25, help="functions listed by --profile")
    options = parser.parse_args(argv)
    text, instructions = generate(options.instructions)
    run_once(text)  # warm up imports and regex caches
    samples = [run_once(text) for _ in range(options.runs)]
    passed = report(samples, instructions, len(text))
    if options.profile:
        profile(text, options.top)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
