#!/usr/bin/env python
"""What ONI costs the agent, one run, against a loopback LLM server that answers in 200 ms.

1. Env steps/s of 8 NetHack envs (a gymnasium SyncVectorEnv, random actions) with the ONI
   reward (retrieval, classification) against without, while the annotation service is busy
   labelling a backlog: alternating runs, median ratio. Target >= 0.9.
2. Annotation throughput: messages labelled per second at batch 32 (one request in flight).
3. Label-store lookups: reading the labels that arrived since the last sync, and all of them,
   with 10,000 labels in the store.
4. With sample-factory installed (the sample-factory stack): a short APPO run's env steps/s on
   nethack-score with the ONI reward against without.

    python scripts/bench_oni.py [--steps 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from rewardgen.llm import LLMSettings
from rewardgen.llm.testing import LoopbackLLMServer
from rewardgen.oni import AnnotationService, LabelStore, OniSpec, ServiceConfig, fit_classifier
from rewardgen.oni.classifier import save_classifier
from rewardgen.tasks import get_task, make_env, wrapper_kwargs
from rewardgen.wrappers import VectorRewardWrapper

TASK = "nethack-score"
MODEL = "bench"


def labeller(request: dict) -> str:
    listed = request["messages"][-1]["content"].split("Messages:\n", 1)[1].split("\n\n", 1)[0]
    lines = listed.splitlines()
    return "LABELS\n" + "\n".join(f"{i}: {'yes' if 'kill' in m else 'no'}" for i, m in enumerate(lines, 1))


def env_fps(spec: OniSpec | None, steps: int, n: int = 8) -> float:
    task = get_task(TASK)
    envs = gym.vector.SyncVectorEnv([functools.partial(make_env, task)] * n)
    if spec is not None:
        fn = spec.build()
        envs = VectorRewardWrapper(envs, fn, "add", 0.1, 0.4, **wrapper_kwargs(task, fn.fields))
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        envs.step(rng.integers(0, envs.single_action_space.n, n))
    done, started = 0, time.perf_counter()
    while done < steps:
        envs.step(rng.integers(0, envs.single_action_space.n, n))
        done += n
    rate = done / (time.perf_counter() - started)
    envs.close()
    return rate


def backlog(store: LabelStore, k: int, tag: str) -> None:
    store.submit([f"You hear the {tag} noise number {i}." for i in range(k)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-oni-"))
    lines = []
    with LoopbackLLMServer(responder=labeller, latency_s=0.2) as server:
        settings = LLMSettings(base_url=server.url, model=MODEL, cache=False, max_retries=0)

        # 1. the agent's steps while the service works through a backlog
        for kind in ("retrieval", "classification"):
            spec = OniSpec(root / f"{kind}.sqlite", model=MODEL, reward=kind)
            store = spec.store()
            if kind == "classification":  # a published model, so that it predicts every message
                clf = fit_classifier(["You kill the newt!", "It's a wall."] * 16, [1, 0] * 16)
                store.publish("classification", save_classifier(clf), 32)
            ratios = []
            with AnnotationService(store, settings, ServiceConfig(batch_size=32)):
                for k in range(args.rounds):
                    backlog(store, 2000, f"{kind}{k}")  # the service stays busy throughout
                    raw = env_fps(None, args.steps)
                    oni = env_fps(spec, args.steps)
                    ratios.append(oni / raw)
            lines.append(
                f"NetHack, 8 envs, ONI {kind:<14}: with/without = {statistics.median(ratios):.3f} "
                f"(median of {args.rounds} alternating runs of {args.steps:,} steps; raw {raw:.0f} steps/s; "
                f"the service busy against a 200 ms server)"
            )
            print(lines[-1], flush=True)

        # 2. throughput at batch 32
        store = LabelStore(root / "throughput.sqlite", OniSpec(root / "x", model=MODEL).key)
        backlog(store, 640, "throughput")
        started = time.perf_counter()
        with AnnotationService(store, settings, ServiceConfig(batch_size=32, poll_s=0.01)):
            while len(store.labels()) < 640:
                time.sleep(0.02)
        rate = 640 / (time.perf_counter() - started)
        lines.append(
            f"annotation: {rate:.0f} messages/s at batch 32 against a 200 ms server (start-up included)"
        )
        print(lines[-1], flush=True)

    # 3. lookups
    store = LabelStore(root / "lookup.sqlite", OniSpec(root / "x", model=MODEL).key)
    messages = [f"message {i}" for i in range(10_000)]
    store.submit(messages)
    store.put_labels({m: i % 2 for i, m in enumerate(messages)})
    since = time.time()
    store.put_labels({m: 1 for m in messages[:32]})
    reps = 200
    t0 = time.perf_counter()
    for _ in range(reps):
        store.labels(since=since - 0.001)
    recent = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(20):
        store.labels()
    full = (time.perf_counter() - t0) / 20
    lines.append(
        f"label store (10,000 labels): the 32 new since the last sync in {recent * 1e3:.2f} ms, "
        f"all in {full * 1e3:.1f} ms"
    )
    print(lines[-1], flush=True)

    # 4. APPO with and without ONI (sample-factory stack)
    if importlib.util.find_spec("sample_factory") is not None:
        lines.append(appo_line(root))
        print(lines[-1], flush=True)
    print("\n".join(lines))


def appo_line(root: Path) -> str:
    from sample_factory.envs.env_utils import register_env
    from sample_factory.train import make_runner

    from rewardgen.training.sf import make_sf_env, sf_config, sf_settings
    from rewardgen.training.sf.nethack import use_encoder_for

    task = get_task(TASK)
    rates = {}
    with LoopbackLLMServer(responder=labeller, latency_s=0.2) as server:
        settings = LLMSettings(base_url=server.url, model=MODEL, cache=False, max_retries=0)
        spec = OniSpec(root / "appo.sqlite", model=MODEL)
        with AnnotationService(spec.store(), settings):
            for name, reward in (("without", None), ("with", spec)):
                hp = {**use_encoder_for(task.gym_id), "save_every_sec": 600}
                s, vector = sf_settings(task, root / f"appo-{name}", 60_000, 0, "cpu", None, None, hp)
                factory = functools.partial(
                    make_sf_env,
                    task=task,
                    reward=reward,
                    mode="add",
                    vector=vector,
                    env_coef=0.1,
                    reward_coef=0.4,
                )
                register_env(s["env"], factory)
                _, runner = make_runner(sf_config(s))
                runner.init()
                runner.run()
                stats = list(runner.fps_stats)
                (t0, s0), (t1, s1) = stats[1], stats[-1]
                rates[name] = (s1 - s0) / (t1 - t0)
    return (
        f"APPO on {TASK} (2 workers x 4 envs, CPU): {rates['without']:.0f} env steps/s without ONI, "
        f"{rates['with']:.0f} with (retrieval): {rates['with'] / rates['without']:.3f}"
    )


if __name__ == "__main__":
    main()
