"""The environment of one stage's walk: every assignment kept once, snapshots for free.

ENV and ARG set variables one at a time and every step keeps the environment it saw. A copy of
the whole mapping per change costs memory quadratic in the ENV lines; here each assignment is
stored once (`EnvHistory`) and a step's environment is a snapshot: the history, a version and a
key count. Variables are never removed, so a snapshot's keys are the first `count` keys in
insertion order (the order a dict copy would have) and a value is found by bisecting that key's
own versions. Snapshots are read-only `Mapping`s equal to the dict they stand for.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping
from itertools import islice
from typing import Any, overload


class EnvHistory:
    """Assignments in order (mutable, local to one walk); `snapshot` freezes the current state."""

    __slots__ = ("_current", "_order", "_values", "_version", "_versions")

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self._order: list[str] = []
        self._versions: dict[str, list[int]] = {}
        self._values: dict[str, list[str]] = {}
        self._current: dict[str, str] = {}
        self._version = 0
        for name, value in (initial or {}).items():
            self[name] = value

    def __setitem__(self, name: str, value: str) -> None:
        self._version += 1
        versions = self._versions.get(name)
        if versions is None:
            self._order.append(name)
            self._versions[name] = [self._version]
            self._values[name] = [value]
        else:
            versions.append(self._version)
            self._values[name].append(value)
        self._current[name] = value

    def __contains__(self, name: object) -> bool:
        return name in self._current

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._current.get(name, default)

    def snapshot(self) -> EnvSnapshot:
        return EnvSnapshot(self, self._version, len(self._order))


class EnvSnapshot(Mapping[str, str]):
    """The environment as it was at one version of an `EnvHistory`."""

    __slots__ = ("_count", "_history", "_version")

    def __init__(self, history: EnvHistory, version: int, count: int) -> None:
        self._history = history
        self._version = version
        self._count = count

    def __getitem__(self, name: str) -> str:
        history = self._history
        if self._version == history._version:  # the latest state: a plain dict lookup
            return history._current[name]
        versions = history._versions[name]
        if versions[-1] <= self._version:
            return history._values[name][-1]
        index = bisect_right(versions, self._version) - 1
        if index < 0:
            raise KeyError(name)
        return history._values[name][index]

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, /, default: str) -> str: ...
    @overload
    def get(self, name: str, /, default: Any) -> Any: ...

    def get(self, name: str, /, default: Any = None) -> Any:
        if self._version == self._history._version:
            return self._history._current.get(name, default)
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        versions = self._history._versions.get(name)
        return versions is not None and versions[0] <= self._version

    def __iter__(self) -> Iterator[str]:
        return islice(self._history._order, self._count)

    def __len__(self) -> int:
        return self._count

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EnvSnapshot) and other._history is self._history:
            return other._version == self._version
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # like dict and MappingProxyType

    def __repr__(self) -> str:
        return f"EnvSnapshot({dict(self)!r})"


class Overlay(Mapping[str, str]):
    """`{**base, **top}` without the copy: what a RUN sees (the environment and proxy args)."""

    __slots__ = ("_base", "_extra", "_top")

    def __init__(self, base: Mapping[str, str], top: Mapping[str, str]) -> None:
        self._base = base
        self._top = top
        self._extra = tuple(name for name in top if name not in base)

    def __getitem__(self, name: str) -> str:
        if name in self._top:
            return self._top[name]
        return self._base[name]

    def __contains__(self, name: object) -> bool:
        return name in self._top or name in self._base

    def __iter__(self) -> Iterator[str]:
        yield from self._base
        yield from self._extra

    def __len__(self) -> int:
        return len(self._base) + len(self._extra)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Overlay({dict(self)!r})"
