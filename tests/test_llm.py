"""The LLM layer against a real HTTP server on loopback, through the real openai SDK."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardgen.errors import RewardgenError
from rewardgen.llm import (
    BudgetExceededError,
    LLMClient,
    LLMError,
    LLMSettings,
    ReplayMissError,
    ResponseCache,
)
from rewardgen.llm.testing import Fault, LoopbackLLMServer

MSG = [{"role": "user", "content": "write a reward"}]


@pytest.fixture
def server():
    with LoopbackLLMServer() as s:
        yield s


def client_for(server, tmp_path, **kw):
    settings = LLMSettings(
        base_url=server.url,
        model="test-model",
        cache_path=tmp_path / "cache.sqlite",
        backoff_s=0.01,
        max_backoff_s=0.05,
        timeout_s=kw.pop("timeout_s", 5),
        **kw,
    )
    return LLMClient(settings, transcript=tmp_path / "run" / "llm" / "transcript.jsonl")


def test_n_samples_in_one_request(server, tmp_path):
    server.push("a", "b", "c")
    with client_for(server, tmp_path) as client:
        out = client.complete(MSG, n=3)
    assert [c.text for c in out] == ["a", "b", "c"]
    assert len(server.requests) == 1 and server.requests[0]["n"] == 3


def test_servers_without_n_get_parallel_requests(tmp_path):
    with LoopbackLLMServer(supports_n=False) as server:
        server.push("a", "b", "c")
        with client_for(server, tmp_path) as client:
            out = client.complete(MSG, n=3)
            assert sorted(c.text for c in out) == ["a", "b", "c"]
            assert len(server.requests) == 3
            server.push("d", "e")
            client.complete([{"role": "user", "content": "again"}], n=2)
            assert all("n" not in r for r in server.requests[3:])  # it remembered: no n any more


def test_cache_keys_each_sample(server, tmp_path):
    server.push("first")
    with client_for(server, tmp_path) as client:
        assert client.complete(MSG, n=1)[0].text == "first"
    server.push("second")
    with client_for(server, tmp_path) as client:  # a new process would see the same file
        out = client.complete(MSG, n=2)
        assert [c.text for c in out] == ["first", "second"]
        assert [c.cached for c in out] == [True, False]
        assert len(server.requests) == 2 and "n" not in server.requests[1]  # only sample 1 was asked for
        assert client.usage.cache_hits == 1
        # other parameters are other keys
        server.push("cold")
        assert client.complete(MSG, n=1, temperature=0.2)[0].text == "cold"


@pytest.mark.parametrize(
    "fault",
    [
        Fault.rate_limit(retry_after=0.05),
        Fault.server_error(500),
        Fault.server_error(503),
        Fault.drop(),
        Fault.malformed(),
        Fault.empty_choices(),
        Fault.hang(2.0),
    ],
    ids=["429", "500", "503", "drop", "malformed", "empty", "hang"],
)
def test_transient_faults_are_retried(server, tmp_path, fault):
    server.push(fault, "ok")
    with client_for(server, tmp_path, timeout_s=0.5) as client:
        assert client.complete(MSG)[0].text == "ok"
    assert len(server.requests) == 2


def test_retry_after_is_honoured(server, tmp_path):
    server.push(Fault.rate_limit(retry_after=0.6), "ok")
    with client_for(server, tmp_path) as client:
        t0 = time.perf_counter()
        client.complete(MSG)
        assert time.perf_counter() - t0 >= 0.55


@pytest.mark.parametrize(
    ("fault", "message"),
    [(Fault.not_found(), "model 'test-model' not found"), (Fault.unauthorized(), "refused the API key")],
)
def test_hopeless_errors_are_not_retried(server, tmp_path, fault, message):
    server.push(fault, "never")
    with client_for(server, tmp_path) as client, pytest.raises(LLMError, match=message):
        client.complete(MSG)
    assert len(server.requests) == 1


def test_unreachable_server_names_the_url(tmp_path):
    with LoopbackLLMServer() as server:
        url = server.url  # the port is free again once the server stops
    settings = LLMSettings(base_url=url, model="m", cache=False, max_retries=2, backoff_s=0.01)
    with LLMClient(settings) as client, pytest.raises(LLMError, match=f"{url}.*after 3 tries.*connect"):
        client.complete(MSG)


def test_missing_key_and_url(monkeypatch, tmp_path):
    for var in ("OPENAI_API_KEY", "REWARDGEN_LLM_API_KEY", "REWARDGEN_LLM_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    settings = LLMSettings.resolve(config_file=None)
    with pytest.raises(RewardgenError, match=r"OPENAI_API_KEY.*--llm-base-url"):
        LLMClient(settings)


def test_settings_precedence(monkeypatch, tmp_path):
    cfg = tmp_path / "llm.yaml"
    cfg.write_text("model: from-file\nbase_url: http://file:1/v1\nbudget_usd: 3\n")
    monkeypatch.setenv("REWARDGEN_LLM_MODEL", "from-env")
    s = LLMSettings.resolve(config_file=cfg)
    assert (s.model, s.base_url, s.budget_usd) == ("from-env", "http://file:1/v1", 3.0)
    assert LLMSettings.resolve(config_file=cfg, model="from-arg").model == "from-arg"
    cfg.write_text("modle: typo\n")
    with pytest.raises(RewardgenError, match="modle"):
        LLMSettings.resolve(config_file=cfg)


def test_cost_and_call_budget(server, tmp_path):
    server.push("a", "b")
    with client_for(server, tmp_path, max_calls=2) as client:
        client.complete(MSG)
        client.complete([{"role": "user", "content": "2"}])
        with pytest.raises(BudgetExceededError, match="2 calls"):
            client.complete([{"role": "user", "content": "3"}])
        assert client.complete(MSG)[0].text == "a"  # cached answers stay free
    lines = (tmp_path / "run" / "llm" / "transcript.jsonl").read_text().splitlines()
    assert [json.loads(x).get("error") is None for x in lines] == [True, True, False, True]
    server.push("x" * 400, "y")
    with client_for(server, tmp_path, budget_usd=0.5, prices={"test-model": (1e4, 1e4)}) as client:
        client.complete([{"role": "user", "content": "costly"}])
        assert client.usage.cost_usd == pytest.approx((2 + 101) * 1e4 / 1e6)
        with pytest.raises(BudgetExceededError, match=r"\$0.50 reached after 1 calls"):
            client.complete([{"role": "user", "content": "more"}])


def test_usage_and_price_table():
    assert LLMSettings(model="gpt-4o-2024-08-06").price() == LLMSettings(model="gpt-4o").price()
    assert LLMSettings(model="llama3.1:8b").price() == (0.0, 0.0)
    assert LLMSettings(model="mine", prices={"mine": (1.0, 2.0)}).price() == (1.0, 2.0)


def test_corrupt_cache_is_moved_aside(tmp_path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.warns(UserWarning, match="corrupt"):
        cache = ResponseCache(path)
    assert cache.moved_aside is not None and cache.moved_aside.exists()
    cache.put("k", {"text": "t"})
    assert cache.get("k") == {"text": "t"}


def test_transcript_and_offline_replay(server, tmp_path):
    server.push("one", "two", "three")
    with client_for(server, tmp_path) as client:
        first = [c.text for c in client.complete(MSG, n=2)]
        second = client.complete([{"role": "user", "content": "b"}])[0].text
        summary = client.usage.summary()
    assert "3 samples" in summary and "2 calls" in summary
    records = [
        json.loads(x) for x in (tmp_path / "run" / "llm" / "transcript.jsonl").read_text().splitlines()
    ]
    assert records[0]["prompt_tokens"] > 0 and records[0]["latency_s"] >= 0 and records[0]["cache_hits"] == 0
    server.stop()  # replay needs no server, no key
    replay = LLMClient(LLMSettings(model="test-model", cache=False), replay=tmp_path / "run")
    assert [c.text for c in replay.complete(MSG, n=2)] == first
    assert replay.complete([{"role": "user", "content": "b"}])[0].text == second
    with pytest.raises(ReplayMissError, match="never recorded"):
        replay.complete([{"role": "user", "content": "something new"}])


def test_async_calls_respect_the_concurrency_limit(tmp_path):
    with LoopbackLLMServer(responder=lambda r: "ok", latency_s=0.2) as server:
        client = client_for(server, tmp_path, concurrency=2, cache=False)

        async def many():
            return await asyncio.gather(
                *(client.acomplete([{"role": "user", "content": str(i)}]) for i in range(6))
            )

        t0 = time.perf_counter()
        out = asyncio.run(many())
        assert len(out) == 6 and time.perf_counter() - t0 >= 0.55  # 3 waves of 2, never 6 at once
        client.close()


CHILD = """
import sys
from rewardgen.llm import LLMClient, LLMSettings
s = LLMSettings(base_url=sys.argv[1], model="m", cache_path=sys.argv[2], timeout_s=60, max_retries=0)
c = LLMClient(s, transcript=sys.argv[3])
for i in range(3):
    c.complete([{"role": "user", "content": str(i)}])
"""


def test_killed_process_loses_nothing_answered(server, tmp_path):
    server.push("zero", "one", Fault.hang(30))
    cache, transcript = tmp_path / "cache.sqlite", tmp_path / "t.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, server.url, str(cache), str(transcript)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    deadline = time.time() + 60
    while len(server.requests) < 3 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-call: the third request hangs
    proc.wait()
    assert len(transcript.read_text().splitlines()) == 2
    settings = LLMSettings(base_url=server.url, model="m", cache_path=cache)
    with LLMClient(settings) as client:
        assert [client.complete([{"role": "user", "content": str(i)}])[0].text for i in range(2)] == [
            "zero",
            "one",
        ]
    assert len(server.requests) == 3  # both answers came from the cache
