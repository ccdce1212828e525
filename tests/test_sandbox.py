"""Untrusted reward code: every hostile or broken program is contained, with a reason."""

import numpy as np
import pytest

from rewardgen.programs import CodeReward, RewardProgram, RewardProgramError
from rewardgen.programs.checks import CodeCheckError, extract_code, static_check
from rewardgen.programs.sandbox import SandboxLimits, SandboxRunner
from rewardgen.rewards import TransitionBatch

LIMITS = SandboxLimits(call_timeout_s=3.0, call_cpu_s=1, memory_mb=600, load_timeout_s=20)
HEAD = "import numpy as np\n\ndef compute_reward(obs, action, next_obs, info):\n"


def program(body: str, head: str = HEAD) -> RewardProgram:
    return RewardProgram.from_source(head + "".join(f"    {line}\n" for line in body.splitlines()))


def batch(n=4, first=0.0):
    obs = np.zeros((n, 3))
    obs[0, 0] = first
    return TransitionBatch(
        obs,
        np.zeros((n, 2)),
        obs.copy(),
        np.zeros(n, bool),
        np.zeros(n, bool),
        {"x_velocity": np.arange(n, dtype=float)},
    )


def sandboxed(prog: RewardProgram) -> CodeReward:
    return CodeReward(prog, SandboxRunner(prog, LIMITS))


