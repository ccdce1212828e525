"""Build a client from command-line options: the one place every LLM-using command goes through."""

from __future__ import annotations

from pathlib import Path

from rewardgen.errors import RewardgenError
from rewardgen.llm.client import LLMClient
from rewardgen.llm.settings import DEFAULT_CONFIG, LLMSettings

__all__ = ["client_from_options", "follow_record", "settings_from_options"]


def client_from_options(
    run_dir: Path,
    model: str | None = None,
    base_url: str | None = None,
    budget_usd: float | None = None,
    max_calls: int | None = None,
    llm: str | None = None,
    config_file: str | Path | None = None,
    cache_path: str | Path | None = None,
    no_cache: bool = False,
) -> LLMClient:
    """An :class:`LLMClient` that records to ``run_dir/llm/transcript.jsonl``.

    ``llm`` is ``None`` (live) or ``replay:RUN_DIR`` (offline, from that run's transcript).
    """
    replay = None
    if llm:
        if not llm.startswith("replay:") or len(llm) <= len("replay:"):
            raise RewardgenError(f"--llm {llm!r} not understood: use --llm replay:RUN_DIR")
        replay = Path(llm[len("replay:") :])
    settings = settings_from_options(
        model, base_url, budget_usd, max_calls, config_file, cache_path=cache_path, no_cache=no_cache
    )
    return LLMClient(settings, transcript=run_dir / "llm" / "transcript.jsonl", replay=replay)


def settings_from_options(
    model: str | None = None,
    base_url: str | None = None,
    budget_usd: float | None = None,
    max_calls: int | None = None,
    config_file: str | Path | None = None,
    cache_path: str | Path | None = None,
    no_cache: bool = False,
) -> LLMSettings:
    """The LLM settings the command-line options give (over the environment, over the config file)."""
    return LLMSettings.resolve(
        config_file=config_file or DEFAULT_CONFIG,
        model=model,
        base_url=base_url,
        budget_usd=budget_usd,
        max_calls=max_calls,
        cache_path=cache_path,
        cache=False if no_cache else None,
    )


def follow_record(
    recorded: dict | None, model: str | None, base_url: str | None
) -> tuple[str | None, str | None, str]:
    """``(model, base_url, line)`` for a command that goes on with a recorded run: the model and
    endpoint the run recorded (never a default, an environment variable or a settings file),
    unless the command line names others, which then win; ``line`` says which.

    Example:
        >>> follow_record({"model": "m", "endpoint": "http://127.0.0.1:8000/v1"}, None, None)[:2]
        ('m', 'http://127.0.0.1:8000/v1')
    """
    if not recorded or not recorded.get("model"):
        return model, base_url, "the run recorded no LLM: the current settings are used"
    was_model, was_url = str(recorded["model"]), str(recorded.get("endpoint") or "") or None
    use_model, use_url = model or was_model, base_url or was_url
    changed = [
        f"{flag} {new} (the run recorded {old})"
        for flag, new, old in (("--llm-model", model, was_model), ("--llm-base-url", base_url, was_url))
        if new is not None and new.rstrip("/") != (old or "").rstrip("/")
    ]
    if changed:
        line = "going on with what the command line names: " + "; ".join(changed)
    else:
        line = f"going on with the LLM the run recorded: {use_model} at {use_url}"
    return use_model, use_url, line
