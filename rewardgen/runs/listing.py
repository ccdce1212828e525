"""The run directories under a folder (``runs/`` by default): what each is, how it went.

``rewardgen runs`` lists them (kind, task, status, success metric, when, how long), filtered by
task, status or kind; ``rewardgen runs show RUN`` tells one.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

from rewardgen.methods import SEARCH_METHODS
from rewardgen.runs.rundir import RunDir, orphaned

__all__ = ["RunSummary", "list_runs", "summarize_run"]


@dataclass(frozen=True)
class RunSummary:
    """One run directory in a line.

    Example:
        >>> import tempfile
        >>> run = RunDir.create("hopper-run", "train", {}, out=tempfile.mkdtemp())
        >>> summarize_run(run.path).status
        'running'
    """

    path: Path
    kind: str  # train, a search method (evolution...), bench, prefppo, vlm, oni, ...
    task: str
    status: str
    success_metric: float | None
    success_rate: float | None
    started_at: str | None
    duration_s: float | None
    best: str | None = None  # a search's best candidate

    @property
    def name(self) -> str:
        return self.path.name


def _seconds_between(start: str | None, end: str | None) -> float | None:
    try:
        a, b = (_dt.datetime.fromisoformat(str(t).replace("Z", "+00:00")) for t in (start, end))
    except ValueError:
        return None
    return (b - a).total_seconds()


def summarize_run(path: str | Path) -> RunSummary | None:
    """The summary of the run at ``path`` (None: not a run directory)."""
    path = Path(path)
    if (path / "bench.json").is_file() and not (path / RunDir.MANIFEST).is_file():
        try:
            bench = json.loads((path / "bench.json").read_text())
        except (OSError, ValueError):
            return None
        cfg = bench.get("config") or {}
        # when its first cell began, and how long until its tables were last written
        starts = [m["started_at"] for p in path.glob("cells/*/*/seed*") if (m := RunDir.read_manifest(p))]
        started = min(starts) if starts else None
        return RunSummary(
            path,
            "bench",
            ",".join(cfg.get("tasks") or []),
            str(bench.get("status", "running")),
            None,
            None,
            started,
            _seconds_between(started, bench.get("written_at")),
        )
    manifest = RunDir.read_manifest(path)
    if not manifest:
        return None
    kind = str(manifest.get("method") or "?")
    ev = manifest.get("eval")
    best = manifest.get("best") if kind in SEARCH_METHODS else None
    if best:
        ev = best.get("eval")
    duration = manifest.get("wall_s") or (manifest.get("time") or {}).get("wall_s")
    if duration is None:
        duration = _seconds_between(manifest.get("started_at"), manifest.get("finished_at"))
    label = None
    if best and best.get("path"):
        label = f"{Path(best['path']).parent.name}/{Path(best['path']).name}"
    return RunSummary(
        path=path,
        kind=kind,
        task=str(manifest.get("task") or "?"),
        status="killed" if orphaned(manifest) else str(manifest.get("status") or "?"),
        success_metric=(ev or {}).get("success_metric_mean"),
        success_rate=(ev or {}).get("success_rate"),
        started_at=manifest.get("started_at"),
        duration_s=float(duration) if duration is not None else None,
        best=label,
    )


def list_runs(
    root: str | Path = "runs", task: str | None = None, status: str | None = None, kind: str | None = None
) -> list[RunSummary]:
    """The run directories directly under ``root``, newest first, filtered by ``task``
    (a substring), ``status`` and ``kind``."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [s for p in root.iterdir() if p.is_dir() and (s := summarize_run(p)) is not None]
    if task:
        found = [s for s in found if task in s.task]
    if status:
        found = [s for s in found if s.status == status]
    if kind:
        found = [s for s in found if s.kind == kind]
    return sorted(found, key=lambda s: s.started_at or "", reverse=True)
