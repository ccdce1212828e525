import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from conftest import GYM_1, CountEnv, NextObsT
from rewardgen.errors import RewardgenError
from rewardgen.wrappers import RewardWrapper, SB3RewardVecWrapper, VectorRewardWrapper

LENGTHS = (2, 3, 4)


def _vector(reward, autoreset=None, lengths=LENGTHS, truncate=False, render_mode=None):
    fns = [lambda i=i, n=n: CountEnv(n, i, truncate, render_mode) for i, n in enumerate(lengths)]
    kwargs = {"autoreset_mode": autoreset} if autoreset else {}
    return VectorRewardWrapper(gym.vector.SyncVectorEnv(fns, **kwargs), reward)


def test_single_env_replaces_reward_and_reports_episode_sums():
    reward = NextObsT()
    env = RewardWrapper(CountEnv(3), reward)
    env.reset(seed=0)
    rewards, infos = [], []
    for _ in range(3):
        _, r, term, trunc, info = env.step(np.zeros(1, np.float32))
        rewards.append(r)
        infos.append(info)
    assert rewards == [10.0, 20.0, 30.0]
    assert [i["env_reward"] for i in infos] == [1.0, 1.0, 1.0]
    assert infos[1]["reward_components"] == {"t": 2.0, "const": 1.0}
    assert "reward_episode" not in infos[1]
    ep = infos[2]["reward_episode"]
    assert ep["env_return"] == 3.0 and ep["reward_return"] == 60.0 and ep["length"] == 3
    assert ep["components"] == {"t": 6.0, "const": 3.0}
    assert term and not trunc


def test_add_mode_mixes_env_and_synthesized_reward():
    env = RewardWrapper(CountEnv(3), NextObsT(), mode="add", env_coef=2.0, reward_coef=0.5)
    env.reset()
    _, r, *_ = env.step(np.zeros(1, np.float32))
    assert r == 2.0 * 1.0 + 0.5 * 10.0
    with pytest.raises(RewardgenError, match="unknown reward mode 'mix'"):
        RewardWrapper(CountEnv(3), NextObsT(), mode="mix")


@pytest.mark.skipif(not GYM_1, reason="NEXT_STEP autoreset exists from gymnasium 1.0")
def test_vector_next_step_masks_the_autoreset_step():
    reward = NextObsT()
    envs = _vector(reward)
    envs.reset(seed=0)
    steps = [envs.step(np.zeros((3, 1), np.float32)) for _ in range(4)]
    assert reward.calls == 4  # one reward call per vector step, never one per env
    r = np.array([s[1] for s in steps])
    # env 0 (length 2): t=1, t=2 (done), reset step (masked), t=1
    np.testing.assert_array_equal(r[:, 0], [10, 20, 0, 10])
    assert not steps[2][4]["_env_reward"][0] and steps[2][4]["_env_reward"][1]
    ep0 = steps[1][4]
    assert ep0["_reward_episode"].tolist() == [True, False, False]
    assert ep0["reward_episode"]["reward_return"][0] == 30.0
    assert ep0["reward_episode"]["length"][0] == 2
    # env 0's second episode does not count the reset step: t=1, t=2 again -> 30
    _, _, _, _, info = envs.step(np.zeros((3, 1), np.float32))
    assert info["_reward_episode"][0]
    assert info["reward_episode"]["reward_return"][0] == 30.0
    assert info["reward_episode"]["env_return"][0] == 2.0


def test_vector_same_step_autoreset_scores_the_final_observation():
    if GYM_1:
        envs = _vector(NextObsT(), autoreset=gym.vector.AutoresetMode.SAME_STEP)
    else:
        envs = _vector(NextObsT())  # gymnasium < 1: same-step with final_observation
    envs.reset(seed=0)
    envs.step(np.zeros((3, 1), np.float32))
    obs, r, term, _, info = envs.step(np.zeros((3, 1), np.float32))
    assert term[0] and obs[0, 0] == 0  # env 0 was reset in the same step...
    assert r[0] == 20.0  # ...but scored on its final observation (t=2)
    assert info["reward_episode"]["reward_return"][0] == 30.0
    obs, r, *_ = envs.step(np.zeros((3, 1), np.float32))
    assert r[0] == 10.0  # the new episode's first transition starts from the reset obs


