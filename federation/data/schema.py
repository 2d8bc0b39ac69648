"""The canonical schema of a scenario: the shared names, types and units.

Every node maps its local columns to these fields; models only ever see
canonical fields, so nodes with different local standards train together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from federation.config import StrictModel, load_toml

FieldType = Literal["float", "int", "category", "bool"]


class SchemaField(StrictModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: FieldType
    unit: str = ""
    description: str = ""
    codes: tuple[str, ...] = ()
    required: bool = True

    @model_validator(mode="after")
    def _codes_for_categories(self) -> SchemaField:
        if self.type == "category" and not self.codes:
            raise ValueError(f"category field {self.name!r} needs a list of codes")
        if self.type != "category" and self.codes:
            raise ValueError(f"only category fields take codes, {self.name!r} is {self.type}")
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
        return tuple(f.name for f in self.field if f.name != self.target)


def load_schema(path: Path) -> Schema:
    return load_toml(path, Schema)
