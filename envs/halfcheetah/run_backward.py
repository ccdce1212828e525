"""Run backwards: reward negative x velocity, keep torques small."""

import numpy as np

BACKWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 0.1


def compute_reward(obs, action, next_obs, info):
    backward = -BACKWARD_WEIGHT * info["x_velocity"]
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    return backward - ctrl_cost, {"backward": backward, "ctrl_cost": -ctrl_cost}
