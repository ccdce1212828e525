"""PrefPPO: segments cut from PPO's own rollouts, queries where the ensemble disagrees, the model
refitted while PPO trains, and a learned reward that tracks the task's reward on MuJoCo."""

import json
from pathlib import Path

import numpy as np
import pytest

from rewardgen.errors import RewardgenError
from rewardgen.feedback import PreferenceStore, SyntheticJudge
from rewardgen.preference import PreferenceRewardModel
from rewardgen.preference.prefppo import PreferenceCallback, PrefPPOConfig, train_prefppo
from rewardgen.preference.segments import SegmentPool, SegmentRecorder
from rewardgen.rewards import RewardFn, RewardOutput, TransitionBatch


def test_segments_never_cross_an_episode_end():
    pool = SegmentPool(n_envs=2, length=4)
    t = np.arange(12, dtype=float)
    features = np.stack([t, 100 + t], axis=1)[..., None]  # (T, envs, 1): step numbers
    dones = np.zeros((12, 2), bool)
    dones[5, 0] = True  # env 0: episode 0-5, then 6-11
    assert pool.add(features, features[..., 0], dones) == 5  # env 0: 0-3, 6-9; env 1: 0-3, 4-7, 8-11
    starts = sorted(pool.features[:, 0, 0].tolist())
    assert starts == [0.0, 6.0, 100.0, 104.0, 108.0]
    assert all(np.all(np.diff(seg[:, 0]) == 1) for seg in pool.features)  # whole, in order
    pairs = pool.pairs(50)
    assert pairs.shape == (50, 2) and np.all(pairs[:, 0] != pairs[:, 1])


class Speed(RewardFn):
    """The 'true' reward of the toy below: the first feature."""

    def compute(self, batch: TransitionBatch) -> RewardOutput:
        return RewardOutput(np.asarray(batch.next_obs)[:, 0].astype(float), {})


def batch(obs):
    n = len(obs)
    return TransitionBatch(
        obs=obs,
        action=np.zeros((n, 1)),
        next_obs=obs,
        terminated=np.zeros(n, bool),
        truncated=np.zeros(n, bool),
    )


def test_the_callback_spends_its_queries_on_schedule_and_learns_the_reward(tmp_path):
    rng = np.random.default_rng(0)
    model = PreferenceRewardModel(input_dim=3, members=3, seed=0)
    recorder = SegmentRecorder(model, Speed())
    config = PrefPPOConfig(task="toy", queries=60, segment_length=5, fit_epochs=30)
    store = PreferenceStore(tmp_path / "preferences.jsonl")
    callback = PreferenceCallback(
        recorder, SegmentPool(4, 5), SyntheticJudge(), store, config, total_steps=1000
    )
    assert [callback.due(s) for s in (0, 250, 500, 1000)] == [6, 33, 60, 60]  # a tenth at once, all by half
    for timesteps in range(100, 1001, 100):
        for _ in range(25):  # a rollout of 25 steps of 4 envs, scored as PPO would
            recorder(batch(rng.normal(size=(4, 2))))
        callback.on_rollout_end(timesteps)
        assert len(callback.answers) == callback.due(timesteps)
    answers = store.load()
    assert len(answers) == 60 and answers[0].round == "q0" and answers[0].judge == "synthetic:score"
    assert callback.agreement() == 1.0  # a noiseless synthetic judge follows the true reward
    assert callback.correlation() > 0.9  # and the model learned it from the answers alone


def test_prefppo_learns_a_reward_that_tracks_the_task_reward_on_mujoco(tmp_path):
    _result, summary = train_prefppo(
        PrefPPOConfig(
            task="halfcheetah-run", queries=100, steps=20480, video=False, progress=False, eval_episodes=1
        ),
        out=tmp_path / "run",
    )
    assert summary["queries_asked"] == 100
    assert summary["learned_vs_reference_correlation"] > 0.6  # 0.81-0.85 over seeds 0-2: from answers alone
    assert len(PreferenceStore(tmp_path / "run" / "preferences.jsonl").load()) == 100
    saved = json.loads((tmp_path / "run" / "prefppo.json").read_text())
    assert saved["eval"]["episodes"][0]["length"] == 1000
    assert (tmp_path / "run" / "reward_model.pt").is_file()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["method"] == "prefppo" and manifest["deferred_reward"] is True


