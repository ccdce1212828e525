"""Run directories: one folder per command that does work, with a manifest that says what ran,
and what the run left there (its evaluation, its metrics), read through one type, not by file
names spelled out across the code."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
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

__all__ = ["RunDir", "default_run_path", "package_versions"]

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
            "config": config,
            "versions": package_versions(),
            "git_revision": git_revision(),
        }
        run = cls(path, manifest)
        run.save()
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
        self.manifest.update(fields)
        self.save()

    def save(self) -> None:
        tmp = self.file("manifest.json.tmp")
        tmp.write_text(json.dumps(self.manifest, indent=2, default=str))
        tmp.replace(self.file("manifest.json"))
