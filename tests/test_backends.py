"""The back-end table: a third back end is one package plus one entry, reuses the run's life
(rewardgen.training.lifecycle), and everything (train(), evaluation, the command line) works with
it without any other file knowing its name."""

import json
import sys

import pytest

from rewardgen.tasks import VERDICT_EPISODES
from rewardgen.training import BACKENDS, Backend, TrainConfig, evaluate, get_backend, register_backend, train

TOY = '''"""A back end that trains nothing: its policy stands still. It copies nothing of the others:
the run's life (metrics, periodic evaluation, the deadline, the search's stop signal, the end)
is rewardgen.training.lifecycle's."""
import time

import numpy as np

from rewardgen.tasks import get_task, make_env
from rewardgen.training import TrainResult
from rewardgen.training.lifecycle import RunWatch, begin_run, finish_run


def check():
    pass


class Still:
    def __init__(self, space):
        self.space = space

    def predict(self, obs, deterministic=True):
        return np.zeros((len(obs), *self.space.shape), dtype=self.space.dtype), None


def load_policy(run, task):
    env = make_env(get_task(task))
    space = env.action_space
    env.close()
    return Still(space)


def train(config, out=None, method="train", hooks=()):
    started = time.monotonic()
    spec = get_task(config.task)
    reward = config.reward or spec.reference_reward()
    steps = int(config.steps or 4000)
    run = begin_run(spec, reward, config.record(reward), out, method, "toy", "cpu")
    watch = RunWatch.start(config, spec, run, steps, started)
    policy = load_policy(run, spec)
    done = 0
    watch.begin(done)
    while done < steps and not watch.should_stop(done):
        done += 1000  # a "rollout"
        if watch.eval_due(done):
            watch.evaluate(policy, done)
        watch.poll_signal()
    spent = watch.end(run, done, config, started)
    return TrainResult(run.path, *finish_run(run, spec, reward, config, "toy", started, spent))
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    package = tmp_path / "toy_backend"  # a third back end: one package...
    package.mkdir()
    (package / "__init__.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = Backend("toy", "toy_backend", "a back end that trains nothing", periodic_evaluation=True)
    monkeypatch.setitem(BACKENDS, "toy", entry)  # ...and one entry
    yield BACKENDS["toy"]
    sys.modules.pop("toy_backend", None)


def test_a_third_back_end_is_one_package_and_one_entry(toy, tmp_path):
    result = train(
        TrainConfig(task="hopper-run", backend="toy", video=False, eval_episodes=2), out=tmp_path / "run"
    )
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["backend"] == "toy"
    assert manifest["trained_steps"] == 4000
    assert len(result.eval.episodes) == VERDICT_EPISODES  # the rule's 10, not eval_episodes' 2
    # evaluation finds the policy through the table, by the name in the manifest
    again = evaluate(result.run_dir, "hopper-run", _reference(), 1, video=False)
    assert again.episodes[0].length == result.eval.episodes[0].length  # the same still policy, the same seed


def test_the_third_back_end_evaluates_periodically_and_stops_as_the_others_do(toy, tmp_path):
    from rewardgen.runs import StopSignal
    from rewardgen.training.periodic import read_evals

    common = {"task": "hopper-run", "backend": "toy", "video": False, "steps": 4000}
    result = train(TrainConfig(**common, eval_every=2000), out=tmp_path / "evaluated")
    rows = read_evals(result.run_dir / "evals.csv")
    assert [r["timesteps"] for r in rows] == [2000, 4000] and all(r["succeeded"] == 0 for r in rows)
    # a still hopper never succeeds; a search's stop signal ends it after the first "rollout"
    signal = StopSignal.of_search(tmp_path)
    signal.request("iter0/cand1 succeeded")
    stopped = train(TrainConfig(**common, stop_file=str(signal.path)), out=tmp_path / "stopped")
    manifest = json.loads((stopped.run_dir / "manifest.json").read_text())
    assert manifest["trained_steps"] == 1000 and manifest["stopped_early"] == "iter0/cand1 succeeded"


def _reference():
    from rewardgen.tasks import get_task

    return get_task("hopper-run").reference_reward()


def test_the_command_line_trains_with_it_and_asks_it_what_it_can_do(toy, tmp_path, capsys):
    from test_cli import run_cli

    from rewardgen.cli import main

    toy_run = ["--no-video", "--eval-episodes", "1", "--out", str(tmp_path / "run")]
    main(["train", "--task", "hopper-run", "--backend", "toy", *toy_run])
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["backend"] == "toy"
    code, text = run_cli(["train", "--task", "hopper-run", "--backend", "toy", "--num-workers", "2"], capsys)
    assert code == 2 and "rollout worker processes" in text and "--backend sf" in text
    BACKENDS["plain"] = Backend("plain", "toy_backend", "no periodic evaluation")
    try:
        code, text = run_cli(
            ["train", "--task", "hopper-run", "--backend", "plain", "--until-success"], capsys
        )
    finally:
        BACKENDS.pop("plain")
    assert code == 2 and "does not do --until-success" in text and "--backend sb3" in text
    code, text = run_cli(["train", "--task", "hopper-run", "--backend", "nope"], capsys)
    assert code == 2 and "unknown back end 'nope': choose one of sb3, sf, toy" in text


def test_registered_back_ends_say_what_they_can_do():
    assert get_backend("sb3").periodic_evaluation and get_backend("sb3").hooks
    assert get_backend("sf").worker_processes and get_backend("sf").periodic_evaluation
    assert not get_backend("sf").hooks
    registered = register_backend(Backend("later", "nowhere", "registered by a plugin"))
    try:
        assert get_backend("later") is registered
    finally:
        BACKENDS.pop("later")
