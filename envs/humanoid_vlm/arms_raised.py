"""Arms raised, by hand: both hands above the head while standing tall."""

import numpy as np

CTRL_COST_WEIGHT = 0.1


def compute_reward(obs, action, next_obs, info):
    hands_up = np.min(info["hand_heights"], axis=1) - info["head_z"]
    stand = np.minimum(info["torso_z"], 1.4)
    upright = info["upright"]
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    total = 2.0 * hands_up + stand + upright - ctrl_cost
    return total, {"hands_up": hands_up, "stand": stand, "upright": upright, "ctrl_cost": -ctrl_cost}