REFUSED = {  # caught by the static checks, before anything runs
    "import os": ("import os\nreturn info['x_velocity'], {}", "import of 'os'"),
    "import socket": ("import socket\nreturn info['x_velocity'], {}", "import of 'socket'"),
    "import subprocess": ("import subprocess\nreturn info['x_velocity'], {}", "import of 'subprocess'"),
    "from os import system": ("from os import system\nreturn info['x_velocity'], {}", "import from 'os'"),
    "multiprocessing": ("import multiprocessing\nreturn info['x_velocity'], {}", "multiprocessing"),
    "ctypeslib": ("import numpy.ctypeslib\nreturn info['x_velocity'], {}", "numpy.ctypeslib"),
    "subclasses escape": (
        "s = ().__class__.__base__.__subclasses__()\nreturn info['x_velocity'], {}",
        "__class__",
    ),
    "open /etc/passwd": ("open('/etc/passwd').read()\nreturn info['x_velocity'], {}", "'open'"),
    "__import__": ("__import__('os').system('true')\nreturn info['x_velocity'], {}", "__import__"),
    "eval": ("return eval('info[\"x_velocity\"]'), {}", "'eval'"),
    "exec": ("exec('import os')\nreturn info['x_velocity'], {}", "'exec'"),
    "getattr string": ("f = getattr(np, 'lo' + 'ad')\nreturn info['x_velocity'], {}", "'getattr'"),
    "np.load": ("np.load('/etc/passwd')\nreturn info['x_velocity'], {}", r"\.load"),
    "np.save": ("np.save('/tmp/leak.npy', obs)\nreturn info['x_velocity'], {}", r"\.save"),
    "tofile": ("obs.tofile('/tmp/leak')\nreturn info['x_velocity'], {}", r"\.tofile"),
    "globals": ("g = globals()\nreturn info['x_velocity'], {}", "'globals'"),
    "dunder dict": ("f = np.__dict__['load']\nreturn info['x_velocity'], {}", "__dict__"),
    "code object": ("c = (lambda: 0).__code__\nreturn info['x_velocity'], {}", "__code__"),
    "builtins": ("b = __builtins__\nreturn info['x_velocity'], {}", "__builtins__"),
    "numpy.testing runs strings": ("np.testing.measure('1', 1)\nreturn info['x_velocity'], {}", r"\.testing"),
    "a special method": (
        "class T:\n    def __array__(self):\n        return obs[:, 0]\nreturn T(), {}",
        "special method '__array__'",
    ),
    "a metaclass": ("class T(metaclass=type):\n    pass\nreturn info['x_velocity'], {}", "metaclass"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_static_checks_refuse(name):
    body, reason = REFUSED[name]
    prog = program(body)
    assert not static_check(prog.source).ok
    with pytest.raises(CodeCheckError, match=reason):
        SandboxRunner(prog, LIMITS)


CONTAINED = {  # they pass the static checks; the sandbox or the output checks stop them
    "infinite loop": ("while True:\n    pass", r"CPU limit|longer than"),
    "far over the time budget": (
        "s = sum(range(10**10))\nreturn info['x_velocity'], {}",
        r"CPU limit|longer than",
    ),
    "memory bomb": ("x = np.ones(10**10)\nreturn info['x_velocity'], {}", "MemoryError"),
    "growing memory": (
        "xs = []\nwhile True:\n    xs.append(np.ones(10**6))",
        r"MemoryError|CPU limit|longer",
    ),
    "recursion": ("def f(k):\n    return f(k + 1)\nreturn f(0), {}", "RecursionError"),
    "NaN total": ("return np.full(len(obs), np.nan), {}", "total reward has NaN"),
    "inf component": (
        "v = info['x_velocity']\nreturn v, {'speed': v / 0.0}",
        "component 'speed' has NaN or inf",
    ),
    "wrong shape": ("return np.zeros((len(obs), 2)), {}", r"shape \(4, 2\), expected \(4,\)"),
    "non-numeric": ("return 'fast', {}", "not numeric|could not convert"),
    "not a tuple": ("return info['x_velocity']", r"must return \(total, components\)"),
    "components not a dict": ("return info['x_velocity'], [1, 2]", r"must return \(total, components\)"),
    "mutates obs": ("obs[0, 0] = 99.0\nreturn info['x_velocity'], {}", "read-only"),
    "missing field": ("return info['x_vel'], {}", "KeyError: 'x_vel'.*x_velocity"),
}


@pytest.mark.parametrize("name", list(CONTAINED))
def test_sandbox_contains(name):
    body, reason = CONTAINED[name]
    reward = sandboxed(program(body))
    b = batch()
    try:
        with pytest.raises(RewardProgramError, match=reason):
            reward(b)
        assert b.obs[0, 0] == 0.0  # the caller's arrays are untouched
    finally:
        reward.close()


def test_failing_on_some_inputs_only_keeps_the_worker_usable():
    reward = sandboxed(
        program("if obs[0, 0] > 0.5:\n    raise ValueError('bad state')\nreturn info['x_velocity'], {}")
    )
    try:
        np.testing.assert_allclose(reward(batch()).total, [0, 1, 2, 3])
        with pytest.raises(RewardProgramError, match="ValueError: bad state"):
            reward(batch(first=1.0))
        np.testing.assert_allclose(reward(batch()).total, [0, 1, 2, 3])
    finally:
        reward.close()


def test_a_killed_worker_is_replaced_on_the_next_call():
    reward = sandboxed(
        program("if obs[0, 0] > 0.5:\n    while True:\n        pass\nreturn info['x_velocity'], {}")
    )
    try:
        with pytest.raises(RewardProgramError, match=r"CPU limit|longer than"):
            reward(batch(first=1.0))
        np.testing.assert_allclose(reward(batch()).total, [0, 1, 2, 3])
    finally:
        reward.close()


def test_print_cannot_corrupt_the_protocol():
    reward = sandboxed(
        program("print('```' * 100_000)\nreturn info['x_velocity'] * 2, {'v': info['x_velocity']}")
    )
    try:
        out = reward(batch())
        np.testing.assert_allclose(out.total, [0, 2, 4, 6])
        np.testing.assert_allclose(out.components["v"], [0, 1, 2, 3])
    finally:
        reward.close()


@pytest.mark.parametrize(
    ("body", "event"),
    [
        ("open('/etc/passwd')\nreturn info['x_velocity'], {}", "open"),
        ("import socket\nreturn info['x_velocity'], {}", "import"),
        ("import os\nos.system('true')\nreturn info['x_velocity'], {}", "os.system"),
    ],
)
def test_audit_hook_is_a_second_line(monkeypatch, body, event):
    """Even code the static checks miss cannot open files, import modules or start processes."""
    import rewardgen.programs.sandbox as sandbox

    monkeypatch.setattr(sandbox, "static_check", lambda source: static_check("def compute_reward(): pass"))
    reward = CodeReward(p := program(body), SandboxRunner(p, LIMITS))
    try:
        with pytest.raises(RewardProgramError, match=f"sandbox refuses '{event}"):
            reward(batch())
    finally:
        reward.close()


def test_load_errors_are_reported():
    bad = RewardProgram.from_source(
        "import numpy as np\nx = 1 / 0\ndef compute_reward(obs, action, next_obs, info):\n"
        "    return info['x_velocity'], {}\n"
    )
    with pytest.raises(RewardProgramError, match="ZeroDivisionError"):
        sandboxed(bad)(batch())


def test_extract_code():
    reply = "Sure!\n```python\nimport numpy as np\ndef compute_reward(o, a, n, info):\n    return 1\n```\nBye"
    assert extract_code(reply).startswith("import numpy")
    assert extract_code("def compute_reward(o, a, n, i):\n    return 1\n").startswith("def")
    with pytest.raises(CodeCheckError, match="no ```python code block"):
        extract_code("I would reward forward velocity and penalise torque.")


def test_reference_rewards_pass_the_checks_and_match_in_process():
    from rewardgen.tasks import list_tasks

    for task in list_tasks():
        prog = RewardProgram.from_file(task.reward_path, task.resolved_reward_params())
        assert static_check(prog.source).ok, task.id
    prog = RewardProgram.from_file(next(t for t in list_tasks() if t.id == "hopper-run").reward_path)
    b = TransitionBatch(
        np.zeros((3, 11)),
        np.full((3, 3), 0.5),
        np.zeros((3, 11)),
        np.zeros(3, bool),
        np.zeros(3, bool),
        {"x_velocity": np.array([1.0, 2.0, 3.0]), "is_healthy": np.ones(3)},
    )
    inside, outside = sandboxed(prog), CodeReward(prog)
    try:
        np.testing.assert_allclose(inside(b).total, outside(b).total)
    finally:
        inside.close()


def test_cpu_limit_is_per_call_not_per_worker():
    """A long training run calls the reward many times: only one call's CPU time counts."""
    limits = SandboxLimits(call_timeout_s=5.0, call_cpu_s=1, memory_mb=600)
    prog = program("s = sum(range(4_000_000))\nreturn info['x_velocity'], {}")
    reward = CodeReward(prog, SandboxRunner(prog, limits))
    try:
        for _ in range(30):  # ~0.1 s of CPU each: well over the 1 s limit in all
            reward(batch())
    finally:
        reward.close()


def test_the_worker_loads_nothing_beyond_the_program_layer():
    """What the worker imports stays importable by the program without an 'import' event: no
    env, network or multiprocessing modules may be among them (subprocess is, through the
    parent-side sandbox module; spawning is refused by the audit hook, see above)."""
    import subprocess
    import sys

    code = (
        "import sys, rewardgen.programs.program, rewardgen.programs.wire\n"
        "print(sorted(m for m in ('socket', 'gymnasium', 'multiprocessing', 'torch', 'ssl')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


SCIPY_HEAD = (
    "import numpy as np\n"
    "import scipy\n"
    "from scipy.spatial import distance\n"
    "from scipy.spatial.transform import Rotation\n"
    "from scipy.special import expit\n\n"
    "def compute_reward(obs, action, next_obs, info):\n"
)


def test_the_vetted_part_of_scipy_runs_in_the_sandbox_as_in_process():
    """LLM-written rewards reach for scipy.spatial.distance and Rotation: they work sandboxed."""
    prog = program(
        "d = np.array([distance.euclidean(o, n) for o, n in zip(obs, next_obs)])\n"
        "yaw = Rotation.from_euler('z', info['x_velocity'][:, None]).as_quat()[:, 3]\n"
        "gate = expit(info['x_velocity']) + scipy.linalg.norm(action)\n"
        "return d + yaw + gate, {'dist': d, 'yaw': yaw}",
        head=SCIPY_HEAD,
    )
    assert static_check(prog.source).ok
    b = batch()
    inside, outside = sandboxed(prog), CodeReward(prog)
    try:
        got, want = inside(b), outside(b)
    finally:
        inside.close()
    np.testing.assert_allclose(got.total, want.total)
    assert np.ptp(got.components["yaw"]) > 0


def test_scipy_outside_the_vetted_part_is_refused_with_the_list():
    for src in ("from scipy import stats", "import scipy.io", "import scipy\nx = scipy.optimize"):
        problems = static_check(src + "\ndef compute_reward(o, a, n, i):\n    return 0, {}\n").problems
        assert problems and "not in the sandbox's part of scipy" in problems[0], src
        assert "scipy.spatial.distance" in problems[0]


@pytest.mark.parametrize("module", ["socket", "subprocess", "shutil"])
def test_what_scipy_brings_in_stays_behind_the_import_audit(monkeypatch, module):
    """scipy imports socket, subprocess and shutil itself (and the worker's own imports bring in
    subprocess); the worker hides them again before the program runs, so a program the static
    checks missed still meets the audit hook's 'import' refusal."""
    import rewardgen.programs.sandbox as sandbox

    monkeypatch.setattr(sandbox, "static_check", lambda source: static_check("def compute_reward(): pass"))
    reward = sandboxed(p := program(f"import {module}\nreturn info['x_velocity'], {{}}", head=SCIPY_HEAD))
    assert p.source.count("scipy") >= 3
    try:
        with pytest.raises(RewardProgramError, match="sandbox refuses 'import"):
            reward(batch())
    finally:
        reward.close()
