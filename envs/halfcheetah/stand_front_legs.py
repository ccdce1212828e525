"""Stand on the front legs: lift the back foot, stay in place, keep the front foot low."""

import numpy as np

LIFT_WEIGHT = 5.0
FRONT_FOOT_WEIGHT = 1.0
STILL_WEIGHT = 0.5
CTRL_COST_WEIGHT = 0.1


def compute_reward(obs, action, next_obs, info):
    lift = LIFT_WEIGHT * info["back_foot_z"]
    front_low = -FRONT_FOOT_WEIGHT * info["front_foot_z"]
    still = -STILL_WEIGHT * np.abs(info["x_velocity"])
    ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.square(action), axis=1)
    total = lift + front_low + still - ctrl_cost
    return total, {"lift": lift, "front_low": front_low, "still": still, "ctrl_cost": -ctrl_cost}
