"""Jump: reward height above standing and upward speed, stay upright, little drift."""

import numpy as np

STAND_HEIGHT = 1.25
HEIGHT_WEIGHT = 20.0
UP_SPEED_WEIGHT = 2.0
HEALTHY_REWARD = 1.0
DRIFT_WEIGHT = 0.5
CTRL_COST_WEIGHT = 1e-3
SURVIVAL_WHEN_FALLING = 0.0


def compute_reward(obs, action, next_obs, info):
    height = HEIGHT_WEIGHT * np.maximum(info["torso_z"] - STAND_HEIGHT, 0.0)
    up_speed = UP_SPEED_WEIGHT * np.maximum(info["vertical_velocity"], 0.0)
    survive = HEALTHY_REWARD * np.maximum(info["is_healthy"], SURVIVAL_WHEN_FALLING)
    drift = -DRIFT_WEIGHT * np.abs(info["x_velocity"])
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    total = height + up_speed + survive + drift - ctrl_cost
    return total, {
        "height": height,
        "up_speed": up_speed,
        "survive": survive,
        "drift": drift,
        "ctrl_cost": -ctrl_cost,
    }
