from __future__ import annotations

from pathlib import Path

import pytest

from roomd.daemon.config import MASK, Config, ConfigError, load_config

DEV = {"ROOMD_DAEMON_DEV": "1"}
REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roomd.toml"
    path.write_text(text)
    return path


def test_documented_default_file_matches_built_in_defaults() -> None:
    from_file = load_config(REPO / "etc" / "roomd.toml", environ=DEV).masked()
    built_in = load_config(environ=DEV).masked()
    assert from_file == built_in


def test_precedence_is_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = write(tmp_path, "[pool]\nnum_idle_processes = 3\nping_interval = 1.5\n"
                           "[daemon]\nlog_level = 'warning'\n")
    env = {**DEV, "ROOMD_POOL_NUM_IDLE_PROCESSES": "5", "ROOMD_DAEMON_LOG_LEVEL": "error"}
    config = load_config(path, environ=env, overrides={"daemon.log_level": "debug"})
    assert config.pool.ping_interval == 1.5  # file only
    assert config.pool.num_idle_processes == 5  # environment beats file
    assert config.daemon.log_level == "debug"  # flag beats environment


def test_unset_flags_fall_through_to_lower_layers(tmp_path: Path) -> None:
    path = write(tmp_path, "[daemon]\nlog_format = 'json'\n")
    config = load_config(path, environ=DEV, overrides={"daemon.log_format": None})
    assert config.daemon.log_format == "json"


def test_livekit_variables_fill_the_livekit_section() -> None:
    config = load_config(environ={"LIVEKIT_URL": "wss://lk.example", "LIVEKIT_API_KEY": "k",
                                  "LIVEKIT_API_SECRET": "s"})
    assert (config.livekit.url, config.livekit.api_key, config.livekit.api_secret) == (
        "wss://lk.example", "k", "s")


def test_list_values_from_environment_are_comma_separated() -> None:
    config = load_config(environ={**DEV, "ROOMD_PLUGINS_ENABLED": "a, b"})
    assert config.plugins.enabled == ("a", "b")
    assert config.plugins.is_enabled("a") and not config.plugins.is_enabled("c")


def test_config_is_immutable() -> None:
    config = load_config(environ=DEV)
    with pytest.raises(AttributeError):
        config.pool = None  # type: ignore[misc]


def test_masked_hides_the_secret() -> None:
    config = load_config(environ={**DEV, "LIVEKIT_API_SECRET": "hunter2"})
    assert config.masked()["livekit"]["api_secret"] == MASK
    assert "hunter2" not in repr(config.masked())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pool]\nnum_idle = 2\n", "roomd.toml:2: unknown key 'pool.num_idle'"),
        ("[poool]\nx = 1\n", "roomd.toml:1: unknown key 'poool'"),
        ("[pool]\nnum_idle_processes = 'two'\n",
         "roomd.toml:2: pool.num_idle_processes: Expected `int`, got `str`"),
        ("[daemon]\n\ndrain_timeout = -1\n",
         "roomd.toml:3: daemon.drain_timeout: Expected `float` >= 0.0"),
        ("[pool]\nping_timeout = 0\n", "roomd.toml:2: pool.ping_timeout: Expected `float` > 0.0"),
        ("[daemon]\nlog_format = 'xml'\n", "roomd.toml:2: daemon.log_format: Invalid enum value 'xml'"),
        ("[plugins.options.a]\nmax_jobs = -1\n",
         "roomd.toml:2: plugins.options.*.max_jobs: Expected `int` >= 0"),
        ("[pool\nx=1\n", "TOML syntax error: Expected ']' at the end of a table declaration (at line 1"),
    ],
)
def test_bad_file_gives_one_line_naming_key_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ=DEV)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read config file: No such file"):
        load_config(tmp_path / "missing.toml", environ=DEV)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ROOMD_POOL_NUM_IDLE_PROCESSES": "x"},
         "environment ROOMD_POOL_NUM_IDLE_PROCESSES: Expected `int`, got `str` (value 'x')"),
        ({"ROOMD_POOL_PING_TIMEOUT": "-2"}, "environment ROOMD_POOL_PING_TIMEOUT: Expected `float` > 0.0"),
        ({"ROOMD_POOL_NOPE": "1"}, "environment ROOMD_POOL_NOPE: unknown key pool.nope"),
        ({"ROOMD_NOPE_X": "1"}, "environment ROOMD_NOPE_X: unknown section"),
        ({"ROOMD_DAEMON_DEV": "maybe"}, "environment ROOMD_DAEMON_DEV: expected a boolean"),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={**DEV, **env})
    assert message in str(caught.value)


def test_bad_secret_from_environment_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"LIVEKIT_URL": "ftp://x", "LIVEKIT_API_KEY": "k",
                             "LIVEKIT_API_SECRET": "hunter2"})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "livekit.url is not set"),
        ({"LIVEKIT_URL": "ws://h"}, "livekit.api_key is not set"),
        ({"LIVEKIT_URL": "ws://h", "LIVEKIT_API_KEY": "k"}, "livekit.api_secret is not set"),
    ],
)
def test_missing_server_settings_outside_dev_mode(env: dict[str, str], missing: str) -> None:
    with pytest.raises(ConfigError, match=missing):
        load_config(environ=env)


def test_dev_mode_needs_no_server_settings() -> None:
    assert isinstance(load_config(environ=DEV), Config)


def test_url_scheme_is_checked() -> None:
    with pytest.raises(ConfigError, match="livekit.url must start with ws://"):
        load_config(environ={"LIVEKIT_URL": "lk.example", "LIVEKIT_API_KEY": "k",
                             "LIVEKIT_API_SECRET": "s"})
