"""ONI: the label store, the annotation service against the loopback LLM server (each unique
message reaches the LLM once; an unreachable or slow LLM never stalls the agent; malformed
answers are retried a bounded number of times; a killed service is restarted and loses nothing),
the retrieval reward, and training on NetHack end to end."""

import importlib.util
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from rewardgen.llm import LLMSettings
from rewardgen.llm.testing import Fault, LoopbackLLMServer
from rewardgen.oni import (
    AnnotationService,
    LabelKey,
    LabelStore,
    OniSpec,
    RetrievalReward,
    ServiceConfig,
    label_messages,
    parse_labels,
)
from rewardgen.rewards import TransitionBatch
from rewardgen.tasks import VERDICT_EPISODES

HAS_NLE = importlib.util.find_spec("nle") is not None
needs_nle = pytest.mark.skipif(not HAS_NLE, reason="needs the nethack extra (nle)")
KEY = LabelKey("default", "1", "m")
FAST = ServiceConfig(batch_size=4, poll_s=0.05, retry_s=0.1)


def asked(request) -> list[str]:
    """The messages one labelling request asked about."""
    listed = request["messages"][-1]["content"].split("Messages:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split(". ", 1)[1] for line in listed.splitlines()]


def labeller(request) -> str:
    """An LLM that reasons, then labels messages about gold or killing helpful."""
    lines = [f"{i}: {'yes' if re.search('gold|kill', m) else 'no'}" for i, m in enumerate(asked(request), 1)]
    return "Gold and kills are progress.\nLABELS\n" + "\n".join(lines)


def settings(server) -> LLMSettings:
    return LLMSettings(base_url=server.url, model="m", cache=False, max_retries=0, timeout_s=5)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_the_prompt_and_the_parser():
    prompt = label_messages(
        "stairs", ["You hear the footsteps of a guard on patrol.", "There is a staircase down here."]
    )
    assert (
        "staircase down and descend" in prompt[1]["content"]
        and "2. There is a staircase" in prompt[1]["content"]
    )
    # reasoning may mention numbers: only the part after the last LABELS line counts
    answer = "1: yes would be wrong, because...\nLABELS\n1: no\n2: **yes**\n7: yes"
    assert parse_labels(answer, 2) == {0: 0, 1: 1}
    assert parse_labels("I cannot tell.", 2) == {}
    with pytest.raises(Exception, match=r"unknown ONI goal 'treasure'.*default, gold, stairs, combat"):
        label_messages("treasure", ["x"])


def test_the_store_claims_each_message_once_newest_first_and_bounds_its_backlog(tmp_path):
    store = LabelStore(tmp_path / "l.sqlite", KEY)
    assert store.submit(["a", "b"]) == 2
    time.sleep(0.01)
    assert store.submit(["b", "c", ""]) == 1  # b is known; empty messages are not messages
    assert store.claim(1) == ["c"]  # newest first
    assert store.submit(["c"]) == 0  # in flight: not reported again
    assert sorted(store.claim(5)) == ["a", "b"]
    assert store.claim(5) == []
    store.release(["a"])
    store.put_labels({"b": 1, "c": 0})
    assert store.labels() == {"b": 1, "c": 0}
    assert store.counts() == {"pending": 1, "labelled": 2}
    other = LabelStore(tmp_path / "l.sqlite", LabelKey("gold", "1", "m"))  # another question
    assert other.submit(["b"]) == 1 and other.labels() == {}
    assert store.submit([f"m{i}" for i in range(10)]) == 10
    assert store.trim(4) == 7 and store.counts()["pending"] == 4  # a, m0.. m5 dropped (oldest)


def test_each_unique_message_reaches_the_llm_once(tmp_path):
    """Two workers report overlapping messages, again and again, while the service labels them
    in batches: the server sees every message in exactly one request."""
    messages = [f"You find {k} gold pieces." if k % 3 == 0 else f"You hear noise {k}." for k in range(40)]
    with LoopbackLLMServer(responder=labeller, latency_s=0.05) as server:
        path = tmp_path / "labels.sqlite"
        service = AnnotationService(LabelStore(path, KEY), settings(server), FAST).start()
        try:

            def worker(offset):
                store = LabelStore(path, KEY)
                for _ in range(3):
                    for k in range(0, 40, 5):
                        store.submit(messages[(offset + k) % 40 : (offset + k) % 40 + 5])
                        time.sleep(0.01)

            threads = [threading.Thread(target=worker, args=(o,)) for o in (0, 7)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            store = LabelStore(path, KEY)
            assert wait_for(lambda: len(store.labels()) == 40), store.counts()
        finally:
            service.stop()
        sent = [m for request in server.requests for m in asked(request)]
    assert sorted(sent) == sorted(messages)  # each once
    assert all(len(asked(r)) <= FAST.batch_size for r in server.requests)
    labels = store.labels()
    assert labels["You find 3 gold pieces."] == 1 and labels["You hear noise 4."] == 0


def test_an_unreachable_llm_never_stalls_the_agent_and_labelling_resumes(tmp_path, capfd):
    """While the server fails, rewards of unlabelled messages are 0 and a step costs what it
    costs without the LLM; one warning; when the server is back the messages get labelled."""
    up = threading.Event()

    def flaky(request):
        return labeller(request) if up.is_set() else Fault.server_error(503)

    with LoopbackLLMServer(responder=flaky) as server:
        path = tmp_path / "labels.sqlite"
        reward = RetrievalReward(LabelStore(path, KEY), sync_s=0.05)
        service = AnnotationService(LabelStore(path, KEY), settings(server), FAST).start()
        try:
            texts = ["You kill the newt!", "You see here a gold piece.", "It's a wall."]
            costs, totals = [], []
            for step in range(60):
                batch = _batch([texts[step % 3], texts[(step + 1) % 3]])
                t0 = time.perf_counter()
                totals.append(reward(batch).total.copy())
                costs.append(time.perf_counter() - t0)
                time.sleep(0.02)
            assert np.all(np.concatenate(totals) == 0)  # nothing labelled yet: intrinsic reward 0
            assert max(costs) < 0.2  # the agent never waited for the LLM
            assert wait_for(lambda: len(server.requests) >= 3, 15)  # the service keeps trying
            assert np.all(reward(_batch(texts[:2])).total == 0)
            up.set()
            store = LabelStore(path, KEY)
            assert wait_for(lambda: len(store.labels()) == 3), store.counts()
            assert wait_for(lambda: (reward.sync(), len(reward.known) == 3)[1], 5)
        finally:
            service.stop()
    err = capfd.readouterr().err
    assert err.count("cannot be reached") == 1  # at most one warning a minute


def test_malformed_answers_are_retried_a_bounded_number_of_times_then_recorded(tmp_path):
    with LoopbackLLMServer(responder=lambda request: "Hmm, hard to say.") as server:
        path = tmp_path / "labels.sqlite"
        store = LabelStore(path, KEY)
        store.submit(["You feel hungry."])
        with AnnotationService(store, settings(server), ServiceConfig(max_attempts=3, poll_s=0.05)):
            assert wait_for(lambda: store.counts().get("failed") == 1)
            time.sleep(0.3)
        requests = len(server.requests)
    assert requests == 3
    assert "no label" in store.reasons()["You feel hungry."]
    assert store.labels() == {}


def test_a_killed_service_is_restarted_and_loses_nothing(tmp_path):
    with LoopbackLLMServer(responder=labeller, latency_s=0.3) as server:
        path = tmp_path / "labels.sqlite"
        store = LabelStore(path, KEY)
        store.submit([f"You kill the jackal {k}." for k in range(12)])
        service = AnnotationService(store, settings(server), FAST, watch_s=0.2).start()
        try:
            assert wait_for(lambda: len(store.labels()) >= 4)
            before = store.labels()
            os.kill(service.process.pid, signal.SIGKILL)  # mid-batch, most likely
            assert wait_for(lambda: service.restarts == 1, 10)
            assert wait_for(lambda: len(store.labels()) == 12), store.counts()
        finally:
            service.stop()
    assert before.items() <= store.labels().items()  # what was labelled before the kill stays


def test_the_label_store_survives_a_sigkill_mid_write(tmp_path):
    path = tmp_path / "labels.sqlite"
    script = (
        "import sys, time\n"
        "from rewardgen.oni import LabelKey, LabelStore\n"
        f"s = LabelStore({str(path)!r}, LabelKey('default', '1', 'm'))\n"
        "k = 0\n"
        "while True:\n"
        "    batch = [f'message {k + i}' for i in range(50)]\n"
        "    s.submit(batch); s.put_labels({m: 1 for m in batch}); k += 50\n"
        "    print(k, flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    committed = 0
    while committed < 2000:
        committed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    labels = LabelStore(path, KEY).labels()
    assert len(labels) >= committed and all(labels[f"message {i}"] == 1 for i in range(committed))


def _batch(texts):
    rows = np.zeros((len(texts), 256), np.uint8)
    for i, t in enumerate(texts):
        rows[i, : len(t)] = np.frombuffer(t.encode(), np.uint8)
    n = len(texts)
    return TransitionBatch(
        obs=None, action=np.zeros(n), next_obs=None, info={"message": rows},
        terminated=np.zeros(n, bool), truncated=np.zeros(n, bool),
    )  # fmt: skip


def test_retrieval_pays_a_helpful_message_once_per_episode_with_beta(tmp_path):
    store = LabelStore(tmp_path / "l.sqlite", KEY)
    store.submit(["You kill the newt!", "It's a wall."])
    store.put_labels({"You kill the newt!": 1, "It's a wall.": 0})
    reward = RetrievalReward(store, beta=3.0, sync_s=0.0)
    out = reward(_batch(["You kill the newt!", "It's a wall."]))
    assert out.total.tolist() == [1.0, 0.0] and out.components["labelled"].tolist() == [1.0, 1.0]
    again = reward(_batch(["You kill the newt!", "You hear a door open."]))
    assert again.total.tolist() == [1 / 2**3, 0.0]  # N = 2 in this episode; unknown pays 0
    assert again.components["labelled"].tolist() == [1.0, 0.0]
    reward.reset(np.array([0]))  # a new episode in env 0
    assert reward(_batch(["You kill the newt!", "You kill the newt!"])).total.tolist() == [1.0, 1.0]
    assert reward(_batch(["It's a wall.", "You kill the newt!"])).total.tolist() == [0.0, 1 / 2**3]
    assert store.counts()["pending"] == 1  # the unknown message was reported for labelling
    empty = reward(_batch(["", ""]))
    assert empty.total.tolist() == [0.0, 0.0] and empty.components["labelled"].tolist() == [0.0, 0.0]


def test_the_spec_names_what_it_labels_and_refuses_unknown_choices(tmp_path):
    spec = OniSpec(tmp_path / "l.sqlite", goal="gold", model="llama")
    assert spec.describe() | {"store": ""} == {
        "kind": "oni", "name": "oni-retrieval-gold", "reward": "retrieval", "goal": "gold",
        "prompt_version": "1", "model": "llama", "beta": 3.0, "store": "",
    }  # fmt: skip
    import pickle

    built = pickle.loads(pickle.dumps(spec)).build()
    assert isinstance(built, RetrievalReward) and built.store.key == LabelKey("gold", "1", "llama")
    with pytest.raises(
        Exception, match=r"unknown ONI reward model 'bogus'.*retrieval, classification, ranking"
    ):
        OniSpec(tmp_path / "l.sqlite", reward="bogus")


@needs_nle
def test_nethack_tasks_observe_a_glyph_window_blstats_and_the_message():
    import gymnasium as gym

    from rewardgen.tasks import make_env
    from rewardgen.tasks.nethack import decode_message

    env = make_env("nethack-score")
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"glyphs", "blstats", "message"} and obs["glyphs"].shape == (9, 9)
    # the first message as text: usually the welcome; nle 1.0 (the sample-factory stack) does not
    # always seed the dungeon from reset(seed=...), and a start on gold says "$ - 4 gold pieces."
    message = decode_message(obs["message"])
    assert message.strip() and message.isprintable(), repr(message)
    full = gym.make("NetHackScore-v0")
    ref, _ = full.reset(seed=0)
    x, y = ref["blstats"][:2]
    assert obs["glyphs"][4, 4] == ref["glyphs"][y, x]  # the agent in the middle of its window
    _, _, _, _, info = env.step(env.action_space.sample())
    assert isinstance(info["message_text"], str)
    env.close()
    full.close()


@needs_nle
def test_oni_trains_a_nethack_agent_with_labels_arriving_while_it_trains(tmp_path):
    from rewardgen.cli import main
    from rewardgen.tasks import get_task, save_task_file

    # nethack-score with 100-step episodes, so that a tiny run finishes some
    spec = get_task("nethack-score")
    short = spec.model_copy(update={"id": "nethack-score-short", "env_kwargs": {"max_episode_steps": 100}})
    task = tmp_path / "short.yaml"
    save_task_file(short, task)
    with LoopbackLLMServer(responder=labeller) as server:
        main(
            [
                "oni", "train", "--task", str(task), "--reward", "retrieval", "--goal", "default",
                "--steps", "4096", "--n-envs", "2", "--eval-episodes", "1",  # long enough on a busy machine
                "--store", str(tmp_path / "l.sqlite"),
                "--llm-base-url", server.url, "--llm-model", "m", "--out", str(tmp_path / "run"),
                "--hp", "n_steps=256", "--hp", "batch_size=64",
            ]
        )  # fmt: skip
        assert server.requests  # messages were labelled while the agent trained
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["reward"]["kind"] == "oni"
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"component/intrinsic", "component/labelled", "env_return_mean", "reward_return_mean"} <= set(
        header
    )
    labels = LabelStore(tmp_path / "l.sqlite", KEY).labels()
    assert labels and all(v in (0, 1) for v in labels.values())


def test_a_published_classifier_reaches_running_workers_and_generalises(tmp_path):
    """The service refits the classifier after enough labels and publishes a version; a worker's
    reward picks it up at its next sync (no restart) and rewards a helpful message the LLM has
    never labelled."""
    from rewardgen.oni import ClassificationReward, refit_classifier

    store = LabelStore(tmp_path / "l.sqlite", KEY)
    monsters = ["newt", "jackal", "lichen", "grid bug", "fox", "kobold", "gnome", "sewer rat"]
    helpful = [f"You kill the {m}!" for m in monsters] + [
        f"You see here {k} gold pieces." for k in range(2, 9)
    ]
    routine = [f"It's a wall. {k}" for k in range(8)] + [f"You hear some noises {k}." for k in range(7)]
    reward = ClassificationReward(store, sync_s=0.0)
    assert reward(_batch(["You kill the giant rat!", "It's a wall. 0"])).total.tolist() == [0.0, 0.0]
    assert reward.version == 0  # no model yet: the labels, none so far
    store.submit(helpful + routine)
    store.put_labels({**{m: 1 for m in helpful}, **{m: 0 for m in routine}})
    config = ServiceConfig(classifier=True, retrain_every=16)
    assert refit_classifier(store, config) == 1
    assert refit_classifier(store, config) is None  # nothing new to learn from
    reward.reset(np.array([0, 1]))  # new episodes: no message seen yet
    out = reward(_batch(["You kill the giant rat!", "You hear some noises 99."]))
    assert reward.version == 1
    assert out.total.tolist() == [1.0, 0.0]  # never labelled, yet judged like its kind
    assert out.components["labelled"].tolist() == [0.0, 0.0]  # coverage counts LLM labels only


@needs_nle
@pytest.mark.skipif(importlib.util.find_spec("sample_factory") is None, reason="the sample-factory stack")
@pytest.mark.parametrize("model", ["retrieval", "classification", "ranking"])
def test_oni_trains_with_appo_and_our_nethack_encoder(tmp_path, model):
    """`oni train --backend sf`: the ONI reward inside each rollout worker's vectorized env, our
    NetHack encoder in the learner, labels arriving from the service while it trains; the saved
    policy is evaluated like an SB3 one."""
    from rewardgen.cli import main
    from rewardgen.tasks import get_task, save_task_file

    spec = get_task("nethack-score")
    task = tmp_path / "short.yaml"
    save_task_file(
        spec.model_copy(update={"id": "nethack-short", "env_kwargs": {"max_episode_steps": 64}}), task
    )
    with LoopbackLLMServer(responder=preferrer) as server:
        main(
            [
                "oni", "train", "--backend", "sf", "--task", str(task), "--reward", model, "--steps", "3000",
                "--eval-episodes", "1", "--store", str(tmp_path / "l.sqlite"), "--llm-base-url", server.url,
                "--llm-model", "m", "--out", str(tmp_path / "run"),
                "--hp", "num_workers=2", "--hp", "num_envs_per_worker=2", "--hp", "batch_size=256",
                "--hp", "rollout=32",
            ]
        )  # fmt: skip
        assert server.requests
    run = tmp_path / "run"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["backend"] == "sf"
    assert manifest["sf"]["normalize_input_keys"] == ["blstats"]
    header, *rows = (run / "metrics.csv").read_text().splitlines()
    assert rows and "component/intrinsic" in header and "component/labelled" in header
    assert len(manifest["eval"]["episodes"]) == VERDICT_EPISODES  # the task has a success line


def preferrer(request) -> str:
    """An LLM that labels (as `labeller`) and prefers messages about killing in comparisons."""
    text = request["messages"][-1]["content"]
    if "Pairs of messages:" not in text:
        return labeller(request)
    listed = text.split("Pairs of messages:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    answers = []
    for i, line in enumerate(listed, 1):
        a, b = line.split(". A: ", 1)[1].split(" | B: ", 1)
        better = (
            "A" if "kill" in a and "kill" not in b else "B" if "kill" in b and "kill" not in a else "none"
        )
        answers.append(f"{i}: {better}")
    return "Killing is progress.\nPREFERENCES\n" + "\n".join(answers)


def test_the_ranking_model_learns_the_llms_preferences_and_pays_normalized_scores(tmp_path):
    """The service asks for preferences between reported messages (bounded per message), fits a
    Bradley-Terry model and publishes it; a worker pays the normalized score above the median,
    to messages never compared too."""
    from rewardgen.oni import RankingReward

    monsters = [
        "newt",
        "jackal",
        "lichen",
        "grid bug",
        "fox",
        "kobold",
        "gnome",
        "sewer rat",
        "hill orc",
        "dingo",
    ]
    messages = [f"You kill the {m}!" for m in monsters] + [f"You hear some noises {k}." for k in range(10)]
    path = tmp_path / "l.sqlite"
    with LoopbackLLMServer(responder=preferrer) as server:
        store = LabelStore(path, KEY)
        store.submit(messages)
        config = ServiceConfig(batch_size=16, poll_s=0.05, ranking=True, retrain_every=24)
        with AnnotationService(store, settings(server), config):
            assert wait_for(lambda: store.latest("ranking") is not None, 60)
            assert wait_for(lambda: len(store.preferences()) >= 40, 30)
            time.sleep(0.5)
        asked_pairs = len(store.preferences())
    assert asked_pairs <= 2 * len(messages)  # bounded: 2 comparisons per reported message
    reward = RankingReward(store, sync_s=0.0)
    for k in range(3):  # seen, as many kills as noises: scored at the next sync
        reward(_batch([messages[k], messages[10 + k]]))
        reward.reset(np.array([0, 1]))
    probe = ["You kill the giant rat!", "You hear some noises 99."]
    reward(_batch(probe))
    reward.reset(np.array([0, 1]))
    out = reward(_batch(probe))
    assert reward.version >= 1
    assert out.total[0] > 0 and out.total[1] == 0  # above the median: paid its z; below: nothing


@needs_nle
@pytest.mark.parametrize("model", ["classification", "ranking"])
def test_oni_trains_with_the_learned_reward_models(tmp_path, model):
    from rewardgen.cli import main

    with LoopbackLLMServer(responder=preferrer) as server:
        main(
            [
                "oni", "train", "--task", "nethack-score", "--reward", model, "--steps", "512",
                "--n-envs", "2", "--eval-episodes", "1", "--store", str(tmp_path / "l.sqlite"),
                "--llm-base-url", server.url, "--llm-model", "m", "--out", str(tmp_path / "run"),
                "--hp", "n_steps=128", "--hp", "batch_size=64",
            ]
        )  # fmt: skip
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["reward"]["reward"] == model
