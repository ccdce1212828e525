"""The sample-factory back end (the sample-factory stack): APPO with the reward wrapper inside
each rollout worker's envs, for an in-process program, a sandboxed program and a combinator;
the run directory is the SB3 back end's; its evaluation equals an independent rollout of the
saved policy. On the current stack: the error says which stack to use."""

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from rewardgen.errors import MissingExtraError, RewardgenError
from rewardgen.training import TrainConfig, train

HAS_SF = importlib.util.find_spec("sample_factory") is not None
needs_sf = pytest.mark.skipif(not HAS_SF, reason="sample-factory is on its own stack (make test-sf)")
SMALL = {"num_workers": 2, "num_envs_per_worker": 2, "batch_size": 256, "rollout": 32}


def _train(tmp_path, name, reward=None, steps=3000, **kw):
    kw = {"video": False, "hyperparams": dict(SMALL), "progress": False, **kw}
    config = TrainConfig(task="hopper-run", reward=reward, steps=steps, backend="sf", eval_episodes=1, **kw)
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
    from rewardgen.training.sf import SFPolicy

    result = _train(tmp_path, "run", video=True)
    run = result.run_dir
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backend"] == "sf" and manifest["status"] == "finished"
    assert manifest["trained_steps"] >= 3000 and manifest["sf"]["num_workers"] == 2
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
    # final x position (the evaluation steps ten envs at once: a batch of ten through the policy
    # rounds its last digits apart from one observation alone)
    assert ep.success_metric == pytest.approx(info["x_position"], abs=1e-6)


@needs_sf
@pytest.mark.parametrize("kind", ["sandboxed", "combinator"])
def test_appo_trains_on_sandboxed_programs_and_combinators(tmp_path, kind):
    from rewardgen.programs import SandboxLimits
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
def test_sf_refuses_what_it_does_not_do(tmp_path):
    with pytest.raises(RewardgenError, match="APPO"):
        _train(tmp_path, "y", algo="sac")


@needs_sf
def test_sf_evaluates_periodically_and_stops_at_success_and_at_a_stop_file(tmp_path):
    from rewardgen.tasks import MetricSpec, get_task
    from rewardgen.training.periodic import read_evals

    spec = get_task("hopper-run")
    easy = spec.model_copy(update={"metric": MetricSpec(field="x_velocity", reduce="mean", below=100.0)})
    hard = spec.model_copy(update={"metric": MetricSpec(field="x_velocity", reduce="mean", above=100.0)})
    common = {
        "video": False,
        "hyperparams": dict(SMALL),
        "backend": "sf",
        "eval_episodes": 1,
        "progress": False,
    }
    # every policy meets the easy metric: training stops at the first evaluation, far before 200k
    result = train(
        TrainConfig(task=easy, steps=200_000, eval_every=2000, stop_on_success=True, **common),
        out=tmp_path / "easy",
    )
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["stopped_early"] == "succeeded" and manifest["first_success"]["timesteps"] >= 2000
    assert manifest["trained_steps"] < 50_000 and manifest["status"] == "finished"
    (row,) = read_evals(result.run_dir / "evals.csv")
    assert row["success_rate"] == 1.0 and row["succeeded"] == 1  # every episode met the line; the verdict
    assert row["confirmation_mean"] == pytest.approx(result.eval.success_metric_mean, abs=1e-5)
    # the run keeps the checkpoint that evaluation judged, not the ones saved as training wound down
    ckpts = sorted((result.run_dir / "sf" / "checkpoint_p0").glob("checkpoint_*.pth"))
    assert int(ckpts[-1].stem.rsplit("_", 1)[-1]) == manifest["first_success"]["timesteps"]
    assert not (result.run_dir / "succeeded").exists()
    assert manifest["timing"]["eval_s"] > 0 and manifest["timing"]["train_s"] > 0
    # the hard one never succeeds: evaluated every 2000 steps until its steps are done
    result = train(
        TrainConfig(task=hard, steps=8000, eval_every=2000, stop_on_success=True, **common),
        out=tmp_path / "hard",
    )
    rows = read_evals(result.run_dir / "evals.csv")
    steps = [int(r["timesteps"]) for r in rows]
    assert len(steps) >= 3 and steps == sorted(steps)
    assert all(
        r["success_rate"] == 0.0 and r["succeeded"] == 0 and "confirmation_mean" not in r for r in rows
    )
    # a search's stop file ends training at once, with the reason it gives
    stop = tmp_path / "stop"
    stop.write_text("another candidate succeeded\n")
    result = train(
        TrainConfig(task=hard, steps=500_000, stop_file=str(stop), **common), out=tmp_path / "stopped"
    )
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["stopped_early"] == "another candidate succeeded" and manifest["trained_steps"] < 50_000
    assert (result.run_dir / "eval.json").is_file()  # stopped, then evaluated as any run


