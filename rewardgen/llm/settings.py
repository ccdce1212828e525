"""Where the LLM settings come from: arguments, then environment variables, then a config file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rewardgen.errors import RewardgenError

__all__ = ["DEFAULT_CACHE", "DEFAULT_CONFIG", "PRICES", "LLMSettings"]

DEFAULT_CONFIG = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "rewardgen" / "llm.yaml"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rewardgen" / "llm.sqlite"

#: USD per million tokens (input, output). Extend with ``prices:`` in the config file or
#: ``LLMSettings(prices=...)``; unknown models (local servers) cost 0.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
}

_ENV = {
    "model": "REWARDGEN_LLM_MODEL",
    "base_url": "REWARDGEN_LLM_BASE_URL",
    "api_key": "REWARDGEN_LLM_API_KEY",
    "budget_usd": "REWARDGEN_LLM_BUDGET_USD",
    "max_calls": "REWARDGEN_LLM_MAX_CALLS",
    "cache_path": "REWARDGEN_LLM_CACHE",
}


class LLMSettings(BaseModel):
    """How to reach a language model and how much it may cost.

    Example:
        >>> s = LLMSettings.resolve(model="llama3.1", base_url="http://localhost:11434/v1", config_file=None)
        >>> s.endpoint
        'http://localhost:11434/v1'
    """

    model_config = ConfigDict(extra="forbid")

    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    concurrency: int = 8
    budget_usd: float | None = None
    max_calls: int | None = None
    cache: bool = True
    cache_path: Path = DEFAULT_CACHE
    prices: dict[str, tuple[float, float]] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _an_http_url(cls, value: str | None) -> str | None:
        """A base URL is http(s)://HOST[:PORT]/...: anything else is refused now, not retried as
        an outage later."""
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"base_url must be an http:// or https:// URL with a host, such as "
                f"http://localhost:8000/v1, not {value!r}"
            )
        try:
            parts.port  # noqa: B018  (a bad port raises here)
        except ValueError:
            raise ValueError(f"base_url {value!r} has a bad port") from None
        return value.strip()

    @property
    def endpoint(self) -> str:
        return (self.base_url or "https://api.openai.com/v1").rstrip("/")

    def price(self) -> tuple[float, float]:
        table = {**PRICES, **self.prices}
        if self.model in table:
            return table[self.model]
        # dated snapshots ("gpt-4o-2024-08-06") cost what their family costs
        family = max((m for m in table if self.model.startswith(m + "-")), key=len, default=None)
        return table[family] if family else (0.0, 0.0)

    def check(self) -> None:
        if not self.api_key and not self.base_url:
            raise RewardgenError(
                "no LLM endpoint: set OPENAI_API_KEY for OpenAI, or --llm-base-url "
                "(REWARDGEN_LLM_BASE_URL) for vLLM, Ollama or another OpenAI-compatible server"
            )

    @classmethod
    def resolve(cls, config_file: str | Path | None = DEFAULT_CONFIG, **overrides: Any) -> LLMSettings:
        """Arguments (non-None) beat environment variables, which beat the config file."""
        values: dict[str, Any] = {}
        if config_file is not None and Path(config_file).is_file():
            try:
                loaded = yaml.safe_load(Path(config_file).read_text()) or {}
            except yaml.YAMLError as exc:
                reason = " ".join(str(exc).split())
                raise RewardgenError(f"cannot read LLM config {config_file}: {reason}") from exc
            if not isinstance(loaded, dict):
                raise RewardgenError(f"LLM config {config_file} must be a mapping of settings")
            values.update(loaded)
        for key, var in _ENV.items():
            if os.environ.get(var):
                values[key] = os.environ[var]
        if not values.get("api_key") and os.environ.get("OPENAI_API_KEY"):
            values["api_key"] = os.environ["OPENAI_API_KEY"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise RewardgenError(
                f"invalid LLM setting {where}: {first['msg'].removeprefix('Value error, ')}"
            ) from None
        except Exception as exc:
            raise RewardgenError(f"invalid LLM settings: {' '.join(str(exc).split())}") from exc
