"""Settings: defaults < TOML file < TOOLTOKEN_* environment < flags, and where each value came from."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("pydantic_settings")

from tooltoken.app._settings import Settings, load_settings
from tooltoken.tools import ConfigError

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("TOOLTOKEN_") and name != "TOOLTOKEN_CACHE_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no user config file


def write(tmp_path, text):
    path = tmp_path / "tooltoken.toml"
    path.write_text(text)
    return path


def test_each_layer_overrides_the_one_before(tmp_path, monkeypatch):
    path = write(tmp_path, 'max_tokens = 100\nport = 9000\nhost = "0.0.0.0"\ntools = ["calculator"]\n')
    monkeypatch.setenv("TOOLTOKEN_PORT", "9100")
    monkeypatch.setenv("TOOLTOKEN_HOST", "127.0.0.2")
    s = load_settings({"host": "127.0.0.3", "model": None}, path)
    assert (s.max_tokens, s.port, s.host, s.tools, s.n_ctx) == (100, 9100, "127.0.0.3", ["calculator"], 4096)
    assert s.origin("max_tokens") == f"file {path}"
    assert s.origin("port") == "env TOOLTOKEN_PORT"
    assert s.origin("host") == "flag --host"
    assert s.origin("n_ctx") == s.origin("model") == "default"  # a flag left unset (None) is no flag
    assert s.config_file == path


def test_defaults_without_any_file():
    s = load_settings()
    assert s.config_file is None and s.host == "127.0.0.1" and s.api_key is None
    assert all(s.origin(n) == "default" for n in Settings.model_fields)


def test_config_file_from_the_environment(tmp_path, monkeypatch):
    path = write(tmp_path, "rate_limit = 5\n")
    monkeypatch.setenv("TOOLTOKEN_CONFIG", str(path))
    s = load_settings()
    assert s.rate_limit == 5 and s.origin("rate_limit") == f"file {path}"


def test_list_from_the_environment_takes_commas(monkeypatch):
    monkeypatch.setenv("TOOLTOKEN_TOOLS", "calculator, browser")
    assert load_settings().tools == ["calculator", "browser"]


def test_unknown_names_and_bad_values_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['max_tokenz'\].*valid settings: .*max_tokens"):
        load_settings(config_file=write(tmp_path, "max_tokenz = 1\n"))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(config_file=write(tmp_path, "max_tokens = \n"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(config_file=tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="valid tools: calculator, browser"):
        load_settings({"tools": "calculator,magic"})
    monkeypatch.setenv("TOOLTOKEN_PORT", "eighty")
    with pytest.raises(ConfigError, match="port"):
        load_settings()


def test_agent_kwargs_are_valid_agent_arguments():
    from tooltoken import Agent

    kw = load_settings({"max_tokens": 7, "tool_choice": "none"}).agent_kwargs()
    assert kw["max_tokens"] == 7 and kw["tool_choice"] == "none"
    import inspect

    named = set(inspect.signature(Agent.__init__).parameters)
    from dataclasses import fields

    from tooltoken._options import Options

    assert set(kw) <= named | {f.name for f in fields(Options)}


def test_config_show_prints_values_and_origins(tmp_path):
    path = write(tmp_path, "max_tokens = 64\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLTOKEN_") or k == "TOOLTOKEN_CACHE_DIR"}
    env.update(TOOLTOKEN_CONFIG=str(path), TOOLTOKEN_API_KEY="s3cret", TOOLTOKEN_PORT="9001",
               XDG_CONFIG_HOME=str(tmp_path / "xdg"), COLUMNS="200")
    cmd = [sys.executable, "-c", "from tooltoken.app.cli import main; main()", "config", "show"]
    out = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["config_file"] == str(path)
    rows = data["settings"]
    assert rows["max_tokens"] == {"value": 64, "origin": f"file {path}"}
    assert rows["port"] == {"value": 9001, "origin": "env TOOLTOKEN_PORT"}
    assert rows["api_key"] == {"value": "****", "origin": "env TOOLTOKEN_API_KEY"}  # never printed
    assert rows["host"] == {"value": "127.0.0.1", "origin": "default"}
    table = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert table.returncode == 0 and "s3cret" not in table.stdout
    assert any(line.split()[:3] == ["port", "9001", "env"] for line in table.stdout.splitlines())
