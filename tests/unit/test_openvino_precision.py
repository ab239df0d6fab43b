"""OpenVINO's inference precision follows the model's ``precision``: f32 where few sequences run
(a lone request decodes about 1.3x faster than in bf16 on this CPU), OpenVINO's own choice (bf16
where the CPU has it) where many do; a wrong value is one line naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from leeway import settings
from leeway.catalog import ModelConfig
from leeway.engines.openvino_worker import F32_UP_TO, inference_precision
from leeway.errors import ConfigError


@pytest.mark.parametrize(
    ("precision", "parallel", "expected"),
    [
        ("auto", 1, "f32"),
        ("auto", F32_UP_TO, "f32"),
        ("auto", F32_UP_TO + 1, None),
        ("auto", 128, None),
        ("f32", 128, "f32"),
        ("bf16", 1, "bf16"),
    ],
)
def test_the_precision_follows_the_sequences(precision: str, parallel: int, expected: str | None):
    config = ModelConfig("m", parallel=parallel, precision=precision)  # type: ignore[arg-type]
    assert inference_precision(config) == expected


def test_a_precision_from_the_file_and_a_wrong_one(tmp_path: Path):
    path = tmp_path / "leeway.toml"
    path.write_text('[[models]]\nid = "m"\nprecision = "bf16"\n')
    assert settings.load(path, env={}).models[0].precision == "bf16"
    path.write_text('[[models]]\nid = "m"\nprecision = "fp8"\n')
    with pytest.raises(ConfigError, match=r"models\[0\]\.precision.*'auto', 'f32', 'bf16'"):
        settings.load(path, env={})