def test_vector_fields_default_to_info_and_batch_with_the_step():
    reward = NextObsT()
    envs = _vector(reward)
    envs.reset(seed=0)
    envs.step(np.zeros((3, 1), np.float32))
    np.testing.assert_array_equal(reward.batches[-1].info["speed"], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(reward.batches[-1].obs[:, 0], [0, 0, 0])


def test_sb3_vecenv_uses_terminal_observation_and_timelimit_flag():
    reward = NextObsT()
    venv = SB3RewardVecWrapper(
        DummyVecEnv([lambda i=i, n=n: CountEnv(n, i, truncate=True) for i, n in enumerate(LENGTHS)]), reward
    )
    venv.reset()
    venv.step(np.zeros((3, 1), np.float32))
    obs, r, dones, infos = venv.step(np.zeros((3, 1), np.float32))
    assert dones[0] and obs[0, 0] == 0
    assert r[0] == 20.0  # scored on terminal_observation, not on the reset obs
    batch = reward.batches[-1]
    assert batch.truncated[0] and not batch.terminated[0]
    assert infos[0]["reward_episode"]["reward_return"] == 30.0
    assert infos[0]["reward_episode"]["env_return"] == 2.0
    assert infos[1]["env_reward"] == 1.0 and infos[1]["reward_components"]["t"] == 2.0
    assert reward.resets[-1] == [0]  # the reward function is told which episodes ended


def test_frames_are_rendered_only_when_the_reward_asks():
    reward = NextObsT(needs_frames=True)
    envs = _vector(reward, render_mode="rgb_array")
    envs.reset(seed=0)
    envs.step(np.zeros((3, 1), np.float32))
    frames = reward.batches[-1].frames
    assert frames.shape == (3, 8, 8, 3) and frames[0, 0, 0, 0] == 1
    assert NextObsT().needs_frames is False
    with pytest.raises(RewardgenError, match="render_mode='rgb_array'"):
        _vector(NextObsT(needs_frames=True))
    single = NextObsT(needs_frames=True)
    env = RewardWrapper(CountEnv(3, render_mode="rgb_array"), single)
    env.reset()
    env.step(np.zeros(1, np.float32))
    assert single.batches[-1].frames.shape == (1, 8, 8, 3)


def test_sb3_deferred_rewards_equal_per_step_rewards_and_episodes():
    """Deferred scoring (one call per rollout) returns the same rewards and the same episode
    summaries, metrics included, as scoring every step."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardgen.programs import load_reward_program
    from rewardgen.tasks import get_task, make_env_fn, wrapper_kwargs
    from rewardgen.wrappers.sb3 import SB3RewardVecWrapper

    spec = get_task("hopper-jump")  # short random episodes, a max-reduced metric, five components
    actions = np.random.default_rng(0).uniform(-1, 1, (300, 4, 3)).astype(np.float32)
    results = {}
    for defer in (False, True):
        reward = load_reward_program(spec.reward_path, spec.resolved_reward_params())
        venv = DummyVecEnv([make_env_fn(spec, fields=reward.fields) for _ in range(4)])
        venv = SB3RewardVecWrapper(venv, reward, defer=defer, **wrapper_kwargs(spec, reward.fields))
        venv.seed(3)
        venv.reset()
        rewards, episodes = [], []
        for a in actions:
            _, r, _, infos = venv.step(a)
            rewards.append(r)
            episodes += [i["reward_episode"] for i in infos if "reward_episode" in i]
        if defer:
            assert not np.any(rewards) and not episodes  # placeholders until the flush
            mixed, dones = venv.flush()
            rewards, episodes = mixed, venv.pop_episodes()
            assert dones.shape == (300, 4) and dones.any()
        results[defer] = (np.asarray(rewards), episodes)
        venv.close()
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-6, atol=1e-6)
    per_step, deferred = results[False][1], results[True][1]
    assert len(per_step) > 20 and len(deferred) == len(per_step)
    key = lambda e: (e["length"], round(e["env_return"], 6))  # noqa: E731 - order within a step may differ
    for a, b in zip(sorted(per_step, key=key), sorted(deferred, key=key), strict=True):
        assert a["length"] == b["length"] and a["metrics"] == pytest.approx(b["metrics"])
        assert a["reward_return"] == pytest.approx(b["reward_return"]) and a["components"] == pytest.approx(
            b["components"]
        )


@pytest.mark.parametrize("how", ["mean", "max", "final"])
def test_mixer_episode_sums_equal_a_step_by_step_count_over_long_masked_episodes(how):
    """The mixer adds steps to the episode sums in blocks (a buffer of 64 steps): over episodes
    longer than a block, with autoreset steps masked out and a component that appears midway,
    every sum and metric equals the naive step-by-step count."""
    from rewardgen.rewards import RewardFn, RewardOutput
    from rewardgen.wrappers import RewardMixer
    from rewardgen.wrappers.core import DictOfArraysView

    class Echo(RewardFn):
        def compute(self, batch):
            v = batch.info["v"]
            comps = {"a": 2 * v} if batch.info["late"][0] < 1 else {"a": 2 * v, "b": -v}
            return RewardOutput(sum(comps.values()), comps)

    n, rng = 3, np.random.default_rng(0)
    mixer = RewardMixer(Echo(), n, episode_metrics={"m": ("v", how)})
    expect = {
        "env": np.zeros(n),
        "total": np.zeros(n),
        "a": np.zeros(n),
        "b": np.zeros(n),
        "len": np.zeros(n),
    }
    values: list[list[float]] = [[] for _ in range(n)]
    for t in range(200):
        v, env_r = rng.normal(size=n), rng.normal(size=n)
        active = rng.random(n) > 0.1 if t % 3 else None
        late = np.full(n, float(t >= 100))
        info = DictOfArraysView({"v": v, "late": late}, n)
        mixer(
            np.zeros((n, 1)),
            np.zeros((n, 1)),
            np.zeros((n, 1)),
            env_r,
            np.zeros(n, bool),
            np.zeros(n, bool),
            info,
            active,
        )
        live = np.ones(n, bool) if active is None else active
        expect["env"] += env_r * live
        expect["a"] += 2 * v * live
        expect["b"] += -v * live * (t >= 100)
        expect["total"] += (2 * v - v * (t >= 100)) * live
        expect["len"] += live
        for j in np.flatnonzero(live):
            values[j].append(v[j])
        if t in (150, 199):  # episode ends: env 0 at 150, all at 199
            done = np.array([True, t == 199, t == 199])
            s = mixer.end_episodes(done)
            for pos, j in enumerate(np.flatnonzero(done)):
                np.testing.assert_allclose(s["env_return"][pos], expect["env"][j])
                np.testing.assert_allclose(s["reward_return"][pos], expect["total"][j])
                np.testing.assert_allclose(s["components"]["a"][pos], expect["a"][j])
                np.testing.assert_allclose(s["components"]["b"][pos], expect["b"][j])
                assert s["length"][pos] == expect["len"][j]
                want = {"mean": np.mean, "max": np.max, "final": lambda x: x[-1]}[how](values[j])
                np.testing.assert_allclose(s["metrics"]["m"][pos], want)
                for key in expect:
                    expect[key][j] = 0.0
                values[j] = []
