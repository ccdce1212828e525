"""The SB3 callback of a training run: episode statistics to metrics.csv, checkpoints, periodic
evaluations, the wall-clock budget, stopping at the first success and at a stop file."""

from __future__ import annotations

import os
import time
from typing import Any

from rewardgen.runs import MetricsWriter, RunDir, metrics_row

__all__ = ["make_callback", "stop_reason"]


def stop_reason(stop_file: str) -> str:
    """Why a search asked its candidates to stop: the stop file's first line."""
    try:
        with open(stop_file) as f:
            return f.readline().strip() or "asked to stop"
    except OSError:
        return "asked to stop"


def make_callback(
    writer: MetricsWriter,
    log_every: int,
    metric_spec: Any,
    run: RunDir,
    ckpt_every: int,
    deferred_episodes: Any = None,
    deadline: float | None = None,
    evaluator: Any = None,
    eval_every: int = 0,
    stop_on_success: bool = False,
    stop_file: str | None = None,
):
    from stable_baselines3.common.callbacks import BaseCallback

    class RewardgenCallback(BaseCallback):
        """Logs env and synthesized returns and the success metric; saves checkpoints."""

        def _on_training_start(self) -> None:
            self.t0, self.episodes, self.buffer = time.time(), 0, []
            self.over_budget = self.succeeded = False
            self.stopped: str | None = None  # why training ended before its steps, if it did
            self.last_log = self.last_ckpt = self.last_eval = self.num_timesteps  # >0 when continuing

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                ep = info.get("reward_episode")
                if ep is not None:
                    self.buffer.append(ep)
            if self.buffer and self.num_timesteps - self.last_log >= log_every:
                self._flush()
            if self.num_timesteps - self.last_ckpt >= ckpt_every:
                self._checkpoint()
            if deadline is not None and time.monotonic() > deadline:
                self.over_budget = True
                return False  # stops model.learn; train() reports it
            return not (self.succeeded or self.stopped)

        def _flush(self) -> None:
            eps, self.buffer = self.buffer, []
            self.episodes += len(eps)
            self.last_log = self.num_timesteps
            row = metrics_row(eps, metric_spec, self.num_timesteps, time.time() - self.t0, self.episodes)
            writer.write(row)
            for key in ("env_return_mean", "reward_return_mean", "success_metric_mean"):
                self.logger.record(f"rewardgen/{key}", row[key])

        def _checkpoint(self) -> None:
            self.last_ckpt = self.num_timesteps
            ckpt = run.file("checkpoints")
            ckpt.mkdir(exist_ok=True)
            self.model.save(ckpt / RunDir.MODEL)
            env = self.model.get_vec_normalize_env()
            if env is not None:
                env.save(str(ckpt / RunDir.NORMALIZER))
            run.update(checkpoint={"timesteps": self.num_timesteps, "path": "checkpoints/model.zip"})

        def _on_rollout_end(self) -> None:
            if deferred_episodes is not None:  # deferred rewards: episodes end at the rollout's end
                self.buffer.extend(deferred_episodes())
                if self.buffer and self.num_timesteps - self.last_log >= log_every:
                    self._flush()
            if evaluator is not None and self.num_timesteps - self.last_eval >= eval_every:
                self.last_eval = self.num_timesteps
                row = evaluator(self.model, self.num_timesteps, time.time() - self.t0)
                self.logger.record("rewardgen/eval_success_rate", row["success_rate"])
                if stop_on_success and row["succeeded"]:
                    self.succeeded = True  # the next step ends training
                    self.stopped = "succeeded"
            if stop_file is not None and not self.stopped and os.path.exists(stop_file):
                self.stopped = stop_reason(stop_file)  # a search's signal: the next step ends training

        def _on_training_end(self) -> None:
            if self.buffer:
                self._flush()

    return RewardgenCallback()


def StepsBar() -> Any:  # a class, made when SB3 is imported
    """SB3's progress bar that never counts past the steps asked for (PPO ends at a rollout's
    end, a little after them: 30,720 of 30,000 reads as a bar gone wrong)."""
    from stable_baselines3.common.callbacks import ProgressBarCallback

    class _StepsBar(ProgressBarCallback):
        def _on_step(self) -> bool:
            left = self.pbar.total - self.pbar.n
            if left > 0:
                self.pbar.update(min(self.training_env.num_envs, left))
            return True

    return _StepsBar()
