"""Disk budgets: a step that would not fit, or an extraction that outgrows what is left, is a
clean failure naming the step; nothing is tagged and the work dir is removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.build.budget import DiskBudget, size_text
from core.errors import BudgetError
from tests.perf.conftest import ProxiedBuilds, push_composed


def _work_left(proxied: ProxiedBuilds) -> list[str]:
    work = proxied.tmp / f"work{proxied.counter}"
    return sorted(os.listdir(work)) if work.exists() else []


def test_step_that_cannot_fit_fails_before_it_starts(proxied: ProxiedBuilds) -> None:
    dockerfile = f"FROM {proxied.busybox}\nENV A=1\nRUN echo hi > /hi\n"
    with pytest.raises(BudgetError, match=r"step 3 \(RUN echo hi > /hi\): needs about"):
        proxied.build(dockerfile, disk_budget=300 * 1024)
    assert proxied.proxy.count("PUT", "/manifests/") == 0
    assert _work_left(proxied) == ["cache"]  # everything the build made is gone


def test_extraction_stops_at_the_budget(proxied: ProxiedBuilds) -> None:
    # 24 MiB of zeros compress to a few KiB: only extraction shows how big the layer is
    base = f"{proxied.registry.host}/perf/zeros:1"
    with proxied.client() as client:
        push_composed(client, base, [{"data/zeros": bytes(24 << 20)}])
    dockerfile = f"FROM {base}\nCOPY x /x\nRUN true\n"
    with pytest.raises(BudgetError, match=r"step 2 \(COPY x /x\): .*budget"):
        proxied.build(dockerfile, {"x": "x"}, disk_budget=6 << 20)
    assert proxied.proxy.count("PUT", "/manifests/") == 0
    assert _work_left(proxied) == ["cache"]


def test_budget_accounts_what_the_build_writes(tmp_path: Path) -> None:
    spool = tmp_path / "layers"
    spool.mkdir()
    budget = DiskBudget.start(tmp_path, 64 << 20, spool=spool)
    (tmp_path / "elsewhere").write_bytes(os.urandom(1 << 20))  # not the build's: not counted
    assert budget.used() == 0
    (spool / "blob").write_bytes(bytes(3 << 20))
    budget.add(10 << 20)
    assert budget.used() == 13 << 20
    assert budget.remaining() == 51 << 20
    budget.check("small step", 1 << 20)
    with pytest.raises(BudgetError, match=r"big step: needs about 80\.0 MiB"):
        budget.check("big step", 80 << 20)
    budget.add(60 << 20)
    with pytest.raises(BudgetError, match=r"late step: used 73\.0 MiB of disk, more than"):
        budget.check("late step")
    default = DiskBudget.start(tmp_path, None)
    assert default.limit > 0 and default.reserve <= 64 << 20
    generous = DiskBudget.start(tmp_path, 1 << 60)  # more than the disk: the disk decides
    with pytest.raises(BudgetError, match=r"huge step: .* but only .* is free"):
        generous.check("huge step", default.limit + default.reserve + (1 << 30))
    assert size_text(1536) == "1.5 KiB"
