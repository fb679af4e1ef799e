"""Users and groups of a stage: `/etc/passwd` and `/etc/group` parsing and name resolution.

Two resolutions, as BuildKit does them:
- `run_user` (USER for RUN and WORKDIR, runc's rules): `user[:group]`, names looked up in the
  stage's files; a numeric user missing from passwd runs with gid 0 and HOME `/`; supplementary
  groups are the groups of /etc/group that list the user by name.
- `chown_owner` (`COPY/ADD --chown`, BuildKit's file op): `user[:group]`; a numeric user
  without a group gets gid = uid; a named user gets its passwd gid. BuildKit silently maps an
  unknown name to 0; we refuse it with a clear error instead (a typo would otherwise give root).
Parsing is pure (text in, values out); reading the files is the caller's business.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from core.errors import StepError


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class Accounts:
    """The parsed account files of one tree (empty when a file is missing)."""

    users: tuple[PasswdEntry, ...] = ()
    groups: tuple[GroupEntry, ...] = ()

    @classmethod
    def parse(cls, passwd: str, group: str) -> Accounts:
        return cls(tuple(parse_passwd(passwd)), tuple(parse_group(group)))

    def user(self, name: str) -> PasswdEntry | None:
        return next((u for u in self.users if u.name == name), None)

    def user_by_id(self, uid: int) -> PasswdEntry | None:
        return next((u for u in self.users if u.uid == uid), None)

    def group(self, name: str) -> GroupEntry | None:
        return next((g for g in self.groups if g.name == name), None)


@dataclass(frozen=True)
class Identity:
    """Who a RUN step runs as."""

    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary group ids
    home: str


def parse_passwd(text: str) -> Iterator[PasswdEntry]:
    """Entries of a passwd file; malformed lines are skipped, as libc and runc skip them."""
    for fields in _records(text):
        if len(fields) < 7 or not fields[2].isdigit() or not fields[3].isdigit():
            continue
        yield PasswdEntry(fields[0], int(fields[2]), int(fields[3]), fields[5])


def parse_group(text: str) -> Iterator[GroupEntry]:
    for fields in _records(text):
        if len(fields) < 4 or not fields[2].isdigit():
            continue
        members = tuple(m for m in fields[3].split(",") if m)
        yield GroupEntry(fields[0], int(fields[2]), members)


def _records(text: str) -> Iterator[list[str]]:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line.split(":")


def split_user(spec: str) -> tuple[str, str | None]:
    """`user[:group]` -> (user, group or None)."""
    user, sep, group = spec.partition(":")
    return user, (group if sep else None)


def chown_owner(spec: str, accounts: Accounts, *, where: str = "--chown") -> tuple[int, int]:
    """The (uid, gid) a `--chown` value gives."""
    user, group = split_user(spec)
    if user.isdigit():
        uid = gid = int(user)
    elif user:
        entry = accounts.user(user)
        if entry is None:
            raise StepError(f"{where}: unknown user {user!r} (not in the image's /etc/passwd)")
        uid, gid = entry.uid, entry.gid
    else:
        uid = gid = 0
    if group:
        gid = _group_id(group, accounts, where)
    return uid, gid


def run_user(spec: str, accounts: Accounts) -> Identity:
    """The identity `USER spec` runs as (an empty spec is root)."""
    user, group = split_user(spec or "0")
    if user.isdigit():
        uid = int(user)
        entry = accounts.user_by_id(uid)
    else:
        entry = accounts.user(user)
        if entry is None:
            raise StepError(f"unable to find user {user}: no matching entries in passwd file")
        uid = entry.uid
    gid = entry.gid if entry is not None else 0
    home = entry.home if entry is not None and entry.home else "/"
    if group:
        gid = _group_id(group, accounts, "USER")
    name = entry.name if entry is not None else None
    extra = tuple(dict.fromkeys(g.gid for g in accounts.groups
                                if name is not None and name in g.members and g.gid != gid))
    return Identity(uid=uid, gid=gid, groups=extra, home=home)


def _group_id(group: str, accounts: Accounts, where: str) -> int:
    if group.isdigit():
        return int(group)
    entry = accounts.group(group)
    if entry is None:
        raise StepError(f"{where}: unknown group {group!r} (not in the image's /etc/group)")
    return entry.gid
