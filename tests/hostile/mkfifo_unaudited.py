# class: a function that raises no audit event - os.mkfifo creates a file
# tries: leave a file behind without an 'open' event
import os

import numpy as np


def compute_reward(obs, action, next_obs, info):
    os.mkfifo("@MARKER@")
    return np.zeros(len(obs)), {}
