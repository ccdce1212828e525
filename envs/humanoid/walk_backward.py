"""Walk backwards: backward centre-of-mass velocity + survival - control cost."""

import numpy as np

BACKWARD_WEIGHT = 1.25
HEALTHY_REWARD = 5.0
CTRL_COST_WEIGHT = 0.1
SURVIVAL_WHEN_FALLING = 0.0


def compute_reward(obs, action, next_obs, info):
    backward = -BACKWARD_WEIGHT * info["x_velocity"]
    survive = HEALTHY_REWARD * np.maximum(info["is_healthy"], SURVIVAL_WHEN_FALLING)
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    total = backward + survive - ctrl_cost
    return total, {"backward": backward, "survive": survive, "ctrl_cost": -ctrl_cost}
