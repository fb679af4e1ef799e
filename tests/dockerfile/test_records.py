"""`fast_init` and `fast_constructor` build the same frozen dataclass instances, faster."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import InitVar, dataclass, field
from typing import ClassVar

import pytest

from core.dockerfile import ast, instructions, mounts
from core.dockerfile.records import fast_constructor, fast_init
from core.errors import SourceSpan
from core.plan import model


@dataclass(frozen=True)
class Plain:
    name: str
    items: tuple[str, ...] = ()
    extra: list[str] = field(default_factory=list)
    count: int = field(default=0, kw_only=True)


@fast_init
@dataclass(frozen=True)
class Fast:
    name: str
    items: tuple[str, ...] = ()
    extra: list[str] = field(default_factory=list)
    count: int = field(default=0, kw_only=True)


@dataclass(frozen=True, kw_only=True)
class PlainKeywords:
    kind: ClassVar[str] = "k"
    first: str
    second: int = 2


@fast_init
@dataclass(frozen=True, kw_only=True)
class Keywords:
    kind: ClassVar[str] = "k"
    first: str
    second: int = 2


def _fields(instance: object) -> dict[str, object]:
    return {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)}  # type: ignore[arg-type]


def test_same_parameters_as_the_generated_init() -> None:
    assert str(inspect.signature(Fast)) == str(inspect.signature(Plain))
    assert str(inspect.signature(Keywords)) == str(inspect.signature(PlainKeywords))
    assert hash(Keywords(first="a")) == hash(PlainKeywords(first="a"))


@pytest.mark.parametrize(("args", "kwargs"), [
    (("a",), {}), (("a", ("x",)), {}), (("a",), {"extra": ["e"], "count": 3}),
    ((), {"name": "n", "items": ("i",)}),
])
def test_same_instances(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    fast, plain = Fast(*args, **kwargs), Plain(*args, **kwargs)  # type: ignore[arg-type]
    assert _fields(fast) == _fields(plain)
    assert repr(fast) == repr(plain).replace("Plain", "Fast")
    assert fast == Fast(*args, **kwargs)  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(fast)) == fast
    assert dataclasses.replace(fast, name="z").name == "z"


def test_factories_make_fresh_values_and_instances_stay_frozen() -> None:
    first, second = Fast("a"), Fast("a")
    assert first.extra == [] and first.extra is not second.extra
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.name = "b"  # type: ignore[misc]


def test_wrong_calls_fail_as_before() -> None:
    with pytest.raises(TypeError):
        Fast()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Fast("a", ("x",), [], 3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Keywords("a")  # type: ignore[call-arg]
    assert Keywords(first="a").second == 2


def test_classes_doing_more_than_setting_fields_are_refused() -> None:
    @dataclass(frozen=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class WithInitVar:
        value: int
        seed: InitVar[int] = 0

    @dataclass
    class Mutable:
        value: int

    for cls in (Checked, WithInitVar, Mutable):
        with pytest.raises(TypeError):
            fast_init(cls)
        assert fast_constructor(cls) is cls


def test_fast_constructor_leaves_the_class_alone() -> None:
    init = SourceSpan.__init__
    build = fast_constructor(SourceSpan)
    assert build("Dockerfile", 1, 2) == SourceSpan("Dockerfile", 1, 2)
    assert build("Dockerfile", 1, 2, column=3) == SourceSpan("Dockerfile", 1, 2, 3)
    assert type(build("f", 1, 1)) is SourceSpan
    assert SourceSpan.__init__ is init


@pytest.mark.parametrize("cls", [
    ast.Heredoc, ast.Node, mounts.Mount, instructions.KeyValue, instructions.ArgDefinition,
    instructions.RunInstruction, instructions.CopyInstruction, instructions.AddInstruction,
    instructions.OnbuildInstruction, model.Step, model.ArgValue,
])
def test_library_records_keep_their_signature(cls: type) -> None:
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"  # type: ignore[misc]
    fields = dataclasses.fields(cls)
    expected = [(f.name, inspect.Parameter.KEYWORD_ONLY if f.kw_only else
                 inspect.Parameter.POSITIONAL_OR_KEYWORD)
                for f in sorted(fields, key=lambda f: bool(f.kw_only))]
    assert [(p.name, p.kind) for p in inspect.signature(cls).parameters.values()] == expected
