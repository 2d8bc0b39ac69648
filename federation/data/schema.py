"""The canonical schema of a scenario: the shared names, types and units.

Every node maps its local columns to these fields; models only ever see
canonical fields, so nodes with different local standards train together.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import pint
from pydantic import Field, model_validator

from federation.config import StrictModel, load_toml

FieldType = Literal["float", "int", "category", "bool", "date", "string"]
FEATURE_TYPES = frozenset({"float", "int", "category", "bool"})


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


class Schema(StrictModel):
    name: str
    description: str = ""
    target: str
    field: tuple[SchemaField, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Schema:
        names = [f.name for f in self.field]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"fields defined twice: {duplicates}")
        if self.target not in names:
            raise ValueError(f"the target {self.target!r} is not one of the fields")
        if self.by_name(self.target).type != "bool":
            raise ValueError(f"the target {self.target!r} must be a bool field (binary classification)")
        return self

    def by_name(self, name: str) -> SchemaField:
        for f in self.field:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.field)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Fields a model may use: everything but the target, identifiers and dates."""
        return tuple(f.name for f in self.field if f.name != self.target and f.type in FEATURE_TYPES)


@lru_cache(maxsize=1)
def units() -> pint.UnitRegistry:  # type: ignore[type-arg]
    """One pint registry for the process (building one is slow)."""
    return pint.UnitRegistry()


def load_schema(path: Path) -> Schema:
    return load_toml(path, Schema)
