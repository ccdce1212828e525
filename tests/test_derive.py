"""Tasks for any gymnasium env: fields derived from the spaces and info, plus a user's notes."""

import gymnasium as gym
import numpy as np
import pytest

from rewardgen.diagnostics.check import check_reward
from rewardgen.errors import RewardgenError
from rewardgen.programs import ProgramSpec
from rewardgen.tasks import derive_task, env_version, get_task, save_task_file

REACHER = f"Reacher-{env_version()}"  # v5 on gymnasium 1, v4 on the sample-factory stack's 0.29
NOTES = {
    "fields": {
        "cos_theta": {"source": "obs[0]", "doc": "cosine of the pole angle (1 = upright)"},
        "angular_velocity": {"source": "obs[2]", "unit": "rad/s", "doc": "angular velocity"},
    },
}


def test_box_observation_fields_notes_and_the_default_metric():
    task = derive_task("Pendulum-v1", "Swing up and balance", NOTES)
    assert set(task.fields) == {"cos_theta", "obs_1", "angular_velocity"}  # notes replace obs_0, obs_2
    assert task.fields["obs_1"].doc == "observation component 1, in [-1, 1]"
    text = task.describe()
    assert "Goal: Swing up and balance" in text and 'info["cos_theta"]: cosine of the pole angle' in text
    assert "array (n, 1) in [-2, 2]" in text
    assert task.metric.field == "env_reward" and "no success threshold" in task.metric.describe()
    assert not task.metric.success(1e9) and task.metric.score(3.0) == 3.0


def test_discrete_actions_info_fields_and_the_envs_threshold():
    task = derive_task("CartPole-v1", "Keep the pole up")
    assert "integer array (n,) in 0..1" in task.describe()
    assert task.metric.above == 475.0 and task.metric.success(500.0)


class _DictEnv(gym.Env):
    """A point on a line that must reach 1.0; Dict observation, speed reported in info."""

    observation_space = gym.spaces.Dict(
        {
            "position": gym.spaces.Box(-5, 5, (1,), np.float64),
            "target": gym.spaces.Box(-5, 5, (1,), np.float64),
        }
    )
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = 0.0, 0
        return self._obs(), {}

    def _obs(self):
        return {"position": np.array([self.x]), "target": np.array([1.0])}

    def step(self, action):
        self.x += 0.1 * float(action[0])
        self.t += 1
        return self._obs(), -abs(self.x - 1.0), False, self.t >= 20, {"speed": 0.1 * float(action[0])}


def test_dict_observations_reach_a_reward_program(tmp_path):
    gym.register("RewardgenTestDict-v0", entry_point=_DictEnv)
    task = derive_task("RewardgenTestDict-v0", "Reach the target", {"id": "dict-test"})
    assert task.fields["position"].source == "obs.position" and task.fields["speed"].source == "info.speed"
    task = save_task_file(task, tmp_path / "task.yaml")
    assert get_task(str(tmp_path / "task.yaml")) == task
    reward = tmp_path / "r.py"
    reward.write_text(
        "import numpy as np\n\ndef compute_reward(obs, action, next_obs, info):\n"
        "    d = -np.abs(info['position'][:, 0] - info['target'][:, 0])\n"
        "    return d, {'distance': d, 'speed': info['speed']}\n"
    )
    stats = check_reward(str(tmp_path / "task.yaml"), ProgramSpec.from_file(reward), steps=40, n_envs=2)
    assert stats["max_abs_diff_to_env"] < 1e-9  # the same as the env's own reward
    assert stats["episode_ends"] >= 2


def test_bad_envs_and_notes_are_one_clear_line(tmp_path):
    with pytest.raises(RewardgenError, match="cannot derive fields from a Discrete observation"):
        derive_task("FrozenLake-v1", "reach the goal")
    with pytest.raises(RewardgenError, match="cannot make env 'NoSuchEnv-v0'"):
        derive_task("NoSuchEnv-v0", "x")
    with pytest.raises(RewardgenError, match="field notes may set"):
        derive_task("Pendulum-v1", "x", {"feilds": {}})
    with pytest.raises(RewardgenError, match=r"notes file .* not found"):
        derive_task("Pendulum-v1", "x", tmp_path / "missing.yaml")
    with pytest.raises(RewardgenError, match="metric field 'height'"):
        derive_task("Pendulum-v1", "x", {"metric": {"field": "height", "above": 1}})


