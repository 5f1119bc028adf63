"""The declarative mapping from a system's JSON record to `SourceFacts` (no I/O).

A manifest's `[mapping]` table names, for each fact the system provides, where
its value lies in one record of the system's answer and how to read it. The
table is compiled once, when the manifest is loaded (every mistake in it is a
`MappingSpecError` naming the key), into a `RecordMapper` that turns a decoded
JSON record into facts or raises `ShapeError` naming the JSON path, never the
value.

A value is given as a JSON path (``"person.surname"``), or a table:

- ``path = "a.b"``: the value at that path (dots step into objects);
- ``const = value``: a constant;
- ``parts = [spec, ...]``: a list of strings from several places, nulls
  skipped, lists flattened (address lines, given names);
- ``split = true | "sep"``: split a string into words (or on `sep`);
- ``join = "sep"``: join a list of strings into one string;
- ``map = { "Y" = true, "N" = false }``: enumerations; a value not in the
  map is malformed (never guessed);
- ``date_format = "%d/%m/%Y"``: a date in another format than ISO 8601;
- ``required = true``: the record is malformed without it.

An object fact (name, address, school, practice) is a table of its own
fields, with an optional ``from`` path to the JSON object it is read from; a
list fact (carers, services) needs ``from``, the path of the JSON array, and
reads each item with its fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from connectors.shape import ShapeError
from gateway.core.facts import (
    Address,
    Carer,
    Organisation,
    PersonName,
    ProtectionStatus,
    Service,
    SourceFacts,
)
from gateway.core.nhs import is_valid_nhs_number

__all__ = [
    "FACT_NAMES",
    "MappingSpecError",
    "RecordMapper",
    "compile_mapping",
]

Leaf = Literal["text", "texts", "bool", "date", "nhs", "gender"]
Reader = Callable[[object, str | None], Any]
"""Reads a value from a record: ``read(record, where)``. `where` names the record in error
messages (``"results[]"``); None reads without naming (no message text is built), for the
first, fast pass of `RecordMapper.facts`, which reads again naming on any `ShapeError`."""

_GENDERS = ("male", "female", "other", "unknown")
_ISO_LEN = len("YYYY-MM-DD")


class MappingSpecError(ValueError):
    """The mapping table is wrong; the message names the key (``mapping.services.kind``)."""


@dataclass(frozen=True, slots=True)
class _Obj:
    """An object fact: its fields, the dataclass built from them, those it cannot lack."""

    fields: Mapping[str, Leaf | _Obj]
    build: Callable[..., Any]
    required: frozenset[str] = frozenset()


_ADDRESS = _Obj({"lines": "texts", "postcode": "text"}, lambda lines=(), postcode=None:
                Address(tuple(lines), postcode))
_NAME = _Obj({"given": "texts", "family": "text"},
             lambda given=(), family=None: PersonName(tuple(given), family), frozenset({"family"}))
_ORGANISATION = _Obj({"name": "text", "code": "text", "phone": "text", "address": _ADDRESS},
                     Organisation, frozenset({"name"}))
_CARER = _Obj({"name": _NAME, "relationship": "text", "phone": "text", "address": _ADDRESS},
              Carer, frozenset({"name"}))
_SERVICE = _Obj({"kind": "text", "name": "text", "sensitive": "bool", "consent_recorded": "bool",
                 "contact": "text"}, Service,
                frozenset({"kind", "name", "sensitive", "consent_recorded"}))
_PROTECTION = _Obj({"child_protection_plan": "bool", "looked_after": "bool",
                    "responsible_authority": "text"}, ProtectionStatus,
                   frozenset({"child_protection_plan", "looked_after"}))

# The shape of each kind of value a `SourceFacts` attribute may hold, by its annotation.
_SHAPES: dict[str, Leaf | _Obj | tuple[_Obj]] = {
    "str": "text", "dt.date": "date", "bool": "bool", "PersonName": _NAME, "Address": _ADDRESS,
    "Organisation": _ORGANISATION, "tuple[Carer, ...]": (_CARER,),
    "tuple[Service, ...]": (_SERVICE,), "tuple[str, ...]": "texts",
    "ProtectionStatus": _PROTECTION,
}
# Facts whose values are narrower than their Python type.
_NARROWER: dict[str, Leaf] = {"nhs_number": "nhs", "gender": "gender"}


def _fact_shapes() -> dict[str, Leaf | _Obj | tuple[_Obj]]:
    """Every fact a record can state, with its shape, read off `SourceFacts` itself (so a
    new fact there is mappable by every manifest without a change here)."""
    shapes: dict[str, Leaf | _Obj | tuple[_Obj]] = {}
    for fact in dataclasses.fields(SourceFacts):
        annotation = str(fact.type).removesuffix(" | None")
        shapes[fact.name] = _NARROWER.get(fact.name) or _SHAPES[annotation]
    return shapes


_FACTS = _fact_shapes()
FACT_NAMES = frozenset(_FACTS) - {"nhs_number"}
"""The facts a system may declare it provides."""

_LEAF_KEYS = {"path", "const", "parts", "split", "join", "map", "date_format", "required"}


def _at(record: object, path: tuple[str, ...], where: str | None) -> object:
    value = record
    for step in path:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: expected an object")
        value = value.get(step)
    return value


def _text(value: object, where: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        raise ShapeError(f"{where}: expected a non-empty string")
    return value


def _texts(value: object, where: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if not isinstance(value, list):
        raise ShapeError(f"{where}: expected an array of strings")
    texts = []
    for item in value:
        if item is None or item == "":
            continue
        if not isinstance(item, str) or not item.strip():
            raise ShapeError(f"{where}[]: expected a non-empty string")  # as `_text` says
        texts.append(item)
    return tuple(texts)


def _bool(value: object, where: str | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ShapeError(f"{where}: expected true or false")


def _nhs(value: object, where: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_valid_nhs_number(value):
        raise ShapeError(f"{where}: expected a valid NHS number")
    return value


def _gender(value: object, where: str | None) -> str | None:
    text = _text(value, where)
    if text is not None and text not in _GENDERS:
        raise ShapeError(f"{where}: expected male, female, other or unknown")
    return text


_DAY_MONTH_YEAR = re.compile(r"%([dmY])([^%\w\s])%([dmY])\2%([dmY])")


def _numeric_date(date_format: str) -> Callable[[str], dt.date | None] | None:
    """For a format of %d, %m and %Y once each between one punctuation mark ("%d/%m/%Y"), a
    parser of its zero-padded ASCII form without `strptime`'s regex machinery; None for any
    other format. The parser answers None for a value of any other form (`strptime` decides
    it) and raises `ValueError` for a date that does not exist, as `strptime` does."""
    shape = _DAY_MONTH_YEAR.fullmatch(date_format)
    if shape is None:
        return None
    order = (shape[1], shape[3], shape[4])
    if sorted(order) != ["Y", "d", "m"]:
        return None
    sep = re.escape(shape[2])
    width = {"d": 2, "m": 2, "Y": 4}
    value = re.compile(sep.join(f"([0-9]{{{width[part]}}})" for part in order))
    day, month, year = (order.index(part) + 1 for part in "dmY")

    def parse(text: str) -> dt.date | None:
        found = value.fullmatch(text)
        if found is None:
            return None
        return dt.date(int(found[year]), int(found[month]), int(found[day]))

    return parse


def _date_reader(date_format: str | None) -> Reader:
    expected = "YYYY-MM-DD" if date_format is None else date_format
    numeric = None if date_format is None else _numeric_date(date_format)

    def read(value: object, where: str | None) -> dt.date | None:
        if value is None:
            return None
        # YYYY-MM-DD exactly: fromisoformat alone would take "20150102" too.
        iso_ok = date_format is not None or (isinstance(value, str) and len(value) == _ISO_LEN)
        if not isinstance(value, str) or not iso_ok:
            raise ShapeError(f"{where}: expected a date, {expected}")
        try:
            if date_format is None:
                return dt.date.fromisoformat(value)
            if numeric is not None and (date := numeric(value)) is not None:
                return date
            return dt.datetime.strptime(value, date_format).date()  # noqa: DTZ007 -- a date
        except ValueError:
            raise ShapeError(f"{where}: expected a date, {expected}") from None

    return read


_READERS: dict[Leaf, Reader] = {"text": _text, "texts": _texts, "bool": _bool, "nhs": _nhs,
                                "gender": _gender}


def _path(raw: object, key: str) -> tuple[str, ...]:
    if not isinstance(raw, str) or not raw or any(not part for part in raw.split(".")):
        raise MappingSpecError(f"{key}: a path is dot-separated names, e.g. \"person.surname\"")
    return tuple(raw.split("."))


def _check_constant(value: object, leaf: Leaf, key: str) -> None:
    try:
        reader = _date_reader(None) if leaf == "date" else _READERS[leaf]
        reader(value, key)
    except ShapeError as exc:
        raise MappingSpecError(f"{key}: constant does not fit the fact ({exc})") from None


def _mapped(table: Mapping[str, object], leaf: Leaf, key: str) -> Reader:
    mapping = table["map"]
    if not isinstance(mapping, dict) or not mapping:
        raise MappingSpecError(f"{key}.map: expected a table of source value = fact value")
    for source, target in mapping.items():
        _check_constant(target, leaf, f"{key}.map.{source}")
    choices = ", ".join(sorted(mapping))

    def translate(value: object, where: str | None) -> object:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int) or str(value) not in mapping:
            raise ShapeError(f"{where}: expected one of {choices}")
        return mapping[str(value)]

    return translate


def _source(table: Mapping[str, object], key: str) -> Reader:
    """Where a leaf's raw value comes from: a path, a constant, or several parts."""
    given = [name for name in ("path", "const", "parts") if name in table]
    if len(given) != 1:
        raise MappingSpecError(f"{key}: give exactly one of path, const or parts")
    if "const" in table:
        constant = table["const"]
        return lambda record, where: constant
    if "path" in table:
        # Given the place (`where` and the path) by `_leaf`, which names it once.
        return _path_reader(_path(table["path"], f"{key}.path"))
    parts = table["parts"]
    if not isinstance(parts, list) or not parts:
        raise MappingSpecError(f"{key}.parts: expected a list of values")
    readers = [_leaf(part, "texts", f"{key}.parts[{n}]") for n, part in enumerate(parts)]

    def collect(record: object, where: str | None) -> object:
        lines: list[str] = []
        for read in readers:
            value = read(record, where)
            if value is not None:
                lines.extend(value)
        return lines

    return collect


