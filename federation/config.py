"""Reading TOML files into validated pydantic models, with errors a person can act on.

Every problem in a file is collected and reported at once: the file, the
field path, what was expected and what was found.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from federation.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every file model: unknown fields are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def describe_validation_error(error: ValidationError) -> list[str]:
    """One line per problem: field path, what was expected, what was found."""
    problems = []
    for item in error.errors():
        found = item.get("input")
        shown = repr(found) if not isinstance(found, dict) else "a table"
        if len(shown) > 60:
            shown = shown[:57] + "..."
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field"
        elif item["type"] == "missing":
            problems.append(f"{_location(item['loc'])}: required field is missing")
            continue
        problems.append(f"{_location(item['loc'])}: {message} (found {shown})")
    return problems


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning a missing file or a syntax error into ConfigError."""
    if not path.is_file():
        raise ConfigError(str(path), ["file not found"])
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), [f"not valid TOML: {error}"]) from error
    except UnicodeDecodeError as error:
        raise ConfigError(str(path), [f"not UTF-8 text (byte {error.start}): save the file as UTF-8"]) from error
    except OSError as error:
        raise ConfigError(str(path), [f"cannot be read: {error.strerror}"]) from error


def validate(model: type[M], data: dict[str, Any], *, source: str) -> M:
    """Validate `data` against `model`, reporting every problem with `source`."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(source, describe_validation_error(error)) from error


def load_toml(path: Path, model: type[M]) -> M:
    """Read and validate a TOML file in one step."""
    return validate(model, read_toml(path), source=str(path))
