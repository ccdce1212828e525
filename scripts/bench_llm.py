#!/usr/bin/env python
"""LLM client throughput and cache-hit overhead against the loopback server.

The server answers every request after a fixed 200 ms. 100 requests at concurrency 1, 8 and 32:
throughput as a ratio of the ideal (concurrency x 5 requests/s). Then the cache-hit path: the
mean time of a call answered from the SQLite cache. Targets: >= 0.8 of ideal at concurrency 32;
cache hit < 2 ms.

    python scripts/bench_llm.py [--requests 100] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

from rewardgen.llm import LLMClient, LLMSettings
from rewardgen.llm.testing import LoopbackLLMServer


def throughput(url: str, requests: int, concurrency: int) -> float:
    settings = LLMSettings(base_url=url, model="bench", cache=False, concurrency=concurrency)
    client = LLMClient(settings)

    async def run() -> None:
        await asyncio.gather(
            *(client.acomplete([{"role": "user", "content": f"{concurrency}-{i}"}]) for i in range(requests))
        )

    client.complete([{"role": "user", "content": "warm up"}])  # SDK import, connection
    t0 = time.perf_counter()
    asyncio.run_coroutine_threadsafe(run(), client._background_loop()).result()
    elapsed = time.perf_counter() - t0
    client.close()
    return requests / elapsed


def cache_hit_ms(url: str, calls: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        settings = LLMSettings(base_url=url, model="bench", cache_path=Path(tmp) / "cache.sqlite")
        with LLMClient(settings) as client:
            messages = [{"role": "user", "content": "cached question"}]
            client.complete(messages)
            t0 = time.perf_counter()
            for _ in range(calls):
                client.complete(messages)
            return (time.perf_counter() - t0) / calls * 1000


def _code_reply(request: dict) -> str:
    return "```python\nx = 1\n```"


def _serve(latency: float, urls: mp.Queue) -> None:
    """The server in its own process, as a real endpoint would be (the client keeps this one)."""
    with LoopbackLLMServer(responder=_code_reply, latency_s=latency) as server:
        urls.put(server.url)
        while True:
            time.sleep(3600)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2, help="server reply latency (s)")
    args = parser.parse_args()
    urls: mp.Queue = mp.Queue()
    proc = mp.Process(target=_serve, args=(args.latency, urls), daemon=True)
    proc.start()
    try:
        url = urls.get(timeout=30)
        print(
            f"loopback server (own process), {args.latency * 1000:.0f} ms per reply, {args.requests} requests"
        )
        print(
            "  ideal = concurrency / latency; "
            "wave-bound = requests / (ceil(requests / concurrency) * latency)"
        )
        for concurrency in (1, 8, 32):
            rate = throughput(url, args.requests, concurrency)
            ideal = concurrency / args.latency
            waves = args.requests / (math.ceil(args.requests / concurrency) * args.latency)
            print(
                f"  concurrency {concurrency:>2}: {rate:6.1f} req/s, ratio to ideal {rate / ideal:.2f}, "
                f"to wave-bound {rate / waves:.2f}"
            )
        print(f"  cache hit: {cache_hit_ms(url, 500):.3f} ms per call")
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