def _leaf(spec: object, leaf: Leaf, key: str) -> Reader:
    """Compile one value spec for a fact of shape `leaf`."""
    table: Mapping[str, object] = {"path": spec} if isinstance(spec, str) else _table(spec, key)
    unknown = sorted(set(table) - _LEAF_KEYS)
    if unknown:
        raise MappingSpecError(f"{key}: unknown key {unknown[0]!r}")
    source = _source(table, key)
    split, join = table.get("split"), table.get("join")
    if split is not None and not (split is True or (isinstance(split, str) and split)):
        raise MappingSpecError(f"{key}.split: expected true or a separator")
    if join is not None and not isinstance(join, str):
        raise MappingSpecError(f"{key}.join: expected a separator string")
    date_format = table.get("date_format")
    if date_format is not None and (leaf != "date" or not isinstance(date_format, str)):
        raise MappingSpecError(f"{key}.date_format: only a date fact takes a format string")
    translate = _mapped(table, leaf, key) if "map" in table else None
    if "const" in table:
        _check_constant(table["const"], leaf, f"{key}.const")
    required = table.get("required", False)
    if not isinstance(required, bool):
        raise MappingSpecError(f"{key}.required: expected true or false")
    reader = _date_reader(date_format) if leaf == "date" else _READERS[leaf]
    dotted = table.get("path")
    if dotted is not None and split is None and join is None and translate is None:
        # The common case: the value at a path, read as the fact's kind.
        return _path_leaf(_path(dotted, f"{key}.path"), reader, required=required)
    if "parts" in table and leaf == "texts" and split is None and join is None \
            and translate is None and not required:
        # Lines from several places: each part was read as texts already, so together
        # they are the fact's value as they stand.
        return lambda record, where: tuple(source(record, where))

    def read(record: object, where: str | None) -> object:
        place = where if where is None or dotted is None else f"{where}.{dotted}"
        value = source(record, place)
        if split is not None:
            text = _text(value, place)
            value = None if text is None else text.split(None if split is True else split)
        if join is not None:
            lines = _texts(value, place)
            value = None if not lines else join.join(lines)
        if translate is not None:
            value = translate(value, place)
        result = reader(value, place)
        if result is None and required:
            raise ShapeError(f"{place}: required, but absent")
        return result

    return read