@needs_sf
def test_sf_settings_suit_the_machine(monkeypatch):
    from rewardgen.tasks import get_task
    from rewardgen.training.sf import sf_profile, sf_settings

    cheetah = get_task("halfcheetah-run")
    assert sf_profile(cheetah, "cpu", cores=2) == "few-cores"
    assert sf_profile(cheetah, "cpu", cores=32) == sf_profile(cheetah, "cuda", cores=2) == "sample-factory"
    assert sf_profile(get_task("nethack-score"), "cpu", cores=2) == "sample-factory"
    monkeypatch.setattr("rewardgen.training.sf.settings._cpu_count", lambda: 2)  # where sf_settings reads it
    settings, per_vector = sf_settings(cheetah, Path("/tmp/x"), 1000, 0, "cpu", 2, None, {})
    assert settings["rollout"] == 128 and settings["num_epochs"] == 10 and per_vector * 2 * 2 == 16


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
        "from rewardgen.training import TrainConfig, train\n"
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
    assert manifest["status"] == "finished" and manifest["trained_steps"] >= saved + 2000
    timesteps = [int(r.split(",")[0]) for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert timesteps == sorted(timesteps) and timesteps[-1] > saved
    with pytest.raises(SystemExit):  # nothing left to do: the error says so
        main(["train", "--task", "hopper-run", "--backend", "sf", "--resume", str(run), "--steps", "1000"])


def test_checkpoints_with_numpy_scalars_load_with_torchs_safe_loader(tmp_path):
    """sample-factory saves its best performance as a numpy scalar; torch >= 2.6 loads with
    weights_only=True, which refused it (a resumed run, and the evaluation, could not read the
    checkpoint). Importing the back end allowlists numpy's scalar types, data not code."""
    import torch

    import rewardgen.training.sf  # noqa: F401

    path = tmp_path / "ckpt.pth"
    torch.save({"best_performance": np.float64(881.4), "env_steps": 401408, "model": {}}, path)
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    assert loaded["best_performance"] == pytest.approx(881.4)


@needs_sf
def test_a_vectorized_env_reports_each_finished_episode_as_the_wrapper_summed_it():
    """Batched sampling (the default): sample-factory steps one SFVectorEnv per split; the
    episodes that end in a step come out, row by row, as the reward wrapper summed them."""
    import torch
    from sample_factory.algo.utils.make_env import make_env_func_batched
    from sample_factory.algo.utils.misc import EPISODIC
    from sample_factory.envs.env_utils import register_env
    from sample_factory.utils.attr_dict import AttrDict

    from rewardgen.tasks import get_task
    from rewardgen.training.sf import episodes_from_stats, make_sf_env, sf_config, sf_settings

    task = get_task("hopper-run")
    settings, vector = sf_settings(task, Path("unused"), 1000, 0, "cpu", 1, 6, {})
    assert settings["batched_sampling"] and settings["num_envs_per_worker"] == 2 and vector == 3
    register_env(
        settings["env"],
        functools.partial(make_sf_env, task=task, reward=task.reference_reward(), vector=vector),
    )
    env = make_env_func_batched(sf_config(settings), AttrDict(worker_index=0, vector_index=0, env_id=0))
    assert env.num_agents == 3
    env.seed(0)
    env.reset()
    returns, seen = torch.zeros(3, dtype=torch.float64), []
    rng = np.random.default_rng(0)
    while len(seen) < 6:
        _obs, rew, terminated, truncated, infos = env.step(torch.as_tensor(rng.uniform(-1, 1, (3, 3))))
        returns += rew
        done = (terminated | truncated).nonzero(as_tuple=True)[0]
        if len(done):  # what sample-factory's batched runner keeps of the report: the finished rows
            stats = {
                f"episode_extra_stats/{k}": v[done].numpy() for k, v in infos["episode_extra_stats"].items()
            }
            episodes = episodes_from_stats({EPISODIC: None, **stats})
            for i, ep in zip(done.tolist(), episodes, strict=True):
                assert ep["reward_return"] == pytest.approx(float(returns[i]), rel=1e-4)
                assert ep["env_return"] == pytest.approx(ep["reward_return"], rel=1e-5)  # the reference
                assert set(ep["components"]) == {"forward", "survive", "ctrl_cost"}
                seen.append(ep)
            returns[done] = 0
    env.close()


@needs_sf
def test_non_batched_sampling_still_trains(tmp_path):
    result = _train(tmp_path, "nb", steps=2000, hyperparams={**SMALL, "batched_sampling": False})
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["sf_envs_per_vector"] == 0 and manifest["sf"]["num_envs_per_worker"] == 2
    assert (result.run_dir / "metrics.csv").read_text().count("\n") >= 2


@needs_sf
def test_a_run_over_its_wall_clock_budget_stops_and_says_so(tmp_path):
    import time

    from rewardgen.training import OverBudgetError

    started = time.monotonic()
    with pytest.raises(OverBudgetError, match="over its wall-clock budget of 20 s"):
        _train(tmp_path, "slow", steps=10**8, time_budget_s=20)
    assert time.monotonic() - started < 90
    manifest = json.loads((tmp_path / "slow" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "wall-clock budget" in manifest["error"]


BACKWARD = """```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    backward = -WEIGHT * info["x_velocity"]
    return backward - 0.1 * np.sum(action**2, axis=1), {"backward": backward}
```"""


@needs_sf
def test_a_search_trains_its_candidates_with_appo(tmp_path):
    """`synthesize --backend sf`: sandboxed candidates train with APPO in a pool of two (each
    with its share of the cores), successive halving continues the better one from its
    sample-factory checkpoint, a crashed candidate does not stop the search, the best is filmed."""
    from rewardgen.llm import LLMClient, LLMSettings
    from rewardgen.llm.testing import LoopbackLLMServer
    from rewardgen.runs import RunDir
    from rewardgen.synthesis import SearchConfig, synthesize

    weak, strong = (BACKWARD.replace("WEIGHT", w) for w in ("0.2", "3.0"))
    broken = BACKWARD.replace('info["x_velocity"]', 'info["x_vel"]').replace("WEIGHT", "1.0")
    config = SearchConfig(
        task="hopper-run-backward", method="text2reward", samples=3, steps=4096, eval_episodes=1,
        backend="sf", workers=2, early_stop=True, halving_tolerance=0.0, videos=1,
        hyperparams={"num_envs_per_worker": 2, "batch_size": 256, "rollout": 32, "save_every_sec": 2},
    )  # fmt: skip
    run = RunDir.create(config.task, config.method, {}, out=tmp_path / "search")
    with LoopbackLLMServer() as server:
        server.push([weak, broken, strong])
        client = LLMClient(LLMSettings(base_url=server.url, model="m", cache=False))
        try:
            summary = synthesize(config, client, run)
        finally:
            client.close()
    a, b, c = summary["candidates"]
    assert b["status"] == "failed" and "x_vel" in b["reason"]
    assert a["status"] == c["status"] == "trained"
    survivor = a if c["pruned"] else c
    assert survivor["steps"] == 4096 and (a["pruned"] or c["pruned"])
    train_dir = Path(survivor["path"]) / "train"
    manifest = json.loads((train_dir / "manifest.json").read_text())
    assert manifest["backend"] == "sf" and manifest["trained_steps"] >= 4096
    assert manifest["sf"]["num_workers"] == 1  # two candidates at once on this machine's cores
    steps = [int(r.split(",")[0]) for r in (train_dir / "metrics.csv").read_text().split()[1:]]
    assert steps == sorted(steps) and steps[-1] > 2048  # the halving rung went on from its checkpoint
    assert (train_dir / RunDir.VIDEO).is_file()  # filmed from the sample-factory policy
    assert "backend" in json.loads((run.path / "manifest.json").read_text())["config"]


@needs_sf
def test_every_mujoco_catalog_task_steps_in_a_vectorized_env_on_this_stack():
    """`--backend sf` trains any MuJoCo catalog task with its reference reward (the env as each
    rollout worker builds it steps); Meta-World cannot live on this stack and says so."""
    from rewardgen.tasks import get_task, list_tasks
    from rewardgen.tasks.make import MUJOCO_ENVS
    from rewardgen.training.sf import make_sf_env

    tasks = [get_task(t) for t in list_tasks()]
    mujoco = [t for t in tasks if t.gym_id.split("-")[0] in MUJOCO_ENVS or t.gym_id.startswith("rewardgen/")]
    assert len(mujoco) >= 16
    for spec in mujoco:
        env = make_sf_env("x", task=spec, reward=spec.reference_reward(), vector=2)
        env.reset(seed=0)
        for _ in range(3):
            _, reward, *_ = env.step(np.stack([env.action_space.sample()] * 2))
            assert reward.shape == (2,) and np.isfinite(reward).all(), spec.id
        env.close()
    metaworld = next(t for t in tasks if t.package == "metaworld")
    with pytest.raises(MissingExtraError, match=r"gymnasium >= 1\.1.*--backend sb3"):
        make_sf_env("x", task=metaworld, reward=None, vector=2)


@needs_sf
def test_sample_factorys_lines_go_to_a_log_file_and_rewardgen_shows_its_progress(tmp_path, capfd):
    result = _train(tmp_path, "quiet", steps=4000, progress=True)
    out, err = capfd.readouterr()
    log = (result.run_dir / "sf_output.log").read_text()
    assert "Fps is" in log or "Collected" in log or "Saving" in log  # sample-factory's own lines
    assert "Fps is" not in err and "Saving" not in err  # none of them on the terminal
    assert "sf: " in out and "steps" in out  # rewardgen's progress: a line a tenth (not a terminal)
    # TensorBoard: rewardgen's scalars beside metrics.csv, sample-factory's own under sf/
    assert list(result.run_dir.glob("events.out.tfevents.*"))
    _train(tmp_path, "loud", steps=2000, verbose=True)
    _, err = capfd.readouterr()
    assert not (tmp_path / "loud" / "sf_output.log").exists() and err.strip()
