import csv
import importlib.util
import json

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest

from rewardgen.diagnostics.check import check_reward
from rewardgen.errors import RewardgenError
from rewardgen.programs import ProgramSpec
from rewardgen.rewards import RewardFn, RewardOutput
from rewardgen.tasks import VERDICT_EPISODES, get_task
from rewardgen.training import TrainConfig, resolve_device, train
from rewardgen.training.sb3.hyperparams import FAST_PPO

FAST = {**FAST_PPO, "n_steps": 256}


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "hc"
    config = TrainConfig(
        task="halfcheetah-run",
        steps=1024,
        n_envs=1,  # an episode (1000 steps) ends within the 1024 steps
        eval_episodes=1,
        video_steps=40,
        hyperparams=FAST,
        progress=False,
        checkpoint_every=512,
    )
    return train(config, out=out)


def test_training_writes_a_complete_run_directory(ppo_run):
    run = ppo_run.run_dir
    for name in (
        "manifest.json",
        "metrics.csv",
        "learning_curve.png",
        "video.mp4",
        "reward.py",
        "eval.json",
        "model.zip",
        "vecnormalize.pkl",
        "checkpoints/model.zip",
    ):
        assert (run / name).is_file(), name
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    assert manifest["config"]["steps"] == 1024 and manifest["config"]["algo"] == "ppo"
    assert manifest["versions"]["gymnasium"] == gym.__version__
    assert len(manifest["reward"]["sha256"]) == 64
    assert (run / "reward.py").read_text().startswith('"""HalfCheetah')


def test_videos_for_comparison_hold_the_last_frame_to_one_length(ppo_run, tmp_path):
    """ICPL and report.html show videos side by side: an episode that ends before video_steps
    (HalfCheetah's 1000 steps, 1010 asked) holds its last frame; evaluate's default does not."""
    import shutil

    from rewardgen.training import evaluate

    run = tmp_path / "copy"
    shutil.copytree(ppo_run.run_dir, run)
    spec = get_task("halfcheetah-run").reference_reward()
    evaluate(run, "halfcheetah-run", spec, episodes=1, video_steps=1010, eval_file=None, pad_video=True)
    frames = imageio.mimread(run / "video.mp4", memtest=False)

    def gap(a, b):  # the video is lossy: a held frame comes back nearly, not exactly, equal
        return float(np.abs(a.astype(int) - b.astype(int)).mean())

    assert len(frames) == 1010 and gap(frames[-1], frames[-9]) < 0.5
    assert gap(frames[0], frames[-1]) > 5 * gap(frames[-1], frames[-9])


