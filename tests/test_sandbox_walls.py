"""The hostile corpus (tests/hostile/) against each of the sandbox's walls alone and together.

Each program tries one class of escape and names it in its header. Contained means: no file
written, no command run, no connection made, no other process touched, no process of the worker
alive after the call, the secret not in what comes back, and one printable line that names what
was refused (programs marked ``quiet`` may instead return a reward: their payload never runs).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rewardgen.programs import CodeReward, RewardProgram, RewardProgramError
from rewardgen.programs.checks import CodeCheckError
from rewardgen.programs.sandbox import SandboxLimits, SandboxRunner, SandboxUnavailableError, SandboxWalls
from rewardgen.rewards import TransitionBatch

CORPUS = sorted((Path(__file__).parent / "hostile").glob("*.py"))
LIMITS = SandboxLimits(call_timeout_s=3.0, call_cpu_s=1, memory_mb=600, load_timeout_s=20)
WALLS = {
    "python wall alone": SandboxWalls(static=False, python=True, os=False),
    "OS wall alone": SandboxWalls(static=False, python=False, os=True),
    "both walls": SandboxWalls(static=False, python=True, os=True),
    "as shipped": SandboxWalls(static=True, python=True, os=True),
}
ROOT = os.geteuid() == 0
#: What a refusal says: the Python wall's event, the OS wall's filter or permissions (a module
#: that the unprivileged user cannot read cannot be imported), the type checks on a result, the
#: static checks, or a limit.
REFUSAL = re.compile(
    r"the sandbox refuses '[\w.]+'|system-call filter|Permission denied|not numeric \(|"
    r"component names must be str|must return \(total, components\)|refused: line|CPU limit|"
    r"longer than|can't start new thread|No module named"
)


def header(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^# (\w+): (.*)$", path.read_text(), re.M))


def test_every_program_of_the_corpus_names_its_class():
    assert len(CORPUS) >= 20
    for path in CORPUS:
        assert {"class", "tries"} <= set(header(path)), path.name


def worker_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"rewardgen.programs.sandbox_worker" in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
            except OSError:
                pass
    return pids


def batch(n: int = 4) -> TransitionBatch:
    zeros = np.zeros((n, 3))
    return TransitionBatch(zeros, np.zeros((n, 2)), zeros, np.zeros(n, bool), np.zeros(n, bool), {})


@pytest.fixture
def targets():
    """A world-writable folder (so only the walls, not its permissions, keep a file out of it), a
    file only root may read, a listener on loopback and a process to aim signals at."""
    folder = Path(tempfile.mkdtemp(prefix="rewardgen-hostile-", dir="/tmp"))
    folder.chmod(0o777)
    secret = folder / "secret"
    secret.write_text(f"TOPSECRET-{os.getpid()}")
    secret.chmod(0o600)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    victim = subprocess.Popen(["sleep", "120"])
    yield {"folder": folder, "secret": secret, "listener": listener, "victim": victim}
    victim.kill()
    victim.wait()
    listener.close()
    for child in folder.iterdir():
        child.unlink()
    folder.rmdir()


def run_hostile(path: Path, walls: SandboxWalls, targets: dict) -> str | None:
    """Run one corpus program once; the error line it ended with, or None if it returned."""
    source = (
        path.read_text()
        .replace("@MARKER@", str(targets["folder"] / "marker"))
        .replace("@SECRET@", str(targets["secret"]))
        .replace("@PORT@", str(targets["listener"].getsockname()[1]))
        .replace("@VICTIM@", str(targets["victim"].pid))
    )
    program = RewardProgram.from_source(source, name=path.name)
    try:
        reward = CodeReward(program, SandboxRunner(program, LIMITS, walls))
    except CodeCheckError as exc:
        return str(exc)
    try:
        reward(batch())
        return None
    except RewardProgramError as exc:
        return str(exc)
    finally:
        if "sleep" in source:
            time.sleep(0.5)  # what acts late, between calls, has its chance before the worker ends
        reward.close()


@pytest.mark.parametrize("wall", list(WALLS))
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_the_corpus_is_contained(path, wall, targets):
    if path.stem == "read_secret" and wall == "OS wall alone" and not ROOT:
        pytest.skip("a file the user may read is kept from the program by the switch to nobody, as root")
    before = worker_pids()
    error = run_hostile(path, WALLS[wall], targets)
    if "sleep" in path.read_text():
        time.sleep(0.5)  # and what outlives the worker, after it
    what = f"{path.stem} ({header(path)['class']}) behind the {wall}"
    assert not (targets["folder"] / "marker").exists(), f"{what} wrote a file"
    assert worker_pids() <= before, f"{what} left a process alive"
    with pytest.raises(BlockingIOError):
        targets["listener"].accept()
    assert targets["victim"].poll() is None, f"{what} killed another process"
    if error is None:
        assert "quiet" in header(path), f"{what} returned a reward: its escape was not refused"
        return
    assert "TOPSECRET" not in error
    assert error.isprintable() and len(error) < 1500, f"{what}: {error[:200]!r}"
    if "expect" not in header(path):
        assert REFUSAL.search(error), f"{what} did not say what was refused: {error}"


def test_the_walls_say_what_they_hold():
    program = RewardProgram.from_source(
        "import numpy as np\ndef compute_reward(obs, action, next_obs, info):\n    return obs[:, 0], {}\n"
    )
    runner = SandboxRunner(program, LIMITS, SandboxWalls(static=True, python=True, os=True))
    try:
        np.testing.assert_allclose(runner(np.ones((2, 1)), np.zeros((2, 1)), np.ones((2, 1)), {})[0], [1, 1])
        report = runner.wall_report
    finally:
        runner.close()
    assert re.fullmatch(r"\d+ rules", report["seccomp"]) and int(report["seccomp"].split()[0]) > 80
    assert "audit hook" in report["python"]
    if ROOT:
        assert report["user"].startswith("nobody")
        assert "network" in report["network"]


def test_a_worker_dies_with_the_process_that_started_it():
    """kill -9 of the training process: its sandbox worker does not live on (parent-death signal)."""
    script = textwrap.dedent(
        """
        import sys, time, numpy as np
        from rewardgen.programs import RewardProgram
        from rewardgen.programs.sandbox import SandboxRunner
        p = RewardProgram.from_source(
            "def compute_reward(obs, action, next_obs, info):\\n    return obs[:, 0], {}\\n")
        r = SandboxRunner(p)
        r(np.ones((2, 1)), np.zeros((2, 1)), np.ones((2, 1)), {})
        print(r._proc.pid, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert worker in worker_pids()
        parent.kill()
        parent.wait()
        for _ in range(50):
            if worker not in worker_pids():
                break
            time.sleep(0.1)
        assert worker not in worker_pids()
    finally:
        parent.kill()


def test_a_worker_started_from_a_thread_ends_when_its_input_closes():
    """No parent-death signal from a thread (it would fire when the thread ends); the worker ends
    at its input's EOF instead, and the runner works across threads."""
    import threading

    program = RewardProgram.from_source(
        "def compute_reward(obs, action, next_obs, info):\n    return obs[:, 0], {}\n"
    )
    runner = SandboxRunner(program, LIMITS)
    thread = threading.Thread(target=runner, args=(np.ones((2, 1)), np.zeros((2, 1)), np.ones((2, 1)), {}))
    thread.start()
    thread.join()
    out = runner(np.full((2, 1), 3.0), np.zeros((2, 1)), np.ones((2, 1)), {})  # the thread has ended
    np.testing.assert_allclose(out[0], [3, 3])
    pid = runner._proc.pid
    runner.close()
    assert pid not in worker_pids()


def test_results_are_taken_by_exact_type():
    body = {
        "float32 array": ("return obs[:, 0].astype(np.float32), {'a': obs[:, 0] > 0}", None),
        "int array": ("return np.arange(len(obs)), {'n': np.int64(3) + np.zeros(len(obs), int)}", None),
        "a list": ("return [0.0] * len(obs), {}", r"not numeric \(list\)"),
        "a subclass": ("return np.zeros(len(obs)).view(np.recarray), {}", r"not numeric \(recarray\)"),
        "complex": ("return np.zeros(len(obs), complex), {}", r"not numeric \(an array of complex128\)"),
        "a key that is not str": (
            "return np.zeros(len(obs)), {1: np.zeros(len(obs))}",
            "must be str, got a int",
        ),
    }
    for name, (line, refused) in body.items():
        program = RewardProgram.from_source(
            f"import numpy as np\ndef compute_reward(obs, action, next_obs, info):\n    {line}\n"
        )
        reward = CodeReward(program, SandboxRunner(program, LIMITS))
        try:
            if refused is None:
                out = reward(batch())
                assert out.total.dtype == np.float64, name
            else:
                with pytest.raises(RewardProgramError, match=refused):
                    reward(batch())
        finally:
            reward.close()


def test_dataclasses_and_namedtuples_work_behind_the_walls():
    source = textwrap.dedent(
        """
        import numpy as np
        from collections import namedtuple
        from dataclasses import dataclass

        Weights = namedtuple("Weights", "speed effort")

        @dataclass
        class Scale:
            factor: float = 2.0

        def compute_reward(obs, action, next_obs, info):
            w = Weights(1.0, 0.5)
            return Scale().factor * w.speed * obs[:, 0], {"speed": obs[:, 0]}
        """
    )
    program = RewardProgram.from_source(source)
    reward = CodeReward(program, SandboxRunner(program, LIMITS))
    try:
        b = batch()
        b.obs[:, 0] = [1, 2, 3, 4]
        np.testing.assert_allclose(reward(b).total, [2, 4, 6, 8])
    finally:
        reward.close()


def test_a_machine_without_seccomp_is_told_how_to_go_on(monkeypatch):
    from rewardgen.programs import oswall

    def no_library(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(oswall.ctypes, "CDLL", no_library)
    with pytest.raises(oswall.OSWallError, match=r"libseccomp\.so\.2 was not found: install it"):
        oswall._seccomp(os.getpid())
    monkeypatch.setenv("REWARDGEN_SANDBOX_OS", "maybe")
    with pytest.raises(SandboxUnavailableError, match="REWARDGEN_SANDBOX_OS='maybe': use 'on'"):
        SandboxWalls()
    monkeypatch.setenv("REWARDGEN_SANDBOX_OS", "off")
    assert SandboxWalls().os is False
