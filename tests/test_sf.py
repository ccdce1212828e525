"""The sample-factory back end (the sample-factory stack): APPO with the reward wrapper inside
each rollout worker's envs, for an in-process program, a sandboxed program and a combinator;
the run directory is the SB3 back end's; its evaluation equals an independent rollout of the
saved policy. On the current stack: the error says which stack to use."""

import importlib.util
import json

import numpy as np
import pytest

from rewardgen.errors import MissingExtraError, RewardgenError
from rewardgen.train import TrainConfig, train

HAS_SF = importlib.util.find_spec("sample_factory") is not None
needs_sf = pytest.mark.skipif(not HAS_SF, reason="sample-factory is on its own stack (make test-sf)")
SMALL = {"num_workers": 2, "num_envs_per_worker": 2, "batch_size": 256, "rollout": 32}


def _train(tmp_path, name, reward=None, steps=3000, **kw):
    kw = {"video": False, **kw}
    config = TrainConfig(
        task="hopper-run", reward=reward, steps=steps, backend="sf", eval_episodes=1,
        hyperparams=dict(SMALL), progress=False, **kw,
    )  # fmt: skip
    return train(config, out=tmp_path / name)


@pytest.mark.skipif(HAS_SF, reason="only where sample-factory is missing")
def test_the_sf_backend_names_the_stack_it_needs(tmp_path, capsys):
    with pytest.raises(MissingExtraError, match=r"gymnasium < 1\.0 and numpy < 2.*make test-sf"):
        train(TrainConfig(task="hopper-run", steps=1000, backend="sf"), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing half-made
    from rewardgen.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "hopper-run", "--backend", "sf", "--out", str(tmp_path / "cli")])
    assert exc.value.code == 2
    assert "pip install 'rewardgen[sf,mujoco]'" in capsys.readouterr().err  # brackets are not markup


@needs_sf
def test_appo_trains_a_program_in_the_rollout_workers_and_evaluates_like_an_independent_rollout(tmp_path):
    import gymnasium as gym

    from rewardgen.tasks import get_task
    from rewardgen.train.sf import SFPolicy

    result = _train(tmp_path, "run", video=True)
    run = result.run_dir
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backend"] == "sf" and manifest["status"] == "finished"
    assert manifest["sf_env_steps"] >= 3000 and manifest["sf"]["num_workers"] == 2
    for name in ("metrics.csv", "learning_curve.png", "eval.json", "video.mp4", "reward.py"):
        assert (run / name).is_file(), name
    assert list((run / "sf" / "checkpoint_p0").glob("checkpoint_*.pth"))
    header, *rows = (run / "metrics.csv").read_text().splitlines()
    assert rows and {"component/forward", "component/survive", "env_return_mean"} <= set(header.split(","))
    # the reference program reproduces Hopper's reward: synthesized and env returns agree in training
    last = dict(zip(header.split(","), rows[-1].split(","), strict=True))
    assert float(last["env_return_mean"]) == pytest.approx(float(last["reward_return_mean"]), rel=1e-5)

    # an independent rollout: plain gymnasium env, the saved checkpoint, the evaluation's seed
    policy, spec = SFPolicy(run, "hopper-run"), get_task("hopper-run")
    env = gym.make(spec.gym_id, **spec.resolved_env_kwargs())
    obs, _ = env.reset(seed=10_000)
    total, done = 0.0, False
    while not done:
        action, _ = policy.predict(obs[None], deterministic=True)
        obs, r, terminated, truncated, info = env.step(action[0])
        total, done = total + r, terminated or truncated
    ep = result.eval.episodes[0]
    assert ep.env_return == pytest.approx(total, rel=1e-6)
    assert ep.success_metric == pytest.approx(info["x_position"], abs=1e-9)  # final x position


