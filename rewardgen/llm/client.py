"""One client for any OpenAI-compatible chat endpoint: cached, budgeted, recorded, replayable.

Built on the official ``openai`` SDK (its own retries off: ours honour ``Retry-After``, add jitter
and never retry what cannot succeed). Sync calls run on a private event loop thread, so the sync
and async APIs share one connection pool, one concurrency limit and one budget.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardgen.errors import RewardgenError
from rewardgen.llm.cache import ResponseCache, request_key
from rewardgen.llm.settings import LLMSettings
from rewardgen.llm.transcript import ReplayMissError, Transcript, load_replay, load_replay_order

__all__ = ["BudgetExceededError", "Completion", "LLMClient", "LLMError", "Usage"]

Messages = Sequence[Mapping[str, Any]]


class LLMError(RewardgenError):
    """The endpoint could not give an answer (after retries, or an error retrying cannot fix)."""


class BudgetExceededError(LLMError):
    """The run's LLM budget (cost or calls) is spent; what was answered so far is saved."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Completion:
    """One sampled reply."""

    text: str
    finish_reason: str | None = None
    cached: bool = False


@dataclass
class Usage:
    """What a client has spent so far."""

    calls: int = 0
    cache_hits: int = 0
    samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    replayed_in_order: int = 0  # replayed requests whose prompt differed from the recording's

    def summary(self) -> str:
        tokens = self.prompt_tokens + self.completion_tokens
        return (
            f"LLM: {self.calls} calls, {self.samples} samples ({self.cache_hits} from cache), "
            f"{tokens:,} tokens, ${self.cost_usd:.4f}"
        )


