"""Text2Reward's published Meta-World format: `compute_dense_reward(self, action, obs)` with
`self.env` reads, converted into a sandboxed rewardgen program plus read-only state fields."""

import numpy as np
import pytest

from rewardgen.interop import convert_text2reward
from rewardgen.programs import CodeCheckError

T2R = """import numpy as np

def compute_dense_reward(self, action, obs) -> float:
    # reach the drawer handle, then pull it to the target
    tcp = self.env.tcp_center.copy()
    handle = obs[4:7]
    target = self.env._get_pos_goal()
    right, left = self.env._get_site_pos("rightEndEffector"), self.env._get_site_pos("leftEndEffector")
    finger_gap = np.linalg.norm(right - left)
    reach = np.linalg.norm(tcp - handle)
    pull = np.linalg.norm(handle - target)
    reward = -reach - 2.0 * pull - 0.01 * np.sum(np.square(action)) + 0.1 * finger_gap
    if pull < 0.03:
        reward += 10.0 * self.env.data.body("hand").xpos[0] ** 0
    return reward
"""


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("self.env.reset()", "'self.env.reset()' is not a read-only self.env expression"),
        ("self.env.set_xyz_action(action)", "is not a read-only"),
        ("self.env._get_site_pos(obs)", "is not a read-only"),  # arguments must be constants
        ("self.env.__class__", "is not a read-only"),
        ("self.env", "is not a read-only"),
        ("self.action_scale", "'self.action_scale' is not available"),
        ("__import__('os')", "not allowed"),
    ],
)
def test_conversion_refuses_what_could_touch_the_env_or_escape(expr, reason):
    with pytest.raises(CodeCheckError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        convert_text2reward(f"def compute_dense_reward(self, action, obs):\n    return {expr}\n")


def test_conversion_needs_the_entry_point():
    with pytest.raises(CodeCheckError, match=r"no function compute_dense_reward"):
        convert_text2reward("def compute_reward(obs, action, next_obs, info):\n    return 0\n")
    with pytest.raises(CodeCheckError, match=r"must take \(self, action, obs\)"):
        convert_text2reward("def compute_dense_reward(self, obs):\n    return 0\n")


def test_conversion_keeps_method_calls_on_values_in_the_program():
    program, fields = convert_text2reward(T2R)
    assert fields == {
        "t2r_0": "self.env.tcp_center",
        "t2r_1": "self.env._get_pos_goal()",
        "t2r_2": "self.env._get_site_pos('rightEndEffector')",
        "t2r_3": "self.env._get_site_pos('leftEndEffector')",
        "t2r_4": "self.env.data.body('hand').xpos[0]",
    }
    code, original = program.split("# The original, as written")
    assert "self['t2r_0'].copy()" in code and "self.env" not in code
    # the original follows as comments, its own comments included
    assert "# reach the drawer handle, then pull it to the target" in original
    assert all(line.startswith("#") for line in original.strip().splitlines()[1:])


def test_text2rewards_general_format_is_named_in_one_line():
    general = (
        "import numpy as np\n\n"
        "def compute_dense_reward(self, action, obs):\n"
        "    # reach the handle\n"
        "    d = np.linalg.norm(self.robot.ee_position - self.obj1.position)\n"
        "    g = np.linalg.norm(self.obj1.position - self.goal_position)\n"
        "    return -d - g - np.linalg.norm(self.robot.ee_position - self.goal_position)\n"
    )
    with pytest.raises(CodeCheckError) as err:
        convert_text2reward(general)
    text = str(err.value)
    assert "Text2Reward's general format" in text and "specific.py" in text and "\n" not in text
    assert "self.robot" in text and text.count("self.robot") == 1  # said once, not per line


def test_problems_are_said_once_in_the_order_of_the_file():
    src = (
        "def compute_dense_reward(self, action, obs):\n"
        "    a = self.env.step(action)\n"
        "    b = self.env.step(action)\n"
        "    c = self.other\n"
        "    return self.env.reset()\n"
    )
    with pytest.raises(CodeCheckError) as err:
        convert_text2reward(src)
    lines = [int(part.split(":")[0].split()[1]) for part in str(err.value).split("; ")]
    assert lines == sorted(lines) and len(set(str(err.value).split("; "))) == len(lines)


def test_imported_reward_equals_the_original_on_the_live_env(tmp_path):
    """The converted program, run sandboxed through the real reward wrapper, returns what the
    original function returns when called with the live Meta-World env as `self.env`."""
    pytest.importorskip("metaworld")
    from rewardgen.interop import import_text2reward
    from rewardgen.tasks import get_task

    src = tmp_path / "drawer_open.py"
    src.write_text(T2R)
    imp = import_text2reward(src, "metaworld-drawer-open", out=tmp_path / "converted")
    assert imp.reward.name == "drawer_open.rewardgen.py" and imp.task.path.name == "drawer_open.task.yaml"
    task = get_task(str(imp.task.path))
    assert task.id == "metaworld-drawer-open" and task.fields["t2r_1"].source == "state._get_pos_goal()"
    assert task.metric == get_task("metaworld-drawer-open").metric

    got, want = _converted_and_original(imp, task, T2R, {}, seed=3, steps=60)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert np.std(got) > 0


def _converted_and_original(imp, task, source: str, globals_: dict, seed: int, steps: int):
    """Rewards of the converted program (sandboxed, through the real wrapper) and of the original
    function called with the live Meta-World env as `self.env`, on the same random actions."""
    from rewardgen.programs import CodeReward, RewardProgram, SandboxLimits, SandboxRunner
    from rewardgen.tasks import make_env, wrapper_kwargs
    from rewardgen.wrappers import RewardWrapper

    exec(compile(source, "t2r", "exec"), globals_)  # the test's own trusted copy, for comparison
    program = RewardProgram.from_file(imp.reward)
    reward = CodeReward(program, SandboxRunner(program, SandboxLimits()))
    env = RewardWrapper(make_env(task, fields=reward.fields), reward, **wrapper_kwargs(task, reward.fields))

    class Self:
        pass

    me = Self()
    me.env = env.unwrapped
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    got, want = [], []
    for _ in range(steps):
        action = rng.uniform(-1, 1, size=4)
        obs, r, *_ = env.step(action)
        got.append(r)
        want.append(globals_["compute_dense_reward"](me, action, obs))
    env.close()
    return got, want


# The shape of Text2Reward's published Meta-World files: numpy used from globals without an
# import (their runner exec'd the code with np in scope) and an import the code never uses.
AS_PUBLISHED = """from scipy.spatial import distance

def compute_dense_reward(self, action, obs) -> float:
    gripper_to_puck = np.linalg.norm(obs[:3] - obs[4:7])
    puck_to_goal = np.linalg.norm(obs[4:7] - self.env._get_pos_goal())
    if puck_to_goal < 0.05:
        reward = 1.0
    else:
        reward = -0.01 * gripper_to_puck - 0.01 * puck_to_goal
    return reward - 0.001 * np.sum(np.square(action))
"""


def test_files_as_published_convert_run_sandboxed_and_equal_the_original(tmp_path):
    pytest.importorskip("metaworld")
    from rewardgen.interop import import_text2reward
    from rewardgen.tasks import get_task

    src = tmp_path / "sweep_into.py"
    src.write_text(AS_PUBLISHED)
    imp = import_text2reward(src, "metaworld-sweep-into", out=tmp_path / "converted")
    converted = imp.reward.read_text()
    assert "import numpy as np" in converted
    assert "dropped an import the code never uses: from scipy.spatial import distance" in converted
    assert "\nfrom scipy" not in converted
    task = get_task(str(imp.task.path))
    got, want = _converted_and_original(imp, task, AS_PUBLISHED, {"np": np}, seed=1, steps=40)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
