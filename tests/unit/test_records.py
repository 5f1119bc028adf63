"""`fast_init`: the same objects as dataclass's own `__init__`, built more cheaply."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import importlib
import inspect
import pickle
import pkgutil
from dataclasses import InitVar, dataclass, field
from typing import Any

import pytest

import connectors
import gateway
import resolvers
from gateway.accountability.audit.events import AuditEvent
from gateway.core.records import fast_init


def _fields() -> type:
    """A fresh class body each call, so that both dataclasses below start from the same."""

    class Sample:
        name: str
        count: int = 3
        tags: list[str] = field(default_factory=list)
        note: str | None = field(default=None, kw_only=True)

    return Sample


Twin: Any = dataclass(frozen=True, slots=True)(_fields())
"""As dataclass alone builds it."""
Sample: Any = fast_init(dataclass(frozen=True, slots=True)(_fields()))


@fast_init
@dataclass(frozen=True, slots=True)
class Checked:
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")
        object.__setattr__(self, "value", self.value * 2)


def _state(obj: object) -> tuple[object, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))  # type: ignore[arg-type]  # any dataclass


@pytest.mark.parametrize(("args", "kwargs"), [
    (("a",), {}),
    (("a", 5), {}),
    (("a", 5, ["x"]), {"note": "n"}),
    ((), {"name": "a", "tags": ["y"], "count": 0}),
])
def test_it_builds_what_dataclass_builds(args: tuple[object, ...],
                                         kwargs: dict[str, object]) -> None:
    ours, theirs = Sample(*args, **kwargs), Twin(*args, **kwargs)  # type: ignore[arg-type]  # a table
    assert _state(ours) == _state(theirs)
    assert repr(ours) == repr(theirs)


def test_a_given_value_is_stored_as_the_same_object() -> None:
    tags = ["x"]
    assert Sample("a", 1, tags).tags is tags


def test_a_factory_runs_once_per_object_and_only_when_no_value_is_given() -> None:
    made: list[list[str]] = []

    def new_tags() -> list[str]:
        made.append([])
        return made[-1]

    @fast_init
    @dataclass(frozen=True, slots=True)
    class Counted:
        tags: list[str] = field(default_factory=new_tags)

    first, second, given = Counted(), Counted(), Counted(["x"])
    assert len(made) == 2
    assert first.tags is made[0]
    assert second.tags is made[1]
    assert given.tags == ["x"]


def test_the_signature_is_dataclass_s() -> None:
    assert str(inspect.signature(Sample)) == str(inspect.signature(Twin))
    assert Sample.__init__.__qualname__ == "_fields.<locals>.Sample.__init__"


def test_the_object_stays_frozen_hashable_and_comparable() -> None:
    obj = Checked(2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.value = 5  # type: ignore[misc]  # the error under test
    with pytest.raises(dataclasses.FrozenInstanceError):
        del obj.value  # type: ignore[misc]  # the error under test
    assert obj == Checked(2)
    assert hash(obj) == hash(Checked(2))
    assert obj != Checked(3)


def test_post_init_runs_after_the_fields_are_set() -> None:
    assert Checked(2).value == 4
    with pytest.raises(ValueError, match="negative"):
        Checked(-1)


@pytest.mark.parametrize(("args", "kwargs"), [
    ((), {}),
    (("a", 1, [], "n"), {}),
    (("a",), {"colour": "red"}),
    (("a",), {"name": "b"}),
])
def test_a_wrong_call_fails_as_dataclass_s_does(args: tuple[object, ...],
                                                kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        Twin(*args, **kwargs)  # type: ignore[arg-type]  # wrong calls on purpose
    with pytest.raises(TypeError):
        Sample(*args, **kwargs)  # type: ignore[arg-type]  # wrong calls on purpose


def test_replace_copy_and_pickle_keep_working() -> None:
    obj = Sample("a", 2, ["t"], note="n")
    assert dataclasses.replace(obj, count=7) == Sample("a", 7, ["t"], note="n")
    assert copy.copy(obj) == obj
    assert copy.deepcopy(obj) == obj
    stored = Checked(2)  # a class pickle can find by name; its state, not __init__ again
    assert pickle.loads(pickle.dumps(stored)) == stored  # noqa: S301  (our own bytes)


def _refused(cls: type) -> str:
    with pytest.raises(TypeError) as refused:
        fast_init(cls)
    return str(refused.value)


def test_it_refuses_what_it_cannot_build_exactly() -> None:
    class Plain:
        value: int

    @dataclass(slots=True)
    class Mutable:
        value: int

    @dataclass(frozen=True)
    class Unslotted:
        value: int

    @dataclass(frozen=True, slots=True)
    class Hidden:
        value: int
        cached: int = field(default=0, init=False)

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        value: int
        scale: InitVar[int] = 1

    @dataclass(frozen=True, slots=True)
    class Shadowing:
        self: int  # type: ignore[misc]  # the clash under test

    @dataclass(frozen=True, slots=True, init=False)
    class OwnInit:
        value: int

        def __init__(self) -> None:
            object.__setattr__(self, "value", 1)

    assert "not a dataclass" in _refused(Plain)
    assert "not frozen" in _refused(Mutable)
    assert "no slots" in _refused(Unslotted)
    assert "init=False" in _refused(Hidden)
    assert "signature would change" in _refused(WithInitVar)
    assert "a field named 'self'" in _refused(Shadowing)
    assert "no __init__" in _refused(OwnInit)


def _project_classes() -> list[type]:
    found: dict[str, type] = {}
    for package in (gateway, resolvers, connectors):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".simulators" in module.name or module.name.startswith("gateway.web.static"):
                continue
            for value in vars(importlib.import_module(module.name)).values():
                init = getattr(value, "__init__", None) if isinstance(value, type) else None
                if init is not None and hasattr(init, "dataclass_init"):
                    found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


PROJECT_CLASSES = _project_classes()


def test_the_request_path_s_classes_use_it() -> None:
    names = {cls.__qualname__ for cls in PROJECT_CLASSES}
    assert {"SourceFacts", "Provenance", "SourceOutcome", "AuditEvent", "Decision"} <= names


def _sample_arguments(cls: type) -> dict[str, object]:
    if cls is AuditEvent:
        plus_one = dt.timezone(dt.timedelta(hours=1))  # __post_init__ moves it to UTC
        return {"at": dt.datetime(2026, 1, 2, 9, tzinfo=plus_one), "request_id": "r",
                "action": "child.read", "outcome": "released", "subject": "s",
                "organisation": None, "client_id": "c", "purpose": None, "case_reference": None,
                "child": None}
    assert not hasattr(cls, "__post_init__"), f"give {cls.__qualname__} valid arguments here"
    return {f.name: object() for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


@pytest.mark.parametrize("cls", PROJECT_CLASSES, ids=lambda cls: cls.__qualname__)
def test_each_project_class_gets_the_objects_dataclass_gives(cls: type) -> None:
    arguments = _sample_arguments(cls)
    ours = cls(**arguments)
    theirs = object.__new__(cls)
    cls.__init__.dataclass_init(theirs, **arguments)  # type: ignore[misc]  # fast_init's attribute
    for name, (mine, its) in zip([f.name for f in dataclasses.fields(cls)],
                                 zip(_state(ours), _state(theirs), strict=True), strict=True):
        assert mine is its or (type(mine) is type(its) and repr(mine) == repr(its)), name
    original = cls.__init__.dataclass_init  # type: ignore[misc]  # fast_init's attribute
    assert str(inspect.signature(cls.__init__)) == str(inspect.signature(original))
