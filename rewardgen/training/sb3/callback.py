"""The SB3 side of a run's life (:mod:`rewardgen.training.lifecycle`): a callback that hands the
episodes, the rollouts' ends and the policy to the run's :class:`~rewardgen.training.lifecycle.RunWatch`,
and saves SB3's checkpoints."""

from __future__ import annotations

import copy
from typing import Any

from rewardgen.runs import RunDir
from rewardgen.training.lifecycle import RunWatch

__all__ = ["StepsBar", "make_callback"]


def make_callback(watch: RunWatch, run: RunDir, ckpt_every: int, deferred_episodes: Any = None) -> Any:
    """The callback of an SB3 run watched by ``watch``: a checkpoint every ``ckpt_every`` steps;
    ``deferred_episodes``: where the episodes of deferred rewards come from (they end when the
    rollout does)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class RewardgenCallback(BaseCallback):
        """Logs env and synthesized returns and the success metric; saves checkpoints."""

        def _on_training_start(self) -> None:
            watch.begin(self.num_timesteps)  # >0 when continuing
            self.last_ckpt = self.num_timesteps

        def _on_step(self) -> bool:
            episodes = [ep for info in self.locals["infos"] if (ep := info.get("reward_episode")) is not None]
            self._record(watch.episodes_done(episodes, self.num_timesteps))
            if self.num_timesteps - self.last_ckpt >= ckpt_every:
                self._checkpoint()
            return not watch.should_stop(self.num_timesteps)  # False stops model.learn

        def _record(self, row: dict[str, Any] | None) -> None:
            if row is not None:
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

        def _on_rollout_start(self) -> None:
            # a periodic evaluation judges the policy that will be saved: here, after the last
            # rollout's update and before the next one. (At a rollout's end SB3 still updates
            # the policy once after a stop, so the saved policy would not be the one judged.)
            self._evaluate_if_due()

        def _on_rollout_end(self) -> None:
            if deferred_episodes is not None:  # deferred rewards: episodes end at the rollout's end
                self._record(watch.episodes_done(deferred_episodes(), self.num_timesteps))
            watch.poll_signal()  # the search's signal: the next step ends training

        def _on_training_end(self) -> None:
            if not watch.stopped and not watch.over:  # the steps' end: the last update is in
                self._evaluate_if_due()
            if self.judged_obs is not None:  # the env step taken after the success moved them
                self.model.get_vec_normalize_env().obs_rms = self.judged_obs
            self._record(watch.flush(self.num_timesteps))

        judged_obs: Any = None  # the observation statistics of the policy judged successful

        def _evaluate_if_due(self) -> None:
            if watch.eval_due(self.num_timesteps):
                row = watch.evaluate(self.model, self.num_timesteps)
                self.logger.record("rewardgen/eval_success_rate", row["success_rate"])
                norm = self.model.get_vec_normalize_env()
                if watch.stopped == "succeeded" and norm is not None:
                    self.judged_obs = copy.deepcopy(norm.obs_rms)

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
