"""Ray without a shared file system: a real two-node cluster on this machine, the worker node in
its own mount namespace with an empty tmpfs over the run directory's parent, so it cannot see
the driver's files. A search's candidates train there and the driver's run directory ends
complete (candidate.json, the trained model, metrics, the video, report.html)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardgen.llm import LLMClient, LLMSettings
from rewardgen.llm.testing import LoopbackLLMServer
from rewardgen.runs import RunDir
from rewardgen.synthesis import SearchConfig, synthesize
from rewardgen.training.sb3.hyperparams import FAST_PPO

ROOT = Path(__file__).resolve().parent.parent
GOOD = """```python
import numpy as np

def compute_reward(obs, action, next_obs, info):
    backward = -info["x_velocity"]
    return backward, {"backward": backward}
```"""
GOOD2 = GOOD.replace("backward = -info", "backward = -1.0 * info")  # another program: the same is reused


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unshare_works() -> str | None:
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs none /mnt && true"],
        capture_output=True,
        text=True,
    )
    return None if probe.returncode == 0 else f"unshare --mount is not permitted here: {probe.stderr.strip()}"


def _process_table() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                table[int(entry.name)] = (ppid, (entry / "cmdline").read_bytes())
            except (OSError, ValueError, IndexError):
                continue
    return table


def cluster_pids(session_root: str, node_pid: int) -> set[int]:
    """The processes of this test's cluster: those whose command line names its session folder
    (the head's GCS server, raylet, ...), the worker node's, and everything below them."""
    table = _process_table()
    roots = {pid for pid, (_, cmd) in table.items() if session_root.encode() in cmd} | {node_pid}
    found, todo = set(roots), list(roots)
    while todo:
        parent = todo.pop()
        for pid, (ppid, _) in table.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                todo.append(pid)
    return found - {os.getpid()}


def stop_pids(pids: set[int]) -> None:
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + 10
        while time.time() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.2)


def test_the_fixture_stops_only_its_own_cluster():
    """A Ray process of someone else's (here: a process named like one) survives the cleanup."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "ray::raylet"])
    try:
        ours = cluster_pids("/tmp/ray-no-such-session", os.getpid() + 10**7)
        assert bystander.pid not in ours
        stop_pids(ours)
        assert bystander.poll() is None
    finally:
        bystander.kill()


@pytest.fixture
def two_node_cluster(tmp_path, monkeypatch):
    """A head node with no CPUs for tasks (the driver's) and a worker node with 2 CPUs that
    cannot see ``tmp_path``."""
    pytest.importorskip("ray")
    why = _unshare_works()
    if why:
        pytest.skip(why)
    ray_bin = str(Path(sys.executable).parent / "ray")
    port = _free_port()
    # a loopback cluster of this test alone: no token (Ray turns token auth on where ~/.ray/auth_token exists)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", "MUJOCO_GL": "egl"}
    temp = Path("/tmp") / f"ray-{port}"  # Ray's session files: outside tmp_path, seen by both nodes
    head = [ray_bin, "start", "--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false"]
    head.append(f"--ray-client-server-port={_free_port()}")  # not 10001, which may be taken
    subprocess.run([*head, f"--temp-dir={temp}"], env=env, check=True, capture_output=True, timeout=120)
    hidden = tmp_path  # the worker mounts an empty tmpfs here: the run directory does not exist there
    worker = (
        f"mount -t tmpfs none {hidden} && exec {ray_bin} start --address=127.0.0.1:{port} "
        "--num-cpus=2 --block"
    )
    node = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", worker],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import ray

        deadline = time.time() + 120
        ray.init(address=f"127.0.0.1:{port}", log_to_driver=False)
        while sum(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]) < 2:
            if time.time() > deadline or node.poll() is not None:
                pytest.fail("the worker node did not join the cluster")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        ray.shutdown()
        # only this cluster's processes, by PID (`ray stop` would end every Ray on the machine)
        stop_pids(cluster_pids(str(temp), node.pid))
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()


def test_candidates_train_on_a_node_that_cannot_see_the_run_directory(tmp_path, two_node_cluster):
    import ray

    # the worker node really does not see the driver's files
    marker = tmp_path / "driver-only.txt"
    marker.write_text("here")
    seen = ray.get(ray.remote(lambda p: os.path.exists(p)).options(num_cpus=1).remote(str(marker)))
    assert seen is False
    cfg = SearchConfig(
        task="hopper-run-backward",
        method="text2reward",
        samples=2,
        steps=2048,
        eval_episodes=1,
        hyperparams={**FAST_PPO, "n_steps": 64},
        videos=1,
        final_seeds=1,
        workers=2,
        executor="ray",
        ray_address=two_node_cluster,
    )
    run = RunDir.create("hopper-run-backward", "text2reward", {}, out=tmp_path / "run")
    with LoopbackLLMServer() as server:  # the driver asks the LLM; the nodes only train
        server.push([GOOD, GOOD2])
        client = LLMClient(LLMSettings(base_url=server.url, model="m", cache=False))
        summary = synthesize(cfg, client, run)
        client.close()
    assert [c["status"] for c in summary["candidates"]] == ["trained", "trained"], summary["candidates"]
    for k in (0, 1):  # everything the nodes wrote is in the driver's run directory
        cand = run.path / "iter0" / f"cand{k}"
        for name in ("candidate.json", "reward.py", "smoke.json", "train/model.zip", "train/metrics.csv"):
            assert (cand / name).is_file(), f"cand{k}/{name}"
        assert json.loads((cand / "train" / "manifest.json").read_text())["status"] == "finished"
    best = summary["best"]["path"]
    assert (Path(best) / "train" / "video.mp4").is_file()  # filmed on the node, shipped back
    assert (run.path / "final" / "seed1" / "model.zip").is_file() and "error" not in summary["final_seeds"][0]
    assert (run.path / "report.html").is_file() and "iter0/cand1" in (run.path / "report.html").read_text()


def test_the_time_budget_stops_candidates_on_a_node_that_cannot_see_the_stop_file(tmp_path, two_node_cluster):
    """The search's alarm writes its stop file on the driver; the candidates training on the
    other node see it through the executor's signal board and stop early, saved and evaluated."""
    steps = 200_000  # minutes of training here: only the stop ends it within the test
    cfg = SearchConfig(
        task="hopper-run-backward",
        method="text2reward",
        samples=2,
        steps=steps,
        eval_episodes=1,
        hyperparams={**FAST_PPO, "n_steps": 64},
        videos=0,
        final_seeds=0,
        workers=2,
        executor="ray",
        ray_address=two_node_cluster,
        time_budget_s=25,  # the alarm rings 5 s before: candidates have trained for a while by then
    )
    run = RunDir.create("hopper-run-backward", "text2reward", {}, out=tmp_path / "run")
    with LoopbackLLMServer() as server:
        server.push([GOOD, GOOD2])
        client = LLMClient(LLMSettings(base_url=server.url, model="m", cache=False))
        summary = synthesize(cfg, client, run)
        client.close()
    assert "time budget" in (summary["ended"] or "")  # the driver's alarm rang
    for k in (0, 1):
        cand = run.path / "iter0" / f"cand{k}"
        record = json.loads((cand / "candidate.json").read_text())
        assert "time budget" in (record.get("stopped") or ""), record
        manifest = json.loads((cand / "train" / "manifest.json").read_text())
        assert 0 < manifest["trained_steps"] < steps and (cand / "train" / "model.zip").is_file()
    assert [c["status"] for c in summary["candidates"]] == ["trained", "trained"]
