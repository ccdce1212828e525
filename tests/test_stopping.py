"""A run ends when it is told: a signal to the driver's PID alone (as a scheduler sends it)
reaches every worker, each saves and marks its run interrupted, and no process outlives the
command, not even after ``kill -9`` of the driver."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardgen.llm.testing import LoopbackLLMServer

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MUJOCO_GL": "egl"}
REWARD = """```python
import numpy as np

SPEED_WEIGHT = {weight}

def compute_reward(obs, action, next_obs, info):
    speed = SPEED_WEIGHT * info["x_velocity"]
    return speed, {{"speed": speed}}
```"""


def scripted(request):
    """Distinct programs (the same one twice would be trained once and reused)."""
    return [REWARD.format(weight=1.0 + k) for k in range(int(request.get("n") or 1))]


def children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    tree, found, todo = children_of(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


def wait_for(condition, seconds: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the command ended early: {proc.stdout.read() if proc.stdout else ''}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.2)


def training(folder: Path) -> bool:
    """Whether a candidate's training has written its first metrics."""
    return (folder / "train" / "metrics.csv").is_file()


def launch(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rewardgen.cli", *args],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_a_search_stops_its_candidates_and_leaves_no_process(tmp_path, signum):
    out = tmp_path / "search"
    with LoopbackLLMServer(responder=scripted) as server:
        proc = launch(
            ["synthesize", "--task", "hopper-run", "--samples", "2", "--workers", "2", "--iterations", "1",
             "--steps", "1e6", "--final-seeds", "0", "--videos", "0", "--out", str(out),
             "--llm-base-url", server.url, "--llm-model", "scripted"]
        )  # fmt: skip
        cands = [out / "iter0" / f"cand{k}" for k in range(2)]
        wait_for(lambda: all(training(c) for c in cands), 240, proc)
        family = descendants(proc.pid)
        assert len(family) >= 2  # the pool's workers (and their sandboxes)
        started = time.monotonic()
        proc.send_signal(signum)  # the PID alone, as a scheduler does
        time.sleep(0.5)
        proc.send_signal(signum)  # again (as `timeout` and impatient people do): the saving goes on
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, output
    assert f"terminated ({signal.Signals(signum).name})" in output and "Traceback" not in output
    while alive(family) and time.monotonic() - started < 15:
        time.sleep(0.2)
    assert not alive(family), f"still alive 15 s after the signal: {alive(family)}"
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    for cand in cands:
        manifest = json.loads((cand / "train" / "manifest.json").read_text())
        assert manifest["status"] == "interrupted", (cand, manifest["status"])
        assert (cand / "train" / "model.zip").is_file()


@pytest.mark.parametrize("how", ["SIGTERM", "kill -9"])
def test_a_bench_stopped_leaves_no_process(tmp_path, how):
    out = tmp_path / "bench"
    with LoopbackLLMServer(responder=scripted) as server:
        proc = launch(
            ["bench", "--tasks", "hopper-run", "--methods", "text2reward", "--baselines", "",
             "--samples", "2", "--workers", "2", "--steps", "1e6", "--out", str(out),
             "--llm-base-url", server.url, "--llm-model", "scripted"]
        )  # fmt: skip
        wait_for(lambda: len(list(out.glob("cells/**/iter0/cand*/train/metrics.csv"))) >= 2, 240, proc)
        family = descendants(proc.pid)
        assert len(family) >= 2
        if how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=60)
            assert proc.returncode == 143 and "Traceback" not in output, output
        else:
            proc.kill()
            proc.communicate(timeout=30)
    started = time.monotonic()
    while alive(family) and time.monotonic() - started < 30:
        time.sleep(0.2)
    assert not alive(family), f"still alive 30 s after {how}: {alive(family)}"
    if how == "SIGTERM":
        for manifest in out.glob("cells/**/iter0/cand*/train/manifest.json"):
            assert json.loads(manifest.read_text())["status"] == "interrupted", manifest


def killed_search(out: Path, url: str, server: LoopbackLLMServer) -> None:
    """A two-round search killed outright (kill -9) once it has asked its first question."""
    proc = launch(
        ["synthesize", "--task", "hopper-run", "--samples", "1", "--workers", "1", "--iterations", "2",
         "--steps", "2048", "--final-seeds", "0", "--videos", "0", "--out", str(out),
         "--llm-base-url", url, "--llm-model", "scripted"]
    )  # fmt: skip
    wait_for(lambda: len(server.requests) >= 1, 120, proc)
    proc.kill()
    proc.communicate(timeout=30)