def _path_leaf(path: tuple[str, ...], reader: Reader, *, required: bool) -> Reader:
    """The value at `path` of a record, read by `reader`: `_leaf`'s common case in one call
    (one step without `_at`'s loop, and no reader for an absent value: each reads None as
    None)."""
    dotted = ".".join(path)
    step = path[0] if len(path) == 1 else None

    def read(record: object, where: str | None) -> object:
        place = None if where is None else f"{where}.{dotted}"
        if step is None:
            value = _at(record, path, place)
        elif isinstance(record, dict):
            value = record.get(step)
        elif record is None:
            value = None
        else:
            raise ShapeError(f"{place}: expected an object")
        if value is None:
            if required:
                raise ShapeError(f"{place}: required, but absent")
            return None
        result = reader(value, place)
        if result is None and required:
            raise ShapeError(f"{place}: required, but absent")
        return result

    return read


def _path_reader(path: tuple[str, ...]) -> Reader:
    """The value at `path` of a record (`_at`; one step without the loop), given the place
    the path names."""
    if len(path) != 1:
        return lambda record, place: _at(record, path, place)
    step = path[0]

    def at(record: object, place: str | None) -> object:
        if isinstance(record, dict):
            return record.get(step)
        if record is None:
            return None
        raise ShapeError(f"{place}: expected an object")

    return at


