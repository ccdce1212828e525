#!/usr/bin/env python
"""Preference learning, measured in one run on this machine.

1. PrefPPO with the synthetic judge at 50, 200 and 1000 queries against PPO on the task's own
   reward, the same steps and seed: the final success metric of each, side by side, with each
   PrefPPO run's learned-vs-true reward correlation and its wall-clock time relative to PPO's.
2. The preference page: the time until a round of six 20-second videos is published (their WebM
   copies made), until the page is ready in Debian's chromium (every video can play; skipped
   without chromium + chromedriver), and from a submitted answer to the waiting judge's return
   (where the next round starts, leaving out training and the LLM).

    python scripts/bench_prefs.py [--task halfcheetah-run] [--steps 300000] [--queries 50 200 1000]
    python scripts/bench_prefs.py --page-only

ICPL's side of the comparison needs an LLM: run it against any OpenAI-compatible endpoint with
the synthetic judge (README, "ICPL"), e.g.
    rewardgen synthesize --task halfcheetah-run --method icpl --judge synthetic \\
        --llm-base-url http://localhost:8000/v1 --llm-model Qwen/Qwen2.5-Coder-32B-Instruct
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np


def rl(task: str, steps: int, queries: list[int], seed: int, out: Path) -> None:
    from rewardgen.preference.prefppo import PrefPPOConfig, train_prefppo
    from rewardgen.training import TrainConfig, train

    rows = []
    start = time.monotonic()
    ppo = train(TrainConfig(task=task, steps=steps, seed=seed, video=False, progress=False), out=out / "ppo")
    base_s = time.monotonic() - start
    rows.append(("PPO, task reward", "", ppo.eval, None, base_s))
    print(f"PPO: {ppo.eval.success_metric_mean:.3f} in {base_s:.0f} s", flush=True)
    for q in queries:
        start = time.monotonic()
        result, summary = train_prefppo(
            PrefPPOConfig(task=task, queries=q, steps=steps, seed=seed, video=False, progress=False),
            out=out / f"prefppo-{q}",
        )
        wall = time.monotonic() - start
        corr = summary["learned_vs_reference_correlation"]
        rows.append((f"PrefPPO, {q} queries", q, result.eval, corr, wall))
        print(
            f"PrefPPO {q}: {result.eval.success_metric_mean:.3f}, correlation {corr:.2f}, {wall:.0f} s",
            flush=True,
        )
    print(f"\n{task}, {steps:,} steps, seed {seed}; success metric: {ppo.eval.metric}\n")
    print("| reward | success metric | success rate | env return | learned vs true (r) | time vs PPO |")
    print("|---|---|---|---|---|---|")
    for name, _, ev, corr, wall in rows:
        r = f"{corr:.2f}" if corr is not None else "–"
        print(
            f"| {name} | {ev.success_metric_mean:.3f} | {ev.success_rate:.0%} | {ev.env_return_mean:.1f} "
            f"| {r} | {wall / base_s:.2f}x |"
        )


def page(out: Path) -> None:
    from rewardgen.feedback import Option
    from rewardgen.feedback.web import WebJudge
    from rewardgen.runs import write_video

    run = out / "page-run"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"status": "running", "config": {"method": "icpl"}}))
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(480, 480, 3), dtype=np.uint8)
    options = []
    for k in range(6):  # 20 s at 20 fps: the length of a MuJoCo episode film
        folder = run / "iter0" / f"cand{k}" / "train"
        folder.mkdir(parents=True)
        frames = [np.roll(base, 4 * f + 30 * k, axis=1) for f in range(400)]
        write_video(frames, folder / "video.mp4", fps=20)
        options.append(Option(f"cand{k}", video=folder / "video.mp4"))
    judge = WebJudge(run, port=0, show=lambda line: None)
    result: dict = {}
    start = time.monotonic()
    thread = threading.Thread(
        target=lambda: result.setdefault("choice", judge("iter0", options)), daemon=True
    )
    thread.start()
    while judge.server is None:
        time.sleep(0.01)
    publish_s = time.monotonic() - start
    url = judge.server.url
    print(f"round published (6 WebM copies made, server up): {publish_s:.2f} s")
    browser_s = _browser_ready(url)
    if browser_s is not None:
        print(f"page ready in chromium (every video can play): {browser_s:.2f} s")
    latencies = []
    for i in range(5):
        rid = "iter0" if i == 0 else f"iter{i}"
        if i:
            result.clear()
            thread = threading.Thread(
                target=lambda r=rid: result.setdefault("choice", judge(r, options)), daemon=True
            )
            thread.start()
            while judge.board.pending() is None or judge.board.pending().round != rid:
                time.sleep(0.01)
        body = json.dumps({"round": rid, "best": "cand1", "worst": "cand0"}).encode()
        sent = time.monotonic()
        req = urllib.request.Request(
            url + "api/answer", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req) as resp:
            assert resp.status == 200
        thread.join()
        latencies.append(time.monotonic() - sent)
    judge.close()
    print(
        f"answer submitted -> the judge returns (the next round can start): "
        f"median {np.median(latencies):.2f} s"
    )


def _browser_ready(url: str) -> float | None:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    if not (chromium and driver_path):
        return None
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        start = time.monotonic()
        driver.get(url)
        ready = (
            "const v = document.querySelectorAll('#grid video'); "
            "return v.length == 6 && Array.from(v).every(x => x.readyState >= 3)"
        )
        while not driver.execute_script(ready):
            time.sleep(0.02)
        return time.monotonic() - start
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="halfcheetah-run")
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--queries", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--page-only", action="store_true", help="only the page's timings")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench_prefs-"))
    page(out)
    if not args.page_only:
        rl(args.task, args.steps, args.queries, args.seed, out)
    print(f"\nruns in {out}")


if __name__ == "__main__":
    main()