class LLMClient:
    """Chat completions from any OpenAI-compatible endpoint.

    ``n`` samples per request go out as one call where the server honours ``n``, else as
    parallel calls; sample ``i`` of a request is cached under its own key. ``transcript`` (a
    path) records every request; ``replay`` (a run directory) answers only from its transcript;
    with ``replay_in_order`` a request the recording does not hold word for word gets the answer
    recorded at its place in the order (a re-run on another machine, whose training moved the
    reward reflection's numbers).

    Example:
        >>> from rewardgen.llm.testing import LoopbackLLMServer
        >>> with LoopbackLLMServer() as server:
        ...     server.push("hello")
        ...     client = LLMClient(LLMSettings(base_url=server.url, model="m", cache=False))
        ...     client.complete([{"role": "user", "content": "hi"}])[0].text
        'hello'
    """

    def __init__(
        self,
        settings: LLMSettings,
        transcript: str | Path | None = None,
        replay: str | Path | None = None,
        cache: ResponseCache | None = None,
        replay_in_order: bool = False,
    ):
        self.settings = settings
        self.usage = Usage()
        self._replay = load_replay(replay) if replay is not None else None
        self._replay_order = load_replay_order(replay) if replay is not None and replay_in_order else None
        self._replayed = 0  # requests answered from the recording so far
        if self._replay is None:
            settings.check()
        self.cache = (
            cache if cache is not None else (ResponseCache(settings.cache_path) if settings.cache else None)
        )
        self.transcript = Transcript(transcript) if transcript is not None else None
        self._n_supported: bool | None = None
        self._budget_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sdk: Any = None
        self._semaphore: asyncio.Semaphore | None = None

    # -- public API -------------------------------------------------------------------------

    def complete(
        self, messages: Messages, n: int = 1, temperature: float = 1.0, **params: Any
    ) -> list[Completion]:
        """``n`` completions of ``messages`` (blocking)."""
        future = asyncio.run_coroutine_threadsafe(
            self.acomplete(messages, n, temperature, **params), self._background_loop()
        )
        return future.result()

    async def acomplete(
        self, messages: Messages, n: int = 1, temperature: float = 1.0, **params: Any
    ) -> list[Completion]:
        """``n`` completions of ``messages``."""
        if n < 1:
            raise RewardgenError(f"n must be at least 1, got {n}")
        params = {"temperature": temperature, **params}
        messages = [dict(m) for m in messages]
        replay_keys = [request_key("", "", messages, params, i) for i in range(n)]
        if self._replay is not None:
            return self._from_replay(messages, replay_keys)
        s = self.settings
        keys = [request_key(s.endpoint, s.model, messages, params, i) for i in range(n)]
        results: list[Completion | None] = [None] * n
        if self.cache is not None:
            for i, key in enumerate(keys):
                hit = self.cache.get(key)
                if hit is not None:
                    results[i] = Completion(hit["text"], hit.get("finish_reason"), cached=True)
        missing = [i for i, r in enumerate(results) if r is None]
        hits = n - len(missing)
        self.usage.cache_hits += hits
        self.usage.samples += n
        record: dict[str, Any] = {
            "time": time.time(),
            "endpoint": s.endpoint,
            "model": s.model,
            "messages": messages,
            "params": params,
            "n": n,
            "cache_hits": hits,
        }
        t0 = time.perf_counter()
        if missing:
            try:
                fresh, usage = await self._sample(messages, len(missing), params)
            except LLMError as exc:
                record.update(error=str(exc), latency_s=round(time.perf_counter() - t0, 4))
                self._record(record, [], keys, replay_keys, results)
                raise
            for i, completion in zip(missing, fresh, strict=True):
                results[i] = completion
                if self.cache is not None:
                    self.cache.put(
                        keys[i], {"text": completion.text, "finish_reason": completion.finish_reason}
                    )
            record.update(usage)
        record["latency_s"] = round(time.perf_counter() - t0, 4)
        self._record(record, missing, keys, replay_keys, results)
        return [r for r in results if r is not None]

    def close(self) -> None:
        if self._loop is not None:
            if self._sdk is not None:
                asyncio.run_coroutine_threadsafe(self._sdk.close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._loop = None
        if self.transcript is not None:
            self.transcript.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="rewardgen-llm", daemon=True)
            self._thread.start()
        return self._loop

    def _record(self, record, missing, keys, replay_keys, results) -> None:
        if self.transcript is None:
            return
        record["samples"] = [
            {
                "key": keys[i],
                "replay_key": replay_keys[i],
                "text": r.text,
                "finish_reason": r.finish_reason,
                "cached": i not in missing,
            }
            for i, r in enumerate(results)
            if r is not None
        ]
        self.transcript.write(record)

    def _from_replay(self, messages: Messages, replay_keys: list[str]) -> list[Completion]:
        out = []
        assert self._replay is not None
        place, self._replayed = self._replayed, self._replayed + 1
        in_order = self._replay_order[place] if self._replay_order and place < len(self._replay_order) else []
        if any(self._replay.get(k) is None for k in replay_keys) and len(in_order) >= len(replay_keys):
            self.usage.replayed_in_order += 1
            samples = in_order[: len(replay_keys)]
            out = [Completion(s["text"], s.get("finish_reason"), cached=True) for s in samples]
            self.usage.samples += len(out)
            self.usage.cache_hits += len(out)
            return out
        for key in replay_keys:
            sample = self._replay.get(key)
            if sample is None:
                first = str(messages[-1].get("content", ""))[:80] if messages else ""
                raise ReplayMissError(
                    f"replay: this request was never recorded (last message starts {first!r}); "
                    "replay only re-runs the recorded run with the same settings"
                )
            out.append(Completion(sample["text"], sample.get("finish_reason"), cached=True))
        self.usage.samples += len(out)
        self.usage.cache_hits += len(out)
        return out

    def _client(self) -> Any:
        if self._sdk is None:
            import openai

            s = self.settings
            self._sdk = openai.AsyncOpenAI(
                api_key=s.api_key or "not-needed", base_url=s.endpoint, timeout=s.timeout_s, max_retries=0
            )
            self._semaphore = asyncio.Semaphore(s.concurrency)
        return self._sdk

    def _charge(self, usage: Mapping[str, Any]) -> dict[str, Any]:
        pin, pout = self.settings.price()
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        cost = (prompt * pin + completion * pout) / 1e6
        with self._budget_lock:
            self.usage.prompt_tokens += prompt
            self.usage.completion_tokens += completion
            self.usage.cost_usd += cost
        return {"prompt_tokens": prompt, "completion_tokens": completion, "cost_usd": cost}

    def _reserve_call(self) -> None:
        s, u = self.settings, self.usage
        with self._budget_lock:
            if s.max_calls is not None and u.calls >= s.max_calls:
                raise BudgetExceededError(
                    f"LLM call budget of {s.max_calls} calls reached (${u.cost_usd:.4f} spent): "
                    "stopping; everything answered so far is saved"
                )
            if s.budget_usd is not None and u.cost_usd >= s.budget_usd:
                raise BudgetExceededError(
                    f"LLM budget of ${s.budget_usd:.2f} reached after {u.calls} calls (${u.cost_usd:.4f} "
                    "spent): stopping; everything answered so far is saved"
                )
            u.calls += 1

    async def _sample(
        self, messages: Messages, n: int, params: Mapping[str, Any]
    ) -> tuple[list[Completion], dict[str, Any]]:
        """``n`` fresh samples: one call with ``n`` where supported, parallel calls otherwise."""
        totals = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0, "calls": 0}
        out: list[Completion] = []
        if n > 1 and self._n_supported is not False:
            got = await self._call(messages, n, params, totals)
            out.extend(got)
            self._n_supported = len(got) >= n
        rest = n - len(out)
        if rest > 0:
            batches = await asyncio.gather(*(self._call(messages, 1, params, totals) for _ in range(rest)))
            out.extend(c for batch in batches for c in batch[:1])
        return out[:n], totals

    async def _call(
        self, messages: Messages, n: int, params: Mapping[str, Any], totals: dict[str, Any]
    ) -> list[Completion]:
        s = self.settings
        client = self._client()
        last = "no attempt"
        for attempt in range(s.max_retries + 1):
            self._reserve_call()
            totals["calls"] += 1
            try:
                assert self._semaphore is not None
                async with self._semaphore:
                    kwargs = {"n": n} if n > 1 else {}
                    # the raw reply, parsed here: the SDK's pydantic models cost ~ms per call,
                    # which serialises high-concurrency searches on one event loop
                    raw = await client.chat.completions.with_raw_response.create(
                        model=s.model, messages=messages, **kwargs, **params
                    )
                return self._parse(json.loads(raw.http_response.text), totals)
            except _Retryable as exc:
                last, delay = str(exc), exc.retry_after
            except Exception as exc:
                last, delay = self._classify(exc)
            if attempt < s.max_retries:
                backoff = min(s.max_backoff_s, s.backoff_s * 2**attempt) * random.uniform(0.5, 1.5)
                await asyncio.sleep(delay if delay is not None else backoff)
        raise LLMError(f"LLM endpoint {s.endpoint} failed after {s.max_retries + 1} tries: {last}")

    def _parse(self, data: Any, totals: dict[str, Any]) -> list[Completion]:
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list):
            raise _Retryable(f"malformed reply: {str(data)[:100]!r}")
        if not choices:
            raise _Retryable("the reply had no choices")
        charged = self._charge(data.get("usage") or {})
        for k in ("prompt_tokens", "completion_tokens", "cost_usd"):
            totals[k] += charged[k]
        try:
            return [Completion((c["message"].get("content") or ""), c.get("finish_reason")) for c in choices]
        except (KeyError, TypeError, AttributeError) as exc:
            raise _Retryable(f"malformed choice in reply: {str(choices)[:100]!r}") from exc

    def _classify(self, exc: Exception) -> tuple[str, float | None]:
        """(reason, retry-after) for errors worth retrying; raise at once for the others."""
        import openai

        s = self.settings
        if isinstance(exc, openai.NotFoundError):
            raise LLMError(f"model '{s.model}' not found at {s.endpoint} (404): check --llm-model") from exc
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            raise LLMError(
                f"{s.endpoint} refused the API key ({exc.status_code}): check OPENAI_API_KEY "
                "or REWARDGEN_LLM_API_KEY"
            ) from exc
        if isinstance(exc, openai.RateLimitError):
            return f"rate limited (429): {exc.message}", _retry_after(exc)
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code >= 500 or exc.status_code in (408, 409):
                return f"server error {exc.status_code}", _retry_after(exc)
            raise LLMError(f"{s.endpoint} rejected the request ({exc.status_code}): {exc.message}") from exc
        if isinstance(exc, openai.APITimeoutError):
            return f"no reply within {s.timeout_s:g} s", None
        if isinstance(exc, openai.APIConnectionError):
            return f"cannot connect ({exc.__cause__ or exc})", None
        if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | ValueError):
            return f"malformed reply ({type(exc).__name__})", None
        raise exc


def _retry_after(exc: Any) -> float | None:
    value = getattr(getattr(exc, "response", None), "headers", {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
