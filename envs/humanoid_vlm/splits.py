"""The splits, by hand: feet far apart, pelvis down."""

import numpy as np

CTRL_COST_WEIGHT = 0.1


def compute_reward(obs, action, next_obs, info):
    spread = info["feet_spread"]
    low = -info["pelvis_z"]
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    total = 2.0 * spread + low - ctrl_cost
    return total, {"spread": spread, "low": low, "ctrl_cost": -ctrl_cost}
