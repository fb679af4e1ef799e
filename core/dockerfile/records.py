"""Faster construction of frozen dataclasses, for the types built by the ten thousand.

A frozen dataclass's generated `__init__` sets each field with `object.__setattr__`, which costs
about three times a plain store: parse-tree nodes, typed instructions and plan steps spent a
sixth of the front end's time there. `fast_init` gives such a class an `__init__` with the same
parameters and defaults that stores the fields in the instance dictionary directly;
`fast_constructor` makes such a function for a class defined elsewhere, without changing it.
Nothing else changes: the instances are equal, hash and print the same, and stay frozen
(assigning to a field still raises `FrozenInstanceError`).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, Final, TypeVar

_T = TypeVar("_T")


class _Factory:
    """Default of a parameter whose field has a `default_factory` (as in dataclasses)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY: Final = _Factory()


def fast_init(cls: type[_T]) -> type[_T]:
    """Replace the generated `__init__` of frozen dataclass `cls` by a faster equivalent.

    Only for classes whose `__init__` does nothing but set the fields (no `__post_init__`, no
    `InitVar` or `init=False` fields, no `__slots__`); raises TypeError for any other class.
    """
    cls.__init__ = _compile(cls, construct=False)  # type: ignore[method-assign]
    return cls


def fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A function taking `cls`'s parameters and building the instance as `fast_init` would,
    for a class defined elsewhere (left unchanged); `cls` itself if `fast_init` refuses it."""
    try:
        return _compile(cls, construct=True)  # type: ignore[no-any-return]
    except TypeError:
        return cls


def _compile(cls: type, *, construct: bool) -> Any:
    """`__init__(self, <fields>)`, or with `construct` a function of the fields alone that makes
    the instance and returns it; checked to take the parameters the generated one takes."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or not params.init:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass with an __init__")
    if hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}.__init__ does more than set fields")
    fields = dataclasses.fields(cls)
    function = _source_function(cls, fields, construct=construct)
    if _parameters(function)[0 if construct else 1:] != _parameters(cls) or \
            not all(field.init for field in fields):
        raise TypeError(f"{cls.__name__}.__init__ takes parameters that are not fields")
    return function


def _parameters(function: Any) -> list[tuple[str, Any, Any]]:
    """Name, kind and default of each parameter (factory defaults all alike)."""
    return [(param.name, param.kind,
             "<factory>" if repr(param.default) == "<factory>" else param.default)
            for param in inspect.signature(function).parameters.values()]


def _source_function(cls: type, fields: tuple[dataclasses.Field[Any], ...], *,
                     construct: bool) -> Any:
    """Compile the function from the field names, as dataclasses does (its own names are
    spelled `__record_..__` so that no field can shadow them)."""
    namespace: dict[str, Any] = {"__record_factory__": _FACTORY,
                                 "__record_new__": object.__new__, "__record_cls__": cls}
    params = [] if construct else ["__record_self__"]
    body = ["    __record_self__ = __record_new__(__record_cls__)"] if construct else []
    body.append("    __record_dict__ = __record_self__.__dict__")
    keyword = [field for field in fields if field.kw_only]
    for field in (*(field for field in fields if not field.kw_only), *keyword):
        if keyword and field is keyword[0]:
            params.append("*")
        param, value = _field_code(field, namespace)
        params.append(param)
        body.append(f"    __record_dict__[{field.name!r}] = {value}")
    if construct:
        body.append("    return __record_self__")
    name = "new" if construct else "__init__"
    exec(f"def {name}({', '.join(params)}):\n" + "\n".join(body) + "\n", namespace)
    function = namespace[name]
    function.__qualname__ = f"{cls.__qualname__}.{name}"
    function.__annotations__ = {field.name: field.type for field in fields}
    function.__annotations__["return"] = cls if construct else None
    return function


def _field_code(field: dataclasses.Field[Any], namespace: dict[str, Any]) -> tuple[str, str]:
    """The parameter for `field` and the expression of its value; defaults go in `namespace`."""
    name = field.name
    if field.default is not dataclasses.MISSING:
        namespace[f"__record_default_{name}__"] = field.default
        return f"{name}=__record_default_{name}__", name
    if field.default_factory is not dataclasses.MISSING:
        namespace[f"__record_factory_{name}__"] = field.default_factory
        return (f"{name}=__record_factory__",
                f"__record_factory_{name}__() if {name} is __record_factory__ else {name}")
    return name, name
