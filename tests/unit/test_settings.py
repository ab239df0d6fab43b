from pathlib import Path

import pytest

from leeway import settings as config
from leeway.errors import ConfigError
from leeway.jobs import Window


def test_defaults_serve_smollm2_on_llamacpp_with_every_window():
    s = config.load(env={})
    assert [m.id for m in s.models] == ["HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert s.models[0].engine == "llamacpp" and s.models[0].windows == tuple(Window)
    assert s.window_targets[Window.PRIORITY] == 60 and s.window_targets[Window.STANDARD] == 300


def test_file_then_env_then_flags(tmp_path: Path):
    f = tmp_path / "leeway.toml"
    f.write_text(
        "port = 9000\nlease_seconds = 5\n[window_targets]\npriority = 30\n"
        '[[models]]\nid = "m"\nengine = "fake"\nwindows = ["asap", "flex"]\nparallel = 3\n'
    )
    s = config.load(f, env={"LEEWAY_PORT": "9100", "LEEWAY_LEASE_SECONDS": "7"}, port=9200)
    assert s.port == 9200 and s.lease_seconds == 7.0
    assert s.window_targets[Window.PRIORITY] == 30 and s.window_targets[Window.STANDARD] == 300
    m = s.model("m")
    assert m is not None and m.windows == (Window.ASAP, Window.FLEX) and m.parallel == 3


def test_unknown_settings_are_named(tmp_path: Path):
    f = tmp_path / "bad.toml"
    f.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        config.load(f, env={})
    f.write_text('[[models]]\nid = "m"\nparalel = 2\n')
    with pytest.raises(ConfigError, match="paralel"):
        config.load(f, env={})


def test_with_engine_swaps_every_model():
    s = config.with_engine(config.load(env={}), "fake")
    assert {m.engine for m in s.models} == {"fake"}


def test_limits_default_and_per_tenant(tmp_path: Path):
    f = tmp_path / "limits.toml"
    f.write_text("[limits]\nrequests_per_second = 50\n[tenant_limits.big]\nmax_queued = 20000\n")
    s = config.load(f, env={})
    assert s.limits_for("anyone").requests_per_second == 50
    assert s.limits_for("big").max_queued == 20000 and s.limits_for("big").requests_per_second == 0
    f.write_text("[limits]\nrps = 1\n")
    with pytest.raises(ConfigError, match="rps"):
        config.load(f, env={})


def test_a_batch_must_hold_a_token_per_sequence(tmp_path: Path):
    f = tmp_path / "bad.toml"
    f.write_text('[[models]]\nid = "m"\nparallel = 64\nbatch_tokens = 32\n')
    with pytest.raises(ConfigError, match="batch_tokens"):
        config.load(f, env={})
