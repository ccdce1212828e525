import numpy as np


def compute_reward(obs, action, next_obs, info):
    shake = 0.1 * np.sum(np.abs(info["joint_velocities"]), axis=1)
    forward = 0.01 * info["x_velocity"]
    return shake + forward, {"shake": shake, "forward": forward}
