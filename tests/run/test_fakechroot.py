"""The fakechroot sandbox (as root here; unprivileged in `tests/unprivileged`): fakeroot's
database seeded from a metadata map and read back, glibc-only checks, environment, working
directory, exit status, time limit and leftovers."""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from core.errors import SandboxError
from core.rootfs import EntryKind, EntryMetadata
from core.run import FakechrootSandbox, RunSpec, TmpfsMount
from core.run.fakeroot import format_line, parse_state, seed_lines
from core.run.spec import FakeStat
from tests.run.conftest import make_busybox_root, processes_matching, run

PROGRAMS = ("dash", "ls", "cat", "id", "mkdir", "touch", "chown", "chmod", "stat", "ln", "mknod",
            "env", "sleep", "pwd")


def _tools() -> FakechrootSandbox:
    found = {name: shutil.which(name) for name in ("fakechroot", "fakeroot", "chroot")}
    if None in found.values() or os.geteuid() != 0:
        pytest.skip("needs root (to set up), fakechroot, fakeroot and chroot")
    return FakechrootSandbox(fakechroot=Path(str(found["fakechroot"])),
                             fakeroot=Path(str(found["fakeroot"])),
                             chroot=Path(str(found["chroot"])),
                             search_path="/usr/sbin:/usr/bin:/sbin:/bin")


def make_glibc_root(root: Path) -> Path:
    """dash as /bin/sh and a few coreutils with the libraries `ldd` names."""
    for name in PROGRAMS:
        program = Path(os.path.realpath(str(shutil.which(name))))
        (root / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy2(program, root / "bin" / name)
        listed = subprocess.run(["ldd", str(program)], capture_output=True, text=True,
                                check=True).stdout
        for library in re.findall(r"(/\S+)", listed):
            target = root / library.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(library), target)
    (root / "bin" / "sh").symlink_to("dash")
    for name in ("etc", "tmp", "work"):
        (root / name).mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nstaff:x:50:app\napp:x:1000:\n")
    return root


@pytest.fixture
def sandbox(tmp_path: Path) -> FakechrootSandbox:
    return FakechrootSandbox(**{**_tools().__dict__, "scratch": tmp_path / "scratch"})


@pytest.fixture
def glibc_root(tmp_path: Path) -> Path:
    return make_glibc_root(tmp_path / "root")


def test_seeded_owners_are_seen_and_changes_come_back(sandbox: FakechrootSandbox,
                                                      glibc_root: Path) -> None:
    recorded = {"etc/passwd": EntryMetadata(EntryKind.FILE, 0o600, 1000, 50),
                "work/dev": EntryMetadata(EntryKind.CHAR, 0o660, 0, 6, devmajor=1, devminor=5)}
    (glibc_root / "work" / "dev").touch()  # what an unprivileged extraction leaves
    script = ("stat -c '%n %A %u:%g' /etc/passwd /work/dev; id -u; "
              "mkdir /work/d && chown 5:6 /work/d && mknod /work/null c 1 3 && "
              "chmod 4755 /bin/ls")
    sink = io.BytesIO()
    result = sandbox.run(RunSpec(root=glibc_root, argv=("/bin/sh", "-c", script),
                                 env={"PATH": "/bin"}, stdout=sink, recorded=recorded))
    assert result.exit_code == 0, sink.getvalue()
    assert sink.getvalue().decode().splitlines() == [
        "/etc/passwd -rw------- 1000:50", "/work/dev crw-rw---- 0:6", "0"]
    assert result.ownership is not None and result.ownership.captures_chown
    by_inode = result.ownership.recorded

    def fake(path: str) -> FakeStat:
        st = os.lstat(glibc_root / path)
        return by_inode[(st.st_dev, st.st_ino)]

    assert fake("work/d") == FakeStat(stat.S_IFDIR | 0o755, 5, 6)
    assert fake("work/null") == FakeStat(stat.S_IFCHR | 0o644, 0, 0, os.makedev(1, 3))
    assert fake("bin/ls") == FakeStat(stat.S_IFREG | 0o4755, 0, 0)
    assert fake("etc/passwd") == FakeStat(stat.S_IFREG | 0o600, 1000, 50)
    assert (glibc_root / "work" / "null").is_file()  # on disk: a plain file


