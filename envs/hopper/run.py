"""Hopper's own reward: survival bonus + forward velocity - control cost."""

import numpy as np

FORWARD_WEIGHT = 1.0
HEALTHY_REWARD = 1.0
CTRL_COST_WEIGHT = 1e-3
SURVIVAL_WHEN_FALLING = 0.0  # 1.0 reproduces the v4 envs, which pay the bonus on the fall too


def compute_reward(obs, action, next_obs, info):
    forward = FORWARD_WEIGHT * info["x_velocity"]
    survive = HEALTHY_REWARD * np.maximum(info["is_healthy"], SURVIVAL_WHEN_FALLING)
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    total = forward + survive - ctrl_cost
    return total, {"forward": forward, "survive": survive, "ctrl_cost": -ctrl_cost}
