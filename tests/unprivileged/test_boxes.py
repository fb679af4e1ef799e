"""The boxes are what TESTING.md describes, and the probe in each says what works there."""

from __future__ import annotations

import json

import pytest

from tests.unprivileged.boxes import GEN2, HOME, LAMBDA, NOBODY, USERNS, Box, require_boxes

CHECK = """
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
def call(*args):
    result = libc.syscall(*args)
    return 0 if result >= 0 else ctypes.get_errno()
def traceme():
    child = os.fork()
    if child == 0:
        os._exit(call(101, 0, 0, 0, 0))  # PTRACE_TRACEME: 0, or the errno
    return os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
def writable(path):
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)); os.unlink(path)
        return True
    except OSError:
        return False
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith(("CapEff", "CapBnd"))]
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "caps": caps,
    "unshare_user": call(272, 0x10000000), "unshare_mount": call(272, 0x00020000),
    "clone3": call(435, 0, 0), "ptrace": traceme(),
    "root": writable("/bucketbuild-probe"), "tmp": writable(f"/tmp/bucketbuild-{os.getpid()}"),
    "home": writable(os.environ["HOME"] + "/x"),
}))
"""
PROBE = """
import json, os, pathlib, tempfile
from core.run import probe
scratch = pathlib.Path(tempfile.mkdtemp())
report = probe(root_for_test=scratch)
os.rmdir(scratch)
print(json.dumps({"chosen": report.chosen,
                  "entries": {e.name: [e.usable, e.reason] for e in report.entries}}))
"""


@pytest.fixture(scope="module", autouse=True)
def _boxes() -> None:
    require_boxes()


def _python(box: Box, script: str) -> dict[str, object]:
    done = box.run(["/usr/bin/python3", "-c", script], timeout=120)
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("box", [GEN2, LAMBDA], ids=lambda box: box.name)
def test_box_is_function_like(box: Box) -> None:
    seen = _python(box, CHECK)
    assert (seen["uid"], seen["gid"], seen["groups"]) == (NOBODY, NOBODY, [])
    assert seen["caps"] == ["0000000000000000", "0000000000000000"]
    assert seen["unshare_user"] == 1 and seen["unshare_mount"] == 1  # EPERM
    assert seen["clone3"] == 38  # ENOSYS: the C library falls back to clone
    assert seen["ptrace"] == (1 if box is LAMBDA else 0)  # EPERM
    assert seen["root"] is False and seen["home"] is False and seen["tmp"] is True
    assert HOME.startswith("/nonexistent/")


def test_probe_in_the_gen2_box() -> None:
    report = _python(GEN2, PROBE)
    entries = report["entries"]
    assert isinstance(entries, dict)
    assert entries["chroot"][0] is False and "not permitted" in entries["chroot"][1]
    assert entries["userns"][0] is False and "not permitted" in entries["userns"][1]
    assert entries["proot"] == [True, "ptrace works (/usr/bin/proot)"]
    assert entries["fakechroot"][0] is True
    assert report["chosen"] == "proot"


def test_probe_in_the_lambda_box() -> None:
    report = _python(LAMBDA, PROBE)
    entries = report["entries"]
    assert isinstance(entries, dict)
    assert [entries[name][0] for name in ("chroot", "userns", "proot")] == [False] * 3
    assert "ptrace" in entries["proot"][1] and "not permitted" in entries["proot"][1]
    assert entries["fakechroot"] == [
        True, "LD_PRELOAD and fakeroot's daemon work (glibc dynamic programs only)"]
    assert report["chosen"] == "fakechroot"


def test_probe_in_a_box_allowing_user_namespaces() -> None:
    report = _python(USERNS, PROBE)
    entries = report["entries"]
    assert isinstance(entries, dict)
    assert entries["chroot"][0] is False
    assert entries["userns"] == [True, "unprivileged user namespaces work"]
    assert report["chosen"] == "userns"
