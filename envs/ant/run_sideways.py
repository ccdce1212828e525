"""Run along +y: sideways velocity, no drift along x, survival, small torques."""

import numpy as np

SIDEWAYS_WEIGHT = 1.0
DRIFT_WEIGHT = 0.5
HEALTHY_REWARD = 1.0
CTRL_COST_WEIGHT = 0.5
SURVIVAL_WHEN_FALLING = 0.0


def compute_reward(obs, action, next_obs, info):
    sideways = SIDEWAYS_WEIGHT * info["y_velocity"]
    drift = -DRIFT_WEIGHT * np.abs(info["x_velocity"])
    survive = HEALTHY_REWARD * np.maximum(info["is_healthy"], SURVIVAL_WHEN_FALLING)
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    total = sideways + drift + survive - ctrl_cost
    return total, {"sideways": sideways, "drift": drift, "survive": survive, "ctrl_cost": -ctrl_cost}