def test_synthesize_on_any_env_from_the_command_line(tmp_path, monkeypatch, capsys):
    import json

    from rewardgen.cli import main
    from rewardgen.llm.testing import LoopbackLLMServer

    monkeypatch.setenv("REWARDGEN_LLM_CACHE", str(tmp_path / "cache.sqlite"))
    notes = tmp_path / "notes.yaml"
    notes.write_text("fields:\n  cos_theta: {source: 'obs[0]', doc: cosine of the angle}\n")
    code = (
        "```python\ndef compute_reward(obs, action, next_obs, info):\n"
        "    return info['cos_theta'], {'up': info['cos_theta']}\n```"
    )
    with LoopbackLLMServer() as server:
        server.push(code)
        main(
            [
                "synthesize", "--env", "Pendulum-v1", "--goal", "Swing it up", "--notes", str(notes),
                "--method", "text2reward", "--samples", "1", "--steps", "256", "--videos", "0",
                "--final-seeds", "0",
                "--llm-base-url", server.url, "--llm-model", "m", "--out", str(tmp_path / "run"),
            ]
        )  # fmt: skip
        prompt = server.requests[0]["messages"][-1]["content"]
    assert "Goal: Swing it up" in prompt and 'info["cos_theta"]: cosine of the angle' in prompt
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best"]["status"] == "trained" and summary["task"] == "env-pendulum-v1"
    assert "sum of env_reward" in summary["best"]["eval"]["metric"]
    assert (tmp_path / "run" / "task.yaml").is_file()
    with pytest.raises(SystemExit):
        main(["synthesize", "--env", "Pendulum-v1", "--llm-model", "m"])
    assert "--env needs --goal" in capsys.readouterr().err


def test_a_derived_task_is_written_into_the_run_the_caller_reserved(tmp_path):
    """The library derives a task into a run folder chosen up front, as the CLI does."""
    from rewardgen.runs import RunDir
    from rewardgen.tasks import get_task, materialize
    from rewardgen.tasks.derive import derived_id

    folder = RunDir.reserve(derived_id("Pendulum-v1"), "evolution", root=tmp_path / "runs")
    assert folder.is_dir() and folder.name.endswith("-env-pendulum-v1-evolution")
    task = materialize("Pendulum-v1", "swing up", None, folder)
    assert task.path == folder / "task.yaml" and get_task(str(task.path)).goal == "swing up"


def test_configs_take_the_resolved_task_and_record_it_by_reference(tmp_path):
    from rewardgen.runs import RunDir
    from rewardgen.synthesis import SearchConfig
    from rewardgen.tasks import get_task, materialize
    from rewardgen.training import TrainConfig

    derived = materialize("Pendulum-v1", "swing up", None, RunDir.reserve("p", "x", tmp_path / "run"))
    for task, ref in ((get_task("hopper-run"), "hopper-run"), (derived, str(derived.path))):
        assert SearchConfig(task=task).record()["task"] == ref
        reward = get_task("hopper-run").reference_reward()
        assert TrainConfig(task=task).record(reward)["task"] == ref
        assert get_task(SearchConfig(task=task).record()["task"]) == task  # resumed, it is the same task


