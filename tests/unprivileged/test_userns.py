"""A box that allows unprivileged user namespaces (a laptop, a CI runner): the probe picks
`userns`, and the build equals the root chroot build."""

from __future__ import annotations

from tests.fixtures.registry import RegistryServer
from tests.unprivileged.boxes import USERNS, build
from tests.unprivileged.conftest import Reference
from tests.unprivileged.layers import layer_differences, tree_comparison


def test_userns_is_chosen_and_the_image_equals_the_root_build(
        registry: RegistryServer, busybox_reference: Reference) -> None:
    ours = build(USERNS, busybox_reference.context, busybox_reference.work / "userns",
                 registry.host)
    assert ours.returncode == 0, ours.stderr
    assert ours.final()["sandbox"] == "userns"
    chosen = [m for m in ours.messages("info") if m.startswith("RUN sandbox:")]
    assert chosen[0].startswith("RUN sandbox: userns (skipped: chroot: not usable here (")
    reference = busybox_reference.outcome
    unpacked = busybox_reference.work / "userns-unpacked"
    assert tree_comparison(ours.layout, reference.layout, unpacked) == []
    assert layer_differences(ours.layout, reference.layout) == []
