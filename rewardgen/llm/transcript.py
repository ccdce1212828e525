"""The transcript of a run's LLM traffic (``llm/transcript.jsonl``), and replay from it."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardgenError

__all__ = ["ReplayMissError", "Transcript", "load_replay", "load_replay_order", "transcript_usage"]


class ReplayMissError(RewardgenError):
    """Replay met a request the recorded run never made."""


class Transcript:
    """Appends one JSON line per request (flushed at once, so a killed run keeps every line).

    Example:
        >>> import tempfile, pathlib
        >>> t = Transcript(pathlib.Path(tempfile.mkdtemp()) / "llm" / "transcript.jsonl")
        >>> t.write({"model": "m", "samples": []})
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", buffering=1)
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, default=str)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def load_replay(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Replay key -> recorded sample, from a run directory (or a transcript file)."""
    p = Path(run_dir)
    path = p if p.is_file() else p / "llm" / "transcript.jsonl"
    if not path.is_file():
        raise RewardgenError(f"cannot replay {run_dir}: no LLM transcript at {path}")
    samples: dict[str, dict[str, Any]] = {}
    with path.open() as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                # the last line of a killed run may be cut short; anything earlier is damage
                continue
            if not isinstance(record, dict):
                raise RewardgenError(f"{path}:{number} is not a transcript record")
            for sample in record.get("samples", []):
                samples[sample["replay_key"]] = sample
    return samples


def load_replay_order(run_dir: str | Path) -> list[list[dict[str, Any]]]:
    """The recorded requests' samples in the order the run made them (for a replay that answers
    the k-th request with the k-th recorded answer where the prompt itself differs)."""
    p = Path(run_dir)
    path = p if p.is_file() else p / "llm" / "transcript.jsonl"
    out = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("samples"):
            out.append(sorted(record["samples"], key=lambda s: s.get("index", 0)))
    return out


def transcript_usage(path: str | Path) -> dict[str, Any]:
    """What a transcript's requests cost, as :class:`LLMClient`'s usage counts it: calls
    (retries included), cache hits, tokens and dollars; zeros where there is no transcript (a
    replayed or LLM-free run).

    Example:
        >>> transcript_usage("/nonexistent/transcript.jsonl")["calls"]
        0
    """
    totals: dict[str, Any] = {
        "calls": 0,
        "cache_hits": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 0.0,
    }
    p = Path(path)
    if not p.is_file():
        return totals
    with p.open() as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a killed run's last line
            for key in totals:
                totals[key] += record.get(key) or 0
    return totals