def _table(spec: object, key: str) -> Mapping[str, object]:
    if not isinstance(spec, dict):
        raise MappingSpecError(f"{key}: expected a path or a table")
    return spec


def _object(spec: object, shape: _Obj, key: str) -> Reader:
    """Compile an object fact: each field read relative to the object (`from`)."""
    table = _table(spec, key)
    unknown = sorted(set(table) - set(shape.fields) - {"from"})
    if unknown:
        raise MappingSpecError(f"{key}: unknown key {unknown[0]!r} (expected "
                               f"{', '.join(['from', *shape.fields])})")
    missing = sorted(shape.required - set(table))
    if missing:
        raise MappingSpecError(f"{key}: {missing[0]} must be mapped")
    base = _path(table["from"], f"{key}.from") if "from" in table else ()
    readers = {name: _compile(table[name], shape.fields[name], f"{key}.{name}")
               for name in shape.fields if name in table}
    # Where a required field is read from, to name in the error (its own JSON path).
    places = {name: spec if isinstance(spec, str) else spec.get("path", name)
              for name, spec in table.items() if isinstance(spec, str | dict)}

    dotted = ".".join(base)
    fields = tuple(readers.items())
    required = tuple(shape.required)  # the frozenset's own order, as before
    build = shape.build

    def read(record: object, where: str | None) -> object:
        if base:
            if where is not None:
                where = f"{where}.{dotted}"
            record = _at(record, base, where)
            if record is None:
                return None
            if not isinstance(record, dict):
                raise ShapeError(f"{where}: expected an object")
        values = {}
        empty = True
        for name, reader in fields:
            value = reader(record, where)
            if value is not None:
                values[name] = value
                # An empty tuple states nothing. Not `value != ()`: that asks a fact
                # object's `__eq__` first.
                if empty and (type(value) is not tuple or value):
                    empty = False
        if empty:
            return None
        for name in required:
            if name not in values:
                raise ShapeError(f"{where}.{places[name]}: required, but absent")
        return build(**values)

    return read


