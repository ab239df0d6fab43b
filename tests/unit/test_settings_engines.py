"""``[[engines]]``, model prices, and failing fast on a bad config: every error names its key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from leeway import settings as config
from leeway.catalog import Price
from leeway.engines import local_id
from leeway.engines.build import build_engines, engine_configs
from leeway.engines.fake import FakeEngine
from leeway.engines.openai_upstream import OpenAIEngine
from leeway.errors import ConfigError
from leeway.jobs import Window

EXAMPLES = Path(__file__).parents[2] / "examples"

BASE = """
[[models]]
id = "big"
engine = "fake"
parallel = 8
prices.standard = { input = 0.35, output = 1.4 }
prices.flex = { input = 0.2, output = 0.8 }

[[models]]
id = "small"
engine = "fake"
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> config.Settings:
    path = tmp_path / "leeway.toml"
    path.write_text(text)
    return config.load(path, env=env or {})


def test_engines_are_described_apart_from_models(tmp_path: Path):
    s = load(
        tmp_path,
        BASE
        + """
[[engines]]
kind = "openai"
model = "big"
url = "http://gpu1:8000/"
flavor = "vllm"
api_key_env = "GPU_KEY"
parallel = 64

[[engines]]
kind = "openai"
model = "big"
url = "http://gpu2:8000/v1"
flavor = "sglang"
upstream_model = "org/big-fp8"
timeout_seconds = 30
""",
        env={"GPU_KEY": "sk-secret"},
    )
    first, second = s.engines
    assert (first.id, second.id) == ("big", "big#2")
    assert first.api_key == "sk-secret" and "sk-secret" not in repr(first)
    assert second.upstream_model == "org/big-fp8" and second.timeout_seconds == 30
    assert s.models[0].prices == {Window.STANDARD: Price(0.35, 1.4), Window.FLEX: Price(0.2, 0.8)}
    configs = engine_configs(s)
    assert [(c.id, c.kind) for c in configs] == [
        ("big", "openai"),
        ("big#2", "openai"),
        ("small", "fake"),
    ]
    engines = build_engines(s)
    assert isinstance(engines[0], OpenAIEngine) and engines[0].parallel == 64
    assert engines[0].flavor == "vllm" and engines[1].upstream_model == "org/big-fp8"
    # an upstream engine's id is the same in every process; a local one's is this process's own
    assert isinstance(engines[2], FakeEngine) and engines[2].id == local_id("small") != "small"
    assert config.with_engine(s, "fake").engines == ()


def test_a_config_without_engines_works_as_before():
    s = config.load(env={})
    assert s.engines == ()
    assert [(c.kind, c.model, c.id) for c in engine_configs(s)] == [
        ("openvino", config.DEFAULT_MODEL, config.DEFAULT_MODEL)
    ]


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('[[engines]]\nkind = "openai"\nmodel = "big"\n', "engines[0].url"),
        ('[[engines]]\nkind = "gpu"\nmodel = "big"\n', "engines[0].kind"),
        ('[[engines]]\nkind = "fake"\nmodel = "nope"\n', "engines[0].model"),
        ('[[engines]]\nkind = "fake"\n', "engines[0].model"),
        ('[[engines]]\nkind = "fake"\nmodel = "big"\nparallel = 0\n', "engines[0].parallel"),
        ('[[engines]]\nkind = "fake"\nmodel = "big"\nurl = "http://x"\n', "engines[0].url"),
        (
            '[[engines]]\nkind = "fake"\nmodel = "big"\n[[engines]]\nkind = "openai"\n'
            'model = "big"\nurl = "ftp://x"\n',
            "engines[1].url",
        ),
        (
            '[[engines]]\nkind = "openai"\nmodel = "big"\nurl = "http://x"\nflavor = "tgi"\n',
            "engines[0].flavor",
        ),
        (
            '[[engines]]\nkind = "openai"\nmodel = "big"\nurl = "http://x"\napi_key_env = "NO"\n',
            "engines[0].api_key_env",
        ),
        (
            '[[engines]]\nkind = "fake"\nmodel = "big"\nid = "a"\n'
            '[[engines]]\nkind = "fake"\nmodel = "small"\nid = "a"\n',
            "engines[1].id",
        ),
        ('[[engines]]\nkind = "fake"\nmodel = "big"\napi_key = "sk"\n', "engines[0]"),
        ('[[models]]\nid = "x"\nwindows = ["soon"]\n', "models[2].windows"),
        (
            '[[models]]\nid = "x"\nprices.soon = { input = 1, output = 1 }\n',
            "models[2].prices.soon",
        ),
        ('[[models]]\nid = "x"\nprices.flex = { input = 1 }\n', "models[2].prices.flex"),
        (
            '[[models]]\nid = "x"\nprices.flex = { input = -1, output = 1 }\n',
            "models[2].prices.flex",
        ),
        ('[[models]]\nid = "x"\nengine = "openai"\n', "models[2].engine"),
        ('[[models]]\nengine = "fake"\n', "models[2].id"),
    ],
)
def test_every_mistake_names_its_key(tmp_path: Path, extra: str, key: str):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load(tmp_path, BASE + extra)


def test_a_file_that_is_not_toml_names_the_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, "models = [\n")
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        config.load(tmp_path / "missing.toml", env={})


def test_serve_fails_fast_with_one_line_naming_the_key(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE + '[[engines]]\nkind = "openai"\nmodel = "big"\n')
    out = subprocess.run(
        [sys.executable, "-m", "leeway", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "engines[0].url" in lines[0] and lines[0].startswith("leeway:")
    assert not (tmp_path / ".leeway").exists()  # nothing was created


@pytest.mark.parametrize("name", ["cpu.toml", "vllm.toml"])
def test_the_examples_load(name: str):
    s = config.load(EXAMPLES / name, env={"VLLM_API_KEY": "sk-example"})
    assert s.models and build_engines(s)


def test_the_fleet_example_loads_once_store_url_is_a_setting():
    if "store_url" not in {f for f in config.Settings.__dataclass_fields__}:
        pytest.skip("store_url is not a setting yet (the PostgreSQL store adds it)")
    s = config.load(EXAMPLES / "fleet.toml", env={"VLLM_API_KEY": "sk-example"})
    assert len(s.engines) == 4