def test_prefppo_names_what_it_cannot_do(tmp_path):
    (tmp_path / "preferences.jsonl").write_text("")
    with pytest.raises(RewardgenError, match="already holds a PrefPPO run"):
        train_prefppo(PrefPPOConfig(task="halfcheetah-run"), out=tmp_path)
    with pytest.raises(RewardgenError, match="at least 1"):
        train_prefppo(PrefPPOConfig(task="halfcheetah-run", queries=0), out=tmp_path)
    with pytest.raises(RewardgenError, match="unknown judge"):
        train_prefppo(PrefPPOConfig(task="halfcheetah-run", judge="oracle"), out=tmp_path / "other")


def test_a_person_answers_prefppo_on_the_page_from_two_clips(tmp_path, monkeypatch):
    """The web judge: each query is two clips of the current policy on the page; training waits
    for the answer, which comes here over HTTP as a browser would send it."""
    pytest.importorskip("fastapi")
    import threading
    import time
    import urllib.request

    from rewardgen.feedback.server import answer_headers
    from rewardgen.feedback.store import RoundBoard

    out = tmp_path / "run"
    seen = []

    def person():
        board = RoundBoard(out)
        while len(seen) < 3:
            pending = board.pending() if board.path.exists() else None
            url = next(out.glob("server-url"), None)
            if pending is None or url is None:
                time.sleep(0.05)
                continue
            seen.append(pending)
            body = json.dumps({"round": pending.round, "best": "b", "worst": "a", "rater": "ana"}).encode()
            with urllib.request.urlopen(url.read_text(), timeout=10) as page:  # its secret, as a browser
                headers = answer_headers(page.read().decode())
            request = urllib.request.Request(url.read_text() + "api/answer", data=body, headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200

    from rewardgen.feedback import web

    started = web.PreferenceServer.start

    def start(self):  # tell the "person" where the page is, as the printed URL tells a person
        server = started(self)
        (out / "server-url").write_text(server.url)
        return server

    monkeypatch.setattr(web.PreferenceServer, "start", start)
    thread = threading.Thread(target=person, daemon=True)
    thread.start()
    _, summary = train_prefppo(
        PrefPPOConfig(
            task="halfcheetah-run",
            judge="web:port=0",
            queries=3,
            segment_length=10,
            steps=4096,
            video=False,
            progress=False,
            eval_episodes=1,
        ),
        out=out,
    )
    thread.join(10)
    assert summary["queries_asked"] == 3 and [p.round for p in seen] == ["q0", "q1", "q2"]
    for p in seen:  # two clips of the policy, as MP4 and WebM, inside the run
        assert [o["id"] for o in p.options] == ["a", "b"]
        for o in p.options:
            assert (out / o["video"]).is_file() and (out / o["webm"]).is_file()
    answers = PreferenceStore(out / "preferences.jsonl").load()
    assert [(a.best, a.judge, a.rater) for a in answers] == [("b", "web", "ana")] * 3


# several raters -------------------------------------------------------------------------------


def test_a_synthetic_rater_with_a_taste_ranks_by_its_measure():
    from rewardgen.feedback import Option, make_judge

    fast, calm = make_judge("synthetic:taste=x_velocity"), make_judge("synthetic:taste=-ctrl,rater=calm")
    options = [
        Option("a", measures={"x_velocity": 3.0, "ctrl": 9.0}),
        Option("b", measures={"x_velocity": 1.0, "ctrl": 2.0}),
    ]
    assert (fast("q0", options).best, fast.rater, fast.name) == (
        "a",
        "x_velocity",
        "synthetic:taste=x_velocity",
    )
    assert (calm("q0", options).best, calm("q0", options).rater) == ("b", "calm")
    with pytest.raises(RewardgenError, match="measured for"):
        fast("q1", [Option("a", score=1.0), Option("b", score=2.0)])  # nothing measured
    with pytest.raises(RewardgenError, match="not both"):
        make_judge("synthetic:taste=x_velocity,by=score")
    with pytest.raises(RewardgenError, match="x-velocity"):
        make_judge("synthetic:taste=x-velocity")


def speed_batch(speed):
    n = len(speed)
    return TransitionBatch(
        obs=np.zeros((n, 2)),
        action=np.zeros((n, 1)),
        next_obs=np.stack([speed, np.random.default_rng(1).normal(size=n)], axis=1),
        terminated=np.zeros(n, bool),
        truncated=np.zeros(n, bool),
        info={"x_velocity": speed},
    )


def test_two_raters_with_opposite_tastes_get_a_reward_each(tmp_path):
    from rewardgen.feedback import make_judge
    from rewardgen.feedback.tastes import Measure
    from rewardgen.preference.pluralistic import PluralisticRewardModel, RaterView

    rng = np.random.default_rng(0)
    pal = PluralisticRewardModel(input_dim=3, prototypes=2, seed=0)
    judges = [
        make_judge("synthetic:taste=x_velocity,rater=fast"),
        make_judge("synthetic:taste=-x_velocity,rater=slow"),
    ]
    recorder = SegmentRecorder(RaterView(pal, "fast"), Speed(), {"x_velocity": Measure("x_velocity")})
    config = PrefPPOConfig(task="toy", queries=40, segment_length=5, fit_epochs=40)
    store = PreferenceStore(tmp_path / "preferences.jsonl", per_rater=True)
    callback = PreferenceCallback(recorder, SegmentPool(4, 5), judges, store, config, total_steps=1000)
    for timesteps in range(100, 1001, 100):
        for _ in range(25):
            recorder(speed_batch(rng.normal(size=4)))
        callback.on_rollout_end(timesteps)
    answers = store.load()
    assert len(answers) == 80 and {c.rater for c in store.answers("q0")} == {"fast", "slow"}
    assert callback.agreement() == 0.5  # one rater follows the reference reward (speed), one opposes it
    features = np.stack([np.linspace(-2, 2, 50), np.zeros(50), np.zeros(50)], axis=1)
    for rater, sign in (("fast", 1), ("slow", -1)):
        reward = RaterView(pal, rater).score_features(features).total
        assert sign * np.corrcoef(reward, features[:, 0])[0, 1] > 0.9  # each rater's own reward
    assert abs(pal.weights("fast")[0] - pal.weights("slow")[0]) > 0.5  # far apart on the simplex
    with pytest.raises(RewardgenError, match="from fast"):
        store.add(answers[0])  # one answer per rater and round


def test_two_raters_end_with_two_policies_each_preferred_by_its_own_rater(tmp_path):
    # opposite tastes: forward and backward
    config = PrefPPOConfig(
        task="halfcheetah-run",
        judge=["synthetic:taste=x_velocity,rater=forward", "synthetic:taste=-x_velocity,rater=backward"],
        queries=40,
        steps=30720,
        video=False,
        progress=False,
        eval_episodes=1,
    )
    result, summary = train_prefppo(config, out=tmp_path / "run")
    assert summary["model"] == "pal" and summary["raters"] == ["forward", "backward"]
    assert summary["preferred"] == {"forward": "forward", "backward": "backward"}, summary["measured"]
    measured = summary["measured"]
    assert measured["forward"]["x_velocity"] > measured["backward"]["x_velocity"]  # what each asked for
    runs = {Path(p["run_dir"]).name for p in summary["policies"].values()}
    assert runs == {"policy-forward", "policy-backward"} and Path(result.run_dir).name == "policy-forward"
    store = PreferenceStore(tmp_path / "run" / "preferences.jsonl")
    assert {c.rater for c in store.answers("q0")} == {"forward", "backward"}
    assert len(store.answers("final")) == 2
    weights = summary["weights"]
    assert abs(weights["forward"][0] - weights["backward"][0]) > 0.5  # two tastes, two places on the simplex
    with pytest.raises(RewardgenError, match="different rater names"):
        train_prefppo(
            PrefPPOConfig(task="halfcheetah-run", judge=["synthetic", "synthetic"]), out=tmp_path / "b"
        )
