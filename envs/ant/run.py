"""Ant's own reward: forward velocity + survival bonus - control cost - contact cost."""

import numpy as np

FORWARD_WEIGHT = 1.0
HEALTHY_REWARD = 1.0
CTRL_COST_WEIGHT = 0.5
CONTACT_COST_WEIGHT = 5e-4
SURVIVAL_WHEN_FALLING = 0.0


def compute_reward(obs, action, next_obs, info):
    forward = FORWARD_WEIGHT * info["x_velocity"]
    survive = HEALTHY_REWARD * np.maximum(info["is_healthy"], SURVIVAL_WHEN_FALLING)
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    contact_cost = CONTACT_COST_WEIGHT * np.sum(np.square(info["contact_forces"]), axis=(1, 2))
    total = forward + survive - ctrl_cost - contact_cost
    return total, {
        "forward": forward,
        "survive": survive,
        "ctrl_cost": -ctrl_cost,
        "contact_cost": -contact_cost,
    }
