"""federation.config: TOML files become validated models or one ConfigError with every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.config import StrictModel, load_toml, read_toml
from federation.errors import ConfigError, ErrorCode
from federation.node.manifest import ManifestFile
from federation.policy.model import Policy

GOOD_MANIFEST = """
[node]
id = "north"

[data]
path = "data.csv"
schema = "schema.toml"
columns = { a = "A" }

[policy]
path = "policy.toml"

[tls]
dir = "pki"
"""


def write(tmp_path: Path, text: str, name: str = "file.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_file_loads_into_the_model(tmp_path: Path) -> None:
    manifest = load_toml(write(tmp_path, GOOD_MANIFEST), ManifestFile)
    assert manifest.node.id == "north"
    assert manifest.data.columns == {"a": "A"}
    assert manifest.split.test_fraction == pytest.approx(0.3)


def test_unknown_field_is_named_with_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_MANIFEST.replace('id = "north"', 'id = "north"\ncolour = "blue"'))
    with pytest.raises(ConfigError) as caught:
        load_toml(path, ManifestFile)
    assert caught.value.path == str(path)
    assert caught.value.problems == ["node.colour: unknown field (found 'blue')"]
    assert caught.value.code is ErrorCode.CONFIG


def test_missing_field_is_named_with_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_MANIFEST.replace('[tls]\ndir = "pki"', ""))
    with pytest.raises(ConfigError) as caught:
        load_toml(path, ManifestFile)
    assert caught.value.problems == ["tls: required field is missing"]


def test_wrong_type_names_the_field_and_what_was_found(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_MANIFEST + '\n[split]\nseed = "fourteen"\n')
    with pytest.raises(ConfigError) as caught:
        load_toml(path, ManifestFile)
    [problem] = caught.value.problems
    assert problem.startswith("split.seed: ")
    assert "'fourteen'" in problem


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        GOOD_MANIFEST.replace('id = "north"', 'id = "north"\nextra = 1')
        .replace('[tls]\ndir = "pki"', "")
        .replace('path = "policy.toml"', "path = 3.5")
    )
    path = write(tmp_path, text + "\n[split]\ntest_fraction = 1.5\n")
    with pytest.raises(ConfigError) as caught:
        load_toml(path, ManifestFile)
    fields = sorted(p.split(":")[0] for p in caught.value.problems)
    assert fields == ["node.extra", "policy.path", "split.test_fraction", "tls"]
    message = str(caught.value)
    assert message.startswith(f"{path}: 4 problem(s)")
    assert all(p in message for p in caught.value.problems)


def test_list_items_are_located_by_index(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
party = "north"
[[rule]]
name = "one"
recipients = ["city"]
purposes = ["p"]
release = "stats"
[[rule]]
name = "two"
recipients = ["city"]
purposes = ["p"]
release = "everything"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_toml(path, Policy)
    assert [p.split(":")[0] for p in caught.value.problems] == ["rule[1].release"]


def test_a_table_where_a_value_belongs_is_shown_as_a_table(tmp_path: Path) -> None:
    class Small(StrictModel):
        name: str

    path = write(tmp_path, "[name]\nfirst = 'x'\n")
    with pytest.raises(ConfigError) as caught:
        load_toml(path, Small)
    [problem] = caught.value.problems
    assert problem.startswith("name: ") and problem.endswith("(found a table)")


def test_long_values_are_shortened_in_problems(tmp_path: Path) -> None:
    class Small(StrictModel):
        count: int

    path = write(tmp_path, f'count = "{"x" * 500}"\n')
    with pytest.raises(ConfigError) as caught:
        load_toml(path, Small)
    [problem] = caught.value.problems
    assert "x" * 100 not in problem
    assert "..." in problem


def test_bad_toml_syntax_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[node\nid = 'x'\n")
    with pytest.raises(ConfigError) as caught:
        read_toml(path)
    assert caught.value.path == str(path)
    [problem] = caught.value.problems
    assert problem.startswith("not valid TOML")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_toml(path, ManifestFile)
    assert caught.value.path == str(path)
    assert caught.value.problems == ["file not found"]


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        read_toml(tmp_path)


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('party = "Düsseldorf"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        read_toml(path)
    assert caught.value.path == str(path)
