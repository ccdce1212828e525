#!/usr/bin/env python
"""What a VLM reward costs per vector step: humanoid-kneel with 8 envs rendering 224x224 frames,
scored by a CLIP with ViT-B-32's shape (random weights: the same compute, nothing to download).

Prints frames/s end to end (env step + render + preprocess + encode) and each part's share, then
three ratios measured in this run:

- batched encode: one call for the 8 frames vs 8 one-frame calls (time per frame);
- preprocessing: rewardgen's batched torch resize/crop/normalise vs transformers'
  CLIPImageProcessor (PIL, one frame at a time) on the same frames;
- encode / render: the model's time against MuJoCo's (on a GPU the target is < 1: scoring is not
  the bottleneck).

    python scripts/bench_vlm.py [--envs 8] [--steps 20] [--device auto] [--batch 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardgen.tasks import make_env_fn
from rewardgen.vlm import HFModel
from rewardgen.vlm.testing import make_tiny_clip

TASK = "humanoid-kneel"
VIT_B_32 = {"image_size": 224, "dim": 512, "width": 768, "layers": 12, "heads": 12, "patch_size": 32}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="vector steps measured")
    parser.add_argument("--size", type=int, default=224, help="rendered frame size")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    folder = make_tiny_clip(tempfile.mkdtemp(prefix="vitb32-"), **VIT_B_32)
    model = HFModel(str(folder), device=args.device)
    device = model.device
    venv = DummyVecEnv(
        [make_env_fn(TASK, render_mode="rgb_array", width=args.size, height=args.size)] * args.envs
    )
    venv.seed(0)
    venv.reset()
    rng = np.random.default_rng(0)
    parts: dict[str, list[float]] = {"step": [], "render": [], "preprocess": [], "encode": []}
    frames = None
    for k in range(args.steps + 2):  # the first two warm up (GL contexts, kernels)
        t0 = time.perf_counter()
        venv.step(rng.uniform(-0.4, 0.4, size=(args.envs, 17)).astype(np.float32))
        t1 = time.perf_counter()
        frames = np.stack(venv.get_images())
        t2 = time.perf_counter()
        with torch.no_grad():
            x = model.preprocess(frames)
            _sync(device)
            t3 = time.perf_counter()
            model.model.get_image_features(pixel_values=x)
            _sync(device)
        t4 = time.perf_counter()
        if k >= 2:
            for name, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                parts[name].append(dt)
    venv.close()
    assert frames is not None
    median = {name: statistics.median(times) for name, times in parts.items()}
    total = sum(median.values())
    print(
        f"{TASK}, {args.envs} envs, {args.size}x{args.size} frames, CLIP ViT-B-32 shape on {device} "
        f"({torch.get_num_threads()} CPU threads), median of {args.steps} vector steps"
    )
    print(f"end to end: {args.envs / total:.1f} frames/s ({total * 1e3:.0f} ms per vector step)")
    for name, t in median.items():
        print(f"  {name:<10} {t * 1e3:8.1f} ms  {t / total:6.1%}")

    def timed(fn, repeats: int = 5) -> float:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    with torch.no_grad():
        batched = timed(lambda: model.encode_images(frames)) / len(frames)
        single = timed(lambda: [model.encode_images(f[None]) for f in frames]) / len(frames)
    print(
        f"batched encode: {batched * 1e3:.1f} ms/frame vs one frame a call {single * 1e3:.1f} ms/frame: "
        f"{single / batched:.2f}x faster"
    )

    import transformers  # the PIL image processor (transformers 5 names it apart from the torchvision one)

    processor_cls = getattr(transformers, "CLIPImageProcessorPil", transformers.CLIPImageProcessor)
    processor = processor_cls.from_pretrained(str(folder))
    ours = timed(lambda: model.preprocess(frames))
    theirs = timed(lambda: processor(images=list(frames), return_tensors="pt")["pixel_values"].to(device))
    print(
        f"preprocessing {len(frames)} frames: batched torch {ours * 1e3:.1f} ms vs CLIPImageProcessor "
        f"{theirs * 1e3:.1f} ms: {theirs / ours:.2f}x faster"
    )
    print(f"encode / render: {median['encode'] / median['render']:.2f} (target on a GPU: < 1)")


if __name__ == "__main__":
    main()
