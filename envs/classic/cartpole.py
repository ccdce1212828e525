"""CartPole's own reward: 1 for every step the pole stays up."""

import numpy as np


def compute_reward(obs, action, next_obs, info):
    alive = np.ones(len(next_obs))
    return alive, {"alive": alive}