def _items(spec: object, shape: _Obj, key: str) -> Reader:
    """Compile a list fact: every item of the array at `from`, read as `shape`."""
    table = _table(spec, key)
    if "from" not in table:
        raise MappingSpecError(f"{key}.from: a list needs the path of its JSON array")
    base = _path(table["from"], f"{key}.from")
    item = _object({k: v for k, v in table.items() if k != "from"}, shape, key)

    dotted = ".".join(base)

    def read(record: object, where: str | None) -> object:
        if where is not None:
            where = f"{where}.{dotted}"
        value = _at(record, base, where)
        if value is None:
            return None
        if not isinstance(value, list):
            raise ShapeError(f"{where}: expected an array")
        each = None if where is None else f"{where}[]"
        items = [item(entry, each) for entry in value]
        return tuple([entry for entry in items if entry is not None])

    return read


def _compile(spec: object, shape: Leaf | _Obj | tuple[_Obj], key: str) -> Reader:
    if isinstance(shape, tuple):
        return _items(spec, shape[0], key)
    if isinstance(shape, _Obj):
        return _object(spec, shape, key)
    return _leaf(spec, shape, key)


@dataclass(frozen=True, slots=True)
class RecordMapper:
    """Reads one JSON record into `SourceFacts`, as a manifest's mapping says."""

    readers: Mapping[str, Reader]
    label: str
    """How error messages name a record (``"results[]"``)."""

    def facts(self, record: object) -> SourceFacts:
        """The facts of `record`; raises `ShapeError` naming the JSON path at fault."""
        if not isinstance(record, dict):
            raise ShapeError(f"{self.label}: expected an object")
        try:
            # Read first without naming places: no message text is built on the way.
            values = {name: read(record, None) for name, read in self.readers.items()}
        except ShapeError:
            # Read again naming each place, to raise the same error with its JSON path.
            values = {name: read(record, self.label) for name, read in self.readers.items()}
        if values.get("nhs_number") is None:
            raise ShapeError(f"{self.label}: the NHS number is required")
        return SourceFacts(**values)

    def fact(self, record: object, name: str) -> object:
        """One fact of `record` alone (the conformance kit checks flags one by one)."""
        return self.readers[name](record, self.label)


def compile_mapping(table: Mapping[str, object], provides: frozenset[str], *,
                    explicit: frozenset[str] = frozenset(), label: str = "record",
                    ) -> RecordMapper:
    """Compile a `[mapping]` table for a system that provides `provides`.

    `explicit` names the facts every record must state (``shielded`` for a
    system that records shielding): they are required whatever the table says.
    Raises `MappingSpecError` naming the first wrong key.
    """
    unknown = sorted(set(table) - set(_FACTS))
    if unknown:
        raise MappingSpecError(f"mapping.{unknown[0]}: not a fact (expected one of "
                               f"{', '.join(sorted(_FACTS))})")
    undeclared = sorted(set(table) - provides - {"nhs_number"})
    if undeclared:
        raise MappingSpecError(f"mapping.{undeclared[0]}: mapped but not in provides")
    unmapped = sorted((provides | {"nhs_number"}) - set(table))
    if unmapped:
        raise MappingSpecError(f"mapping.{unmapped[0]}: provided but not mapped")
    readers: dict[str, Reader] = {}
    for name, spec in table.items():
        if name in explicit or name == "nhs_number":
            spec = {"path": spec, "required": True} if isinstance(spec, str) else {
                **_table(spec, f"mapping.{name}"), "required": True}
        readers[name] = _compile(spec, _FACTS[name], f"mapping.{name}")
    return RecordMapper(readers, label)
