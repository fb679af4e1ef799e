"""Box 2 (no ptrace, no user namespaces) with a static busybox base: no sandbox can run a step.
RUN fails cleanly, naming the step and what was probed; COPY/ADD-only builds still work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.registry import RegistryServer
from tests.unprivileged.boxes import LAMBDA, build, shared_dir, write_context
from tests.unprivileged.layers import headers, layer_blobs


@pytest.fixture()
def work() -> Iterator[Path]:
    with shared_dir("bucketbuild-nothing-") as path:
        yield path


def test_run_fails_naming_the_step_and_the_probe(registry: RegistryServer, busybox_base: str,
                                                 work: Path) -> None:
    dockerfile = f"FROM {busybox_base}\nCOPY one.txt /one.txt\nRUN echo never\n"
    context = write_context(work / "context", {"Dockerfile": dockerfile, "one.txt": "1\n"})
    outcome = build(LAMBDA, context, work / "out", registry.host)
    assert outcome.returncode == 1, outcome.stderr
    failed = outcome.final()
    assert failed["type"] == "build_failed" and failed["line"] == 3
    assert failed["instruction"] == "RUN echo never"
    error = failed["error"]
    assert "RUN needs a sandbox and none can run it here" in error
    assert "chroot: not usable here (" in error and "userns: not usable here (" in error
    assert "proot: not usable here (" in error and "ptrace" in error
    assert "fakechroot: usable, but not for this image (/bin/sh is statically linked" in error
    assert not [e for e in outcome.events if e["type"] == "step_output"]


def test_copy_and_add_only_builds_still_work(registry: RegistryServer, busybox_base: str,
                                             work: Path) -> None:
    dockerfile = (f"FROM {busybox_base}\nCOPY --chown=app:staff one.txt /srv/data/one.txt\n"
                  "ADD two.txt /opt/\nWORKDIR /home/app/w\nUSER app\nWORKDIR sub\n")
    context = write_context(work / "context", {"Dockerfile": dockerfile, "one.txt": "1\n",
                                               "two.txt": "2\n"})
    outcome = build(LAMBDA, context, work / "out", registry.host)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.final()["sandbox"] is None
    layers = [headers(blob) for blob in layer_blobs(outcome.layout)[1:]]
    assert [line.split(" dev=")[0] for line in layers[0]] == [
        "srv type=b'5' mode=0755 owner=0:0 size=0 link=",
        "srv/data type=b'5' mode=2775 owner=1000:50 size=0 link=",
        "srv/data/one.txt type=b'0' mode=0644 owner=1000:50 size=2 link="]
    assert layers[3][-1].startswith("home/app/w/sub type=b'5' mode=0755 owner=1000:1000")


def test_run_isolation_none_refuses_run(registry: RegistryServer, busybox_base: str,
                                        work: Path) -> None:
    context = write_context(work / "context", {"Dockerfile": f"FROM {busybox_base}\nRUN true\n"})
    outcome = build(LAMBDA, context, work / "out", registry.host, "--run-isolation=none")
    failed = outcome.final()
    assert outcome.returncode == 1 and failed["line"] == 2
    assert "RUN is refused: no sandbox is in use (run isolation 'none'; probed: " in \
        failed["error"]


def test_a_named_sandbox_that_cannot_run_here_is_refused(registry: RegistryServer,
                                                         busybox_base: str, work: Path) -> None:
    context = write_context(work / "context", {"Dockerfile": f"FROM {busybox_base}\nRUN true\n"})
    outcome = build(LAMBDA, context, work / "out", registry.host, "--run-isolation=proot")
    error = outcome.final()["error"]
    assert outcome.returncode == 1
    assert "run isolation 'proot' cannot run steps here: proot: not usable here (" in error
