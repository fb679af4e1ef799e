"""The program that prepares a step inside its namespaces and then becomes or starts it.

The namespace sandboxes run it as `python -I -S -B enter.py PLAN STATUS STDERR` (descriptor
numbers; STDERR -1: keep the entry's own standard error for the step) under util-linux
`unshare`; the plain chroot fallback runs it directly. It reads the plan (`core.run.handoff`),
performs its mount operations on host paths, isolates the root (`pivot_root` and a detached
old root, else `chroot`), and then either becomes the step (`init` false) or stays as the PID
namespace's init: it starts the step, reaps orphans and exits when the step does, which makes
the kernel kill everything else in the namespace.

It runs once per RUN step, so it imports only modules built into the interpreter or written in
C (no dataclasses, json, typing or enum at run time). Once the root is isolated the host's Python
library is out of reach: nothing may be imported after `prepare`, even implicitly (opening a
text file with an explicit encoding would be), so only bytes are written from then on.
"""

from __future__ import annotations

# `signal` wraps this C module in enums, whose import would cost more than all the rest.
import _signal as signal  # type: ignore[import-not-found]
import ctypes
import errno
import fcntl
import marshal
import os
import struct
import sys

TYPE_CHECKING = False  # `typing` itself is not imported at run time
if TYPE_CHECKING:
    from typing import Any, NoReturn

    Plan = dict[str, Any]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MS_FLAGS = {"ro": 1, "nosuid": 2, "nodev": 4, "noexec": 8}
_ST_TO_MS = ((1, 1), (2, 2), (4, 4), (8, 8), (1024, 1024), (2048, 2048), (4096, 1 << 21))
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 32, 4096, 8192, 16384, 1 << 18
MNT_DETACH = 2
CLONE_NEWUSER = 0x10000000
PR_CAPBSET_DROP = 24
#: what a root step keeps: Docker's default capability set
KEPT_CAPS = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31})
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP, _AF_INET, _SOCK_DGRAM = 0x8913, 0x8914, 1, 2, 2


class EntryError(Exception):
    """The sandbox could not be set up (reported on the status channel, never raised across)."""


