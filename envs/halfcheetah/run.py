"""HalfCheetah's own reward: forward velocity minus a control cost (identical on v4 and v5)."""

import numpy as np

FORWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 0.1


def compute_reward(obs, action, next_obs, info):
    forward = FORWARD_WEIGHT * info["x_velocity"]
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    return forward - ctrl_cost, {"forward": forward, "ctrl_cost": -ctrl_cost}
