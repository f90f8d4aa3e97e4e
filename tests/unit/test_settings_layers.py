"""Settings: defaults < conveyor.toml < CONVEYOR_* environment < arguments, validated once."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor import ConfigError, Settings


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conveyor.toml"
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    settings = Settings.load(env={}, file=tmp_path / "missing.toml")
    assert settings.url == "sqlite:///./conveyor.db"
    assert (settings.max_batch, settings.lease) == (1000, 30.0)
    assert settings.log_format == "text"
    assert settings.encryption_keys == ""


def test_file_then_env_then_arguments(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[conveyor]\nmax_batch = 5\nlease = 20.0\nlog_format = "json"\n'
                           'url = "sqlite:///from-file.db"\n')
    env = {"CONVEYOR_MAX_BATCH": "7", "CONVEYOR_URL": "sqlite:///from-env.db"}

    from_file = Settings.load(env={}, file=path)
    assert (from_file.max_batch, from_file.lease, from_file.log_format) == (5, 20.0, "json")

    from_env = Settings.load(env=env, file=path)
    assert (from_env.max_batch, from_env.url) == (7, "sqlite:///from-env.db")
    assert from_env.lease == 20.0 and from_env.log_format == "json"

    from_args = Settings.load(env=env, file=path, max_batch=9, url=None)
    assert from_args.max_batch == 9
    assert from_args.url == "sqlite:///from-env.db"  # None arguments are ignored


def test_a_file_without_a_section_works_too(tmp_path: Path) -> None:
    path = _toml(tmp_path, "max_batch = 42\n")
    assert Settings.load(env={}, file=path).max_batch == 42


def test_conveyor_config_env_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("[conveyor]\nconcurrency = 3\n")
    assert Settings.load(env={"CONVEYOR_CONFIG": str(path)}).concurrency == 3


def test_env_values_are_coerced_and_empty_ones_ignored(tmp_path: Path) -> None:
    env = {"CONVEYOR_LEASE": "45", "CONVEYOR_CONCURRENCY": "12", "CONVEYOR_LOG_FILE": "",
           "CONVEYOR_API_TOKENS": "t=org:admin", "UNRELATED": "x"}
    settings = Settings.load(env=env, file=tmp_path / "none.toml")
    assert settings.lease == 45.0 and isinstance(settings.lease, float)
    assert settings.concurrency == 12
    assert settings.log_file is None
    assert settings.api_tokens == "t=org:admin"


def test_settings_are_frozen_and_with_returns_a_copy() -> None:
    settings = Settings()
    changed = settings.with_(max_batch=10)
    assert (settings.max_batch, changed.max_batch) == (1000, 10)
    with pytest.raises(AttributeError):
        settings.max_batch = 3  # type: ignore[misc]


@pytest.mark.parametrize(("env", "words"), [
    ({"CONVEYOR_MAX_BATCH": "lots"}, "max_batch='lots' is not a valid int"),
    ({"CONVEYOR_LEASE": "soon"}, "lease='soon' is not a valid float"),
    ({"CONVEYOR_MAX_BATCH": "0"}, "CONVEYOR_MAX_BATCH must be at least 1"),
    ({"CONVEYOR_LEASE": "-5"}, "CONVEYOR_LEASE must be a positive"),
    ({"CONVEYOR_LOG_FORMAT": "xml"}, "CONVEYOR_LOG_FORMAT must be 'json' or 'text'"),
    ({"CONVEYOR_SQLITE_SYNCHRONOUS": "sometimes"}, "OFF, NORMAL, FULL or EXTRA"),
    ({"CONVEYOR_LEASE": "30", "CONVEYOR_HEARTBEAT": "30"}, "shorter than CONVEYOR_LEASE"),
])
def test_invalid_values_raise_config_errors_that_name_the_setting(
        tmp_path: Path, env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(env=env, file=tmp_path / "none.toml")
    assert words in str(caught.value)


def test_unknown_keys_in_the_file_are_refused(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[conveyor]\nmax_bacth = 5\n")
    with pytest.raises(ConfigError, match="max_bacth"):
        Settings.load(env={}, file=path)


def test_a_broken_file_is_a_config_error(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[conveyor\nmax_batch = ")
    with pytest.raises(ConfigError, match="cannot read settings file"):
        Settings.load(env={}, file=path)


def test_unknown_argument_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        Settings.load(env={}, file=tmp_path / "none.toml", colour="blue")


def test_a_short_lease_alone_is_accepted(tmp_path: Path) -> None:
    # SPEC section 5 documents CONVEYOR_LEASE only; setting it below the (undocumented)
    # heartbeat default must not fail on a setting the user never touched.
    settings = Settings.load(env={"CONVEYOR_LEASE": "3"}, file=tmp_path / "none.toml")
    assert settings.lease == 3.0
    assert 0 < settings.heartbeat < settings.lease


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_lease_that_is_not_a_finite_number_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="CONVEYOR_LEASE"):
        Settings.load(env={"CONVEYOR_LEASE": value, "CONVEYOR_HEARTBEAT": "1"},
                      file=tmp_path / "none.toml")


@pytest.mark.parametrize(("name", "value"), [
    ("CONVEYOR_MAX_BATCH_BODY_BYTES", "0"), ("CONVEYOR_MAX_BODY_VALUES", "0"),
    ("CONVEYOR_MAX_LARGE_BODIES", "0"), ("CONVEYOR_MAX_LIST_BYTES", "-1"),
    ("CONVEYOR_HTTP_MAX_CONNECTIONS", "0"), ("CONVEYOR_MAX_BODY_BYTES", "-5"),
    ("CONVEYOR_HTTP_HEADER_TIMEOUT", "0"), ("CONVEYOR_HTTP_BODY_TIMEOUT", "inf"),
    ("CONVEYOR_HTTP_IDLE_TIMEOUT", "-1"), ("CONVEYOR_HTTP_IDLE_TIMEOUT", "nan"),
    ("CONVEYOR_DASHBOARD_STALE", "-1"), ("CONVEYOR_DASHBOARD_STALE", "inf"),
])
def test_web_limits_must_be_sensible(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.load(env={name: value}, file="/nonexistent.toml")


def test_web_limits_from_the_environment() -> None:
    s = Settings.load(env={"CONVEYOR_MAX_LIST_BYTES": "1024", "CONVEYOR_HTTP_BODY_TIMEOUT": "2.5",
                           "CONVEYOR_MAX_BODY_BYTES": "0"}, file="/nonexistent.toml")
    assert (s.max_list_bytes, s.http_body_timeout, s.max_body_bytes) == (1024, 2.5, 0)
