"""A launcher that adopts and reaps the daemons its command leaves behind, then ends them.

`python -I -S -B reaper.py [--drop NAME]... -- PROGRAM [ARG...]` makes itself a child subreaper,
runs the program as its child (without the variables named by `--drop`: Python's start-up may
add `LC_CTYPE` to the environment) and waits. Orphans of the program (fakeroot's `faked`, which
daemonises into a session of its own) are reparented here and reaped at once: fakeroot waits for
`faked` to be gone before it exits, and an init that reaps slowly (or never: some function
runtimes' init processes do not) would make every step wait on it. When the program has exited,
every process still descending from here is killed and reaped, and the reaper exits with the
program's status (128 + N when it was killed by signal N).

It runs once per step, so it imports little: `_signal` rather than `signal` (whose enums cost
more than all the rest), and `ctypes` for the one system call the standard library lacks.
"""

from __future__ import annotations

import _signal as signal  # type: ignore[import-not-found]
import ctypes
import errno
import os
import sys

PR_SET_CHILD_SUBREAPER = 36
_ROUNDS = 16


def _subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        os.write(2, f"reaper: cannot become a subreaper: {os.strerror(code)}\n".encode())


def _children() -> list[int]:
    """Processes whose parent is this one (adopted orphans included)."""
    me, found = os.getpid(), []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and int(fields[1]) == me:
            found.append(int(name))
    return found


def _end_the_rest() -> None:
    """Kill and reap what is left; the children of what is killed come here in turn."""
    for _ in range(_ROUNDS):
        left = _children()
        if not left:
            return
        for pid in left:
            try:  # noqa: SIM105 (contextlib is not worth its import here)
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for _ in left:  # each killed child becomes reapable: as many waits cannot block forever
            try:
                os.wait()
            except ChildProcessError:
                return


def main(argv: list[str]) -> None:
    drop = []
    while argv and argv[0] == "--drop":
        drop.append(argv[1])
        argv = argv[2:]
    argv = argv[1:]  # the "--"
    env = {k: v for k, v in os.environ.items() if k not in drop}
    _subreaper()
    child = os.fork()
    if child == 0:
        try:
            os.execve(argv[0], argv, env)
        except OSError as e:
            os.write(2, f"reaper: cannot run {argv[0]}: {e.strerror}\n".encode())
            os._exit(127 if e.errno == errno.ENOENT else 126)
    while True:
        pid, status = os.wait()
        if pid == child:
            break
    _end_the_rest()
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main(sys.argv[1:])
