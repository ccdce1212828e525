"""Jump: reward torso height and upward speed, keep the torso level and torques small."""

import numpy as np

HEIGHT_WEIGHT = 10.0
UP_SPEED_WEIGHT = 1.0
LEVEL_WEIGHT = 0.5
CTRL_COST_WEIGHT = 0.1


def compute_reward(obs, action, next_obs, info):
    height = HEIGHT_WEIGHT * np.maximum(info["torso_z"], 0.0)
    up_speed = UP_SPEED_WEIGHT * np.maximum(info["vertical_velocity"], 0.0)
    level = -LEVEL_WEIGHT * np.abs(info["torso_angle"])
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    total = height + up_speed + level - ctrl_cost
    return total, {"height": height, "up_speed": up_speed, "level": level, "ctrl_cost": -ctrl_cost}
