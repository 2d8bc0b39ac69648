"""The vertical experiment file: every inconsistency found when it loads, named with the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.errors import ConfigError
from federation.experiments.vertical_config import experiment_kind, load_vertical_experiment

SHIPPED = Path(__file__).resolve().parents[2] / "examples" / "mass_balance" / "experiment.toml"


def variant(tmp_path: Path, old: str, new: str) -> Path:
    text = SHIPPED.read_text()
    assert old in text
    path = tmp_path / "experiment.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_shipped_experiment_loads_with_one_run_of_every_party_and_one_of_the_label_party_alone() -> None:
    loaded = load_vertical_experiment(SHIPPED)
    assert experiment_kind(SHIPPED) == "vertical" and loaded.seeds >= 3
    everyone = loaded.terms("r", "p", "s")
    alone = loaded.terms("r", "p", "s", alone=True)
    assert len(everyone.parties) == 5 and not everyone.alone
    assert alone.parties == ("ecology-bureau",) and alone.columns["ecology-bureau"] == everyone.columns["ecology-bureau"]
    assert everyone.inspect_share == 0.05 and everyone.max_steps == 600


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('commerce-bureau = ["materials"]', 'commerce-bureau = ["materials", "intake"]', "'intake' is named for both"),
        ('membership = ["water-bureau", ', "membership = [", r"psi: \['water-bureau'\] would not learn"),
        (
            'power-utility = ["electricity"]',
            'power-utility = ["electricity"]\ngas-company = ["gas"]',
            "not nodes of the experiment",
        ),
        ('helper = "statistics-bureau"', 'helper = "water-bureau"', "three different parties"),
        ('target = "violation"', 'target = "cod"', "target 'cod' is also named as a feature"),
        ("inspect_share = 0.05", "inspect_share = 0", "vertical.inspect_share"),
        ("seeds = 5", "seeds = 0", "seeds"),
        ('kind = "vertical"', 'kind = "vertical"\nrounds = 3', "rounds: unknown field"),
    ],
)
def test_a_file_that_no_run_could_follow_is_refused_naming_the_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_vertical_experiment(variant(tmp_path, old, new))
    assert "experiment.toml" in str(caught.value)


def test_a_horizontal_file_has_no_kind_and_a_missing_file_is_named(tmp_path: Path) -> None:
    assert experiment_kind(SHIPPED.parents[1] / "pollution_enforcement" / "experiment.toml") == "horizontal"
    with pytest.raises(ConfigError, match="file not found"):
        experiment_kind(tmp_path / "nope.toml")