class Kernel:
    """The system calls the standard library lacks, through the C library."""

    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                    ctypes.c_ulong, ctypes.c_char_p]

    def _check(self, result: int, what: str, path: str) -> None:
        if result != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"{what}: {os.strerror(code)}", path)

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:
        def enc(text: str | None) -> bytes | None:
            return None if text is None else os.fsencode(text)
        self._check(self.libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
                    "mount", target)

    def umount(self, target: str, flags: int) -> None:
        self._check(self.libc.umount2(os.fsencode(target), flags), "umount", target)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        number = _PIVOT_ROOT.get(os.uname().machine)
        if number is None:
            raise OSError(errno.ENOSYS, "pivot_root: unknown system call number", new_root)
        result = self.libc.syscall(number, os.fsencode(new_root), os.fsencode(put_old))
        self._check(result, "pivot_root", new_root)

    def unshare(self, flags: int) -> None:
        self._check(self.libc.unshare(flags), "unshare", "")

    def sethostname(self, name: str) -> None:
        raw = os.fsencode(name)
        self._check(self.libc.sethostname(raw, len(raw)), "sethostname", name)

    def drop_capabilities(self, keep: frozenset[int]) -> None:
        """Take every capability not in `keep` out of the bounding set."""
        for cap in range(64):
            if cap in keep:
                continue
            if self.libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                if ctypes.get_errno() == errno.EINVAL:
                    return  # past the last capability this kernel knows
                self._check(-1, "dropping capabilities", "")

    def loopback_up(self) -> None:
        """Bring up `lo` in the (new) network namespace."""
        sock = self.libc.socket(_AF_INET, _SOCK_DGRAM, 0)
        self._check(0 if sock >= 0 else -1, "socket", "lo")
        try:
            request = struct.pack("16sH14x", b"lo", 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
        finally:
            os.close(sock)


def _flags(options: list[str]) -> int:
    value = 0
    for name in options:
        value |= MS_FLAGS.get(name, 0)
    return value


def _kept_flags(path: str) -> int:
    """Flags of the mount at `path` a remount must repeat (some are locked in user namespaces)."""
    have = os.statvfs(path).f_flag
    return sum(ms for st, ms in _ST_TO_MS if have & st)


def _bind(kernel: Kernel, source: str, target: str, options: list[str]) -> None:
    kernel.mount(source, target, None, MS_BIND | (MS_REC if "rec" in options else 0))
    extra = _flags(options)
    if extra:
        kernel.mount(None, target, None, MS_REMOUNT | MS_BIND | extra | _kept_flags(target))


def _stage_file(kernel: Kernel, op: dict[str, Any]) -> None:
    fd = os.open(op["source"], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, op["content"])
        os.fchmod(fd, 0o644)
    finally:
        os.close(fd)
    try:
        _bind(kernel, op["source"], op["target"], ["ro", *op["options"]])
    finally:
        os.unlink(op["source"])  # the bind mount keeps the content alive


def _mask(kernel: Kernel, target: str) -> None:
    if os.path.isdir(target):
        kernel.mount("tmpfs", target, "tmpfs", _flags(["ro", "nosuid", "nodev", "noexec"]),
                     "size=0")
    elif os.path.lexists(target):
        _bind(kernel, "/dev/null", target, [])


def apply(kernel: Kernel, op: dict[str, Any]) -> None:
    """Perform one mount operation (see `core.run.handoff.MountOp`)."""
    kind, target, source = op["kind"], op["target"], op["source"]
    if kind == "bind":
        _bind(kernel, source, target, op["options"])
    elif kind == "mount":
        kernel.mount(source, target, source, _flags(op["options"]), op["data"] or None)
    elif kind == "file":
        _stage_file(kernel, op)
    elif kind == "mask":
        _mask(kernel, target)
    elif kind == "mkdir":
        os.makedirs(target, mode=0o755, exist_ok=True)
    elif kind == "touch":
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))
    elif kind == "symlink":
        os.symlink(source, target)
    else:
        raise EntryError(f"unknown mount operation {kind!r}")




def _isolate(plan: Plan, kernel: Kernel, notes: list[str]) -> None:
    """Make the root the process's `/`; with pivot_root the host tree is detached for good."""
    if plan["isolate"] == "chroot":
        os.chroot(plan["root"])
        os.chdir("/")
        return
    os.chdir(plan["root"])
    try:
        kernel.pivot_root(".", ".")
    except OSError as e:
        notes.append(f"pivot_root failed ({e.strerror}); moved the root over / and chrooted")
        kernel.mount(".", "/", None, MS_MOVE)
        os.chroot(".")
    else:
        kernel.umount(".", MNT_DETACH)
    os.chdir("/")


def prepare(plan: Plan, kernel: Kernel) -> list[str]:
    """Everything before the step starts; returns notes for the builder's log."""
    notes: list[str] = []
    if plan["isolate"] == "pivot":
        kernel.mount(None, "/", None, MS_REC | MS_PRIVATE)
    for op in plan["ops"]:
        try:
            apply(kernel, op)
        except OSError as e:
            if not op["optional"]:
                raise EntryError(f"{op['kind']} {op['target']}: {e.strerror}") from e
            if e.errno != errno.ENOENT:
                notes.append(f"skipped {op['kind']} {op['target']}: {e.strerror}")
    if plan["hostname"] is not None:
        kernel.sethostname(plan["hostname"])
    if plan["loopback"]:
        kernel.loopback_up()
    _isolate(plan, kernel, notes)
    if not os.path.isdir(plan["cwd"]):
        raise EntryError(f"working directory {plan['cwd']} is not a directory in the root")
    return notes


def report(status_fd: int, keyword: str, text: str = "") -> None:
    line = f"{keyword} {text}".strip().replace("\n", " ")
    os.write(status_fd, line.encode("utf-8", "replace") + b"\n")


