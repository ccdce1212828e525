"""One short run that measures rewardgen on a GPU machine: VLM frames/s, PPO and APPO time to
success on halfcheetah-run. Prepared for the few minutes a GPU is lent; runs on a CPU too.

    python scripts/bench_gpu.py --device cuda            # each part at most --cap seconds
    python scripts/bench_gpu.py --device cpu --quick     # a check of the script itself

Parts (each a fresh process, as a user runs it; a part that is not installed is skipped):

1. VLM-RM scoring: ``scripts/bench_vlm.py`` (humanoid-kneel, 8 envs, a ViT-B-32-shaped CLIP
   with random weights): frames/s and encode/render.
2. SB3 PPO on halfcheetah-run, ``--until-success``: seconds and steps to the first evaluation
   in which every episode ran faster than 3 m/s; training steps/s.
3. sample-factory APPO, the same (where sample-factory is installed: its own stack), with the
   settings ``sf_profile`` picks for the machine (many cores or a GPU: sample-factory's own).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], cap: float) -> tuple[int, str, float]:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=cap, cwd=ROOT)
        return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return 124, out, time.monotonic() - start


def _train(backend: str, device: str, steps: str, cap: float, out: Path) -> str:
    cmd = [
        sys.executable, "-m", "rewardgen", "train", "--task", "halfcheetah-run", "--backend", backend,
        "--device", device, "--steps", steps, "--until-success", "--eval-every", "50000",
        "--no-video", "--eval-episodes", "2", "--out", str(out),
    ]  # fmt: skip
    code, text, wall = _run(cmd, cap)
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        return f"did not start ({code}): {text.strip().splitlines()[-1] if text.strip() else ''}"
    m = json.loads(manifest_path.read_text())
    hit = m.get("first_success")
    train_s = (m.get("timing") or {}).get("train_s")
    speed = f"{m.get('trained_steps', 0) / train_s:,.0f} steps/s" if train_s else "?"
    where = f"success at {hit['timesteps']:,} steps, {hit['wall_time_s']:.0f} s" if hit else "no success"
    return f"{where}; {speed}; command {wall:.0f} s (exit {code}); device {m.get('device')}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cap", type=float, default=150.0, help="seconds per part at most")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that the script runs")
    args = parser.parse_args()
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU"
    print(f"torch {torch.__version__}, {gpu}, {os.cpu_count()} CPU cores, --device {args.device}")
    steps = "20000" if args.quick else "1000000"
    with tempfile.TemporaryDirectory() as tmp:
        vlm = [
            sys.executable,
            "scripts/bench_vlm.py",
            "--device",
            args.device,
            "--steps",
            "3" if args.quick else "20",
        ]
        code, text, wall = _run(vlm, args.cap)
        lines = [ln for ln in text.splitlines() if "frames/s" in ln or "encode / render" in ln]
        print(f"1. VLM scoring ({wall:.0f} s, exit {code}): " + (" | ".join(lines[-3:]) or text[-300:]))
        print(f"2. SB3 PPO halfcheetah-run: {_train('sb3', args.device, steps, args.cap, Path(tmp) / 'sb3')}")
        if importlib.util.find_spec("sample_factory") is None:
            print("3. APPO: skipped (sample-factory is not installed here: its own stack, make .venv-sf)")
        else:
            print(f"3. APPO halfcheetah-run: {_train('sf', args.device, steps, args.cap, Path(tmp) / 'sf')}")


if __name__ == "__main__":
    main()
