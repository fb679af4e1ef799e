"""The RUN sandbox probe costs process starts (0.1-0.3 s a candidate): it runs only when a RUN
step executes, and `auto` stops at the first candidate that fits the stage's root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.build.options import CacheOptions
from core.build.sandbox import StageSandboxes, concrete, probe_lines
from core.run import ChrootSandbox, Prober
from tests.perf.conftest import ProxiedBuilds
from tests.run.conftest import make_busybox_root

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chroot is usable only as root")


@needs_root
def test_auto_probes_only_up_to_the_first_sandbox_that_fits(tmp_path: Path) -> None:
    root = make_busybox_root(tmp_path / "root")
    prober = Prober()
    sandboxes = StageSandboxes("auto", prober, tmp_path / "scratch")
    assert probe_lines(sandboxes) == () and not prober.probed
    assert isinstance(concrete(sandboxes, root), ChrootSandbox)
    lines = probe_lines(sandboxes)
    assert len(lines) == 1 and lines[0].startswith("chroot: usable")
    assert [e.name for e in prober.known_report().entries] == ["chroot"]
    # a full report still probes the rest, once
    assert [e.name for e in prober.report().entries] == ["chroot", "userns", "proot",
                                                        "fakechroot"]
    assert len(probe_lines(sandboxes)) == 4


def test_none_still_names_every_candidate_probed(tmp_path: Path) -> None:
    root = make_busybox_root(tmp_path / "root")
    sandboxes = StageSandboxes("none", Prober(candidates=("chroot", "proot")),
                               tmp_path / "scratch")
    chosen = concrete(sandboxes, root)
    assert chosen.name == "none" and len(probe_lines(sandboxes)) == 2


@needs_root
def test_a_rebuild_from_the_layer_cache_probes_nothing(proxied: ProxiedBuilds) -> None:
    dockerfile = f"FROM {proxied.busybox}\nRUN echo one > /one\nCOPY a /a\nRUN cat /a > /b\n"
    cache = CacheOptions(enabled=True, repo=f"{proxied.host}/perf/probe-cache")
    first = proxied.build(dockerfile, {"a": "a\n"}, cache=cache)
    assert first.sandbox == "chroot" and len(first.sandbox_probe) == 1
    assert first.sandbox_probe[0].startswith("chroot: usable")
    second = proxied.build(dockerfile, {"a": "a\n"}, cache=cache)
    assert [layer.digest for layer in second.layers] == [layer.digest for layer in first.layers]
    assert second.sandbox_probe == () and second.sandbox in (None, "auto")
