"""Config-only instruction effects, checked without a registry."""

from __future__ import annotations

import pytest

from core.build.bases import scratch_config
from core.build.config_steps import (
    ConfigState,
    apply_config,
    check_signal,
    parse_port_spec,
)
from core.dockerfile.convert import convert_node
from core.dockerfile.parser import parse_dockerfile
from core.errors import DockerfileError
from core.image.manifest import Platform


def _apply(state: ConfigState, line: str) -> ConfigState:
    node = parse_dockerfile(line + "\n").nodes[0]
    return apply_config(state, convert_node(node), created=None)


def test_cmd_entrypoint_and_shell() -> None:
    state = ConfigState(scratch_config(Platform("linux", "amd64")))
    state = _apply(state, 'SHELL ["/bin/bash", "-eu", "-c"]')
    state = _apply(state, "ENTRYPOINT run it")
    assert state.config.entrypoint == ("/bin/bash", "-eu", "-c", "run it")
    state = _apply(state, "CMD []")
    assert state.config.cmd is None and state.cmd_set
    state = _apply(state, 'CMD ["a"]')
    state = _apply(state, "ENTRYPOINT []")
    assert state.config.cmd == ("a",)  # set in this stage: kept
    assert state.config.entrypoint is None
    assert state.image.history[-1].created_by == "ENTRYPOINT []"


@pytest.mark.parametrize(("spec", "ports"), [
    ("80", ["80/tcp"]), ("53/UDP", ["53/udp"]), ("7000-7002/sctp",
                                                  ["7000/sctp", "7001/sctp", "7002/sctp"]),
    ("127.0.0.1:8080:80", ["80/tcp"]),
])
def test_ports(spec: str, ports: list[str]) -> None:
    assert parse_port_spec(spec) == ports


@pytest.mark.parametrize("spec", ["", "/tcp", "80/icmp", "70000", "9-8"])
def test_bad_ports(spec: str) -> None:
    with pytest.raises(DockerfileError):
        parse_port_spec(spec)


def test_signals() -> None:
    for good in ("SIGTERM", "term", "9", "RTMIN+3", "SIGRTMAX-1"):
        check_signal(good)
    for bad in ("0", "SIGNOPE", "RTMIN+x"):
        with pytest.raises(DockerfileError):
            check_signal(bad)