def resume(out: Path, *flags: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "rewardgen.cli", "synthesize", "--resume", str(out), *flags],
        env={**ENV, "REWARDGEN_LLM_BASE_URL": "http://127.0.0.1:9/v1", "REWARDGEN_LLM_MODEL": "elsewhere"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_a_killed_search_resumes_with_the_endpoint_it_recorded(tmp_path):
    """Not the default URL, not the environment's: the recorded endpoint and model, which finish it."""
    out = tmp_path / "search"
    with LoopbackLLMServer(responder=scripted) as server:
        url = server.url.rstrip("/")
        killed_search(out, url, server)
        asked = len(server.requests)
        code, text = resume(out)
        assert code == 0, text
        assert f"going on with the LLM the run recorded: scripted at {url}" in text
        assert len(server.requests) > asked and all(r["model"] == "scripted" for r in server.requests)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["llm"]["endpoint"] == url


def test_a_resume_that_cannot_reach_its_endpoint_stays_interrupted(tmp_path):
    out = tmp_path / "search"
    with LoopbackLLMServer(responder=scripted) as server:
        url = server.url.rstrip("/")
        killed_search(out, url, server)
    code, text = resume(out)  # the recorded endpoint is gone
    assert code == 2 and "Traceback" not in text and url in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and "resume_error" in manifest
    with LoopbackLLMServer(responder=scripted) as other:  # named on the command line, it wins
        code, text = resume(out, "--llm-base-url", other.url)
        assert code == 0, text
        assert f"--llm-base-url {other.url} (the run recorded {url})" in text
        assert other.requests
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"


def test_a_bench_whose_cells_did_not_finish_exits_1(tmp_path):
    out = tmp_path / "bench"
    args = ["bench", "--tasks", "hopper-run", "--methods", "text2reward", "--baselines", "", "--samples", "1",
            "--workers", "1", "--steps", "2048", "--out", str(out)]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "rewardgen.cli", *args, "--llm-base-url", "http://127.0.0.1:9/v1"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1 and "some cells did not finish" in proc.stdout


needs_sf = pytest.mark.skipif(
    importlib.util.find_spec("sample_factory") is None, reason="needs the sample-factory stack"
)


@needs_sf
@pytest.mark.parametrize("how", ["SIGTERM", "kill -9"])
def test_sample_factory_training_stops_with_its_processes(tmp_path, how):
    """SIGTERM: sample-factory's loop is interrupted, the run is marked so, exit 143. kill -9:
    its learner and rollout workers (which know nothing of rewardgen) are ended by the reaper."""
    out = tmp_path / "run"
    proc = launch(["train", "--task", "hopper-run", "--backend", "sf", "--steps", "1e7", "--no-video",
                   "--out", str(out)])  # fmt: skip
    wait_for(lambda: (out / "metrics.csv").is_file(), 300, proc)
    family = descendants(proc.pid)
    assert len(family) >= 3
    started = time.monotonic()
    if how == "SIGTERM":
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 143 and "Traceback" not in output, output
        assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    else:
        proc.kill()
        proc.communicate(timeout=30)
    while alive(family) and time.monotonic() - started < 15:
        time.sleep(0.2)
    assert not alive(family), f"still alive 15 s after {how}: {alive(family)}"


def test_the_annotation_service_ends_with_the_process_that_started_it(tmp_path):
    script = (
        "import sys, time\n"
        "from rewardgen.oni.service import AnnotationService\n"
        "from rewardgen.oni.store import LabelKey, LabelStore\n"
        "from rewardgen.llm import LLMSettings\n"
        "store = LabelStore(sys.argv[1], LabelKey('default', '1', 'm'))\n"
        "s = AnnotationService(store, LLMSettings(base_url='http://127.0.0.1:9/v1', model='m')).start()\n"
        "print(s.process.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "labels.sqlite")],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
    )
    service = int(parent.stdout.readline())
    assert alive({service})
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while alive({service}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive({service})
