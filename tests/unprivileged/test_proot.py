"""Box 1 (Cloud Functions gen2: ptrace, no user namespaces): builds on a static busybox base run
under proot and give the image the same build as root gives with chroot."""

from __future__ import annotations

import pytest

from tests.fixtures.registry import RegistryServer
from tests.unprivileged.boxes import GEN2, BuildOutcome, build, shared_dir, write_context
from tests.unprivileged.conftest import Reference
from tests.unprivileged.layers import layer_differences, tree_comparison


@pytest.fixture(scope="module")
def ours(registry: RegistryServer, busybox_reference: Reference) -> BuildOutcome:
    return build(GEN2, busybox_reference.context, busybox_reference.work / "gen2",
                 registry.host)


def test_build_in_the_box_uses_proot_and_says_why(ours: BuildOutcome) -> None:
    assert ours.returncode == 0, ours.stderr
    assert ours.final()["sandbox"] == "proot"
    chosen = [m for m in ours.messages("info") if m.startswith("RUN sandbox:")]
    assert len(chosen) == 1
    assert chosen[0].startswith("RUN sandbox: proot (skipped: chroot: not usable here (")
    assert "userns: not usable here (" in chosen[0]
    assert "; proot: usable (ptrace works (" in chosen[0]
    assert "fakechroot" not in chosen[0]  # probing stops at the sandbox chosen
    outputs = [e["text"] for e in ours.events if e["type"] == "step_output"]
    assert outputs[-2:] == ["1000", "1000"]


def test_image_equals_the_root_chroot_build(ours: BuildOutcome,
                                            busybox_reference: Reference) -> None:
    reference = busybox_reference.outcome
    unpacked = busybox_reference.work / "gen2-unpacked"
    assert tree_comparison(ours.layout, reference.layout, unpacked) == []
    assert layer_differences(ours.layout, reference.layout) == []


def test_proot_limit_is_said_in_the_build_log(registry: RegistryServer,
                                              busybox_base: str) -> None:
    dockerfile = f"FROM {busybox_base}\nRUN touch /f && chown 1000:50 /f && chgrp 50 /f\n"
    with shared_dir("bucketbuild-gen2-chown-") as work:
        context = write_context(work / "context", {"Dockerfile": dockerfile})
        outcome = build(GEN2, context, work / "ours", registry.host)
    assert outcome.returncode == 0, outcome.stderr
    warnings = outcome.messages("warning")
    assert any("under proot: chown and chgrp to another user report success" in w
               for w in warnings), warnings
    assert any("chown 1000:50 /f" in w and "change nothing in the image" in w
               for w in warnings), warnings
    assert outcome.final()["warnings"] == warnings
