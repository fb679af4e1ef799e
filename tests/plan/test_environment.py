"""The walk's environment history: every snapshot behaves exactly like a dict copy taken then."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.plan.environment import EnvHistory, EnvSnapshot, Overlay

names = st.sampled_from(["A", "B", "PATH", "HOME", "x", "é"])
operations = st.lists(st.one_of(st.tuples(names, st.text(max_size=3)), st.just(None)),
                      max_size=40)


def same(snapshot: EnvSnapshot | Overlay, copy: dict[str, str]) -> None:
    assert list(snapshot) == list(copy)
    assert list(snapshot.items()) == list(copy.items())
    assert len(snapshot) == len(copy)
    assert snapshot == copy and copy == snapshot and snapshot == MappingProxyType(copy)
    for name in ("A", "B", "PATH", "HOME", "x", "é", "missing"):
        assert (name in snapshot) is (name in copy)
        assert snapshot.get(name) == copy.get(name)
        assert snapshot.get(name, "d") == copy.get(name, "d")
        if name not in copy:
            with pytest.raises(KeyError):
                snapshot[name]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(names, st.text(max_size=3), max_size=3), operations)
def test_snapshots_are_dict_copies(initial: dict[str, str],
                                   steps: list[tuple[str, str] | None]) -> None:
    """`None` in `steps` takes a snapshot; every snapshot is checked after all the steps."""
    history = EnvHistory(initial)
    model = dict(initial)
    taken = [(history.snapshot(), dict(model))]
    for step in steps:
        if step is None:
            taken.append((history.snapshot(), dict(model)))
        else:
            history[step[0]] = step[1]
            model[step[0]] = step[1]
        assert (step is None or step[0] in history) and history.get("missing") is None
    taken.append((history.snapshot(), dict(model)))
    for snapshot, copy in taken:
        same(snapshot, copy)
    proxies = {"HTTP_PROXY": "p", "A": "proxy-a"}
    for snapshot, copy in taken:
        same(Overlay(snapshot, proxies), {**copy, **proxies})


def test_snapshots_of_one_version_are_equal_and_unhashable() -> None:
    history = EnvHistory({"A": "1"})
    first, again = history.snapshot(), history.snapshot()
    history["A"] = "2"
    assert first == again and first != history.snapshot()
    assert repr(first) == "EnvSnapshot({'A': '1'})"
    with pytest.raises(TypeError):
        hash(first)
