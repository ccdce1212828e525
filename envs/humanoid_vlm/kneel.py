"""Kneeling, by hand: knees down, torso upright at kneeling height, little effort."""

import numpy as np

KNEEL_TORSO_Z = 0.95  # the torso's height when kneeling upright (1.4 standing)
CTRL_COST_WEIGHT = 0.1


def compute_reward(obs, action, next_obs, info):
    knees_down = -np.max(info["knee_heights"], axis=1)
    upright = info["upright"]
    height = -np.abs(info["torso_z"] - KNEEL_TORSO_Z)
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    total = 2.0 * knees_down + upright + height - ctrl_cost
    return total, {"knees_down": knees_down, "upright": upright, "height": height, "ctrl_cost": -ctrl_cost}