@needs_sf
@pytest.mark.parametrize("kind", ["sandboxed", "combinator"])
def test_appo_trains_on_sandboxed_programs_and_combinators(tmp_path, kind):
    from rewardgen.code import SandboxLimits
    from rewardgen.rewards import FnSpec
    from rewardgen.tasks import get_task

    if kind == "sandboxed":
        spec = get_task("hopper-run").reference_reward(SandboxLimits())
    else:
        from rewardgen.rewards import WeightedSum

        reference = get_task("hopper-run").reference_reward()  # with this env version's parameters
        halves = {"run": (reference.build(), 1.0), "back": (reference.build(), -0.5)}
        spec = FnSpec(WeightedSum(halves), name="half")
    result = _train(tmp_path, kind, reward=spec, steps=2000)
    header, *rows = (result.run_dir / "metrics.csv").read_text().splitlines()
    cols = header.split(",")
    assert rows
    last = dict(zip(cols, rows[-1].split(","), strict=True))
    env_ret, rew_ret = float(last["env_return_mean"]), float(last["reward_return_mean"])
    if kind == "sandboxed":
        assert rew_ret == pytest.approx(env_ret, rel=1e-5)  # the program, run in the sandbox
    else:
        assert rew_ret == pytest.approx(0.5 * env_ret, rel=1e-4)  # r - 0.5 r
    assert np.isfinite(result.eval.reward_return_mean)


@needs_sf
def test_sf_refuses_what_it_does_not_do_yet(tmp_path):
    with pytest.raises(RewardgenError, match="does not do --eval-every"):
        _train(tmp_path, "x", eval_every=1000)
    with pytest.raises(RewardgenError, match="APPO"):
        _train(tmp_path, "y", algo="sac")


@needs_sf
def test_a_killed_run_resumes_from_its_checkpoint(tmp_path):
    """Kill -9 a training run (and its rollout workers) once it has saved a checkpoint; `train
    --resume` continues from there to the new step count in the same run directory."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    script = (
        "from rewardgen.train import TrainConfig, train\n"
        f"train(TrainConfig(task='hopper-run', steps=10**7, backend='sf', video=False, progress=False,"
        f" hyperparams={{**{SMALL!r}, 'save_every_sec': 1}}), out={str(run)!r})\n"
    )
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, **quiet)
    ckpt_dir, deadline = run / "sf" / "checkpoint_p0", time.monotonic() + 240
    steps = []
    while time.monotonic() < deadline and not any(s >= 2000 for s in steps):
        time.sleep(1)
        steps = [int(p.stem.rsplit("_", 1)[-1]) for p in ckpt_dir.glob("checkpoint_*.pth")]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert steps, "no checkpoint within 4 minutes"
    saved = max(int(p.stem.rsplit("_", 1)[-1]) for p in ckpt_dir.glob("checkpoint_*.pth"))
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"  # killed mid-run

    from rewardgen.cli import main

    small = ["--num-workers", "2", "--num-envs-per-worker", "2", "--no-video", "--eval-episodes", "1"]
    main(
        [
            "train",
            "--task",
            "hopper-run",
            "--backend",
            "sf",
            "--resume",
            str(run),
            "--steps",
            str(saved + 2000),
            *small,
        ]
    )
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["sf_env_steps"] >= saved + 2000
    timesteps = [int(r.split(",")[0]) for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert timesteps == sorted(timesteps) and timesteps[-1] > saved
    with pytest.raises(SystemExit):  # nothing left to do: the error says so
        main(["train", "--task", "hopper-run", "--backend", "sf", "--resume", str(run), "--steps", "1000"])


def test_checkpoints_with_numpy_scalars_load_with_torchs_safe_loader(tmp_path):
    """sample-factory saves its best performance as a numpy scalar; torch >= 2.6 loads with
    weights_only=True, which refused it (a resumed run, and the evaluation, could not read the
    checkpoint). Importing the back end allowlists numpy's scalar types, data not code."""
    import torch

    import rewardgen.train.sf  # noqa: F401

    path = tmp_path / "ckpt.pth"
    torch.save({"best_performance": np.float64(881.4), "env_steps": 401408, "model": {}}, path)
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    assert loaded["best_performance"] == pytest.approx(881.4)
