"""docs/PLAN_FORMAT.md is the schema's own reference (issue 10, item 7): generated from the
pydantic models, each construct with an example that its model accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.plan_format import models, plan_format_markdown
from engine.plan_format_examples import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_reference_is_the_generators_output() -> None:
    committed = (ROOT / "docs" / "PLAN_FORMAT.md").read_text(encoding="utf-8")
    assert committed == plan_format_markdown(), (
        "run: kehoach schema --markdown -o docs/PLAN_FORMAT.md"
    )


def test_every_construct_has_an_example_and_every_example_a_construct() -> None:
    names = {m.__name__ for m in models()}
    assert names - set(EXAMPLES) == set(), "add an example to engine/plan_format_examples.py"
    assert set(EXAMPLES) - names == set()


@pytest.mark.parametrize("model", models(), ids=lambda m: m.__name__)
def test_each_example_is_accepted_by_its_model(model) -> None:
    data = yaml.safe_load(EXAMPLES[model.__name__])
    model.model_validate(data)


def test_every_field_is_in_the_reference() -> None:
    text = plan_format_markdown()
    for model in models():
        section = text.split(f"\n## {model.__name__}\n", 1)[1].split("\n## ", 1)[0]
        for name in model.model_fields:
            assert f"| `{name}` |" in section, (model.__name__, name)
