"""Scenes for VLM rewards: the humanoid made to be looked at (lawn and sky, a camera that follows
it, no early termination, 100 steps) with geometric pose checks; classic control drawn at the
size a model takes."""

import importlib.util

import numpy as np
import pytest

from rewardgen.tasks import get_task, make_env
from rewardgen.tasks.scenes import POSES

POSE_TASKS = {"humanoid-kneel": "kneel", "humanoid-lotus": "lotus", "humanoid-splits": "splits"}
POSE_TASKS["humanoid-arms-raised"] = "arms_raised"


def _kneeling(env):
    """Knees bent 90 degrees, hips straight, lowered until the knees touch the floor."""
    u = env.unwrapped
    qpos, qvel = u.init_qpos.copy(), np.zeros(u.model.nv)
    joints = {u.model.joint(i).name: u.model.jnt_qposadr[i] for i in range(u.model.njnt)}
    qpos[joints["right_knee"]] = qpos[joints["left_knee"]] = -np.pi / 2
    u.set_state(qpos, qvel)
    qpos[2] -= u.knee_heights.max() - 0.08
    u.set_state(qpos, qvel)
    return u


def test_the_humanoid_scene_never_ends_early_and_lasts_100_steps():
    env = make_env("humanoid-kneel", render_mode="rgb_array", width=64, height=64)
    env.reset(seed=0)
    env.action_space.seed(0)
    ends = []
    for _ in range(100):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        ends.append((terminated, truncated))
    # a random policy falls within ~25 steps; Humanoid-v5 would have terminated there
    assert obs[0] < 1.0
    assert not any(term for term, _ in ends) and [t for t, (_, tr) in enumerate(ends) if tr] == [99]
    env.close()


def test_the_camera_follows_the_humanoid_on_a_lawn_under_a_sky():
    env = make_env("humanoid-kneel", render_mode="rgb_array", width=96, height=96)
    env.reset(seed=0)
    u = env.unwrapped
    near = env.render().astype(float)
    qpos = u.data.qpos.copy()
    qpos[:2] += (6.0, -4.0)  # 7 m away from where it started
    u.set_state(qpos, u.data.qvel)
    far = env.render().astype(float)
    env.close()
    for frame in (near, far):
        sky, ground = frame[:10].reshape(-1, 3).mean(0), frame[-10:].reshape(-1, 3).mean(0)
        assert sky[2] > sky[0] + 60  # blue above
        assert ground[1] > ground[0] + 30 and ground[1] > ground[2] + 30  # green below
        body = (frame[..., 0] > frame[..., 1] + 20) & (frame[..., 0] > 100)  # the tan mannequin
        cols = np.nonzero(body.any(axis=0))[0]
        assert body.sum() > 100 and 30 < cols.mean() < 66  # in the middle of the frame
    np.testing.assert_allclose(near[40:60, 40:56].mean(), far[40:60, 40:56].mean(), atol=12)


def test_pose_checks_tell_kneeling_from_standing():
    env = make_env("humanoid-kneel")
    env.reset(seed=0)
    standing = {name: env.unwrapped.pose(name) for name in POSES}
    assert standing == dict.fromkeys(POSES, 0.0)
    u = _kneeling(env)
    assert u.pose("kneel") == 1.0 and u.pose("splits") == 0.0 and u.pose("arms_raised") == 0.0
    assert 0.75 < u.data.body("torso").xpos[2] < 1.2 and u.upright > 0.99
    with pytest.raises(KeyError, match="choose one of kneel"):
        u.pose("handstand")
    env.close()


@pytest.mark.parametrize("task", sorted(POSE_TASKS))
def test_pose_tasks_measure_their_pose_and_carry_vlm_prompts(task):
    spec = get_task(task)
    assert spec.vlm is not None and len(spec.vlm.goal) == len(spec.vlm.baseline) == 1
    assert f"pose('{POSE_TASKS[task]}')" in spec.resolved_fields()[spec.metric.field].source
    env = make_env(spec)
    _, info = env.reset(seed=0)
    assert info[spec.metric.field] == 0.0  # standing at the start: no pose yet
    if task == "humanoid-kneel":
        _kneeling(env)
        _, _, _, _, info = env.step(np.zeros(env.action_space.shape))
        assert info["kneeling"] == 1.0  # the metric's field reads the pose through the task
    env.close()


@pytest.mark.skipif(importlib.util.find_spec("pygame") is None, reason="classic control renders with pygame")
@pytest.mark.parametrize("task", ["cartpole-balance", "mountaincar-reach-flag"])
def test_classic_control_renders_at_the_size_asked(task):
    env = make_env(task, render_mode="rgb_array", width=224, height=224)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (224, 224, 3) and frame.std() > 10
    assert get_task(task).vlm.goal  # VLM-RM's prompts
    env.close()


def test_rendering_classic_control_without_pygame_names_the_extra(monkeypatch):
    import sys

    from rewardgen.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "pygame", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"rewardgen\[vlm\]"):
        make_env("cartpole-balance", render_mode="rgb_array")
    make_env("cartpole-balance").close()  # without frames it needs no pygame
