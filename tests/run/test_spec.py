"""RunSpec validation and the builder's side of the entry program's hand-off."""

from __future__ import annotations

import marshal
from pathlib import Path
from typing import Any

import pytest

from core.errors import SandboxError
from core.run import BindMount, RunResult, RunSpec, TmpfsMount
from core.run.handoff import EntryPlan, MountOp, parse_status


@pytest.mark.parametrize(("options", "message"), [
    ({"root": Path("relative")}, "not absolute"),
    ({"argv": ()}, "argv is empty"),
    ({"argv": ("",)}, "argv is empty"),
    ({"cwd": "work"}, "not absolute"),
    ({"network": "bridge"}, "network mode"),
    ({"uid": -1}, "user or group id"),
    ({"groups": (2**32,)}, "user or group id"),
    ({"timeout": 0}, "positive"),
    ({"mounts": (TmpfsMount(target="cache"),)}, "relative"),
    ({"mounts": (BindMount(source=Path("/x"), target="//"),)}, "replace the root"),
    ({"env": {"A=B": "c"}}, "env name"),
])
def test_invalid_specs_are_refused(options: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"root": Path("/r"), "argv": ("true",), **options}
    with pytest.raises(SandboxError, match=message):
        RunSpec(**values)


def test_env_is_a_frozen_copy() -> None:
    env = {"A": "1"}
    spec = RunSpec(root=Path("/r"), argv=("true",), env=env)
    env["B"] = "2"
    assert dict(spec.env) == {"A": "1"}
    with pytest.raises(TypeError):
        spec.env["C"] = "3"  # type: ignore[index]


def test_result_ok() -> None:
    assert RunResult(exit_code=0, signal=None, duration=0.1, timed_out=False).ok
    assert not RunResult(exit_code=137, signal=9, duration=1, timed_out=True).ok


def test_plan_travels_as_plain_values() -> None:
    plan = EntryPlan(root="/r", argv=("sh", "-c", "x"), env=(("A", "\udcff"),), cwd="/",
                     uid=1, gid=2, groups=(3,),
                     ops=(MountOp(kind="file", target="/r/etc/hosts", content=b"\x00\xff"),))
    raw = marshal.loads(plan.encode())
    assert raw["argv"] == ["sh", "-c", "x"] and raw["env"] == {"A": "\udcff"}
    assert raw["ops"][0]["content"] == b"\x00\xff" and raw["ops"][0]["options"] == []
    with pytest.raises(SandboxError):
        MountOp(kind="format", target="/")
    with pytest.raises(SandboxError):
        MountOp(kind="bind", target="/", options=("shared",))


def test_status_lines() -> None:
    status = parse_status(b"note one\nnote two\nstart\nexit -9\n")
    assert (status.notes, status.error, status.started, status.exit) == (
        ("one", "two"), None, True, -9)
    assert parse_status(b"error mount /x: denied\ngarbage\n").error == "mount /x: denied"
    assert parse_status(b"").exit is None
