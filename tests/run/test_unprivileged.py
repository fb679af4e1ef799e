"""The userns and proot sandboxes, and probing, as an unprivileged user (uid 65534, no caps).

All cases run in one worker process (`unprivileged_worker.py`) started through `setpriv`; the
tests below look at its results. Roots are owned by that user, as an unprivileged extraction
would leave them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.run.conftest import BUSYBOX, make_busybox_root, processes_matching

NOBODY = 65534
SYSTEM_PYTHON = Path("/usr/bin/python3")
REPO = Path(__file__).resolve().parents[2]
SLEEPS = {"userns": (9881, 9882, 9883), "proot": (9884, 9885, 9886)}
MOUNTS = [{"type": "bind", "name": "ro", "target": "/mnt/ro", "readonly": True},
          {"type": "bind", "name": "rw", "target": "/mnt/rw", "readonly": False},
          {"type": "tmpfs", "target": "/scratch"}]
SANDBOXES = ("userns", "proot")


def _cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for name in SANDBOXES:
        a, b, c = SLEEPS[name]
        cases += [
            {"id": f"{name}-root", "script": "id -u; id -g"},
            {"id": f"{name}-app", "script": "id -u; id -g; touch /tmp/x; stat -c %u /tmp/x",
             "uid": 1000, "gid": 1000},
            {"id": f"{name}-env", "argv": ["/bin/env"], "env": {"PATH": "/bin", "FOO": "b r"}},
            {"id": f"{name}-exit", "script": "exit 42"},
            {"id": f"{name}-host", "script": "ls /work >/dev/null 2>&1 && echo seen || echo no"},
            {"id": f"{name}-files", "script": "cat /etc/resolv.conf /etc/hosts",
             "resolv": "nameserver 192.0.2.53\n", "hosts": "192.0.2.1 registry\n"},
            {"id": f"{name}-mounts", "mounts": MOUNTS, "script":
             "cat /mnt/ro/f; touch /mnt/ro/new 2>/dev/null && echo ro-writable; "
             "touch /mnt/rw/new; touch /scratch/x && echo tmpfs"},
            {"id": f"{name}-timeout", "timeout": 1.0,
             "script": f"sleep {a} & setsid sleep {b} & sleep {c}"},
            {"id": f"{name}-net", "network": "none", "script": "ls /proc/sys/net/ipv4/conf"},
        ]
    cases += [{"id": "userns-pid", "script": "echo $$; grep -c . /proc/self/status >/dev/null"},
              {"id": "userns-background", "script": "setsid sleep 9887 & echo done"}]
    return cases


@pytest.fixture(scope="module")
def worker() -> Iterator[dict[str, Any]]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to drop to an unprivileged user with setpriv")
    if not SYSTEM_PYTHON.is_file() or not BUSYBOX.is_file():
        pytest.skip("needs the system python3 and busybox-static")
    work = Path(tempfile.mkdtemp(prefix="bucketbuild-unprivileged-"))
    try:
        work.chmod(0o777)
        template = make_busybox_root(work / "template", owner=NOBODY)
        request = {"template": str(template), "work": str(work), "cases": _cases()}
        site = sysconfig.get_paths()["purelib"]  # this venv's packages, for core's imports
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work),
               "PYTHONPATH": f"{REPO}:{site}"}
        done = subprocess.run(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             "--inh-caps=-all", str(SYSTEM_PYTHON), "-m", "tests.run.unprivileged_worker"],
            input=json.dumps(request), env=env, cwd=REPO, capture_output=True, text=True,
            timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        yield json.loads(done.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def case(worker: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = worker["cases"][name]
    assert "error" not in found, found["error"]
    return found


def test_probe_unprivileged_chooses_userns(worker: dict[str, Any]) -> None:
    assert worker["uid"] == NOBODY
    probed = worker["probe"]
    assert probed["chroot"][0] is False and "not permitted" in probed["chroot"][1]
    assert probed["userns"] == [True, "unprivileged user namespaces work"]
    assert probed["proot"][0] is True
    assert worker["chosen"] == "userns"


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_ids(worker: dict[str, Any], sandbox: str) -> None:
    assert case(worker, f"{sandbox}-root")["output"] == "0\n0\n"
    assert case(worker, f"{sandbox}-app")["output"] == "1000\n1000\n1000\n"


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_env_exit_and_host(worker: dict[str, Any], sandbox: str) -> None:
    env = sorted(case(worker, f"{sandbox}-env")["output"].splitlines())
    added = ["PWD=/"] if sandbox == "proot" else []  # proot sets PWD; nothing else is added
    assert env == sorted(["FOO=b r", "PATH=/bin", *added])
    assert case(worker, f"{sandbox}-exit")["exit_code"] == 42
    assert case(worker, f"{sandbox}-host")["output"] == "no\n"


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_resolv_conf_and_hosts_leave_no_trace(worker: dict[str, Any], sandbox: str) -> None:
    ran = case(worker, f"{sandbox}-files")
    assert ran["output"] == "nameserver 192.0.2.53\n192.0.2.1 registry\n"
    assert ran["unchanged"]


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_mounts(worker: dict[str, Any], sandbox: str) -> None:
    ran = case(worker, f"{sandbox}-mounts")
    # proot cannot make read-only binds: the step writes to a copy, the source stays intact
    expected = "context\nro-writable\ntmpfs\n" if sandbox == "proot" else "context\ntmpfs\n"
    assert ran["output"] == expected
    assert ran["sources"] == {"ro": ["f"], "rw": ["f", "new"]}
    assert ran["unchanged"]


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_timeout_kills_the_whole_tree(worker: dict[str, Any], sandbox: str) -> None:
    ran = case(worker, f"{sandbox}-timeout")
    assert ran["timed_out"] and (ran["exit_code"], ran["signal"]) == (137, 9)
    for seconds in SLEEPS[sandbox]:
        assert processes_matching(f"sleep {seconds}") == []


def test_userns_network_none_and_proc(worker: dict[str, Any]) -> None:
    assert case(worker, "userns-net")["output"].split() == ["all", "default", "lo"]
    assert case(worker, "userns-pid")["output"] == "2\n"
    background = case(worker, "userns-background")
    assert (background["exit_code"], background["output"]) == (0, "done\n")
    assert processes_matching("sleep 9887") == []


def test_proot_refuses_network_none(worker: dict[str, Any]) -> None:
    assert "network" in worker["cases"]["proot-net"]["error"]
