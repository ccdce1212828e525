"""MountainCar's own reward: -1 for every step until the car reaches the flag."""

import numpy as np


def compute_reward(obs, action, next_obs, info):
    time = -np.ones(len(next_obs))
    return time, {"time": time}
