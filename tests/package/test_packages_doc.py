"""Every config.json example in docs/packages.md is valid for the kind it shows, and the
doc names every key the schema has (a key added to the schema and not documented fails)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from modelport.package.config import (
    CommonConfig,
    FileContractConfig,
    ImageBuild,
    ImageConfig,
    ModelArtsConfig,
    PredictorConfig,
    PredictorInput,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "packages.md"


def examples() -> list[dict]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 3
    return [json.loads(b) for b in blocks]


@pytest.mark.parametrize("config", examples(), ids=lambda c: c.get("name") or c["model_type"])
def test_every_example_is_a_valid_config_of_its_kind(config: dict) -> None:
    kind = (ImageConfig if str(config.get("model_type", "")).lower() == "image" else
            ModelArtsConfig if "model_type" in config else
            FileContractConfig if "entrypoint" in config else PredictorConfig)
    parsed = kind.model_validate(config)
    assert parsed.model_dump(exclude_unset=True).keys() == config.keys()


def test_the_doc_names_every_key_of_the_schema() -> None:
    text = DOC.read_text()
    for model in (CommonConfig, PredictorConfig, FileContractConfig, PredictorInput,
                  ModelArtsConfig, ImageConfig, ImageBuild):
        for key in model.model_fields:
            assert f"`{key}`" in text, f"docs/packages.md does not mention `{key}`"
