"""TensorBoard event files beside metrics.csv: ``tensorboard --logdir runs`` shows every run.

Each run directory gets its own event file (a search's candidates are runs of their own under
``<search>/iter<i>/cand<k>/train``, so ``tensorboard --logdir runs/<search>`` draws the candidates
on one chart per scalar). The scalars: the env's own return, the synthesized return, the success
metric and rate, the episode length, each reward component (``component/<name>``), the env
reward's terms where known (``env_term/<field>``), and the evaluations (``eval/...``).
``REWARDGEN_TENSORBOARD=0`` turns them off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["ScalarLog", "tensorboard_enabled"]

#: metrics.csv columns -> TensorBoard tags
TAGS = {
    "env_return_mean": "return/env",
    "reward_return_mean": "return/reward",
    "success_metric_mean": "success/metric",
    "success_rate": "success/rate",
    "ep_length_mean": "episode/length",
}


def tensorboard_enabled() -> bool:
    """On unless ``REWARDGEN_TENSORBOARD`` is 0, false or off."""
    return os.environ.get("REWARDGEN_TENSORBOARD", "1").strip().lower() not in ("0", "false", "off", "no")


class ScalarLog:
    """Scalars of one run into TensorBoard event files in ``folder`` (opened on the first write).

    Example:
        >>> import tempfile
        >>> log = ScalarLog(tempfile.mkdtemp())
        >>> log.row({"timesteps": 2048, "success_metric_mean": 1.5, "component/speed": 30.0})
        >>> log.close()
    """

    def __init__(self, folder: str | Path, enabled: bool | None = None):
        self.folder = Path(folder)
        self.enabled = tensorboard_enabled() if enabled is None else enabled
        self._writer: Any = None

    def _get(self) -> Any:
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:  # tensorboard is a dependency; a broken install costs only this
                import warnings

                warnings.warn(f"no TensorBoard event files: {exc}", RuntimeWarning, stacklevel=3)
                self.enabled = False
                return None
            self._writer = SummaryWriter(log_dir=str(self.folder), flush_secs=10)
        return self._writer

    def row(self, row: dict[str, Any], prefix: str = "") -> None:
        """One metrics.csv (or evals.csv) row, at its ``timesteps``."""
        if not self.enabled:
            return
        step = int(row["timesteps"])
        writer = self._get()
        if writer is None:
            return
        for key, value in row.items():
            if key in ("timesteps", "wall_time_s", "episodes", "eval_time_s") or value is None:
                continue
            tag = TAGS.get(key, key)
            try:
                writer.add_scalar(prefix + tag, float(value), step)
            except (TypeError, ValueError):
                continue
        writer.flush()  # nothing lost on a crash: a row is on disk once written

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
