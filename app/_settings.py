"""Settings in one place, from four layers; each later layer wins:

    defaults  <  TOML config file  <  TOOLTOKEN_* environment variables  <  CLI flags

    >>> s = load_settings(cli={"max_tokens": 64}, config_file=None)       # doctest: +SKIP
    >>> s.max_tokens, s.origin("max_tokens"), s.origin("model")           # doctest: +SKIP
    (64, 'flag --max-tokens', 'default')

The config file is `--config FILE`, else `$TOOLTOKEN_CONFIG`, else `config.toml` in
`platformdirs.user_config_dir("tooltoken")` if it exists. It holds the same names as the fields
below, at top level (`max_tokens = 256`, `tools = ["calculator"]`); an unknown name is an error
that lists the valid ones. In the environment a field is `TOOLTOKEN_<NAME>` (`TOOLTOKEN_PORT=9000`);
list fields take commas (`TOOLTOKEN_TOOLS=calculator,browser`).

pydantic-settings merges the layers and validates the result; `origin` re-reads each layer on its
own to tell where a value came from (`tooltoken config show`). Not handled: nested sections.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tooltoken.tools import BUILTIN_TOOLS, ConfigError

from tooltoken._options import Options as _O
from tooltoken._sampling import MAX_SEED
from tooltoken._sampling import Sampling as _S

__all__ = ["Settings", "config_path", "load_settings"]

ENV_PREFIX = "TOOLTOKEN_"

SAMPLING = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "call_greedy")

_CONFIG_FILE: ContextVar[Path | None] = ContextVar("tooltoken_config_file", default=None)


class Settings(BaseSettings):
    """Every setting of the CLI, the server and the batch runner (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    # the model and the answer (Agent(...) and Options)
    model: str | None = Field(None, description="model pack name or .gguf path (None: the default pack)")
    n_ctx: int = Field(4096, ge=256, description="context window in tokens")
    # sampling and the answer's limits: the defaults are Sampling's and Options' own (one set of defaults)
    temperature: float = Field(_S.temperature, ge=0.0, le=2.0, description="0 = greedy, deterministic")
    top_k: int = Field(_S.top_k, ge=0, description="sample from the k most likely tokens (0: no cut)")
    top_p: float = Field(_S.top_p, gt=0.0, le=1.0, description="sample from the top tokens up to this mass (1: no cut)")
    min_p: float = Field(_S.min_p, ge=0.0, le=1.0, description="drop tokens below min_p x the top probability (0: no cut)")
    repeat_penalty: float = Field(_S.repeat_penalty, gt=0.0, description="penalty on recently seen tokens (1: none)")
    seed: int = Field(_S.seed, ge=-1, le=MAX_SEED, description="sampling seed (-1: random)")
    call_greedy: bool = Field(_S.call_greedy, description="write tool calls greedily whatever the temperature")
    draft: str | None = Field(None, min_length=1, description="speculative decoding: prompt-lookup, or a small draft "
                              ".gguf / model pack with the same vocabulary (None: off)")
    prompt_cache: bool = Field(True, description="keep the KV state of prompts' static prefixes in the user cache "
                               "dir, so a new process restores it instead of evaluating it again")
    prompt_cache_dir: Path | None = Field(None, description="where the prompt cache lives (None: <cache dir>/prompts)")
    prompt_cache_mb: int = Field(512, ge=1, description="the prompt cache's size bound (least recently used go)")
    system: str | None = Field(None, description="system prompt (None: the built-in one)")
    tools: Annotated[list[str], NoDecode] = Field(list(BUILTIN_TOOLS),
                                                  description="built-in tools: " + ", ".join(BUILTIN_TOOLS))
    tool_choice: str = Field(_O.tool_choice, description="auto, required, none or a tool name")
    max_tokens: int = Field(_O.max_tokens, ge=1, description="answer tokens per reply")
    max_tool_calls: int = Field(_O.max_tool_calls, ge=0, description="tool calls per answer")
    tool_timeout: float = Field(_O.tool_timeout, gt=0, description="seconds per tool call")
    max_time_s: float | None = Field(_O.max_time_s, gt=0, description="wall-clock budget per answer (None: none)")
    # chat
    history_file: Path | None = Field(None, description="chat input history (None: in the user data dir)")
    # batch (`tooltoken run`)
    concurrency: int = Field(1, ge=1, le=64, description="questions in flight (useful with server backends)")
    # server (`tooltoken serve`)
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="port to listen on")
    api_key: SecretStr | None = Field(None, description="bearer token the server requires (None: open)")
    served_model_name: str = Field("tooltoken", description="model id the server reports")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="largest request body (413 above)")
    max_tokens_cap: int = Field(1024, ge=1, description="max_tokens a request may ask for")
    rate_limit: float = Field(60.0, ge=0, description="requests per minute per client (0: off; 429 above)")
    max_queue: int = Field(16, ge=1, description="requests waiting for the model at once (503 above)")

    @field_validator("tools", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in BUILTIN_TOOLS]
        if unknown:
            raise ValueError(f"unknown tool(s) {unknown} (valid tools: {', '.join(BUILTIN_TOOLS)})")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # first wins: flags (init kwargs), then the environment, then the file; no .env, no secrets dir
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_CONFIG_FILE.get())

    # -- where each value came from ----------------------------------------------------------
    _origins: dict[str, str] = PrivateAttr(default_factory=dict)
    _config_file: Path | None = PrivateAttr(None)

    @property
    def config_file(self) -> Path | None:
        """The TOML file that was read (None: none)."""
        return self._config_file

    def origin(self, name: str) -> str:
        """'default', 'file PATH', 'env TOOLTOKEN_NAME' or 'flag --name'."""
        return self._origins.get(name, "default")

    def agent_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `Agent(...)` (tools excepted: see `build_tools`)."""
        from tooltoken._options import Options

        options = {f.name for f in dc_fields(Options)}
        kw: dict[str, Any] = {"n_ctx": self.n_ctx, "system": self.system, "draft": self.draft}
        if not self.prompt_cache:
            kw["prompt_cache"] = False
        elif self.prompt_cache_dir is not None or self.prompt_cache_mb != type(self).model_fields["prompt_cache_mb"].default:
            from tooltoken._prompt_cache import PromptCache

            kw["prompt_cache"] = PromptCache(self.prompt_cache_dir, max_bytes=self.prompt_cache_mb * 1024 * 1024)
        kw.update({k: getattr(self, k) for k in SAMPLING})
        kw.update({k: getattr(self, k) for k in ("tool_choice", "max_tokens", "max_tool_calls", "tool_timeout",
                                                 "max_time_s") if k in options})
        return kw

    def build_tools(self) -> list:
        """The built-in tools named in `tools`, in that order, and `retrieve` when an index exists
        (`tooltoken.tools.default_tools`: the one list)."""
        from tooltoken.tools import default_tools

        return default_tools(self.tools)


def config_path(explicit: str | os.PathLike[str] | None = None) -> tuple[Path | None, str]:
    """The config file to read, and why: (path, 'flag' | 'env' | 'default'); path None if none."""
    if explicit is not None:
        return Path(explicit).expanduser(), "flag --config"
    env = os.environ.get(ENV_PREFIX + "CONFIG")
    if env:
        return Path(env).expanduser(), f"env {ENV_PREFIX}CONFIG"
    import platformdirs

    default = Path(platformdirs.user_config_dir("tooltoken")) / "config.toml"
    return (default if default.is_file() else None), "default"


def load_settings(
    cli: dict[str, Any] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    *,
    flag_names: dict[str, str] | None = None,
) -> Settings:
    """The effective settings. `cli` holds only the flags the user gave (None values are dropped);
    `flag_names` maps a field to how the user spelled its flag, for `origin`."""
    cli = {k: v for k, v in (cli or {}).items() if v is not None}
    path, why = config_path(config_file)
    if path is not None and why != "default" and not path.is_file():
        raise ConfigError(f"config file not found: {path} ({why})")
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        valid = set(Settings.model_fields)
        unknown = sorted(set(file_values) - valid)
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {unknown} (valid settings: {', '.join(sorted(valid))})")
    token = _CONFIG_FILE.set(path)
    try:
        settings = Settings(**cli)
        env_values = EnvSettingsSource(Settings)()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems} (set from flags, {ENV_PREFIX}* variables or {path})") from None
    finally:
        _CONFIG_FILE.reset(token)
    origins: dict[str, str] = {}
    flag_names = flag_names or {}
    for name in Settings.model_fields:
        if name in cli:
            origins[name] = f"flag {flag_names.get(name, '--' + name.replace('_', '-'))}"
        elif name in env_values:
            origins[name] = f"env {ENV_PREFIX}{name.upper()}"
        elif name in file_values:
            origins[name] = f"file {path}"
    settings._origins = origins
    settings._config_file = path
    return settings
