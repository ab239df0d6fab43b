import re
from pathlib import Path

import pytest

from leeway import settings as config
from leeway.errors import ConfigError
from leeway.jobs import Window


def test_defaults_serve_smollm2_on_openvino_with_every_window():
    s = config.load(env={})
    assert [m.id for m in s.models] == ["HuggingFaceTB/SmolLM2-135M-Instruct"]
    assert s.models[0].engine == "openvino" and s.models[0].windows == tuple(Window)
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
    # a tenant's section sets what it names and keeps the rest of [limits]
    assert s.limits_for("big").max_queued == 20000 and s.limits_for("big").requests_per_second == 50
    f.write_text("[limits]\nrps = 1\n")
    with pytest.raises(ConfigError, match="rps"):
        config.load(f, env={})


def test_a_batch_must_hold_a_token_per_sequence(tmp_path: Path):
    f = tmp_path / "bad.toml"
    f.write_text('[[models]]\nid = "m"\nparallel = 64\nbatch_tokens = 32\n')
    with pytest.raises(ConfigError, match="batch_tokens"):
        config.load(f, env={})


def test_webhooks_defaults_and_file(tmp_path: Path):
    hooks = config.load(env={}).webhooks
    assert hooks.allow == () and hooks.timeout_seconds == 30 and hooks.retry_for_seconds == 86_400
    assert hooks.secret_grace_seconds == 86_400 and hooks.concurrency >= 1
    f = tmp_path / "hooks.toml"
    f.write_text(
        '[webhooks]\nallow = ["127.0.0.0/8", "::1/128"]\ntimeout_seconds = 2\n'
        "backoff_base_seconds = 0.1\nbackoff_max_seconds = 1\nconcurrency = 3\n"
    )
    hooks = config.load(f, env={}).webhooks
    assert [str(n) for n in hooks.allow] == ["127.0.0.0/8", "::1/128"]
    assert (hooks.timeout_seconds, hooks.backoff_base_seconds, hooks.concurrency) == (2, 0.1, 3)


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('allow = ["127.0.0.1/8"]', "not a CIDR range"),
        ('allow = ["localhost"]', "not a CIDR range"),
        ('allow = "127.0.0.0/8"', "must be a list"),
        ("timeout_seconds = 0", "webhooks.timeout_seconds' must be more than 0"),
        ("retry_for_seconds = -1", "webhooks.retry_for_seconds"),
        ("concurrency = 0", "webhooks.concurrency"),
        ("backoff_base_seconds = 10\nbackoff_max_seconds = 5", "must not be more than"),
        ('timeout_seconds = "soon"', "webhooks.timeout_seconds"),
        ("retries = 3", "Unknown webhooks setting"),
    ],
)
def test_bad_webhook_settings_are_named(tmp_path: Path, toml: str, words: str):
    f = tmp_path / "bad.toml"
    f.write_text(f"[webhooks]\n{toml}\n")
    with pytest.raises(ConfigError, match=re.escape(words)):
        config.load(f, env={})


def test_store_url_picks_the_store(tmp_path: Path):
    default = config.load(env={}, data_dir=str(tmp_path))
    assert default.store_url is None and default.postgres_url is None
    assert default.db_path == tmp_path / "leeway.db"
    absolute = config.load(env={"LEEWAY_STORE_URL": "sqlite:////var/lib/x.db"})
    assert absolute.db_path == Path("/var/lib/x.db") and absolute.postgres_url is None
    assert config.load(env={}, store_url="sqlite:///rel/x.db").db_path == Path("rel/x.db")
    url = "postgresql://leeway:pw@db:5432/leeway"
    f = tmp_path / "leeway.toml"
    f.write_text(f'store_url = "{url}"\n')
    assert config.load(f, env={}).postgres_url == url


@pytest.mark.parametrize("url", ["mysql://u:secret@h/db", "sqlite:///", "leeway.db", ""])
def test_a_bad_store_url_names_the_setting_and_what_is_allowed(url: str):
    with pytest.raises(ConfigError, match=r"'store_url'.*postgresql://.*sqlite:///") as raised:
        config.load(env={"LEEWAY_STORE_URL": url})
    assert "secret" not in str(raised.value)


def test_batch_expiry_defaults_to_a_day_and_an_hour_and_must_be_positive(tmp_path: Path):
    assert config.load(env={}).batch_expiry_seconds == 25 * 3600
    f = tmp_path / "c.toml"
    f.write_text("batch_expiry_seconds = 2.5\n")
    assert config.load(f, env={}).batch_expiry_seconds == 2.5
    f.write_text("batch_expiry_seconds = 0\n")
    with pytest.raises(ConfigError, match="batch_expiry_seconds"):
        config.load(f, env={})


def test_the_urgent_share_from_the_file_and_a_wrong_one(tmp_path: Path):
    path = tmp_path / "leeway.toml"
    assert config.load(None, env={}).urgent_share == 1.0  # no limit by default
    path.write_text("urgent_share = 0.375\n")
    assert config.load(path, env={}).urgent_share == 0.375
    path.write_text("urgent_share = 0\n")
    with pytest.raises(ConfigError, match="urgent_share"):
        config.load(path, env={})
