import numpy as np
import pytest

from rewardgen.programs import CodeReward, RewardProgram, RewardProgramError, load_reward_program
from rewardgen.rewards import TransitionBatch

GOOD = """
import numpy as np
SPEED_WEIGHT = 1.0

def compute_reward(obs, action, next_obs, info):
    speed = SPEED_WEIGHT * info["x_velocity"]
    effort = 0.1 * np.sum(action ** 2, axis=1)
    return speed - effort, {"speed": speed, "effort": -effort}
"""


def batch(n=2):
    return TransitionBatch(
        obs=np.zeros((n, 3)),
        action=np.ones((n, 2)),
        next_obs=np.ones((n, 3)),
        terminated=np.zeros(n, bool),
        truncated=np.zeros(n, bool),
        info={"x_velocity": np.arange(n, dtype=float)},
    )


def write(tmp_path, source, name="reward.py"):
    p = tmp_path / name
    p.write_text(source)
    return p


def test_good_program(tmp_path):
    out = load_reward_program(write(tmp_path, GOOD))(batch())
    np.testing.assert_allclose(out.total, [-0.2, 0.8])
    np.testing.assert_allclose(out.components["effort"], [-0.2, -0.2])


def test_params_override_module_constants(tmp_path):
    out = load_reward_program(write(tmp_path, GOOD), params={"SPEED_WEIGHT": 10.0})(batch())
    np.testing.assert_allclose(out.components["speed"], [0.0, 10.0])
    with pytest.raises(RewardProgramError, match="parameter 'SPEEDWEIGHT' is not defined"):
        load_reward_program(write(tmp_path, GOOD), params={"SPEEDWEIGHT": 1.0})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def compute_reward(obs, action, next_obs, info)\n    return 1", "syntax error at line 1"),
        ("def reward(obs, action, next_obs, info):\n    return 1", "defines no function compute_reward"),
        ("def compute_reward(obs, info):\n    return 1", "takes 2 arguments, expected 4"),
        ("import numpy_does_not_exist\n", "failed while loading: ModuleNotFoundError"),
    ],
)
def test_load_errors_are_one_line_and_clear(tmp_path, source, message):
    with pytest.raises(RewardProgramError, match=message) as err:
        load_reward_program(write(tmp_path, source))
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(RewardProgramError, match="not found"):
        load_reward_program(tmp_path / "nope.py")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return info['x_velocity']", r"must return \(total, components\), got ndarray"),
        ("return np.zeros(5), {}", r"total reward has shape \(5,\), expected \(2,\)"),
        ("return np.zeros(2), {'height': np.array([np.nan, 0.0])}", "component 'height' has NaN"),
        ("return np.zeros(2), {'speed': np.zeros((2, 2))}", r"component 'speed' has shape \(2, 2\)"),
        ("return 'fast', {}", "not numeric"),
        ("return info['x_vel'], {}", "KeyError: 'x_vel'.*the reward was given: x_velocity"),
        ("return 1 / 0, {}", r"ZeroDivisionError: division by zero \(line 3"),
    ],
)
def test_call_errors_name_the_problem(tmp_path, body, message):
    src = f"import numpy as np\ndef compute_reward(obs, action, next_obs, info):\n    {body}\n"
    reward = load_reward_program(write(tmp_path, src))
    with pytest.raises(RewardProgramError, match=message):
        reward(batch())


def test_program_cannot_mutate_observations(tmp_path):
    src = "def compute_reward(obs, action, next_obs, info):\n    obs[0, 0] = 5\n    return obs[:, 0], {}\n"
    b = batch()
    with pytest.raises(RewardProgramError, match="read-only"):
        load_reward_program(write(tmp_path, src))(b)
    assert b.obs[0, 0] == 0


def test_program_identity_is_its_source_hash():
    a = RewardProgram.from_source(GOOD)
    assert a.sha256 == RewardProgram.from_source(GOOD, name="other").sha256
    assert a.sha256 != RewardProgram.from_source(GOOD + "\n# changed").sha256
    assert CodeReward(a).program is a