def test_metrics_log_env_and_synthesized_returns(ppo_run):
    with (ppo_run.run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and {
        "env_return_mean",
        "reward_return_mean",
        "success_metric_mean",
        "component/forward",
        "component/ctrl_cost",
    } <= set(rows[0])
    row = rows[-1]
    # the reference reward is the env's own: both returns agree, and components add up to it
    assert float(row["env_return_mean"]) == pytest.approx(float(row["reward_return_mean"]), rel=1e-4)
    parts = float(row["component/forward"]) + float(row["component/ctrl_cost"])
    assert parts == pytest.approx(float(row["reward_return_mean"]), rel=1e-3, abs=1e-3)


def test_evaluation_and_video(ppo_run):
    ev = json.loads((ppo_run.run_dir / "eval.json").read_text())
    # the task's rule asks for 10 episodes (eval_episodes=1 asked fewer), run in parallel
    assert len(ev["episodes"]) == VERDICT_EPISODES and ev["episodes"][0]["length"] == 1000
    assert ev["succeeded"] == (ev["success_rate"] == 1.0)  # halfcheetah-run: every episode meets the line
    frames = imageio.mimread(ppo_run.run_dir / "video.mp4")
    assert len(frames) == 40 and frames[0].ndim == 3 and frames[0].shape[2] == 3
    assert np.std(frames[0]) > 1  # a rendered scene, not a blank frame


def test_a_film_keeps_about_30_frames_a_second_of_the_episode(tmp_path):
    """Hopper runs at 125 steps a second and a frame costs tens of ms to render on the CPU: the
    film renders every 4th step and plays at 31 fps (the same seconds of the episode)."""
    config = TrainConfig(
        task="hopper-run",
        steps=256,
        n_envs=1,
        eval_episodes=1,
        video_steps=40,
        hyperparams=FAST,
        progress=False,
    )
    run = train(config, out=tmp_path / "hopper").run_dir
    reader = imageio.get_reader(run / "video.mp4")
    fps = reader.get_meta_data()["fps"]
    frames = [f for f in reader]
    length = json.loads((run / "eval.json").read_text())["episodes"][0]["length"]
    assert round(fps) == 31 and len(frames) == -(-min(length, 40) // 4)


def test_sac_with_a_user_reward_and_add_mode(tmp_path):
    reward = tmp_path / "r.py"
    reward.write_text(
        "import numpy as np\n"
        "def compute_reward(obs, action, next_obs, info):\n"
        "    up = np.maximum(info['torso_z'], 0)\n"
        "    return up, {'up': up}\n"
    )
    config = TrainConfig(
        task="hopper-jump",
        reward=ProgramSpec.from_file(reward),
        algo="sac",
        steps=300,
        video=False,
        eval_episodes=1,
        mode="add",
        progress=False,
        hyperparams={"learning_starts": 100},
    )
    result = train(config, out=tmp_path / "run")
    assert (result.run_dir / "model.zip").is_file()
    assert json.loads((result.run_dir / "manifest.json").read_text())["config"]["mode"] == "add"
    ep = result.eval.episodes[0]
    assert ep.env_return > 0 and "up" in ep.components


def test_video_needs_rgb_array_rendering(tmp_path):
    gym.register("rewardgen-test/NoRender-v0", entry_point="conftest:CountEnv", kwargs={"length": 5})
    (tmp_path / "r.py").write_text(
        "def compute_reward(obs, action, next_obs, info):\n    return info['t'], {}\n"
    )
    (tmp_path / "task.yaml").write_text(
        "id: norender\nenv_id: rewardgen-test/NoRender-v0\ngoal: count\naction: one number\nreward: r.py\n"
        "fields: {t: {source: info.t, doc: step count}}\nmetric: {field: t, reduce: max, above: 1}\n"
    )
    import conftest

    conftest.CountEnv.metadata = {"render_modes": []}
    try:
        with pytest.raises(RewardgenError, match=r"cannot render rgb_array frames.*--no-video"):
            train(TrainConfig(task=str(tmp_path / "task.yaml"), steps=64, progress=False), out=tmp_path / "x")
    finally:
        conftest.CountEnv.metadata = {"render_modes": ["rgb_array"], "render_fps": 10}


def test_bad_training_inputs(tmp_path):
    with pytest.raises(RewardgenError, match="unknown algorithm 'dqn'"):
        train(TrainConfig(task="hopper-run", algo="dqn", steps=10), out=tmp_path / "a")
    with pytest.raises(RewardgenError, match="not found"):
        train(TrainConfig(task="hopper-run", reward=ProgramSpec.from_file(tmp_path / "none.py"), steps=10))
    with pytest.raises(RewardgenError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_a_broken_reward_fails_the_run_and_says_why(tmp_path):
    (tmp_path / "r.py").write_text(
        "def compute_reward(obs, action, next_obs, info):\n    return info['x_velocity'] / 0.0, {}\n"
    )
    with pytest.raises(RewardgenError, match="total reward has NaN or inf"):
        train(
            TrainConfig(
                task="halfcheetah-run",
                reward=ProgramSpec.from_file(tmp_path / "r.py"),
                steps=256,
                video=False,
                hyperparams=FAST,
                progress=False,
            ),
            out=tmp_path / "run",
        )
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "NaN or inf" in manifest["error"]


def test_check_reward_reports_components_and_env_gap():
    stats = check_reward("walker2d-run", steps=50, n_envs=2)
    assert stats["max_abs_diff_to_env"] < 1e-6
    assert {"total", "forward", "survive", "ctrl_cost"} <= set(stats["terms"])
    backward = check_reward("walker2d-run-backward", steps=50, n_envs=2)
    assert backward["max_abs_diff_to_env"] > 0.01


@pytest.mark.slow
def test_ppo_learns_halfcheetah_on_the_reference_reward(tmp_path):
    """The demo's promise, smaller: 40k steps of quick PPO raise the env's own return."""
    config = TrainConfig(
        task="halfcheetah-run",
        steps=40_000,
        n_envs=1,  # the quick one-env settings: 40 episodes end, so the curve has a start and an end
        hyperparams=dict(FAST_PPO),
        video=False,
        eval_episodes=1,
        progress=False,
    )
    result = train(config, out=tmp_path / "run")
    with (result.run_dir / "metrics.csv").open() as f:
        returns = [float(r["env_return_mean"]) for r in csv.DictReader(f)]
    assert np.mean(returns[-5:]) > np.mean(returns[:5]) + 100


def test_training_continues_from_a_saved_run(tmp_path):
    """Successive halving and interrupted runs continue a saved policy: its weights, its
    VecNormalize statistics and its step count carry over, and metrics.csv grows."""
    from stable_baselines3 import PPO

    base = dict(
        task="halfcheetah-run", n_envs=1, eval_episodes=1, video=False, hyperparams=FAST, progress=False
    )
    first = train(TrainConfig(steps=1024, **base), out=tmp_path / "run")
    rows_before = (first.run_dir / "metrics.csv").read_text().splitlines()
    weights = PPO.load(first.run_dir / "model.zip").policy.state_dict()
    cont = train(TrainConfig(steps=2048, resume_from=str(first.run_dir), **base), out=tmp_path / "run")
    rows_after = (cont.run_dir / "metrics.csv").read_text().splitlines()
    assert rows_after[: len(rows_before)] == rows_before and len(rows_after) > len(rows_before)
    steps = [int(r.split(",")[0]) for r in rows_after[1:]]
    assert steps == sorted(steps) and steps[-1] > 1024
    model = PPO.load(cont.run_dir / "model.zip")
    assert model.num_timesteps == 2048
    changed = model.policy.state_dict()
    assert any(not np.allclose(weights[k].numpy(), changed[k].numpy()) for k in weights)
    with pytest.raises(RewardgenError, match="already trained 2048 steps"):
        train(TrainConfig(steps=2048, resume_from=str(cont.run_dir), **base), out=tmp_path / "again")
    with pytest.raises(RewardgenError, match=r"no model\.zip"):
        train(TrainConfig(steps=2048, resume_from=str(tmp_path), **base), out=tmp_path / "x")


@pytest.mark.parametrize("task", ["hopper-run-backward", "pendulum"])
def test_deferred_rewards_train_exactly_like_per_step_rewards(tmp_path, task):
    """One reward call per PPO rollout (what sandboxed programs use) gives the same policy, the
    same reward statistics and the same evaluation as one call per step; terminations (Hopper)
    and time-limit truncations with their value bootstrap (Pendulum) included."""
    import pickle

    from stable_baselines3 import PPO

    from rewardgen.tasks import derive_task, save_task_file

    if task == "pendulum":
        notes = {"fields": {"cos_theta": {"source": "obs[0]", "doc": "cos"}}}
        task = str(save_task_file(derive_task("Pendulum-v1", "up", notes), tmp_path / "p.yaml").path)
        code = "def compute_reward(obs, action, next_obs, info):\n    return info['cos_theta'], {}\n"
    else:
        code = (
            "import numpy as np\n\ndef compute_reward(obs, action, next_obs, info):\n"
            "    v = -info['x_velocity']\n    c = 0.1 * np.sum(action**2, axis=1)\n"
            "    return v - c, {'v': v, 'c': -c}\n"
        )
    (tmp_path / "r.py").write_text(code)
    runs, spec = {}, ProgramSpec.from_file(tmp_path / "r.py")
    for defer in (False, True):
        runs[defer] = train(
            TrainConfig(
                task=task, reward=spec, steps=1024, n_envs=2, eval_episodes=1, video=False,
                hyperparams={**FAST, "n_steps": 256}, progress=False, defer_reward=defer,
            ),
            out=tmp_path / f"defer{defer}",
        )  # fmt: skip
    assert json.loads((runs[True].run_dir / "manifest.json").read_text())["deferred_reward"] is True
    a, b = (PPO.load(runs[d].run_dir / "model.zip").policy.state_dict() for d in (False, True))
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
    na, nb = (pickle.loads((runs[d].run_dir / "vecnormalize.pkl").read_bytes()) for d in (False, True))
    np.testing.assert_allclose(na.ret_rms.var, nb.ret_rms.var, rtol=1e-5)
    assert runs[False].eval.reward_return_mean == pytest.approx(runs[True].eval.reward_return_mean, rel=1e-4)
    rows = [r for r in csv.DictReader((runs[True].run_dir / "metrics.csv").open())]
    assert rows and int(rows[-1]["episodes"]) > 0 and rows[-1]["reward_return_mean"]


class RodHeight(RewardFn):
    """A reward read off rendered frames: how high the pendulum's dark rod sits in the picture."""

    needs_frames = True
    fields = frozenset()

    def __init__(self):
        self.calls = []

    def compute(self, batch):
        self.calls.append(len(batch.frames))
        dark = batch.frames.min(axis=-1) < 128
        rows = np.arange(batch.frames.shape[1])[None, :, None]
        height = 1.0 - (dark * rows).sum(axis=(1, 2)) / np.maximum(dark.sum(axis=(1, 2)), 1) / rows.size
        return RewardOutput(height, {"height": height})


@pytest.mark.skipif(importlib.util.find_spec("pygame") is None, reason="Pendulum renders with pygame")
def test_sac_scores_frames_a_chunk_at_a_time_and_learns_as_if_per_step(tmp_path):
    """SAC on a reward that scores frames (what VLM-RM trained with): by default the frames of
    each chunk of steps between gradient updates are scored in one call, written into the replay
    buffer before it is sampled; the policy equals the one trained on per-step scoring."""
    from stable_baselines3 import SAC

    from rewardgen.rewards import FnSpec
    from rewardgen.tasks import derive_task, save_task_file

    task = str(save_task_file(derive_task("Pendulum-v1", "swing up"), tmp_path / "p.yaml").path)
    hp = {"learning_starts": 40, "batch_size": 32, "policy_kwargs": {"net_arch": [32, 32]}}
    runs, rewards = {}, {}
    for defer in (None, False):  # None: the default for a frames reward under SAC
        rewards[defer] = RodHeight()
        extra = {} if defer is None else {"train_freq": 25, "gradient_steps": -1}  # the default's
        runs[defer] = train(
            TrainConfig(
                task=task, reward=FnSpec(rewards[defer], name="rod", copy=False), steps=200, algo="sac",
                n_envs=2, eval_episodes=1, video=False, hyperparams={**hp, **extra}, progress=False,
                defer_reward=defer,
            ),
            out=tmp_path / f"defer{defer}",
        )  # fmt: skip
    manifest = json.loads((runs[None].run_dir / "manifest.json").read_text())
    assert manifest["deferred_reward"] is True
    assert rewards[False].calls[:100] == [2] * 100  # per step: the two envs' frames
    assert max(rewards[None].calls) == 50  # deferred: 25 steps of 2 envs in one call
    a, b = (SAC.load(runs[d].run_dir / "model.zip").policy.state_dict() for d in (None, False))
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=1e-4, atol=1e-5, err_msg=k)


def test_training_past_its_wall_clock_budget_stops_saves_and_says_so(tmp_path):
    from rewardgen.training import OverBudgetError

    config = TrainConfig(task="hopper-run", steps=10_000_000, time_budget_s=3.0, video=False, progress=False)
    with pytest.raises(OverBudgetError, match=r"over its wall-clock budget of 3 s") as err:
        train(config, out=tmp_path / "run")
    assert "training steps" in str(err.value)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "wall-clock budget" in manifest["error"]
    assert (tmp_path / "run" / "model.zip").is_file()  # what was trained is kept


def test_check_measures_cost_and_refuses_a_slow_program_early(tmp_path):
    from rewardgen.diagnostics.check import RewardTooSlowError
    from rewardgen.programs import SandboxLimits

    reference = get_task("hopper-run").reference_reward(SandboxLimits())
    fast = check_reward("hopper-run", reference, steps=30, n_envs=2, max_cost=20)
    cost = fast["cost"]
    assert cost["calls"] == 29 and cost["transitions_per_call"] == 2  # the first call starts the worker
    assert 0 < cost["per_transition_s"] < 20 * max(cost["env_step_s"], 1e-3 / 20)
    slow = tmp_path / "slow.py"
    slow.write_text(
        "import numpy as np\n\n"
        "def compute_reward(obs, action, next_obs, info):\n"
        "    s = sum(k * 1e-9 for k in range(3_000_000))\n"
        "    return info['x_velocity'] + 0.0 * s, {}\n"
    )
    with pytest.raises(
        RewardTooSlowError, match=r"too slow to train on: .* per call of 2 transitions"
    ) as err:
        spec = ProgramSpec.from_file(slow, sandbox=SandboxLimits())
        check_reward("hopper-run", spec, steps=250, n_envs=2, max_cost=20)
    assert "measured over 1 call" in str(err.value) or "measured over 2 calls" in str(err.value)


def test_a_busy_machine_does_not_make_a_cheap_reward_too_slow_and_a_slow_one_still_is(tmp_path):
    """Cost is the program's CPU time at the batch size training scores (a PPO rollout), not the
    wall clock: three processes spinning on two cores do not get a three-line numpy reward refused."""
    import subprocess
    import sys

    from rewardgen.diagnostics.check import RewardTooSlowError
    from rewardgen.programs import SandboxLimits

    cheap, slow = tmp_path / "cheap.py", tmp_path / "slow.py"
    cheap.write_text(
        "import numpy as np\n\n"
        "def compute_reward(obs, action, next_obs, info):\n"
        "    dist = np.abs(info['x_velocity'] - 1.0)\n"
        "    return -2 * dist - np.sum(action ** 2, axis=1), {}\n"
    )
    slow.write_text(
        "import numpy as np\n\n"
        "def compute_reward(obs, action, next_obs, info):\n"
        "    s = sum(k * 1e-9 for k in range(15_000_000))\n"
        "    return info['x_velocity'] + 0.0 * s, {}\n"
    )
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        for seed in range(3):
            spec = ProgramSpec.from_file(cheap, sandbox=SandboxLimits())
            stats = check_reward(
                "hopper-run", spec, steps=20, n_envs=2, seed=seed, max_cost=20, batch_size=2048
            )
            batch = stats["cost"]["batch"]
            assert batch["transitions_per_call"] == 2048 and batch["ratio"] < 20, batch
        with pytest.raises(RewardTooSlowError, match="too slow to train on"):
            spec = ProgramSpec.from_file(slow, sandbox=SandboxLimits(call_timeout_s=60))
            check_reward("hopper-run", spec, steps=20, n_envs=2, max_cost=20, batch_size=2048)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()


def test_training_until_success_stops_at_the_first_successful_evaluation(tmp_path, monkeypatch):
    """A metric a random Pendulum policy already meets: training ends at the first evaluation,
    and the policy the run saves is the one that evaluation judged (SB3 updates the policy once
    more after a rollout's end: an evaluation there would judge another policy than the saved)."""
    import torch
    from stable_baselines3 import PPO

    from rewardgen.tasks import derive_task, save_task_file
    from rewardgen.training.periodic import PeriodicEvaluator, read_evals

    judged = []
    evaluate = PeriodicEvaluator.__call__

    def recording(self, policy, timesteps, wall_s):
        judged.append({k: v.clone() for k, v in policy.policy.state_dict().items()})
        return evaluate(self, policy, timesteps, wall_s)

    monkeypatch.setattr(PeriodicEvaluator, "__call__", recording)

    task = derive_task("Pendulum-v1", "anything", {"metric": {"field": "env_reward", "above": -5000}})
    path = save_task_file(task, tmp_path / "task.yaml").path
    reward = tmp_path / "reward.py"
    reward.write_text("def compute_reward(obs, action, next_obs, info):\n    return next_obs[:, 0], {}\n")
    config = TrainConfig(
        task=str(path),
        reward=ProgramSpec.from_file(reward),
        steps=200_000,
        n_envs=4,
        eval_every=2000,
        stop_on_success=True,
        video=False,
    )
    result = train(config, out=tmp_path / "run")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    rows = read_evals(tmp_path / "run" / "evals.csv")
    assert len(rows) == 1 and rows[0]["success_rate"] == 1.0 and rows[0]["succeeded"] == 1
    assert manifest["first_success"]["timesteps"] == rows[0]["timesteps"] < 10_000
    assert 0 < rows[0]["eval_time_s"] <= rows[0]["wall_time_s"]
    assert result.eval.succeeded and result.eval.success_rate == 1.0  # the final evaluation confirms it
    assert len(result.eval.episodes) == VERDICT_EPISODES  # the rule's episodes, not eval_episodes' 3
    saved = PPO.load(tmp_path / "run" / "model.zip", device="cpu").policy.state_dict()
    assert len(judged) == 1 and all(torch.equal(saved[k], v) for k, v in judged[0].items())
    # the success was confirmed on the final evaluation's own episodes: the same numbers
    assert rows[0]["confirmation_mean"] == pytest.approx(result.eval.success_metric_mean, abs=1e-6)


def test_a_success_counts_once_the_final_evaluations_episodes_confirm_it(tmp_path):
    """Pendulum under a fixed policy: the periodic episodes and the final evaluation's differ by
    their starting angles. With the line between their means, the periodic episodes meet it and
    the final evaluation's do not: the row is no success, and says what the confirmation read."""
    from rewardgen.tasks import derive_task
    from rewardgen.training.periodic import PeriodicEvaluator

    class Still:  # a deterministic policy: no torque
        def predict(self, obs, deterministic=True):
            return np.zeros((len(obs), 1), np.float32), None

    def evaluated(seed, confirm_seed, line=-1e9):
        metric = {"field": "env_reward", "reduce": "sum", "above": line, "over": "mean"}
        task = derive_task("Pendulum-v1", "anything", {"metric": metric})
        path = tmp_path / f"{seed}-{line}.csv"
        ev = PeriodicEvaluator(task, path, seed=seed, confirm_seed=confirm_seed)
        row = ev(Still(), 1000, 1.0)
        ev.close()
        return row, path.read_text().splitlines()[0]

    means = {seed: evaluated(seed, None)[0]["success_metric_mean"] for seed in (30_000, 10_000)}
    high, low = sorted(means, key=means.get, reverse=True)
    assert means[high] > means[low]
    line = (means[high] + means[low]) / 2
    row, header = evaluated(high, low, line)  # its own episodes meet the line, the confirmation's not
    assert row["success_metric_mean"] > line and row["succeeded"] == 0
    assert row["confirmation_mean"] == pytest.approx(means[low])
    assert header.endswith(",confirmation_mean,succeeded")
    row, _ = evaluated(high, high, line)  # confirmed on episodes that meet it
    assert row["succeeded"] == 1


def test_an_evaluation_that_asks_only_for_the_verdict_ends_when_it_is_settled(tmp_path):
    """A line no hopper reaches and the rule that every episode must: the first episode that
    ends (a fall) settles the verdict, and such an evaluation stops there; a run whose curve
    matters (a search's candidate) evaluates all ten."""
    from rewardgen.tasks import MetricSpec
    from rewardgen.training.periodic import read_evals

    spec = get_task("hopper-run")
    never = spec.model_copy(update={"metric": MetricSpec(field="x_velocity", reduce="mean", above=100.0)})
    common = dict(task=never, steps=4096, n_envs=4, eval_every=2048, stop_on_success=True, video=False)
    common["hyperparams"] = {**FAST_PPO, "n_steps": 512}
    counted = {}
    for decided in (True, False):
        train(TrainConfig(eval_until_decided=decided, **common), out=tmp_path / str(decided))
        rows = read_evals(tmp_path / str(decided) / "evals.csv")
        assert rows and all(r["succeeded"] == 0 for r in rows)
        counted[decided] = [int(r["episodes"]) for r in rows]
    assert all(n < VERDICT_EPISODES for n in counted[True]), counted
    assert all(n == VERDICT_EPISODES for n in counted[False]), counted


def test_a_verdict_only_evaluation_runs_its_first_episodes_and_the_rest_only_when_open(tmp_path):
    """A final seed's evaluation (the verdict only) steps three envs first: three episodes that
    fail a rule on every episode settle it, and the other seven envs never step; three that
    succeed leave it open, and all ten run. A candidate's evaluation runs all ten at once."""
    from rewardgen.tasks import derive_task
    from rewardgen.training.periodic import FIRST_STAGE, PeriodicEvaluator

    class Still:
        def predict(self, obs, deterministic=True):
            return np.zeros((len(obs), 1), np.float32), None

    def evaluated(line, until_decided):
        metric = {"field": "env_reward", "reduce": "sum", "above": line}
        task = derive_task("Pendulum-v1", "anything", {"metric": metric})
        ev = PeriodicEvaluator(task, tmp_path / f"{line}-{until_decided}.csv", until_decided=until_decided)
        row = ev(Still(), 1000, 1.0)
        ev.close()
        return row, [venv.num_envs for venv in ev.stages]

    row, sizes = evaluated(1e9, until_decided=True)  # no episode meets it: failed after three
    assert sizes == [FIRST_STAGE, VERDICT_EPISODES - FIRST_STAGE]
    assert row["episodes"] == FIRST_STAGE and row["succeeded"] == 0
    row, _ = evaluated(-1e9, until_decided=True)  # every episode meets it: all ten confirm it
    assert row["episodes"] == VERDICT_EPISODES and row["succeeded"] == 1
    row, sizes = evaluated(1e9, until_decided=False)  # a curve's point: every episode
    assert sizes == [VERDICT_EPISODES] and row["episodes"] == VERDICT_EPISODES


def test_the_success_rule_is_the_same_in_periodic_and_final_evaluations(tmp_path):
    """A rule on the mean over episodes (gymnasium's reward_threshold) is judged on the mean in
    both evaluations: a threshold between the worst episode and the mean succeeds, though not
    every episode meets it."""
    from rewardgen.tasks import derive_task, save_task_file
    from rewardgen.training.periodic import read_evals

    first = derive_task(
        "Pendulum-v1", "anything", {"metric": {"field": "env_reward", "reduce": "sum", "above": -1e9}}
    )
    path = save_task_file(first, tmp_path / "probe.yaml").path
    reward = tmp_path / "reward.py"
    reward.write_text("def compute_reward(obs, action, next_obs, info):\n    return next_obs[:, 0], {}\n")
    common = dict(reward=ProgramSpec.from_file(reward), steps=1000, n_envs=2, eval_every=1000, video=False)
    probe = train(TrainConfig(task=str(path), **common), out=tmp_path / "probe")
    returns = sorted(e.success_metric for e in probe.eval.episodes)
    assert returns[0] < returns[-1]  # Pendulum's episodes differ by their starting angle
    line = (returns[0] + float(np.mean(returns))) / 2  # above the worst episode, below the mean
    for over, expected in (("mean", True), ("episode", False)):
        metric = {"field": "env_reward", "reduce": "sum", "above": line, "over": over}
        task = derive_task("Pendulum-v1", "anything", {"metric": metric})
        path = save_task_file(task, tmp_path / f"{over}.yaml").path
        result = train(TrainConfig(task=str(path), **common), out=tmp_path / over)
        rows = read_evals(tmp_path / over / "evals.csv")
        assert result.eval.succeeded is expected, (over, line, returns)  # the same policy as the probe's
        periodic = rows[-1]  # other starting states, the same rule
        judged = periodic["success_metric_mean"] > line if over == "mean" else periodic["success_rate"] == 1.0
        assert bool(periodic["succeeded"]) is judged


def test_profiles_pick_envs_and_settings_and_an_unknown_one_is_one_line():
    from rewardgen.training.sb3.hyperparams import CPU_PPO_ENVS, default_hyperparams, default_n_envs

    assert default_n_envs("ppo", "default", 1) == CPU_PPO_ENVS and default_n_envs("ppo", "zoo", 1) == 1
    assert default_n_envs("sac", "default", 1) == 1
    zoo = default_hyperparams("ppo", "HalfCheetah", "zoo")
    assert (zoo["n_epochs"], zoo["batch_size"], zoo["n_steps"]) == (20, 64, 512)  # rl-zoo3's
    assert default_hyperparams("ppo", "HalfCheetah")["batch_size"] > zoo["batch_size"]
    with pytest.raises(RewardgenError, match="unknown --hyperparams 'fastest': choose one of default, zoo"):
        default_hyperparams("ppo", "Hopper", "fastest")


@pytest.mark.slow
def test_two_demo_runs_with_the_same_seed_give_the_same_result(tmp_path):
    from rewardgen.cli import main

    for name in ("a", "b"):
        main(["demo", "--steps", "30000", "--out", str(tmp_path / name)])
    evals = [json.loads((tmp_path / n / "eval.json").read_text()) for n in ("a", "b")]
    assert evals[0]["episodes"] == evals[1]["episodes"]
    curves = [
        [r.split(",")[:1] + r.split(",")[2:] for r in (tmp_path / n / "metrics.csv").read_text().splitlines()]
        for n in ("a", "b")
    ]  # all but the wall-clock column
    assert curves[0] == curves[1]


class _Forward(RewardFn):
    fields = frozenset({"x_velocity"})

    def compute(self, batch):
        v = np.asarray(batch.info["x_velocity"], dtype=np.float64)
        return RewardOutput(v, {"speed": v})


class _Effort(RewardFn):
    def compute(self, batch):
        return RewardOutput(-0.1 * np.square(batch.action).sum(axis=1).astype(np.float64))


@pytest.mark.parametrize("deferrable", [False, True])
def test_ppo_trains_through_the_same_train_on_a_reward_that_is_not_a_program(tmp_path, deferrable):
    """A combinator of two Python reward functions, given as a spec: no file, no program. It
    rebuilds HalfCheetah's own reward, so the evaluation's two returns agree; a spec that says it
    may be deferred is scored a rollout at a time."""
    from rewardgen.rewards import FnSpec, WeightedSum

    combined = WeightedSum({"run": (_Forward(), 1.0), "effort": (_Effort(), 1.0)})
    spec = FnSpec(combined, name="run+effort", deferrable=deferrable)
    config = TrainConfig(
        task="halfcheetah-run", reward=spec, steps=2048, n_envs=2, video=False, eval_episodes=1,
        hyperparams=FAST, progress=False,
    )  # fmt: skip
    result = train(config, out=tmp_path / "run")
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["reward"] == {"kind": "fn", "name": "run+effort", "class": "WeightedSum"}
    assert manifest["config"]["reward"]["name"] == "run+effort"
    assert manifest["deferred_reward"] is deferrable
    assert not (result.run_dir / "reward.py").exists()  # nothing pretends to be a program
    ep = result.eval.episodes[0]
    assert ep.reward_return == pytest.approx(ep.env_return, rel=1e-6)
    assert {"run", "run/speed", "effort"} <= set(ep.components)
    assert spec.build() is not combined  # every run builds its own copy
    rows = list(csv.DictReader((result.run_dir / "metrics.csv").open()))
    assert rows and "component/run/speed" in rows[-1]