def test_user_cwd_env_and_exit_status(sandbox: FakechrootSandbox, glibc_root: Path) -> None:
    env = {"PATH": "/bin", "FOO": "b r", "HOME": "/work"}
    ran = run(sandbox, glibc_root, "id -u; id -g; pwd; echo $HOME $FOO; exit 7",
              env=env, uid=1000, gid=50, cwd="/work")
    assert ran.result.exit_code == 7
    assert ran.output.splitlines() == ["1000", "50", "/work", "/work b r"]
    exported = run(sandbox, glibc_root, ("/bin/sh", "-c", "unset PWD; export -p"), env=env)
    listed = dict(re.findall(r"^export (\w+)='?(.*?)'?$", exported.output, re.MULTILINE))
    assert (listed["PATH"], listed["FOO"], listed["HOME"]) == ("/bin", "b r", "/work")
    assert not set(listed) & {"OLDPWD", "CDPATH", "LC_CTYPE"}
    assert listed["FAKECHROOT_EXCLUDE_PATH"] == "/dev:/sys"
    assert {"LD_PRELOAD", "FAKEROOTKEY", "FAKECHROOT_BASE"} <= set(listed)


def test_static_programs_and_non_glibc_roots_are_refused(sandbox: FakechrootSandbox,
                                                         glibc_root: Path,
                                                         tmp_path: Path) -> None:
    if not Path("/bin/busybox").is_file():
        pytest.skip("busybox-static is not installed")
    busybox_root = make_busybox_root(tmp_path / "busybox")
    assert sandbox.unsuitable(busybox_root) == (
        "/bin/sh is statically linked; fakechroot runs only dynamically linked glibc programs")
    assert sandbox.unsuitable(glibc_root) is None
    shutil.copyfile("/bin/busybox", glibc_root / "bin" / "busybox")
    (glibc_root / "bin" / "busybox").chmod(0o755)
    with pytest.raises(SandboxError, match="/bin/busybox is statically linked"):
        run(sandbox, glibc_root, ("busybox", "true"))
    with pytest.raises(SandboxError, match="cannot provide RUN mounts"):
        run(sandbox, glibc_root, "true", mounts=(TmpfsMount(target="/t"),))
    with pytest.raises(SandboxError, match="network"):
        run(sandbox, glibc_root, "true", network="none")


def test_time_limit_kills_the_step_and_faked(sandbox: FakechrootSandbox,
                                             glibc_root: Path) -> None:
    ran = run(sandbox, glibc_root, "sleep 9871 & sleep 9872", timeout=1.0)
    assert ran.result.timed_out and ran.result.exit_code == 137
    assert processes_matching("sleep 9871") == processes_matching("sleep 9872") == []
    assert not [pid for pid in processes_matching("faked-sysv")
                if Path(f"/proc/{pid}").exists()]


def test_background_processes_end_with_the_step(sandbox: FakechrootSandbox,
                                                glibc_root: Path) -> None:
    ran = run(sandbox, glibc_root, "sleep 9873 & echo started")
    assert (ran.result.exit_code, ran.output) == (0, "started\n")
    assert processes_matching("sleep 9873") == []


def test_state_lines_round_trip(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    (tmp_path / "g").hardlink_to(tmp_path / "f")
    recorded = {"f": EntryMetadata(EntryKind.FILE, 0o4750, 1000, 50),
                "g": EntryMetadata(EntryKind.FILE, 0o4750, 1000, 50),
                "missing": EntryMetadata(EntryKind.FILE, 0o644, 1, 1)}
    lines = list(seed_lines(tmp_path, recorded))
    st = os.lstat(tmp_path / "f")
    assert lines == [format_line((st.st_dev, st.st_ino), FakeStat(0o104750, 1000, 50),
                                 nlink=2)]
    assert lines[0] == f"dev={st.st_dev:x},ino={st.st_ino},mode=104750,uid=1000,gid=50," \
                       f"nlink=2,rdev=0\n"
    assert parse_state("".join(lines) + "garbage\n") == {
        (st.st_dev, st.st_ino): FakeStat(0o104750, 1000, 50)}
