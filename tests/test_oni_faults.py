"""ONI under faults found by outside testers: a spell of garbage answers costs no label for good,
failed messages come back after a back-off, a bad label store is refused before anything trains,
a crash-looping service gives up, two runs on one store never take each other's claims, a hung
server is said while it hangs, bad numbers and URLs are refused at once, and the coverage term
that is logged but not paid never trips the reward-hacking alarm."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from test_cli import run_cli
from test_oni import KEY, labeller, settings, wait_for

import rewardgen.oni.store as store_module
from rewardgen.cli import main
from rewardgen.errors import RewardgenError
from rewardgen.llm import LLMSettings
from rewardgen.llm.testing import Fault, LoopbackLLMServer
from rewardgen.oni import AnnotationService, LabelStore, OniSpec, ServiceConfig

FAST = ServiceConfig(batch_size=4, poll_s=0.05, retry_s=0.1)
OFFLINE = ["--llm-base-url", "http://127.0.0.1:9/v1", "--llm-model", "m"]


def test_a_spell_of_garbage_answers_charges_no_message(tmp_path, capfd):
    """45 s of nonsense from a healthy-looking server, scaled down: every batch it answers with
    no label at all goes back to the queue uncharged; once it answers sense, all are labelled."""
    spell = {"left": 6}

    def server_side(request):
        if spell["left"] > 0:
            spell["left"] -= 1
            return "As an AI, I would rather talk about the weather."
        return labeller(request)

    messages = ["It's a wall.", "The door opens.", "The kitten picks up a gold piece.", "You kill it!"]
    with LoopbackLLMServer(responder=server_side) as server:
        store = LabelStore(tmp_path / "l.sqlite", KEY)
        store.submit(messages)
        with AnnotationService(store, settings(server), FAST):
            assert wait_for(lambda: len(store.labels()) == 4), store.counts()
        sent = len(server.requests)
    assert sent == 7 and store.counts() == {"labelled": 4}
    attempts = store.conn.execute("SELECT MAX(attempts) FROM labels").fetchone()[0]
    assert attempts == 0  # the spell was charged to no message
    assert "no message is charged" in capfd.readouterr().err


def test_failed_messages_come_back_after_a_back_off_and_on_request(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(store_module, "RETRY_BASE_S", 0.2)
    store = LabelStore(tmp_path / "l.sqlite", KEY)
    store.submit(["You feel hungry."])
    assert store.claim(4) == ["You feel hungry."]
    store.fail(["You feel hungry."], "no label", max_attempts=1)
    assert store.counts() == {"failed": 1} and store.claim(4) == []  # backing off
    time.sleep(0.25)
    assert store.claim(4) == ["You feel hungry."]  # asked again
    store.fail(["You feel hungry."], "no label", max_attempts=1)
    (updated, retry_at) = store.conn.execute("SELECT updated, retry_at FROM labels").fetchone()
    assert retry_at - updated == pytest.approx(0.4, abs=0.01)  # the back-off doubled
    # a person puts every failed message back at once, from the command line
    args = ["oni", "labels", "--store", str(store.path), "--goal", "default", "--llm-model", "m"]
    main([*args, "--retry-failed"])
    text = capsys.readouterr().out
    assert "1 failed messages are pending again" in text and "model m): 1 pending" in text
    assert store.claim(4) == ["You feel hungry."]


def test_a_bad_label_store_is_refused_with_one_line_before_training(tmp_path, capsys):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(8192))
    with pytest.raises(
        RewardgenError, match=r"garbage.sqlite is not a usable SQLite database .*move it aside"
    ):
        LabelStore(garbage, KEY).check()
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(RewardgenError, match=r"a-folder is a directory: pass a file"):
        LabelStore(folder, KEY).check()
    good = LabelStore(tmp_path / "good.sqlite", KEY).check()
    good.submit(["x"])
    # damaged pages: the header is sound, a page is not
    damaged = tmp_path / "damaged.sqlite"
    store = LabelStore(damaged, KEY)
    store.submit([f"message {k} " * 20 for k in range(500)])
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = bytearray(damaged.read_bytes())
    data[4096 * 3 : 4096 * 5] = os.urandom(8192)
    damaged.write_bytes(bytes(data))
    with pytest.raises(RewardgenError, match=r"damaged.sqlite is not a usable SQLite database"):
        LabelStore(damaged, KEY).check()
    # the command says so in one line, exit 2, and leaves no run behind
    out = tmp_path / "run"
    for store_path, says in ((folder, "is a directory"), (garbage, "not a usable SQLite database")):
        code, text = run_cli(
            ["oni", "train", "--store", str(store_path), "--out", str(out), *OFFLINE], capsys
        )
        assert code == 2 and says in text and "Traceback" not in text, text
        assert not out.exists()


def test_a_read_only_label_store_is_refused(tmp_path):
    """The store on a read-only file system (a bind mount in a mount namespace of its own, which
    binds root too): one line saying it cannot be written."""
    import shlex
    import shutil

    path = tmp_path / "ro" / "labels.sqlite"
    LabelStore(path, KEY).submit(["x"])
    LabelStore(path, KEY).close()
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a read-only bind mount")
    check = (
        "import sys; from rewardgen.oni import LabelKey, LabelStore\n"
        "try:\n    LabelStore(sys.argv[1], LabelKey('default', '1', 'm')).check()\n"
        "except Exception as exc:\n    print(exc)\n"
    )
    folder = shlex.quote(str(path.parent))
    python = f"{shlex.quote(sys.executable)} -c {shlex.quote(check)} {shlex.quote(str(path))}"
    script = f"mount --bind -o ro {folder} {folder} && exec {python}"
    out = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=60,
    )
    if "mount" in out.stderr and out.returncode != 0:
        pytest.skip(f"no read-only bind mount here: {out.stderr.strip()}")
    assert "cannot be written" in out.stdout and "make it writable" in out.stdout, out.stdout + out.stderr


def test_a_crash_looping_service_gives_up_with_one_message(tmp_path, capfd):
    folder = tmp_path / "not-a-store"
    folder.mkdir()  # the service dies at once on it, every time
    with LoopbackLLMServer(responder=labeller) as server:
        service = AnnotationService(
            LabelStore(folder, KEY), settings(server), FAST, watch_s=0.1, max_restarts=2
        )
        with service:
            assert wait_for(lambda: service.gave_up, 60)
            time.sleep(0.5)
    assert service.restarts == 2
    err = capfd.readouterr().err
    assert err.count("it is not started again") == 1 and err.count("starting it again") == 2


def test_a_second_run_on_the_store_leaves_a_live_services_claims_alone(tmp_path):
    path = tmp_path / "l.sqlite"
    LabelStore(path, KEY).submit([f"m{k}" for k in range(6)])
    claimer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from rewardgen.oni import LabelKey, LabelStore\n"
            "print(len(LabelStore(sys.argv[1], LabelKey('default', '1', 'm')).claim(4)), flush=True)\n"
            "time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert claimer.stdout.readline().strip() == "4"
        store = LabelStore(path, KEY)
        assert store.recover() == 0  # the other run is alive: its claims stay its own
        assert store.counts() == {"in_flight": 4, "pending": 2}
        assert len(store.claim(10)) == 2  # nothing is asked twice
    finally:
        claimer.kill()
        claimer.wait()
    assert store.recover() == 4  # its process is gone: its claims come back


def test_a_hung_server_is_said_while_it_hangs(tmp_path, capfd):
    with LoopbackLLMServer(responder=lambda request: Fault.hang(4.0)) as server:
        store = LabelStore(tmp_path / "l.sqlite", KEY)
        store.submit(["You hear a door open."])
        config = ServiceConfig(batch_size=4, poll_s=0.05, retry_s=0.1, warn_every_s=1.0)
        with AnnotationService(store, settings(server), config):
            assert wait_for(lambda: "has not answered for" in capfd.readouterr().err, 10)


def test_bad_numbers_and_urls_are_refused_at_once(tmp_path, capsys):
    for bad in ({"batch_size": 0}, {"batch_size": -5}, {"poll_s": 0}, {"max_attempts": 0}):
        with pytest.raises(RewardgenError, match="must be"):
            ServiceConfig(**bad)
    with pytest.raises(RewardgenError, match="beta must be a number >= 0"):
        OniSpec(tmp_path / "l.sqlite", beta=-1)
    for url in ("notaurl", "ftp://example.org/v1"):
        with pytest.raises(RewardgenError, match="http:// or https:// URL"):
            LLMSettings.resolve(base_url=url, config_file=None)
    store = ["--store", str(tmp_path / "l.sqlite")]
    for args, says in (
        (["--batch-size", "0"], "batch-size must be a whole number >= 1"),
        (["--batch-size", "-5"], "batch-size must be a whole number >= 1"),
        (["--beta", "-1"], "beta must be a number >= 0"),
        (["--c-int", "nan"], "--c-int must be a finite number"),
    ):
        code, text = run_cli(["oni", "train", *store, *args, *OFFLINE], capsys)
        assert code == 2 and says in text and "Traceback" not in text, (args, text)
    code, text = run_cli(["oni", "train", *store, "--llm-base-url", "ftp://x/v1"], capsys)
    assert code == 2 and "http:// or https:// URL" in text


def test_the_logged_coverage_term_never_trips_the_alarm():
    from rewardgen.diagnostics.alarm import hacking_verdict
    from rewardgen.tasks import get_task

    assert OniSpec("l.sqlite").logged_components == {"labelled"}
    steps = np.arange(1, 11) * 1000.0
    metrics = {
        "timesteps": steps,
        "reward_return_mean": np.linspace(1, 2, 10),
        "env_return_mean": np.linspace(0, 0.1, 10),
        "success_metric_mean": np.linspace(0, 0.1, 10),
        "component/intrinsic": np.linspace(1, 2, 10),
        "component/labelled": np.linspace(300, 350, 10),
    }
    episodes = [{"components": {"intrinsic": 2.0, "labelled": 350.0}, "length": 500, "env_return": 0.1}]
    evaluation = {"episodes": episodes, "success_metric_mean": 0.1}
    metric = get_task("hopper-run").metric
    counted = hacking_verdict(metrics, evaluation, metric)
    assert counted.dominant == "labelled"  # what the testers saw: "the 'labelled' term supplies..."
    verdict = hacking_verdict(metrics, evaluation, metric, logged=OniSpec("l.sqlite").logged_components)
    assert verdict.dominant != "labelled" and not any("labelled" in r for r in verdict.reasons)


def test_a_saved_task_file_names_its_reward_so_it_resolves(tmp_path):
    from rewardgen.tasks import get_task, load_task_file, save_task_file

    saved = save_task_file(get_task("hopper-run"), tmp_path / "task.yaml")
    again = load_task_file(saved.path)
    assert again.reward_path.is_file() and again.reward_path == get_task("hopper-run").reward_path.resolve()
