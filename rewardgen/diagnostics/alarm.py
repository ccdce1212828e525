"""The reward-hacking alarm: say so when the synthesized return climbs while the behaviour the
task asks for does not.

Every run logs the synthesized return beside the success metric (``metrics.csv`` along training,
``eval.json`` at the end); :func:`hacking_verdict` reads them. It never changes training.

Signals (each a reason when it fires; thresholds are :class:`AlarmSettings`):

- **divergence**: the synthesized return rises through training (rank correlation with the step
  count >= ``rising``), the success metric does not follow it (rank correlation between the two
  < ``follow``) and does not improve by ``moved`` of the way to its threshold;
- **flat metric**: the synthesized return grows by ``growth`` times while the success metric
  neither follows it nor moves (same tests);
- **one component**: one reward component supplies ``dominant`` or more of the evaluation's
  return while the success metric does not move (or covers less than ``stalled`` of its way
  while the return grows ``growth`` times), unless the component's training curve follows the
  metric's (rank correlation >= ``aligned``: a forward-velocity term of a running task is the
  task's own measure);
- **episode length**: evaluation episodes ``length_ratio`` times shorter or longer than those of
  the reference reward's run, when one is given.

A policy that succeeds at the task (evaluation success rate >= ``succeeding``) is not flagged:
whatever it maximised, it does the task.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["AlarmSettings", "Verdict", "hacking_verdict", "recorded_verdict", "run_verdict"]


@dataclass(frozen=True)
class AlarmSettings:
    """Thresholds of the alarm (documented defaults)."""

    min_rows: int = 6  # metrics.csv rows needed to judge trends
    edge: float = 0.2  # the first and last fifth of the rows give "start" and "end" means
    rising: float = 0.6  # rank correlation of the synthesized return with the step count
    follow: float = 0.3  # rank correlation below which the metric does not follow the return
    moved: float = 0.1  # the fraction of the way to the threshold that counts as the metric moving
    growth: float = 2.0  # the synthesized return growing this many times
    dominant: float = 0.8  # one component's share of the evaluation's return
    stalled: float = (
        0.25  # ...blamed when the return grew `growth` times and the metric covered less of its way
    )
    aligned: float = 0.95  # ...unless its curve follows the metric this closely (the task's own measure)
    length_ratio: float = 3.0  # evaluation episodes this many times shorter/longer than the reference's
    succeeding: float = 0.5  # an evaluation success rate that clears the policy


@dataclass
class Verdict:
    """What the alarm concluded, with its reasons and the numbers behind them."""

    hacked: bool
    reasons: list[str] = field(default_factory=list)
    signals: dict[str, float] = field(default_factory=dict)
    dominant: str | None = None  # the component that supplies most of the return, if one does

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Verdict | None:
        return cls(**data) if data else None

    def summary(self) -> str:
        """One line for a terminal, a report badge or an LLM prompt."""
        if not self.hacked:
            return "no sign of reward hacking"
        return "reward hacking suspected: " + "; ".join(self.reasons)


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    for value in np.unique(x):  # ties share their mean rank
        tied = x == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: Any, b: Any) -> float:
    """Spearman's rank correlation (0 when either side is constant).

    Example:
        >>> spearman([1, 2, 3, 4], [10, 20, 25, 40]), spearman([1, 2, 3], [3, 2, 1])
        (1.0, -1.0)
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def hacking_verdict(
    metrics: dict[str, np.ndarray],
    evaluation: dict[str, Any] | None,
    metric: Any,
    settings: AlarmSettings | None = None,
    reference_length: float | None = None,
    logged: frozenset[str] | set[str] = frozenset(),
) -> Verdict:
    """The verdict on a run from its ``metrics.csv`` columns, its ``eval.json`` (or None) and the
    task's :class:`~rewardgen.tasks.spec.MetricSpec`.

    Example:
        >>> from rewardgen.tasks import get_task
        >>> steps = np.arange(1, 11) * 1000.0
        >>> rows = {"timesteps": steps, "reward_return_mean": steps / 100,
        ...         "success_metric_mean": np.full(10, 0.2)}
        >>> v = hacking_verdict(rows, None, get_task("hopper-run").metric)
        >>> v.hacked, v.reasons[0].split(" (")[0]
        (True, "your reward's return rose 6.3x while the success metric stayed at 0.2")
    """
    s = settings or AlarmSettings()
    verdict = Verdict(hacked=False)
    sign = -1.0 if metric.below is not None else 1.0
    threshold = metric.above if metric.above is not None else metric.below
    done = evaluation is not None and evaluation.get("success_rate", 0.0) >= s.succeeding
    if evaluation is not None and (evaluation.get("succeeded") or done):
        verdict.signals["success_rate"] = float(evaluation["success_rate"])
        return verdict  # it does the task

    moved = True  # unknown: do not blame the metric
    if metrics and len(metrics.get("timesteps", ())) >= s.min_rows:
        t = np.asarray(metrics["timesteps"], float)
        ret = np.asarray(metrics["reward_return_mean"], float)
        m = np.asarray(metrics["success_metric_mean"], float)
        k = max(1, round(len(t) * s.edge))
        r0, r1, m0, m1 = ret[:k].mean(), ret[-k:].mean(), m[:k].mean(), m[-k:].mean()
        scale = abs(threshold - m0) if threshold is not None else max(abs(m0), 1e-9)
        progress = sign * (m1 - m0) / max(scale, 1e-9)
        moved = progress >= s.moved
        rising, follows = spearman(t, ret), spearman(ret, sign * m)
        verdict.signals.update(
            return_start=float(r0), return_end=float(r1), metric_start=float(m0), metric_end=float(m1),
            metric_progress=float(progress), return_trend=rising, metric_follows_return=follows,
        )  # fmt: skip
        factor = r1 / r0 if r0 > 0 else None
        if moved or follows >= s.follow:
            pass  # the metric moved, or rose and fell with the return: learning, not hacking
        elif factor is not None and factor >= s.growth:
            verdict.reasons.append(
                f"your reward's return rose {factor:.2g}x while the success metric stayed at {_fmt(m1)}"
                + (f" (success: {metric.describe()})" if threshold is not None else "")
            )
        elif rising >= s.rising:
            verdict.reasons.append(
                f"your reward's return rose through training ({_fmt(r0)} -> {_fmt(r1)}) but the success "
                f"metric did not follow it (rank correlation {follows:+.2f}; {_fmt(m0)} -> {_fmt(m1)})"
            )

    if evaluation is not None and evaluation.get("episodes"):
        episodes = evaluation["episodes"]
        sums: dict[str, float] = {}
        for ep in episodes:
            for name, value in (ep.get("components") or {}).items():
                if name not in logged:  # a logged-only term supplies none of the return
                    sums[name] = sums.get(name, 0.0) + abs(float(value))
        total = sum(sums.values())
        if len(sums) >= 2 and total > 0:
            name, top = max(sums.items(), key=lambda kv: kv[1])
            share = top / total
            verdict.signals["dominant_share"] = float(share)
            if share >= s.dominant:
                verdict.dominant = name
                column = np.asarray(metrics.get(f"component/{name}", ()), float) if metrics else np.zeros(0)
                m_col = np.asarray(metrics.get("success_metric_mean", ()), float) if metrics else np.zeros(0)
                aligned = spearman(column, sign * m_col) if len(column) >= s.min_rows else 1.0
                verdict.signals["dominant_follows_metric"] = aligned
                grew = "return_end" in verdict.signals and (
                    verdict.signals["return_start"] > 0
                    and verdict.signals["return_end"] >= s.growth * verdict.signals["return_start"]
                )
                stalled = verdict.signals.get("metric_progress", 1.0) < s.stalled
                if (
                    (not moved or (grew and stalled))
                    and aligned < s.aligned
                    and "metric_progress" in verdict.signals
                ):
                    verdict.reasons.append(
                        f"the '{name}' term supplies {share:.0%} of the return while the success metric "
                        f"hardly moves ({_fmt(verdict.signals['metric_start'])} -> "
                        f"{_fmt(verdict.signals['metric_end'])})"
                    )
        if reference_length:
            length = float(np.mean([ep["length"] for ep in episodes]))
            ratio = length / reference_length
            verdict.signals["length_ratio"] = float(ratio)
            if (ratio >= s.length_ratio or ratio <= 1 / s.length_ratio) and not moved:
                verdict.reasons.append(
                    f"its episodes last {length:.0f} steps against {reference_length:.0f} under the "
                    "reference reward"
                )
    verdict.hacked = bool(verdict.reasons)
    return verdict


def recorded_verdict(run_dir: Any) -> Verdict | None:
    """The verdict a finished run recorded in its manifest (None: none, or no such run)."""
    from rewardgen.runs import RunDir

    try:
        return Verdict.from_dict(RunDir.read_manifest(run_dir).get("alarm"))
    except (ValueError, TypeError):
        return None


def run_verdict(run_dir: Any, metric: Any, settings: AlarmSettings | None = None) -> Verdict:
    """The verdict on a run directory (its metrics.csv and eval.json)."""
    import json
    from pathlib import Path

    from rewardgen.runs import RunDir

    run = RunDir(Path(run_dir), RunDir.read_manifest(run_dir))
    path = Path(run_dir) / RunDir.EVAL
    evaluation = json.loads(path.read_text()) if path.is_file() else None
    logged = frozenset(run.manifest.get("reward_logged") or ())
    return hacking_verdict(run.metrics(), evaluation, metric, settings, logged=logged)
