"""Sitting in the lotus position, by hand: pelvis down, torso upright, feet tucked in."""

import numpy as np

CTRL_COST_WEIGHT = 0.1


def compute_reward(obs, action, next_obs, info):
    sit = -info["pelvis_z"]
    upright = info["upright"]
    tuck = -np.max(info["feet_to_pelvis"], axis=1)
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    total = 2.0 * sit + upright + tuck - ctrl_cost
    return total, {"sit": sit, "upright": upright, "tuck": tuck, "ctrl_cost": -ctrl_cost}
