"""The canonical schema of a scenario: the shared names, types and units.

Every node maps its local columns to these fields; models only ever see
canonical fields, so nodes with different local standards train together.

A schema may also declare derived features (`[[derived]]`: calendar features
of a date, lags within an entity) that every node computes itself after
harmonisation (`federation.data.derived`). After validation each derived
entry is also an ordinary float field at the end of `field`, so
`feature_names`, `by_name`, encoding, Describe and tasks name it like any
other; `declared` holds only the fields read from local columns, and a dump
(`model_dump`) writes `field` as declared, so it validates back to the same
schema.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pint
from pydantic import Field, ValidationError, field_serializer, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from federation.config import StrictModel, load_toml

FieldType = Literal["float", "int", "category", "bool", "date", "string"]
FEATURE_TYPES = frozenset({"float", "int", "category", "bool"})
TARGET_TYPES = frozenset({"bool", "float", "int"})  # bool: binary classification; float, int: regression
CALENDAR_KINDS = ("day_of_week_sin", "day_of_week_cos", "month_sin", "month_cos")
DERIVED_KINDS = (*CALENDAR_KINDS, "lag")
LAG_SOURCE_TYPES = frozenset({"float", "int", "bool"})
ENTITY_TYPES = frozenset({"string", "category", "int"})


class SchemaField(StrictModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: FieldType
    unit: str = ""
    description: str = ""
    codes: tuple[str, ...] = ()
    required: bool = True
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SchemaField:
        if self.type == "category" and not self.codes:
            raise ValueError(f"category field {self.name!r} needs a list of codes")
        if self.type != "category" and self.codes:
            raise ValueError(f"only category fields take codes, {self.name!r} is {self.type}")
        if (self.min is not None or self.max is not None) and self.type not in ("float", "int"):
            raise ValueError(f"only numeric fields take a range, {self.name!r} is {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"field {self.name!r}: min {self.min} is above max {self.max}")
        if self.unit:
            try:
                units().parse_units(self.unit)
            except Exception as error:  # noqa: BLE001 - pint raises several types for bad units
                raise ValueError(f"field {self.name!r}: unit {self.unit!r} is not understood ({error})") from None
        return self


class DerivedField(StrictModel):
    """One `[[derived]]` entry: a feature each node computes from its own harmonised records.

    `Schema` checks it against the fields (it needs their types), so every
    problem of every entry is reported at once.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: str
    source: str
    entity: str | None = None
    order: str | None = None
    periods: int | None = None
    description: str = ""

    @property
    def lag_periods(self) -> int:
        """How many of the entity's records back a lag looks (1 unless the entry says otherwise)."""
        return 1 if self.periods is None else self.periods


