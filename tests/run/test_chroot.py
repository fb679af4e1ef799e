"""The chroot sandbox as root: what a step sees, what it leaves, and that it ends."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.errors import SandboxError
from core.run import BindMount, ChrootSandbox, RunSpec, TmpfsMount
from tests.run.conftest import processes_matching, run, tree_state

pytestmark = pytest.mark.usefixtures("host_mounts")

#: Docker's default capability set, as /proc/self/status shows it
DOCKER_CAPS = "00000000a80425fb"


def test_argv_is_passed_exactly(chroot: ChrootSandbox, busybox_root: Path) -> None:
    argv = ("/bin/busybox", "echo", "a  b", "$HOME", "", "'quoted'", "\u00e9")
    ran = run(chroot, busybox_root, argv)
    assert ran.result.exit_code == 0
    assert ran.output == "a  b $HOME  'quoted' \u00e9\n"


def test_env_is_exactly_the_spec(chroot: ChrootSandbox, busybox_root: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    monkeypatch.setenv("DOCKER_CONFIG", "/root/.docker")
    env = {"PATH": "/bin", "FOO": "bar baz", "EMPTY": ""}
    ran = run(chroot, busybox_root, ("/bin/env",), env=env)
    assert sorted(ran.output.splitlines()) == ["EMPTY=", "FOO=bar baz", "PATH=/bin"]


def test_bare_command_found_on_default_path(chroot: ChrootSandbox, busybox_root: Path) -> None:
    ran = run(chroot, busybox_root, ("echo", "found"), env={})
    assert (ran.result.exit_code, ran.output) == (0, "found\n")


def test_working_directory(chroot: ChrootSandbox, busybox_root: Path) -> None:
    (busybox_root / "work" / "dir").mkdir(parents=True)
    assert run(chroot, busybox_root, "pwd", cwd="/work/dir").output == "/work/dir\n"


def test_missing_working_directory_is_a_sandbox_error(chroot: ChrootSandbox,
                                                      busybox_root: Path) -> None:
    with pytest.raises(SandboxError, match="/nowhere"):
        run(chroot, busybox_root, "pwd", cwd="/nowhere")


def test_user_group_and_groups(chroot: ChrootSandbox, busybox_root: Path) -> None:
    ran = run(chroot, busybox_root, "id -u; id -g; id -G; id -un; touch /tmp/mine; stat -c %u:%g "
              "/tmp/mine", uid=1000, gid=1000, groups=(50, 1000))
    assert ran.output.splitlines() == ["1000", "1000", "1000 50", "app", "1000:1000"]
    assert (busybox_root / "tmp" / "mine").stat().st_uid == 1000


def test_root_step_keeps_only_default_capabilities(chroot: ChrootSandbox,
                                                   busybox_root: Path) -> None:
    ran = run(chroot, busybox_root, "grep -E '^Cap(Eff|Bnd)' /proc/self/status")
    assert ran.output.split() == ["CapEff:", DOCKER_CAPS, "CapBnd:", DOCKER_CAPS]


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_codes_propagate(chroot: ChrootSandbox, busybox_root: Path, code: int) -> None:
    result = run(chroot, busybox_root, f"exit {code}").result
    assert (result.exit_code, result.signal, result.timed_out) == (code, None, False)


def test_death_by_signal(chroot: ChrootSandbox, busybox_root: Path) -> None:
    result = run(chroot, busybox_root, "kill -TERM $$").result
    assert (result.exit_code, result.signal) == (143, 15)


def test_missing_program_exits_127(chroot: ChrootSandbox, busybox_root: Path) -> None:
    ran = run(chroot, busybox_root, ("/bin/nope",))
    assert ran.result.exit_code == 127
    assert "cannot run '/bin/nope'" in ran.output


def test_proc_is_the_steps_own(chroot: ChrootSandbox, busybox_root: Path) -> None:
    ran = run(chroot, busybox_root, "echo $$; grep ^Name: /proc/self/status; ls /proc | grep -c "
              "'^[0-9]'")
    pid, name, count = ran.output.splitlines()
    assert pid == "2"  # the namespace's init is the entry program, the step comes next
    assert name.split() == ["Name:", "grep"]
    assert int(count) < 10


def test_kernel_knobs_are_read_only(chroot: ChrootSandbox, busybox_root: Path) -> None:
    ran = run(chroot, busybox_root, "echo 1 > /proc/sys/kernel/sysrq && echo wrote")
    assert ran.result.exit_code != 0 and "wrote" not in ran.output


def test_dev_is_minimal_and_works(chroot: ChrootSandbox, busybox_root: Path) -> None:
    script = ("echo gone > /dev/null && wc -c < /dev/null; head -c 5 /dev/zero | wc -c; "
              "head -c 5 /dev/urandom | wc -c; ls /dev; touch /dev/shm/x && echo shm")
    lines = run(chroot, busybox_root, script).output.splitlines()
    assert lines[:3] == ["0", "5", "5"]
    assert set(lines[3:-1]) == {"fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr",
                                "stdin", "stdout", "tty", "urandom", "zero"}
    assert lines[-1] == "shm"


def test_device_nodes_made_by_a_step_do_not_work(chroot: ChrootSandbox,
                                                 busybox_root: Path) -> None:
    ran = run(chroot, busybox_root, "mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem && echo read")
    assert "read" not in ran.output
    assert (busybox_root / "tmp" / "mem").is_char_device()  # the node itself is in the layer


def test_resolv_conf_and_hosts_leave_no_placeholders(chroot: ChrootSandbox,
                                                     busybox_root: Path) -> None:
    before = tree_state(busybox_root)
    ran = run(chroot, busybox_root, "cat /etc/resolv.conf /etc/hosts; echo x >> /etc/hosts",
              resolv_conf=b"nameserver 192.0.2.53\n", hosts=b"192.0.2.1 registry\n")
    assert ran.output.startswith("nameserver 192.0.2.53\n192.0.2.1 registry\n")
    assert ran.result.exit_code != 0  # read-only
    assert tree_state(busybox_root) == before  # no proc, dev, etc/hosts; /etc's times kept


def test_existing_resolv_conf_is_not_modified(chroot: ChrootSandbox, busybox_root: Path) -> None:
    existing = busybox_root / "etc" / "resolv.conf"
    existing.write_text("nameserver 198.51.100.1\n")
    before = tree_state(busybox_root)
    ran = run(chroot, busybox_root, "cat /etc/resolv.conf", resolv_conf=b"nameserver 192.0.2.53\n")
    assert ran.output == "nameserver 192.0.2.53\n"
    assert existing.read_text() == "nameserver 198.51.100.1\n"
    assert tree_state(busybox_root) == before


def test_resolv_conf_symlink_is_followed_inside_the_root(chroot: ChrootSandbox,
                                                         busybox_root: Path,
                                                         tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (busybox_root / "etc" / "resolv.conf").symlink_to(f"/../../../..{outside}/resolv.conf")
    ran = run(chroot, busybox_root, "cat /etc/resolv.conf", resolv_conf=b"nameserver 192.0.2.9\n")
    assert ran.output == "nameserver 192.0.2.9\n"
    assert not outside.exists()
    assert not (busybox_root / outside.relative_to("/")).parent.exists()  # placeholder removed


def test_bind_mounts_read_only_and_writable(chroot: ChrootSandbox, busybox_root: Path,
                                            tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "file").write_text("context\n")
    (tmp_path / "rw").mkdir()
    mounts = (BindMount(source=tmp_path / "ro", target="/mnt/ro"),
              BindMount(source=tmp_path / "rw", target="/var/cache/rw", readonly=False))
    before = tree_state(busybox_root)
    ran = run(chroot, busybox_root, "cat /mnt/ro/file; touch /mnt/ro/new || echo refused; "
              "echo kept > /var/cache/rw/new", mounts=mounts)
    assert ran.output.splitlines()[0] == "context"
    assert "refused" in ran.output
    assert sorted(os.listdir(tmp_path / "ro")) == ["file"]
    assert (tmp_path / "rw" / "new").read_text() == "kept\n"
    assert tree_state(busybox_root) == before


def test_secret_file_mount(chroot: ChrootSandbox, busybox_root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret")
    ran = run(chroot, busybox_root, "cat /run/secrets/token",
              mounts=(BindMount(source=secret, target="/run/secrets/token"),))
    assert ran.output == "s3cret"
    assert not (busybox_root / "run").exists()


def test_tmpfs_and_nested_mounts(chroot: ChrootSandbox, busybox_root: Path,
                                 tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("bound\n")
    mounts = (BindMount(source=tmp_path / "data", target="/scratch/deep/data"),
              TmpfsMount(target="/scratch", size=1 << 20))
    ran = run(chroot, busybox_root, "grep ' /scratch ' /proc/mounts; cat /scratch/deep/data/f; "
              "echo x > /scratch/y && echo wrote", mounts=mounts)
    mount_line, content, wrote = ran.output.splitlines()
    assert mount_line.split()[2] == "tmpfs" and "size=1024k" in mount_line
    assert (content, wrote) == ("bound", "wrote")
    assert not (busybox_root / "scratch").exists()


def test_placeholder_parent_the_step_wrote_into_is_kept(chroot: ChrootSandbox,
                                                        busybox_root: Path,
                                                        tmp_path: Path) -> None:
    run(chroot, busybox_root, "echo mine > /opt/own", mounts=(TmpfsMount(target="/opt/cache"),))
    assert sorted(os.listdir(busybox_root / "opt")) == ["own"]


def test_network_none_has_only_loopback(chroot: ChrootSandbox, busybox_root: Path) -> None:
    ran = run(chroot, busybox_root, "ls /proc/sys/net/ipv4/conf; ip -o link show lo",
              network="none")
    lines = ran.output.splitlines()
    assert lines[:3] == ["all", "default", "lo"] and len(lines) == 4
    assert ",UP," in lines[3]


def test_hostname(chroot: ChrootSandbox, busybox_root: Path) -> None:
    assert run(chroot, busybox_root, "hostname", hostname="builder-7").output == "builder-7\n"
    assert os.uname().nodename != "builder-7"


def test_host_files_are_out_of_reach(chroot: ChrootSandbox, busybox_root: Path) -> None:
    ran = run(chroot, busybox_root, "ls /work || echo absent; ls /proc/1/root/work || echo gone")
    assert "absent" in ran.output and "gone" in ran.output


def test_timeout_kills_the_whole_tree(chroot: ChrootSandbox, busybox_root: Path) -> None:
    started = time.monotonic()
    result = run(chroot, busybox_root, "sleep 9871 & setsid sleep 9872 & sleep 9873",
                 timeout=1.0).result
    assert result.timed_out and (result.exit_code, result.signal) == (137, 9)
    assert time.monotonic() - started < 10
    for leftover in ("sleep 9871", "sleep 9872", "sleep 9873"):
        assert processes_matching(leftover) == []


def test_background_processes_end_with_the_step(chroot: ChrootSandbox,
                                                busybox_root: Path) -> None:
    started = time.monotonic()
    result = run(chroot, busybox_root, "setsid sleep 9874 & sleep 9875 & echo done").result
    assert (result.exit_code, result.timed_out) == (0, False)
    assert time.monotonic() - started < 10
    assert processes_matching("sleep 9874") == processes_matching("sleep 9875") == []


def test_large_output_reaches_the_sink(chroot: ChrootSandbox, busybox_root: Path) -> None:
    ran = run(chroot, busybox_root, "head -c 300000 /dev/zero | tr '\\0' a; echo",
              env={"PATH": "/bin"})
    assert ran.output == "a" * 300000 + "\n"


def test_output_to_a_real_file(chroot: ChrootSandbox, busybox_root: Path,
                               tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    with log.open("wb") as sink:
        result = chroot.run(RunSpec(root=busybox_root, argv=("/bin/sh", "-c", "echo out; "
                                    "echo err >&2"), env={"PATH": "/bin"}, stdout=sink))
    assert result.exit_code == 0
    assert log.read_text() == "out\nerr\n"


def test_transient_paths(chroot: ChrootSandbox, busybox_root: Path) -> None:
    spec = RunSpec(root=busybox_root, argv=("true",), resolv_conf=b"", hosts=None,
                   mounts=(TmpfsMount(target="/cache/"),))
    assert chroot.transient_paths(spec) == ("proc", "dev", "etc/resolv.conf", "cache")


def test_plain_chroot_without_namespaces(busybox_root: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    plain = ChrootSandbox(unshare=None)
    ran = run(plain, busybox_root, "id -u; [ -e /proc/self ] || echo no-proc; sleep 9876 & "
              "setsid sleep 9877 & echo bye", uid=1000, gid=1000)
    # the background jobs' shells may complain about /dev/null, in the middle of a line
    assert ran.output.startswith("1000\nno-proc\n") and "bye" in ran.output
    assert processes_matching("sleep 9876") == processes_matching("sleep 9877") == []
    assert plain.transient_paths(RunSpec(root=busybox_root, argv=("true",))) == ()
    with pytest.raises(SandboxError, match="mounts"):
        run(plain, busybox_root, "true", mounts=(TmpfsMount(target="/t"),))
