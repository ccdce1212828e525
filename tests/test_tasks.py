import importlib.util
import sys
import zipfile

import gymnasium as gym
import numpy as np
import pytest

from rewardgen.diagnostics.check import check_reward
from rewardgen.errors import MissingExtraError, RewardgenError
from rewardgen.tasks import (
    UnknownTaskError,
    env_version,
    get_task,
    list_tasks,
    load_task_file,
    make_env,
)

TASKS = list_tasks()
STANDARD = [t for t in TASKS if t.standard]


def _with_package(t):
    """Tasks of an extra this stack lacks (metaworld on the sample-factory stack) are skipped."""
    missing = t.package is not None and importlib.util.find_spec(t.package) is None
    return pytest.param(t, marks=pytest.mark.skipif(missing, reason=f"needs the {t.package} extra"))


def test_catalog_has_the_standard_and_novel_tasks():
    ids = {t.id for t in TASKS}
    assert len(ids) >= 10
    assert {"halfcheetah-run", "hopper-run", "walker2d-run", "ant-run", "humanoid-run"} <= {
        t.id for t in STANDARD
    }
    assert {"halfcheetah-run-backward", "hopper-jump", "halfcheetah-stand-front-legs"} <= ids


def test_env_version_follows_gymnasium():
    expected = "v5" if int(gym.__version__.split(".")[0]) >= 1 else "v4"
    assert env_version() == expected
    assert get_task("hopper-run").gym_id == f"Hopper-{expected}"


@pytest.mark.parametrize("task", [_with_package(t) for t in STANDARD], ids=lambda t: t.id)
def test_reference_reward_reproduces_the_env_reward(task):
    """The proof that every field is mapped right: on random rollouts of the installed env
    version, through the real vector wrapper (episode ends and autoresets included), the program
    equals the env's own reward on every transition."""
    stats = check_reward(task.id, steps=300, n_envs=4)
    assert stats["max_abs_diff_to_env"] <= 1e-6
    assert stats["transitions"] > 1000
    # HalfCheetah never terminates within 300 steps, nor does random play end a NetHack game
    if task.id != "halfcheetah-run" and task.package != "nle":
        assert stats["episode_ends"] > 0, "the rollout should cover episode ends"


@pytest.mark.parametrize("task", [_with_package(t) for t in TASKS if not t.standard], ids=lambda t: t.id)
def test_novel_task_rewards_run_on_random_rollouts(task):
    stats = check_reward(task.id, steps=60, n_envs=2)
    assert len(stats["terms"]) >= 3  # the total and at least two named components
    assert all(np.isfinite(list(s.values())).all() for s in stats["terms"].values())
    if task.package != "nle":  # NetHack's task events (descending, the Oracle) are rare at random
        assert stats["max_abs_diff_to_env"] > 0  # a new behaviour, not the env's own reward


def test_state_fields_reach_the_reward():
    task = get_task("halfcheetah-stand-front-legs")
    env = make_env(task)
    _, info = env.reset(seed=0)
    assert info["back_foot_z"] == pytest.approx(env.unwrapped.data.body("bfoot").xpos[2])
    _, _, _, _, info = env.step(env.action_space.sample())
    assert 0.0 < info["back_foot_z"] < 1.0


def test_description_names_every_field_and_the_metric():
    task = get_task("hopper-jump")
    text = task.describe()
    for name in task.resolved_fields():
        assert f'info["{name}"]' in text
    assert task.goal in text and "max of torso_z" in text


def test_unknown_task_lists_close_matches():
    with pytest.raises(UnknownTaskError, match="did you mean halfcheetah-run"):
        get_task("halfcheeta-run")
    with pytest.raises(UnknownTaskError, match="rewardgen tasks"):
        get_task("zzz")


def test_missing_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'rewardgen\[mujoco\]'"):
        make_env("hopper-run")


def test_bad_task_file_is_reported(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("id: x\nenv_id: Hopper\n")
    with pytest.raises(RewardgenError, match=r"invalid task file .*goal: Field required") as err:
        load_task_file(p)
    assert "\n" not in str(err.value)
    p.write_text(
        'id: x\nenv_id: Hopper\ngoal: g\naction: a\nreward: r.py\nfields: {v: {source: "obs[0]", doc: d}}\n'
        "metric: {field: speed, above: 1}\n"
    )
    with pytest.raises(RewardgenError, match="metric field 'speed'"):
        load_task_file(p)


def test_wheel_ships_the_catalog(tmp_path):
    """envs/ must travel inside the wheel, where the catalog loader looks for it."""
    from pathlib import Path

    from hatchling.builders.wheel import WheelBuilder

    root = Path(__file__).resolve().parent.parent
    wheel = next(iter(WheelBuilder(str(root)).build(directory=str(tmp_path), versions=["standard"])))
    names = zipfile.ZipFile(wheel).namelist()
    assert "rewardgen/_envs/halfcheetah/run.yaml" in names
    assert "rewardgen/_envs/hopper/_family.yaml" in names
    assert "rewardgen/_envs/hopper/run.py" in names
