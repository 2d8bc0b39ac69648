"""federation.data.schema: the canonical schema checks itself when it is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.data.schema import Schema, load_schema
from federation.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pollution_enforcement" / "schema.toml"

SMALL = """
name = "small"
target = "y"

[[field]]
name = "x"
type = "float"
unit = "mg/L"

[[field]]
name = "kind"
type = "category"
codes = ["a", "b"]

[[field]]
name = "y"
type = "bool"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schema.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_small_schema_loads(tmp_path: Path) -> None:
    schema = load_schema(write(tmp_path, SMALL))
    assert schema.names == ("x", "kind", "y")
    assert schema.feature_names == ("x", "kind")
    assert schema.by_name("kind").codes == ("a", "b")
    assert schema.by_name("x").unit == "mg/L"
    with pytest.raises(KeyError):
        schema.by_name("z")


def test_the_example_schema_loads_and_has_no_identifier() -> None:
    schema = load_schema(EXAMPLE)
    assert schema.target == "violation"
    assert schema.target not in schema.feature_names
    assert "firm_name" not in schema.names


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (('codes = ["a", "b"]', ""), "needs a list of codes"),
        (('unit = "mg/L"', 'codes = ["q"]'), "only category fields take codes"),
        (('target = "y"', 'target = "nope"'), "is not one of the fields"),
        (('target = "y"', 'target = "kind"'), "must be a bool field (binary classification) or a float or int field"),
        (('name = "x"', 'name = "kind"'), "fields defined twice: ['kind']"),
        (('name = "x"', 'name = "Bad Name"'), "field[0].name"),
        (('type = "float"', 'type = "text"'), "field[0].type"),
    ],
)
def test_inconsistent_schemas_are_refused(tmp_path: Path, edit: tuple[str, str], expected: str) -> None:
    path = write(tmp_path, SMALL.replace(*edit))
    with pytest.raises(ConfigError) as caught:
        load_schema(path)
    assert caught.value.path == str(path)
    assert expected in str(caught.value)


def test_a_schema_without_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="field"):
        Schema.model_validate({"name": "s", "target": "y"})