def test_the_env_rewards_terms_are_found_and_told_in_the_prompt(tmp_path):
    from rewardgen.synthesis.prompts import initial_messages

    reacher = derive_task(REACHER, "Touch the target with the fingertip")
    terms = reacher.env_reward_terms
    assert terms.terms == {"reward_dist": 1.0, "reward_ctrl": 1.0} and terms.steps == 300
    assert terms.action_cost == {"reward_ctrl": -1.0}  # the success measure charges sum(action**2) at 1
    prompt = initial_messages(reacher)[-1]["content"]
    assert 'exactly info["reward_dist"] + info["reward_ctrl"]' in prompt
    assert 'info["reward_ctrl"] = -1 * np.sum(action**2, axis=1)' in prompt
    # gymnasium's threshold is on the mean return over episodes: the task's rule says so
    assert reacher.metric.over == "mean"
    mean = "the mean over evaluation episodes of (sum of env_reward[t] over the episode's steps t) > -3.75"
    assert mean in prompt
    assert "charge what it charges" in prompt
    # the split holds on the env itself: random steps the decomposition never saw
    env = gym.make(REACHER)
    env.reset(seed=123)
    for _ in range(200):
        action = env.action_space.sample()
        _, r, term, trunc, info = env.step(action)
        assert r == pytest.approx(info["reward_dist"] + info["reward_ctrl"], abs=1e-6)
        assert info["reward_ctrl"] == pytest.approx(-np.sum(np.square(action)), abs=1e-5)
        if term or trunc:
            env.reset()
    # kept in the task file a run writes, and read back
    saved = save_task_file(reacher, tmp_path / "task.yaml")
    assert saved.env_reward_terms == terms
    # a field renamed by the notes is named so in the split
    renamed = derive_task(
        REACHER, "Reach", {"fields": {"torque_cost": {"source": "info.reward_ctrl", "doc": "-sum(a^2)"}}}
    )
    assert renamed.env_reward_terms.terms == {"reward_dist": 1.0, "torque_cost": 1.0}


def test_an_env_whose_info_does_not_split_its_reward_says_so():
    from rewardgen.synthesis.prompts import initial_messages

    pendulum = derive_task("Pendulum-v1", "Swing up and balance")
    assert pendulum.env_reward_terms.terms == {}
    prompt = initial_messages(pendulum)[-1]["content"]
    assert "its terms are unknown: no weighted sum of the env's numeric info entries matched it" in prompt
    assert "your function does not receive it" in prompt and "charge what it charges" not in prompt
    cartpole = derive_task("CartPole-v1", "Keep the pole up")
    assert cartpole.env_reward_terms.constant == 1.0
    assert "the env's reward is 1 at every step" in cartpole.describe()


def test_catalog_tasks_say_their_metric_as_a_formula():
    text = get_task("halfcheetah-run").describe()
    assert 'measured as np.mean(info["x_velocity"][t] over the episode\'s steps t) > 3.0' in text


def test_the_reflection_shows_the_env_rewards_terms_along_training(tmp_path):
    from rewardgen.runs import read_metrics
    from rewardgen.synthesis.prompts import reflection_text
    from rewardgen.tasks import episode_metrics

    reacher = derive_task(REACHER, "Reach")
    assert episode_metrics(reacher) == {
        "success_metric": ("env_reward", "sum"),
        "env_term/reward_dist": ("reward_dist", "sum"),
        "env_term/reward_ctrl": ("reward_ctrl", "sum"),
    }
    # a real training run logs the terms' episode sums beside the components
    from rewardgen.training import TrainConfig, train
    from rewardgen.training.sb3.hyperparams import FAST_PPO

    reward = tmp_path / "r.py"
    reward.write_text(
        "import numpy as np\n\ndef compute_reward(obs, action, next_obs, info):\n"
        "    d = info['reward_dist']\n    return d, {'dist': d}\n"
    )
    result = train(
        TrainConfig(
            task=reacher,
            reward=ProgramSpec.from_file(reward),
            steps=2048,
            video=False,
            eval_episodes=1,
            progress=False,
            hyperparams={**FAST_PPO, "n_steps": 64},
        ),
        out=tmp_path / "run",
    )
    header, *rows = (result.run_dir / "metrics.csv").read_text().splitlines()
    cols = header.split(",")
    assert {"component/dist", "env_term/reward_dist", "env_term/reward_ctrl"} <= set(cols)
    for row in rows:  # the terms add up to the env's return, episode by episode means
        v = dict(zip(cols, map(float, row.split(",")), strict=True))
        assert v["env_term/reward_dist"] + v["env_term/reward_ctrl"] == pytest.approx(
            v["env_return_mean"], abs=1e-3
        )
        assert v["component/dist"] == pytest.approx(v["env_term/reward_dist"], abs=1e-3)
    curves = {k: list(v) for k, v in read_metrics(result.run_dir / "metrics.csv").items()}
    text = reflection_text(reacher, curves)
    assert 'its term info["reward_ctrl"] (episode sum)' in text and "component 'dist'" in text
