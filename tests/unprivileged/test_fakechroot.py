"""Box 2 (Lambda: neither ptrace nor user namespaces): builds on a glibc base run under
fakechroot, with fakeroot's database seeded from the extraction's metadata map and read back,
and give the image the same build as root gives with chroot."""

from __future__ import annotations

import pytest

from tests.fixtures.registry import RegistryServer
from tests.unprivileged.boxes import LAMBDA, BuildOutcome, build
from tests.unprivileged.conftest import Reference
from tests.unprivileged.layers import layer_differences, tree_comparison

SEEN = ["/etc/motd -rw------- 1000:1000", "/opt/special/null crw-rw-rw- 0:50",
        "/usr/bin/suid -rwsr-xr-x 0:0", "/home/app/files/a.txt -rw-r--r-- 1000:50"]


@pytest.fixture(scope="module")
def ours(registry: RegistryServer, glibc_reference: Reference) -> BuildOutcome:
    return build(LAMBDA, glibc_reference.context, glibc_reference.work / "lambda",
                 registry.host)


def _output(outcome: BuildOutcome) -> list[str]:
    return [e["text"] for e in outcome.events if e["type"] == "step_output"]


def test_build_in_the_box_uses_fakechroot(ours: BuildOutcome) -> None:
    assert ours.returncode == 0, ours.stderr
    assert ours.final()["sandbox"] == "fakechroot"
    chosen = [m for m in ours.messages("info") if m.startswith("RUN sandbox:")]
    assert len(chosen) == 1 and chosen[0].startswith("RUN sandbox: fakechroot (skipped: ")
    assert "proot: not usable here (" in chosen[0]


def test_steps_see_the_images_owners(ours: BuildOutcome, glibc_reference: Reference) -> None:
    assert _output(glibc_reference.outcome)[-4:] == SEEN
    assert _output(ours)[-4:] == SEEN
    assert _output(ours)[:2] == ["1000", "1000"]


def test_image_equals_the_root_chroot_build(ours: BuildOutcome,
                                            glibc_reference: Reference) -> None:
    reference = glibc_reference.outcome
    unpacked = glibc_reference.work / "lambda-unpacked"
    assert tree_comparison(ours.layout, reference.layout, unpacked) == []
    assert layer_differences(ours.layout, reference.layout) == []
