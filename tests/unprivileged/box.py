"""A function-like box: load a seccomp filter, then become PROGRAM (run by /usr/bin/python3).

`python3 box.py [--no-ptrace] [--allow-userns] -- PROGRAM [ARG...]`, started as the
unprivileged user (`setpriv`, see `boxes.py`). The filter is Debian's `python3-seccomp`
(`libseccomp`): everything is allowed except, unless `--allow-userns`, `unshare` and `setns`
(EPERM), `clone` with CLONE_NEWUSER (EPERM) and `clone3` (ENOSYS, so that the C library falls
back to `clone`), and with `--no-ptrace` also `ptrace` (EPERM): Lambda refuses all of these,
Cloud Functions gen2 allows ptrace. The bad-architecture action is "allow": ptrace tools
rewrite skipped system calls to number -2, which the default action would kill with SIGSYS.
libseccomp also sets no_new_privs, as the platforms do.
"""

from __future__ import annotations

import errno
import os
import sys

CLONE_NEWUSER = 0x10000000


def _rules(no_ptrace: bool, allow_userns: bool) -> list[tuple[int, str, bool]]:
    """(errno, system call, only with CLONE_NEWUSER)."""
    rules = []
    if not allow_userns:
        rules += [(errno.EPERM, "unshare", False), (errno.EPERM, "setns", False),
                  (errno.EPERM, "clone", True), (errno.ENOSYS, "clone3", False)]
    if no_ptrace:
        rules.append((errno.EPERM, "ptrace", False))
    return rules


def _load(rules: list[tuple[int, str, bool]]) -> None:
    import seccomp  # type: ignore[import-not-found]  # Debian's python3-seccomp

    box = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for code, call, newuser in rules:
        if newuser:
            box.add_rule(seccomp.ERRNO(code), call,
                         seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
        else:
            box.add_rule(seccomp.ERRNO(code), call)
    box.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.ALLOW)
    box.load()


def main(argv: list[str]) -> None:
    flags = argv[:argv.index("--")]
    program = argv[argv.index("--") + 1:]
    rules = _rules("--no-ptrace" in flags, "--allow-userns" in flags)
    if rules:
        _load(rules)
    os.execvp(program[0], program)


if __name__ == "__main__":
    main(sys.argv[1:])
