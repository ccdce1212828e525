"""Run directories: one folder per command that does work, with a manifest that says what ran,
and what the run left there (its evaluation, its metrics), read through one type, not by file
names spelled out across the code."""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import itertools
import json
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

import rewardgen
from rewardgen.errors import RewardgenError
from rewardgen.runs.metrics import read_metrics
from rewardgen.runs.summary import EvalSummary

__all__ = [
    "RunDir",
    "default_run_path",
    "ended_if_it_fails",
    "orphaned",
    "package_versions",
    "process_alive",
]

#: The runs this process has marked running and not yet ended, by the order they began.
_RUNNING: dict[int, RunDir] = {}
_ORDER = itertools.count()
ENDED = ("finished", "failed", "interrupted", "stopped")

_PACKAGES = (
    "gymnasium",
    "numpy",
    "torch",
    "stable-baselines3",
    "mujoco",
    "metaworld",
    "nle",
    "sample-factory",
    "openai",
    "transformers",
    "open_clip_torch",
)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "rewardgen": rewardgen.__version__,
    }
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(rewardgen.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def default_run_path(task: str, method: str, root: str | Path = "runs") -> Path:
    """``runs/<utc-time>-<task>-<method>``: where a run goes when no ``--out`` is given."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(root) / f"{stamp}-{re.sub(r'[^A-Za-z0-9_.-]', '_', task)}-{method}"


class RunDir:
    """A run directory (default ``runs/<utc-time>-<task>-<method>/``) and its ``manifest.json``.

    Example:
        >>> import tempfile
        >>> run = RunDir.create("halfcheetah-run", "train", {"steps": 10}, out=tempfile.mkdtemp())
        >>> run.update(status="finished")
        >>> run.manifest["status"]
        'finished'
    """

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = path
        self.manifest = manifest

    @classmethod
    def create(
        cls,
        task: str,
        method: str,
        config: dict[str, Any],
        out: str | Path | None = None,
        root: str | Path = "runs",
    ) -> RunDir:
        path = Path(out) if out is not None else default_run_path(task, method, root)
        path.mkdir(parents=True, exist_ok=True)
        manifest = {
            "task": task,
            "method": method,
            "status": "running",
            "started_at": _utc_now(),
            "process": _this_process(),
            "config": config,
            "versions": package_versions(),
            "git_revision": git_revision(),
        }
        run = cls(path, manifest)
        run.save()
        run._track()
        return run

    @staticmethod
    def reserve(task: str, method: str, out: str | Path | None = None, root: str | Path = "runs") -> Path:
        """The folder a run will use (``out``, or ``runs/<utc-time>-<task>-<method>``), made now:
        for what a caller writes before the run starts (a derived task, a converted reward);
        :meth:`create` then writes the manifest into it.

        Example:
            >>> import tempfile
            >>> RunDir.reserve("hopper-run", "train", out=tempfile.mkdtemp() + "/run").is_dir()
            True
        """
        path = Path(out) if out is not None else default_run_path(task, method, root)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (its manifest read), e.g. to resume, refine or report on it."""
        path = Path(path)
        manifest = path / "manifest.json"
        if not manifest.is_file():
            raise RewardgenError(f"{path} is not a run directory: it has no manifest.json")
        return cls(path, json.loads(manifest.read_text()))

    @staticmethod
    def read_manifest(path: str | Path) -> dict[str, Any]:
        """The manifest of the run at ``path`` as it is on disk now; empty when there is none yet
        or it cannot be read (a reader such as the preference page never fails on it)."""
        try:
            manifest = json.loads((Path(path) / "manifest.json").read_text())
        except (OSError, ValueError):
            return {}
        return manifest if isinstance(manifest, dict) else {}

    def file(self, name: str) -> Path:
        return self.path / name

    # what a run leaves: its evaluation, its training metrics, its video

    MANIFEST = "manifest.json"
    EVAL = "eval.json"
    METRICS = "metrics.csv"
    EVALS = "evals.csv"  # periodic evaluations during training
    VIDEO = "video.mp4"
    MODEL = "model.zip"
    NORMALIZER = "vecnormalize.pkl"  # VecNormalize's observation statistics
    CURVE = "learning_curve.png"
    REWARD = "reward.py"
    STOP = "stop"  # a search's signal to its candidates in training: stop now (first line: why)

    def write_eval(self, summary: EvalSummary) -> None:
        summary.write(self.file(self.EVAL))

    def eval_summary(self) -> EvalSummary | None:
        """The evaluation the run wrote (``eval.json``), or None before there is one."""
        path = self.file(self.EVAL)
        return EvalSummary.read(path) if path.is_file() else None

    def metrics(self) -> dict[str, np.ndarray]:
        """The training metrics (``metrics.csv``) by column; empty before the first row."""
        path = self.file(self.METRICS)
        return read_metrics(path) if path.is_file() else {}

    @property
    def video(self) -> Path | None:
        """The policy's video, if the run recorded one."""
        path = self.file(self.VIDEO)
        return path if path.is_file() else None

    def update(self, **fields: Any) -> None:
        if fields.get("status") in ("finished", "failed", "interrupted"):
            fields.setdefault("finished_at", _utc_now())
        if fields.get("status") == "running":  # taken up again (a resume): by this process now
            fields.setdefault("process", _this_process())
        self.manifest.update(fields)
        self.save()
        if "status" in fields:
            self._track()

    def _track(self) -> None:
        for key, run in list(_RUNNING.items()):
            if run is self:
                del _RUNNING[key]
        if self.manifest.get("status") == "running":
            _RUNNING[next(_ORDER)] = self

    def is_orphaned(self) -> bool:
        """Whether the manifest says running while the process that runs it is gone (killed
        outright: SIGKILL, a power cut). Only known for a process on this host."""
        return orphaned(self.manifest)

    def save(self) -> None:
        tmp = self.file("manifest.json.tmp")
        tmp.write_text(json.dumps(self.manifest, indent=2, default=str))
        tmp.replace(self.file("manifest.json"))


def _this_process() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": platform.node()}


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the signal said it exists
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def orphaned(manifest: dict[str, Any]) -> bool:
    """Whether ``manifest`` says running while its process, on this host, is gone."""
    proc = manifest.get("process")
    if manifest.get("status") != "running" or not isinstance(proc, dict):
        return False
    if proc.get("host") != platform.node() or not isinstance(proc.get("pid"), int):
        return False
    return not process_alive(proc["pid"])


@contextlib.contextmanager
def ended_if_it_fails() -> Any:
    """Runs that begin inside this block and are still running when an exception leaves it are
    marked: ``interrupted`` for Ctrl-C or a signal, ``failed`` with the error's first line for
    anything else (a missing extra at start, a crash), so that no manifest says running after
    its process has given up on it."""
    mark = next(_ORDER)
    try:
        yield
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        for key, run in list(_RUNNING.items()):
            if key > mark:
                if status == "failed":
                    run.update(status=status, error=f"{type(exc).__name__}: {error}"[:500])
                else:
                    run.update(status=status)
        raise