class Schema(StrictModel):
    name: str
    description: str = ""
    target: str | None = None  # None: a party that holds features only (vertical federation)
    field: tuple[SchemaField, ...]
    derived: tuple[DerivedField, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Schema:
        names = [f.name for f in self.field]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"fields defined twice: {duplicates}")
        if self.target is not None and self.target not in names:
            raise ValueError(f"the target {self.target!r} is not one of the fields")
        if self.target is not None and self.by_name(self.target).type not in TARGET_TYPES:
            raise ValueError(
                f"the target {self.target!r} must be a bool field (binary classification) or a float or int field (regression)"
            )
        problems = _derived_problems(self.field, self.derived)
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        declared = {f.name: f for f in self.field}
        # The model is frozen; extending `field` once, here, is what makes derived fields ordinary fields.
        object.__setattr__(self, "field", (*self.field, *(_as_field(d, declared[d.source]) for d in self.derived)))
        return self

    @field_serializer("field")
    def _declared_only(self, value: tuple[SchemaField, ...]) -> tuple[SchemaField, ...]:
        """Dump the fields as the file declares them, so a dump validates back to this schema."""
        derived = self.derived_names
        return tuple(f for f in value if f.name not in derived)

    def by_name(self, name: str) -> SchemaField:
        for f in self.field:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.field)

    @property
    def derived_names(self) -> frozenset[str]:
        return frozenset(d.name for d in self.derived)

    @property
    def declared(self) -> tuple[SchemaField, ...]:
        """The fields read from each node's local columns (everything but the derived ones)."""
        derived = self.derived_names
        return tuple(f for f in self.field if f.name not in derived)

    def read_from(self, columns: tuple[str, ...]) -> tuple[str, ...]:
        """`columns` and the declared field each derived one takes its values from (its `source`).

        A policy that denies a column must also deny what is computed from it:
        a lag of a denied value is that value one record later, a month's sine
        and cosine are the month of a denied date. A lag's `entity` and `order`
        only group and sort records on the node, and no value of theirs flows
        into the feature, so they are not counted as read.
        """
        by_name = {d.name: d for d in self.derived}
        read = list(dict.fromkeys(columns))
        for name in columns:
            entry = by_name.get(name)
            if entry is not None:
                read += [entry.source] if entry.source not in read else []
        return tuple(read)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Fields a model may use: everything but the target, identifiers and dates; derived fields included."""
        return tuple(f.name for f in self.field if f.name != self.target and f.type in FEATURE_TYPES)


def _closest(word: str, options: list[str] | tuple[str, ...]) -> str:
    match = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


class _Problems:
    """Collects every problem of the derived entries, each located at `derived[i].<key>`."""

    def __init__(self, fields: tuple[SchemaField, ...], derived: tuple[DerivedField, ...]) -> None:
        self.types = {f.name: f.type for f in fields}
        self.derived = derived
        self.found: list[InitErrorDetails] = []

    def add(self, index: int, key: str, found: object, message: str) -> None:
        text = f"{self.derived[index].name!r}: {message}"
        self.found.append(InitErrorDetails(type=PydanticCustomError("derived", text), loc=("derived", index, key), input=found))

    def field(self, index: int, key: str, name: str, allowed: frozenset[str], need: str) -> None:
        """`name` must be a declared field of one of the `allowed` types."""
        if name in {d.name for d in self.derived}:
            self.add(index, key, name, f"{name!r} is itself derived; derive from a field of the schema")
        elif name not in self.types:
            self.add(index, key, name, f"{name!r} is not a field of the schema{_closest(name, tuple(self.types))}")
        elif self.types[name] not in allowed:
            self.add(index, key, name, f"{need}, {name!r} is {self.types[name]}")


def _derived_problems(fields: tuple[SchemaField, ...], derived: tuple[DerivedField, ...]) -> list[InitErrorDetails]:
    """Every problem of every derived entry: unknown kinds, missing or mistyped fields, clashing names."""
    problems = _Problems(fields, derived)
    names = [d.name for d in derived]
    for i, d in enumerate(derived):
        if d.name in problems.types:
            problems.add(i, "name", d.name, "is already a field of the schema; a derived field needs a name of its own")
        elif names.index(d.name) < i:
            problems.add(i, "name", d.name, "is defined twice among the derived fields")
        if d.kind not in DERIVED_KINDS:
            problems.add(
                i, "kind", d.kind, f"unknown kind{_closest(d.kind, DERIVED_KINDS)}; the kinds are {', '.join(DERIVED_KINDS)}"
            )
            continue
        if d.kind in CALENDAR_KINDS:
            problems.field(i, "source", d.source, frozenset({"date"}), f"{d.kind} needs a date field")
            for key, value in (("entity", d.entity), ("order", d.order), ("periods", d.periods)):
                if value is not None:
                    problems.add(i, key, value, f"only a lag takes {key!r}, not {d.kind}")
            continue
        problems.field(i, "source", d.source, LAG_SOURCE_TYPES, "a lag needs a float, int or bool field")
        if d.entity is None:
            problems.add(i, "entity", None, "a lag needs 'entity', the field whose records it follows (a firm's or site's id)")
        else:
            problems.field(i, "entity", d.entity, ENTITY_TYPES, "the entity must be a string, category or int field")
        if d.order is None:
            problems.add(i, "order", None, "a lag needs 'order', the date field that orders an entity's records")
        else:
            problems.field(i, "order", d.order, frozenset({"date"}), "the order must be a date field")
        if d.periods is not None and d.periods < 1:
            problems.add(i, "periods", d.periods, "periods must be at least 1: a lag looks only at strictly earlier records")
    return problems.found


def _as_field(d: DerivedField, source: SchemaField) -> SchemaField:
    """The ordinary float field a derived entry becomes: a lag keeps its source's unit and range."""
    if d.kind == "lag":
        low, high = (0.0, 1.0) if source.type == "bool" else (source.min, source.max)
        records = "record" if d.lag_periods == 1 else f"{d.lag_periods} records"
        text = f"{source.name} of the same {d.entity}'s previous {records} by {d.order} (derived on the node)"
        return SchemaField(
            name=d.name, type="float", unit=source.unit, description=d.description or text, required=False, min=low, max=high
        )
    part, wave = d.kind.rsplit("_", 1)
    text = f"{part.replace('_', ' ')} of {source.name} on a circle, {'sine' if wave == 'sin' else 'cosine'} (derived on the node)"
    return SchemaField(name=d.name, type="float", description=d.description or text, required=False, min=-1.0, max=1.0)


@lru_cache(maxsize=1)
def units() -> pint.UnitRegistry:  # type: ignore[type-arg]
    """One pint registry for the process (building one is slow)."""
    return pint.UnitRegistry()


def load_schema(path: Path) -> Schema:
    return load_toml(path, Schema)