def _enter_user_namespace(kernel: Kernel, uid: int, gid: int) -> None:
    """Show the step as `uid`:`gid` through a nested user namespace (only our own id maps)."""
    kernel.unshare(CLONE_NEWUSER)
    for name, text in (("setgroups", b"deny"), ("gid_map", b"%d 0 1\n" % gid),
                       ("uid_map", b"%d 0 1\n" % uid)):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text)
        finally:
            os.close(fd)


def _switch_user(plan: Plan, kernel: Kernel) -> None:
    uid, gid = plan["uid"], plan["gid"]
    if plan["user_switch"] == "userns":
        if uid or gid:
            _enter_user_namespace(kernel, uid, gid)
        return
    os.setgroups(plan["groups"])
    os.setgid(gid)
    os.setuid(uid)


def _exec(plan: Plan) -> NoReturn:
    """execve the step, searching PATH (from the step's environment) for a bare name."""
    env, argv = plan["env"], plan["argv"]
    name = argv[0]
    paths = env.get("PATH", DEFAULT_PATH).split(":")
    candidates = [name] if "/" in name else [os.path.join(d or ".", name) for d in paths]
    failure: OSError | None = None
    for path in candidates:
        try:
            os.execve(path, argv, env)
        except OSError as e:
            if failure is None or e.errno not in (errno.ENOENT, errno.ENOTDIR):
                failure = e
    missing = failure is None or failure.errno in (errno.ENOENT, errno.ENOTDIR)
    reason = "not found" if failure is None else failure.strerror
    os.write(2, f"bucketbuild: cannot run {name!r}: {reason}\n".encode("utf-8", "replace"))
    os._exit(127 if missing else 126)


def _default_signals() -> None:
    """What an exec'd program expects: every signal at its default, none blocked."""
    for number in range(1, signal.NSIG):
        if number in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            continue  # reserved by the C library
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _become_step(plan: Plan, kernel: Kernel, status_fd: int, stderr_fd: int) -> NoReturn:
    try:
        _default_signals()
        os.umask(0o022)
        os.chdir(plan["cwd"])
        if plan["drop_caps"]:
            kernel.drop_capabilities(KEPT_CAPS)
        _switch_user(plan, kernel)
    except Exception as e:  # nothing may escape: this is a forked copy of the entry program
        report(status_fd, "error", f"cannot start the step as {plan['uid']}:{plan['gid']}: {e}")
        os._exit(125)
    report(status_fd, "start")
    if stderr_fd >= 0:
        os.dup2(stderr_fd, 2)
    _exec(plan)


def _run_init(plan: Plan, kernel: Kernel, status_fd: int, stderr_fd: int) -> NoReturn:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    child = os.fork()
    if child == 0:
        _become_step(plan, kernel, status_fd, stderr_fd)
    while True:
        pid, status = os.wait()
        if pid == child:
            break
    code = os.waitstatus_to_exitcode(status)
    report(status_fd, "exit", str(code))
    os._exit(code if code >= 0 else 128 - code)


def main(argv: list[str]) -> NoReturn:
    plan_fd, status_fd, stderr_fd = (int(arg) for arg in argv[1:4])
    for fd in (status_fd, stderr_fd):
        if fd >= 0:
            os.set_inheritable(fd, False)
    try:
        with os.fdopen(plan_fd, "rb") as source:
            plan: Plan = marshal.loads(source.read())
        kernel = Kernel()
        notes = prepare(plan, kernel)
    except (OSError, ValueError, TypeError, KeyError, EOFError, EntryError) as e:
        report(status_fd, "error", str(e))
        os._exit(125)
    for note in notes:
        report(status_fd, "note", note)
    if plan["init"]:
        _run_init(plan, kernel, status_fd, stderr_fd)
    _become_step(plan, kernel, status_fd, stderr_fd)


if __name__ == "__main__":
    main(sys.argv)
